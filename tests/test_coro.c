/* test_coro.c - unit tests of the coroutines (servers/common/coro.c): interleaving, values that
 * live on a coroutine's stack across switches, reuse of finished stacks, suspended coroutines
 * destroyed, deep stacks, and the guard page (an overflow must fault, in a child process). Each
 * check prints PASS or FAIL; the last line is "N passed, N failed". */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coro.h"
#include "unit_check.h"

/* --- interleaving: each coroutine appends its number, yields, and does it again ------------------ */

#define MANY 1000
#define ROUNDS 3
static int trace[MANY * ROUNDS], traced;

static void take_turns(void *arg)
{
    int me = (int)(long)arg;
    volatile int on_my_stack = me * 7; /* must survive the switches */
    for (int round = 0; round < ROUNDS; round++) {
        trace[traced++] = on_my_stack / 7;
        coro_yield();
    }
}

static void interleaving(void)
{
    static struct coro *coros[MANY];
    for (int i = 0; i < MANY; i++)
        coros[i] = coro_create(16 * 1024, take_turns, (void *)(long)i);
    bool created = true;
    for (int i = 0; i < MANY; i++)
        created = created && coros[i] != NULL;
    check(created, "a thousand coroutines are created", "coro_create returned NULL");
    if (!created)
        return;
    int finished = 0;
    for (int round = 0; round <= ROUNDS; round++)
        for (int i = 0; i < MANY; i++)
            if (coro_resume(coros[i]))
                finished++;
    bool in_order = traced == MANY * ROUNDS;
    for (int k = 0; in_order && k < traced; k++)
        in_order = trace[k] == k % MANY;
    check(in_order, "they run in turns, each keeping its stack's values", "trace broken after %d entries", traced);
    check(finished == MANY, "each returns after its last turn, on the resume after it", "%d finished", finished);
    for (int i = 0; i < MANY; i++)
        coro_destroy(coros[i]);
}

/* --- reuse, and destroying a suspended coroutine -------------------------------------------------- */

static int runs;

static void count_and_wait(void *arg)
{
    (void)arg;
    runs++;
    coro_yield();
    runs += 100; /* never: it is destroyed while suspended */
}

static void reuse(void)
{
    coro_free_spares(); /* the thousand above filled the spares */
    struct coro *first = coro_create(32 * 1024, count_and_wait, NULL);
    bool done = coro_resume(first);
    coro_destroy(first); /* suspended: its stack goes back for reuse */
    struct coro *second = coro_create(32 * 1024, count_and_wait, NULL);
    bool done2 = coro_resume(second);
    check(!done && !done2 && runs == 2, "a suspended coroutine is destroyed; a new one starts afresh", "runs=%d", runs);
    check(second == first, "the new one takes the destroyed one's stack", "%p vs %p", (void *)second, (void *)first);
    coro_destroy(second);
}

/* --- deep stacks and the guard page -------------------------------------------------------------- */

static long depth(long n)
{
    volatile char frame[1024];
    frame[0] = (char)n;
    return n == 0 ? 0 : depth(n - 1) + 1 + (frame[0] - (char)n); /* the frame is used: not optimised away */
}

static long depth_result;

static void go_deep(void *arg)
{
    depth_result = depth((long)arg);
}

static void deep_and_overflow(void)
{
    /* 50 frames of about 1 KiB (more under AddressSanitizer, with its redzones) in 256 KiB: fine. */
    struct coro *coro = coro_create(256 * 1024, go_deep, (void *)50L);
    bool done = coro_resume(coro);
    check(done && depth_result == 50, "50 KiB of frames fit in a 256 KiB stack", "result %ld", depth_result);
    coro_destroy(coro);

    /* 1000 frames in a 64 KiB stack: the guard page must stop it, with SIGSEGV (in a child). */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        freopen("/dev/null", "w", stderr); /* a sanitizer's report of the overflow */
        struct coro *small = coro_create(64 * 1024, go_deep, (void *)1000L);
        coro_resume(small);
        _exit(0); /* the overflow went unnoticed */
    }
    int status = 0;
    waitpid(child, &status, 0);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer catches the fault itself, reports a stack overflow and exits with 1. */
    bool faulted = WIFEXITED(status) && WEXITSTATUS(status) == 1;
#else
    bool faulted = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
#endif
    check(faulted, "a stack overflow hits the guard page (SIGSEGV)",
          "the child %s %d", WIFSIGNALED(status) ? "died of signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                                               : WEXITSTATUS(status));
    check(coro_stack_size(1) == (size_t)sysconf(_SC_PAGESIZE) && coro_stack_size(65536) == 65536,
          "stack sizes are whole pages", "%zu", coro_stack_size(1));
}

int main(void)
{
    interleaving();
    reuse();
    deep_and_overflow();
    coro_free_spares();
    return unit_check_summary();
}
