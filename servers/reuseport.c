/* reuseport.c - N threads, each with its own epoll loop that accepts for itself.
 *
 * How it works: every thread runs the same loop (epoll_loop.c) on its own connections, and every
 * loop watches a listening socket and accepts from it. --listen chooses how they share the port:
 *   reuseport  each loop has its own listening socket, all bound to the port with SO_REUSEPORT;
 *              the kernel hashes each new connection to one socket, so to one loop (nginx with
 *              `reuseport`);
 *   shared     one listening socket in every loop's epoll set: a new connection wakes every loop
 *              waiting on it, all try accept, one wins (the thundering herd);
 *   exclusive  the same shared socket registered with EPOLLEXCLUSIVE: the kernel wakes one
 *              waiting loop (or a few) per connection instead of all.
 *
 *   reuseport:  listen 0 -> loop 0     shared:  listen --+--> loop 0    (all woken,
 *               listen 1 -> loop 1                       +--> loop 1     one accepts)
 *               listen 2 -> loop 2                       +--> loop 2
 *
 * Each loop counts its wake-ups, listener events, accepts and empty accepts (EAGAIN: woken for a
 * connection another loop took) and prints them on exit, so the herd is a number.
 *
 * Limits: a connection stays on the loop that accepted it, however busy that loop is; with
 * reuseport the hash decides, blind to load, and a loop that stops (or blocks in /sleep) still has
 * connections hashed to its socket queued behind it. See docs/reuseport.md. */
#include <stdlib.h>
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

enum listen_mode { LISTEN_REUSEPORT, LISTEN_SHARED, LISTEN_EXCLUSIVE };
static int listen_mode = LISTEN_REUSEPORT;
static const char *const listen_mode_names[] = {"reuseport", "shared", "exclusive", NULL};
static const struct paradigm_option reuseport_options[] = {
    {"listen", "reuseport|shared|exclusive", "a listening socket per loop (SO_REUSEPORT), one shared by all, "
     "or one shared with EPOLLEXCLUSIVE (default reuseport)", &listen_mode, 0, 0, listen_mode_names},
    {0},
};

struct reactor {
    struct epoll_loop loop;
    int listen_fd;
};

static struct reactor *reactors;

static void run_reactor(int index, void *arg)
{
    (void)arg;
    struct reactor *reactor = &reactors[index];
    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        int ready = epoll_loop_wait(&reactor->loop, events, MAX_EVENTS, WAIT_MS);
        for (int i = 0; i < ready; i++) {
            if (events[i].data.fd == reactor->listen_fd)
                epoll_loop_accept(&reactor->loop, reactor->listen_fd);
            else
                epoll_loop_handle(&reactor->loop, &events[i]);
        }
        epoll_loop_sweep(&reactor->loop);
    }
    epoll_loop_close(&reactor->loop);
}

/* Every loop gets its listening socket before any thread starts, so the port is ready when
 * announced. With --port 0 the first socket picks the port and the others bind to it. */
static void open_listeners(int count)
{
    int shared_fd = -1;
    for (int i = 0; i < count; i++) {
        struct reactor *reactor = &reactors[i];
        epoll_loop_init(&reactor->loop);
        if (listen_mode == LISTEN_REUSEPORT) {
            reactor->listen_fd = net_listen(true, true);
            server_options.port = net_local_port(reactor->listen_fd);
        } else {
            if (shared_fd < 0)
                shared_fd = net_listen(false, true);
            reactor->listen_fd = shared_fd;
        }
        epoll_loop_watch(&reactor->loop, reactor->listen_fd,
                         EPOLLIN | (listen_mode == LISTEN_EXCLUSIVE ? EPOLLEXCLUSIVE : 0));
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "reuseport", .flags = OPTIONS_THREADS,
                                                 .options = reuseport_options});
    signals_install();
    stats_init();
    int count = server_options.threads;
    reactors = calloc((size_t)count, sizeof *reactors);
    if (reactors == NULL)
        die("out of memory for %d loops", count);
    open_listeners(count);
    struct thread_group group = {.count = count, .run = run_reactor};
    thread_group_start(&group);
    net_announce(reactors[0].listen_fd);

    signals_wait_stop();

    thread_group_join(&group);
    for (int i = 0; i < count; i++) {
        loop_counts_print(i, &reactors[i].loop.counts);
        if (listen_mode == LISTEN_REUSEPORT || i == 0)
            close(reactors[i].listen_fd);
    }
    free(reactors);
    stats_print();
    return 0;
}
