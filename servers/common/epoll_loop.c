/* epoll_loop.c - see epoll_loop.h. */
#include "epoll_loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "stats.h"

struct loop_client {
    struct conn conn;
    struct epoll_loop *loop;
    uint32_t events; /* what epoll is watching for, to skip needless epoll_ctl calls */
    bool registered;
};

void epoll_loop_init(struct epoll_loop *loop)
{
    *loop = (struct epoll_loop){.epoll_fd = epoll_create1(EPOLL_CLOEXEC)};
    if (loop->epoll_fd < 0)
        die("epoll_create1: %m");
    conn_table_init(&loop->clients);
}

void epoll_loop_watch(struct epoll_loop *loop, int fd, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.fd = fd};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
        die("epoll_ctl(ADD %d): %m", fd);
}

int epoll_loop_wait(struct epoll_loop *loop, struct epoll_event *events, int max_events, int max_ms)
{
    int ready = epoll_wait(loop->epoll_fd, events, max_events, conn_table_wait_ms(&loop->clients, clock_now(), max_ms));
    if (ready < 0) {
        if (errno != EINTR)
            die("epoll_wait: %m");
        return 0;
    }
    if (ready > 0)
        loop->counts.wakeups++;
    return ready;
}

static void close_client(struct conn *conn)
{
    struct loop_client *client = (struct loop_client *)conn;
    conn_table_remove(&client->loop->clients, conn->fd);
    conn_release(conn); /* closing the descriptor also removes it from epoll */
    free(client);
}

static bool set_interest(struct loop_client *client, uint32_t wanted)
{
    struct epoll_event event = {.events = wanted, .data.fd = client->conn.fd};
    int op = client->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(client->loop->epoll_fd, op, client->conn.fd, &event) != 0)
        return false;
    client->registered = true;
    client->events = wanted;
    return true;
}

/* After an event: close the connection if it is finished, else update what we wait for. */
static void settle(struct conn *conn)
{
    struct loop_client *client = (struct loop_client *)conn;
    if (conn->job != NULL) {
        /* Offloaded: nothing to do until the job is back. Not even a reset: epoll would report
         * its hang-up again on every wait for as long as the job runs. */
        if (client->registered && epoll_ctl(client->loop->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL) == 0)
            client->registered = false;
        return;
    }
    uint32_t wanted = (conn_wants_read(conn) ? EPOLLIN : 0) | (conn_wants_write(conn) ? EPOLLOUT : 0);
    if (!conn_is_done(conn) && (wanted != client->events || !client->registered) && !set_interest(client, wanted))
        conn_dropped(conn);
    if (conn_is_done(conn))
        close_client(conn);
}

struct conn *epoll_loop_add(struct epoll_loop *loop, int fd)
{
    loop->counts.connections++;
    struct loop_client *client = conn_table_add(&loop->clients, fd, sizeof *client);
    if (client == NULL)
        return NULL;
    client->loop = loop;
    client->conn.offload = loop->offload;
    /* With TCP_DEFER_ACCEPT the request is already here: answer it now; settle registers the
     * connection only if it is not finished (docs/churn.md). */
    if (server_options.defer_accept > 0) {
        conn_on_readable(&client->conn);
        bool done = conn_is_done(&client->conn);
        settle(&client->conn);
        return done ? NULL : &client->conn;
    }
    if (!set_interest(client, EPOLLIN)) {
        conn_dropped(&client->conn);
        close_client(&client->conn);
        return NULL;
    }
    return &client->conn;
}

/* One accept per report: the listener is level-triggered and reported again while connections
 * wait, and an accept that finds none costs almost as much as one that finds one (docs/churn.md). */
int epoll_loop_accept(struct epoll_loop *loop, int listen_fd)
{
    loop->counts.listen_events++;
    int fd = net_accept(listen_fd, true);
    if (fd < 0) {
        if (errno == EAGAIN)
            loop->counts.empty_accepts++;
        return 0;
    }
    loop->counts.accepts++;
    epoll_loop_add(loop, fd);
    return 1;
}

bool epoll_loop_handle(struct epoll_loop *loop, const struct epoll_event *event)
{
    struct conn *conn = conn_table_get(&loop->clients, event->data.fd);
    if (conn == NULL)
        return false;
    /* Errors and hang-ups are reported as readable: the read then says what happened. */
    if (event->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_on_readable(conn);
    if ((event->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn_wants_write(conn))
        conn_on_writable(conn);
    settle(conn);
    return true;
}

void epoll_loop_resume(struct conn *conn)
{
    if (conn_wants_write(conn))
        conn_on_writable(conn);
    settle(conn);
}

void epoll_loop_sweep(struct epoll_loop *loop)
{
    conn_table_sweep(&loop->clients, clock_now(), settle);
}

void epoll_loop_close(struct epoll_loop *loop)
{
    conn_table_close_all(&loop->clients, close_client);
    if (close(loop->epoll_fd) != 0)
        log_error("close: %m");
    loop->epoll_fd = -1;
    loop->counts.requests = stats_local[STAT_REQUESTS];
}

void loop_counts_print(int index, const struct loop_counts *counts)
{
    fprintf(stderr, "loop %d: wakeups=%llu listen_events=%llu accepts=%llu empty_accepts=%llu connections=%llu requests=%llu\n",
            index, (unsigned long long)counts->wakeups, (unsigned long long)counts->listen_events,
            (unsigned long long)counts->accepts, (unsigned long long)counts->empty_accepts,
            (unsigned long long)counts->connections, (unsigned long long)counts->requests);
}
