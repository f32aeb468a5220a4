/* floor.c - the floor: a benchmark-only reference responder. Not a server: it speaks no protocol.
 *
 * How it works: one thread, nonblocking sockets, level-triggered epoll. Each read is scanned for
 * "\r\n\r\n", the end of a request head; every one found counts as a request, and the read is
 * answered with that many copies of one canned "Hello, World!" response in one send, cut from a
 * buffer of copies made at start-up. How many bytes of "\r\n\r\n" ended the previous read is kept
 * per connection, so a head split across reads counts once. A send that would block keeps the
 * count of bytes still owed, reads nothing more and waits for EPOLLOUT.
 *
 * Limits: it parses nothing, so it answers GET-style requests without bodies only (a body's bytes
 * would be scanned as if they were heads); method, target and headers are ignored; no Date, no
 * timeouts, no Connection: close. It marks what the kernel and loopback cost (docs/floor.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef FLOOR_VERSION
#define FLOOR_VERSION "unknown"
#endif

#define RESPONSE "HTTP/1.1 200 OK\r\nServer: c10k-floor\r\nContent-Type: text/plain\r\n" \
                 "Content-Length: 13\r\n\r\nHello, World!"
#define RESPONSE_LEN (sizeof RESPONSE - 1)
#define COPIES 512             /* responses one send carries at most (~48 KiB) */
#define MAX_CLIENTS (1 << 20)  /* descriptors the table covers; the soft limit is held below it */
#define MAX_EVENTS 256
#define MAX_ACCEPTS 64         /* per wake-up, so a flood of connects cannot starve the clients */
#define WAIT_MS 250            /* a stop signal is never more than this late */

struct client {
    uint64_t owed;     /* response bytes not sent yet; the total owed always ends on a response */
    uint32_t events;   /* what epoll watches: EPOLLIN, or EPOLLOUT while bytes are owed */
    uint8_t matched;   /* how many bytes of "\r\n\r\n" the input so far ends with */
    bool open;
};

static struct client *clients; /* by descriptor: the kernel hands out the lowest free number */
static size_t clients_cap;
static int epoll_fd, listen_fd, reserve_fd = -1;
static char copies[COPIES * RESPONSE_LEN];
static char input[65536];
static volatile sig_atomic_t stopping;
static unsigned long long accepted, requests, write_waits, resets, errors;

static void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void log_error(const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args); /* first, so %m still sees the caller's errno */
    va_end(args);
    fprintf(stderr, "c10k-floor: %s\n", line);
}

/* For start-up failures only: a failing connection is closed and counted, never fatal. */
#define die(...) do { log_error(__VA_ARGS__); exit(1); } while (0)

static _Noreturn void usage(FILE *out, int status)
{
    fprintf(out, "usage: floor [options]   (a benchmark's reference responder; see docs/floor.md)\n"
                 "  --host ADDR      address to listen on (default 127.0.0.1)\n"
                 "  --port N         port, 0 for an ephemeral one (default 8080)\n"
                 "  --backlog N      listen backlog (default 1024)\n"
                 "  --help           print this help\n"
                 "  --version        print the version\n");
    exit(status);
}

static _Noreturn void usage_error(const char *problem, const char *value)
{
    fprintf(stderr, "c10k-floor: %s: %s\n", problem, value);
    usage(stderr, 2);
}

static int parse_int(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        usage_error("bad value", text);
    return (int)value;
}

static void on_signal(int signal_number)
{
    (void)signal_number;
    stopping = 1;
}

static void drop(int fd)
{
    clients[fd].open = false;
    if (close(fd) != 0) /* closing also takes it out of the epoll set */
        log_error("close(%d): %m", fd);
}

/* A failed call on one connection: a reset is the client's choice; anything else is logged. */
static void fail(int fd, const char *call)
{
    if (errno == ECONNRESET || errno == EPIPE) {
        resets++;
    } else {
        errors++;
        log_error("%s(%d): %m", call, fd);
    }
    drop(fd);
}

static void watch(int fd, uint32_t events)
{
    if (clients[fd].events == events)
        return;
    struct epoll_event event = {.events = events, .data.fd = fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) != 0)
        fail(fd, "epoll_ctl(MOD)");
    else
        clients[fd].events = events;
}

/* Counts the heads that end in this input, carrying the partial match of "\r\n\r\n" across reads.
 * On a mismatch the match restarts at 1 if the byte is '\r', else at 0 (no longer prefix of the
 * pattern is a suffix of what was matched), so no byte is looked at twice. */
static uint64_t count_heads(struct client *client, const char *p, size_t len)
{
    static const char end_of_head[4] = "\r\n\r\n";
    const char *stop = p + len;
    unsigned matched = client->matched;
    uint64_t heads = 0;
    while (p < stop) {
        if (matched == 0 && (p = memchr(p, '\r', (size_t)(stop - p))) == NULL)
            break;
        char c = *p++;
        if (c == end_of_head[matched]) {
            if (++matched == 4) {
                heads++;
                matched = 0;
            }
        } else {
            matched = c == '\r';
        }
    }
    client->matched = (uint8_t)matched;
    return heads;
}

/* Sends what is owed, a buffer of copies at a time, starting where the last send stopped within
 * a response; on EAGAIN waits for EPOLLOUT. */
static void flush(int fd)
{
    struct client *client = &clients[fd];
    while (client->owed > 0) {
        size_t phase = (RESPONSE_LEN - client->owed % RESPONSE_LEN) % RESPONSE_LEN;
        size_t len = sizeof copies - phase;
        if (len > client->owed)
            len = (size_t)client->owed;
        ssize_t sent = send(fd, copies + phase, len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fail(fd, "send");
            } else {
                write_waits++;
                watch(fd, EPOLLOUT);
            }
            return;
        }
        client->owed -= (uint64_t)sent;
    }
    watch(fd, EPOLLIN);
}

static void on_readable(int fd)
{
    ssize_t got = read(fd, input, sizeof input);
    if (got == 0) {
        drop(fd);
        return;
    }
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(fd, "read");
        return;
    }
    uint64_t heads = count_heads(&clients[fd], input, (size_t)got);
    requests += heads;
    clients[fd].owed += heads * RESPONSE_LEN;
    flush(fd);
}

/* Out of descriptors: give up the reserve, accept the pending connection with it and close it, so
 * the listening socket does not stay readable (and epoll_wait spinning) until one comes free. */
static void shed(void)
{
    if (reserve_fd < 0 || close(reserve_fd) != 0)
        return;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0 && close(fd) != 0)
        log_error("close(%d): %m", fd);
    if ((reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        log_error("open(/dev/null): %m");
}

static void accept_clients(void)
{
    for (int i = 0; i < MAX_ACCEPTS; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                shed();
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_error("accept4: %m");
            return;
        }
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if ((size_t)fd >= clients_cap) /* only if the limit was raised from outside (prlimit) */
            errno = EMFILE;
        if ((size_t)fd >= clients_cap || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            log_error("cannot watch descriptor %d: %m", fd);
            errors++;
            if (close(fd) != 0)
                log_error("close(%d): %m", fd);
            continue;
        }
        clients[fd] = (struct client){.events = EPOLLIN, .open = true};
        accepted++;
    }
}

static int listen_on(const char *host, int port, int backlog)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *addresses;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &addresses);
    if (rc != 0)
        die("cannot resolve %s: %s", host, gai_strerror(rc));
    int fd = socket(addresses->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, addresses->ai_addr, addresses->ai_addrlen) != 0 || listen(fd, backlog) != 0)
        die("cannot listen on %s:%d: %m", host, port);
    freeaddrinfo(addresses);

    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    char name[NI_MAXHOST], bound_port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0)
        die("getsockname: %m");
    if ((rc = getnameinfo((struct sockaddr *)&bound, len, name, sizeof name, bound_port, sizeof bound_port,
                          NI_NUMERICHOST | NI_NUMERICSERV)) != 0)
        die("getnameinfo: %s", gai_strerror(rc));
    const char *open_bracket = bound.ss_family == AF_INET6 ? "[" : "", *close_bracket = *open_bracket ? "]" : "";
    if (printf("listening on %s%s%s:%s\n", open_bracket, name, close_bracket, bound_port) < 0 || fflush(stdout) != 0)
        die("cannot write the ready line: %m");
    return fd;
}

/* 10 000 idle connections need more descriptors than the usual soft limit of 1024. */
static void raise_descriptor_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit(RLIMIT_NOFILE): %m");
    rlim_t wanted = limit.rlim_max < MAX_CLIENTS ? limit.rlim_max : MAX_CLIENTS;
    if (limit.rlim_cur != wanted) {
        limit.rlim_cur = wanted;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            die("setrlimit(RLIMIT_NOFILE, %llu): %m", (unsigned long long)wanted);
    }
    clients_cap = (size_t)wanted;
    if ((clients = calloc(clients_cap, sizeof *clients)) == NULL)
        die("out of memory for %zu clients", clients_cap);
}

int main(int argc, char **argv)
{
    enum { OPT_HOST = 256, OPT_PORT, OPT_BACKLOG, OPT_HELP, OPT_VERSION };
    static const struct option options[] = {
        {"host", required_argument, NULL, OPT_HOST}, {"port", required_argument, NULL, OPT_PORT},
        {"backlog", required_argument, NULL, OPT_BACKLOG}, {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1";
    int port = 8080, backlog = 1024, option;
    opterr = 0; /* our own message, with the usage */
    while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (option) {
        case OPT_HOST: host = optarg; break;
        case OPT_PORT: port = parse_int(optarg, 0, 65535); break;
        case OPT_BACKLOG: backlog = parse_int(optarg, 1, 1 << 20); break;
        case OPT_HELP: usage(stdout, 0);
        case OPT_VERSION: printf("c10k-floor %s\n", FLOOR_VERSION); return 0;
        case ':': usage_error("missing value for", argv[optind - 1]);
        default: usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument", argv[optind]);

    for (size_t i = 0; i < COPIES; i++)
        memcpy(copies + i * RESPONSE_LEN, RESPONSE, RESPONSE_LEN);
    struct sigaction action = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns EINTR */
    if (sigemptyset(&action.sa_mask) != 0 || sigaction(SIGTERM, &action, NULL) != 0 ||
        sigaction(SIGINT, &action, NULL) != 0)
        die("sigaction: %m");
    raise_descriptor_limit();
    if ((reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        die("open(/dev/null): %m");
    if ((epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1: %m");
    listen_fd = listen_on(host, port, backlog);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &event) != 0)
        die("epoll_ctl(ADD, listening socket): %m");

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, WAIT_MS);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd)
                accept_clients();
            else if (!clients[fd].open)
                continue; /* closed earlier in this batch */
            else if (clients[fd].owed > 0)
                flush(fd); /* EPOLLOUT; on EPOLLERR or EPOLLHUP send says what happened */
            else
                on_readable(fd); /* EPOLLIN; on EPOLLERR or EPOLLHUP read says what happened */
        }
    }

    for (size_t fd = 0; fd < clients_cap; fd++)
        if (clients[fd].open)
            drop((int)fd);
    free(clients);
    if (close(listen_fd) != 0 || close(epoll_fd) != 0 || close(reserve_fd) != 0)
        log_error("close: %m");
    fprintf(stderr, "stats: accepted=%llu requests=%llu write_waits=%llu resets=%llu errors=%llu\n",
            accepted, requests, write_waits, resets, errors);
    return 0;
}
