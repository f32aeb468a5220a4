/* chan.c - see chan.h. The design is Go's (runtime/chan.go and select.go): a lock per channel, a
 * ring buffer, and queues of waiters; a select that must wait puts a waiter in the queue of every
 * channel it names, and the first operation to claim the caller (a compare-and-swap on its
 * `claimed`) wins, the other waiters being skipped and unlinked. */
#include "chan.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scheduler.h"
#include "threads.h"

/* One blocked caller: a process of the scheduler, or a thread with its condition variable. */
struct parker {
    atomic_bool claimed;       /* an operation has been done for this caller */
    int chosen;                /* which case, written by the claimer before the wake-up */
    bool ok;
    struct proc *proc;         /* NULL: a thread */
    pthread_mutex_t lock;      /* a thread's sleep */
    pthread_cond_t woken_cond;
    bool woken;
};

/* A case of a waiting caller, in one channel's queue. */
struct waiter {
    struct waiter *prev, *next;
    struct parker *parker;
    int case_index;
    void *elem;
    bool queued;
};

struct waiter_queue {
    struct waiter *head, *tail;
};

struct chan {
    pthread_mutex_t lock;
    size_t elem_size, capacity;
    size_t count, first;       /* values in the buffer; index of the oldest */
    bool closed;
    struct waiter_queue senders, receivers;
    unsigned char *buffer;
};

struct chan *chan_create(size_t capacity, size_t elem_size)
{
    struct chan *chan = calloc(1, sizeof *chan);
    if (chan == NULL || (capacity > 0 && (chan->buffer = calloc(capacity, elem_size)) == NULL))
        die("out of memory for a channel of %zu values", capacity);
    if (pthread_mutex_init(&chan->lock, NULL) != 0)
        die("pthread_mutex_init failed");
    chan->capacity = capacity;
    chan->elem_size = elem_size;
    return chan;
}

void chan_destroy(struct chan *chan)
{
    if (chan == NULL)
        return;
    pthread_mutex_destroy(&chan->lock);
    free(chan->buffer);
    free(chan);
}

static void lock(pthread_mutex_t *mutex)
{
    if (pthread_mutex_lock(mutex) != 0)
        die("pthread_mutex_lock failed");
}

/* --- waiter queues ----------------------------------------------------------------------------- */

static void enqueue(struct waiter_queue *queue, struct waiter *waiter)
{
    waiter->next = NULL;
    waiter->prev = queue->tail;
    if (queue->tail == NULL)
        queue->head = waiter;
    else
        queue->tail->next = waiter;
    queue->tail = waiter;
    waiter->queued = true;
}

static void unlink_waiter(struct waiter_queue *queue, struct waiter *waiter)
{
    if (!waiter->queued)
        return;
    if (waiter->prev == NULL)
        queue->head = waiter->next;
    else
        waiter->prev->next = waiter->next;
    if (waiter->next == NULL)
        queue->tail = waiter->prev;
    else
        waiter->next->prev = waiter->prev;
    waiter->queued = false;
}

/* The first waiter in the queue that can still be claimed, claimed and unlinked; waiters of a
 * select that another channel already claimed are unlinked on the way. */
static struct waiter *claim_first(struct waiter_queue *queue)
{
    while (queue->head != NULL) {
        struct waiter *waiter = queue->head;
        unlink_waiter(queue, waiter);
        bool expected = false;
        /* acq_rel: the claimer's writes to the parker come after it, and two claimers on two
         * channels (two locks) are ordered by it alone. */
        if (atomic_compare_exchange_strong_explicit(&waiter->parker->claimed, &expected, true,
                                                    memory_order_acq_rel, memory_order_acquire))
            return waiter;
    }
    return NULL;
}

static void wake(struct waiter *waiter, bool ok)
{
    struct parker *parker = waiter->parker;
    parker->chosen = waiter->case_index;
    parker->ok = ok;
    if (parker->proc != NULL) {
        proc_ready(parker->proc);
        return;
    }
    lock(&parker->lock);
    parker->woken = true;
    pthread_cond_signal(&parker->woken_cond);
    pthread_mutex_unlock(&parker->lock);
}

/* --- one case, under its channel's lock -------------------------------------------------------- */

static unsigned char *slot(struct chan *chan, size_t index)
{
    return chan->buffer + ((chan->first + index) % chan->capacity) * chan->elem_size;
}

/* Does the case if it can go on now; true if it was done (c->ok says how). */
static bool try_case(struct chan_case *c)
{
    struct chan *chan = c->chan;
    if (c->op == CHAN_SEND) {
        if (chan->closed) {
            c->ok = false;
            return true;
        }
        struct waiter *receiver = claim_first(&chan->receivers);
        if (receiver != NULL) { /* only when the buffer is empty: hand the value over */
            memcpy(receiver->elem, c->elem, chan->elem_size);
            wake(receiver, true);
        } else if (chan->count < chan->capacity) {
            memcpy(slot(chan, chan->count), c->elem, chan->elem_size);
            chan->count++;
        } else {
            return false;
        }
        c->ok = true;
        return true;
    }
    if (chan->count > 0) {
        memcpy(c->elem, slot(chan, 0), chan->elem_size);
        chan->first = (chan->first + 1) % chan->capacity;
        chan->count--;
        struct waiter *sender = claim_first(&chan->senders); /* its value takes the freed slot */
        if (sender != NULL) {
            memcpy(slot(chan, chan->count), sender->elem, chan->elem_size);
            chan->count++;
            wake(sender, true);
        }
        c->ok = true;
        return true;
    }
    struct waiter *sender = claim_first(&chan->senders); /* unbuffered: take it from the sender */
    if (sender != NULL) {
        memcpy(c->elem, sender->elem, chan->elem_size);
        wake(sender, true);
        c->ok = true;
        return true;
    }
    if (chan->closed) {
        memset(c->elem, 0, chan->elem_size);
        c->ok = false;
        return true;
    }
    return false;
}

/* --- select ------------------------------------------------------------------------------------ */

#define MAX_CASES 16

/* The distinct channels of the cases, in address order: every caller that locks several locks
 * them in that order, so two selects cannot deadlock. */
static int lock_order(const struct chan_case *cases, int count, struct chan **order)
{
    int distinct = 0;
    for (int i = 0; i < count; i++) {
        int at = distinct;
        while (at > 0 && (uintptr_t)order[at - 1] > (uintptr_t)cases[i].chan)
            at--;
        if (at > 0 && order[at - 1] == cases[i].chan)
            continue;
        memmove(&order[at + 1], &order[at], (size_t)(distinct - at) * sizeof *order);
        order[at] = cases[i].chan;
        distinct++;
    }
    return distinct;
}

static void lock_all(struct chan **order, int distinct)
{
    for (int i = 0; i < distinct; i++)
        lock(&order[i]->lock);
}

static void unlock_all(struct chan **order, int distinct)
{
    for (int i = distinct - 1; i >= 0; i--)
        pthread_mutex_unlock(&order[i]->lock);
}

static void park(struct parker *parker)
{
    if (parker->proc != NULL) {
        proc_park();
        return;
    }
    lock(&parker->lock);
    while (!parker->woken)
        pthread_cond_wait(&parker->woken_cond, &parker->lock);
    pthread_mutex_unlock(&parker->lock);
}

int chan_select(struct chan_case *cases, int count, bool wait)
{
    if (count < 1 || count > MAX_CASES)
        die("chan_select: %d cases (1 to %d)", count, MAX_CASES);
    struct chan *order[MAX_CASES];
    int distinct = lock_order(cases, count, order);
    lock_all(order, distinct);
    for (int i = 0; i < count; i++) {
        if (try_case(&cases[i])) {
            unlock_all(order, distinct);
            return i;
        }
    }
    if (!wait) {
        unlock_all(order, distinct);
        return -1;
    }

    struct parker parker = {.proc = proc_current()};
    atomic_init(&parker.claimed, false);
    if (parker.proc == NULL) {
        if (pthread_mutex_init(&parker.lock, NULL) != 0)
            die("pthread_mutex_init failed");
        threads_cond_init(&parker.woken_cond);
    }
    struct waiter waiters[MAX_CASES];
    for (int i = 0; i < count; i++) {
        waiters[i] = (struct waiter){.parker = &parker, .case_index = i, .elem = cases[i].elem};
        struct chan *chan = cases[i].chan;
        enqueue(cases[i].op == CHAN_SEND ? &chan->senders : &chan->receivers, &waiters[i]);
    }
    unlock_all(order, distinct);

    park(&parker);

    /* Claimed: take the other cases' waiters out of their queues (the claimer took its own). */
    lock_all(order, distinct);
    for (int i = 0; i < count; i++) {
        struct chan *chan = cases[i].chan;
        unlink_waiter(cases[i].op == CHAN_SEND ? &chan->senders : &chan->receivers, &waiters[i]);
    }
    unlock_all(order, distinct);
    if (parker.proc == NULL) {
        pthread_cond_destroy(&parker.woken_cond);
        pthread_mutex_destroy(&parker.lock);
    }
    int chosen = parker.chosen;
    cases[chosen].ok = parker.ok;
    if (!parker.ok && cases[chosen].op == CHAN_RECV)
        memset(cases[chosen].elem, 0, cases[chosen].chan->elem_size);
    return chosen;
}

bool chan_send(struct chan *chan, const void *elem)
{
    struct chan_case c = {.chan = chan, .op = CHAN_SEND, .elem = (void *)elem};
    chan_select(&c, 1, true);
    return c.ok;
}

bool chan_recv(struct chan *chan, void *elem)
{
    struct chan_case c = {.chan = chan, .op = CHAN_RECV, .elem = elem};
    chan_select(&c, 1, true);
    return c.ok;
}

void chan_close(struct chan *chan)
{
    lock(&chan->lock);
    chan->closed = true;
    struct waiter *waiter;
    /* Receivers wait only while the buffer is empty, so none of them misses a value. */
    while ((waiter = claim_first(&chan->receivers)) != NULL)
        wake(waiter, false);
    while ((waiter = claim_first(&chan->senders)) != NULL)
        wake(waiter, false);
    pthread_mutex_unlock(&chan->lock);
}

size_t chan_buffered(struct chan *chan)
{
    lock(&chan->lock);
    size_t count = chan->count;
    pthread_mutex_unlock(&chan->lock);
    return count;
}
