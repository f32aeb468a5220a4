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
 * later. So after accepting one that has not spoken, the loop stops watching the listening socket
 * until it speaks (or --accept-hold passes): new connections wait in the listen queue meanwhile,
 * as they do for the iterative server, and when the loop takes them their requests are there.
 * They are answered within their accept and never enter the interest set, and the loop is woken
 * once where it would have been woken for every handshake and every request (docs/churn.md).
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
    unsigned silent_in_hold; /* the hold this connection was accepted in, not having spoken; 0: none */
};

static struct conn_table clients;
static int epoll_fd;
static int accept_hold_us = 10000;

/* The listening socket is out of the interest set while `silent` connections accepted in this
 * hold have not spoken, until `until`. A hold that runs out was waiting for clients that are slow
 * to speak (idle ones, in c10k): they stop counting, so they cannot hold the listener forever, and
 * no new hold begins before `none_before`, so a stream of them is accepted at the usual rate. */
#define HOLDS_SKIPPED_AFTER_ONE_RUNS_OUT 10
static struct {
    bool on;
    unsigned number;
    int silent;
    double until;
    double none_before;
} hold = {.number = 1};

static void watch_listener(int listen_fd, bool watched)
{
    struct epoll_event event = {.events = watched ? EPOLLIN : 0, .data.fd = listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &event) != 0)
        die("epoll_ctl(MOD listen): %m");
    hold.on = !watched;
}

/* The connection has sent something (or is gone): it no longer holds the listener. */
static void spoke(struct client *client)
{
    if (client->silent_in_hold == hold.number)
        hold.silent--;
    client->silent_in_hold = 0;
}

static void close_client(struct conn *conn)
{
    spoke((struct client *)conn);
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

enum accepted { NONE_WAITING, ANSWERED, REGISTERED };

/* Accepts one connection: answered and closed at once, or registered to wait for its turn. One
 * that has not spoken holds the listener if `may_hold`. */
static enum accepted accept_client(int listen_fd, bool may_hold)
{
    int fd = net_accept(listen_fd, true);
    if (fd < 0)
        return NONE_WAITING;
    struct client *client = conn_table_add(&clients, fd, sizeof *client);
    if (client == NULL)
        return NONE_WAITING; /* out of memory: the table closed it; accept no more this turn */
    /* Under the hold (or TCP_DEFER_ACCEPT) the request is usually here already: answer it now,
     * and a connection that is then finished never enters the interest set. Without either, the
     * read would only say EAGAIN (docs/churn.md). */
    if (accept_hold_us > 0 || server_options.defer_accept > 0) {
        enum conn_read_result read = conn_on_readable(&client->conn);
        if (conn_is_done(&client->conn)) {
            close_client(&client->conn);
            return ANSWERED;
        }
        if (read == CONN_DRAINED && client->conn.in_len == 0 && may_hold) {
            client->silent_in_hold = hold.number;
            hold.silent++;
        }
    }
    client->events = (conn_wants_read(&client->conn) ? EPOLLIN : 0) | (conn_wants_write(&client->conn) ? EPOLLOUT : 0);
    struct epoll_event event = {.events = client->events, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        conn_dropped(&client->conn);
        close_client(&client->conn);
    }
    return REGISTERED;
}

/* One accept per report of the listening socket: level-triggered epoll reports it again while
 * connections wait, and an accept that finds none costs almost as much as one that finds one (the
 * kernel makes the new socket and file before it looks at the queue). Accepting until EAGAIN cost
 * 0.65 such empty accepts per connection in churn. A connection answered and closed within its
 * accept is a sign that more have come meanwhile: then the next accept is cheaper than the next
 * turn of the loop, up to a bound that keeps the other connections' turn near. After a hold that
 * ran out the queue may have filled, and waiting again would only let it fill more: then take
 * everyone waiting, holding for none of them (docs/churn.md). */
static void accept_clients(int listen_fd, bool after_hold)
{
    int limit = after_hold ? server_options.backlog : MAX_ACCEPTS_PER_REPORT;
    bool may_hold = accept_hold_us > 0 && !after_hold && clock_now() >= hold.none_before;
    for (int accepted = 0; accepted < limit; accepted++) {
        enum accepted result = accept_client(listen_fd, may_hold);
        if (result == NONE_WAITING || (result == REGISTERED && !after_hold))
            break;
    }
    if (hold.silent > 0) {
        if (!hold.on)
            watch_listener(listen_fd, false);
        hold.until = clock_now_precise() + accept_hold_us / 1e6;
    }
}

/* Before waiting: ends the hold once its connections have spoken or its time is up; else shortens
 * the wait to its end. */
static int check_hold(int listen_fd, int wait_ms)
{
    if (hold.on && hold.silent == 0) {
        /* They spoke, and the next connections have likely come meanwhile, and spoken too: take
         * them without asking epoll first. One of them that is silent holds the listener again. */
        accept_clients(listen_fd, false);
        if (hold.silent == 0)
            watch_listener(listen_fd, true);
    }
    if (!hold.on)
        return wait_ms;
    double now = clock_now_precise();
    if (now < hold.until) {
        int left_ms = (int)((hold.until - now) * 1000) + 1;
        return left_ms < wait_ms ? left_ms : wait_ms;
    }
    hold.none_before = now + HOLDS_SKIPPED_AFTER_ONE_RUNS_OUT * accept_hold_us / 1e6;
    if (++hold.number == 0)
        hold.number = 1; /* 0 means no hold */
    hold.silent = 0;
    watch_listener(listen_fd, true);
    accept_clients(listen_fd, true);
    return wait_ms;
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
    conn_table_init(&clients);
    net_announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        int wait_ms = check_hold(listen_fd, conn_table_wait_ms(&clients, clock_now(), WAIT_MS));
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, wait_ms);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_clients(listen_fd, false);
                continue;
            }
            struct conn *conn = conn_table_get(&clients, fd);
            if (conn == NULL)
                continue; /* closed earlier in this batch */
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                spoke((struct client *)conn);
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
