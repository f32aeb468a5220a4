/* procs.h - the child processes of the forking servers: started, reaped, restarted and stopped
 * the same way in each, so a paradigm file keeps only its own structure.
 *
 * Two shapes use it. fork-per-conn keeps a proc_table of whatever children are alive; prefork
 * and prefork-fdpass keep a worker_pool of N numbered workers, each started again when it dies. */
#ifndef C10K_PROCS_H
#define C10K_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* How long children get to finish after SIGTERM before they are killed: with the master's own
 * reaction time this keeps the whole server's exit within the one second it promises. */
#define PROCS_STOP_GRACE_S 0.6

/* Makes SIGCHLD interrupt the master's blocking calls (accept, poll, sleep) with EINTR, so a
 * child that ends is reaped, and a dead worker replaced, at once rather than at the next tick. */
void procs_install_sigchld(void);

/* fork() for a child of this server. In the child: its counters start at zero and it gets
 * SIGTERM when the master dies, so no child outlives a master killed with SIGKILL. Returns like
 * fork(): the child's pid, 0 in the child, -errno on failure. */
pid_t procs_fork(void);

/* Ends a child: its counters go into the server's totals, then _exit(0). Not exit(): the atexit
 * handlers and stdio buffers it inherited belong to the master. */
_Noreturn void procs_exit_child(void);

/* --- a set of children, by pid ----------------------------------------------------------------- */

struct child {
    pid_t pid;
    int tag;        /* the caller's: a worker's index, or -1 */
};

struct proc_table {
    struct child *children;
    size_t count, cap;
};

/* Remembers a child; -ENOMEM if the table cannot grow (the caller then kills the child). */
int proc_table_add(struct proc_table *table, pid_t pid, int tag);

/* Reaps every child that has ended, without waiting, and calls on_exit (if not NULL) for each
 * with its tag and wait status. Returns how many were reaped. */
size_t proc_table_reap(struct proc_table *table, void (*on_exit)(int tag, int status, void *arg), void *arg);

/* Sends SIGTERM to every child, waits up to PROCS_STOP_GRACE_S for them, then kills and reaps
 * the rest; the table is empty afterwards. */
void proc_table_stop(struct proc_table *table);

void proc_table_free(struct proc_table *table);

/* --- N numbered workers, restarted when they die ------------------------------------------------ */

struct worker_pool {
    int count;
    /* In the master, just before worker `index` is forked (e.g. a socketpair); -errno to retry
     * later. May be NULL. */
    int (*before_fork)(int index, void *arg);
    /* In the master, once worker `index` has been forked (close the child's ends). May be NULL. */
    void (*after_fork)(int index, void *arg);
    /* In the child: the worker's whole life. It returns when the server stops. */
    void (*run)(int index, void *arg);
    /* In the master, after worker `index` has ended or failed to start (undo before_fork). May
     * be NULL. */
    void (*after_exit)(int index, void *arg);
    void *arg;

    /* Private to procs.c. */
    struct proc_table table;
    pid_t *pids;          /* by index; 0 while the worker is not running */
    double *started_at;
    double *restart_at;   /* when a stopped worker may start again */
    unsigned long restarts;
};

/* Starts the pool's `count` workers; dies if it cannot start them. */
void worker_pool_start(struct worker_pool *pool);

/* Reaps workers that ended and starts again those that are due: at once if the worker had run
 * a while, after a second if it died young (a worker that crashes at start must not turn the
 * master into a fork loop). Call it whenever the master wakes up. Returns how many it reaped. */
size_t worker_pool_tend(struct worker_pool *pool);

/* Whether worker `index` is running now. */
bool worker_pool_running(const struct worker_pool *pool, int index);

/* Stops every worker (see proc_table_stop) and frees the pool; prints how many were restarted
 * if any were. */
void worker_pool_stop(struct worker_pool *pool);

#endif
