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
 * stalls every connection. Deadlines are swept once a second by walking all connections.
 * See docs/epoll-lt.md. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_EVENTS 256
#define MAX_ACCEPTS_PER_EVENT 64
#define WAIT_MS 250 /* so SIGTERM and the deadline sweep are never more than this late */

struct client {
    struct conn conn;
    uint32_t events; /* what epoll is watching for, to skip needless epoll_ctl calls */
};

/* Clients indexed by descriptor: the kernel hands out the lowest free number, so this stays dense. */
static struct client **clients;
static size_t clients_cap;
static int epoll_fd;

static void watch(struct client *client)
{
    uint32_t wanted = (conn_wants_read(&client->conn) ? EPOLLIN : 0) |
                      (conn_wants_write(&client->conn) ? EPOLLOUT : 0);
    if (wanted == client->events)
        return;
    struct epoll_event event = {.events = wanted, .data.fd = client->conn.fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, client->conn.fd, &event) != 0)
        die("epoll_ctl(MOD): %m");
    client->events = wanted;
}

static void close_client(struct client *client)
{
    clients[client->conn.fd] = NULL;
    conn_release(&client->conn); /* closing the descriptor also removes it from epoll */
    free(client);
}

/* After an event: close the connection if it is finished, else update what we wait for. */
static void settle(struct client *client)
{
    if (conn_is_done(&client->conn))
        close_client(client);
    else
        watch(client);
}

static void accept_clients(int listen_fd)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        if ((size_t)fd >= clients_cap) {
            size_t new_cap = clients_cap * 2 > (size_t)fd + 1 ? clients_cap * 2 : (size_t)fd + 1;
            struct client **grown = realloc(clients, new_cap * sizeof *grown);
            if (grown == NULL)
                die("out of memory for %zu clients", new_cap);
            for (size_t slot = clients_cap; slot < new_cap; slot++)
                grown[slot] = NULL;
            clients = grown;
            clients_cap = new_cap;
        }
        struct client *client = malloc(sizeof *client);
        if (client == NULL)
            die("out of memory for a client");
        conn_init(&client->conn, fd);
        client->events = EPOLLIN;
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
            die("epoll_ctl(ADD): %m");
        clients[fd] = client;
    }
}

static void sweep_deadlines(double now)
{
    for (size_t fd = 0; fd < clients_cap; fd++) {
        if (clients[fd] == NULL)
            continue;
        conn_check_deadlines(&clients[fd]->conn, now);
        settle(clients[fd]);
    }
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
    struct rlimit files;
    clients_cap = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 1u << 20 ? files.rlim_cur : 1024;
    clients = calloc(clients_cap, sizeof *clients);
    if (clients == NULL)
        die("out of memory for %zu clients", clients_cap);
    net_announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    double next_sweep = clock_now() + 1;
    while (!server_stopping) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, WAIT_MS);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_clients(listen_fd);
                continue;
            }
            struct client *client = clients[fd];
            /* Errors and hang-ups are reported as readable: the read then says what happened. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_on_readable(&client->conn);
            if ((events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn_wants_write(&client->conn))
                conn_on_writable(&client->conn);
            settle(client);
        }
        double now = clock_now();
        if (now >= next_sweep) {
            sweep_deadlines(now);
            next_sweep = now + 1;
        }
    }

    for (size_t fd = 0; fd < clients_cap; fd++)
        if (clients[fd] != NULL)
            close_client(clients[fd]);
    free(clients);
    close(epoll_fd);
    close(listen_fd);
    stats_print();
    return 0;
}
