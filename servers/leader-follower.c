/* leader-follower.c - N threads take turns waiting on one epoll set; the one waiting leads.
 *
 * How it works: all connections and the listening socket are in one epoll set, each registered
 * with EPOLLONESHOT, so an event is given to one thread and the descriptor then reports nothing
 * more until it is re-armed. One thread at a time, the leader, waits in epoll_wait for a single
 * event; the others (followers) wait for the leadership. The leader takes the event, promotes a
 * follower to leader, and only then handles the event (a read and the answers, or the accepts),
 * re-arms the descriptor and goes back to follow. This is the Leader/Followers pattern of Schmidt
 * et al. (ACE's TP_Reactor): no queue between an event and the thread that handles it, and the
 * thread that saw an event is the one that handles it, with its data still in its cache.
 *
 *     followers: T2 T3 ...    wait for the leadership (a mutex and a condition variable)
 *     leader:    T1           epoll_wait(one event) -> promote T2 -> handle -> re-arm -> follow
 *
 * Ownership: a connection belongs to the thread that took its event until that thread re-arms it.
 * The deadline sweep, done by the leader every half second before it waits, touches only
 * connections it can claim (an atomic flag), so it never races a thread that is handling one.
 *
 * Limits: every event costs a hand-over of the leadership (a lock and a condition-variable wake-up
 * of a follower, often a context switch), which a one-loop server does not pay; one epoll set is
 * shared state for all threads. A /sleep blocks only the thread handling it, while the others
 * lead in turn, until every thread is blocked. See docs/leader-follower.md. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/epoll_loop.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define MAX_ACCEPTS_PER_EVENT 64
#define WAIT_MS 250 /* so SIGTERM is never more than this late */

struct client {
    struct conn conn;
    atomic_bool owned; /* a thread is handling it (or the sweep is): its event is not re-armed */
};

static int epoll_fd, listen_fd;
static char listener_tag; /* data.ptr of the listening socket's events */

/* Every connection, for the sweep and the exit; its slots are changed under table_lock only. */
static struct conn_table clients;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t leader_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t leader_gone;
static bool has_leader;

static struct loop_counts *thread_counts;

/* Waits until no thread leads, and leads; false once the server stops. */
static bool become_leader(void)
{
    pthread_mutex_lock(&leader_lock);
    while (has_leader && !server_stopping) {
        /* Timed: the stop flag is set by a signal handler, which cannot signal the condition. */
        struct timespec tick = threads_deadline(WAIT_MS / 1000.0);
        pthread_cond_timedwait(&leader_gone, &leader_lock, &tick);
    }
    bool leads = !server_stopping;
    if (leads)
        has_leader = true;
    pthread_mutex_unlock(&leader_lock);
    return leads;
}

static void promote_follower(void)
{
    pthread_mutex_lock(&leader_lock);
    has_leader = false;
    pthread_cond_signal(&leader_gone);
    pthread_mutex_unlock(&leader_lock);
}

/* Takes a connection whose event the leader got. The thread that had it before may have re-armed
 * it and not yet let go: that takes a few instructions, so waiting for it is a short spin. */
static void claim(struct client *client)
{
    bool free_now = false;
    while (!atomic_compare_exchange_weak(&client->owned, &free_now, true)) {
        free_now = false;
        sched_yield();
    }
}

static void close_client(struct client *client, bool table_locked)
{
    if (!table_locked)
        pthread_mutex_lock(&table_lock);
    conn_table_remove(&clients, client->conn.fd);
    if (!table_locked)
        pthread_mutex_unlock(&table_lock);
    conn_release(&client->conn); /* closing the descriptor also removes it from epoll */
    free(client);
}

/* Closes the connection if it is finished, else re-arms it for what it waits for, then lets go
 * of it: after the re-arm another thread may take its next event at once. */
static void settle(struct client *client, bool table_locked)
{
    struct conn *conn = &client->conn;
    if (!conn_is_done(conn)) {
        uint32_t wanted = (conn_wants_read(conn) ? EPOLLIN : 0) | (conn_wants_write(conn) ? EPOLLOUT : 0);
        struct epoll_event event = {.events = wanted | EPOLLONESHOT, .data.ptr = client};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) != 0)
            conn_dropped(conn);
    }
    if (conn_is_done(conn))
        close_client(client, table_locked);
    else
        atomic_store(&client->owned, false);
}

static void accept_clients(struct loop_counts *counts)
{
    counts->listen_events++;
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0) {
            if (i == 0 && errno == EAGAIN)
                counts->empty_accepts++;
            break;
        }
        counts->accepts++;
        counts->connections++;
        pthread_mutex_lock(&table_lock);
        struct client *client = conn_table_add(&clients, fd, sizeof *client);
        if (client != NULL)
            atomic_init(&client->owned, true); /* ours until registered: the sweep skips it */
        pthread_mutex_unlock(&table_lock);
        if (client == NULL)
            continue;
        struct epoll_event event = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = client};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            conn_dropped(&client->conn);
            close_client(client, false);
            continue;
        }
        atomic_store(&client->owned, false);
    }
    struct epoll_event rearm = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &listener_tag};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &rearm) != 0)
        die("epoll_ctl(MOD listen): %m");
}

static void handle_client(struct client *client, uint32_t events)
{
    struct conn *conn = &client->conn;
    /* Errors and hang-ups are reported as readable: the read then says what happened. */
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_on_readable(conn);
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn_wants_write(conn))
        conn_on_writable(conn);
    settle(client, false);
}

/* The leader's deadline check, every SWEEP_INTERVAL_S, over the connections no thread handles. */
static void sweep_deadlines(void)
{
    double now = clock_now();
    if (now < clients.next_sweep)
        return;
    pthread_mutex_lock(&table_lock);
    clients.next_sweep = now + SWEEP_INTERVAL_S;
    for (size_t fd = 0; fd < clients.cap; fd++) {
        struct client *client = (struct client *)clients.slots[fd];
        bool free_now = false;
        if (client == NULL || !atomic_compare_exchange_strong(&client->owned, &free_now, true))
            continue;
        conn_check_deadlines(&client->conn, now);
        if (!conn_is_done(&client->conn) && !conn_wants_write(&client->conn)) {
            atomic_store(&client->owned, false); /* unchanged, and still armed as it was */
            continue;
        }
        conn_on_writable(&client->conn); /* a 408 it just answered, or nothing if it is done */
        settle(client, true);
    }
    pthread_mutex_unlock(&table_lock);
}

static void run_thread(int index, void *arg)
{
    (void)arg;
    struct loop_counts *counts = &thread_counts[index];
    while (become_leader()) {
        sweep_deadlines();
        struct epoll_event event;
        int ready = epoll_wait(epoll_fd, &event, 1, conn_table_wait_ms(&clients, clock_now(), WAIT_MS));
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        struct client *client = NULL;
        if (ready > 0) {
            counts->wakeups++;
            if (event.data.ptr != &listener_tag) {
                client = event.data.ptr;
                claim(client); /* before the promotion: the next leader's sweep must see it owned */
            }
        }
        promote_follower();
        if (ready <= 0)
            continue;
        if (client == NULL)
            accept_clients(counts);
        else
            handle_client(client, event.events);
    }
    counts->requests = stats_local[STAT_REQUESTS];
}

static void close_remaining(struct conn *conn)
{
    close_client((struct client *)conn, true);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "leader-follower", .flags = OPTIONS_THREADS});
    signals_install();
    stats_init();
    threads_cond_init(&leader_gone);
    listen_fd = net_listen(false, true);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %m");
    struct epoll_event listen_event = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &listener_tag};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0)
        die("epoll_ctl(ADD listen): %m");
    conn_table_init(&clients);
    int count = server_options.threads;
    thread_counts = calloc((size_t)count, sizeof *thread_counts);
    if (thread_counts == NULL)
        die("out of memory for %d threads", count);
    struct thread_group group = {.count = count, .run = run_thread};
    thread_group_start(&group);
    net_announce(listen_fd);

    signals_wait_stop();

    thread_group_join(&group);
    conn_table_close_all(&clients, close_remaining);
    for (int i = 0; i < count; i++)
        loop_counts_print(i, &thread_counts[i]);
    free(thread_counts);
    close(epoll_fd);
    close(listen_fd);
    pthread_cond_destroy(&leader_gone);
    stats_print();
    return 0;
}
