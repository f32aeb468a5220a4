/* epoll_loop.h - one level-triggered epoll reactor's connections, for the servers that run several
 * reactors (one per thread) or hand work to other threads.
 *
 * It is epoll-lt.c's loop body, made reusable: a connection is registered for input, its interest
 * follows conn_wants_read()/conn_wants_write(), errors and hang-ups are treated as readable, and
 * deadlines are swept every half second. What stays in each server file is what differs between the
 * designs: who accepts, how a connection reaches its loop, which thread runs what. Every function
 * is called by the loop's own thread only; nothing here is shared between threads.
 *
 * The loop also counts what the thundering-herd comparison needs (struct loop_counts), printed
 * per loop on exit (docs/reuseport.md). */
#ifndef C10K_EPOLL_LOOP_H
#define C10K_EPOLL_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "conn.h"
#include "conn_table.h"

struct loop_counts {
    uint64_t wakeups;       /* epoll_wait returned with at least one event */
    uint64_t listen_events; /* the listening socket was reported to this loop */
    uint64_t accepts;       /* connections this loop accepted */
    uint64_t empty_accepts; /* listener reports whose first accept found nothing: the herd */
    uint64_t connections;   /* connections given to this loop (epoll_loop_add) */
    uint64_t requests;      /* responses this loop's thread sent */
};

struct epoll_loop {
    int epoll_fd;
    struct conn_table clients;
    conn_offload_fn *offload; /* set on every connection added (reactor-workers), or NULL */
    struct loop_counts counts;
};

/* Creates the epoll instance and the table; dies on failure (a start-up error). */
void epoll_loop_init(struct epoll_loop *loop);

/* Registers a descriptor that is not a connection (a listening socket, an eventfd) with `events`;
 * its events come back from epoll_loop_wait() with data.fd set. Dies on failure. */
void epoll_loop_watch(struct epoll_loop *loop, int fd, uint32_t events);

/* Waits for events (at most the next deadline sweep away, and at most max_ms); returns how many
 * (0 on a timeout or a signal). */
int epoll_loop_wait(struct epoll_loop *loop, struct epoll_event *events, int max_events, int max_ms);

/* Takes a new connection into the loop: NULL if it could not (it is then closed and counted), or
 * if, with --defer-accept, it was answered and closed at once. */
struct conn *epoll_loop_add(struct epoll_loop *loop, int fd);

/* Accepts one connection into the loop (the listener is reported again while more wait); counts
 * the listener event, the accept or an empty one. Returns how many it accepted, 0 or 1. */
int epoll_loop_accept(struct epoll_loop *loop, int listen_fd);

/* Handles an event whose descriptor is one of the loop's connections; false if it is not (not a
 * connection, or one closed earlier in the same batch). */
bool epoll_loop_handle(struct epoll_loop *loop, const struct epoll_event *event);

/* After a change made outside an event (an offloaded request's response arrived): writes what
 * can be written, then closes the connection if it is done or updates what it waits for. */
void epoll_loop_resume(struct conn *conn);

/* Checks deadlines every SWEEP_INTERVAL_S (cheap to call on every iteration). */
void epoll_loop_sweep(struct epoll_loop *loop);

/* The number of connections the loop holds. */
static inline size_t epoll_loop_size(const struct epoll_loop *loop)
{
    return loop->clients.count;
}

/* Closes every connection and the epoll instance; adds the thread's response count to counts. */
void epoll_loop_close(struct epoll_loop *loop);

/* Prints "loop K: wakeups=N listen_events=N accepts=N empty_accepts=N connections=N requests=N"
 * on stderr. */
void loop_counts_print(int index, const struct loop_counts *counts);

#endif
