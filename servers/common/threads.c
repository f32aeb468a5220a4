/* threads.c - see threads.h. */
#include "threads.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "serve_blocking.h"
#include "stats.h"

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
    for (int index = 0; index < group->count; index++) {
        struct group_start *start = malloc(sizeof *start);
        if (start == NULL)
            die("out of memory for %d threads", group->count);
        *start = (struct group_start){.group = group, .index = index};
        int error = pthread_create(&group->threads[index], NULL, group_thread, start);
        if (error != 0)
            die("cannot start thread %d of %d: %s", index + 1, group->count, strerror(error));
    }
}

void thread_group_join(struct thread_group *group)
{
    for (int index = 0; index < group->count; index++) {
        int error = pthread_join(group->threads[index], NULL);
        if (error != 0)
            log_error("pthread_join: %s", strerror(error));
    }
    free(group->threads);
    group->threads = NULL;
}

/* --- detached threads --------------------------------------------------------------------------- */

static pthread_mutex_t detached_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t detached_ended;
static pthread_once_t detached_once = PTHREAD_ONCE_INIT;
static int detached_running;

static void init_detached(void)
{
    threads_cond_init(&detached_ended);
}

/* The descriptor travels in the argument pointer itself: a start block malloc'd here and freed in
 * the thread would make that thread's first free() set up a malloc arena of its own (64 MiB of
 * address space) just to cache one small chunk. */
static void *detached_thread(void *fd_as_pointer)
{
    serve_blocking((int)(intptr_t)fd_as_pointer);
    stats_flush();
    pthread_mutex_lock(&detached_lock);
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
        if (pthread_cond_timedwait(&detached_ended, &detached_lock, &deadline) == ETIMEDOUT)
            break;
    }
    int running = detached_running;
    pthread_mutex_unlock(&detached_lock);
    return running;
}

/* --- time --------------------------------------------------------------------------------------- */

struct timespec threads_deadline(double seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long ns = deadline.tv_nsec + (long long)(seconds * 1e9);
    deadline.tv_sec += (time_t)(ns / 1000000000LL);
    deadline.tv_nsec = (long)(ns % 1000000000LL);
    return deadline;
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
