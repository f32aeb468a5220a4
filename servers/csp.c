/* csp.c - communicating sequential processes: processes that share nothing and talk over channels.
 *
 * How it works: a process is a coroutine (common/coro.c) run by one scheduler thread
 * (common/scheduler.c), written as straight-line blocking code; a channel (common/chan.c) is how
 * two of them meet. The acceptor process accepts connections and sends each one over the
 * unbuffered channel `connections`; a handler process receives one, serves it to the end as the
 * blocking server would, and goes back for the next. When no handler is free to take a
 * connection (a select with no wait finds no receiver), the acceptor starts one more, so there are
 * as many handlers as connections at the busiest moment, and no more. A request that would block
 * (/sleep, /cpu) goes over the buffered channel `jobs` to the worker threads (--workers), and the
 * answer comes back over the handler's own channel `answers`: the handler waits for it like a
 * blocking call, while the scheduler runs the other processes.
 *
 *                   connections (unbuffered)            jobs (buffered)
 *   listen -> acceptor -------------------> handler k ------------------> worker threads
 *             process                        process  <------------------  (conn_job_run)
 *                                                      answers (one per handler)
 *
 * This is Go's model, with one scheduler thread (GOMAXPROCS=1). Limits: the processes share one
 * core; every channel operation takes a lock; a handler, idle or not, keeps its stack. See
 * docs/csp.md. */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/chan.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/scheduler.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define MAX_ACCEPTS_PER_TURN 64
#define JOBS_BUFFERED 1024

static int stack_kb = 64;
static const struct paradigm_option csp_options[] = {
    {"stack-kb", "N", "stack of each process, KiB (default 64)", &stack_kb, 16, 65536, NULL},
    {0},
};

/* What travels on `jobs`: the request, and the channel its answer goes back on. */
struct job_request {
    struct conn_job *job;
    struct chan *answers;
};

struct handler {
    struct conn conn;      /* the connection being served (first: offload_job gets it) */
    struct chan *answers;  /* of struct conn_job *, from the workers, buffered 1 */
};

static struct chan *connections; /* of int: accepted sockets */
static struct chan *jobs;        /* of struct job_request */

/* --- handler processes ---------------------------------------------------------------------------- */

/* conn_offload_fn: the job goes to the workers (waiting while `jobs` is full); its answer is
 * awaited in serve(), once the core is out of the request's input. */
static void offload_job(struct conn *conn, struct conn_job *job)
{
    struct handler *self = (struct handler *)conn;
    struct job_request request = {.job = job, .answers = self->answers};
    if (!chan_send(jobs, &request))
        die("the jobs channel closed while a handler was running");
}

/* The blocking server's loop, on a nonblocking socket: where it would block, it waits for the
 * socket (or for the next deadline of the connection) and the scheduler runs the others. */
static void serve(struct handler *self, int fd)
{
    struct conn *conn = &self->conn;
    conn_init(conn, fd);
    conn->offload = offload_job;
    while (!conn_is_done(conn)) {
        if (conn->job != NULL) {
            struct conn_job *done;
            if (!chan_recv(self->answers, &done))
                die("a handler's answers channel closed");
            conn_job_finish(conn, done);
            continue;
        }
        uint32_t events;
        if (conn_wants_write(conn)) {
            conn_on_writable(conn);
            if (!conn_wants_write(conn) || conn_is_done(conn))
                continue;
            events = EPOLLOUT;
        } else {
            if (conn_wants_read(conn))
                conn_on_readable(conn);
            if (conn_is_done(conn) || conn_wants_write(conn) || conn->job != NULL)
                continue;
            events = EPOLLIN;
        }
        enum proc_wait woken_by = proc_wait_fd(fd, events, conn_next_deadline(conn));
        if (woken_by == PROC_STOPPING)
            break;
        if (woken_by == PROC_DEADLINE)
            conn_check_deadlines(conn, clock_now());
        else if (woken_by == PROC_UNWATCHED)
            conn_dropped(conn); /* the kernel will not watch it: closed, counted */
    }
    proc_forget_fd(fd, true);
    conn_release(conn);
}

static void handler_process(void *arg)
{
    struct handler *self = arg;
    int fd;
    while (chan_recv(connections, &fd))
        serve(self, fd);
    chan_destroy(self->answers);
    free(self);
}

static void start_handler(void)
{
    struct handler *handler = calloc(1, sizeof *handler);
    if (handler == NULL)
        die("out of memory for a handler process");
    handler->answers = chan_create(1, sizeof(struct conn_job *));
    proc_spawn(handler_process, handler, (size_t)stack_kb * 1024);
}

/* --- the acceptor process ---------------------------------------------------------------------------- */

static void acceptor_process(void *arg)
{
    int listen_fd = *(int *)arg;
    for (;;) {
        for (int i = 0; i < MAX_ACCEPTS_PER_TURN; i++) {
            int fd = net_accept(listen_fd, true);
            if (fd < 0)
                break;
            struct chan_case to_free_handler = {.chan = connections, .op = CHAN_SEND, .elem = &fd};
            if (chan_select(&to_free_handler, 1, false) < 0) {
                start_handler(); /* every handler is busy: one more, which takes fd at once */
                chan_send(connections, &fd);
            }
        }
        enum proc_wait woken_by = proc_wait_fd(listen_fd, EPOLLIN, 0);
        if (woken_by == PROC_STOPPING)
            break;
        if (woken_by == PROC_UNWATCHED)
            die("cannot watch the listening socket");
    }
    proc_forget_fd(listen_fd, false);
    chan_close(connections); /* the idle handlers end; the busy ones after their connection */
}

/* --- worker threads ------------------------------------------------------------------------------------ */

static void worker_thread(int index, void *arg)
{
    (void)index;
    (void)arg;
    struct job_request request;
    while (chan_recv(jobs, &request)) {
        conn_job_run(request.job);
        chan_send(request.answers, &request.job); /* buffered 1, and one job per handler */
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "csp", .flags = OPTIONS_WORKERS, .options = csp_options});
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, true);
    scheduler_init();
    connections = chan_create(0, sizeof(int));
    jobs = chan_create(JOBS_BUFFERED, sizeof(struct job_request));
    struct thread_group workers = {.count = server_options.workers, .run = worker_thread};
    thread_group_start(&workers);
    proc_spawn(acceptor_process, &listen_fd, (size_t)stack_kb * 1024);
    net_announce(listen_fd);

    scheduler_run(); /* until the acceptor and every handler have ended */

    chan_close(jobs); /* no job is out: each handler waited for its answer */
    thread_group_join(&workers);
    chan_destroy(jobs);
    chan_destroy(connections);
    scheduler_free();
    close(listen_fd);
    stats_print();
    return 0;
}
