/* poll.c - a single-threaded reactor on poll(2).
 *
 * How it works: the same loop as epoll-lt.c, but the set of descriptors to watch is an array the
 * server keeps and hands to the kernel in full on every call: one struct pollfd per connection,
 * saying whether it waits for input (POLLIN) or for room to write (POLLOUT). The kernel checks
 * every entry, sleeps until one is ready, and writes back what happened in each entry's revents;
 * the loop then walks the whole array to find the ready ones. A connection's entry changes when
 * what it waits for changes; a closed one is replaced by the last entry, so the array stays dense.
 *
 * Limits: one thread, so one core; GET /sleep stalls everyone, as in epoll-lt. Each call costs
 * time in proportion to the number of connections, ready or not: with 10 000 idle connections
 * beside 16 busy ones, every request pays for a scan of 10 016 entries, in the kernel and here.
 * That is the cost epoll was made to remove. See docs/poll.md. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
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

struct client {
    struct conn conn;
    size_t index; /* of its entry in watched */
};

static struct conn_table clients;
/* watched[0] is the listening socket; then one entry per connection. */
static struct pollfd *watched;
static size_t watched_count, watched_cap;

static void close_client(struct conn *conn)
{
    struct client *client = (struct client *)conn;
    /* The last entry moves into the hole. */
    struct pollfd last = watched[--watched_count];
    if (client->index != watched_count) {
        watched[client->index] = last;
        ((struct client *)conn_table_get(&clients, last.fd))->index = client->index;
    }
    conn_table_remove(&clients, conn->fd);
    conn_release(conn);
    free(client);
}

/* After an event: close the connection if it is finished, else update what we wait for. */
static void settle(struct conn *conn)
{
    if (conn_is_done(conn)) {
        close_client(conn);
        return;
    }
    struct client *client = (struct client *)conn;
    watched[client->index].events = (short)((conn_wants_read(conn) ? POLLIN : 0) |
                                            (conn_wants_write(conn) ? POLLOUT : 0));
}

static bool watch(struct client *client)
{
    if (watched_count == watched_cap) {
        size_t cap = watched_cap * 2;
        struct pollfd *grown = realloc(watched, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        watched = grown;
        watched_cap = cap;
    }
    client->index = watched_count;
    watched[watched_count++] = (struct pollfd){.fd = client->conn.fd, .events = POLLIN};
    return true;
}

static void accept_clients(int listen_fd)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        struct client *client = conn_table_add(&clients, fd, sizeof *client);
        if (client == NULL)
            continue;
        if (!watch(client)) {
            conn_table_remove(&clients, fd);
            conn_dropped(&client->conn);
            conn_release(&client->conn);
            free(client);
            continue;
        }
        /* With TCP_DEFER_ACCEPT the request is already here: answer it now rather than after
         * another poll (docs/churn.md). */
        if (server_options.defer_accept > 0) {
            conn_on_readable(&client->conn);
            settle(&client->conn);
        }
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "poll"});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);

    conn_table_init(&clients);
    watched_cap = 64;
    watched = malloc(watched_cap * sizeof *watched);
    if (watched == NULL)
        die("out of memory for the poll set");
    watched[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    watched_count = 1;
    net_announce(listen_fd);

    while (!server_stopping) {
        int ready = poll(watched, watched_count, conn_table_wait_ms(&clients, clock_now(), WAIT_MS));
        if (ready < 0 && errno != EINTR)
            die("poll: %m");
        /* Backwards, so an entry moved into a closed one's place has been seen already; new
         * connections are accepted after the walk, so none is looked at before it was polled. */
        for (size_t i = watched_count - 1; ready > 0 && i > 0; i--) {
            short revents = watched[i].revents;
            if (revents == 0)
                continue;
            ready--;
            struct conn *conn = conn_table_get(&clients, watched[i].fd);
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (revents & (POLLIN | POLLERR | POLLHUP))
                conn_on_readable(conn);
            if ((revents & (POLLOUT | POLLERR | POLLHUP)) && conn_wants_write(conn))
                conn_on_writable(conn);
            settle(conn);
        }
        if (watched[0].revents & POLLIN)
            accept_clients(listen_fd);
        conn_table_sweep(&clients, clock_now(), settle);
    }

    conn_table_close_all(&clients, close_client);
    free(watched);
    close(listen_fd);
    stats_print();
    return 0;
}
