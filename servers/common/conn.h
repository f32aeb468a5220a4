/* conn.h - one client connection: its buffers, its framing, its deadlines.
 *
 * Every paradigm drives the same state machine. A server waits (in accept, read, epoll_wait,
 * io_uring, ...) until a connection can make progress, then calls conn_on_readable() or
 * conn_on_writable(), and asks conn_wants_read() / conn_wants_write() / conn_is_done() what to
 * wait for next. Blocking servers call the same functions on blocking sockets whose calls time out
 * every NET_TICK_MS (see serve_blocking.c).
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

/* Reading pauses while more than this much output waits for a slow client (back-pressure). */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)

enum conn_state {
    CONN_OPEN,      /* reading requests and answering them */
    CONN_CLOSING,   /* sending the last response; then LINGERING or DONE */
    CONN_LINGERING, /* our side is shut down; reading and dropping what the client still sends */
    CONN_DONE,      /* the server should close the descriptor (conn_release) */
};

struct conn {
    int fd;
    enum conn_state state;
    bool linger_on_close;      /* CLOSING ends in LINGERING: the client may still be sending */

    /* Input not yet answered: a partial request, or requests held back by back-pressure. Empty
     * (and unallocated) most of the time: reads go to a per-thread buffer first. */
    char *in;
    size_t in_len, in_cap;
    size_t scanned;            /* the parser's progress through a partial head */
    size_t in_needed;          /* the whole request's size, once its head is parsed */

    /* Output the socket has not taken yet, then the rest of a /bytes body. */
    char *out;
    size_t out_start, out_end, out_cap;
    uint64_t stream_offset, stream_remaining;

    double request_started;    /* when the partial request in `in` began; 0 if none */
    double idle_since;         /* the last read, or when the last response was sent */
    double send_stalled_since; /* when output stopped moving; 0 if it is not stuck */
    double linger_until;
};

/* Starts a connection on an accepted descriptor (blocking or not). */
void conn_init(struct conn *conn, int fd);

/* Reads once and answers every complete request read, with one write of all the responses. */
void conn_on_readable(struct conn *conn);

/* Sends what is pending until the socket takes no more; once it is all gone, answers any
 * requests that back-pressure had held back. */
void conn_on_writable(struct conn *conn);

/* Enforces the header, idle, send and linger deadlines; call it at least once a second. */
void conn_check_deadlines(struct conn *conn, double now);

/* When conn_check_deadlines() will next have something to do for this connection, on the
 * clock_now() clock; 0 if never (done). A loop may sleep until then. */
double conn_next_deadline(const struct conn *conn);

bool conn_wants_read(const struct conn *conn);
bool conn_wants_write(const struct conn *conn);
bool conn_is_done(const struct conn *conn);

/* Frees the buffers and closes the descriptor. */
void conn_release(struct conn *conn);

/* Answers an accepted connection the server has no room for (no process, thread or queue slot)
 * with `status` (503) and closes it, without ever blocking; counted as refused. */
void conn_refuse(int fd, int status);

#endif
