/* test_chan.c - unit tests of the channels (servers/common/chan.c) and of the processes that use
 * them (servers/common/scheduler.c): order and counts through a buffered channel, the rendezvous
 * of an unbuffered one, select (priority, no wait, waiting on several, the waiters it leaves
 * behind), close, processes meeting processes and threads, and many threads racing on selects.
 * Built plain, under ASan+UBSan and under TSan by make test. Each check prints PASS or FAIL; the
 * last line is "N passed, N failed". */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "scheduler.h"
#include "unit_check.h"

static pthread_t start(void *(*body)(void *), void *arg)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, body, arg) != 0) {
        perror("pthread_create");
        exit(1);
    }
    return thread;
}

static void sleep_ms(int ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&pause, NULL);
}

/* --- a buffered channel between two threads: every value, in order ----------------------------- */

#define COUNT 100000

static void *send_count(void *arg)
{
    struct chan *chan = arg;
    for (long i = 0; i < COUNT; i++)
        chan_send(chan, &i);
    chan_close(chan);
    return NULL;
}

static void buffered_in_order(size_t capacity, const char *name)
{
    struct chan *chan = chan_create(capacity, sizeof(long));
    pthread_t sender = start(send_count, chan);
    long value, expected = 0, out_of_order = 0;
    while (chan_recv(chan, &value)) {
        if (value != expected)
            out_of_order++;
        expected = value + 1;
    }
    pthread_join(sender, NULL);
    check(expected == COUNT && out_of_order == 0, name,
          "received up to %ld of %d, %ld out of order", expected, COUNT, out_of_order);
    chan_destroy(chan);
}

/* --- unbuffered: the send returns only once a receiver took the value ---------------------------- */

static atomic_bool sent;

static void *send_one(void *arg)
{
    int value = 42;
    chan_send(arg, &value);
    atomic_store(&sent, true);
    return NULL;
}

static void unbuffered_rendezvous(void)
{
    struct chan *chan = chan_create(0, sizeof(int));
    atomic_store(&sent, false);
    pthread_t sender = start(send_one, chan);
    sleep_ms(50);
    bool early = atomic_load(&sent);
    int value = 0;
    bool ok = chan_recv(chan, &value);
    pthread_join(sender, NULL);
    check(!early && ok && value == 42 && atomic_load(&sent), "unbuffered_send_waits_for_receiver",
          "send returned before the receive: %d, received %d (ok %d)", early, value, ok);
    chan_destroy(chan);
}

/* --- select ---------------------------------------------------------------------------------------- */

static void select_without_waiting(void)
{
    struct chan *a = chan_create(1, sizeof(int)), *b = chan_create(1, sizeof(int));
    int x = 0, y = 0;
    struct chan_case cases[] = {{.chan = a, .op = CHAN_RECV, .elem = &x}, {.chan = b, .op = CHAN_RECV, .elem = &y}};
    int none = chan_select(cases, 2, false);
    int seven = 7, eight = 8;
    chan_send(b, &eight);
    int second = chan_select(cases, 2, false);
    chan_send(a, &seven);
    chan_send(b, &eight);
    int first = chan_select(cases, 2, false); /* both ready: the first given wins */
    check(none == -1 && second == 1 && y == 8 && first == 0 && x == 7, "select_no_wait_and_priority",
          "empty: %d (want -1), b ready: %d (want 1, y=%d), both: %d (want 0, x=%d)", none, second, y, first, x);
    /* a full channel: a send case is not ready */
    struct chan_case send_full = {.chan = b, .op = CHAN_SEND, .elem = &seven};
    int full = chan_select(&send_full, 1, false);
    check(full == -1, "select_send_to_full_not_ready", "a send into a full buffer was chosen: %d", full);
    chan_destroy(a);
    chan_destroy(b);
}

struct late_send {
    struct chan *chan;
    int value;
};

static void *send_late(void *arg)
{
    struct late_send *late = arg;
    sleep_ms(30);
    chan_send(late->chan, &late->value);
    return NULL;
}

static void select_waits_on_several(void)
{
    struct chan *chans[3];
    for (int i = 0; i < 3; i++)
        chans[i] = chan_create(0, sizeof(int));
    int values[3] = {0};
    struct chan_case cases[3];
    for (int i = 0; i < 3; i++)
        cases[i] = (struct chan_case){.chan = chans[i], .op = CHAN_RECV, .elem = &values[i]};
    struct late_send late = {.chan = chans[1], .value = 99};
    pthread_t sender = start(send_late, &late);
    int chosen = chan_select(cases, 3, true);
    pthread_join(sender, NULL);
    check(chosen == 1 && values[1] == 99 && cases[1].ok, "select_waits_for_any",
          "chosen %d (want 1), value %d", chosen, values[1]);
    /* The select left no waiter behind: a send that must not wait finds no receiver. */
    int stale = 0;
    for (int i = 0; i < 3; i++) {
        struct chan_case probe = {.chan = chans[i], .op = CHAN_SEND, .elem = &i};
        if (chan_select(&probe, 1, false) != -1)
            stale++;
    }
    check(stale == 0, "select_leaves_no_waiter", "%d channels still had our receiver", stale);
    for (int i = 0; i < 3; i++)
        chan_destroy(chans[i]);
}

/* --- close ------------------------------------------------------------------------------------------ */

static atomic_int close_seen;

static void *recv_until_closed(void *arg)
{
    int value;
    while (chan_recv(arg, &value))
        ;
    atomic_fetch_add(&close_seen, 1);
    return NULL;
}

static void close_wakes_and_drains(void)
{
    struct chan *chan = chan_create(4, sizeof(int));
    int one = 1, two = 2, got[3] = {0};
    chan_send(chan, &one);
    chan_send(chan, &two);
    chan_close(chan);
    bool ok1 = chan_recv(chan, &got[0]), ok2 = chan_recv(chan, &got[1]), ok3 = chan_recv(chan, &got[2]);
    bool send_ok = chan_send(chan, &one);
    check(ok1 && ok2 && !ok3 && got[0] == 1 && got[1] == 2 && !send_ok, "close_drains_then_ends",
          "recv %d %d %d (values %d %d), send after close %d", ok1, ok2, ok3, got[0], got[1], send_ok);
    chan_destroy(chan);

    struct chan *empty = chan_create(0, sizeof(int));
    atomic_store(&close_seen, 0);
    pthread_t receivers[4];
    for (int i = 0; i < 4; i++)
        receivers[i] = start(recv_until_closed, empty);
    sleep_ms(30);
    chan_close(empty);
    for (int i = 0; i < 4; i++)
        pthread_join(receivers[i], NULL);
    check(atomic_load(&close_seen) == 4, "close_wakes_every_receiver", "%d of 4 woke", atomic_load(&close_seen));
    chan_destroy(empty);
}

/* --- processes: with each other, and with a thread ----------------------------------------------------- */

#define PINGS 10000
static struct chan *ping, *pong;
static long pongs_seen, answers_seen;

static void pinger(void *arg)
{
    (void)arg;
    for (long i = 0; i < PINGS; i++) {
        long back = -1;
        chan_send(ping, &i);
        chan_recv(pong, &back);
        if (back == i + 1)
            pongs_seen++;
    }
    chan_close(ping);
}

static void ponger(void *arg)
{
    (void)arg;
    long value;
    while (chan_recv(ping, &value)) {
        value++;
        chan_send(pong, &value);
    }
}

static struct chan *questions, *answers;

static void *answering_thread(void *arg)
{
    (void)arg;
    long value;
    while (chan_recv(questions, &value)) {
        value *= 2;
        chan_send(answers, &value);
    }
    return NULL;
}

static void asker(void *arg)
{
    long offset = (long)(intptr_t)arg;
    for (long i = 0; i < PINGS / 4; i++) {
        long question = offset + i, answer = 0;
        chan_send(questions, &question);
        chan_recv(answers, &answer);
        if (answer % 2 == 0)
            answers_seen++;
        proc_yield();
    }
}

static void processes(void)
{
    scheduler_init();
    ping = chan_create(0, sizeof(long));
    pong = chan_create(0, sizeof(long));
    proc_spawn(pinger, NULL, 64 * 1024);
    proc_spawn(ponger, NULL, 64 * 1024);
    scheduler_run();
    check(pongs_seen == PINGS, "processes_ping_pong_unbuffered", "%ld of %d round trips", pongs_seen, PINGS);

    /* Four processes ask two threads; the answers channel is shared, so only the count is kept. */
    questions = chan_create(8, sizeof(long));
    answers = chan_create(0, sizeof(long));
    pthread_t threads[2] = {start(answering_thread, NULL), start(answering_thread, NULL)};
    for (long p = 0; p < 4; p++)
        proc_spawn(asker, (void *)(intptr_t)(p * PINGS), 64 * 1024);
    scheduler_run();
    chan_close(questions);
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    check(answers_seen == PINGS, "processes_ask_threads", "%ld of %d answers", answers_seen, PINGS);
    chan_destroy(ping);
    chan_destroy(pong);
    chan_destroy(questions);
    chan_destroy(answers);
    scheduler_free();
}

/* --- many threads, each selecting over two channels: every value arrives exactly once -------------------- */

#define RACERS 4
#define PER_RACER 20000
static struct chan *lanes[2];
static atomic_long received_sum, received_count;

static void *race_send(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 0; i < PER_RACER; i++) {
        long value = base + i;
        struct chan_case cases[2] = {{.chan = lanes[0], .op = CHAN_SEND, .elem = &value},
                                     {.chan = lanes[1], .op = CHAN_SEND, .elem = &value}};
        chan_select(cases, 2, true);
    }
    return NULL;
}

/* Selects over the lanes still open; a closed lane (drained) is dropped from the select. */
static void *race_recv(void *arg)
{
    (void)arg;
    long value;
    struct chan_case cases[2] = {{.chan = lanes[0], .op = CHAN_RECV, .elem = &value},
                                 {.chan = lanes[1], .op = CHAN_RECV, .elem = &value}};
    int open = 2;
    while (open > 0) {
        int chosen = chan_select(cases, open, true);
        if (!cases[chosen].ok) {
            cases[chosen] = cases[--open];
            continue;
        }
        atomic_fetch_add(&received_sum, value);
        atomic_fetch_add(&received_count, 1);
    }
    return NULL;
}

static void racing_selects(void)
{
    lanes[0] = chan_create(0, sizeof(long));
    lanes[1] = chan_create(3, sizeof(long));
    pthread_t senders[RACERS], receivers[RACERS];
    long expected_sum = 0;
    for (long r = 0; r < RACERS; r++) {
        long base = r * 1000000;
        expected_sum += PER_RACER * base + (long)PER_RACER * (PER_RACER - 1) / 2;
        senders[r] = start(race_send, (void *)(intptr_t)base);
        receivers[r] = start(race_recv, NULL);
    }
    for (int r = 0; r < RACERS; r++)
        pthread_join(senders[r], NULL);
    chan_close(lanes[0]);
    chan_close(lanes[1]);
    for (int r = 0; r < RACERS; r++)
        pthread_join(receivers[r], NULL);
    long count = atomic_load(&received_count), sum = atomic_load(&received_sum);
    check(count == RACERS * PER_RACER && sum == expected_sum, "racing_selects_lose_nothing",
          "received %ld values (want %d), sum %ld (want %ld)", count, RACERS * PER_RACER, sum, expected_sum);
    chan_destroy(lanes[0]);
    chan_destroy(lanes[1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    buffered_in_order(1, "buffered_1_in_order");
    buffered_in_order(64, "buffered_64_in_order");
    buffered_in_order(0, "unbuffered_in_order");
    unbuffered_rendezvous();
    select_without_waiting();
    select_waits_on_several();
    close_wakes_and_drains();
    processes();
    racing_selects();
    return unit_check_summary();
}
