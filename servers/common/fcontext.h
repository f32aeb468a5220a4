/* fcontext.h - Boost.Context's context switch, declared for C: its entry points in
 * libboost_context have C linkage, but Boost's own header (boost/context/detail/fcontext.hpp) is
 * C++. jump_fcontext(to, data) suspends the running context and continues `to`, where the other
 * side's jump_fcontext returns {the context that jumped, data}; make_fcontext prepares a context
 * that starts fn on the stack whose top is sp. */
#ifndef C10K_FCONTEXT_H
#define C10K_FCONTEXT_H

#include <stddef.h>

typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;

extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

#endif
