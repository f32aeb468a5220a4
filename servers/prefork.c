/* prefork.c - N worker processes, forked at start, each accepting on the shared listening socket.
 *
 * How it works: the master opens the listening socket and forks --workers processes; each loops
 * accept -> serve the connection with blocking calls -> accept. The master only watches: it
 * starts a new worker when one dies and stops them all on SIGTERM. How the workers take turns at
 * accept is --accept-lock: none (all block in accept; Linux wakes one of them per connection),
 * flock (a file lock around accept, UNP's server 3) or mutex (a process-shared, robust pthread
 * mutex in shared memory, UNP's server 4, kept usable when its holder is killed).
 *
 * Limits: N workers serve N connections at once; the N+1st waits in the accept queue until a
 * worker is free, so N keep-alive clients that stay connected starve everyone else. No fork per
 * connection, but a whole process per concurrent connection. See docs/prefork.md. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/procs.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

enum accept_lock { LOCK_NONE, LOCK_FLOCK, LOCK_MUTEX };
static const char *const lock_names[] = {"none", "flock", "mutex", NULL};
static int accept_lock = LOCK_NONE;

static const struct paradigm_option prefork_options[] = {
    {"accept-lock", "none|flock|mutex", "how workers take turns at accept (default none)", &accept_lock, 0, 0, lock_names},
    {0},
};

static int listen_fd;
/* flock: an unlinked file, so nothing is left behind. A flock belongs to an open file
 * description, which fork shares, so each worker opens a description of its own. */
static int lock_file_fd = -1;
static int worker_lock_fd = -1;
/* mutex: in memory shared by the master and every worker. */
static pthread_mutex_t *accept_mutex;

static void create_lock(void)
{
    if (accept_lock == LOCK_FLOCK) {
        char path[] = "/tmp/c10k-prefork-lock.XXXXXX";
        lock_file_fd = mkostemp(path, O_CLOEXEC);
        if (lock_file_fd < 0)
            die("mkostemp(%s): %m", path);
        if (unlink(path) != 0)
            die("unlink(%s): %m", path);
    } else if (accept_lock == LOCK_MUTEX) {
        accept_mutex = mmap(NULL, sizeof *accept_mutex, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (accept_mutex == MAP_FAILED)
            die("mmap(accept mutex): %m");
        pthread_mutexattr_t attributes;
        if (pthread_mutexattr_init(&attributes) != 0 ||
            pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST) != 0 ||
            pthread_mutex_init(accept_mutex, &attributes) != 0)
            die("cannot create the process-shared accept mutex");
        pthread_mutexattr_destroy(&attributes);
    }
}

/* Takes the accept lock; false if it could not within a tick (or a signal came), so the caller
 * looks at the stop flag and tries again. */
static bool lock_accept(void)
{
    if (accept_lock == LOCK_FLOCK)
        return flock(worker_lock_fd, LOCK_EX) == 0;
    if (accept_lock == LOCK_MUTEX) {
        struct timespec deadline = threads_deadline(NET_TICK_MS / 1000.0);
        int error = pthread_mutex_clocklock(accept_mutex, CLOCK_MONOTONIC, &deadline);
        if (error == EOWNERDEAD) {
            /* Its holder died inside accept: the lock protects no data, so it is sound as is. */
            pthread_mutex_consistent(accept_mutex);
            return true;
        }
        return error == 0;
    }
    return true;
}

static void unlock_accept(void)
{
    if (accept_lock == LOCK_FLOCK)
        flock(worker_lock_fd, LOCK_UN);
    else if (accept_lock == LOCK_MUTEX)
        pthread_mutex_unlock(accept_mutex);
}

static void run_worker(int index, void *arg)
{
    (void)index;
    (void)arg;
    if (accept_lock == LOCK_FLOCK) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", lock_file_fd);
        worker_lock_fd = open(path, O_RDWR | O_CLOEXEC);
        if (worker_lock_fd < 0)
            die("open(%s): %m", path);
    }
    while (!server_stopping) {
        if (!lock_accept())
            continue;
        /* Stopping may have begun while we waited for the lock: accept would wait a tick more. */
        int fd = server_stopping ? -1 : net_accept(listen_fd, false);
        unlock_accept();
        if (fd < 0)
            continue;
        serve_blocking(fd);
        stats_flush(); /* a worker killed later loses only the connection it was serving */
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "prefork", .flags = OPTIONS_WORKERS,
                                                 .options = prefork_options});
    signals_install();
    procs_install_sigchld();
    stats_init();
    listen_fd = net_listen(false, false);
    create_lock();
    struct worker_pool workers = {.count = server_options.workers, .run = run_worker};
    worker_pool_start(&workers);
    net_announce(listen_fd);

    /* The master sleeps until a signal: SIGCHLD (a worker died) or SIGTERM; the tick bounds a
     * signal that lands just before the sleep. */
    while (!server_stopping) {
        worker_pool_tend(&workers);
        nanosleep(&(struct timespec){.tv_nsec = NET_TICK_MS * 1000000L}, NULL);
    }

    worker_pool_stop(&workers);
    close(listen_fd);
    stats_print();
    return 0;
}
