/* prethread.c - N threads, started once, each accepting on the shared listening socket.
 *
 * How it works: --threads threads loop accept -> serve the connection with blocking calls ->
 * accept, all on the one listening socket. With --accept-lock none they all block in accept and
 * the kernel wakes one per connection; with mutex they take turns under a pthread mutex, the
 * threaded form of prefork's lock. This is UNP's server 7 (chapter 30). The main thread only
 * waits for the stop signal.
 *
 * Limits: N threads serve N connections at once; the rest wait in the kernel's accept queue, so
 * N keep-alive clients that stay connected starve everyone else. See docs/prethread.md. */
#include <pthread.h>

#include "common/net.h"
#include "common/options.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

enum accept_lock { LOCK_NONE, LOCK_MUTEX };
static const char *const lock_names[] = {"none", "mutex", NULL};
static int accept_lock = LOCK_NONE;

static const struct paradigm_option prethread_options[] = {
    {"accept-lock", "none|mutex", "how threads take turns at accept (default none)", &accept_lock, 0, 0, lock_names},
    {0},
};

static int listen_fd;
static pthread_mutex_t accept_mutex = PTHREAD_MUTEX_INITIALIZER;

static void run_worker(int index, void *arg)
{
    (void)index;
    (void)arg;
    while (!server_stopping) {
        if (accept_lock == LOCK_MUTEX)
            pthread_mutex_lock(&accept_mutex);
        /* Stopping may have begun while we waited for the lock: accept would wait a tick more. */
        int fd = server_stopping ? -1 : net_accept(listen_fd, false);
        if (accept_lock == LOCK_MUTEX)
            pthread_mutex_unlock(&accept_mutex);
        if (fd >= 0)
            serve_blocking(fd);
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "prethread", .flags = OPTIONS_THREADS,
                                                 .default_threads = 16, .options = prethread_options});
    signals_install();
    stats_init();
    listen_fd = net_listen(false, false);
    struct thread_group workers = {.count = server_options.threads, .run = run_worker};
    thread_group_start(&workers);
    net_announce(listen_fd);

    signals_wait_stop();

    thread_group_join(&workers);
    close(listen_fd);
    stats_print();
    return 0;
}
