/* conn.h - one client connection: its buffers, its framing, its deadlines.
 *
 * Two layers. The core (conn_core.c) is the protocol state machine and makes no system call of its
 * own: bytes that arrived go in (conn_received), bytes to send come out (conn_output), and the
 * driver says how many went (conn_sent). A completion-based server (io_uring, libuv) uses the core
 * directly: its I/O lands in buffers it chose, and the output the core hands it stays where it is
 * until conn_sent says it went, however long the send takes. The readiness driver (conn.c) sits on
 * top for servers that wait until a socket is ready and then call recv and send themselves: they
 * call conn_on_readable() or conn_on_writable() and ask conn_wants_read() / conn_wants_write() /
 * conn_is_done() what to wait for next. Blocking servers use the same driver on blocking sockets
 * (serve_blocking.c).
 *
 *        +------ OPEN ------+   error response, or Connection: close
 *        | read, answer,    |-------------------------------------------> CLOSING (send the rest)
 *        | write; repeat    |                                                 |          |
 *        +------------------+                                  after an error |          | otherwise
 *          | peer closed, reset, timeout                                      v          |
 *          +-------------------------------------> DONE <------ LINGERING (discard input ≤ 1 s)
 */
#ifndef C10K_CONN_H
#define C10K_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "handler.h"

/* Reading pauses while more than this much output waits for a slow client (back-pressure). */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)
/* The most iovecs conn_output() fills. */
#define CONN_OUTPUT_PARTS 8

enum conn_state {
    CONN_OPEN,      /* reading requests and answering them */
    CONN_CLOSING,   /* sending the last response; then LINGERING or DONE */
    CONN_LINGERING, /* our side is shut down; reading and dropping what the client still sends */
    CONN_DONE,      /* the server should close the descriptor (conn_release) */
};

/* A piece of output the client has not taken yet. Chunks are never moved or resized, so bytes
 * handed to a send stay valid while more output is appended behind them. */
struct conn_chunk {
    struct conn_chunk *next;
    size_t start, end, cap;
    char bytes[];
};

struct conn;
/* An offloaded request (see conn_job_run): a copy of its bytes, so the worker needs nothing of the
 * connection's. The core fills `conn` and never reads `next`, which the server's queues may use to
 * link jobs without an allocation of their own; the rest is the core's. */
struct conn_job {
    struct conn_job *next;
    struct conn *conn;
    struct response response;
    size_t len;
    char request[];
};
/* Takes a blocking request (GET /cpu, /sleep) away to run on another thread; see conn_job_run. */
typedef void conn_offload_fn(struct conn *conn, struct conn_job *job);

struct conn {
    int fd;                    /* the socket; the core itself never uses it */
    enum conn_state state;
    bool linger_on_close;      /* CLOSING ends in LINGERING: the client may still be sending */
    bool shutdown_due;         /* LINGERING begins: the driver must shut down our sending side */
    bool input_ended;          /* the client sent its FIN; held requests are still answered */

    /* Input not yet answered: a partial request, or requests held back by back-pressure. Empty
     * (and unallocated) most of the time. */
    char *in;
    size_t in_len, in_cap;
    size_t scanned;            /* the parser's progress through a partial head */
    size_t in_needed;          /* the whole request's size, once its head is parsed */

    /* Output not yet sent: staged bytes (readiness driver only, see conn_stage_begin), then the
     * chunks, then the rest of a /bytes body. */
    struct conn_chunk *out_head, *out_tail;
    size_t out_len;            /* bytes in the chunks */
    uint64_t stream_offset, stream_remaining;

    conn_offload_fn *offload;  /* NULL: blocking routes run in the calling thread */
    struct conn_job *job;      /* the offloaded request being worked on, if any */

    double request_started;    /* when the partial request in `in` began; 0 if none */
    double idle_since;         /* the last input, or when the last response was sent */
    double send_stalled_since; /* when output stopped moving; 0 if it is not stuck */
    double linger_until;
};

/* --- the core: no system calls ---------------------------------------------------------------- */

/* Starts a connection on a descriptor (or -1 where a library owns the socket). */
void conn_init(struct conn *conn, int fd);

/* Bytes that arrived (in the driver's buffer): every complete request among them is answered
 * now; the rest is kept. Input that comes while the core cannot answer (back-pressure, an
 * offloaded request) is kept and answered later, in order. */
void conn_received(struct conn *conn, const char *data, size_t len);
/* The client will send no more: what it asked for so far is still owed to it, including complete
 * requests held back by back-pressure or behind an offloaded one; a partial request is dropped.
 * The connection is done once the last of those answers has been sent. */
void conn_received_eof(struct conn *conn);
/* A read or send failed with this errno: the connection is done; counted. */
void conn_failed(struct conn *conn, int error);
/* The server could not get a resource for this connection (memory, an epoll slot): it is done;
 * counted as dropped. */
void conn_dropped(struct conn *conn);

/* Fills up to max parts with the output to send next, in order; returns how many (0: nothing to
 * send). The bytes stay valid and in place until conn_sent() accounts for them. */
int conn_output(const struct conn *conn, struct iovec *parts, int max);
/* `bytes` of the output went out: frees what was sent, and answers any requests back-pressure held
 * back once all is gone (which may add output). */
void conn_sent(struct conn *conn, size_t bytes);

/* Whether parts (from conn_output) hold all the output left, after which the connection's sending
 * side closes: the driver's close or shutdown follows as soon as they are sent. A driver then
 * sends them with MSG_MORE, so that the FIN goes out on the response's last segment. */
bool conn_output_is_last(const struct conn *conn, const struct iovec *parts, int count);

bool conn_wants_read(const struct conn *conn);
bool conn_wants_write(const struct conn *conn);
bool conn_is_done(const struct conn *conn);

/* Enforces the header, idle, send and linger deadlines; call it at least every SWEEP_INTERVAL_S
 * (conn_table.h). A 408 it answers is queued as output (conn_wants_write). */
void conn_check_deadlines(struct conn *conn, double now);
/* When conn_check_deadlines() will next have something to do for this connection, on the
 * clock_now() clock; 0 if never (done). A loop may sleep until then. */
double conn_next_deadline(const struct conn *conn);

/* Frees the buffers; the descriptor is the driver's to close. Not while a job is out. */
void conn_free(struct conn *conn);

/* Offloading. A server that answers /cpu and /sleep on worker threads sets conn->offload before
 * the first input. The core then hands such a request to offload() instead of answering it, and
 * answers nothing after it (pipelined requests wait, in order) until conn_job_finish(). */
/* Runs the request on any thread; touches no connection. */
void conn_job_run(struct conn_job *job);
/* Back on the connection's own thread: queues the job's response, frees the job and answers what
 * waited behind it. */
void conn_job_finish(struct conn *conn, struct conn_job *job);

/* Staging (for the readiness driver): between conn_stage_begin() and conn_stage_end(), a response
 * for a connection with no output of its own is written into `buffer` (cap bytes, the calling
 * thread's), so the common case sends it with no allocation and no copy. conn_stage_end() copies
 * whatever was not sent into the connection's own chunks. */
void conn_stage_begin(char *buffer, size_t cap);
void conn_stage_end(struct conn *conn);

/* Where the next read should go when the connection holds a partial request: its own input
 * buffer, grown to fit the request (*room bytes free), so the request is not copied twice. NULL
 * when it holds nothing: read into a buffer of your own and call conn_received(). Fails the
 * connection (conn_is_done) and returns NULL if memory runs out. */
char *conn_input_space(struct conn *conn, size_t *room);
/* `len` bytes were read into conn_input_space(): answers what they complete. */
void conn_input_added(struct conn *conn, size_t len);

/* --- the readiness driver (conn.c): recv and send on a socket that is ready ------------------- */

enum conn_read_result {
    CONN_DRAINED,  /* nothing more to read now: EAGAIN, end of input, or an error */
    CONN_MAY_HAVE_MORE, /* the read got bytes, or reading is paused: more may be waiting */
};

/* Reads once and answers every complete request read, with one write of all the responses. An
 * edge-triggered loop calls it again while it says CONN_MAY_HAVE_MORE and conn_wants_read(). */
enum conn_read_result conn_on_readable(struct conn *conn);

/* Sends what is pending until the socket takes no more; once it is all gone, answers any
 * requests that back-pressure had held back. */
void conn_on_writable(struct conn *conn);

/* Frees the buffers and closes the descriptor. */
void conn_release(struct conn *conn);

/* Answers an accepted connection the server has no room for (no process, thread or queue slot)
 * with `status` (503) and closes it, without ever blocking; counted as refused. */
void conn_refuse(int fd, int status);

#endif
