/* chan.h - channels, as in CSP and Go: a process or a thread sends a value, another receives it.
 *
 * A channel carries values of one size. An unbuffered one (capacity 0) is a rendezvous: a send
 * waits until a receiver takes the value, so the two meet. A buffered one holds up to capacity
 * values, so a send waits only when it is full, a receive only when it is empty. chan_select()
 * waits on several operations at once and does exactly one of them (or none, when asked not to
 * wait). Closing a channel ends every receive once its buffer is drained.
 *
 * The callers may be processes of the scheduler (common/scheduler.h), which park and let the
 * other processes run, or plain threads, which sleep on a condition variable: the same channel
 * joins the two (the CSP server's handler processes and its worker threads). Each channel has a
 * lock; a waiting caller sits in the channel's queue of senders or receivers, and whoever
 * completes its operation copies the value straight to or from the waiter's memory and wakes it. */
#ifndef C10K_CHAN_H
#define C10K_CHAN_H

#include <stdbool.h>
#include <stddef.h>

struct chan;

/* A channel of values of elem_size bytes holding up to capacity of them (0: unbuffered). Dies
 * when the memory cannot be had. */
struct chan *chan_create(size_t capacity, size_t elem_size);
/* Frees a channel nobody waits on any more. */
void chan_destroy(struct chan *chan);

/* Sends *elem, waiting while no receiver or no room is there; false if the channel is closed. */
bool chan_send(struct chan *chan, const void *elem);
/* Receives into *elem, waiting while there is nothing; false once it is closed and empty. */
bool chan_recv(struct chan *chan, void *elem);
/* Ends every waiting and later receive (once the buffer is drained) and every send. */
void chan_close(struct chan *chan);

enum chan_op { CHAN_SEND, CHAN_RECV };

struct chan_case {
    struct chan *chan;
    enum chan_op op;
    void *elem;    /* the value to send, or where to receive */
    bool ok;       /* after the case was chosen: false if the channel was closed */
};

/* Does one of the cases that can go on: the first ready one in the order given (so a caller can
 * give priority) or, if none is and `wait`, the first that becomes ready. Returns its index, or
 * -1 when none was ready and !wait. A channel may appear in several cases. */
int chan_select(struct chan_case *cases, int count, bool wait);

/* Values in the buffer now (a snapshot, for statistics). */
size_t chan_buffered(struct chan *chan);

#endif
