/* conn.c - the readiness driver of conn.h: recv and send on a socket that is ready.
 *
 * A read lands in a per-thread buffer (or, when the connection holds a partial request, straight
 * in its own input buffer), the core answers every complete request in it into a per-thread
 * staging buffer, and one send takes all the responses. Only what the socket does not take is
 * copied into the connection's own chunks. */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handler.h"
#include "log.h"
#include "signals.h"
#include "stats.h"

#define READ_CHUNK (64 * 1024)
#define STAGING_CAP (64 * 1024)

/* The per-thread buffers are mapped by each thread's first call and unmapped when it ends. As
 * _Thread_local arrays they would be part of every thread's static TLS, which glibc carves out
 * of the thread's stack and zeroes at thread creation: 128 KiB resident in each thread of a
 * thread-per-connection server, whatever its stack size. Mapped, only the pages a recv or a
 * response actually touches become resident; mmap rather than malloc, because a thread's first
 * malloc gives it an arena of its own, 64 MiB of address space, which would drown the stack in
 * the virtual-memory figures of a thread per connection. */
static _Thread_local char *read_buffer;
/* Responses of the current call, for a connection with no output of its own pending. */
static _Thread_local char *staging;
static pthread_key_t thread_buffers_key;
static pthread_once_t thread_buffers_once = PTHREAD_ONCE_INIT;

static void free_thread_buffers(void *unused)
{
    (void)unused;
    if (read_buffer != NULL && munmap(read_buffer, READ_CHUNK + STAGING_CAP) != 0)
        log_error("munmap: %m");
    read_buffer = staging = NULL;
}

static void create_thread_buffers_key(void)
{
    if (pthread_key_create(&thread_buffers_key, free_thread_buffers) != 0)
        die("pthread_key_create: %m");
}

/* False if this thread's buffers cannot be allocated: the caller fails the connection. */
static bool have_thread_buffers(void)
{
    if (read_buffer != NULL)
        return true;
    pthread_once(&thread_buffers_once, create_thread_buffers_key);
    void *buffers = mmap(NULL, READ_CHUNK + STAGING_CAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffers == MAP_FAILED)
        return false;
    read_buffer = buffers;
    staging = read_buffer + READ_CHUNK;
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(thread_buffers_key, read_buffer);
    return true;
}

void conn_release(struct conn *conn)
{
    conn_free(conn);
    if (close(conn->fd) != 0)
        log_error("close: %m");
    conn->fd = -1;
}

/* Reads whatever input has arrived, without waiting; false when the peer has closed or failed. */
static bool discard_pending_input(int fd)
{
    char scratch[4096];
    for (int reads = 0; reads < 16; reads++) {
        ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
    }
    return true;
}

void conn_refuse(int fd, int status)
{
    struct response response;
    handler_refuse(status, &response);
    char message[RESPONSE_HEAD_MAX + 64];
    size_t len = handler_format_head(&response, message);
    memcpy(message + len, response.body, response.body_len);
    len += response.body_len;

    stats_add(STAT_REFUSED, 1);
    /* Closing a socket with unread input sends a reset, which can destroy the 503 before the
     * client reads it: so the request that came already is read first. */
    if (discard_pending_input(fd) &&
        send(fd, message, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len) {
        stats_count_response(status);
        shutdown(fd, SHUT_WR);
    }
    if (close(fd) != 0)
        log_error("close: %m");
}

/* Sends the core's output until all is sent or the socket is full. A stopping server still makes
 * one attempt, so the 503 of an interrupted /sleep goes out, but no more: on a blocking socket a
 * slow reader could otherwise hold the exit back. */
static void flush_output(struct conn *conn)
{
    for (bool first = true; first || !server_stopping; first = false) {
        struct iovec parts[CONN_OUTPUT_PARTS];
        int count = conn_output(conn, parts, CONN_OUTPUT_PARTS);
        if (count == 0)
            break;
        /* The last output before our FIN: MSG_MORE holds its final partial segment back until
         * the close or shutdown that follows at once, which puts the FIN on that segment. One
         * segment fewer per closed connection, for us and for the client (docs/churn.md). */
        int flags = MSG_NOSIGNAL | (conn_output_is_last(conn, parts, count) ? MSG_MORE : 0);
        /* send/sendmsg rather than write/writev: on a socket they skip the file-position lock. */
        ssize_t written = count == 1
            ? send(conn->fd, parts[0].iov_base, parts[0].iov_len, flags)
            : sendmsg(conn->fd, &(struct msghdr){.msg_iov = parts, .msg_iovlen = (size_t)count}, flags);
        if (written < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_failed(conn, errno);
            return;
        }
        conn_sent(conn, (size_t)written);
    }
    if (conn->shutdown_due) {
        conn->shutdown_due = false;
        if (shutdown(conn->fd, SHUT_WR) != 0)
            conn_failed(conn, errno);
    }
}

static enum conn_read_result linger_read(struct conn *conn)
{
    ssize_t n = recv(conn->fd, read_buffer, READ_CHUNK, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return errno == EAGAIN ? CONN_DRAINED : CONN_MAY_HAVE_MORE;
    if (n <= 0) {
        conn_received_eof(conn); /* lingering: done */
        return CONN_DRAINED;
    }
    return n == READ_CHUNK ? CONN_MAY_HAVE_MORE : CONN_DRAINED;
}

enum conn_read_result conn_on_readable(struct conn *conn)
{
    if (!have_thread_buffers()) {
        conn_dropped(conn);
        return CONN_DRAINED;
    }
    if (conn->state == CONN_LINGERING)
        return linger_read(conn);
    if (!conn_wants_read(conn))
        return conn_is_done(conn) ? CONN_DRAINED : CONN_MAY_HAVE_MORE;

    size_t room;
    char *dst = conn_input_space(conn, &room);
    bool into_own = dst != NULL;
    if (!into_own) {
        if (conn_is_done(conn))
            return CONN_DRAINED;
        dst = read_buffer;
        room = READ_CHUNK;
    }
    ssize_t n = recv(conn->fd, dst, room, 0);
    if (n < 0) {
        if (errno == EAGAIN)
            return CONN_DRAINED;
        if (errno == EINTR)
            return CONN_MAY_HAVE_MORE;
        conn_failed(conn, errno);
        return CONN_DRAINED;
    }
    if (n == 0) {
        conn_received_eof(conn);
        return CONN_DRAINED;
    }
    conn_stage_begin(staging, STAGING_CAP);
    if (into_own)
        conn_input_added(conn, (size_t)n);
    else
        conn_received(conn, read_buffer, (size_t)n);
    flush_output(conn);
    conn_stage_end(conn);
    /* Not drained until a read says EAGAIN: a short read emptied the bytes, but the client's end
     * of input (FIN) may be queued behind them, and an edge-triggered loop gets no new event for
     * it if it came before the last one was reported. */
    return CONN_MAY_HAVE_MORE;
}

void conn_on_writable(struct conn *conn)
{
    if (!have_thread_buffers()) {
        conn_dropped(conn);
        return;
    }
    if (conn->state != CONN_OPEN && conn->state != CONN_CLOSING)
        return;
    conn_stage_begin(staging, STAGING_CAP);
    flush_output(conn);
    conn_stage_end(conn);
}
