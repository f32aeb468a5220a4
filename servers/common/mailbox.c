/* mailbox.c - an actor's inbox of single-producer rings with a sleep handshake; see mailbox.h. */
#include "mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

void mailbox_init(struct mailbox *box, int senders, size_t slots)
{
    box->rings = aligned_alloc(RING_CACHE_LINE, (size_t)senders * sizeof *box->rings);
    if (box->rings == NULL)
        die("out of memory for a mailbox of %d senders", senders);
    for (int i = 0; i < senders; i++)
        if (!ring_init(&box->rings[i], slots))
            die("out of memory for a mailbox ring of %zu slots", slots);
    box->senders = senders;
    box->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (box->wake_fd < 0)
        die("eventfd: %m");
    atomic_init(&box->sleeping, false);
    box->wakeups = 0;
}

void mailbox_free(struct mailbox *box)
{
    for (int i = 0; i < box->senders; i++)
        ring_free(&box->rings[i]);
    free(box->rings);
    close(box->wake_fd);
}

bool mailbox_send(struct mailbox *box, int sender, uint32_t kind, int fd, void *data)
{
    struct ring *ring = &box->rings[sender];
    if (!ring_has_room(ring, 1))
        return false;
    *ring_slot(ring, 0) = (struct ring_message){.kind = kind, .fd = fd, .data = data};
    /* Sequentially consistent, with the exchange below: see ring_publish_seq_cst. */
    ring_publish_seq_cst(ring, 1);
    if (atomic_exchange(&box->sleeping, false) && eventfd_write(box->wake_fd, 1) != 0)
        log_error("eventfd_write: %m");
    return true;
}

int mailbox_receive(struct mailbox *box, void (*handle)(void *ctx, int sender, const struct ring_message *message),
                    void *ctx)
{
    int handled = 0;
    for (int i = 0; i < box->senders; i++) {
        struct ring *ring = &box->rings[i];
        uint64_t first;
        size_t n = ring_available(ring, &first);
        for (size_t k = 0; k < n; k++)
            handle(ctx, i, ring_at(ring, first + k));
        if (n > 0)
            ring_consume(ring, n); /* the whole batch's slots at once */
        handled += (int)n;
    }
    return handled;
}

bool mailbox_may_sleep(struct mailbox *box)
{
    atomic_store(&box->sleeping, true);
    for (int i = 0; i < box->senders; i++)
        if (!ring_is_empty_seq_cst(&box->rings[i]))
            return false;
    return true;
}

void mailbox_awake(struct mailbox *box, bool woken)
{
    atomic_store(&box->sleeping, false);
    if (woken) {
        eventfd_t ignored;
        box->wakeups++;
        if (eventfd_read(box->wake_fd, &ignored) != 0 && errno != EAGAIN)
            log_error("eventfd_read: %m");
    }
}
