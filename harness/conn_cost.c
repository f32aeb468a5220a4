/* conn_cost.c - what it costs to give a new connection its own flow of control, without the
 * network: fork() (and the child's exit and reaping), pthread_create() (and the join), and a hand-off
 * to a thread that already exists (a pool: a locked queue and a condition variable, and back);
 * then how fork's cost grows with the parent's resident memory, whose page tables the child copies.
 *
 *     conn-cost [--ops N] [--sizes MIB,MIB,...] [--cpu C]
 *
 * Prints JSON on stdout: for each way, the wall and CPU microseconds per operation (CPU: this
 * process and its reaped children, user + system, from getrusage), median of 5 rounds; and for
 * each parent size (touched, so resident), the wall microseconds of fork + exit + waitpid. Pinned
 * to one CPU (default 0), as the servers are in make bench. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_number.h"

#define ROUNDS 5
#define MAX_SIZES 16

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    double us = 0;
    for (const struct rusage *r = &self; r != NULL; r = r == &self ? &children : NULL)
        us += r->ru_utime.tv_sec * 1e6 + r->ru_utime.tv_usec + r->ru_stime.tv_sec * 1e6 + r->ru_stime.tv_usec;
    return us;
}

static _Noreturn void fail(const char *what)
{
    fprintf(stderr, "conn-cost: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* --- the three ways -------------------------------------------------------------------------------- */

static void one_fork(void)
{
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0)
        _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        fail("waitpid");
}

static void *nothing(void *arg)
{
    return arg;
}

static void one_thread(void)
{
    pthread_t thread;
    int error = pthread_create(&thread, NULL, nothing, NULL);
    if (error != 0) {
        errno = error;
        fail("pthread_create");
    }
    pthread_join(thread, NULL);
}

/* The pool: one worker waiting on a condition variable; a job is a counter to bump, and the caller
 * waits for it to be done, as a connection handed to a pool thread and answered would. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t job_ready, job_done;
    long posted, done;
    bool stop;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false};

static void *pool_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.done == pool.posted && !pool.stop)
            pthread_cond_wait(&pool.job_ready, &pool.lock);
        if (pool.stop)
            break;
        pool.done++;
        pthread_cond_signal(&pool.job_done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

static void one_handoff(void)
{
    pthread_mutex_lock(&pool.lock);
    long mine = ++pool.posted;
    pthread_cond_signal(&pool.job_ready);
    while (pool.done < mine)
        pthread_cond_wait(&pool.job_done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over the rounds of (wall, cpu) µs per operation. */
static void measure(void (*op)(void), long ops, double *wall, double *cpu)
{
    double walls[ROUNDS], cpus[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double w0 = now_us(), c0 = cpu_us();
        for (long i = 0; i < ops; i++)
            op();
        walls[r] = (now_us() - w0) / ops;
        cpus[r] = (cpu_us() - c0) / ops;
    }
    qsort(walls, ROUNDS, sizeof walls[0], compare);
    qsort(cpus, ROUNDS, sizeof cpus[0], compare);
    *wall = walls[ROUNDS / 2];
    *cpu = cpus[ROUNDS / 2];
}

static void usage(void)
{
    fprintf(stderr, "usage: conn-cost [--ops N (10-1000000)] [--sizes MIB,... (1-65536, at most %d)] [--cpu C]\n",
            MAX_SIZES);
    exit(2);
}

static long number(const char *text, long low, long high)
{
    long value;
    if (!cli_number(text, low, high, ',', &value))
        usage();
    return value;
}

int main(int argc, char **argv)
{
    long ops = 2000;
    long sizes[MAX_SIZES] = {10, 100, 250, 500, 1024};
    int size_count = 5, cpu = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--ops") == 0) {
            ops = number(argv[i + 1], 10, 1000000);
        } else if (strcmp(argv[i], "--cpu") == 0) {
            cpu = (int)number(argv[i + 1], 0, CPU_SETSIZE - 1);
        } else if (strcmp(argv[i], "--sizes") == 0) {
            size_count = 0;
            for (const char *p = argv[i + 1]; *p != '\0';) {
                if (size_count == MAX_SIZES)
                    usage();
                sizes[size_count++] = number(p, 1, 65536);
                p = strchr(p, ',');
                if (p == NULL)
                    break;
                p++;
            }
        } else {
            usage();
        }
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fail("sched_setaffinity");

    pthread_t worker;
    if (pthread_create(&worker, NULL, pool_worker, NULL) != 0)
        fail("pthread_create");
    double fork_wall, fork_cpu, thread_wall, thread_cpu, pool_wall, pool_cpu;
    measure(one_fork, ops, &fork_wall, &fork_cpu);
    measure(one_thread, ops, &thread_wall, &thread_cpu);
    measure(one_handoff, ops * 10, &pool_wall, &pool_cpu);
    pthread_mutex_lock(&pool.lock);
    pool.stop = true;
    pthread_cond_signal(&pool.job_ready);
    pthread_mutex_unlock(&pool.lock);
    pthread_join(worker, NULL);

    printf("{\"cpu\": %d, \"ops\": %ld, \"rounds\": %d,\n \"ways\": [\n", cpu, ops, ROUNDS);
    printf("  {\"way\": \"fork\", \"wall_us\": %.3f, \"cpu_us\": %.3f},\n", fork_wall, fork_cpu);
    printf("  {\"way\": \"pthread_create\", \"wall_us\": %.3f, \"cpu_us\": %.3f},\n", thread_wall, thread_cpu);
    printf("  {\"way\": \"pool hand-off\", \"wall_us\": %.3f, \"cpu_us\": %.3f}],\n", pool_wall, pool_cpu);
    printf(" \"fork_by_parent_size\": [");
    for (int s = 0; s < size_count; s++) {
        size_t bytes = (size_t)sizes[s] << 20;
        char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED)
            fail("mmap");
        for (size_t at = 0; at < bytes; at += 4096)
            memory[at] = (char)at; /* resident, and dirty: the child must share every page copy-on-write */
        long forks = sizes[s] >= 500 ? 20 : 100;
        double wall, cpu_time;
        measure(one_fork, forks, &wall, &cpu_time);
        printf("%s\n  {\"parent_mib\": %ld, \"fork_wall_us\": %.3f, \"fork_cpu_us\": %.3f}", s ? "," : "", sizes[s],
               wall, cpu_time);
        munmap(memory, bytes);
    }
    printf("]}\n");
    return 0;
}
