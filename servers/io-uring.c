/* io-uring.c - a single-threaded proactor on io_uring (liburing).
 *
 * How it works: the loop never asks which socket is ready. It asks the kernel to do the I/O (accept,
 * recv, send) and reaps the results from one completion queue; the operations that a batch of
 * results calls for go to the kernel in the same system call that waits for the next batch. One
 * multishot accept yields every new connection. Each connection keeps one multishot recv armed
 * while the core wants input (it is cancelled under back-pressure); each time bytes arrive it takes
 * a buffer from a ring of provided buffers, so an idle connection holds no buffer. The bytes go to
 * the core, the buffer goes back to the ring, and the core's output goes out in one send, the only
 * one in flight on that connection until it completes.
 *
 * Limits: one thread, so one core; anything that blocks the thread (GET /sleep) stalls every
 * connection, as in epoll-lt. A response waits in the connection's own memory until its send
 * completes (a readiness server writes it from one per-thread buffer at once). Needs Linux 6.1
 * with io_uring enabled; without it the server says what is missing and exits with status 1.
 * See docs/io-uring.md. */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

/* Without these three this server cost 1.34x the CPU per request (a null responder: 1.35x epoll's).
 * SINGLE_ISSUER: only this thread submits, so the kernel skips the locking for others.
 * DEFER_TASKRUN: completion work runs only when this thread enters the kernel to wait, in one batch,
 * instead of interrupting it whenever a packet lands. COOP_TASKRUN: no interrupt for the rest. */
#define RING_FLAGS (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN)
#define SQ_ENTRIES 1024    /* a fuller queue is submitted early (next_sqe) */
#define CQ_ENTRIES 16384   /* room for a burst: 10 000 idle connections timing out at once */
#define BUFFER_GROUP 0
#define BUFFER_COUNT 1024  /* a power of two; more recvs completing in one batch get ENOBUFS */
#define BUFFER_SIZE (16 * 1024)
#define WAIT_MS 250        /* so SIGTERM and the deadline sweep are never more than this late */

/* What a completion is for: the low bits of its user_data; the rest points to the client. */
enum operation { OP_ACCEPT = 1, OP_LISTEN_READY, OP_RECV, OP_SEND, OP_CANCEL };
#define OPERATION_BITS 7u
_Static_assert(alignof(max_align_t) > OPERATION_BITS, "malloc'd clients leave the low bits free");

struct client {
    struct conn conn;
    bool receiving;  /* the multishot recv is armed: it goes on delivering until a completion
                        without IORING_CQE_F_MORE */
    bool sending;    /* a send is in flight */
    bool pausing;    /* the recv is being cancelled: the core wants no input for now */
    bool ending;     /* everything on the socket is being cancelled: the connection is done */
    uint8_t cancels; /* cancellations in flight */
    /* The send in flight: the kernel reads these until it completes. */
    struct iovec parts[CONN_OUTPUT_PARTS];
    struct msghdr message;
};

static struct io_uring ring;
static struct conn_table clients; /* by descriptor, for the deadline sweep */
static int listen_fd;
static struct io_uring_buf_ring *buffer_ring;
static char *buffers;

/* --- start-up: is io_uring there, with everything this server uses? ------------------------------ */

static int io_uring_disabled_sysctl(void)
{
    int value = -1;
    FILE *file = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (file != NULL) {
        if (fscanf(file, "%d", &value) != 1)
            value = -1;
        fclose(file);
    }
    return value;
}

/* EINVAL from io_uring_setup means some flag is unknown to this kernel: find out which. */
_Noreturn static void die_flag_rejected(void)
{
    static const struct {
        unsigned flags;
        const char *name;
    } tried[] = {
        {IORING_SETUP_CQSIZE, "IORING_SETUP_CQSIZE (Linux 5.5)"},
        {IORING_SETUP_COOP_TASKRUN, "IORING_SETUP_COOP_TASKRUN (Linux 5.19)"},
        {IORING_SETUP_SINGLE_ISSUER, "IORING_SETUP_SINGLE_ISSUER (Linux 6.0)"},
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "IORING_SETUP_DEFER_TASKRUN (Linux 6.1)"},
    };
    for (size_t i = 0; i < sizeof tried / sizeof tried[0]; i++) {
        struct io_uring trial;
        struct io_uring_params params = {.flags = tried[i].flags, .cq_entries = CQ_ENTRIES};
        int rc = io_uring_queue_init_params(8, &trial, &params);
        if (rc == -EINVAL)
            die("unavailable: the kernel does not accept %s", tried[i].name);
        if (rc == 0)
            io_uring_queue_exit(&trial);
    }
    die("unavailable: io_uring_setup rejects flags 0x%x together (EINVAL)", RING_FLAGS | IORING_SETUP_CQSIZE);
}

static void setup_ring(void)
{
    struct io_uring_params params = {.flags = RING_FLAGS | IORING_SETUP_CQSIZE, .cq_entries = CQ_ENTRIES};
    int rc = io_uring_queue_init_params(SQ_ENTRIES, &ring, &params);
    if (rc == -ENOSYS)
        die("unavailable: the kernel has no io_uring (io_uring_setup: ENOSYS)");
    if (rc == -EPERM) {
        int disabled = io_uring_disabled_sysctl();
        if (disabled > 0)
            die("unavailable: io_uring is disabled (kernel.io_uring_disabled=%d)", disabled);
        die("unavailable: io_uring_setup is not permitted (EPERM) although kernel.io_uring_disabled=%d: "
            "a seccomp filter?", disabled);
    }
    if (rc == -EINVAL)
        die_flag_rejected();
    if (rc < 0)
        die("io_uring_queue_init_params: %s", strerror(-rc));

    /* DEFER_TASKRUN (6.1) implies multishot accept, buffer rings and cancelling by descriptor
     * (all 5.19) and the wait timeout in io_uring_enter (5.11); the operations can still be
     * checked one by one. */
    static const struct {
        int opcode;
        const char *name;
    } needed[] = {
        {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"}, {IORING_OP_RECV, "IORING_OP_RECV"},
        {IORING_OP_SEND, "IORING_OP_SEND"}, {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
        {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"}, {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},
    };
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (probe == NULL)
        die("unavailable: the kernel does not list its io_uring operations (IORING_REGISTER_PROBE)");
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!io_uring_opcode_supported(probe, needed[i].opcode))
            die("unavailable: the kernel lacks %s", needed[i].name);
    io_uring_free_probe(probe);
}

/* The buffers recvs land in. liburing 2.3 has no io_uring_setup_buf_ring, so the ring the kernel
 * takes buffers from is mapped here (it must be page-aligned) and registered. */
static void setup_buffers(void)
{
    size_t ring_bytes = BUFFER_COUNT * sizeof(struct io_uring_buf);
    buffer_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buffers = mmap(NULL, (size_t)BUFFER_COUNT * BUFFER_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer_ring == MAP_FAILED || buffers == MAP_FAILED)
        die("mmap of the receive buffers: %m");
    io_uring_buf_ring_init(buffer_ring);
    struct io_uring_buf_reg registration = {.ring_addr = (uintptr_t)buffer_ring,
                                            .ring_entries = BUFFER_COUNT, .bgid = BUFFER_GROUP};
    int rc = io_uring_register_buf_ring(&ring, &registration, 0);
    if (rc == -EINVAL)
        die("unavailable: the kernel has no provided-buffer rings (IORING_REGISTER_PBUF_RING)");
    if (rc < 0)
        die("io_uring_register_buf_ring: %s", strerror(-rc));
    for (unsigned id = 0; id < BUFFER_COUNT; id++)
        io_uring_buf_ring_add(buffer_ring, buffers + (size_t)id * BUFFER_SIZE, BUFFER_SIZE, (unsigned short)id,
                              io_uring_buf_ring_mask(BUFFER_COUNT), (int)id);
    io_uring_buf_ring_advance(buffer_ring, BUFFER_COUNT);
}

static void return_buffer(unsigned id)
{
    io_uring_buf_ring_add(buffer_ring, buffers + (size_t)id * BUFFER_SIZE, BUFFER_SIZE, (unsigned short)id,
                          io_uring_buf_ring_mask(BUFFER_COUNT), 0);
    io_uring_buf_ring_advance(buffer_ring, 1);
}

/* --- submitting ------------------------------------------------------------------------------- */

/* A free submission slot. Operations queue up here until the loop's next wait submits them all in
 * one system call; only a full queue is submitted early. */
static struct io_uring_sqe *next_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        int rc = io_uring_submit(&ring);
        if (rc < 0)
            die("io_uring_submit: %s", strerror(-rc));
        sqe = io_uring_get_sqe(&ring);
        if (sqe == NULL)
            die("io_uring: no submission slot free after a submit");
    }
    return sqe;
}

static void tag(struct io_uring_sqe *sqe, struct client *client, enum operation operation)
{
    io_uring_sqe_set_data64(sqe, (uintptr_t)client | operation);
}

static void start_accepting(void)
{
    struct io_uring_sqe *sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    tag(sqe, NULL, OP_ACCEPT);
}

/* One recv that stays armed, so the kernel's wait on the socket is set up once, not per request. */
static void start_recv(struct client *client)
{
    struct io_uring_sqe *sqe = next_sqe();
    /* No buffer of our own: the kernel picks one from the ring each time bytes come. */
    io_uring_prep_recv_multishot(sqe, client->conn.fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    tag(sqe, client, OP_RECV);
    client->receiving = true;
}

/* The core's output stays where it is until conn_sent() says it went: no copy for the send. */
static void start_send(struct client *client)
{
    int count = conn_output(&client->conn, client->parts, CONN_OUTPUT_PARTS);
    if (count == 0)
        return;
    /* The response before our FIN: held back until the close, which sends both in one segment. */
    int flags = MSG_NOSIGNAL | (conn_output_is_last(&client->conn, client->parts, count) ? MSG_MORE : 0);
    struct io_uring_sqe *sqe = next_sqe();
    if (count == 1) {
        io_uring_prep_send(sqe, client->conn.fd, client->parts[0].iov_base, client->parts[0].iov_len, flags);
    } else {
        client->message = (struct msghdr){.msg_iov = client->parts, .msg_iovlen = (size_t)count};
        io_uring_prep_sendmsg(sqe, client->conn.fd, &client->message, flags);
    }
    tag(sqe, client, OP_SEND);
    client->sending = true;
}

/* Back-pressure (or a closing connection): the core wants no more input, so the armed recv must
 * go; what it still delivers before the cancel lands is kept by the core. */
static void start_pause(struct client *client)
{
    struct io_uring_sqe *sqe = next_sqe();
    io_uring_prep_cancel64(sqe, (uintptr_t)client | OP_RECV, 0);
    tag(sqe, client, OP_CANCEL);
    client->pausing = true;
    client->cancels++;
}

/* A finished connection may still have a recv waiting for bytes that never come, or a send for a
 * client that never reads: end them, so their completions say the kernel is done with the memory. */
static void start_ending(struct client *client)
{
    struct io_uring_sqe *sqe = next_sqe();
    io_uring_prep_cancel_fd(sqe, client->conn.fd, IORING_ASYNC_CANCEL_ALL);
    tag(sqe, client, OP_CANCEL);
    client->ending = true;
    client->cancels++;
}

/* --- connections ------------------------------------------------------------------------------ */

static void close_client(struct client *client)
{
    conn_table_remove(&clients, client->conn.fd);
    conn_release(&client->conn);
    free(client);
}

static void close_conn(struct conn *conn)
{
    close_client((struct client *)conn);
}

/* After a completion or a deadline: start what the core wants next, or close a finished
 * connection once no operation of the kernel still refers to it. */
static void settle(struct client *client)
{
    struct conn *conn = &client->conn;
    if (!client->sending && conn_wants_write(conn))
        start_send(client);
    if (conn->shutdown_due && !client->sending) {
        conn->shutdown_due = false;
        if (shutdown(conn->fd, SHUT_WR) != 0)
            conn_failed(conn, errno);
    }
    if (conn_is_done(conn)) {
        if (!client->receiving && !client->sending && client->cancels == 0)
            close_client(client);
        else if (!client->ending)
            start_ending(client);
        return;
    }
    bool wants_read = conn_wants_read(conn);
    if (wants_read && !client->receiving)
        start_recv(client);
    else if (!wants_read && client->receiving && !client->pausing)
        start_pause(client);
}

static void settle_conn(struct conn *conn)
{
    settle((struct client *)conn);
}

static void add_client(int fd)
{
    struct client *client = conn_table_add(&clients, fd, sizeof *client);
    if (client == NULL)
        return;
    settle(client);
}

/* --- completions ------------------------------------------------------------------------------ */

static void accepted(const struct io_uring_cqe *cqe)
{
    int error = cqe->res < 0 ? -cqe->res : 0;
    if (cqe->res >= 0) {
        stats_add(STAT_ACCEPTED, 1);
        add_client(cqe->res);
    } else if (error == ENOBUFS || error == ENOMEM) {
        log_error("accept: %s", strerror(error));
    } else if (error != EMFILE && error != ENFILE && error != ECONNABORTED && error != EPROTO &&
               error != EPERM && error != EINTR && error != EAGAIN && error != ECANCELED) {
        die("accept: %s", strerror(error));
    }
    if ((cqe->flags & IORING_CQE_F_MORE) || server_stopping)
        return; /* still armed, or not wanted again */
    if (error == EMFILE || error == ENFILE) {
        /* Out of descriptors. The kernel fails an accept before it looks at the queue, so
         * accepting again at once would spin: wait until a connection is pending instead. */
        struct io_uring_sqe *sqe = next_sqe();
        io_uring_prep_poll_add(sqe, listen_fd, POLLIN);
        tag(sqe, NULL, OP_LISTEN_READY);
        return;
    }
    start_accepting(); /* a multishot accept may end (an error, a full queue): arm it again */
}

/* A connection is pending while we are out of descriptors: net_accept() sheds it with the reserved
 * descriptor (or accepts it, if one came free since). */
static void listen_ready(void)
{
    int fd = net_accept(listen_fd, true);
    if (fd >= 0)
        add_client(fd);
    if (!server_stopping)
        start_accepting();
}

static void received(struct client *client, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        client->receiving = client->pausing = false; /* it ended: settle() re-arms it if wanted */
    char *buffer = NULL;
    if (cqe->flags & IORING_CQE_F_BUFFER)
        buffer = buffers + (size_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) * BUFFER_SIZE;
    if (cqe->res > 0)
        conn_received(&client->conn, buffer, (size_t)cqe->res);
    else if (cqe->res == 0)
        conn_received_eof(&client->conn); /* requests it holds back are still answered */
    else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED)
        conn_failed(&client->conn, -cqe->res);
    /* ENOBUFS: the recvs of this batch took every buffer. All are back in the ring by the end of
     * the batch, so settle() just arms the recv again. ECANCELED: we ended it. */
    if (buffer != NULL)
        return_buffer(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
}

static void sent(struct client *client, const struct io_uring_cqe *cqe)
{
    client->sending = false;
    if (cqe->res >= 0)
        conn_sent(&client->conn, (size_t)cqe->res); /* a short send: settle() sends the rest */
    else if (cqe->res != -ECANCELED)
        conn_failed(&client->conn, -cqe->res);
}

static void complete(const struct io_uring_cqe *cqe)
{
    enum operation operation = (enum operation)(cqe->user_data & OPERATION_BITS);
    struct client *client = (struct client *)(uintptr_t)(cqe->user_data & ~(uint64_t)OPERATION_BITS);
    switch (operation) {
    case OP_ACCEPT:
        accepted(cqe);
        return;
    case OP_LISTEN_READY:
        listen_ready();
        return;
    case OP_RECV:
        received(client, cqe);
        break;
    case OP_SEND:
        sent(client, cqe);
        break;
    case OP_CANCEL:
        client->cancels--;
        break;
    }
    settle(client);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "io-uring"});
    signals_install();
    stats_init();
    setup_ring();
    listen_fd = net_listen(false, true);
    setup_buffers();
    conn_table_init(&clients);
    start_accepting();
    net_announce(listen_fd);

    while (!server_stopping) {
        int wait_ms = conn_table_wait_ms(&clients, clock_now(), WAIT_MS);
        struct __kernel_timespec timeout = {.tv_sec = wait_ms / 1000, .tv_nsec = wait_ms % 1000 * 1000000L};
        struct io_uring_cqe *cqe;
        /* One system call: submit everything queued since the last one, run the kernel's deferred
         * completion work, and wait for at least one completion (or the timeout, or a signal). */
        int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &timeout, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            die("io_uring_submit_and_wait_timeout: %s", strerror(-rc));
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            complete(cqe);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        conn_table_sweep(&clients, clock_now(), settle_conn);
    }

    /* What is queued still goes out (the 503 of an interrupted /sleep); then tearing the ring down
     * ends every operation in flight, and only after that is their memory freed. */
    int rc = io_uring_submit(&ring);
    if (rc < 0)
        log_error("io_uring_submit: %s", strerror(-rc));
    io_uring_queue_exit(&ring);
    conn_table_close_all(&clients, close_conn);
    if (munmap(buffers, (size_t)BUFFER_COUNT * BUFFER_SIZE) != 0 ||
        munmap(buffer_ring, BUFFER_COUNT * sizeof(struct io_uring_buf)) != 0)
        log_error("munmap: %m");
    close(listen_fd);
    stats_print();
    return 0;
}
