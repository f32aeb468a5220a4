/* actor.c - actors on lock-free rings: an acceptor, N connection actors, M worker actors.
 *
 * How it works: an actor is a thread that owns some state and is touched by nobody else; the
 * others can only send it messages. The acceptor (the main thread) owns the listening socket and
 * sends each new connection to a connection actor in turn (MSG_CONNECTION). A connection actor
 * (--threads of them) owns its connections and their epoll loop; a request that would block
 * (/sleep, /cpu) becomes a job sent to a worker actor (MSG_JOB, --workers of them), which runs it
 * and sends it back (MSG_DONE) to the connection actor it came from, which answers. MSG_STOP ends
 * an actor. No lock anywhere: every message travels through a mailbox (common/mailbox.c), one
 * Disruptor-style ring per sender (common/ring.h: pre-allocated slots, a sequence number per side,
 * the receiver taking every published slot in one batch), and a sleeping actor is woken by an
 * eventfd that a sender writes only when the actor said it is about to sleep.
 *
 *                  MSG_CONNECTION              MSG_JOB                 the worker runs it
 *   listen -> acceptor ----------> connection actor k ----------> worker actor w
 *                                  (epoll loop, its conns) <------
 *                                                        MSG_DONE: answer the request
 *
 * Limits: a worker runs its jobs one after another, so a job waits behind the /sleep before it on
 * the same worker even when another worker is idle (jobs go round-robin); the rings are bounded,
 * and a full one is answered by the sender (a connection refused with 503, a job kept until there
 * is room). See docs/actor.md. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/epoll_loop.h"
#include "common/log.h"
#include "common/mailbox.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define MAX_EVENTS 256
#define WAIT_MS 250     /* so SIGTERM is never more than this late */
#ifndef RING_SLOTS
#define RING_SLOTS 1024 /* per sender, in every mailbox (-DRING_SLOTS=4 tries the full-ring paths) */
#endif

enum message_kind { MSG_CONNECTION, MSG_JOB, MSG_DONE, MSG_STOP };

/* A connection actor's mailbox has one sender slot for the acceptor (0) and one per worker
 * (1 + w); a worker's, one per connection actor (k) and one for the main thread (the last). */
struct connection_actor {
    struct epoll_loop loop;
    struct mailbox inbox;
    int index;
    int next_worker;     /* round-robin over the workers */
    uint64_t jobs_out;   /* jobs given to the workers (or waiting for room) and not yet back */
    struct conn_job *waiting_head, *waiting_tail; /* jobs no worker's ring had room for */
    bool stopping;       /* MSG_STOP came: end once every job is back */
};

struct worker_actor {
    struct mailbox inbox;
    int index;
    bool stopping;
};

static struct connection_actor *actors;
static struct worker_actor *workers;
static int actor_count, worker_count;
static _Atomic uint64_t jobs_total;
static _Thread_local struct connection_actor *this_actor;

/* --- connection actors -------------------------------------------------------------------------- */

/* Sends a job to the next worker with room; false if every worker's ring from us is full. */
static bool send_job(struct connection_actor *self, struct conn_job *job)
{
    for (int tries = 0; tries < worker_count; tries++) {
        int w = self->next_worker;
        self->next_worker = (w + 1) % worker_count;
        if (mailbox_send(&workers[w].inbox, self->index, MSG_JOB, -1, job)) {
            atomic_fetch_add_explicit(&jobs_total, 1, memory_order_relaxed);
            return true;
        }
    }
    return false;
}

/* conn_offload_fn, on a connection actor: the job goes to a worker, or waits in the actor's own
 * list while every ring to the workers is full (and behind jobs already waiting there, in order).
 * It must not be answered here: the core is still in the middle of the request's input. */
static void offload_job(struct conn *conn, struct conn_job *job)
{
    (void)conn;
    struct connection_actor *self = this_actor;
    self->jobs_out++;
    if (self->waiting_head == NULL && send_job(self, job))
        return;
    job->next = NULL;
    if (self->waiting_head == NULL)
        self->waiting_head = job;
    else
        self->waiting_tail->next = job;
    self->waiting_tail = job;
}

/* Once a turn: the jobs that found no room, in order, as far as there is room now. */
static void send_waiting_jobs(struct connection_actor *self)
{
    while (self->waiting_head != NULL && send_job(self, self->waiting_head))
        self->waiting_head = self->waiting_head->next;
}

static void connection_message(void *ctx, int sender, const struct ring_message *message)
{
    (void)sender;
    struct connection_actor *self = ctx;
    switch (message->kind) {
    case MSG_CONNECTION:
        epoll_loop_add(&self->loop, message->fd);
        break;
    case MSG_DONE: {
        struct conn_job *job = message->data;
        struct conn *conn = job->conn;
        self->jobs_out--;
        conn_job_finish(conn, job);
        epoll_loop_resume(conn);
        break;
    }
    case MSG_STOP:
        self->stopping = true;
        break;
    }
}

static void run_connection_actor(int index, void *arg)
{
    (void)arg;
    struct connection_actor *self = &actors[index];
    this_actor = self;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        mailbox_receive(&self->inbox, connection_message, self);
        if (self->stopping && self->jobs_out == 0)
            break;
        /* Say we may sleep, then look once more (mailbox.c): a message sent before that is seen,
         * one sent after it writes the eventfd. */
        bool may_sleep = mailbox_may_sleep(&self->inbox);
        int ready = epoll_loop_wait(&self->loop, events, MAX_EVENTS, may_sleep ? WAIT_MS : 0);
        bool woken = false;
        for (int i = 0; i < ready; i++) {
            if (events[i].data.fd == self->inbox.wake_fd)
                woken = true;
            else
                epoll_loop_handle(&self->loop, &events[i]);
        }
        mailbox_awake(&self->inbox, woken);
        send_waiting_jobs(self);
        epoll_loop_sweep(&self->loop);
    }
    epoll_loop_close(&self->loop);
}

/* --- worker actors ------------------------------------------------------------------------------ */

static void worker_message(void *ctx, int sender, const struct ring_message *message)
{
    struct worker_actor *self = ctx;
    if (message->kind == MSG_STOP) {
        self->stopping = true;
        return;
    }
    struct conn_job *job = message->data;
    conn_job_run(job);
    /* The connection actor empties its mailbox on every turn and ends only once its jobs are
     * back, so room comes soon. */
    while (!mailbox_send(&actors[sender].inbox, 1 + self->index, MSG_DONE, -1, job))
        sched_yield();
}

static void run_worker_actor(int index, void *arg)
{
    (void)arg;
    struct worker_actor *self = &workers[index];
    while (!self->stopping) {
        if (mailbox_receive(&self->inbox, worker_message, self) > 0)
            continue;
        bool woken = false;
        if (mailbox_may_sleep(&self->inbox)) {
            struct pollfd wake = {.fd = self->inbox.wake_fd, .events = POLLIN};
            woken = poll(&wake, 1, WAIT_MS) > 0;
        }
        mailbox_awake(&self->inbox, woken);
    }
}

/* --- the acceptor: start, accept, stop ------------------------------------------------------------ */

static void start_actors(struct thread_group *connection_group, struct thread_group *worker_group)
{
    actor_count = server_options.threads;
    worker_count = server_options.workers;
    actors = calloc((size_t)actor_count, sizeof *actors);
    workers = calloc((size_t)worker_count, sizeof *workers);
    if (actors == NULL || workers == NULL)
        die("out of memory for %d connection actors and %d workers", actor_count, worker_count);
    for (int k = 0; k < actor_count; k++) {
        actors[k].index = k;
        actors[k].next_worker = k % worker_count;
        mailbox_init(&actors[k].inbox, 1 + worker_count, RING_SLOTS);
        epoll_loop_init(&actors[k].loop);
        actors[k].loop.offload = offload_job;
        epoll_loop_watch(&actors[k].loop, actors[k].inbox.wake_fd, EPOLLIN);
    }
    for (int w = 0; w < worker_count; w++) {
        workers[w].index = w;
        mailbox_init(&workers[w].inbox, actor_count + 1, RING_SLOTS);
    }
    *worker_group = (struct thread_group){.count = worker_count, .run = run_worker_actor};
    thread_group_start(worker_group);
    *connection_group = (struct thread_group){.count = actor_count, .run = run_connection_actor};
    thread_group_start(connection_group);
}

static void send_stop(struct mailbox *box, int sender)
{
    while (!mailbox_send(box, sender, MSG_STOP, -1, NULL))
        sched_yield();
}

/* The connection actors first: each ends once its jobs are back, which needs the workers; then
 * the workers. */
static void stop_actors(struct thread_group *connection_group, struct thread_group *worker_group)
{
    for (int k = 0; k < actor_count; k++)
        send_stop(&actors[k].inbox, 0);
    thread_group_join(connection_group);
    for (int w = 0; w < worker_count; w++)
        send_stop(&workers[w].inbox, actor_count);
    thread_group_join(worker_group);
    uint64_t actor_wakeups = 0, worker_wakeups = 0;
    for (int k = 0; k < actor_count; k++) {
        loop_counts_print(k, &actors[k].loop.counts);
        actor_wakeups += actors[k].inbox.wakeups;
        /* Nothing is left in it: MSG_STOP came after every connection the acceptor sent, and
         * the actor ended only once every job was back. */
        mailbox_free(&actors[k].inbox);
    }
    for (int w = 0; w < worker_count; w++) {
        worker_wakeups += workers[w].inbox.wakeups;
        mailbox_free(&workers[w].inbox);
    }
    fprintf(stderr, "handoff: mode=actor jobs=%llu worker_wakeups=%llu reactor_wakeups=%llu\n",
            (unsigned long long)atomic_load(&jobs_total), (unsigned long long)worker_wakeups,
            (unsigned long long)actor_wakeups);
    free(actors);
    free(workers);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "actor", .flags = OPTIONS_THREADS | OPTIONS_WORKERS});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);
    struct thread_group connection_group, worker_group;
    start_actors(&connection_group, &worker_group);
    net_announce(listen_fd);

    int next_actor = 0;
    struct pollfd listener = {.fd = listen_fd, .events = POLLIN};
    while (!server_stopping) {
        if (poll(&listener, 1, WAIT_MS) <= 0)
            continue;
        for (int accepted = 0; accepted < MAX_EVENTS; accepted++) {
            int fd = net_accept(listen_fd, true);
            if (fd < 0)
                break;
            bool sent = false;
            for (int tries = 0; tries < actor_count && !sent; tries++) {
                sent = mailbox_send(&actors[next_actor].inbox, 0, MSG_CONNECTION, fd, NULL);
                next_actor = (next_actor + 1) % actor_count;
            }
            if (!sent)
                conn_refuse(fd, 503); /* every connection actor's ring from us is full */
        }
    }

    stop_actors(&connection_group, &worker_group);
    close(listen_fd);
    stats_print();
    return 0;
}
