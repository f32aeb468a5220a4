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
 * Limits: one thread, so one core. Anything that blocks the thread (GET /sleep, a long GET /cpu)
 * stalls every connection. Deadlines are swept every half second by walking all connections.
 * See docs/epoll-lt.md. */
#include <errno.h>
#include <stdbool.h>
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

struct client {
    struct conn conn;
    uint32_t events; /* what epoll is watching for, to skip needless epoll_ctl calls */
};

static struct conn_table clients;
static int epoll_fd;

static void close_client(struct conn *conn)
{
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

/* Accepts one connection; true if it was answered and closed at once (see accept_clients). */
static bool accept_client(int listen_fd)
{
    int fd = net_accept(listen_fd, true);
    if (fd < 0)
        return false;
    struct client *client = conn_table_add(&clients, fd, sizeof *client);
    if (client == NULL)
        return false;
    /* With TCP_DEFER_ACCEPT the request is already here: answer it now, and a connection that
     * is then finished never enters the interest set. Without it the request usually comes a
     * moment after the accept, so the read would only say EAGAIN (docs/churn.md). */
    if (server_options.defer_accept > 0) {
        conn_on_readable(&client->conn);
        if (conn_is_done(&client->conn)) {
            close_client(&client->conn);
            return true;
        }
    }
    client->events = (conn_wants_read(&client->conn) ? EPOLLIN : 0) | (conn_wants_write(&client->conn) ? EPOLLOUT : 0);
    struct epoll_event event = {.events = client->events, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        conn_dropped(&client->conn);
        close_client(&client->conn);
    }
    return false;
}

/* One accept per report of the listening socket: level-triggered epoll reports it again while
 * connections wait, and an accept that finds none costs almost as much as one that finds one (the
 * kernel makes the new socket and file before it looks at the queue). Accepting until EAGAIN cost
 * 0.65 such empty accepts per connection in churn. Under TCP_DEFER_ACCEPT a connection answered
 * and closed within its accept is a sign that more have come meanwhile: then the next accept is
 * cheaper than the next turn of the loop, up to a bound that keeps the other connections' turn
 * near (docs/churn.md). */
static void accept_clients(int listen_fd)
{
    for (int accepted = 0; accepted < MAX_ACCEPTS_PER_REPORT; accepted++)
        if (!accept_client(listen_fd))
            return;
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "epoll-lt"});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %m");
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
                conn_on_readable(conn);
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
