/* ring_bench.c - messages per second from one thread to another: the Disruptor-style ring of
 * servers/common/ring.h against a queue under a mutex with condition variables and against the
 * CSP server's channel (servers/common/chan.c, buffered, as many slots), at batch sizes 1 to 256
 * (the producer publishes a batch at once; the consumer takes all that is there; a channel has no
 * batches: its producer sends the batch's values one by one, its consumer takes one at a time).
 *
 *     ring-bench [--messages N] [--rounds R] [--producer-cpu C] [--consumer-cpu C] [--size S]
 *
 * The producer and the consumer are pinned (by default to CPUs 0 and 1 where there are two, both
 * to 0 otherwise); the designs alternate within each round and the median of the rounds is
 * printed per batch size, with the ring's ratio to the queue. The consumer checks that every
 * message arrives once and in order: a lost or reordered one ends the run with status 1.
 *
 * Waiting: the ring's sides spin (with a pause instruction) and then yield the CPU, as the
 * Disruptor's yielding wait strategy does; the queue's sides sleep on their condition variables,
 * woken only when the other side is waiting; a channel's side that must wait sleeps on a
 * condition variable of its own, queued in the channel, and is woken by the side that completes
 * its operation. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_number.h"
#include "chan.h"
#include "ring.h"

#define MAX_ROUNDS 99
#define SPINS_BEFORE_YIELD 200

static long messages = 4000000;
static size_t ring_size = 1024;
static int producer_cpu, consumer_cpu;
static size_t batch;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int error = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (error != 0) {
        fprintf(stderr, "ring-bench: cannot pin to CPU %d: %s\n", cpu, strerror(error));
        exit(1);
    }
}

static void relax(int *spins)
{
    if (++*spins < SPINS_BEFORE_YIELD) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        *spins = 0;
        sched_yield();
    }
}

static _Noreturn void lost(long got, long expected)
{
    fprintf(stderr, "ring-bench: message %ld arrived where %ld was due: lost or reordered\n", got, expected);
    exit(1);
}

/* --- the ring ---------------------------------------------------------------------------------- */

static struct ring ring;

static void *ring_producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    for (long sent = 0; sent < messages;) {
        size_t n = (size_t)(messages - sent) < batch ? (size_t)(messages - sent) : batch;
        for (int spins = 0; !ring_has_room(&ring, n);)
            relax(&spins);
        for (size_t i = 0; i < n; i++) {
            struct ring_message *slot = ring_slot(&ring, i);
            slot->kind = 1;
            slot->data = (void *)(sent + (long)i);
        }
        ring_publish(&ring, n);
        sent += (long)n;
    }
    return NULL;
}

static void ring_consumer(void)
{
    pin(consumer_cpu);
    for (long expected = 0; expected < messages;) {
        uint64_t first;
        size_t n;
        for (int spins = 0; (n = ring_available(&ring, &first)) == 0;)
            relax(&spins);
        for (size_t i = 0; i < n; i++, expected++)
            if ((long)ring_at(&ring, first + i)->data != expected)
                lost((long)ring_at(&ring, first + i)->data, expected);
        ring_consume(&ring, n);
    }
}

/* --- the locked queue -------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    long *items;
    size_t head, count;
    bool consumer_waits, producer_waits;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER,
           .not_full = PTHREAD_COND_INITIALIZER};

static void *queue_producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    for (long sent = 0; sent < messages;) {
        size_t n = (size_t)(messages - sent) < batch ? (size_t)(messages - sent) : batch;
        pthread_mutex_lock(&queue.lock);
        while (ring_size - queue.count < n) {
            queue.producer_waits = true;
            pthread_cond_wait(&queue.not_full, &queue.lock);
            queue.producer_waits = false;
        }
        for (size_t i = 0; i < n; i++)
            queue.items[(queue.head + queue.count + i) % ring_size] = sent + (long)i;
        queue.count += n;
        if (queue.consumer_waits)
            pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
        sent += (long)n;
    }
    return NULL;
}

static void queue_consumer(void)
{
    pin(consumer_cpu);
    long *taken = malloc(ring_size * sizeof *taken);
    if (taken == NULL) {
        fprintf(stderr, "ring-bench: out of memory\n");
        exit(1);
    }
    for (long expected = 0; expected < messages;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0) {
            queue.consumer_waits = true;
            pthread_cond_wait(&queue.not_empty, &queue.lock);
            queue.consumer_waits = false;
        }
        size_t n = queue.count; /* all of it, in one batch, as the ring's consumer does */
        for (size_t i = 0; i < n; i++)
            taken[i] = queue.items[(queue.head + i) % ring_size];
        queue.head = (queue.head + n) % ring_size;
        queue.count = 0;
        if (queue.producer_waits)
            pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
        for (size_t i = 0; i < n; i++, expected++)
            if (taken[i] != expected)
                lost(taken[i], expected);
    }
    free(taken);
}

/* --- the channel ------------------------------------------------------------------------------- */

static struct chan *channel;

static void *chan_producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    for (long sent = 0; sent < messages; sent++)
        chan_send(channel, &sent);
    return NULL;
}

static void chan_consumer(void)
{
    pin(consumer_cpu);
    for (long expected = 0; expected < messages; expected++) {
        long value;
        if (!chan_recv(channel, &value) || value != expected)
            lost(value, expected);
    }
}

/* --- the comparison ---------------------------------------------------------------------------- */

/* Runs one design once; returns ns per message. The consumer runs in a thread of its own too, so
 * that both are pinned and the main thread only waits. */
struct design {
    const char *name;
    void *(*producer)(void *);
    void (*consumer)(void);
};

static void *run_consumer(void *design)
{
    ((const struct design *)design)->consumer();
    return NULL;
}

static double run(const struct design *design)
{
    if (!ring_init(&ring, ring_size)) {
        fprintf(stderr, "ring-bench: out of memory\n");
        exit(1);
    }
    queue.head = queue.count = 0;
    channel = chan_create(ring_size, sizeof(long));
    pthread_t producer, consumer;
    double start = now_s();
    if (pthread_create(&consumer, NULL, run_consumer, (void *)design) != 0 ||
        pthread_create(&producer, NULL, design->producer, NULL) != 0) {
        fprintf(stderr, "ring-bench: pthread_create failed\n");
        exit(1);
    }
    pthread_join(producer, NULL);
    pthread_join(consumer, NULL);
    double elapsed = now_s() - start;
    ring_free(&ring);
    chan_destroy(channel);
    return elapsed * 1e9 / messages;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: ring-bench [--messages N (1000-1000000000)] [--rounds R (1-%d)] [--producer-cpu C]\n"
                    "                  [--consumer-cpu C] [--size S (power of two, 256-1048576)]\n", MAX_ROUNDS);
    exit(2);
}

static long number(const char *text, long low, long high)
{
    long value;
    if (!cli_number(text, low, high, '\0', &value))
        usage();
    return value;
}

int main(int argc, char **argv)
{
    int rounds = 5;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    consumer_cpu = cpus > 1 ? 1 : 0;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL)
            usage();
        if (strcmp(argv[i], "--messages") == 0)
            messages = number(value, 1000, 1000000000);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = (int)number(value, 1, MAX_ROUNDS);
        else if (strcmp(argv[i], "--producer-cpu") == 0)
            producer_cpu = (int)number(value, 0, cpus - 1);
        else if (strcmp(argv[i], "--consumer-cpu") == 0)
            consumer_cpu = (int)number(value, 0, cpus - 1);
        else if (strcmp(argv[i], "--size") == 0)
            ring_size = (size_t)number(value, 256, 1048576);
        else
            usage();
        i++;
    }
    if ((ring_size & (ring_size - 1)) != 0)
        usage();
    queue.items = malloc(ring_size * sizeof *queue.items);
    if (queue.items == NULL) {
        fprintf(stderr, "ring-bench: out of memory\n");
        return 1;
    }
    static const struct design designs[] = {
        {"ring", ring_producer, ring_consumer},
        {"mutex+condvar", queue_producer, queue_consumer},
        {"channel", chan_producer, chan_consumer},
    };
    enum { DESIGNS = sizeof designs / sizeof designs[0] };
    printf("%ld messages per run, %zu slots, producer on CPU %d, consumer on CPU %d, %d rounds, medians:\n",
           messages, ring_size, producer_cpu, consumer_cpu, rounds);
    printf("%6s  %14s %9s  %14s %9s  %14s %9s  %10s  %s\n", "batch", "ring msg/s", "ns/msg", "queue msg/s", "ns/msg",
           "channel msg/s", "ns/msg", "ring/queue", "ring/channel");
    for (batch = 1; batch <= 256; batch *= 2) {
        double ns[DESIGNS][MAX_ROUNDS];
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < DESIGNS; k++) {
                int d = (r + k) % DESIGNS; /* rotated: drift falls on all */
                ns[d][r] = run(&designs[d]);
            }
        double median[DESIGNS];
        for (int d = 0; d < DESIGNS; d++) {
            qsort(ns[d], rounds, sizeof ns[d][0], compare_doubles);
            median[d] = ns[d][rounds / 2];
        }
        printf("%6zu  %14.0f %9.1f  %14.0f %9.1f  %14.0f %9.1f  %9.1fx  %.1fx\n", batch, 1e9 / median[0], median[0],
               1e9 / median[1], median[1], 1e9 / median[2], median[2], median[1] / median[0], median[2] / median[0]);
        fflush(stdout);
    }
    free(queue.items);
    return 0;
}
