/* procs.c - see procs.h. */
#include "procs.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "stats.h"

#define YOUNG_WORKER_S 1.0  /* a worker that dies sooner than this is restarted only after ... */
#define RESTART_DELAY_S 1.0 /* ... this long */
#define PROCS_RESIGNAL_S 0.05

static void on_sigchld(int signal_number)
{
    (void)signal_number; /* only here to interrupt a blocking call */
}

void procs_install_sigchld(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = on_sigchld;
    action.sa_flags = SA_NOCLDSTOP; /* no SA_RESTART: accept and poll must return EINTR */
    if (sigaction(SIGCHLD, &action, NULL) != 0)
        die("sigaction(SIGCHLD): %m");
}

pid_t procs_fork(void)
{
    /* The time zone and this second's Date header, once, in the master: otherwise every child
     * reads /etc/localtime for its first response (seven system calls per connection). */
    clock_http_date();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        return pid;
    /* The child: the counts it inherited are the master's, not its own. */
    memset(stats_local, 0, sizeof stats_local);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &action, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        log_error("prctl(PR_SET_PDEATHSIG): %m");
    if (getppid() != parent) /* the master died before prctl took effect */
        procs_exit_child();
    return 0;
}

_Noreturn void procs_exit_child(void)
{
    stats_flush();
    _exit(0);
}

/* --- a set of children ------------------------------------------------------------------------ */

int proc_table_add(struct proc_table *table, pid_t pid, int tag)
{
    if (table->count == table->cap) {
        size_t new_cap = table->cap ? table->cap * 2 : 64;
        struct child *grown = realloc(table->children, new_cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        table->children = grown;
        table->cap = new_cap;
    }
    table->children[table->count++] = (struct child){.pid = pid, .tag = tag};
    return 0;
}

/* Forgets a child; returns its tag, or -2 if it was not in the table. A linear search: children
 * end one at a time, and even 10 000 of them cost microseconds per exit. */
static int forget(struct proc_table *table, pid_t pid)
{
    for (size_t i = 0; i < table->count; i++) {
        if (table->children[i].pid == pid) {
            int tag = table->children[i].tag;
            table->children[i] = table->children[--table->count];
            return tag;
        }
    }
    return -2;
}

size_t proc_table_reap(struct proc_table *table, void (*on_exit)(int tag, int status, void *arg), void *arg)
{
    size_t reaped = 0;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int tag = forget(table, pid);
        reaped++;
        if (on_exit != NULL && tag != -2)
            on_exit(tag, status, arg);
    }
    if (pid < 0 && errno != ECHILD && errno != EINTR)
        log_error("waitpid: %m");
    return reaped;
}

void proc_table_stop(struct proc_table *table)
{
    double deadline = clock_now() + PROCS_STOP_GRACE_S, next_signal = 0;
    while (table->count > 0 && clock_now() < deadline) {
        /* Again and again: a child blocks until its connection's next deadline, and a signal
         * that lands just before it enters the call is not seen by it (serve_blocking.h). */
        if (clock_now() >= next_signal) {
            for (size_t i = 0; i < table->count; i++)
                kill(table->children[i].pid, SIGTERM);
            next_signal = clock_now() + PROCS_RESIGNAL_S;
        }
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000L}, NULL);
        proc_table_reap(table, NULL, NULL);
    }
    if (table->count > 0)
        log_error("%zu children did not stop within %.1f s of SIGTERM; killing them", table->count,
                  PROCS_STOP_GRACE_S);
    while (table->count > 0) {
        pid_t pid = table->children[table->count - 1].pid;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
        forget(table, pid);
    }
}

void proc_table_free(struct proc_table *table)
{
    free(table->children);
    *table = (struct proc_table){0};
}

/* --- N numbered workers ----------------------------------------------------------------------- */

static void start_worker(struct worker_pool *pool, int index)
{
    double now = clock_now();
    int error = pool->before_fork ? pool->before_fork(index, pool->arg) : 0;
    pid_t pid = error ? error : procs_fork();
    if (pid == 0) {
        pool->run(index, pool->arg);
        procs_exit_child();
    }
    if (pid < 0 || proc_table_add(&pool->table, pid, index) != 0) {
        log_error("cannot start worker %d: %s", index, strerror(pid < 0 ? (int)-pid : ENOMEM));
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        if (pool->after_exit && error == 0)
            pool->after_exit(index, pool->arg);
        pool->restart_at[index] = now + RESTART_DELAY_S;
        return;
    }
    pool->pids[index] = pid;
    pool->started_at[index] = now;
    if (pool->after_fork)
        pool->after_fork(index, pool->arg);
}

void worker_pool_start(struct worker_pool *pool)
{
    size_t count = (size_t)pool->count;
    pool->table = (struct proc_table){0};
    pool->pids = calloc(count, sizeof *pool->pids);
    pool->started_at = calloc(count, sizeof *pool->started_at);
    pool->restart_at = calloc(count, sizeof *pool->restart_at);
    if (pool->pids == NULL || pool->started_at == NULL || pool->restart_at == NULL)
        die("out of memory for %zu workers", count);
    for (int index = 0; index < pool->count; index++) {
        start_worker(pool, index);
        if (pool->pids[index] == 0)
            die("cannot start the workers");
    }
}

static void on_worker_exit(int index, int status, void *arg)
{
    struct worker_pool *pool = arg;
    double now = clock_now();
    if (WIFSIGNALED(status))
        log_error("worker %d (pid %d) was killed by signal %d; starting another", index,
                  (int)pool->pids[index], WTERMSIG(status));
    else
        log_error("worker %d (pid %d) exited with status %d; starting another", index,
                  (int)pool->pids[index], WEXITSTATUS(status));
    pool->pids[index] = 0;
    pool->restart_at[index] = now - pool->started_at[index] < YOUNG_WORKER_S ? now + RESTART_DELAY_S : now;
    if (pool->after_exit)
        pool->after_exit(index, pool->arg);
}

size_t worker_pool_tend(struct worker_pool *pool)
{
    size_t reaped = proc_table_reap(&pool->table, on_worker_exit, pool);
    double now = clock_now();
    for (int index = 0; index < pool->count; index++) {
        if (pool->pids[index] == 0 && now >= pool->restart_at[index]) {
            start_worker(pool, index);
            if (pool->pids[index] != 0)
                pool->restarts++;
        }
    }
    return reaped;
}

bool worker_pool_running(const struct worker_pool *pool, int index)
{
    return pool->pids[index] != 0;
}

void worker_pool_stop(struct worker_pool *pool)
{
    proc_table_stop(&pool->table);
    for (int index = 0; index < pool->count; index++) {
        if (pool->pids[index] != 0 && pool->after_exit)
            pool->after_exit(index, pool->arg);
        pool->pids[index] = 0;
    }
    if (pool->restarts > 0)
        log_error("%lu workers were restarted", pool->restarts);
    proc_table_free(&pool->table);
    free(pool->pids);
    free(pool->started_at);
    free(pool->restart_at);
    pool->pids = NULL;
    pool->started_at = pool->restart_at = NULL;
}
