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
 * Limits: one thread, so one core. Anything that blocks the thread (GET /sleep, a long GET /cpu)
 * stalls every connection; so does a client that pipelines without pause, read to the end each
 * time. Deadlines are swept every half second by walking all connections.
 * See docs/epoll-et.md. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_EVENTS 256
#define MAX_ACCEPTS_PER_REPORT 16
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

static struct conn_table clients;
static int epoll_fd;

static void close_client(struct conn *conn)
{
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

/* Accepts one connection; true if it was answered and closed at once (see accept_clients). */
static bool accept_client(int listen_fd)
{
    int fd = net_accept(listen_fd, true);
    if (fd < 0)
        return false;
    struct conn *conn = conn_table_add(&clients, fd, sizeof *conn);
    if (conn == NULL)
        return false;
    /* With TCP_DEFER_ACCEPT the request is already here: answer it now, and a finished connection
     * never enters the interest set. Registering afterwards is safe: an edge-triggered ADD reports
     * what is already ready. */
    if (server_options.defer_accept > 0) {
        read_until_drained(conn);
        if (conn_is_done(conn)) {
            close_client(conn);
            return true;
        }
    }
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        conn_dropped(conn);
        close_client(conn);
    }
    return false;
}

/* One accept per report of the listening socket: level-triggered epoll reports it again while
 * connections wait, and an accept that finds none costs almost as much as one that finds one (the
 * kernel makes the new socket and file before it looks at the queue). Under TCP_DEFER_ACCEPT a
 * connection answered and closed within its accept is a sign that more have come meanwhile:
 * then the next accept is cheaper than the next turn of the loop, up to a bound (docs/churn.md). */
static void accept_clients(int listen_fd)
{
    for (int accepted = 0; accepted < MAX_ACCEPTS_PER_REPORT; accepted++)
        if (!accept_client(listen_fd))
            return;
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "epoll-et"});
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
    conn_table_init(&clients);
    net_announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, conn_table_wait_ms(&clients, clock_now(), WAIT_MS));
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_clients(listen_fd);
                continue;
            }
            struct conn *conn = conn_table_get(&clients, fd);
            if (conn == NULL)
                continue; /* closed earlier in this batch */
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                read_until_drained(conn);
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
