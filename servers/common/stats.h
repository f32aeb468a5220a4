/* stats.h - the counters a server prints in one line on exit.
 *
 * Each thread counts into its own copy (no atomics on the request path) and adds it to the totals
 * with stats_flush() before it ends; the totals live in a shared mapping, so the children of a
 * forking server can flush into them too. */
#ifndef C10K_STATS_H
#define C10K_STATS_H

#include <stdint.h>

enum stats_counter {
    STAT_ACCEPTED,
    STAT_REQUESTS,      /* responses sent, any status */
    STAT_SHED,          /* accepted and closed at once at the descriptor limit */
    STAT_REFUSED,       /* answered 503 at once: no process, thread or queue slot to serve it */
    STAT_STATUS_400,
    STAT_STATUS_404,
    STAT_STATUS_405,
    STAT_STATUS_408,
    STAT_STATUS_413,
    STAT_STATUS_431,
    STAT_STATUS_501,
    STAT_STATUS_503,
    STAT_STATUS_505,
    STAT_IDLE_TIMEOUTS,
    STAT_SEND_TIMEOUTS,
    STAT_RESETS,        /* the peer reset the connection */
    STAT_IO_ERRORS,     /* any other failed read or write */
    STAT_DROPPED,       /* closed for want of a resource: memory, an epoll slot, a descriptor slot */
    STAT_COUNT,
};

extern _Thread_local uint64_t stats_local[STAT_COUNT];

static inline void stats_add(enum stats_counter counter, uint64_t amount)
{
    stats_local[counter] += amount;
}

/* Counts a response with this status (every response, and errors by status). */
void stats_count_response(int status);

/* Creates the shared totals; call once, before any thread or child process starts. */
void stats_init(void);
/* Adds this thread's counts to the totals and zeroes them. */
void stats_flush(void);
/* Prints "stats: accepted=N requests=N ..." on stderr, after a flush of the calling thread. */
void stats_print(void);

#endif
