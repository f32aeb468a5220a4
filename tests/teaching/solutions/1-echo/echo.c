/* echo.c - exercise 1, solved: the line echo server on select(2) with its six bugs fixed.
 *
 *     echo PORT
 *
 * The fixes, each marked FIX in the code:
 * 1. partial writes: a nonblocking write takes what the socket has room for; the rest waits in the
 *    client's output buffer and select is asked for writability until it is gone (and input is not
 *    read while too much output waits, so a client that never reads cannot make us buffer forever);
 * 2. SIGPIPE: ignored, so writing to a client that has gone is an EPIPE error, not our death;
 * 3. descriptor leak: a client that is done is closed, not only forgotten by select;
 * 4. zombies: SIGCHLD interrupts select, and every finished child is reaped with waitpid;
 * 5. blocking in the loop: a line begun waits in its buffer for the next read, instead of the
 *    loop spinning on that one client until the line ends;
 * 6. FD_SETSIZE: a connection whose descriptor select cannot watch is closed at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define OUTPUT_LIMIT (1 << 20) /* past this much unsent output, stop reading that client */

struct client {
    char partial[LINE_MAX_BYTES]; /* a line not yet ended */
    size_t partial_len;
    char *out;                    /* output the socket has not taken yet */
    size_t out_len, out_cap;
};

static struct client clients[FD_SETSIZE];

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

static void on_sigchld(int signal_number)
{
    (void)signal_number; /* only to interrupt select: the loop reaps */
}

static void reap_children(void) /* FIX 4 */
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void run_date(int fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        execl("/bin/date", "date", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        perror("fork");
}

/* Sends what the socket takes now; false if the client is gone. FIX 1 */
static int flush_output(int fd)
{
    struct client *c = &clients[fd];
    while (c->out_len > 0) {
        ssize_t n = write(fd, c->out, c->out_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 1;
        if (n < 0)
            return 0; /* EPIPE, ECONNRESET: FIX 2 made them errors */
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return 1;
}

static int queue_output(int fd, const char *bytes, size_t len)
{
    struct client *c = &clients[fd];
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 8192;
        while (cap < c->out_len + len)
            cap *= 2;
        char *bigger = realloc(c->out, cap);
        if (bigger == NULL)
            return 0;
        c->out = bigger;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, bytes, len);
    c->out_len += len;
    return 1;
}

static int answer_line(int fd, const char *line, size_t len)
{
    if (len == 5 && memcmp(line, "date\n", 5) == 0) {
        if (!flush_output(fd))
            return 0;
        run_date(fd);
        return 1;
    }
    return queue_output(fd, line, len);
}

/* Reads what the client sent and answers every complete line; a line begun waits for the next
 * read (FIX 5). False if the client is gone. */
static int serve_input(int fd)
{
    struct client *c = &clients[fd];
    char buffer[65536];
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    if (n <= 0)
        return 0;
    for (ssize_t i = 0; i < n; i++) {
        if (c->partial_len < LINE_MAX_BYTES)
            c->partial[c->partial_len++] = buffer[i];
        if (buffer[i] == '\n') {
            if (!answer_line(fd, c->partial, c->partial_len))
                return 0;
            c->partial_len = 0;
        }
    }
    return flush_output(fd);
}

static void drop_client(int fd, fd_set *watched)
{
    FD_CLR(fd, watched);
    free(clients[fd].out);
    clients[fd] = (struct client){0};
    close(fd); /* FIX 3 */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: echo PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* FIX 2 */
    struct sigaction child = {.sa_handler = on_sigchld}; /* no SA_RESTART: select returns EINTR */
    sigemptyset(&child.sa_mask);
    sigaction(SIGCHLD, &child, NULL);
    int listen_fd = listen_on(atoi(argv[1]));
    printf("listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);

    fd_set watched;
    FD_ZERO(&watched);
    int max_fd = listen_fd;
    for (;;) {
        reap_children();
        fd_set readable, writable;
        FD_ZERO(&readable);
        FD_ZERO(&writable);
        FD_SET(listen_fd, &readable);
        for (int fd = 0; fd <= max_fd; fd++) {
            if (fd == listen_fd || !FD_ISSET(fd, &watched))
                continue;
            if (clients[fd].out_len < OUTPUT_LIMIT)
                FD_SET(fd, &readable);
            if (clients[fd].out_len > 0)
                FD_SET(fd, &writable);
        }
        if (select(max_fd + 1, &readable, &writable, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror("select");
            return 1;
        }
        if (FD_ISSET(listen_fd, &readable)) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
            if (fd >= FD_SETSIZE) {
                close(fd); /* FIX 6: select cannot watch it */
            } else if (fd >= 0) {
                FD_SET(fd, &watched);
                clients[fd] = (struct client){0};
                if (fd > max_fd)
                    max_fd = fd;
            }
        }
        for (int fd = 0; fd <= max_fd; fd++) {
            if (fd == listen_fd || !FD_ISSET(fd, &watched))
                continue;
            int alive = 1;
            if (FD_ISSET(fd, &writable))
                alive = flush_output(fd);
            if (alive && FD_ISSET(fd, &readable))
                alive = serve_input(fd);
            if (!alive)
                drop_client(fd, &watched);
        }
    }
}
