/* test_server.c - servers that misbehave on purpose, to test bin/loadgen's accuracy.
 *
 * One single-threaded epoll loop with a mode per misbehaviour:
 *   delay      answers every request exactly --delay-ms D after it arrived (0: at once); with
 *              --slow-path P --slow-ms S, a request for target P is answered S ms after it
 *              arrived (and, as responses keep their order, a request behind it on the same
 *              connection no earlier than that)
 *   stall      answers at once, but blocks the whole loop --stall-ms once, at request --stall-after
 *   reset      resets the connection (SO_LINGER 0) when a request arrives, without answering
 *   status     answers every request with --status (default 503), well formed, keep-alive
 *   malformed  answers every request with a response whose Content-Length is not a number
 *   silent     accepts and reads, never answers
 * A request with "Connection: close" is answered with it and the connection closed after the
 * response. Prints "listening on 127.0.0.1:PORT" when ready; on SIGTERM prints its counts on
 * stderr as "test_server: accepted=A received=R answered=N resets=S slow=W" (W: requests received
 * for --slow-path) and exits 0. A response counts as answered once all its bytes were written to
 * the socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE 16384
#define MAX_EVENTS 256

enum mode { MODE_DELAY, MODE_STALL, MODE_RESET, MODE_STATUS, MODE_MALFORMED, MODE_SILENT };

struct client {
    int fd;
    uint32_t generation;
    char in[IN_SIZE];
    size_t in_len;
    char *out;
    size_t out_len;
    size_t out_cap;
    size_t out_sent;
    uint64_t unflushed;   /* responses in out not yet completely written */
    bool close_when_flushed;
    bool watching_out;
    int64_t last_due_ns;  /* of its latest delayed response: a later one is not due before it */
    uint64_t queued;      /* its delayed responses not yet answered: a new one queues behind them */
};

struct pending {
    int fd;
    uint32_t generation;
    int64_t due_ns;
    uint64_t sequence;    /* arrival order, which breaks ties of due_ns */
    bool close;
};

static enum mode mode = MODE_DELAY;
static int64_t delay_ns;
static uint64_t stall_after;
static int64_t stall_ns = 1000000000;
static int status_code = 503;
static const char *slow_path;
static int64_t slow_ns;
static volatile sig_atomic_t stopping;
static int epoll_fd;
static struct client **clients;
static size_t clients_cap;
static uint32_t next_generation;
static uint64_t accepted, received, answered, resets, slow_received;

/* The delayed answers, a binary min-heap by (due, arrival): with two delays arrival order is not
 * due order, and per connection the due times never decrease (see last_due_ns), so popping in
 * heap order answers each connection's requests in their order. */
static struct pending *queue;
static size_t queue_len, queue_cap;
static uint64_t next_sequence;

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "test_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int signal_number)
{
    (void)signal_number;
    stopping = 1;
}

static bool earlier(const struct pending *a, const struct pending *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->sequence < b->sequence);
}

static void queue_push(struct pending item)
{
    if (queue_len == queue_cap) {
        size_t cap = queue_cap ? queue_cap * 2 : 1024;
        struct pending *grown = realloc(queue, cap * sizeof *grown);
        if (grown == NULL)
            die("realloc");
        queue = grown;
        queue_cap = cap;
    }
    item.sequence = next_sequence++;
    size_t i = queue_len++;
    while (i > 0 && earlier(&item, &queue[(i - 1) / 2])) {
        queue[i] = queue[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    queue[i] = item;
}

static struct pending queue_pop(void)
{
    struct pending top = queue[0], last = queue[--queue_len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= queue_len)
            break;
        if (child + 1 < queue_len && earlier(&queue[child + 1], &queue[child]))
            child++;
        if (!earlier(&queue[child], &last))
            break;
        queue[i] = queue[child];
        i = child;
    }
    if (queue_len > 0)
        queue[i] = last;
    return top;
}

static void close_client(struct client *client, bool reset)
{
    if (reset) {
        struct linger linger = {.l_onoff = 1, .l_linger = 0};
        if (setsockopt(client->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) != 0)
            die("setsockopt(SO_LINGER)");
        resets++;
    }
    clients[client->fd] = NULL;
    close(client->fd);
    free(client->out);
    free(client);
}

static void append(struct client *client, const char *bytes, size_t len)
{
    if (client->out_len + len > client->out_cap) {
        size_t cap = client->out_cap ? client->out_cap : 4096;
        while (cap < client->out_len + len)
            cap *= 2;
        char *grown = realloc(client->out, cap);
        if (grown == NULL)
            die("realloc");
        client->out = grown;
        client->out_cap = cap;
    }
    memcpy(client->out + client->out_len, bytes, len);
    client->out_len += len;
}

static void append_response(struct client *client, bool close)
{
    char response[512];
    int len;
    const char *connection = close ? "Connection: close\r\n" : "";
    if (mode == MODE_STATUS)
        len = snprintf(response, sizeof response,
                       "HTTP/1.1 %d Test Status\r\nServer: loadgen-test\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 16\r\n%s\r\nstatus for test\n", status_code, connection);
    else if (mode == MODE_MALFORMED)
        len = snprintf(response, sizeof response,
                       "HTTP/1.1 200 OK\r\nServer: loadgen-test\r\nContent-Length: 13x\r\n%s\r\nHello, World!",
                       connection);
    else
        len = snprintf(response, sizeof response,
                       "HTTP/1.1 200 OK\r\nServer: loadgen-test\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 13\r\n%s\r\nHello, World!", connection);
    append(client, response, (size_t)len);
    client->unflushed++;
    if (close)
        client->close_when_flushed = true;
}

/* Writes what is pending; closes the client when it asked for that. Returns false if closed. */
static bool flush(struct client *client)
{
    while (client->out_sent < client->out_len) {
        ssize_t sent = send(client->fd, client->out + client->out_sent, client->out_len - client->out_sent,
                            MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            close_client(client, false);
            return false;
        }
        client->out_sent += (size_t)sent;
    }
    bool pending = client->out_sent < client->out_len;
    if (!pending) {
        answered += client->unflushed;
        client->unflushed = 0;
        client->out_len = client->out_sent = 0;
        if (client->close_when_flushed) {
            close_client(client, false);
            return false;
        }
    }
    if (pending != client->watching_out) {
        struct epoll_event event = {.events = EPOLLIN | (pending ? EPOLLOUT : 0), .data.fd = client->fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, client->fd, &event) != 0)
            die("epoll_ctl(MOD)");
        client->watching_out = pending;
    }
    return true;
}

/* Content-Length of a request head, 0 if none. */
static size_t request_body_length(const char *head, size_t len)
{
    for (size_t i = 0; i + 17 < len; i++) {
        if (head[i] == '\n' && strncasecmp(head + i + 1, "content-length:", 15) == 0)
            return (size_t)strtoull(head + i + 16, NULL, 10);
    }
    return 0;
}

/* Whether the request line's target is --slow-path. */
static bool is_slow(const char *head, size_t len)
{
    if (slow_path == NULL)
        return false;
    const char *target = memchr(head, ' ', len);
    if (target == NULL)
        return false;
    target++;
    size_t slow_len = strlen(slow_path);
    return (size_t)(head + len - target) > slow_len && memcmp(target, slow_path, slow_len) == 0 &&
           target[slow_len] == ' ';
}

static bool asks_close(const char *head, size_t len)
{
    for (size_t i = 0; i + 19 < len; i++)
        if (head[i] == '\n' && strncasecmp(head + i + 1, "connection: close", 17) == 0)
            return true;
    return false;
}

/* Handles every complete request in the input. Returns false if the client was closed. */
static bool handle_requests(struct client *client)
{
    size_t pos = 0;
    for (;;) {
        char *start = client->in + pos;
        size_t available = client->in_len - pos;
        char *end = memmem(start, available, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t head_len = (size_t)(end - start) + 4;
        size_t total = head_len + request_body_length(start, head_len);
        if (total > available)
            break;
        bool close = asks_close(start, head_len);
        pos += total;
        received++;
        switch (mode) {
        case MODE_RESET:
            close_client(client, true);
            return false;
        case MODE_SILENT:
            break;
        case MODE_STALL:
            if (received == stall_after) {
                struct timespec pause = {.tv_sec = stall_ns / 1000000000, .tv_nsec = stall_ns % 1000000000};
                while (nanosleep(&pause, &pause) != 0 && errno == EINTR && !stopping) {
                }
            }
            append_response(client, close);
            break;
        case MODE_DELAY: {
            bool slow = is_slow(start, head_len);
            slow_received += slow;
            int64_t delay = slow ? slow_ns : delay_ns;
            if (delay > 0 || client->queued > 0) {
                int64_t due = now_ns() + delay;
                if (due < client->last_due_ns)
                    due = client->last_due_ns;
                client->last_due_ns = due;
                client->queued++;
                queue_push((struct pending){.fd = client->fd, .generation = client->generation, .due_ns = due,
                                            .close = close});
                break;
            }
            append_response(client, close);
            break;
        }
        case MODE_STATUS:
        case MODE_MALFORMED:
            append_response(client, close);
            break;
        }
        if (close)
            break; /* nothing after a close request is answered */
    }
    memmove(client->in, client->in + pos, client->in_len - pos);
    client->in_len -= pos;
    if (client->in_len == IN_SIZE) { /* a request larger than the buffer: not for this server */
        close_client(client, false);
        return false;
    }
    return flush(client);
}

static void on_readable(struct client *client)
{
    ssize_t got = read(client->fd, client->in + client->in_len, IN_SIZE - client->in_len);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        close_client(client, false);
        return;
    }
    client->in_len += (size_t)got;
    handle_requests(client);
}

static void accept_clients(int listen_fd)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "test_server: accept4: %s\n", strerror(errno));
            return;
        }
        if ((size_t)fd >= clients_cap) {
            close(fd);
            continue;
        }
        struct client *client = calloc(1, sizeof *client);
        if (client == NULL)
            die("calloc");
        client->fd = fd;
        client->generation = ++next_generation;
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
            die("epoll_ctl(ADD)");
        clients[fd] = client;
        accepted++;
    }
}

static void answer_due(int64_t now)
{
    while (queue_len > 0 && queue[0].due_ns <= now) {
        struct pending item = queue_pop();
        struct client *client = (size_t)item.fd < clients_cap ? clients[item.fd] : NULL;
        if (client == NULL || client->generation != item.generation)
            continue; /* the client went away meanwhile */
        client->queued--;
        append_response(client, item.close);
        flush(client);
    }
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: test_server [--port N] [--mode delay|stall|reset|status|malformed|silent]\n"
                    "                   [--delay-ms D] [--slow-path P --slow-ms S] [--stall-after N]\n"
                    "                   [--stall-ms MS] [--status CODE]\n");
    exit(2);
}

static long number(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        usage();
    return value;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"port", required_argument, NULL, 'p'},      {"mode", required_argument, NULL, 'm'},
        {"delay-ms", required_argument, NULL, 'd'},  {"stall-after", required_argument, NULL, 'a'},
        {"stall-ms", required_argument, NULL, 's'},  {"status", required_argument, NULL, 'c'},
        {"slow-path", required_argument, NULL, 'P'}, {"slow-ms", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    int port = 0;
    int option;
    stall_after = 1000;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'p': port = (int)number(optarg, 0, 65535); break;
        case 'd': delay_ns = number(optarg, 0, 60000) * 1000000L; break;
        case 'a': stall_after = (uint64_t)number(optarg, 1, 1000000000); break;
        case 's': stall_ns = number(optarg, 0, 60000) * 1000000L; break;
        case 'c': status_code = (int)number(optarg, 100, 599); break;
        case 'P': slow_path = optarg; break;
        case 'S': slow_ns = number(optarg, 0, 60000) * 1000000L; break;
        case 'm': {
            static const char *const names[] = {"delay", "stall", "reset", "status", "malformed", "silent"};
            int found = -1;
            for (int i = 0; i < 6; i++)
                if (strcmp(optarg, names[i]) == 0)
                    found = i;
            if (found < 0)
                usage();
            mode = (enum mode)found;
            break;
        }
        default: usage();
        }
    }
    if (optind != argc || (slow_path != NULL && (mode != MODE_DELAY || slow_path[0] != '/')))
        usage();

    /* Answers due "exactly" D ms later must not be postponed by the default 50 µs timer slack. */
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0)
        die("prctl(PR_SET_TIMERSLACK)");
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0)
        die("sigaction");
    action.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &action, NULL) != 0)
        die("sigaction(SIGPIPE)");

    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit");
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("setrlimit");
    clients_cap = limit.rlim_cur < 1u << 20 ? limit.rlim_cur : 1u << 20;
    clients = calloc(clients_cap, sizeof *clients);
    if (clients == NULL)
        die("calloc");

    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        die("setsockopt(SO_REUSEADDR)");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&address, sizeof address) != 0)
        die("bind");
    if (listen(listen_fd, 4096) != 0)
        die("listen");
    socklen_t address_len = sizeof address;
    if (getsockname(listen_fd, (struct sockaddr *)&address, &address_len) != 0)
        die("getsockname");
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1");
    struct epoll_event listen_event = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0)
        die("epoll_ctl(ADD listen)");
    printf("listening on 127.0.0.1:%d\n", ntohs(address.sin_port));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int64_t now = now_ns();
        int64_t wait_ns = 250000000;
        if (queue_len > 0) {
            int64_t until_due = queue[0].due_ns - now;
            wait_ns = until_due < 0 ? 0 : until_due < wait_ns ? until_due : wait_ns;
        }
        struct timespec timeout = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        int ready = epoll_pwait2(epoll_fd, events, MAX_EVENTS, &timeout, NULL);
        if (ready < 0 && errno != EINTR)
            die("epoll_pwait2");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                accept_clients(listen_fd);
                continue;
            }
            struct client *client = clients[fd];
            if (client == NULL)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(client);
                client = clients[fd];
            }
            if (client && (events[i].events & EPOLLOUT))
                flush(client);
        }
        answer_due(now_ns());
    }

    for (size_t fd = 0; fd < clients_cap; fd++)
        if (clients[fd])
            close_client(clients[fd], false);
    free(clients);
    free(queue);
    close(epoll_fd);
    close(listen_fd);
    fprintf(stderr, "test_server: accepted=%llu received=%llu answered=%llu resets=%llu slow=%llu\n",
            (unsigned long long)accepted, (unsigned long long)received, (unsigned long long)answered,
            (unsigned long long)resets, (unsigned long long)slow_received);
    return 0;
}
