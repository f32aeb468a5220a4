/* coro_switch.c - what one coroutine switch costs with each candidate the coroutine server could
 * be built on: glibc's ucontext (swapcontext also saves and restores the signal mask: one
 * rt_sigprocmask system call per switch), Boost.Context's fcontext (jump_fcontext, assembly in
 * libboost_context, callable from C) and libpcl (co_call / co_resume).
 *
 *     coro_switch [--switches N] [--rounds R]
 *
 * Each candidate ping-pongs between the caller and one coroutine N times (2N switches); the
 * candidates run in turn, R rounds, rotated, and the median of the rounds is printed in ns per
 * switch with its min and max, then each candidate's ratio to fcontext. Run it pinned (make
 * bench-switch does, on CPU 0): the figures are per switch on one core. */

#include <errno.h>
#include <pcl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include "cli_number.h"
#include "fcontext.h"

#define STACK_BYTES (64 * 1024)
#define MAX_ROUNDS 99

static long switches = 1000000;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *stack_alloc(void)
{
    void *stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
        fprintf(stderr, "coro_switch: mmap: %s\n", strerror(errno));
        exit(1);
    }
    return stack;
}

/* --- ucontext ---------------------------------------------------------------------------------- */

static ucontext_t uc_main, uc_coro;

static void uc_body(void)
{
    for (;;)
        swapcontext(&uc_coro, &uc_main);
}

static double run_ucontext(void)
{
    void *stack = stack_alloc();
    if (getcontext(&uc_coro) != 0) {
        perror("getcontext");
        exit(1);
    }
    uc_coro.uc_stack.ss_sp = stack;
    uc_coro.uc_stack.ss_size = STACK_BYTES;
    uc_coro.uc_link = NULL;
    makecontext(&uc_coro, uc_body, 0);
    double start = now_ns();
    for (long i = 0; i < switches; i++)
        swapcontext(&uc_main, &uc_coro);
    double elapsed = now_ns() - start;
    munmap(stack, STACK_BYTES);
    return elapsed / (2.0 * switches);
}

/* --- fcontext ---------------------------------------------------------------------------------- */

static void fc_body(transfer_t from)
{
    for (;;)
        from = jump_fcontext(from.fctx, NULL);
}

static double run_fcontext(void)
{
    char *stack = stack_alloc();
    /* The stack grows down: make_fcontext takes its top. */
    fcontext_t coro = make_fcontext(stack + STACK_BYTES, STACK_BYTES, fc_body);
    double start = now_ns();
    for (long i = 0; i < switches; i++)
        coro = jump_fcontext(coro, NULL).fctx;
    double elapsed = now_ns() - start;
    munmap(stack, STACK_BYTES);
    return elapsed / (2.0 * switches);
}

/* --- libpcl ------------------------------------------------------------------------------------ */

static void pcl_body(void *unused)
{
    (void)unused;
    for (;;)
        co_resume();
}

static double run_pcl(void)
{
    void *stack = stack_alloc();
    coroutine_t coro = co_create(pcl_body, NULL, stack, STACK_BYTES);
    if (coro == NULL) {
        fprintf(stderr, "coro_switch: co_create failed\n");
        exit(1);
    }
    double start = now_ns();
    for (long i = 0; i < switches; i++)
        co_call(coro);
    double elapsed = now_ns() - start;
    /* The coroutine never ends; co_delete frees its descriptor (the stack is ours). */
    co_delete(coro);
    munmap(stack, STACK_BYTES);
    return elapsed / (2.0 * switches);
}

/* --- the comparison ---------------------------------------------------------------------------- */

static const struct candidate {
    const char *name;
    double (*run)(void);
} candidates[] = {
    {"fcontext", run_fcontext},
    {"ucontext", run_ucontext},
    {"libpcl", run_pcl},
};
#define CANDIDATES (sizeof candidates / sizeof candidates[0])

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: coro_switch [--switches N (1000-100000000)] [--rounds R (1-%d)]\n", MAX_ROUNDS);
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
    int rounds = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--switches") == 0 && i + 1 < argc)
            switches = number(argv[++i], 1000, 100000000);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (int)number(argv[++i], 1, MAX_ROUNDS);
        else
            usage();
    }
    if (co_thread_init() != 0) {
        fprintf(stderr, "coro_switch: co_thread_init failed\n");
        return 1;
    }
    double ns[CANDIDATES][MAX_ROUNDS];
    for (size_t c = 0; c < CANDIDATES; c++)
        candidates[c].run(); /* warm-up: page in the stack and the code */
    /* Rotated: round r starts with candidate r mod 3, so drift falls on all alike. */
    for (int r = 0; r < rounds; r++)
        for (size_t k = 0; k < CANDIDATES; k++) {
            size_t c = (r + k) % CANDIDATES;
            ns[c][r] = candidates[c].run();
        }
    double median[CANDIDATES];
    printf("%ld round trips per run, %d rounds, median (min-max) ns per switch:\n", switches, rounds);
    for (size_t c = 0; c < CANDIDATES; c++) {
        qsort(ns[c], rounds, sizeof ns[c][0], compare_doubles);
        median[c] = ns[c][rounds / 2];
        printf("  %-9s %8.1f ns  (%.1f-%.1f)\n", candidates[c].name, median[c], ns[c][0], ns[c][rounds - 1]);
    }
    for (size_t c = 1; c < CANDIDATES; c++)
        printf("  %s / %s = %.1fx\n", candidates[c].name, candidates[0].name, median[c] / median[0]);
    co_thread_cleanup();
    return 0;
}
