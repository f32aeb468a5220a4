/* threads.h - the threads of the threaded servers: started, counted and waited for the same way
 * in each, and every thread's counters added to the server's totals when it ends. */
#ifndef C10K_THREADS_H
#define C10K_THREADS_H

#include <pthread.h>
#include <stddef.h>

/* N joinable threads running the same function, each with its index. */
struct thread_group {
    int count;
    pthread_t *threads;
    void (*run)(int index, void *arg);
    void *arg;
};

/* Starts the group's threads (stack size: the system's default); dies if one cannot start. */
void thread_group_start(struct thread_group *group);

/* Waits for every thread of the group to return (they do once server_stopping is set) and frees
 * the group. */
void thread_group_join(struct thread_group *group);

/* Starts a detached thread with a stack of stack_bytes that serves the connection fd
 * (serve_blocking) and ends, counted until it ends. Returns 0, or the error of pthread_create
 * (EAGAIN at a thread or memory limit); the caller still owns fd then. */
int threads_serve_detached(int fd, size_t stack_bytes);

/* 0 if a thread with a stack of stack_bytes can start here, else pthread_create's error (EAGAIN
 * when the address space or memory cannot hold it). */
int threads_check_stack(size_t stack_bytes);

/* Waits until every detached thread has ended, or until `grace` seconds have passed; returns how
 * many are still running. */
int threads_wait_detached(double grace);

/* The threads' time (CLOCK_MONOTONIC) `seconds` from now, for timed waits. */
struct timespec threads_deadline(double seconds);

/* A condition variable whose timed waits use CLOCK_MONOTONIC, so a clock step cannot make a
 * bounded wait unbounded. */
void threads_cond_init(pthread_cond_t *cond);

#endif
