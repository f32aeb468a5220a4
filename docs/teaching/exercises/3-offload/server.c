/* server.c - a line server on one epoll loop, for exercise 3 (README.md in this folder).
 *
 *     server PORT        (PORT 0: the kernel picks one; the first line printed says which)
 *
 * The protocol: a client sends lines, and each line gets one line back, carrying its ID.
 *     fast ID            ok ID              answered at once
 *     slow ID            done ID VALUE      VALUE is slow_lookup(ID), which takes 50 ms
 *     anything else      error
 * ID is a decimal number below 2^64. Answers on one connection may come in any order: a client
 * matches them to its requests by their IDs. A client that closes its connection is gone, and
 * answers still owed to it are dropped.
 *
 * One thread serves every client: epoll (level-triggered) says which sockets are ready, and the
 * loop reads, answers every complete line and writes. The sockets are nonblocking, so no read or
 * write stops the loop, and output the socket cannot take yet waits in the client's buffer.
 *
 * This server is correct, and it has one design flaw: slow_lookup blocks the only thread for
 * 50 ms, and while it runs every other client waits. Exercise 3 is to keep the loop and move the
 * slow lookups to worker threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 4096         /* a connection's state lives at its descriptor's number; above: refused */
#define INPUT_BYTES 4096     /* a line longer than this is a broken client */
#define OUTPUT_LIMIT 65536   /* past this much unsent output, stop reading that client */
#define ANSWER_BYTES 64      /* the longest answer line */
#define MAX_EVENTS 64

struct conn {
    char in[INPUT_BYTES];    /* input not yet answered: complete lines, then a line begun */
    size_t in_len;
    char *out;               /* answers the socket has not taken yet */
    size_t out_len, out_cap;
    uint32_t events;         /* what epoll watches it for now */
};

static struct conn conns[MAX_FDS];
static int epoll_fd;

/* --- the blocking call: do not change it ------------------------------------------------------ */

/* Looks ID up in a slow service: 50 ms of waiting, like a database query or a disk read, then a
 * value computed from ID. It blocks the thread that calls it all that time, and it has no
 * asynchronous form. Do not change it: the grader checks both its values and its 50 ms. */
static uint64_t slow_lookup(uint64_t id)
{
    struct timespec left = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    while (nanosleep(&left, &left) != 0) {
        if (errno != EINTR) {
            perror("nanosleep");
            break;
        }
    }
    uint64_t x = id + UINT64_C(0x9e3779b97f4a7c15); /* splitmix64's finaliser: every bit of ID counts */
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return (x ^ (x >> 31)) % 1000000;
}

/* --- one connection ----------------------------------------------------------------------------- */

/* Adds len bytes to the client's output; false if there is no memory for them. */
static bool append_output(struct conn *c, const char *bytes, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? 2 * c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *bigger = realloc(c->out, cap);
        if (bigger == NULL)
            return false;
        c->out = bigger;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, bytes, len);
    c->out_len += len;
    return true;
}

/* Sends what the socket takes now; false if the client is gone. */
static bool flush_output(int fd)
{
    struct conn *c = &conns[fd];
    size_t sent = 0;
    while (sent < c->out_len) {
        /* MSG_NOSIGNAL: a client that has gone is an EPIPE error here, not a SIGPIPE that kills us. */
        ssize_t n = send(fd, c->out + sent, c->out_len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* the socket is full: the rest waits for EPOLLOUT */
        if (n < 0)
            return false;
        sent += (size_t)n;
    }
    if (sent > 0) { /* (with nothing sent, out may still be NULL, which memmove must not get) */
        memmove(c->out, c->out + sent, c->out_len - sent);
        c->out_len -= sent;
    }
    return true;
}

/* Whether to answer more of the client's lines now: not while its output piles up, so that a
 * client that sends and never reads cannot make us buffer without end. */
static bool takes_input(const struct conn *c)
{
    return c->out_len < OUTPUT_LIMIT;
}

/* "fast ID" or "slow ID": returns 'f' or 's' and sets *id; 0 for any other line. */
static int parse_request(const char *line, uint64_t *id)
{
    if (strncmp(line, "fast ", 5) != 0 && strncmp(line, "slow ", 5) != 0)
        return 0;
    const char *digits = line + 5;
    if (*digits < '0' || *digits > '9')
        return 0; /* strtoull would take a sign or spaces */
    char *end;
    errno = 0;
    unsigned long long value = strtoull(digits, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    *id = value;
    return line[0];
}

/* Answers one line (without its '\n'); false if there is no memory for the answer. */
static bool answer_line(int fd, char *line)
{
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[len - 1] = '\0'; /* a terminal's line end */
    char answer[ANSWER_BYTES];
    int answer_len;
    uint64_t id;
    switch (parse_request(line, &id)) {
    case 'f':
        answer_len = snprintf(answer, sizeof answer, "ok %" PRIu64 "\n", id);
        break;
    case 's':
        answer_len = snprintf(answer, sizeof answer, "done %" PRIu64 " %" PRIu64 "\n", id, slow_lookup(id));
        break;
    default:
        answer_len = snprintf(answer, sizeof answer, "error\n");
    }
    return append_output(&conns[fd], answer, (size_t)answer_len);
}

/* Answers the complete lines buffered from the client, as many as it takes now. */
static bool answer_lines(int fd)
{
    struct conn *c = &conns[fd];
    size_t start = 0;
    char *newline;
    while (takes_input(c) && (newline = memchr(c->in + start, '\n', c->in_len - start)) != NULL) {
        *newline = '\0';
        if (!answer_line(fd, c->in + start))
            return false;
        start = (size_t)(newline + 1 - c->in);
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return true;
}

/* Watches for input while the client's lines are being answered and for room to write while
 * output waits: epoll is level-triggered, so watching for what we would not act on spins the loop. */
static bool watch(int fd)
{
    struct conn *c = &conns[fd];
    uint32_t events = (takes_input(c) ? EPOLLIN : 0) | (c->out_len > 0 ? EPOLLOUT : 0);
    if (events == c->events)
        return true;
    struct epoll_event event = {.events = events, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) != 0) {
        perror("epoll_ctl");
        return false;
    }
    c->events = events;
    return true;
}

/* After anything happened to the client: answer what it sent, send what we can, watch for what
 * comes next. False if the client must be closed. */
static bool serve(int fd)
{
    struct conn *c = &conns[fd];
    if (!answer_lines(fd) || !flush_output(fd))
        return false;
    if (c->in_len == sizeof c->in && memchr(c->in, '\n', c->in_len) == NULL)
        return false; /* a line that does not fit */
    return watch(fd);
}

static void close_conn(int fd)
{
    if (close(fd) != 0) /* closing also takes it out of the epoll set */
        perror("close");
    free(conns[fd].out);
    conns[fd] = (struct conn){0};
}

static void on_client_event(int fd, uint32_t events)
{
    struct conn *c = &conns[fd];
    /* EPOLLERR and EPOLLHUP as input too: read says what went wrong, or that the client left. */
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ssize_t n = read(fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_conn(fd);
            return;
        }
        if (n > 0)
            c->in_len += (size_t)n;
    }
    if (!serve(fd))
        close_conn(fd);
}

/* --- the loop ------------------------------------------------------------------------------------ */

static void accept_clients(int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept4"); /* out of descriptors, say: the next event tries again */
            return;
        }
        if (fd >= MAX_FDS) {
            close(fd); /* refused: no room for its state */
            continue;
        }
        conns[fd] = (struct conn){.events = EPOLLIN};
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            perror("epoll_ctl");
            close_conn(fd);
        }
    }
}

/* A nonblocking listening socket on 127.0.0.1:port; prints the port it got. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        perror("setsockopt SO_REUSEADDR"); /* only a restart on the same port needs it */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("bind/listen");
        exit(1);
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    if (fflush(stdout) != 0) {
        perror("stdout");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    char *end;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "usage: server PORT (0: any free port)\n");
        return 2;
    }
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) {
        perror("epoll_create1");
        return 1;
    }
    int listen_fd = listen_on((int)port);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &event) != 0) {
        perror("epoll_ctl");
        return 1;
    }

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
            if (events[i].data.fd == listen_fd)
                accept_clients(listen_fd);
            else
                on_client_event(events[i].data.fd, events[i].events);
        }
    }
}
