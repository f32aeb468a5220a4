/* conn_core.c - the protocol state machine of conn.h, with no system call of its own.
 *
 * Bytes in, bytes out: the driver (readiness, completion or blocking) moves them. The common case
 * allocates nothing: a readiness driver stages the responses of one read in its own buffer and
 * sends them at once. Only what is left over (a partial request, output the socket did not take
 * yet) is copied into buffers of the connection's own, which are freed again once empty. An idle
 * connection therefore costs its struct conn and the kernel's socket, nothing more. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "handler.h"
#include "http.h"
#include "options.h"
#include "stats.h"

#define MIN_BUFFER (16 * 1024)
/* Output chunks start small and double along a chain: a completion server keeps every response
 * in a chunk until its send completes, and a chunk sized for pipelined output (16 KiB) per
 * 150-byte response made a batch of completions free megabytes at once, which glibc handed back to
 * the kernel and faulted in again (22 % of io-uring's CPU). */
#define FIRST_CHUNK 1024
#define LAST_CHUNK_GROWTH (16 * 1024)
#define LINGER_SECONDS 1.0
#define SMALL_PATTERN_BODY (16 * 1024)
#define READ_AHEAD 4096

/* The readiness driver's staging buffer, between conn_stage_begin and conn_stage_end. */
static _Thread_local char *staging;
static _Thread_local size_t staging_len, staging_cap;

void conn_init(struct conn *conn, int fd)
{
    *conn = (struct conn){.fd = fd, .state = CONN_OPEN, .idle_since = clock_now()};
}

static void free_chunks(struct conn *conn)
{
    while (conn->out_head != NULL) {
        struct conn_chunk *next = conn->out_head->next;
        free(conn->out_head);
        conn->out_head = next;
    }
    conn->out_tail = NULL;
    conn->out_len = 0;
}

static void free_input(struct conn *conn)
{
    free(conn->in);
    conn->in = NULL;
    conn->in_len = conn->in_cap = 0;
}

void conn_free(struct conn *conn)
{
    free_input(conn);
    free_chunks(conn);
    conn->state = CONN_DONE;
}

static bool output_pending(const struct conn *conn)
{
    return staging_len > 0 || conn->out_len > 0 || conn->stream_remaining > 0;
}

/* Whether another request may be answered now, or must wait for the client to read. */
static bool can_answer(const struct conn *conn)
{
    return conn->state == CONN_OPEN && conn->job == NULL && conn->stream_remaining == 0 &&
           conn->out_len <= CONN_OUTPUT_HIGH_WATER;
}

bool conn_wants_read(const struct conn *conn)
{
    return (can_answer(conn) && !conn->input_ended) || conn->state == CONN_LINGERING;
}

bool conn_wants_write(const struct conn *conn)
{
    return (conn->state == CONN_OPEN || conn->state == CONN_CLOSING) && output_pending(conn);
}

bool conn_output_is_last(const struct conn *conn, const struct iovec *parts, int count)
{
    if (conn->state != CONN_CLOSING)
        return false;
    size_t len = 0;
    for (int i = 0; i < count; i++)
        len += parts[i].iov_len;
    return len == staging_len + conn->out_len + conn->stream_remaining;
}

bool conn_is_done(const struct conn *conn)
{
    return conn->state == CONN_DONE;
}

void conn_failed(struct conn *conn, int error)
{
    stats_add(error == ECONNRESET || error == EPIPE ? STAT_RESETS : STAT_IO_ERRORS, 1);
    conn->state = CONN_DONE;
    staging_len = 0;
}

void conn_dropped(struct conn *conn)
{
    stats_add(STAT_DROPPED, 1);
    conn->state = CONN_DONE;
    staging_len = 0;
}

/* --- output ----------------------------------------------------------------------------------- */

/* Appends to the connection's chunks; false (and the connection dropped) without memory. */
static bool append_own_output(struct conn *conn, const char *bytes, size_t len)
{
    struct conn_chunk *tail = conn->out_tail;
    if (tail != NULL && tail->cap - tail->end >= len) {
        memcpy(tail->bytes + tail->end, bytes, len);
        tail->end += len;
        conn->out_len += len;
        return true; /* behind output that waits already: its deadline runs */
    }
    size_t cap = tail == NULL || tail->cap < FIRST_CHUNK ? FIRST_CHUNK : tail->cap * 2;
    if (cap > LAST_CHUNK_GROWTH)
        cap = LAST_CHUNK_GROWTH;
    if (cap < len)
        cap = len;
    struct conn_chunk *chunk = malloc(sizeof *chunk + cap);
    if (chunk == NULL) {
        conn_dropped(conn);
        return false;
    }
    *chunk = (struct conn_chunk){.end = len, .cap = cap};
    memcpy(chunk->bytes, bytes, len);
    if (tail != NULL)
        tail->next = chunk;
    else
        conn->out_head = chunk;
    conn->out_tail = chunk;
    conn->out_len += len;
    if (conn->send_stalled_since == 0)
        conn->send_stalled_since = clock_now();
    return true;
}

/* Staging holds output only while the connection has none of its own, so order is kept. */
static void append_output(struct conn *conn, const char *bytes, size_t len)
{
    if (conn->state == CONN_DONE)
        return;
    if (staging != NULL && conn->out_len == 0 && staging_len + len <= staging_cap) {
        memcpy(staging + staging_len, bytes, len);
        staging_len += len;
        return;
    }
    if (staging_len > 0) {
        size_t staged = staging_len;
        staging_len = 0;
        if (!append_own_output(conn, staging, staged))
            return;
    }
    append_own_output(conn, bytes, len);
}

void conn_stage_begin(char *buffer, size_t cap)
{
    staging = buffer;
    staging_cap = cap;
    staging_len = 0;
}

/* Starts the send deadline when output has to wait: "nothing moved for --send-timeout" must be
 * measured even for a client that never reads a byte, when no send completes at all. */
static void note_output_waiting(struct conn *conn)
{
    if (conn->send_stalled_since == 0 && output_pending(conn))
        conn->send_stalled_since = clock_now();
}

void conn_stage_end(struct conn *conn)
{
    size_t staged = staging_len;
    staging_len = 0;
    /* Staging is used only while the connection has no chunks, so what the socket did not take
     * becomes the first of them. */
    if (staged > 0 && conn->state != CONN_DONE)
        append_own_output(conn, staging, staged);
    staging = NULL;
    staging_cap = 0;
    note_output_waiting(conn);
}

int conn_output(const struct conn *conn, struct iovec *parts, int max)
{
    int count = 0;
    if (staging_len > 0 && count < max)
        parts[count++] = (struct iovec){.iov_base = staging, .iov_len = staging_len};
    for (const struct conn_chunk *chunk = conn->out_head; chunk != NULL && count < max; chunk = chunk->next)
        parts[count++] = (struct iovec){.iov_base = (char *)chunk->bytes + chunk->start,
                                        .iov_len = chunk->end - chunk->start};
    if (conn->stream_remaining > 0 && count < max) {
        size_t len;
        const char *body = handler_pattern_at(conn->stream_offset, conn->stream_remaining, &len);
        parts[count++] = (struct iovec){.iov_base = (void *)body, .iov_len = len};
    }
    return count;
}

static void finish_closing(struct conn *conn)
{
    if (!conn->linger_on_close) {
        conn->state = CONN_DONE;
        return;
    }
    /* Our FIN goes out but reading goes on: closing with unread input would send a reset, and
     * the client could lose the error response it has not read yet. */
    conn->state = CONN_LINGERING;
    conn->shutdown_due = true;
    conn->linger_until = clock_now() + LINGER_SECONDS;
}

static void answer_held_input(struct conn *conn);

void conn_sent(struct conn *conn, size_t bytes)
{
    if (bytes > 0 && conn->send_stalled_since != 0)
        conn->send_stalled_since = clock_now(); /* progress: the send deadline starts over */
    size_t from_staging = bytes < staging_len ? bytes : staging_len;
    if (from_staging == staging_len) {
        staging_len = 0;
    } else {
        memmove(staging, staging + from_staging, staging_len - from_staging);
        staging_len -= from_staging;
    }
    bytes -= from_staging;
    while (bytes > 0 && conn->out_head != NULL) {
        struct conn_chunk *chunk = conn->out_head;
        size_t take = chunk->end - chunk->start < bytes ? chunk->end - chunk->start : bytes;
        chunk->start += take;
        conn->out_len -= take;
        bytes -= take;
        if (chunk->start == chunk->end) {
            conn->out_head = chunk->next;
            if (conn->out_head == NULL)
                conn->out_tail = NULL;
            free(chunk);
        }
    }
    conn->stream_offset += bytes;
    conn->stream_remaining -= bytes;

    if (output_pending(conn)) {
        note_output_waiting(conn);
        return;
    }
    /* The idle clock starts when the last response has gone, not when its request came: a
     * /sleep or a slow download must not count as idleness. */
    conn->send_stalled_since = 0;
    conn->idle_since = clock_now();
    if (conn->state == CONN_CLOSING)
        finish_closing(conn);
    else
        answer_held_input(conn);
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
    if (response->close && conn->state == CONN_OPEN) {
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

/* Hands the request to the server's workers; false without memory (then it is answered here). */
static bool offload(struct conn *conn, const char *request, size_t len)
{
    struct conn_job *job = malloc(sizeof *job + len);
    if (job == NULL)
        return false;
    job->next = NULL;
    job->conn = conn;
    job->len = len;
    memcpy(job->request, request, len);
    conn->job = job;
    conn->offload(conn, job);
    return true;
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
        if (conn->offload == NULL || !handler_blocks(&request) || !offload(conn, data + pos, request_len)) {
            struct response response;
            handler_respond(&request, data + pos + head_len, &response);
            send_response(conn, &response);
        }
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
    free_input(conn);
}

/* Grows the input buffer to hold `needed` bytes; false (and the connection dropped) without memory. */
static bool reserve_input(struct conn *conn, size_t needed)
{
    if (conn->in_cap >= needed)
        return true;
    size_t cap = conn->in_cap * 2 > MIN_BUFFER ? conn->in_cap * 2 : MIN_BUFFER;
    if (cap < needed)
        cap = needed;
    char *grown = realloc(conn->in, cap);
    if (grown == NULL) {
        conn_dropped(conn);
        return false;
    }
    conn->in = grown;
    conn->in_cap = cap;
    return true;
}

/* After the client's FIN: once no complete request is held any more, what is left (a partial
 * request, which can never complete) is dropped and the connection closes after its last answer. */
static void close_when_answered(struct conn *conn)
{
    if (!conn->input_ended || conn->state == CONN_LINGERING || conn->state == CONN_DONE)
        return;
    if (conn->state == CONN_OPEN && conn->in_len > 0 && !can_answer(conn))
        return; /* held requests: answered first, when output drains or the job is done */
    free_input(conn);
    conn->request_started = 0;
    conn->linger_on_close = false;
    conn->state = conn->job != NULL || output_pending(conn) ? CONN_CLOSING : CONN_DONE;
}

/* Answers requests that waited (for output to drain, or for an offloaded one), in order. */
static void answer_held_input(struct conn *conn)
{
    if (conn->in_len > 0 && can_answer(conn))
        drop_input(conn, answer_requests(conn, conn->in, conn->in_len));
    close_when_answered(conn);
}

static bool take_input(struct conn *conn)
{
    if (conn->state == CONN_LINGERING || conn->state == CONN_DONE || conn->input_ended)
        return false; /* a lingering connection reads only to discard */
    if (conn->state == CONN_CLOSING) {
        conn->linger_on_close = true; /* more came after the last answer */
        return false;
    }
    conn->idle_since = clock_now();
    return true;
}

void conn_received(struct conn *conn, const char *data, size_t len)
{
    if (!take_input(conn) || len == 0)
        return;
    size_t consumed = 0;
    if (conn->in_len == 0)
        consumed = answer_requests(conn, data, len);
    else if (!can_answer(conn)) {
        /* Behind held input: appended below and answered in order. */
    } else if (conn->in_needed > conn->in_len && len < conn->in_needed - conn->in_len) {
        /* The held partial request is still not complete: appended below, not reparsed. */
    } else {
        if (!reserve_input(conn, conn->in_len + len))
            return;
        memcpy(conn->in + conn->in_len, data, len);
        conn->in_len += len;
        drop_input(conn, answer_requests(conn, conn->in, conn->in_len));
        return;
    }
    size_t rest = len - consumed;
    if (rest == 0 || conn->state != CONN_OPEN)
        return;
    size_t needed = conn->in_len + rest;
    if (!reserve_input(conn, needed > conn->in_needed ? needed : conn->in_needed))
        return;
    memcpy(conn->in + conn->in_len, data + consumed, rest);
    conn->in_len += rest;
}

char *conn_input_space(struct conn *conn, size_t *room)
{
    *room = 0;
    if (conn->in_len == 0 || conn->state != CONN_OPEN)
        return NULL;
    size_t needed = conn->in_len + READ_AHEAD > conn->in_needed ? conn->in_len + READ_AHEAD : conn->in_needed;
    if (!reserve_input(conn, needed))
        return NULL;
    *room = conn->in_cap - conn->in_len;
    return conn->in + conn->in_len;
}

void conn_input_added(struct conn *conn, size_t len)
{
    if (!take_input(conn))
        return;
    conn->in_len += len;
    drop_input(conn, answer_requests(conn, conn->in, conn->in_len));
}

void conn_received_eof(struct conn *conn)
{
    if (conn->state == CONN_LINGERING || conn->state == CONN_DONE) {
        conn->state = CONN_DONE;
        return;
    }
    conn->input_ended = true;
    close_when_answered(conn);
}

/* --- offloading ------------------------------------------------------------------------------- */

void conn_job_run(struct conn_job *job)
{
    struct http_request request;
    size_t scanned = 0;
    int head_len = http_parse_request(job->request, job->len, &scanned, &request);
    if (head_len <= 0)
        handler_refuse(400, &job->response); /* cannot happen: it parsed before it was copied */
    else
        handler_respond(&request, job->request + head_len, &job->response);
}

void conn_job_finish(struct conn *conn, struct conn_job *job)
{
    conn->job = NULL;
    if (conn->state == CONN_OPEN || conn->state == CONN_CLOSING)
        send_response(conn, &job->response);
    free(job);
    if (!output_pending(conn))
        answer_held_input(conn);
}

/* --- deadlines -------------------------------------------------------------------------------- */

void conn_check_deadlines(struct conn *conn, double now)
{
    const struct server_options *options = &server_options;
    if (conn->state == CONN_DONE || conn->job != NULL)
        return;
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
    if (conn->job != NULL)
        return 0;
    if (output_pending(conn))
        return (conn->send_stalled_since != 0 ? conn->send_stalled_since : clock_now()) + options->send_timeout;
    if (conn->state != CONN_OPEN)
        return 0;
    if (conn->request_started != 0)
        return conn->request_started + options->header_timeout;
    return conn->idle_since + options->idle_timeout;
}
