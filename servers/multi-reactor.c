/* multi-reactor.c - a main reactor that accepts, and N sub-reactors, one epoll loop per thread.
 *
 * How it works: the main thread waits on the listening socket alone and accepts. Each connection
 * goes to one sub-reactor (--threads of them), round-robin or to the one holding the fewest
 * connections (--balance least), through that sub-reactor's queue: a vector of descriptors under a
 * mutex, with an eventfd that wakes the sub-reactor when the queue becomes non-empty. From then on
 * the connection lives in its sub-reactor's epoll loop and no other thread touches it. This is
 * memcached's and muduo's structure ("one loop per thread", Netty's boss and worker groups).
 *
 *            accept()                      eventfd + queue                epoll loop, its own
 *   listen --------> main reactor --+--> sub-reactor 0 ---> conns 0, 3, 6 ...
 *                                   +--> sub-reactor 1 ---> conns 1, 4, 7 ...
 *                                   +--> sub-reactor 2 ---> conns 2, 5, 8 ...
 *
 * Limits: one thread accepts for all, so a connection storm is bounded by one core's accepts and
 * pays a cross-thread hand-off (a lock and often an eventfd write) per connection. Round-robin
 * spreads connections, not load: long-lived busy connections can pile up on one loop. A request
 * that blocks (/sleep) still stalls every connection of its loop. See docs/multi-reactor.md. */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/epoll_loop.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define MAX_EVENTS 256
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

enum balance { BALANCE_RR, BALANCE_LEAST };
static int balance = BALANCE_RR;
static const char *const balance_names[] = {"rr", "least", NULL};
static const struct paradigm_option multi_reactor_options[] = {
    {"balance", "rr|least", "which sub-reactor gets a new connection: the next in turn, or the one holding the "
     "fewest (default rr)", &balance, 0, 0, balance_names},
    {0},
};

/* Descriptors on their way to a sub-reactor. */
struct fd_vector {
    int *fds;
    size_t len, cap;
};

struct sub_reactor {
    struct epoll_loop loop;
    pthread_mutex_t lock;    /* guards incoming */
    struct fd_vector incoming;
    int wake_fd;             /* eventfd: written when incoming becomes non-empty */
    uint64_t handed;         /* connections the main reactor gave it (main thread only) */
    atomic_uint_least64_t finished; /* of those, the ones it has closed, for --balance least */
};

static struct sub_reactor *subs;
static int sub_count;

/* The main reactor's side: false if the connection could not be queued (no memory). */
static bool hand_over(struct sub_reactor *sub, int fd)
{
    pthread_mutex_lock(&sub->lock);
    struct fd_vector *queue = &sub->incoming;
    bool queued = true;
    if (queue->len == queue->cap) {
        size_t cap = queue->cap ? queue->cap * 2 : 64;
        int *grown = realloc(queue->fds, cap * sizeof *grown);
        if (grown == NULL)
            queued = false;
        else
            queue->fds = grown, queue->cap = cap;
    }
    bool was_empty = queue->len == 0;
    if (queued)
        queue->fds[queue->len++] = fd;
    pthread_mutex_unlock(&sub->lock);
    /* A non-empty queue already has a wake-up on its way (see take_incoming). */
    if (queued && was_empty && eventfd_write(sub->wake_fd, 1) != 0)
        log_error("eventfd_write: %m");
    return queued;
}

static struct sub_reactor *choose_sub(void)
{
    static int next;
    if (balance == BALANCE_RR) {
        next = (next + 1) % sub_count;
        return &subs[next];
    }
    /* Counted here, at the hand-over, so a burst of accepts is spread before any loop has run. */
    struct sub_reactor *least = NULL;
    uint64_t least_held = UINT64_MAX;
    for (int i = 0; i < sub_count; i++) {
        uint64_t held = subs[i].handed - atomic_load_explicit(&subs[i].finished, memory_order_relaxed);
        if (held < least_held)
            least = &subs[i], least_held = held;
    }
    return least;
}

/* The sub-reactor's side: the eventfd is read before the queue is taken, so a connection queued
 * in between finds the queue non-empty and sends no wake-up of its own, and is taken now. */
static void take_incoming(struct sub_reactor *sub, struct fd_vector *spare)
{
    eventfd_t ignored;
    if (eventfd_read(sub->wake_fd, &ignored) != 0 && errno != EAGAIN)
        log_error("eventfd_read: %m");
    pthread_mutex_lock(&sub->lock);
    struct fd_vector taken = sub->incoming;
    sub->incoming = *spare; /* a pointer swap: the main reactor never waits for our epoll_ctl calls */
    sub->incoming.len = 0;
    pthread_mutex_unlock(&sub->lock);
    for (size_t i = 0; i < taken.len; i++)
        epoll_loop_add(&sub->loop, taken.fds[i]);
    *spare = taken;
}

static void run_sub_reactor(int index, void *arg)
{
    (void)arg;
    struct sub_reactor *sub = &subs[index];
    struct fd_vector spare = {0};
    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        int ready = epoll_loop_wait(&sub->loop, events, MAX_EVENTS, WAIT_MS);
        for (int i = 0; i < ready; i++) {
            if (events[i].data.fd == sub->wake_fd)
                take_incoming(sub, &spare);
            else
                epoll_loop_handle(&sub->loop, &events[i]);
        }
        epoll_loop_sweep(&sub->loop);
        atomic_store_explicit(&sub->finished, sub->loop.counts.connections - epoll_loop_size(&sub->loop),
                              memory_order_relaxed);
    }
    epoll_loop_close(&sub->loop);
    free(spare.fds);
}

static void start_sub_reactors(void)
{
    subs = calloc((size_t)sub_count, sizeof *subs);
    if (subs == NULL)
        die("out of memory for %d sub-reactors", sub_count);
    for (int i = 0; i < sub_count; i++) {
        struct sub_reactor *sub = &subs[i];
        epoll_loop_init(&sub->loop);
        if (pthread_mutex_init(&sub->lock, NULL) != 0)
            die("pthread_mutex_init: %m");
        sub->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (sub->wake_fd < 0)
            die("eventfd: %m");
        epoll_loop_watch(&sub->loop, sub->wake_fd, EPOLLIN);
    }
}

static void stop_sub_reactors(void)
{
    for (int i = 0; i < sub_count; i++) {
        struct sub_reactor *sub = &subs[i];
        /* Connections queued but never taken are closed like those left in the accept queue. */
        for (size_t j = 0; j < sub->incoming.len; j++)
            close(sub->incoming.fds[j]);
        free(sub->incoming.fds);
        close(sub->wake_fd);
        pthread_mutex_destroy(&sub->lock);
    }
    free(subs);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "multi-reactor", .flags = OPTIONS_THREADS,
                                                 .options = multi_reactor_options});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);
    sub_count = server_options.threads;
    start_sub_reactors();

    struct epoll_loop main_loop;
    epoll_loop_init(&main_loop);
    epoll_loop_watch(&main_loop, listen_fd, EPOLLIN);
    struct thread_group group = {.count = sub_count, .run = run_sub_reactor};
    thread_group_start(&group);
    net_announce(listen_fd);

    struct epoll_event event;
    while (!server_stopping) {
        /* Its table stays empty, but the sweep keeps the wait's timeout from reaching zero. */
        epoll_loop_sweep(&main_loop);
        if (epoll_loop_wait(&main_loop, &event, 1, WAIT_MS) == 0)
            continue;
        main_loop.counts.listen_events++;
        for (int accepted = 0; accepted < MAX_EVENTS; accepted++) {
            int fd = net_accept(listen_fd, true);
            if (fd < 0) {
                if (accepted == 0 && errno == EAGAIN)
                    main_loop.counts.empty_accepts++;
                break;
            }
            main_loop.counts.accepts++;
            struct sub_reactor *sub = choose_sub();
            if (hand_over(sub, fd)) {
                sub->handed++;
            } else {
                stats_add(STAT_DROPPED, 1);
                close(fd);
            }
        }
    }

    thread_group_join(&group);
    epoll_loop_close(&main_loop);
    loop_counts_print(0, &main_loop.counts);
    for (int i = 0; i < sub_count; i++)
        loop_counts_print(i + 1, &subs[i].loop.counts);
    stop_sub_reactors();
    close(listen_fd);
    stats_print();
    return 0;
}
