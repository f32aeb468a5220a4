/* server.c - exercise 2, solved: the line echo server as one thread on edge-triggered epoll.
 *
 *     server PORT        (PORT 0: the kernel picks a free port)
 *
 * The protocol is the starter's: every line a client sends (ended by '\n', at most 4,096 bytes
 * with it) comes back to it byte for byte; a longer line ends the connection; when the client
 * closes or shuts down its sending side, the answers still pending are sent, then the
 * connection is closed.
 *
 * How it works: every socket is nonblocking and registered once with one epoll instance, in
 * edge-triggered mode (EPOLLET). Edge-triggered epoll reports a socket when it *becomes* ready
 * (bytes arrived, room appeared in the send buffer, a connection came in), not while it stays
 * ready, so each report must be used up: accept until EAGAIN, read until EAGAIN. Whatever is
 * left behind is never reported again. Each connection is a small state machine kept in a
 * struct, since no thread's stack keeps it between two events:
 *     reading  - no output pending: read, move the complete lines to the output, write them;
 *     writing  - the socket took only part of the output: keep the rest, read nothing more
 *                (back-pressure), and wait for the edge that says there is room (EPOLLOUT);
 *     closing  - the client sent its last byte: flush the output, then close.
 *
 * Limits: one thread, so one core. A client that keeps its socket full is served for as long as
 * it does (reading until EAGAIN is not fair; production servers bound the work per event). At
 * the descriptor limit (EMFILE) the connections still queued wait for the next one's edge. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define MAX_EVENTS 64

struct connection {
    int fd;
    bool input_ended;         /* the client sent its last byte: close once the output is out */
    size_t in_len;            /* in[0 .. in_len): a line not yet ended */
    size_t out_start, out_end; /* out[out_start .. out_end): answers the socket has not taken */
    char in[LINE_MAX_BYTES];
    char out[LINE_MAX_BYTES]; /* one read's complete lines: we read only when out is empty */
};

/* Returns a socket listening on 127.0.0.1:port, nonblocking, or exits. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        perror("setsockopt(SO_REUSEADDR)");
        exit(1);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        exit(1);
    }
    /* A long backlog: a burst of connections waits in the kernel until the loop accepts it. */
    if (listen(fd, SOMAXCONN) != 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

/* Prints the port the kernel gave us, and flushes: whoever started us waits for this line. */
static void announce(int listen_fd)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("getsockname");
        exit(1);
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
}

/* Writes what the socket takes: 0 when the output is all out, 1 when the socket is full (the rest
 * stays in out[] until EPOLLOUT), -1 when the client has gone. */
static int flush_output(struct connection *conn)
{
    while (conn->out_start < conn->out_end) {
        ssize_t n = write(conn->fd, conn->out + conn->out_start, conn->out_end - conn->out_start);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n < 0)
            return -1; /* EPIPE, ECONNRESET */
        conn->out_start += (size_t)n; /* a partial write: the loop offers the rest */
    }
    conn->out_start = conn->out_end = 0;
    return 0;
}

/* Moves the complete lines at the start of in[] to out[] (empty, and as large as in[]). */
static void answer_lines(struct connection *conn)
{
    size_t answered = 0; /* bytes up to the last '\n' */
    for (size_t i = 0; i < conn->in_len; i++) {
        if (conn->in[i] == '\n')
            answered = i + 1;
    }
    memcpy(conn->out, conn->in, answered);
    conn->out_end = answered;
    memmove(conn->in, conn->in + answered, conn->in_len - answered);
    conn->in_len -= answered;
}

/* Runs the connection as far as it can go without blocking, whatever the event was: writes the
 * pending output, then reads and answers until the socket has nothing more to give (EAGAIN).
 * Every way out of the loop but "finished" waits on an edge that will come: EAGAIN on read
 * (new bytes bring EPOLLIN), EAGAIN on write (room brings EPOLLOUT). Returns -1 when the
 * connection is finished and must be closed. */
static int advance(struct connection *conn)
{
    for (;;) {
        int flushed = flush_output(conn);
        if (flushed != 0)
            return flushed; /* 1: socket full, input waits unread until EPOLLOUT */
        if (conn->input_ended)
            return -1; /* every answer sent */
        if (conn->in_len == sizeof conn->in)
            return -1; /* a line longer than LINE_MAX_BYTES: the protocol says we hang up */
        ssize_t n = read(conn->fd, conn->in + conn->in_len, sizeof conn->in - conn->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0; /* drained: the next bytes bring a new edge */
        if (n < 0)
            return -1; /* ECONNRESET */
        if (n == 0)
            conn->input_ended = true; /* go round once more to flush, then close */
        conn->in_len += (size_t)n;
        answer_lines(conn);
    }
}

static void close_connection(struct connection *conn)
{
    /* Closing the only descriptor of the socket also removes it from the epoll set. */
    if (close(conn->fd) != 0)
        perror("close");
    free(conn);
}

/* Accepts every connection waiting, until EAGAIN: the listening socket is edge-triggered too, and
 * one edge may stand for a whole burst of connections. */
static void accept_all(int listen_fd, int epoll_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue; /* ECONNABORTED: that client left before we took it; others may wait */
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept4"); /* EMFILE and the like: see the limits above */
            return;
        }
        struct connection *conn = calloc(1, sizeof *conn);
        if (conn == NULL) {
            perror("calloc");
            if (close(fd) != 0)
                perror("close");
            continue;
        }
        conn->fd = fd;
        /* Registered once for both directions: under EPOLLET an idle socket that stays writable
         * is reported once, not on every wait, so EPOLLOUT never needs to be switched on and off.
         * The kernel reports the socket's current state at once (writable, perhaps readable),
         * and that first event starts the connection. */
        struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = conn};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            perror("epoll_ctl(ADD)");
            close_connection(conn);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: server PORT\n");
        return 2;
    }
    /* Writing to a client that has gone must be an EPIPE error for that client, not the death
     * of the whole server by SIGPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("signal(SIGPIPE)");
        return 1;
    }
    int listen_fd = listen_on(atoi(argv[1]));
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) {
        perror("epoll_create1");
        return 1;
    }
    /* data.ptr NULL marks the listening socket; every other event carries its connection. */
    struct epoll_event listen_event = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0) {
        perror("epoll_ctl(ADD listen)");
        return 1;
    }
    announce(listen_fd);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < ready; i++) {
            struct connection *conn = events[i].data.ptr;
            if (conn == NULL) {
                accept_all(listen_fd, epoll_fd);
                continue;
            }
            /* EPOLLIN, EPOLLOUT, EPOLLERR or EPOLLHUP: advance() does what the socket now allows,
             * and a read or write reports an error or hang-up for itself. Each connection appears
             * once per batch, so the one closed here is not seen again. */
            if (advance(conn) < 0)
                close_connection(conn);
        }
    }
}
