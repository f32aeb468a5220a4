/* conn.c - see conn.h.
 *
 * The common case allocates nothing: a read lands in a per-thread buffer, every complete request
 * in it is answered into a per-thread staging buffer, and one write sends all the responses. Only
 * what is left over (a partial request, output the socket did not take) is copied into buffers of
 * the connection's own, which are freed again once empty. An idle connection therefore costs its
 * struct conn and the kernel's socket, nothing more: that is what lets one thread hold 10 000. */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "handler.h"
#include "http.h"
#include "log.h"
#include "options.h"
#include "signals.h"
#include "stats.h"

#define READ_CHUNK (64 * 1024)
#define STAGING_CAP (64 * 1024)
#define MIN_BUFFER (16 * 1024)
#define LINGER_SECONDS 1.0
#define SMALL_PATTERN_BODY (16 * 1024)

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
static _Thread_local size_t staging_len;
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

void conn_init(struct conn *conn, int fd)
{
    *conn = (struct conn){.fd = fd, .state = CONN_OPEN, .idle_since = clock_now()};
}

void conn_release(struct conn *conn)
{
    free(conn->in);
    free(conn->out);
    conn->in = conn->out = NULL;
    if (close(conn->fd) != 0)
        log_error("close: %m");
    conn->fd = -1;
    conn->state = CONN_DONE;
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

static size_t own_output_len(const struct conn *conn)
{
    return conn->out_end - conn->out_start;
}

static bool output_pending(const struct conn *conn)
{
    return own_output_len(conn) > 0 || conn->stream_remaining > 0;
}

/* Whether another request may be answered now, or must wait for the client to read. */
static bool can_answer(const struct conn *conn)
{
    return conn->state == CONN_OPEN && conn->stream_remaining == 0 &&
           own_output_len(conn) <= CONN_OUTPUT_HIGH_WATER;
}

bool conn_wants_read(const struct conn *conn)
{
    return can_answer(conn) || conn->state == CONN_LINGERING;
}

bool conn_wants_write(const struct conn *conn)
{
    return (conn->state == CONN_OPEN || conn->state == CONN_CLOSING) && output_pending(conn);
}

bool conn_is_done(const struct conn *conn)
{
    return conn->state == CONN_DONE;
}

static void *grow_buffer(char *buffer, size_t *cap, size_t needed)
{
    if (*cap >= needed)
        return buffer;
    size_t new_cap = *cap * 2 > MIN_BUFFER ? *cap * 2 : MIN_BUFFER;
    if (new_cap < needed)
        new_cap = needed;
    char *grown = realloc(buffer, new_cap);
    if (grown == NULL)
        die("out of memory for a %zu-byte connection buffer", new_cap);
    *cap = new_cap;
    return grown;
}

/* --- output ----------------------------------------------------------------------------------- */

static void append_own_output(struct conn *conn, const char *bytes, size_t len)
{
    if (conn->out_start > 0) {
        memmove(conn->out, conn->out + conn->out_start, own_output_len(conn));
        conn->out_end -= conn->out_start;
        conn->out_start = 0;
    }
    conn->out = grow_buffer(conn->out, &conn->out_cap, conn->out_end + len);
    memcpy(conn->out + conn->out_end, bytes, len);
    conn->out_end += len;
}

/* Staging holds output only while the connection has none of its own, so order is kept. */
static void append_output(struct conn *conn, const char *bytes, size_t len)
{
    if (own_output_len(conn) == 0 && staging_len + len <= STAGING_CAP) {
        memcpy(staging + staging_len, bytes, len);
        staging_len += len;
        return;
    }
    if (staging_len > 0) {
        size_t staged = staging_len;
        staging_len = 0;
        append_own_output(conn, staging, staged);
    }
    append_own_output(conn, bytes, len);
}

static void fail(struct conn *conn, int error)
{
    stats_add(error == ECONNRESET || error == EPIPE ? STAT_RESETS : STAT_IO_ERRORS, 1);
    conn->state = CONN_DONE;
    staging_len = 0;
}

static void finish_closing(struct conn *conn)
{
    if (!conn->linger_on_close) {
        conn->state = CONN_DONE;
        return;
    }
    /* Send our FIN but keep reading: closing with unread input would send a reset, and the
     * client could lose the error response it has not read yet. */
    if (shutdown(conn->fd, SHUT_WR) != 0) {
        conn->state = CONN_DONE;
        return;
    }
    conn->state = CONN_LINGERING;
    conn->linger_until = clock_now() + LINGER_SECONDS;
}

/* Writes staged and own output, then the /bytes stream, until all is sent or the socket is full.
 * A stopping server still makes one attempt, so the 503 of an interrupted /sleep goes out, but no
 * more: on a blocking socket a slow reader could otherwise hold the exit back. */
static void flush_output(struct conn *conn)
{
    for (bool first = true; first || !server_stopping; first = false) {
        struct iovec parts[2];
        int count = 0;
        bool from_staging = staging_len > 0;
        size_t head_len = from_staging ? staging_len : own_output_len(conn);
        if (head_len > 0)
            parts[count++] = (struct iovec){
                .iov_base = from_staging ? staging : conn->out + conn->out_start, .iov_len = head_len};
        if (conn->stream_remaining > 0) {
            size_t chunk;
            const char *body = handler_pattern_at(conn->stream_offset, conn->stream_remaining, &chunk);
            parts[count++] = (struct iovec){.iov_base = (void *)body, .iov_len = chunk};
        }
        if (count == 0)
            break;

        /* send/sendmsg rather than write/writev: on a socket they skip the file-position lock. */
        ssize_t written = count == 1
            ? send(conn->fd, parts[0].iov_base, parts[0].iov_len, MSG_NOSIGNAL)
            : sendmsg(conn->fd, &(struct msghdr){.msg_iov = parts, .msg_iovlen = 2}, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            fail(conn, errno);
            return;
        }
        size_t from_head = (size_t)written < head_len ? (size_t)written : head_len;
        if (from_staging) {
            /* The socket took part of it: the rest becomes the connection's own. */
            size_t rest = staging_len - from_head;
            staging_len = 0;
            if (rest > 0)
                append_own_output(conn, staging + from_head, rest);
        } else {
            conn->out_start += from_head;
        }
        conn->stream_offset += (size_t)written - from_head;
        conn->stream_remaining -= (size_t)written - from_head;
        if (conn->send_stalled_since != 0)
            conn->send_stalled_since = clock_now(); /* progress: the send deadline starts over */
    }

    if (staging_len > 0) { /* EAGAIN (or stopping) before the staged output went out */
        size_t staged = staging_len;
        staging_len = 0;
        append_own_output(conn, staging, staged);
    }
    if (output_pending(conn)) {
        if (conn->send_stalled_since == 0)
            conn->send_stalled_since = clock_now();
        return;
    }
    /* The idle clock starts when the last response has gone, not when its request came: a
     * /sleep or a slow download must not count as idleness. */
    conn->send_stalled_since = 0;
    conn->idle_since = clock_now();
    free(conn->out);
    conn->out = NULL;
    conn->out_start = conn->out_end = conn->out_cap = 0;
    if (conn->state == CONN_CLOSING)
        finish_closing(conn);
}

/* --- requests --------------------------------------------------------------------------------- */

static void send_response(struct conn *conn, const struct response *response)
{
    char head[RESPONSE_HEAD_MAX];
    append_output(conn, head, handler_format_head(response, head));
    if (!response->head_only) {
        if (response->body_len > 0)
            append_output(conn, response->body, response->body_len);
        if (response->pattern_len <= SMALL_PATTERN_BODY) {
            /* Small /bytes bodies are copied, so pipelined ones still go out in one write. */
            size_t len;
            const char *body = handler_pattern_at(0, response->pattern_len, &len);
            append_output(conn, body, len);
        } else {
            conn->stream_offset = 0;
            conn->stream_remaining = response->pattern_len;
        }
    }
    stats_count_response(response->status);
    if (response->close) {
        conn->state = CONN_CLOSING;
        conn->linger_on_close = response->status >= 400;
    }
}

static void refuse(struct conn *conn, int status)
{
    struct response response;
    handler_refuse(status, &response);
    send_response(conn, &response);
    conn->request_started = 0;
}

/* Answers the complete requests at the start of data; returns how many bytes they took. What is
 * left is a partial request, or requests that must wait for output to drain. */
static size_t answer_requests(struct conn *conn, const char *data, size_t len)
{
    size_t pos = 0;
    bool partial = false;
    while (pos < len && can_answer(conn)) {
        struct http_request request;
        int head_len = http_parse_request(data + pos, len - pos, &conn->scanned, &request);
        if (head_len < 0) {
            refuse(conn, -head_len);
            break;
        }
        size_t request_len = (size_t)head_len + request.content_length;
        if (head_len == HTTP_NEED_MORE || len - pos < request_len) {
            conn->in_needed = head_len == HTTP_NEED_MORE ? 0 : request_len;
            partial = true;
            break;
        }
        struct response response;
        handler_respond(&request, data + pos + head_len, &response);
        send_response(conn, &response);
        pos += request_len;
        conn->scanned = 0;
        conn->in_needed = 0;
        conn->request_started = 0;
    }
    if (conn->state != CONN_OPEN) {
        /* Whatever follows a closing response is dropped; if there was more, the client may
         * still be sending, so the close lingers. */
        if (pos < len)
            conn->linger_on_close = true;
        return len;
    }
    if (partial && conn->request_started == 0)
        conn->request_started = clock_now();
    return pos;
}

static void drop_input(struct conn *conn, size_t consumed)
{
    conn->in_len -= consumed;
    if (conn->in_len > 0 && conn->state == CONN_OPEN) {
        memmove(conn->in, conn->in + consumed, conn->in_len);
        return;
    }
    free(conn->in);
    conn->in = NULL;
    conn->in_len = conn->in_cap = 0;
}

/* Answers requests held back by back-pressure, for as long as the output keeps draining. */
static void flush_and_resume(struct conn *conn)
{
    for (;;) {
        flush_output(conn);
        if (conn->in_len == 0 || !can_answer(conn) || output_pending(conn))
            return;
        size_t consumed = answer_requests(conn, conn->in, conn->in_len);
        drop_input(conn, consumed);
        if (consumed == 0)
            return;
    }
}

static void linger_read(struct conn *conn)
{
    ssize_t n = recv(conn->fd, read_buffer, READ_CHUNK, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn->state = CONN_DONE;
}

void conn_on_readable(struct conn *conn)
{
    if (!have_thread_buffers()) {
        fail(conn, ENOMEM);
        return;
    }
    if (conn->state == CONN_LINGERING) {
        linger_read(conn);
        return;
    }
    if (!can_answer(conn))
        return;

    bool into_own = conn->in_len > 0;
    char *dst = read_buffer;
    size_t room = READ_CHUNK;
    if (into_own) {
        size_t needed = conn->in_len + 4096 > conn->in_needed ? conn->in_len + 4096 : conn->in_needed;
        conn->in = grow_buffer(conn->in, &conn->in_cap, needed);
        dst = conn->in + conn->in_len;
        room = conn->in_cap - conn->in_len;
    }
    ssize_t n = recv(conn->fd, dst, room, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            fail(conn, errno);
        return;
    }
    if (n == 0) {
        /* The client is done sending; what it asked for so far is still owed to it. */
        drop_input(conn, conn->in_len);
        conn->request_started = 0;
        conn->linger_on_close = false;
        conn->state = output_pending(conn) ? CONN_CLOSING : CONN_DONE;
        return;
    }

    conn->idle_since = clock_now();
    if (into_own) {
        conn->in_len += (size_t)n;
        drop_input(conn, answer_requests(conn, conn->in, conn->in_len));
    } else {
        size_t consumed = answer_requests(conn, read_buffer, (size_t)n);
        size_t rest = (size_t)n - consumed;
        if (rest > 0) {
            conn->in = grow_buffer(NULL, &conn->in_cap, rest > conn->in_needed ? rest : conn->in_needed);
            memcpy(conn->in, read_buffer + consumed, rest);
            conn->in_len = rest;
        }
    }
    flush_and_resume(conn);
}

void conn_on_writable(struct conn *conn)
{
    if (!have_thread_buffers()) {
        fail(conn, ENOMEM);
        return;
    }
    if (conn->state == CONN_OPEN || conn->state == CONN_CLOSING)
        flush_and_resume(conn);
}

void conn_check_deadlines(struct conn *conn, double now)
{
    const struct server_options *options = &server_options;
    if (conn->state == CONN_DONE)
        return;
    if (!have_thread_buffers()) { /* a 408 may be staged below */
        fail(conn, ENOMEM);
        return;
    }
    if (conn->state == CONN_LINGERING) {
        if (now >= conn->linger_until)
            conn->state = CONN_DONE;
        return;
    }
    if (output_pending(conn)) {
        if (conn->send_stalled_since != 0 && now - conn->send_stalled_since >= options->send_timeout) {
            stats_add(STAT_SEND_TIMEOUTS, 1);
            conn->state = CONN_DONE;
        }
        return;
    }
    if (conn->state != CONN_OPEN)
        return;
    if (conn->request_started != 0) {
        if (now - conn->request_started >= options->header_timeout) {
            drop_input(conn, conn->in_len);
            refuse(conn, 408);
            flush_output(conn);
        }
        return;
    }
    if (now - conn->idle_since >= options->idle_timeout) {
        stats_add(STAT_IDLE_TIMEOUTS, 1);
        conn->state = CONN_DONE;
    }
}

double conn_next_deadline(const struct conn *conn)
{
    const struct server_options *options = &server_options;
    switch (conn->state) {
    case CONN_DONE:
        return 0;
    case CONN_LINGERING:
        return conn->linger_until;
    default:
        break;
    }
    if (output_pending(conn))
        return (conn->send_stalled_since != 0 ? conn->send_stalled_since : clock_now()) + options->send_timeout;
    if (conn->state != CONN_OPEN)
        return 0;
    if (conn->request_started != 0)
        return conn->request_started + options->header_timeout;
    return conn->idle_since + options->idle_timeout;
}
