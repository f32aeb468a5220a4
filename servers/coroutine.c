/* coroutine.c - one thread, one coroutine per connection, on an epoll loop.
 *
 * How it works: each connection's code is the blocking server's loop (serve_connection: read,
 * answer, write, until the client is done), run in a coroutine of its own. Its sockets are
 * nonblocking; where a blocking server would block, the coroutine registers what it waits for
 * with epoll and yields to the loop (wait_for), and the loop resumes it when epoll says the
 * socket is ready. So the code reads like thread-per-connection, while the structure underneath
 * is epoll-lt's: one thread, one epoll set, no locks. A switch costs a few nanoseconds
 * (common/coro.c), a suspended connection one small stack (--stack-kb, with a guard page).
 *
 * A new connection is run at once, before it is registered with epoll: when its request is already
 * there it is answered without an epoll_ctl, and only a connection that would block joins the
 * interest set.
 *
 * Limits: one thread, so one core; whatever blocks the thread (GET /sleep, a long GET /cpu) stalls
 * every connection, as in epoll-lt. A stack per connection costs memory that a callback's state
 * does not (docs/coroutine.md). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/coro.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_EVENTS 256
#define MAX_ACCEPTS_PER_EVENT 64
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

static int stack_kb = 64;
static const struct paradigm_option coroutine_options[] = {
    {"stack-kb", "N", "stack of each connection's coroutine, KiB (default 64)", &stack_kb, 16, 65536, NULL},
    {0},
};

struct client {
    struct conn conn;
    struct coro *coro;
    uint32_t events;  /* what epoll watches for; 0: not registered yet */
    bool waiting;     /* suspended in wait_for(), to be resumed by the loop */
};

static struct conn_table clients;
static int epoll_fd;

/* --- the connection's side: blocking code that yields ------------------------------------------ */

/* Waits (yields to the loop) until the socket is ready for `events`, or a deadline needs this
 * connection's attention. */
static void wait_for(struct client *client, uint32_t events)
{
    if (events != client->events) {
        struct epoll_event event = {.events = events, .data.fd = client->conn.fd};
        int op = client->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(epoll_fd, op, client->conn.fd, &event) != 0) {
            conn_dropped(&client->conn);
            return;
        }
        client->events = events;
    }
    client->waiting = true;
    coro_yield();
    client->waiting = false;
}

/* The coroutine's body: the blocking server's loop. One read answers every complete request in
 * it (and writes the answers); then, as a level-triggered loop would, it waits for the next input
 * instead of reading again to hear EAGAIN. */
static void serve_connection(void *arg)
{
    struct client *client = arg;
    struct conn *conn = &client->conn;
    while (!conn_is_done(conn) && !server_stopping) {
        if (conn_wants_write(conn)) {
            conn_on_writable(conn);
            if (conn_wants_write(conn) && !conn_is_done(conn))
                wait_for(client, EPOLLOUT);
        } else {
            if (conn_wants_read(conn))
                conn_on_readable(conn);
            if (!conn_is_done(conn) && !conn_wants_write(conn))
                wait_for(client, EPOLLIN);
        }
    }
}

/* --- the loop's side ------------------------------------------------------------------------------ */

static void close_client(struct conn *conn)
{
    struct client *client = (struct client *)conn;
    coro_destroy(client->coro);
    conn_table_remove(&clients, conn->fd);
    conn_release(conn); /* closing the descriptor also removes it from epoll */
    free(client);
}

/* Lets the connection's coroutine run until it waits again; closes the connection once it is
 * finished. */
static void run(struct client *client)
{
    if (coro_resume(client->coro))
        close_client(&client->conn);
}

/* After the deadline sweep: a connection a deadline changed (a 408 to send, a linger or send
 * timeout that ended it) is resumed; the others go on waiting for their sockets. */
static void settle(struct conn *conn)
{
    struct client *client = (struct client *)conn;
    bool output_waits = conn_wants_write(conn) && !(client->events & EPOLLOUT);
    if (client->waiting && (conn_is_done(conn) || output_waits))
        run(client);
}

static void accept_clients(int listen_fd)
{
    size_t stack_bytes = (size_t)stack_kb * 1024;
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        struct client *client = conn_table_add(&clients, fd, sizeof *client);
        if (client == NULL)
            continue;
        client->coro = coro_create(stack_bytes, serve_connection, client);
        if (client->coro == NULL) {
            conn_dropped(&client->conn);
            conn_table_remove(&clients, fd);
            conn_release(&client->conn);
            free(client);
            continue;
        }
        run(client);
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "coroutine", .options = coroutine_options});
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
            struct client *client = (struct client *)conn_table_get(&clients, fd);
            if (client != NULL && client->waiting) /* NULL: closed earlier in this batch */
                run(client);
        }
        conn_table_sweep(&clients, clock_now(), settle);
    }

    conn_table_close_all(&clients, close_client);
    coro_free_spares();
    close(epoll_fd);
    close(listen_fd);
    stats_print();
    return 0;
}
