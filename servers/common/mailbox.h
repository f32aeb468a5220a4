/* mailbox.h - an actor's inbox: one Disruptor-style ring (ring.h) per sender, so that every ring
 * has one producer and one consumer and needs no lock, and an eventfd that wakes the actor when it
 * sleeps. A sender writes its message into its own ring and publishes it; only if the actor said it
 * is about to sleep does the sender write the eventfd (one system call per sleep, not per message).
 * The actor takes every published message of every ring in one batch. */
#ifndef C10K_MAILBOX_H
#define C10K_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

struct mailbox {
    struct ring *rings;      /* one per sender */
    int senders;
    int wake_fd;             /* eventfd, readable after a wake-up */
    alignas(RING_CACHE_LINE) atomic_bool sleeping; /* the actor is about to wait on wake_fd */
    uint64_t wakeups;        /* the actor's count of the times it was woken */
};

/* Dies on failure (a start-up error): slots per ring, a power of two. */
void mailbox_init(struct mailbox *box, int senders, size_t slots);
void mailbox_free(struct mailbox *box);

/* Sender `sender` (0 .. senders-1; each sender uses its own index from one thread only): false if
 * its ring is full (the message is not sent). */
bool mailbox_send(struct mailbox *box, int sender, uint32_t kind, int fd, void *data);

/* The actor: calls handle(ctx, sender, message) for every message published, ring by ring;
 * returns how many it handled. */
int mailbox_receive(struct mailbox *box, void (*handle)(void *ctx, int sender, const struct ring_message *message),
                    void *ctx);

/* The actor, before it waits on wake_fd (or on an epoll set holding it): says so, and returns
 * false if a message came in the meantime (then it must not wait; mailbox_awake() first). */
bool mailbox_may_sleep(struct mailbox *box);
/* The actor, after the wait (or instead of it): clears the flag and the eventfd. */
void mailbox_awake(struct mailbox *box, bool woken);

#endif
