/* epoll-et.c - a single-threaded reactor on edge-triggered epoll.
 *
 * How it works: every socket is nonblocking and registered with one epoll instance. The loop asks
 * epoll which sockets are ready, and for each one does what will not block: accept on the listening
 * socket, one read (answering every complete request in it) or a write of pending output. Each
 * connection keeps its own input and output buffers (conn.c), so a partial request or a partial
 * write just waits for the next event. Edge-triggered means epoll reports a socket once each time
 * it becomes ready, not while it stays ready: so a connection is registered once for input and
 * output and never changed, but every event must be used up, reading until the socket is empty,
 * because nothing will report the bytes left behind. Compare with epoll-lt.c line by line: `diff
 * servers/epoll-lt.c servers/epoll-et.c` shows what the mode changes.
 *
 * A new connection is accepted as soon as its handshake is done, but its request comes a moment
 * later. So each is read at once, and after accepting one that has not spoken the loop stops
 * watching the listening socket until it speaks (or --accept-hold passes): new connections wait in
 * the listen queue meanwhile, as they do for the iterative server, and when the loop takes them
 * their requests are there. They are answered within their accept and never enter the interest
 * set, and the loop is woken once where it would have been woken for every handshake and every
 * request (common/accept_hold.c, docs/churn.md).
 *
 * Limits: one thread, so one core. Anything that blocks the thread (GET /sleep, a long GET /cpu)
 * stalls every connection; so does a client that pipelines without pause, read to the end each
 * time. Deadlines are swept every half second by walking all connections.
 * See docs/epoll-et.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/accept_hold.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_EVENTS 256
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

struct client {
    struct conn conn;
    unsigned silent_in_hold; /* the hold this connection was accepted in, not having spoken; 0: none */
};

static struct conn_table clients;
static int epoll_fd;
static int accept_hold_us = ACCEPT_HOLD_DEFAULT_US;
static struct accept_hold hold;

static void close_client(struct conn *conn)
{
    accept_hold_spoke(&hold, &((struct client *)conn)->silent_in_hold);
    conn_table_remove(&clients, conn->fd);
    conn_release(conn); /* closing the descriptor also removes it from epoll */
    free(conn);
}

/* After an event: close the connection if it is finished. What epoll watches never changes. */
static void settle(struct conn *conn)
{
    if (conn_is_done(conn))
        close_client(conn);
}

/* After the deadline sweep: a 408 it answered must be written now, as the socket has been
 * writable all along and will bring no edge for it. */
static void settle_after_deadlines(struct conn *conn)
{
    if (conn_wants_write(conn))
        conn_on_writable(conn);
    settle(conn);
}

/* No new edge will come for bytes that are already waiting: read until the socket is empty, or
 * until back-pressure pauses reading (the output's edge then brings us back, see main). */
static void read_until_drained(struct conn *conn)
{
    while (conn_wants_read(conn) && conn_on_readable(conn) == CONN_MAY_HAVE_MORE)
        continue;
}

/* Accepts one connection: answered and closed at once, or registered to wait for its turn. One
 * that has not spoken holds the listener if `may_hold`. */
static enum accepted accept_client(int listen_fd, bool may_hold)
{
    int fd = net_accept(listen_fd, true);
    if (fd < 0)
        return ACCEPTED_NONE;
    struct client *client = conn_table_add(&clients, fd, sizeof *client);
    if (client == NULL)
        return ACCEPTED_NONE; /* out of memory: the table closed it; accept no more this turn */
    /* Under the hold (or TCP_DEFER_ACCEPT) the request is usually here already: answer it now,
     * and a connection that is then finished never enters the interest set. Without either, the
     * read would only say EAGAIN (docs/churn.md). Registering afterwards is safe: an
     * edge-triggered ADD reports what is already ready. */
    if (accept_hold_us > 0 || server_options.defer_accept > 0) {
        enum conn_read_result read = conn_on_readable(&client->conn);
        if (read == CONN_MAY_HAVE_MORE)
            read_until_drained(&client->conn);
        if (conn_is_done(&client->conn)) {
            close_client(&client->conn);
            return ACCEPTED_ANSWERED;
        }
        if (read == CONN_DRAINED && client->conn.in_len == 0 && may_hold)
            accept_hold_silent(&hold, &client->silent_in_hold);
    }
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        conn_dropped(&client->conn);
        close_client(&client->conn);
    }
    return ACCEPTED_REGISTERED;
}

int main(int argc, char **argv)
{
    static const struct paradigm_option options[] = {
        {"accept-hold", "US", "after accepting a silent connection, accept no more for up to US "
                              "microseconds or until it speaks (default 10000; 0: never wait)",
         &accept_hold_us, 0, 1000000, NULL},
        {0},
    };
    options_parse(argc, argv, &(struct paradigm){.name = "epoll-et", .options = options});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %m");
    /* The listening socket stays level-triggered: net_accept gives up at a connection that was
     * reset before it was accepted, and no new edge would come for those queued behind it. */
    struct epoll_event listen_event = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0)
        die("epoll_ctl(ADD listen): %m");
    accept_hold_init(&hold, epoll_fd, listen_fd, accept_hold_us, accept_client);
    conn_table_init(&clients);
    net_announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        int wait_ms = accept_hold_before_wait(&hold, conn_table_wait_ms(&clients, clock_now(), WAIT_MS));
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, wait_ms);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_hold_accept(&hold);
                continue;
            }
            struct conn *conn = conn_table_get(&clients, fd);
            if (conn == NULL)
                continue; /* closed earlier in this batch */
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                accept_hold_spoke(&hold, &((struct client *)conn)->silent_in_hold);
                read_until_drained(conn);
            }
            if ((events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn_wants_write(conn)) {
                conn_on_writable(conn);
                read_until_drained(conn); /* input paused by back-pressure may be waiting */
            }
            settle(conn);
        }
        conn_table_sweep(&clients, clock_now(), settle_after_deadlines);
    }

    conn_table_close_all(&clients, close_client);
    close(epoll_fd);
    close(listen_fd);
    stats_print();
    return 0;
}
