/* ring.h - a bounded single-producer/single-consumer ring in the manner of LMAX's Disruptor:
 * pre-allocated slots, one sequence number per side on a cache line of its own, and a consumer
 * that takes every published slot in one batch.
 *
 * The producer writes slots [published, published + n) and then moves `published` on once, with
 * release ordering; the consumer reads `published` with acquire ordering, so every slot below it
 * is seen fully written, handles them all, and moves `consumed` on once, with release ordering,
 * which the producer reads with acquire before it writes over a slot: so a slot is reused only
 * after the consumer is done with it. Nothing stronger is needed between one producer and one
 * consumer, and each side keeps a private copy of the other's sequence, re-read only when the
 * copy says the ring is full (or empty), so the common case touches no shared cache line but the
 * slot and its own sequence. Waiting (spinning or sleeping) is the caller's business.
 *
 * Sequence numbers are 64-bit and never wrap in practice; a slot is seq & (size - 1). */
#ifndef C10K_RING_H
#define C10K_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define RING_CACHE_LINE 64

struct ring_message {
    uint32_t kind;  /* what the message is: the users' own numbering */
    int32_t fd;
    void *data;
};

struct ring {
    /* The producer's line: what it has published, and its copy of what was consumed. */
    alignas(RING_CACHE_LINE) _Atomic uint64_t published;
    uint64_t consumed_seen;
    /* The consumer's line. */
    alignas(RING_CACHE_LINE) _Atomic uint64_t consumed;
    uint64_t published_seen;
    /* Read by both, written by neither after ring_init. */
    alignas(RING_CACHE_LINE) size_t mask;
    struct ring_message *slots;
};

/* size: a power of two. False without memory. */
static inline bool ring_init(struct ring *ring, size_t size)
{
    if (size == 0 || (size & (size - 1)) != 0)
        return false;
    atomic_init(&ring->published, 0);
    atomic_init(&ring->consumed, 0);
    ring->consumed_seen = ring->published_seen = 0;
    ring->mask = size - 1;
    /* aligned_alloc wants a multiple of the alignment: a slot is 16 bytes, sizes from 4 up are. */
    size_t bytes = (size * sizeof *ring->slots + RING_CACHE_LINE - 1) / RING_CACHE_LINE * RING_CACHE_LINE;
    ring->slots = aligned_alloc(RING_CACHE_LINE, bytes);
    return ring->slots != NULL;
}

static inline void ring_free(struct ring *ring)
{
    free(ring->slots);
}

/* Producer: room for n more messages? (Re-reads the consumer's sequence only when its copy says
 * no.) */
static inline bool ring_has_room(struct ring *ring, size_t n)
{
    uint64_t next = atomic_load_explicit(&ring->published, memory_order_relaxed); /* our own */
    if (next + n - ring->consumed_seen <= ring->mask + 1)
        return true;
    ring->consumed_seen = atomic_load_explicit(&ring->consumed, memory_order_acquire);
    return next + n - ring->consumed_seen <= ring->mask + 1;
}

/* Producer: the slot `i` places after the last published one (i < the room ring_has_room saw). */
static inline struct ring_message *ring_slot(struct ring *ring, size_t i)
{
    uint64_t next = atomic_load_explicit(&ring->published, memory_order_relaxed);
    return &ring->slots[(next + i) & ring->mask];
}

/* Producer: makes the next n slots visible to the consumer, all at once. */
static inline void ring_publish(struct ring *ring, size_t n)
{
    uint64_t next = atomic_load_explicit(&ring->published, memory_order_relaxed);
    atomic_store_explicit(&ring->published, next + n, memory_order_release);
}

/* Consumer: how many messages are published and not yet consumed; *first is the first's slot
 * sequence (read them with ring_at). */
static inline size_t ring_available(struct ring *ring, uint64_t *first)
{
    *first = atomic_load_explicit(&ring->consumed, memory_order_relaxed); /* our own */
    if (ring->published_seen == *first)
        ring->published_seen = atomic_load_explicit(&ring->published, memory_order_acquire);
    return (size_t)(ring->published_seen - *first);
}

static inline const struct ring_message *ring_at(const struct ring *ring, uint64_t sequence)
{
    return &ring->slots[sequence & ring->mask];
}

/* The sleep handshake (mailbox.c): a consumer that is about to sleep sets a flag and then looks
 * at `published` once more; a producer publishes and then looks at the flag. That is Dekker's
 * pattern (each side stores one variable, then loads the other), which release and acquire do
 * not make safe: both sides could read the old value and the consumer sleep on a message. These
 * two variants are sequentially consistent, which does. */
static inline void ring_publish_seq_cst(struct ring *ring, size_t n)
{
    uint64_t next = atomic_load_explicit(&ring->published, memory_order_relaxed);
    atomic_store_explicit(&ring->published, next + n, memory_order_seq_cst);
}

static inline bool ring_is_empty_seq_cst(struct ring *ring)
{
    uint64_t first = atomic_load_explicit(&ring->consumed, memory_order_relaxed);
    return atomic_load_explicit(&ring->published, memory_order_seq_cst) == first;
}

/* Consumer: the n messages from the first one are done with; their slots may be reused. */
static inline void ring_consume(struct ring *ring, size_t n)
{
    uint64_t first = atomic_load_explicit(&ring->consumed, memory_order_relaxed);
    atomic_store_explicit(&ring->consumed, first + n, memory_order_release);
}

#endif
