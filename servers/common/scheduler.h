/* scheduler.h - processes for the CSP server: coroutines (common/coro.c) run by one scheduler thread,
 * which waits for their sockets with epoll and for their channels (common/chan.c) to wake them.
 *
 * A process is straight-line code that may wait: for a socket to be ready (proc_wait_fd), or
 * for a channel, which parks it (proc_park) until another process or another thread makes it
 * ready again (proc_ready). Only the scheduler thread runs processes; any thread may make one
 * ready, which is how an answer from a worker thread reaches the process that asked. This is
 * Go's runtime with GOMAXPROCS=1, in a few hundred lines. */
#ifndef C10K_SCHEDULER_H
#define C10K_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proc;

/* Sets up the scheduler for the calling thread, which will be the one to call scheduler_run(). */
void scheduler_init(void);

/* A new process that will run body(arg) on a stack of stack_bytes; it is ready to run. Dies when
 * the memory cannot be had (as a failed thread start would). */
struct proc *proc_spawn(void (*body)(void *arg), void *arg, size_t stack_bytes);

/* Runs processes until every one has returned. Once server_stopping is set, every process waiting
 * in proc_wait_fd() is woken (the call returns false), and later calls return false at once. */
void scheduler_run(void);

/* How a wait for a socket ended. */
enum proc_wait {
    PROC_READY,     /* the socket is ready (or failed: the next call on it says how) */
    PROC_DEADLINE,  /* the deadline passed */
    PROC_STOPPING,  /* server_stopping is set */
    PROC_UNWATCHED, /* epoll would not take the descriptor (errno says why, already logged) */
};

/* From a process: waits until fd is ready for `events` (EPOLLIN or EPOLLOUT), or until `deadline`
 * (clock_now() seconds; 0: none) has passed. The first wait on a descriptor registers it with
 * epoll. */
enum proc_wait proc_wait_fd(int fd, uint32_t events, double deadline);
/* The process is done with fd: before it closes it (will_close), or before it ends while fd stays
 * open (which takes it out of the epoll set). */
void proc_forget_fd(int fd, bool will_close);

/* The process running on this thread, or NULL on any other thread than the scheduler's (or on
 * the scheduler's own stack). */
struct proc *proc_current(void);

/* From a process: stops until someone calls proc_ready() on it (which may have happened
 * already, from another thread, since the caller decided to park: it is then run again soon). */
void proc_park(void);

/* Makes a parked process ready to run; from any thread. Exactly once per proc_park(). */
void proc_ready(struct proc *proc);

/* From a process: lets the other ready processes run first. */
void proc_yield(void);

/* Unmaps the stacks kept for reuse (at exit). */
void scheduler_free(void);

#endif
