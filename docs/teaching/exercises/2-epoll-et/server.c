/* server.c - a line echo server on a pool of 4 threads, for exercise 2 (README.md in this folder).
 *
 *     server PORT        (PORT 0: the kernel picks a free port)
 *
 * Every line a client sends (ended by '\n', at most 4,096 bytes with it) comes back to it, byte
 * for byte, once the '\n' has arrived; a longer line ends the connection. When the client closes
 * (or shuts down its sending side), the server closes too, after the answers. The server prints
 * "listening on 127.0.0.1:PORT" with the port it got, and serves 127.0.0.1 only.
 *
 * How it works: the classic thread pool. The main thread accepts connections and puts them into
 * a queue (a ring under a mutex, with a condition variable to wake a worker). Four worker
 * threads, made at start, each take the oldest connection and serve it with blocking read and
 * write until the client closes it, then take the next one.
 *
 * It is correct, and its limits are those of every thread pool: four clients are served at a
 * time, and a fifth waits in the queue until one of the four leaves, however little it asks.
 * Exercise 2 is to rewrite it as one thread on edge-triggered epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define WORKERS 4
#define QUEUE_SLOTS 1024 /* accepted connections waiting for a worker */

/* Accepted connections not yet taken by a worker, oldest first. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    int fds[QUEUE_SLOTS];
    int head, len;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER};

/* Returns a socket listening on 127.0.0.1:port, or exits: the server cannot start without it. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
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
    /* A long backlog: a burst of connections waits in the kernel until the server accepts it. */
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

/* Writes all of len bytes; -1 if the client has gone. A blocking write may still take fewer
 * bytes than asked (a signal), hence the loop. */
static int write_all(int fd, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, bytes, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Serves one client until it closes: reads, answers every complete line, reads again. The line
 * not yet ended stays at the start of `line` for the next read. */
static void serve(int fd)
{
    char line[LINE_MAX_BYTES];
    size_t have = 0; /* bytes in line[] */
    for (;;) {
        ssize_t n = read(fd, line + have, sizeof line - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* 0: the client has finished; < 0: it has gone (ECONNRESET) */
        size_t searched = have;
        have += (size_t)n;
        size_t answered = 0; /* bytes up to the last '\n' */
        for (size_t i = searched; i < have; i++) {
            if (line[i] == '\n')
                answered = i + 1;
        }
        if (write_all(fd, line, answered) != 0)
            break;
        memmove(line, line + answered, have - answered);
        have -= answered;
        if (have == sizeof line)
            break; /* a line longer than LINE_MAX_BYTES: the protocol says we hang up */
    }
    if (close(fd) != 0)
        perror("close");
}

/* Takes the oldest queued connection, waiting until there is one. */
static int take_connection(void)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.len == 0)
        pthread_cond_wait(&queue.not_empty, &queue.lock);
    int fd = queue.fds[queue.head];
    queue.head = (queue.head + 1) % QUEUE_SLOTS;
    queue.len--;
    pthread_mutex_unlock(&queue.lock);
    return fd;
}

/* Queues a connection for the workers; false if the queue is full. */
static int put_connection(int fd)
{
    pthread_mutex_lock(&queue.lock);
    int room = queue.len < QUEUE_SLOTS;
    if (room) {
        queue.fds[(queue.head + queue.len) % QUEUE_SLOTS] = fd;
        queue.len++;
        pthread_cond_signal(&queue.not_empty);
    }
    pthread_mutex_unlock(&queue.lock);
    return room;
}

static void *run_worker(void *unused)
{
    (void)unused;
    for (;;)
        serve(take_connection());
    return NULL;
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
    for (int i = 0; i < WORKERS; i++) {
        pthread_t worker;
        int error = pthread_create(&worker, NULL, run_worker, NULL);
        if (error != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(error));
            return 1;
        }
    }
    announce(listen_fd);

    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            /* EINTR, ECONNABORTED (a client gone before we took it), EMFILE: not fatal. */
            perror("accept");
            continue;
        }
        /* Better a client refused at once than one waiting behind a thousand others. */
        if (!put_connection(fd) && close(fd) != 0)
            perror("close");
    }
}
