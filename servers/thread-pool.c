/* thread-pool.c - N threads, started once, serving connections that the main thread queues.
 *
 * How it works: the main thread accepts and puts each connection into a bounded queue (a ring
 * under a mutex); --threads worker threads wait on a condition variable, take the oldest
 * connection and serve it with blocking calls, then take the next. This is UNP's server 8
 * (chapter 30, "main thread does all the accepts"): threads are made once, not per connection.
 *
 * Limits: N threads serve N connections at once; the rest wait in the queue (--queue), and a
 * connection that finds it full gets a 503 at once. N keep-alive clients that stay connected
 * starve everyone in the queue. Each hand-off is a lock and a wake-up of a sleeping thread,
 * which on two vCPUs can cost more than the request. See docs/thread-pool.md. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

static int queue_limit = 1024;

static const struct paradigm_option pool_options[] = {
    {"queue", "N", "accepted connections waiting for a thread, then 503 (default 1024)", &queue_limit, 1, 1000000, NULL},
    {0},
};

/* Accepted connections, oldest first. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    int *fds;
    int head, len;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Takes the oldest connection, waiting for one; -1 once the server stops. */
static int take_connection(void)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.len == 0 && !server_stopping) {
        /* Timed: the stop flag is set by a signal handler, which cannot signal the condition. */
        struct timespec tick = threads_deadline(NET_TICK_MS / 1000.0);
        pthread_cond_timedwait(&queue.not_empty, &queue.lock, &tick);
    }
    int fd = -1;
    if (!server_stopping) {
        fd = queue.fds[queue.head];
        queue.head = (queue.head + 1) % queue_limit;
        queue.len--;
    }
    pthread_mutex_unlock(&queue.lock);
    return fd;
}

/* Queues a connection; false if the queue is full. */
static bool put_connection(int fd)
{
    pthread_mutex_lock(&queue.lock);
    bool room = queue.len < queue_limit;
    if (room) {
        queue.fds[(queue.head + queue.len) % queue_limit] = fd;
        queue.len++;
        pthread_cond_signal(&queue.not_empty);
    }
    pthread_mutex_unlock(&queue.lock);
    return room;
}

static void run_worker(int index, void *arg)
{
    (void)index;
    (void)arg;
    int fd;
    while ((fd = take_connection()) >= 0)
        serve_blocking(fd);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "thread-pool", .flags = OPTIONS_THREADS,
                                                 .default_threads = 16, .options = pool_options});
    signals_install();
    stats_init();
    queue.fds = calloc((size_t)queue_limit, sizeof *queue.fds);
    if (queue.fds == NULL)
        die("out of memory for a queue of %d", queue_limit);
    threads_cond_init(&queue.not_empty);
    int listen_fd = net_listen(false, false);
    struct thread_group workers = {.count = server_options.threads, .run = run_worker};
    thread_group_start(&workers);
    net_announce(listen_fd);

    while (!server_stopping) {
        int fd = net_accept(listen_fd, false);
        if (fd >= 0 && !put_connection(fd))
            conn_refuse(fd, 503);
    }

    pthread_mutex_lock(&queue.lock);
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    thread_group_join(&workers);
    /* Connections still queued are closed like those in any server's accept queue. */
    for (; queue.len > 0; queue.len--, queue.head = (queue.head + 1) % queue_limit)
        close(queue.fds[queue.head]);
    free(queue.fds);
    pthread_cond_destroy(&queue.not_empty);
    close(listen_fd);
    stats_print();
    return 0;
}
