/* coro.c - stackful coroutines on Boost.Context's fcontext; see coro.h.
 *
 * jump_fcontext(to, data) saves the running context on its own stack, switches to `to` and returns
 * there the transfer_t that the other side's jump_fcontext was given: the context that jumped
 * (so it can be jumped back to) and a pointer. A coroutine's first jump arrives in trampoline()
 * with its struct coro; from then on, coro_resume() and coro_yield() jump back and forth, each
 * side keeping the other's latest context. */
#include "coro.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fcontext.h"
#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define switch_begin(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define switch_end(save, bottom_old, size_old) __sanitizer_finish_switch_fiber(save, bottom_old, size_old)
#else
#define switch_begin(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define switch_end(save, bottom_old, size_old) ((void)(save), (void)(bottom_old), (void)(size_old))
#endif

#define SPARE_STACKS 256 /* finished coroutines kept for reuse */

struct coro {
    fcontext_t context;      /* where the coroutine goes on when resumed */
    fcontext_t scheduler;    /* where coro_yield() goes back to */
    void (*body)(void *arg);
    void *arg;
    bool finished;
    char *mapping;           /* the guard page, then the stack */
    size_t stack_bytes;
    void *fake_stack;        /* AddressSanitizer's, while suspended */
    struct coro *next_spare;
};

static _Thread_local struct coro *running;
static _Thread_local struct coro *spares;
static _Thread_local int spare_count;
/* The scheduler's stack, as AddressSanitizer reports it on the first switch. */
static _Thread_local const void *scheduler_bottom;
static _Thread_local size_t scheduler_size;
static _Thread_local void *scheduler_fake_stack;

static size_t page_size(void)
{
    static size_t size;
    if (size == 0)
        size = (size_t)sysconf(_SC_PAGESIZE);
    return size;
}

size_t coro_stack_size(size_t stack_bytes)
{
    size_t page = page_size();
    return (stack_bytes + page - 1) / page * page;
}

static void trampoline(transfer_t from)
{
    struct coro *coro = from.data;
    coro->scheduler = from.fctx;
    switch_end(NULL, &scheduler_bottom, &scheduler_size);
    coro->body(coro->arg);
    coro->finished = true;
    /* This stack is done with: nothing of it is to be saved (NULL). */
    switch_begin(NULL, scheduler_bottom, scheduler_size);
    jump_fcontext(coro->scheduler, NULL);
    abort(); /* a finished coroutine is never resumed */
}

struct coro *coro_create(size_t stack_bytes, void (*body)(void *arg), void *arg)
{
    stack_bytes = coro_stack_size(stack_bytes);
    struct coro *coro = spares;
    if (coro != NULL && coro->stack_bytes == stack_bytes) { /* a server's are all one size */
        spares = coro->next_spare;
        spare_count--;
    } else {
        coro = calloc(1, sizeof *coro);
        if (coro == NULL)
            return NULL;
        size_t page = page_size();
        coro->mapping = mmap(NULL, page + stack_bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (coro->mapping == MAP_FAILED) {
            free(coro);
            return NULL;
        }
        if (mprotect(coro->mapping, page, PROT_NONE) != 0) {
            int error = errno;
            munmap(coro->mapping, page + stack_bytes);
            free(coro);
            errno = error;
            return NULL;
        }
        coro->stack_bytes = stack_bytes;
    }
    coro->body = body;
    coro->arg = arg;
    coro->finished = false;
    coro->fake_stack = NULL;
    char *top = coro->mapping + page_size() + stack_bytes; /* the stack grows down from here */
    coro->context = make_fcontext(top, stack_bytes, trampoline);
    return coro;
}

bool coro_resume(struct coro *coro)
{
    running = coro;
    switch_begin(&scheduler_fake_stack, coro->mapping + page_size(), coro->stack_bytes);
    transfer_t back = jump_fcontext(coro->context, coro);
    switch_end(scheduler_fake_stack, NULL, NULL);
    running = NULL;
    coro->context = back.fctx;
    return coro->finished;
}

void coro_yield(void)
{
    struct coro *coro = running;
    switch_begin(&coro->fake_stack, scheduler_bottom, scheduler_size);
    transfer_t back = jump_fcontext(coro->scheduler, NULL);
    switch_end(coro->fake_stack, &scheduler_bottom, &scheduler_size);
    coro->scheduler = back.fctx;
}

static void unmap(struct coro *coro)
{
    if (munmap(coro->mapping, page_size() + coro->stack_bytes) != 0)
        log_error("munmap: %m");
    free(coro);
}

void coro_destroy(struct coro *coro)
{
    if (spare_count < SPARE_STACKS) {
        coro->next_spare = spares;
        spares = coro;
        spare_count++;
        return;
    }
    unmap(coro);
}

void coro_free_spares(void)
{
    while (spares != NULL) {
        struct coro *coro = spares;
        spares = coro->next_spare;
        unmap(coro);
    }
    spare_count = 0;
}
