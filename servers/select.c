/* select.c - a single-threaded reactor on select(2).
 *
 * How it works: the same loop as epoll-lt.c and poll.c, with the oldest readiness interface. The
 * interest set is two bitmaps (fd_set), one bit per descriptor number, for "tell me when readable"
 * and "when writable". select overwrites them with the answer, so the loop rebuilds them from the
 * connection table before every call, and then tests the bit of every descriptor up to the highest
 * one to find the ready connections.
 *
 * Limits: one thread, so one core; GET /sleep stalls everyone. Each call costs time in proportion
 * to the highest descriptor number, ready or not, in the kernel and here. And an fd_set has room
 * for FD_SETSIZE (1024) descriptors only: setting a bit for a higher number writes past the end of
 * the bitmap, corrupting memory. So a connection whose descriptor is FD_SETSIZE or more is answered
 * 503 and closed at once (counted as refused): with 10 000 idle connections this server serves
 * about 1 000 and refuses the rest. See docs/select.md. */
#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_ACCEPTS_PER_EVENT 64
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

static struct conn_table clients;

static void close_client(struct conn *conn)
{
    conn_table_remove(&clients, conn->fd);
    conn_release(conn);
    free(conn);
}

/* After an event: close the connection if it is finished. What it waits for is read from the
 * connection itself when the next fd_sets are built. */
static void settle(struct conn *conn)
{
    if (conn_is_done(conn))
        close_client(conn);
}

static void accept_clients(int listen_fd)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        if (fd >= FD_SETSIZE) {
            conn_refuse(fd, 503); /* FD_SET would write past the end of the bitmap */
            continue;
        }
        struct conn *conn = conn_table_add(&clients, fd, sizeof *conn); /* NULL: dropped, and counted */
        /* With TCP_DEFER_ACCEPT the request is already here: answer it now rather than after
         * another select (docs/churn.md). */
        if (conn != NULL && server_options.defer_accept > 0) {
            conn_on_readable(conn);
            settle(conn);
        }
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "select"});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);
    if (listen_fd >= FD_SETSIZE)
        die("the listening socket is descriptor %d, beyond FD_SETSIZE (%d)", listen_fd, FD_SETSIZE);
    conn_table_init(&clients);
    net_announce(listen_fd);

    while (!server_stopping) {
        fd_set readable, writable;
        FD_ZERO(&readable);
        FD_ZERO(&writable);
        FD_SET(listen_fd, &readable);
        int highest = listen_fd;
        for (int fd = 0; fd < FD_SETSIZE && (size_t)fd < clients.cap; fd++) {
            struct conn *conn = conn_table_get(&clients, fd);
            if (conn == NULL)
                continue;
            if (conn_wants_read(conn))
                FD_SET(fd, &readable);
            if (conn_wants_write(conn))
                FD_SET(fd, &writable);
            highest = fd > highest ? fd : highest;
        }
        int wait_ms = conn_table_wait_ms(&clients, clock_now(), WAIT_MS);
        struct timeval timeout = {.tv_sec = wait_ms / 1000, .tv_usec = wait_ms % 1000 * 1000};
        int ready = select(highest + 1, &readable, &writable, NULL, &timeout);
        if (ready < 0 && errno != EINTR)
            die("select: %m");
        for (int fd = 0; ready > 0 && fd <= highest; fd++) {
            bool can_read = FD_ISSET(fd, &readable), can_write = FD_ISSET(fd, &writable);
            if (!can_read && !can_write)
                continue;
            ready -= can_read + can_write;
            if (fd == listen_fd) {
                accept_clients(listen_fd);
                continue;
            }
            struct conn *conn = conn_table_get(&clients, fd);
            if (conn == NULL)
                continue; /* a descriptor accepted during this walk, not yet selected */
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (can_read)
                conn_on_readable(conn);
            if (can_write && conn_wants_write(conn))
                conn_on_writable(conn);
            settle(conn);
        }
        conn_table_sweep(&clients, clock_now(), settle);
    }

    conn_table_close_all(&clients, close_client);
    close(listen_fd);
    stats_print();
    return 0;
}
