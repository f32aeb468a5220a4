/* threads.c - see threads.h. */
#include "threads.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "serve_blocking.h"
#include "signals.h"
#include "stats.h"

#define RESIGNAL_S 0.05 /* how often a stop signals the threads that have not ended yet */

static struct timespec threads_realtime_deadline(double seconds);

/* Makes the threads started with these attributes begin with the stop signals blocked (signals.h
 * says why). In the attributes, not around pthread_create: blocking and restoring the creator's
 * mask there would add two system calls to every thread thread-per-conn starts. */
static int block_stop_signals(pthread_attr_t *attributes)
{
    sigset_t stop = signals_stop_set();
    return pthread_attr_setsigmask_np(attributes, &stop);
}

struct group_start {
    struct thread_group *group;
    int index;
};

static void *group_thread(void *start_arg)
{
    struct group_start start = *(struct group_start *)start_arg;
    free(start_arg);
    start.group->run(start.index, start.group->arg);
    stats_flush();
    return NULL;
}

void thread_group_start(struct thread_group *group)
{
    group->threads = calloc((size_t)group->count, sizeof *group->threads);
    if (group->threads == NULL)
        die("out of memory for %d threads", group->count);
    pthread_attr_t attributes;
    int error = pthread_attr_init(&attributes);
    if (error == 0)
        error = block_stop_signals(&attributes);
    if (error != 0)
        die("cannot set up the threads' attributes: %s", strerror(error));
    for (int index = 0; index < group->count; index++) {
        struct group_start *start = malloc(sizeof *start);
        if (start == NULL)
            die("out of memory for %d threads", group->count);
        *start = (struct group_start){.group = group, .index = index};
        error = pthread_create(&group->threads[index], &attributes, group_thread, start);
        if (error != 0)
            die("cannot start thread %d of %d: %s", index + 1, group->count, strerror(error));
    }
    pthread_attr_destroy(&attributes);
}

void thread_group_join(struct thread_group *group)
{
    /* The stop signal went to the main thread; the others may sit in accept until the next tick.
     * Every one is interrupted now, so a stop does not wait a tick (with 128 threads under a
     * sanitizer on a loaded machine, ticks and exits together came close to the one-second
     * bound). */
    for (int index = 0; index < group->count; index++)
        pthread_kill(group->threads[index], SIGNAL_WAKE);
    for (int index = 0; index < group->count; index++) {
        /* A thread may be blocked until its connection's next deadline: the wake signal is
         * repeated until it has ended (see serve_blocking.h). */
        for (;;) {
            struct timespec wait = threads_realtime_deadline(RESIGNAL_S);
            int error = pthread_timedjoin_np(group->threads[index], NULL, &wait);
            if (error == 0)
                break;
            if (error != ETIMEDOUT) {
                log_error("pthread_join: %s", strerror(error));
                break;
            }
            pthread_kill(group->threads[index], SIGNAL_WAKE);
        }
    }
    free(group->threads);
    group->threads = NULL;
}

/* --- detached threads --------------------------------------------------------------------------- */

/* The detached threads that run, so that a stop can signal each; under detached_lock. */
static pthread_mutex_t detached_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t detached_ended;
static pthread_once_t detached_once = PTHREAD_ONCE_INIT;
static int detached_running;   /* started and not yet ended, registered or not */
static pthread_t *registered;  /* those that have registered themselves */
static size_t registered_count, registered_cap;

/* False if the registry cannot grow: the thread then serves without being signalled at stop,
 * and the stop waits for its deadline, up to the grace period. */
static bool register_self(void)
{
    pthread_mutex_lock(&detached_lock);
    bool ok = true;
    if (registered_count == registered_cap) {
        size_t new_cap = registered_cap ? registered_cap * 2 : 64;
        pthread_t *grown = realloc(registered, new_cap * sizeof *grown);
        if (grown == NULL) {
            ok = false;
        } else {
            registered = grown;
            registered_cap = new_cap;
        }
    }
    if (ok)
        registered[registered_count++] = pthread_self();
    pthread_mutex_unlock(&detached_lock);
    return ok;
}

/* Linear: at most as many threads as connections, and each removal is one pass. */
static void unregister_self_locked(void)
{
    pthread_t self = pthread_self();
    for (size_t i = 0; i < registered_count; i++) {
        if (pthread_equal(registered[i], self)) {
            registered[i] = registered[--registered_count];
            return;
        }
    }
}

static void init_detached(void)
{
    threads_cond_init(&detached_ended);
}

/* The descriptor travels in the argument pointer itself: a start block malloc'd here and freed in
 * the thread would make that thread's first free() set up a malloc arena of its own (64 MiB of
 * address space) just to cache one small chunk. */
static void *detached_thread(void *fd_as_pointer)
{
    bool is_registered = register_self();
    serve_blocking((int)(intptr_t)fd_as_pointer);
    stats_flush();
    pthread_mutex_lock(&detached_lock);
    if (is_registered)
        unregister_self_locked();
    detached_running--;
    pthread_cond_signal(&detached_ended);
    pthread_mutex_unlock(&detached_lock);
    return NULL;
}

int threads_serve_detached(int fd, size_t stack_bytes)
{
    pthread_once(&detached_once, init_detached);
    pthread_attr_t attributes;
    int error = pthread_attr_init(&attributes);
    if (error == 0)
        error = pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (error == 0)
        error = pthread_attr_setstacksize(&attributes, stack_bytes);
    if (error == 0)
        error = block_stop_signals(&attributes);
    if (error == 0) {
        /* Counted before it starts, so a thread that ends at once cannot take the count below 0. */
        pthread_mutex_lock(&detached_lock);
        detached_running++;
        pthread_mutex_unlock(&detached_lock);
        pthread_t thread;
        error = pthread_create(&thread, &attributes, detached_thread, (void *)(intptr_t)fd);
        if (error != 0) {
            pthread_mutex_lock(&detached_lock);
            detached_running--;
            pthread_mutex_unlock(&detached_lock);
        }
    }
    pthread_attr_destroy(&attributes);
    return error;
}

static void *do_nothing(void *arg)
{
    return arg;
}

int threads_check_stack(size_t stack_bytes)
{
    pthread_attr_t attributes;
    int error = pthread_attr_init(&attributes);
    if (error != 0)
        return error;
    error = pthread_attr_setstacksize(&attributes, stack_bytes);
    pthread_t thread;
    if (error == 0)
        error = pthread_create(&thread, &attributes, do_nothing, NULL);
    if (error == 0)
        error = pthread_join(thread, NULL);
    pthread_attr_destroy(&attributes);
    return error;
}

int threads_wait_detached(double grace)
{
    pthread_once(&detached_once, init_detached);
    struct timespec deadline = threads_deadline(grace);
    pthread_mutex_lock(&detached_lock);
    while (detached_running > 0) {
        /* Signalled under the lock: a registered thread has not ended yet, so its id is valid. */
        for (size_t i = 0; i < registered_count; i++)
            pthread_kill(registered[i], SIGNAL_WAKE);
        struct timespec next = threads_deadline(RESIGNAL_S);
        bool last_round = next.tv_sec > deadline.tv_sec ||
                          (next.tv_sec == deadline.tv_sec && next.tv_nsec >= deadline.tv_nsec);
        if (pthread_cond_timedwait(&detached_ended, &detached_lock, last_round ? &deadline : &next) == ETIMEDOUT &&
            last_round)
            break;
    }
    int running = detached_running;
    free(registered);
    registered = NULL;
    registered_count = registered_cap = 0;
    pthread_mutex_unlock(&detached_lock);
    return running;
}

/* --- time --------------------------------------------------------------------------------------- */

static struct timespec deadline_on(clockid_t clock, double seconds)
{
    struct timespec deadline;
    clock_gettime(clock, &deadline);
    long long ns = deadline.tv_nsec + (long long)(seconds * 1e9);
    deadline.tv_sec += (time_t)(ns / 1000000000LL);
    deadline.tv_nsec = (long)(ns % 1000000000LL);
    return deadline;
}

struct timespec threads_deadline(double seconds)
{
    return deadline_on(CLOCK_MONOTONIC, seconds);
}

/* pthread_timedjoin_np measures its deadline on CLOCK_REALTIME. */
static struct timespec threads_realtime_deadline(double seconds)
{
    return deadline_on(CLOCK_REALTIME, seconds);
}

void threads_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attributes;
    if (pthread_condattr_init(&attributes) != 0 ||
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(cond, &attributes) != 0)
        die("cannot create a condition variable");
    pthread_condattr_destroy(&attributes);
}
