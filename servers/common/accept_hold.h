/* accept_hold.h - when an epoll reactor accepts: the accept hold (docs/churn.md).
 *
 * A connection is accepted the moment its handshake is done, but its request comes a moment
 * later. A reactor that registers it and waits is woken twice per connection, by the next
 * handshake and by the request, and a wake-up after a sleep costs the server about 5 us and the
 * client that wakes it more. So the reactor reads each new connection at once, and if it has sent
 * nothing, the listening socket leaves the interest set until every connection accepted since has
 * spoken, or the hold runs out. Meanwhile new connections wait in the listen queue, as they do for
 * the iterative server; when the hold ends they are accepted at once with their requests there,
 * answered within the accept, and never registered.
 *
 * A hold that runs out was waiting for clients that are slow to speak (idle ones, in c10k): they
 * stop counting, everyone waiting is accepted, and no hold begins for ten holds' time, so a
 * stream of them is accepted at the usual rate.
 *
 * The reactor supplies accept_one, which accepts one connection, reads it and either answers it
 * or registers it; it calls accept_hold_silent() for one that sent nothing, when told it may. */
#ifndef C10K_ACCEPT_HOLD_H
#define C10K_ACCEPT_HOLD_H

#include <stdbool.h>

enum accepted {
    ACCEPTED_NONE,       /* no connection was waiting (or none could be taken): stop */
    ACCEPTED_ANSWERED,   /* answered and closed within its accept: more have likely come */
    ACCEPTED_REGISTERED, /* registered with epoll, to wait for its turn */
};

typedef enum accepted accept_one_fn(int listen_fd, bool may_hold);

struct accept_hold {
    int epoll_fd, listen_fd;
    int hold_us;        /* --accept-hold; 0: off, the reactor accepts as soon as epoll says */
    accept_one_fn *accept_one;
    bool on;            /* the listening socket is out of the interest set */
    unsigned number;    /* which hold: a connection counts only in the hold it was accepted in */
    int silent;         /* connections accepted in this hold that have not spoken */
    double until;       /* when this hold runs out */
    double none_before; /* after a hold ran out: no new hold before this */
};

/* The default of --accept-hold, in microseconds. */
#define ACCEPT_HOLD_DEFAULT_US 10000

/* The listening socket must be registered with epoll_fd for EPOLLIN already. */
void accept_hold_init(struct accept_hold *hold, int epoll_fd, int listen_fd, int hold_us,
                      accept_one_fn *accept_one);

/* accept_one found a connection that has sent nothing: it holds the listener. *mark is the
 * connection's own, zeroed with it. */
void accept_hold_silent(struct accept_hold *hold, unsigned *mark);
/* The connection has sent something, or is gone: it no longer holds the listener. */
void accept_hold_spoke(struct accept_hold *hold, unsigned *mark);

/* When epoll reports the listening socket: accepts one connection, and more while each is
 * answered within its accept (up to 16), and holds the listener if one of them is silent. */
void accept_hold_accept(struct accept_hold *hold);

/* Before each wait, while a hold is on: see accept_hold_before_wait. */
int accept_hold_check(struct accept_hold *hold, int wait_ms);

/* Before each wait: ends the hold once its connections have spoken (accepting those that came
 * meanwhile) or its time is up; returns wait_ms, shortened to the hold's end. Inline, so that a
 * loop with no hold on pays one test per wait, not a call (0.7 % of a keep-alive request's
 * instructions). */
static inline int accept_hold_before_wait(struct accept_hold *hold, int wait_ms)
{
    return hold->on ? accept_hold_check(hold, wait_ms) : wait_ms;
}

#endif
