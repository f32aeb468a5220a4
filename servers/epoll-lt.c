/* epoll-lt.c - a single-threaded reactor on level-triggered epoll.
 *
 * How it works: every socket is nonblocking and registered with one epoll instance. The loop asks
 * epoll which sockets are ready, and for each one does what will not block: accept on the listening
 * socket, one read (answering every complete request in it) or a write of pending output. Each
 * connection keeps its own input and output buffers (conn.c), so a partial request or a partial
 * write just waits for the next event. Level-triggered means epoll reports a socket again and again
 * while it stays ready, so the loop may do a bounded amount per event and still miss nothing; the
 * interest set says EPOLLOUT only while output is pending, or an idle socket would wake us forever.
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
 * stalls every connection. Deadlines are swept every half second by walking all connections.
 * See docs/epoll-lt.md. */
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
    uint32_t events; /* what epoll is watching for, to skip needless epoll_ctl calls */
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

/* After an event: close the connection if it is finished, else update what we wait for. */
static void settle(struct conn *conn)
{
    struct client *client = (struct client *)conn;
    uint32_t wanted = (conn_wants_read(conn) ? EPOLLIN : 0) | (conn_wants_write(conn) ? EPOLLOUT : 0);
    if (!conn_is_done(conn) && wanted != client->events) {
        struct epoll_event event = {.events = wanted, .data.fd = conn->fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) == 0)
            client->events = wanted;
        else
            conn_dropped(conn);
    }
    if (conn_is_done(conn))
        close_client(conn);
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
     * read would only say EAGAIN (docs/churn.md). */
    if (accept_hold_us > 0 || server_options.defer_accept > 0) {
        enum conn_read_result read = conn_on_readable(&client->conn);
        if (conn_is_done(&client->conn)) {
            close_client(&client->conn);
            return ACCEPTED_ANSWERED;
        }
        if (read == CONN_DRAINED && client->conn.in_len == 0 && may_hold)
            accept_hold_silent(&hold, &client->silent_in_hold);
    }
    client->events = (conn_wants_read(&client->conn) ? EPOLLIN : 0) | (conn_wants_write(&client->conn) ? EPOLLOUT : 0);
    struct epoll_event event = {.events = client->events, .data.fd = fd};
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
    options_parse(argc, argv, &(struct paradigm){.name = "epoll-lt", .options = options});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %m");
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
                conn_on_readable(conn);
            }
            if ((events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn_wants_write(conn))
                conn_on_writable(conn);
            settle(conn);
        }
        conn_table_sweep(&clients, clock_now(), settle);
    }

    conn_table_close_all(&clients, close_client);
    close(epoll_fd);
    close(listen_fd);
    stats_print();
    return 0;
}
