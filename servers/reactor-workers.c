/* reactor-workers.c - one reactor does all socket I/O; blocking requests run on a worker pool.
 *
 * How it works: the main thread is an epoll reactor (epoll_loop.c) that accepts, reads, parses and
 * writes for every connection, and answers GET / itself. A request that would block it (/cpu,
 * /sleep) is handed to --workers threads as a job (conn.h's offloading); the connection waits,
 * its later requests held in order, and the reactor serves everyone else meanwhile. A finished
 * job comes back to the reactor, which wakes on an eventfd and writes the response. This is the
 * "1 + N + M" structure (Netty's event loop plus an executor, nginx's thread pools).
 *
 *   clients <--> reactor (epoll: accept, read, parse, write, answer /)
 *                  |  jobs (/cpu, /sleep)          ^  results + eventfd
 *                  v                               |
 *               workers 0 .. M-1  ------------------+
 *
 * --handoff chooses how a job crosses between the threads, the cost this server exists to show:
 *   mutex   one queue under a mutex and a condition variable, a signal per job; results in a
 *           second locked list, an eventfd write per result;
 *   splice  the reactor collects the jobs of one loop iteration in a list of its own and splices
 *           it into the shared queue under the lock with a few pointer stores, waking only as many
 *           workers as it has jobs and are idle; a worker writes the eventfd only when it finds
 *           the results list empty (the reactor takes the whole list at once);
 *   ring    a lock-free single-producer/single-consumer ring per worker each way; a sleeping side
 *           is woken (its eventfd) only if it said it was going to sleep.
 * Each prints its counts on exit: jobs, the times a worker had to be woken, and the reactor.
 *
 * Limits: the reactor is one thread: all parsing and writing happen on one core, and /cpu work on
 * the workers competes with it for the CPUs. A job's response waits for the reactor's next turn.
 * With rings, a job waits behind the jobs already given to its worker even when another is idle
 * (the reactor gives it to the worker with the fewest). See docs/reactor-workers.md. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/epoll_loop.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define MAX_EVENTS 256
#define WAIT_MS 250 /* so SIGTERM is never more than this late */
#define RING_SLOTS 1024 /* a power of two */

enum handoff { HANDOFF_MUTEX, HANDOFF_SPLICE, HANDOFF_RING };
static int handoff = HANDOFF_MUTEX;
static const char *const handoff_names[] = {"mutex", "splice", "ring", NULL};
static const struct paradigm_option reactor_workers_options[] = {
    {"handoff", "mutex|splice|ring", "how jobs reach the workers and come back: a locked queue, batches spliced "
     "into it, or a lock-free ring per worker (default mutex)", &handoff, 0, 0, handoff_names},
    {0},
};

/* --- job lists, linked through job->next ------------------------------------------------------ */

struct job_list {
    struct conn_job *head, *tail;
    size_t len;
};

static void list_push(struct job_list *list, struct conn_job *job)
{
    job->next = NULL;
    if (list->tail != NULL)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
    list->len++;
}

static struct conn_job *list_pop(struct job_list *list)
{
    struct conn_job *job = list->head;
    if (job != NULL) {
        list->head = job->next;
        if (list->head == NULL)
            list->tail = NULL;
        list->len--;
    }
    return job;
}

/* Moves all of `from` to the end of `into`: pointer stores only, however many jobs. */
static void list_splice(struct job_list *into, struct job_list *from)
{
    if (from->head == NULL)
        return;
    if (into->tail != NULL)
        into->tail->next = from->head;
    else
        into->head = from->head;
    into->tail = from->tail;
    into->len += from->len;
    *from = (struct job_list){0};
}

/* --- a single-producer/single-consumer ring --------------------------------------------------- */

/* The producer alone writes head, the consumer alone tail; each reads the other's with (at least)
 * acquire ordering, so a slot is read only after it was written, and reused only after it was
 * read. head is stored and read sequentially consistent: the sleeping flags rely on it (below). */
struct ring {
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    struct conn_job *slots[RING_SLOTS];
};

/* The caller has made sure there is room (see jobs_out). */
static void ring_push(struct ring *ring, struct conn_job *job)
{
    size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    ring->slots[head % RING_SLOTS] = job;
    atomic_store(&ring->head, head + 1);
}

static struct conn_job *ring_pop(struct ring *ring)
{
    size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    if (tail == atomic_load(&ring->head))
        return NULL;
    struct conn_job *job = ring->slots[tail % RING_SLOTS];
    atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
    return job;
}

/* --- the shared state of the three designs ---------------------------------------------------- */

struct worker {
    struct ring jobs, results;  /* ring */
    atomic_bool sleeping;       /* ring: about to wait on wake_fd */
    int wake_fd;                /* ring: eventfd */
    uint64_t jobs_out;          /* ring, the reactor's count: given and not yet back */
    uint64_t wakeups;           /* the times it slept and was woken for a job */
};

static struct worker *workers;
static int worker_count;

/* mutex, splice: the jobs waiting for a worker, and the results waiting for the reactor. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_not_empty;
static struct job_list queue;
static int idle_workers;
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job_list results;

static int results_fd;                /* eventfd: results are waiting for the reactor */
static atomic_bool reactor_sleeping;  /* ring: the reactor is about to wait in epoll */
static struct job_list batch;         /* splice: this iteration's jobs; ring: jobs no ring took */
static uint64_t jobs_total, reactor_wakeups;

static void wake_reactor(void)
{
    if (eventfd_write(results_fd, 1) != 0)
        log_error("eventfd_write: %m");
}

/* --- the reactor's side ----------------------------------------------------------------------- */

static struct worker *least_busy_worker(void)
{
    struct worker *least = &workers[0];
    for (int i = 1; i < worker_count; i++)
        if (workers[i].jobs_out < least->jobs_out)
            least = &workers[i];
    return least;
}

static bool give_to_ring(struct conn_job *job)
{
    struct worker *worker = least_busy_worker();
    if (worker->jobs_out >= RING_SLOTS)
        return false; /* its jobs and results together can then never overflow a ring */
    worker->jobs_out++;
    ring_push(&worker->jobs, job);
    /* Paired with the worker's store of `sleeping` and second look at its ring (take_job): all four
     * are sequentially consistent, so either it sees this job or we see that it sleeps. */
    if (atomic_exchange(&worker->sleeping, false) && eventfd_write(worker->wake_fd, 1) != 0)
        log_error("eventfd_write: %m");
    return true;
}

/* conn_offload_fn: called by the core, on the reactor, when a request must not run here. */
static void offload_job(struct conn *conn, struct conn_job *job)
{
    (void)conn;
    jobs_total++;
    switch (handoff) {
    case HANDOFF_MUTEX:
        pthread_mutex_lock(&queue_lock);
        list_push(&queue, job);
        if (idle_workers > 0)
            pthread_cond_signal(&queue_not_empty);
        pthread_mutex_unlock(&queue_lock);
        break;
    case HANDOFF_SPLICE:
        list_push(&batch, job);
        break;
    case HANDOFF_RING:
        if (batch.len > 0 || !give_to_ring(job))
            list_push(&batch, job);
        break;
    }
}

/* At the end of each loop iteration: what offload_job collected goes out. */
static void flush_batch(void)
{
    if (batch.len == 0)
        return;
    if (handoff == HANDOFF_SPLICE) {
        pthread_mutex_lock(&queue_lock);
        size_t wake = batch.len < (size_t)idle_workers ? batch.len : (size_t)idle_workers;
        list_splice(&queue, &batch);
        for (size_t i = 0; i < wake; i++)
            pthread_cond_signal(&queue_not_empty);
        pthread_mutex_unlock(&queue_lock);
        return;
    }
    while (batch.head != NULL && give_to_ring(batch.head))
        list_pop(&batch);
}

static void finish(struct conn_job *job)
{
    struct conn *conn = job->conn;
    conn_job_finish(conn, job);
    epoll_loop_resume(conn);
}

/* Takes every finished job and sends its response. */
static void take_results(void)
{
    if (handoff == HANDOFF_RING) {
        for (int i = 0; i < worker_count; i++) {
            struct conn_job *job;
            while ((job = ring_pop(&workers[i].results)) != NULL) {
                workers[i].jobs_out--;
                finish(job);
            }
        }
        return;
    }
    pthread_mutex_lock(&results_lock);
    struct job_list taken = results;
    results = (struct job_list){0};
    pthread_mutex_unlock(&results_lock);
    struct conn_job *job;
    while ((job = list_pop(&taken)) != NULL)
        finish(job);
}

/* --- the workers' side ------------------------------------------------------------------------ */

/* The next job for this worker, waiting for one; NULL once the server stops. */
static struct conn_job *take_job(struct worker *self)
{
    if (handoff == HANDOFF_RING) {
        for (;;) {
            struct conn_job *job = ring_pop(&self->jobs);
            if (job != NULL || server_stopping)
                return job;
            atomic_store(&self->sleeping, true);
            if ((job = ring_pop(&self->jobs)) != NULL) { /* came before we said we sleep */
                atomic_store(&self->sleeping, false);
                return job;
            }
            /* Bounded: the stop flag is set by a signal handler, which cannot write the eventfd. */
            struct pollfd wake = {.fd = self->wake_fd, .events = POLLIN};
            eventfd_t ignored;
            if (poll(&wake, 1, WAIT_MS) > 0) {
                self->wakeups++;
                if (eventfd_read(self->wake_fd, &ignored) != 0 && errno != EAGAIN)
                    log_error("eventfd_read: %m");
            }
            atomic_store(&self->sleeping, false);
        }
    }
    pthread_mutex_lock(&queue_lock);
    bool waited = false;
    while (queue.head == NULL && !server_stopping) {
        idle_workers++;
        waited = true;
        struct timespec tick = threads_deadline(WAIT_MS / 1000.0);
        pthread_cond_timedwait(&queue_not_empty, &queue_lock, &tick);
        idle_workers--;
    }
    struct conn_job *job = server_stopping ? NULL : list_pop(&queue);
    if (job != NULL && waited)
        self->wakeups++;
    pthread_mutex_unlock(&queue_lock);
    return job;
}

static void return_result(struct worker *self, struct conn_job *job)
{
    if (handoff == HANDOFF_RING) {
        ring_push(&self->results, job);
        /* Paired with the reactor's store of reactor_sleeping before its last look (main). */
        if (atomic_exchange(&reactor_sleeping, false))
            wake_reactor();
        return;
    }
    pthread_mutex_lock(&results_lock);
    bool was_empty = results.head == NULL;
    list_push(&results, job);
    pthread_mutex_unlock(&results_lock);
    /* splice: a non-empty list already has a wake-up on its way, and the reactor takes it all. */
    if (handoff == HANDOFF_MUTEX || was_empty)
        wake_reactor();
}

static void run_worker(int index, void *arg)
{
    (void)arg;
    struct worker *self = &workers[index];
    struct conn_job *job;
    while ((job = take_job(self)) != NULL) {
        conn_job_run(job);
        return_result(self, job);
    }
}

/* --- start, loop, stop ------------------------------------------------------------------------ */

static void start_workers(struct thread_group *group)
{
    worker_count = server_options.workers;
    workers = calloc((size_t)worker_count, sizeof *workers);
    if (workers == NULL)
        die("out of memory for %d workers", worker_count);
    for (int i = 0; i < worker_count; i++) {
        workers[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (workers[i].wake_fd < 0)
            die("eventfd: %m");
    }
    threads_cond_init(&queue_not_empty);
    *group = (struct thread_group){.count = worker_count, .run = run_worker};
    thread_group_start(group);
}

/* After the workers have ended: jobs no worker took run here (a stopping server answers /sleep
 * and /cpu at once with 503), so that every connection is whole again before it is closed. */
static void stop_workers(struct thread_group *group)
{
    pthread_mutex_lock(&queue_lock);
    pthread_cond_broadcast(&queue_not_empty);
    pthread_mutex_unlock(&queue_lock);
    thread_group_join(group);
    take_results();
    struct conn_job *job;
    for (int i = 0; i < worker_count; i++)
        while ((job = ring_pop(&workers[i].jobs)) != NULL)
            list_push(&batch, job);
    list_splice(&batch, &queue);
    while ((job = list_pop(&batch)) != NULL) {
        conn_job_run(job);
        finish(job);
    }
    uint64_t worker_wakeups = 0;
    for (int i = 0; i < worker_count; i++) {
        worker_wakeups += workers[i].wakeups;
        close(workers[i].wake_fd);
    }
    fprintf(stderr, "handoff: mode=%s jobs=%llu worker_wakeups=%llu reactor_wakeups=%llu\n", handoff_names[handoff],
            (unsigned long long)jobs_total, (unsigned long long)worker_wakeups, (unsigned long long)reactor_wakeups);
    free(workers);
    pthread_cond_destroy(&queue_not_empty);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "reactor-workers", .flags = OPTIONS_WORKERS,
                                                 .options = reactor_workers_options});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);
    results_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (results_fd < 0)
        die("eventfd: %m");
    struct epoll_loop loop;
    epoll_loop_init(&loop);
    loop.offload = offload_job;
    epoll_loop_watch(&loop, listen_fd, EPOLLIN);
    epoll_loop_watch(&loop, results_fd, EPOLLIN);
    struct thread_group group;
    start_workers(&group);
    net_announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    while (!server_stopping) {
        if (handoff == HANDOFF_RING) {
            /* Say we may sleep, then look once more: a result pushed before this store is seen
             * here, one pushed after it finds the flag and wakes us. */
            atomic_store(&reactor_sleeping, true);
            take_results();
        }
        int ready = epoll_loop_wait(&loop, events, MAX_EVENTS, WAIT_MS);
        if (handoff == HANDOFF_RING)
            atomic_store(&reactor_sleeping, false);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                epoll_loop_accept(&loop, listen_fd);
            } else if (fd == results_fd) {
                eventfd_t ignored;
                reactor_wakeups++;
                /* Read before the results are taken: one that arrives in between writes again. */
                if (eventfd_read(results_fd, &ignored) != 0 && errno != EAGAIN)
                    log_error("eventfd_read: %m");
                take_results();
            } else {
                epoll_loop_handle(&loop, &events[i]);
            }
        }
        flush_batch();
        epoll_loop_sweep(&loop);
    }

    stop_workers(&group);
    epoll_loop_close(&loop);
    loop_counts_print(0, &loop.counts);
    close(results_fd);
    close(listen_fd);
    stats_print();
    return 0;
}
