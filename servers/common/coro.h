/* coro.h - stackful coroutines for one thread: each runs a function on its own stack and can stop
 * in the middle (coro_yield) to be continued later (coro_resume), so code that waits can be
 * written as straight-line code while one thread runs thousands of them.
 *
 * The switch is Boost.Context's fcontext (jump_fcontext in libboost_context: it saves and restores
 * only the callee-saved registers and the stack pointer, no system call). It was chosen by
 * measurement (bin/coro-switch, docs/coroutine.md): about 6 ns per switch, against about 220 ns for
 * glibc's swapcontext, which saves and restores the signal mask with a system call on every
 * switch, and about 240 ns for libpcl, which is built on ucontext.
 *
 * Each stack is mapped with one inaccessible guard page below it, so an overflow faults at once
 * instead of writing over another coroutine's memory; only the pages a coroutine touches become
 * resident. Finished coroutines' stacks are kept for reuse (a few hundred), so a new connection
 * costs no mmap. Under AddressSanitizer every switch is announced to it (the fiber API), so it
 * knows which stack is live. */
#ifndef C10K_CORO_H
#define C10K_CORO_H

#include <stdbool.h>
#include <stddef.h>

struct coro;

/* A coroutine that will run body(arg) on a stack of stack_bytes (rounded up to whole pages) when
 * first resumed; NULL (errno set) when the memory cannot be had. */
struct coro *coro_create(size_t stack_bytes, void (*body)(void *arg), void *arg);

/* Runs the coroutine until it yields or its body returns; true once it has returned. Called from
 * the thread's own stack (the scheduler), never from inside a coroutine. */
bool coro_resume(struct coro *coro);

/* From inside a coroutine: back to the coro_resume() that ran it, until it is resumed again. */
void coro_yield(void);

/* Frees a coroutine that has returned or is suspended in coro_yield() (its stack is reused). */
void coro_destroy(struct coro *coro);

/* Unmaps the stacks kept for reuse (at exit, so that nothing is left for a leak checker). */
void coro_free_spares(void);

/* The bytes of stack a coroutine gets for stack_bytes (whole pages), and the page size. */
size_t coro_stack_size(size_t stack_bytes);

#endif
