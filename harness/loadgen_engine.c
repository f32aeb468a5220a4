/* loadgen_engine.c - one epoll loop per thread driving that thread's connections.
 *
 * The hot path is shaped like wrk's, minus its two epoll_ctl calls per request: when a response
 * completes, the next request is written at once (the socket is almost always writable), so a
 * keep-alive request costs one read, one write and a share of one epoll_wait. EPOLLOUT is watched
 * only while a connect is in progress or a write was partial. The request bytes are built once
 * (pipelined copies concatenated), responses are parsed in place in one read buffer per thread,
 * and only an unfinished head line is ever copied (to the connection's carry buffer).
 *
 * Closed loop: each connection keeps `pipeline` requests in flight, sending the next batch when
 * the last response of a batch arrives. Open loop (-R): connection g of C sends its k-th request
 * at the intended time start + (g + k*C) / rate, so each connection is paced at rate/C and the
 * connections are staggered evenly; a request that is due while the connection cannot send
 * (already `pipeline` in flight, down, or reconnecting) waits in the connection's backlog and is
 * sent as soon as possible, its latency still counted from the intended time.
 *
 * With --mix each request takes its path from the thread's mix sequence (loadgen_mix.h) when it
 * starts; its slot remembers the path, and a batch of different requests is written with one
 * sendmsg over the requests' own bytes, so nothing is copied either way.
 *
 * A failed connection fails its requests (each counted once, by class), is closed and opened
 * again; a failed connect is retried with a backoff from 10 ms to 1 s so that a refused or
 * descriptor-starved connect does not spin. Timeouts are found by a scan over the connections
 * that runs when the earliest deadline is due (at most every 10 ms). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "http_response.h"
#include "loadgen.h"

#define MAX_EVENTS 256
#define READ_SIZE 65536
#define IDLE_CONNECT_WINDOW 128         /* idle connects in progress at once, per thread */
#define MAX_WAIT_NS INT64_C(100000000)  /* wake at least every 100 ms to notice Ctrl-C */
#define BACKOFF_MIN_NS INT64_C(10000000)
#define BACKOFF_MAX_NS INT64_C(1000000000)
#define TAG_IDLE (UINT64_C(1) << 63)
/* Beyond this size a request spans several segments, and Nagle could hold its tail back. */
#define NODELAY_THRESHOLD 16384
/* Deadlines are checked by a scan over the thread's connections, at most this often (a timed-out
 * request is still recorded at its exact deadline). */
#define TIMEOUT_SCAN_NS INT64_C(10000000)

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

struct request_slot {
    int64_t intended_ns;  /* open loop: when it should have been sent; closed loop: = start_ns */
    int64_t start_ns;     /* when it was written (with --close: when its connect began) */
    int path;             /* index into config->paths (0 without --mix) */
};

struct conn {
    int fd;
    uint32_t generation;  /* bumped with every new socket, to recognise stale events */
    enum conn_state state;
    uint32_t watching;    /* the epoll events registered now */
    uint32_t in_flight;
    uint32_t oldest;      /* ring index of the oldest request in flight */
    struct request_slot *slots; /* a ring of `pipeline` entries */
    size_t unwritten;     /* bytes of started requests not yet written */
    uint64_t global_index;
    uint64_t next_k;      /* open loop: index of the next request to send */
    uint64_t due_k;       /* open loop: requests whose intended time has come */
    int64_t connect_start_ns;
    int64_t retry_at_ns;  /* CONN_DOWN: when to open again; 0 = not waiting */
    int64_t backoff_ns;
    uint64_t responses_in_window;
    struct http_response response;
    char *carry;          /* an unfinished head line, kept until the next read */
    uint32_t carry_len;
};

enum idle_state { IDLE_NEW, IDLE_CONNECTING, IDLE_OPEN, IDLE_CLOSED };

struct idle_conn {
    int fd;
    enum idle_state state;
    int64_t connect_start_ns;
};

struct engine_state {
    bool open_loop;
    double ns_per_request;      /* open loop: 1e9 / rate */
    uint32_t cursor;            /* open loop: the connection whose request is due next */
    uint64_t cursor_k;
    int64_t next_due_ns;
    int64_t next_timeout_ns;
    int64_t next_retry_ns;
    bool cpu_marked;
    struct rusage cpu_start;
    uint64_t done_total;        /* for the progress line: completed + failed, warm-up included */
    uint64_t errors_total;
    uint32_t open_count;
    bool epoll_error_logged;
    int64_t second;             /* the timeline second last asked for, which began at ... */
    int64_t second_start_ns;
    bool mixed;                 /* --mix: requests differ by path */
    struct mix_state mix;       /* this thread's sequence of paths */
};

int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* --- bookkeeping ------------------------------------------------------------------------------ */

static int64_t intended_time(const struct worker *worker, const struct conn *conn, uint64_t k)
{
    double offset = (double)(conn->global_index + k * (uint64_t)worker->config->cluster_connections) *
                    worker->engine->ns_per_request;
    return worker->control->start_ns + (int64_t)offset;
}

/* When a request began, for latency and for deciding whether it is measured. */
static int64_t request_begin(const struct worker *worker, const struct request_slot *slot)
{
    return worker->engine->open_loop ? slot->intended_ns : slot->start_ns;
}

static struct counters *counters_for(struct worker *worker, int64_t begin_ns)
{
    return begin_ns >= worker->control->measure_ns ? &worker->stats.measured : &worker->stats.warmup;
}

/* The second of the timeline that `now` falls in; cached, as it is asked for every response. */
static int64_t timeline_second(const struct worker *worker, int64_t now)
{
    struct engine_state *engine = worker->engine;
    if (now >= engine->second_start_ns && now < engine->second_start_ns + 1000000000)
        return engine->second;
    engine->second = (now - worker->control->measure_ns) / 1000000000;
    engine->second_start_ns = worker->control->measure_ns + engine->second * 1000000000;
    return engine->second;
}

static int64_t to_us(int64_t ns)
{
    return ns <= 0 ? 0 : (ns + 500) / 1000;
}

/* One request ended in failure. A timeout is also a censored latency sample (at `abandoned`). */
static void request_failed(struct worker *worker, const struct request_slot *slot, enum error_class class,
                           int64_t now, int64_t abandoned)
{
    int64_t begin = request_begin(worker, slot);
    struct counters *counters = counters_for(worker, begin);
    counters->failed++;
    counters->errors[class]++;
    worker->engine->done_total++;
    worker->engine->errors_total++;
    if (begin < worker->control->measure_ns)
        return;
    struct path_stats *path = &worker->stats.paths[slot->path];
    path->failed++;
    int64_t latency_us = -1;
    if (class == ERR_TIMEOUT) {
        counters->censored++;
        path->censored++;
        latency_us = to_us(abandoned - begin);
        hdr_record(&path->response, latency_us);
        if (worker->engine->open_loop)
            hdr_record(&path->service, to_us(abandoned - slot->start_ns));
    }
    timeline_record(&worker->stats.timeline, timeline_second(worker, now), slot->path, latency_us)->errors++;
}

static void connect_error_without_request(struct worker *worker, int64_t now)
{
    struct counters *counters = counters_for(worker, now);
    counters->errors[ERR_CONNECT]++;
    counters->connect_errors_without_request++;
    worker->engine->errors_total++;
    if (now >= worker->control->measure_ns) {
        struct timeline *timeline = &worker->stats.timeline;
        if (timeline_move_to(timeline, timeline_second(worker, now)))
            timeline->loose_errors[timeline->current_second]++;
    }
}

static void note_deadline(struct worker *worker, int64_t deadline)
{
    if (deadline < worker->engine->next_timeout_ns)
        worker->engine->next_timeout_ns = deadline;
}

static uint64_t conn_tag(const struct worker *worker, const struct conn *conn)
{
    return ((uint64_t)(conn - worker->conns) << 32) | conn->generation;
}

/* --- sockets ---------------------------------------------------------------------------------- */

/* A nonblocking socket with a connect in progress (bound to the next --source address). Returns
 * the descriptor or -errno. */
static int open_socket(struct worker *worker, bool nodelay)
{
    const struct config *config = worker->config;
    int fd = socket(config->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        goto fail;
    if (config->source_count > 0) {
        /* Without IP_BIND_ADDRESS_NO_PORT, bind() would pick the port alone and reserve it for
         * every destination; with it, connect() picks it knowing the whole 4-tuple. */
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
            goto fail;
        struct sockaddr_in source = {.sin_family = AF_INET};
        source.sin_addr.s_addr = config->sources[worker->next_source++ % (uint32_t)config->source_count];
        if (bind(fd, (struct sockaddr *)&source, sizeof source) != 0)
            goto fail;
    }
    if (connect(fd, (const struct sockaddr *)&config->address, config->address_len) != 0 && errno != EINPROGRESS)
        goto fail;
    return fd;
fail:;
    int error = errno;
    close(fd);
    return -error;
}

static void log_epoll_error(struct worker *worker, const char *what)
{
    if (worker->engine->epoll_error_logged)
        return;
    worker->engine->epoll_error_logged = true;
    fprintf(stderr, "loadgen: thread %d: epoll_ctl(%s): %s (the connection is counted as failed)\n",
            worker->id, what, strerror(errno));
}

/* --- active connections ----------------------------------------------------------------------- */

static void conn_resume(struct worker *worker, struct conn *conn, int64_t now);
static void conn_send(struct worker *worker, struct conn *conn, uint32_t count, int64_t now);

static void conn_close(struct worker *worker, struct conn *conn)
{
    if (conn->fd >= 0) {
        if (close(conn->fd) != 0 && errno != EINTR) /* the descriptor is gone either way */
            fprintf(stderr, "loadgen: close: %s\n", strerror(errno));
        conn->fd = -1;
    }
    if (conn->state == CONN_UP)
        worker->engine->open_count--;
    conn->state = CONN_DOWN;
    conn->watching = 0;
    conn->unwritten = 0;
    conn->carry_len = 0;
    http_response_start(&conn->response, worker->config->head_request);
}

static void schedule_retry(struct worker *worker, struct conn *conn, int64_t now)
{
    conn->backoff_ns = conn->backoff_ns ? min64(conn->backoff_ns * 2, BACKOFF_MAX_NS) : BACKOFF_MIN_NS;
    conn->retry_at_ns = now + conn->backoff_ns;
    worker->engine->next_retry_ns = min64(worker->engine->next_retry_ns, conn->retry_at_ns);
}

/* Every request in flight fails with this class; the connection is closed and opened again. */
static void conn_fail(struct worker *worker, struct conn *conn, enum error_class class, int64_t now)
{
    uint32_t pipeline = (uint32_t)worker->config->pipeline;
    for (uint32_t i = 0; i < conn->in_flight; i++)
        request_failed(worker, &conn->slots[(conn->oldest + i) % pipeline], class, now, now);
    conn->in_flight = 0;
    conn_close(worker, conn);
    if (class == ERR_CONNECT)
        schedule_retry(worker, conn, now);
    else
        conn_resume(worker, conn, now);
}

/* A connect failed (socket, bind, connect, or the handshake). With --close it fails the request
 * that was waiting for it; otherwise no request had started and only the attempt is counted. */
static void conn_connect_failed(struct worker *worker, struct conn *conn, int64_t now)
{
    if (conn->in_flight == 0)
        connect_error_without_request(worker, now);
    conn_fail(worker, conn, ERR_CONNECT, now);
}

static bool conn_watch(struct worker *worker, struct conn *conn, uint32_t wanted)
{
    if (wanted == conn->watching)
        return true;
    struct epoll_event event = {.events = wanted, .data.u64 = conn_tag(worker, conn)};
    if (epoll_ctl(worker->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) != 0) {
        log_epoll_error(worker, "MOD");
        return false;
    }
    conn->watching = wanted;
    return true;
}

static void conn_connect(struct worker *worker, struct conn *conn, int64_t now)
{
    const struct config *config = worker->config;
    bool nodelay = !config->close || config->longest_request > NODELAY_THRESHOLD;
    int fd = open_socket(worker, nodelay);
    conn->retry_at_ns = 0;
    if (fd < 0) {
        conn_connect_failed(worker, conn, now);
        return;
    }
    conn->fd = fd;
    conn->generation++;
    conn->state = CONN_CONNECTING;
    conn->connect_start_ns = now;
    struct epoll_event event = {.events = EPOLLOUT, .data.u64 = conn_tag(worker, conn)};
    if (epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        log_epoll_error(worker, "ADD");
        conn_connect_failed(worker, conn, now);
        return;
    }
    conn->watching = EPOLLOUT;
    note_deadline(worker, now + config->timeout_ns);
}

/* A request starts now in the next free slot of the connection's ring: it takes its path, is
 * counted as started and, in open loop, takes the next intended time and records its send lag.
 * Returns the length of its request. */
static size_t conn_start_request(struct worker *worker, struct conn *conn, int64_t now)
{
    struct request_slot *slot = &conn->slots[(conn->oldest + conn->in_flight) % (uint32_t)worker->config->pipeline];
    slot->start_ns = now;
    slot->intended_ns = worker->engine->open_loop ? intended_time(worker, conn, conn->next_k++) : now;
    slot->path = worker->engine->mixed ? mix_next(&worker->engine->mix) : 0;
    int64_t begin = request_begin(worker, slot);
    counters_for(worker, begin)->started++;
    if (worker->engine->open_loop && begin >= worker->control->measure_ns)
        hdr_record(&worker->stats.paths[slot->path].lag, to_us(now - slot->intended_ns));
    conn->in_flight++;
    return worker->config->paths[slot->path].request_len;
}

/* With --close, a request begins with its connect. */
static void conn_begin_close_request(struct worker *worker, struct conn *conn, int64_t now)
{
    conn->oldest = 0;
    conn->in_flight = 0;
    conn_start_request(worker, conn, now);
    conn_connect(worker, conn, now);
}

/* Gets a connection that is down going again, as its mode requires. */
static void conn_resume(struct worker *worker, struct conn *conn, int64_t now)
{
    if (!worker->config->close)
        conn_connect(worker, conn, now);
    else if (!worker->engine->open_loop || conn->due_k > conn->next_k)
        conn_begin_close_request(worker, conn, now);
}

/* --mix: sends the pending bytes, which are the tails of the newest requests started (whole
 * requests but the first); they are found by walking back from the newest slot, as the ring holds
 * the last `pipeline` requests started and no request starts while a write is pending. */
static ssize_t conn_send_mixed(struct worker *worker, struct conn *conn)
{
    const struct config *config = worker->config;
    uint32_t pipeline = (uint32_t)config->pipeline;
    struct iovec pieces[1024]; /* -P is at most 1024 */
    size_t count = 0, left = conn->unwritten;
    uint32_t slot = (conn->oldest + conn->in_flight + pipeline - 1) % pipeline;
    while (left > 0 && count < pipeline) {
        const struct request_path *path = &config->paths[conn->slots[slot].path];
        size_t take = left < path->request_len ? left : path->request_len;
        pieces[pipeline - 1 - count] = (struct iovec){path->request + path->request_len - take, take};
        left -= take;
        count++;
        slot = (slot + pipeline - 1) % pipeline;
    }
    struct msghdr message = {.msg_iov = &pieces[pipeline - count], .msg_iovlen = count};
    return sendmsg(conn->fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Writes what is pending. Returns false when the connection failed (and was replaced). */
static bool conn_flush(struct worker *worker, struct conn *conn, int64_t now)
{
    const struct config *config = worker->config;
    const char *end = config->request + config->request_len * (size_t)config->pipeline;
    while (conn->unwritten > 0) {
        /* The pending bytes are whole requests but the first, and without --mix every copy is
         * the same, so they are always the tail of the pipelined buffer. */
        ssize_t written = worker->engine->mixed
                              ? conn_send_mixed(worker, conn)
                              : send(conn->fd, end - conn->unwritten, conn->unwritten, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written > 0) {
            conn->unwritten -= (size_t)written;
            if (now >= worker->control->measure_ns)
                worker->stats.bytes_written += (uint64_t)written;
            break; /* a partial write means a full socket buffer: wait for EPOLLOUT */
        }
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(worker, conn, written < 0 && (errno == ECONNRESET || errno == EPIPE) ? ERR_RESET : ERR_WRITE, now);
        return false;
    }
    if (!conn_watch(worker, conn, EPOLLIN | (conn->unwritten > 0 ? EPOLLOUT : 0u))) {
        conn_fail(worker, conn, ERR_WRITE, now);
        return false;
    }
    return true;
}

/* Starts `count` requests on an open connection (count + in_flight <= pipeline). */
static void conn_send(struct worker *worker, struct conn *conn, uint32_t count, int64_t now)
{
    const struct config *config = worker->config;
    if (conn->in_flight == 0)
        note_deadline(worker, now + config->timeout_ns);
    for (uint32_t i = 0; i < count; i++)
        conn->unwritten += conn_start_request(worker, conn, now);
    conn_flush(worker, conn, now);
}

/* Open loop: sends as much of the backlog as the pipeline allows. */
static void conn_send_backlog(struct worker *worker, struct conn *conn, int64_t now)
{
    uint64_t backlog = conn->due_k - conn->next_k;
    uint32_t room = (uint32_t)worker->config->pipeline - conn->in_flight;
    if (backlog == 0 || room == 0)
        return;
    conn_send(worker, conn, backlog < room ? (uint32_t)backlog : room, now);
}

/* After a response, or once connected: keep the connection busy. */
static void conn_next(struct worker *worker, struct conn *conn, int64_t now)
{
    /* While a write is pending, new requests wait: the pending bytes must stay a tail of the
     * pipelined buffer (see conn_flush). */
    if (conn->state != CONN_UP || conn->unwritten > 0)
        return;
    if (worker->engine->open_loop)
        conn_send_backlog(worker, conn, now);
    else if (conn->in_flight == 0)
        conn_send(worker, conn, (uint32_t)worker->config->pipeline, now);
}

static void conn_on_connect_event(struct worker *worker, struct conn *conn, uint32_t events, int64_t now)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* A connection the server accepted and reset at once is not a failed connect; with
         * --close it fails its request as a reset. */
        int error = 0;
        socklen_t len = sizeof error;
        if (conn->in_flight > 0 && getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 &&
            (error == ECONNRESET || error == EPIPE)) {
            conn_fail(worker, conn, ERR_RESET, now);
            return;
        }
        conn_connect_failed(worker, conn, now);
        return;
    }
    conn->state = CONN_UP;
    conn->backoff_ns = 0;
    worker->stats.connections_opened++;
    worker->engine->open_count++;
    if (worker->config->close) {
        conn->unwritten = worker->config->paths[conn->slots[conn->oldest].path].request_len;
        conn_flush(worker, conn, now);
    } else if (worker->engine->open_loop && conn->due_k == conn->next_k) {
        if (!conn_watch(worker, conn, EPOLLIN)) /* nothing due yet: stop watching EPOLLOUT */
            conn_fail(worker, conn, ERR_READ, now);
    } else {
        conn_next(worker, conn, now);
    }
}

/* A whole response arrived for the oldest request. Returns false if the connection was closed. */
static bool conn_on_response(struct worker *worker, struct conn *conn, int64_t now)
{
    const struct config *config = worker->config;
    struct request_slot *slot = &conn->slots[conn->oldest];
    conn->oldest = (conn->oldest + 1) % (uint32_t)config->pipeline;
    conn->in_flight--;

    const struct http_response *response = &conn->response;
    enum error_class class = ERROR_CLASSES;
    if (config->expect_status_count > 0) {
        class = ERR_STATUS;
        for (int i = 0; i < config->expect_status_count; i++)
            if (response->status == config->expect_status[i])
                class = ERROR_CLASSES;
    } else if (response->status < 200 || response->status > 299) {
        class = ERR_STATUS;
    }
    if (class == ERROR_CLASSES && config->expect_bytes >= 0 && response->body_bytes != (uint64_t)config->expect_bytes)
        class = ERR_BODY;

    if (class != ERROR_CLASSES) {
        request_failed(worker, slot, class, now, now);
    } else {
        int64_t begin = request_begin(worker, slot);
        struct counters *counters = counters_for(worker, begin);
        counters->completed++;
        worker->engine->done_total++;
        if (now >= worker->control->measure_ns && now < worker->control->end_ns)
            conn->responses_in_window++;
        if (begin >= worker->control->measure_ns) {
            struct path_stats *path = &worker->stats.paths[slot->path];
            int64_t latency_us = to_us(now - begin);
            hdr_record(&path->response, latency_us);
            if (worker->engine->open_loop)
                hdr_record(&path->service, to_us(now - slot->start_ns));
            timeline_record(&worker->stats.timeline, timeline_second(worker, now), slot->path, latency_us)->completed++;
        }
    }

    bool keep_alive = response->keep_alive;
    http_response_start(&conn->response, config->head_request);
    if (keep_alive && !config->close)
        return true;
    /* The server closes after this response (or we asked for that): requests pipelined behind it
     * will never be answered, which is a failure of those requests. */
    if (conn->in_flight > 0) {
        conn_fail(worker, conn, ERR_READ, now);
    } else {
        if (!config->close)
            worker->stats.closed_by_server++;
        conn_close(worker, conn);
        conn_resume(worker, conn, now);
    }
    return false;
}

static void conn_on_eof(struct worker *worker, struct conn *conn, int64_t now)
{
    if (conn->in_flight == 0 && !http_response_started(&conn->response)) {
        /* The server closed a keep-alive connection between requests: not an error. */
        worker->stats.closed_by_server++;
        conn_close(worker, conn);
        conn_resume(worker, conn, now);
        return;
    }
    if (conn->in_flight > 0 && http_response_finish_at_eof(&conn->response) == HTTP_RESPONSE_COMPLETE) {
        conn_on_response(worker, conn, now); /* a body delimited by the close; closes conn */
        return;
    }
    conn_fail(worker, conn, ERR_READ, now);
}

static void conn_on_readable(struct worker *worker, struct conn *conn)
{
    char *buffer = worker->read_buffer;
    size_t have = conn->carry_len;
    if (have > 0)
        memcpy(buffer, conn->carry, have);
    ssize_t got = read(conn->fd, buffer + have, worker->read_size);
    int64_t now = now_ns();
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_fail(worker, conn, errno == ECONNRESET ? ERR_RESET : ERR_READ, now);
        return;
    }
    if (got == 0) {
        conn_on_eof(worker, conn, now);
        return;
    }
    if (now >= worker->control->measure_ns)
        worker->stats.bytes_read += (uint64_t)got;
    have += (size_t)got;
    conn->carry_len = 0;

    size_t pos = 0;
    while (pos < have) {
        if (conn->in_flight == 0) {
            conn_fail(worker, conn, ERR_PARSE, now); /* bytes nobody asked for */
            return;
        }
        size_t used;
        int result = http_response_parse(&conn->response, buffer + pos, have - pos, &used);
        if (result == HTTP_RESPONSE_ERROR) {
            conn_fail(worker, conn, ERR_PARSE, now);
            return;
        }
        pos += used;
        if (result == HTTP_RESPONSE_INCOMPLETE)
            break;
        if (!conn_on_response(worker, conn, now))
            return;
    }
    if (pos < have) {
        /* An unfinished head line; the parser bounds it to HTTP_RESPONSE_MAX_HEAD. */
        if (conn->carry == NULL && (conn->carry = malloc(HTTP_RESPONSE_MAX_HEAD)) == NULL) {
            conn_fail(worker, conn, ERR_READ, now);
            return;
        }
        memcpy(conn->carry, buffer + pos, have - pos);
        conn->carry_len = (uint32_t)(have - pos);
    }
    conn_next(worker, conn, now);
}

/* Abandons the requests of a connection whose oldest request reached its deadline. */
static void conn_timeout(struct worker *worker, struct conn *conn, int64_t deadline, int64_t now)
{
    uint32_t pipeline = (uint32_t)worker->config->pipeline;
    for (uint32_t i = 0; i < conn->in_flight; i++)
        request_failed(worker, &conn->slots[(conn->oldest + i) % pipeline], ERR_TIMEOUT, now, deadline);
    conn->in_flight = 0;
    conn_close(worker, conn);
    conn_resume(worker, conn, now);
}

static void check_timeouts(struct worker *worker, int64_t now)
{
    int64_t timeout = worker->config->timeout_ns;
    int64_t next_scan = now + min64(TIMEOUT_SCAN_NS, timeout / 4);
    worker->engine->next_timeout_ns = INT64_MAX;
    for (uint32_t i = 0; i < worker->conn_count; i++) {
        struct conn *conn = &worker->conns[i];
        if (conn->in_flight > 0) {
            int64_t deadline = conn->slots[conn->oldest].start_ns + timeout;
            if (deadline <= now)
                conn_timeout(worker, conn, deadline, now);
            else
                note_deadline(worker, deadline);
        } else if (conn->state == CONN_CONNECTING) {
            int64_t deadline = conn->connect_start_ns + timeout;
            if (deadline <= now)
                conn_connect_failed(worker, conn, now);
            else
                note_deadline(worker, deadline);
        }
    }
    if (worker->engine->next_timeout_ns < next_scan)
        worker->engine->next_timeout_ns = next_scan;
}

static void run_retries(struct worker *worker, int64_t now)
{
    worker->engine->next_retry_ns = INT64_MAX;
    for (uint32_t i = 0; i < worker->conn_count; i++) {
        struct conn *conn = &worker->conns[i];
        if (conn->state != CONN_DOWN || conn->retry_at_ns == 0)
            continue;
        if (conn->retry_at_ns <= now) {
            conn->retry_at_ns = 0;
            conn_resume(worker, conn, now);
        } else {
            worker->engine->next_retry_ns = min64(worker->engine->next_retry_ns, conn->retry_at_ns);
        }
    }
}

/* Open loop: every request whose intended time has come joins its connection's backlog, which
 * the connection sends if it can (and `send` is true: at the end, the requests due before the
 * stop are only counted). */
static void advance_schedule(struct worker *worker, int64_t now, bool send)
{
    struct engine_state *engine = worker->engine;
    while (engine->next_due_ns <= now) {
        struct conn *conn = &worker->conns[engine->cursor];
        counters_for(worker, engine->next_due_ns)->intended++;
        conn->due_k = engine->cursor_k + 1;
        if (!send) {
            /* counted as intended; account_leftovers counts it as unsent */
        } else if (worker->config->close) {
            if (conn->state == CONN_DOWN && conn->retry_at_ns == 0 && conn->in_flight == 0)
                conn_begin_close_request(worker, conn, now);
        } else if (conn->state == CONN_UP && conn->unwritten == 0) {
            conn_send_backlog(worker, conn, now);
        }
        if (++engine->cursor == worker->conn_count) {
            engine->cursor = 0;
            engine->cursor_k++;
        }
        engine->next_due_ns = intended_time(worker, &worker->conns[engine->cursor], engine->cursor_k);
    }
}

/* --- idle connections ------------------------------------------------------------------------- */

static void idle_close(struct idle_conn *idle)
{
    if (idle->fd >= 0 && close(idle->fd) != 0 && errno != EINTR)
        fprintf(stderr, "loadgen: close: %s\n", strerror(errno));
    idle->fd = -1;
    idle->state = IDLE_CLOSED;
}

static bool idle_open(struct worker *worker, uint32_t index, int64_t now)
{
    struct idle_conn *idle = &worker->idle[index];
    int fd = open_socket(worker, false);
    if (fd < 0) {
        idle->state = IDLE_CLOSED;
        worker->stats.idle.failed++;
        return false;
    }
    idle->fd = fd;
    idle->state = IDLE_CONNECTING;
    idle->connect_start_ns = now;
    struct epoll_event event = {.events = EPOLLOUT, .data.u64 = TAG_IDLE | index};
    if (epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        log_epoll_error(worker, "ADD");
        idle_close(idle);
        worker->stats.idle.failed++;
        return false;
    }
    return true;
}

static void idle_on_event(struct worker *worker, uint32_t index, uint32_t events)
{
    struct idle_conn *idle = &worker->idle[index];
    if (idle->state == IDLE_CONNECTING) {
        struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = TAG_IDLE | index};
        if ((events & (EPOLLERR | EPOLLHUP)) || epoll_ctl(worker->epoll_fd, EPOLL_CTL_MOD, idle->fd, &event) != 0) {
            idle_close(idle);
            worker->stats.idle.failed++;
            return;
        }
        idle->state = IDLE_OPEN;
        worker->stats.idle.established++;
        return;
    }
    if (idle->state != IDLE_OPEN)
        return;
    /* An idle connection only becomes readable when the server closes it (or misbehaves). */
    char discard[512];
    ssize_t got = recv(idle->fd, discard, sizeof discard, MSG_DONTWAIT);
    if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return;
    worker->stats.idle.closed_by_peer++;
    idle_close(idle);
}

/* Opens this thread's idle connections, IDLE_CONNECT_WINDOW at a time so as not to overflow the
 * server's accept queue, and waits until each has connected or failed. The whole setup is bounded
 * by --timeout too: a server that stops completing handshakes (its accept queue full, as with the
 * iterative server) would otherwise cost one timeout per window, minutes for 10 000 connections.
 * What is not established by then counts as failed. */
static void idle_setup(struct worker *worker)
{
    int64_t begin = now_ns();
    int64_t timeout = worker->config->timeout_ns;
    int64_t setup_deadline = begin + timeout;
    uint32_t next = 0, connecting = 0, first_unsettled = 0;
    struct epoll_event events[MAX_EVENTS];
    while (!atomic_load_explicit(&worker->control->stop, memory_order_relaxed)) {
        int64_t now = now_ns();
        if (now >= setup_deadline) {
            for (uint32_t i = first_unsettled; i < next; i++) {
                if (worker->idle[i].state == IDLE_CONNECTING) {
                    idle_close(&worker->idle[i]);
                    worker->stats.idle.failed++;
                }
            }
            worker->stats.idle.failed += worker->idle_count - next;
            break;
        }
        while (connecting < IDLE_CONNECT_WINDOW && next < worker->idle_count)
            if (idle_open(worker, next++, now))
                connecting++;
        /* Connects finish roughly in order; time out the ones that do not. */
        while (first_unsettled < next && worker->idle[first_unsettled].state != IDLE_CONNECTING)
            first_unsettled++;
        for (uint32_t i = first_unsettled; i < next; i++) {
            struct idle_conn *idle = &worker->idle[i];
            if (idle->state == IDLE_CONNECTING && idle->connect_start_ns + timeout <= now) {
                idle_close(idle);
                worker->stats.idle.failed++;
                connecting--;
            }
        }
        if (connecting == 0 && next == worker->idle_count)
            break;
        int ready = epoll_wait(worker->epoll_fd, events, MAX_EVENTS, 100);
        if (ready < 0 && errno != EINTR) {
            fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < ready; i++) {
            uint32_t index = (uint32_t)(events[i].data.u64 & 0xffffffffu);
            if (worker->idle[index].state == IDLE_CONNECTING) {
                connecting--;
                idle_on_event(worker, index, events[i].events);
            }
        }
    }
    worker->stats.idle.setup_s = (double)(now_ns() - begin) / 1e9;
}

/* At the end: which idle connections are still open? A peek says without consuming anything. */
static void idle_finish(struct worker *worker)
{
    for (uint32_t i = 0; i < worker->idle_count; i++) {
        struct idle_conn *idle = &worker->idle[i];
        if (idle->state == IDLE_OPEN) {
            char byte;
            ssize_t got = recv(idle->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
                worker->stats.idle.open_at_end++;
            else
                worker->stats.idle.closed_by_peer++;
        }
        if (idle->state != IDLE_CLOSED && idle->state != IDLE_NEW)
            idle_close(idle);
    }
}

/* --- the loop --------------------------------------------------------------------------------- */

static void mark_cpu(struct worker *worker, bool at_end)
{
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) != 0) {
        fprintf(stderr, "loadgen: getrusage: %s\n", strerror(errno));
        return;
    }
    if (!at_end) {
        worker->engine->cpu_start = usage;
        worker->engine->cpu_marked = true;
        return;
    }
    const struct rusage *start = &worker->engine->cpu_start;
    worker->stats.cpu_user_s = (double)(usage.ru_utime.tv_sec - start->ru_utime.tv_sec) +
                               (double)(usage.ru_utime.tv_usec - start->ru_utime.tv_usec) / 1e6;
    worker->stats.cpu_sys_s = (double)(usage.ru_stime.tv_sec - start->ru_stime.tv_sec) +
                              (double)(usage.ru_stime.tv_usec - start->ru_stime.tv_usec) / 1e6;
}

static void publish_progress(struct worker *worker)
{
    atomic_store_explicit(&worker->progress_done, worker->engine->done_total, memory_order_relaxed);
    atomic_store_explicit(&worker->progress_errors, worker->engine->errors_total, memory_order_relaxed);
    atomic_store_explicit(&worker->progress_open, worker->engine->open_count, memory_order_relaxed);
}

static void dispatch(struct worker *worker, const struct epoll_event *event)
{
    uint64_t tag = event->data.u64;
    if (tag & TAG_IDLE) {
        idle_on_event(worker, (uint32_t)(tag & 0xffffffffu), event->events);
        return;
    }
    struct conn *conn = &worker->conns[tag >> 32];
    if (conn->fd < 0 || conn->generation != (uint32_t)tag)
        return; /* for a socket closed earlier in this batch */
    if (conn->state == CONN_CONNECTING) {
        conn_on_connect_event(worker, conn, event->events, now_ns());
        return;
    }
    /* Errors and hang-ups are handled as readable: the read then says what happened. */
    if (event->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_on_readable(worker, conn);
    if ((event->events & EPOLLOUT) && conn->generation == (uint32_t)tag && conn->state == CONN_UP &&
        conn->unwritten > 0) {
        int64_t now = now_ns();
        if (conn_flush(worker, conn, now) && conn->unwritten == 0)
            conn_next(worker, conn, now);
    }
}

void worker_add_fairness(const struct worker *worker, struct fairness *fairness)
{
    for (uint32_t i = 0; i < worker->conn_count; i++) {
        uint64_t responses = worker->conns[i].responses_in_window;
        if (fairness->connections == 0 || responses < fairness->min_per_connection)
            fairness->min_per_connection = responses;
        if (responses > fairness->max_per_connection)
            fairness->max_per_connection = responses;
        fairness->connections++;
        fairness->responses += responses;
        fairness->served += responses > 0;
        fairness->sum_squares += (double)responses * (double)responses;
    }
}

/* Counts what is still in flight or unsent when the run stops. */
static void account_leftovers(struct worker *worker)
{
    uint32_t pipeline = (uint32_t)worker->config->pipeline;
    for (uint32_t i = 0; i < worker->conn_count; i++) {
        struct conn *conn = &worker->conns[i];
        for (uint32_t j = 0; j < conn->in_flight; j++) {
            const struct request_slot *slot = &conn->slots[(conn->oldest + j) % pipeline];
            int64_t begin = request_begin(worker, slot);
            counters_for(worker, begin)->in_flight_at_end++;
            if (begin >= worker->control->measure_ns)
                worker->stats.paths[slot->path].in_flight_at_end++;
        }
        if (!worker->engine->open_loop || conn->due_k == conn->next_k)
            continue;
        /* Unsent requests next_k..due_k-1: the first ones may be warm-up requests. Intended times
         * grow with k, so find the first measured one by bisection. */
        uint64_t low = conn->next_k, high = conn->due_k;
        while (low < high) {
            uint64_t middle = low + (high - low) / 2;
            if (intended_time(worker, conn, middle) >= worker->control->measure_ns)
                high = middle;
            else
                low = middle + 1;
        }
        worker->stats.warmup.unsent_at_end += low - conn->next_k;
        worker->stats.measured.unsent_at_end += conn->due_k - low;
    }
}

static void run_loop(struct worker *worker)
{
    struct engine_state *engine = worker->engine;
    const struct run_control *control = worker->control;
    struct epoll_event events[MAX_EVENTS];
    int64_t now = now_ns();
    for (;;) {
        if (now >= control->end_ns || atomic_load_explicit(&worker->control->stop, memory_order_relaxed))
            break;
        if (!engine->cpu_marked && now >= control->measure_ns)
            mark_cpu(worker, false);
        if (engine->open_loop)
            advance_schedule(worker, now, true);
        if (now >= engine->next_timeout_ns)
            check_timeouts(worker, now);
        if (now >= engine->next_retry_ns)
            run_retries(worker, now);
        publish_progress(worker);

        int64_t wake = min64(control->end_ns, now + MAX_WAIT_NS);
        wake = min64(wake, engine->next_timeout_ns);
        wake = min64(wake, engine->next_retry_ns);
        if (engine->open_loop)
            wake = min64(wake, engine->next_due_ns);
        if (!engine->cpu_marked)
            wake = min64(wake, control->measure_ns);
        int64_t wait_ns = wake > now ? wake - now : 0;
        struct timespec timeout = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        int ready = epoll_pwait2(worker->epoll_fd, events, MAX_EVENTS, &timeout, NULL);
        if (ready < 0 && errno != EINTR) {
            fprintf(stderr, "loadgen: thread %d: epoll_pwait2: %s\n", worker->id, strerror(errno));
            break;
        }
        for (int i = 0; i < ready; i++)
            dispatch(worker, &events[i]);
        now = now_ns();
    }
    worker->finished_ns = min64(now, control->end_ns);
}

void *worker_main(void *arg)
{
    struct worker *worker = arg;
    struct engine_state *engine = worker->engine;
    if (worker->idle_count > 0)
        idle_setup(worker);
    pthread_barrier_wait(&worker->control->ready);
    pthread_barrier_wait(&worker->control->go);

    /* Open loop sleeps until the next intended send; the default 50 µs timer slack would add
     * itself to every send lag. */
    if (engine->open_loop && prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0)
        fprintf(stderr, "loadgen: prctl(PR_SET_TIMERSLACK): %s\n", strerror(errno));
    int64_t now = now_ns();
    engine->next_timeout_ns = INT64_MAX;
    engine->next_retry_ns = INT64_MAX;
    engine->next_due_ns = INT64_MAX;
    if (engine->open_loop) {
        engine->next_due_ns = intended_time(worker, &worker->conns[0], 0);
        if (!worker->config->close)
            for (uint32_t i = 0; i < worker->conn_count; i++)
                conn_connect(worker, &worker->conns[i], now);
    } else {
        for (uint32_t i = 0; i < worker->conn_count; i++)
            conn_resume(worker, &worker->conns[i], now);
    }
    run_loop(worker);
    if (engine->cpu_marked)
        mark_cpu(worker, true);
    /* Requests intended between the last loop and the stop were due too: they count as unsent. */
    if (engine->open_loop)
        advance_schedule(worker, worker->finished_ns - 1, false);

    account_leftovers(worker);
    for (uint32_t i = 0; i < worker->conn_count; i++)
        conn_close(worker, &worker->conns[i]);
    idle_finish(worker);
    timeline_flush(&worker->stats.timeline);
    publish_progress(worker);
    return NULL;
}

int worker_init(struct worker *worker, int id, const struct config *config, struct run_control *control)
{
    memset(worker, 0, sizeof *worker);
    worker->id = id;
    worker->config = config;
    worker->control = control;
    worker->epoll_fd = -1;
    uint32_t threads = (uint32_t)config->threads;
    worker->first_conn = (uint32_t)id;
    worker->conn_count = (uint32_t)config->connections / threads + ((uint32_t)id < (uint32_t)config->connections % threads);
    worker->idle_count = (uint32_t)config->idle / threads + ((uint32_t)id < (uint32_t)config->idle % threads);
    worker->next_source = (uint32_t)id;
    worker->read_size = READ_SIZE;

    int error = run_stats_init(&worker->stats, config, false);
    if (error != 0)
        return error;
    worker->stats.idle.requested = worker->idle_count;
    worker->engine = calloc(1, sizeof *worker->engine);
    worker->read_buffer = malloc(READ_SIZE + HTTP_RESPONSE_MAX_HEAD);
    worker->conns = calloc(worker->conn_count, sizeof *worker->conns);
    worker->idle = calloc(worker->idle_count ? worker->idle_count : 1, sizeof *worker->idle);
    if (worker->engine == NULL || worker->read_buffer == NULL || worker->conns == NULL || worker->idle == NULL)
        return -ENOMEM;
    worker->engine->open_loop = config->rate > 0;
    worker->engine->second_start_ns = INT64_MAX - 1000000000; /* no second cached yet */
    worker->engine->ns_per_request = config->rate > 0 ? 1e9 / config->cluster_rate : 0;
    worker->engine->mixed = config->path_count > 1;
    int32_t weights[MAX_PATHS];
    for (int p = 0; p < config->path_count; p++)
        weights[p] = config->paths[p].weight;
    mix_init(&worker->engine->mix, config->path_count, weights);
    for (uint32_t i = 0; i < worker->conn_count; i++) {
        struct conn *conn = &worker->conns[i];
        conn->fd = -1;
        conn->global_index = (worker->first_conn + (uint64_t)i * threads) * (uint64_t)config->cluster_size +
                             (uint64_t)config->cluster_rank;
        conn->slots = calloc((size_t)config->pipeline, sizeof *conn->slots);
        if (conn->slots == NULL)
            return -ENOMEM;
        http_response_start(&conn->response, config->head_request);
    }
    for (uint32_t i = 0; i < worker->idle_count; i++)
        worker->idle[i] = (struct idle_conn){.fd = -1, .state = IDLE_NEW};
    worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (worker->epoll_fd < 0)
        return -errno;
    return 0;
}

void worker_destroy(struct worker *worker)
{
    if (worker->conns) {
        for (uint32_t i = 0; i < worker->conn_count; i++) {
            free(worker->conns[i].slots);
            free(worker->conns[i].carry);
        }
    }
    free(worker->conns);
    free(worker->idle);
    free(worker->read_buffer);
    free(worker->engine);
    if (worker->epoll_fd >= 0 && close(worker->epoll_fd) != 0)
        fprintf(stderr, "loadgen: close(epoll): %s\n", strerror(errno));
    run_stats_destroy(&worker->stats);
}
