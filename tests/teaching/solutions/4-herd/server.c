/* server.c - a prefork server without a thundering herd (exercise 4, a solution).
 *
 *     server PORT [WORKERS]        (WORKERS: 1 to 64, default 4)
 *
 * The parent forks WORKERS worker processes, each of which opens a listening socket of its own on
 * 127.0.0.1:PORT; it prints "listening on 127.0.0.1:PORT" once they all listen, and sleeps until
 * SIGTERM (or SIGINT), which stops every worker before the parent exits. A worker answers each
 * connection it accepts with one line naming itself, "worker PID", and closes it: the server
 * speaks first, so a worker never waits for a client and every connection costs the same.
 *
 * No herd: each worker opens a listening socket of its own after the fork, all bound to the same
 * port with SO_REUSEPORT (Linux 3.9). The kernel hashes each new connection's addresses and ports
 * to one of the sockets, so the connection wakes the one worker that owns it, and the hash spreads
 * connections evenly over the workers whoever is idle.
 *
 * The other good fix keeps the one shared socket and makes it blocking, with each worker waiting
 * in accept() instead of epoll_wait(): Linux queues the waiters in accept as exclusive, wakes
 * only the first (since about 2000), and puts a worker that comes back at the end of the queue,
 * so they take turns. EPOLLEXCLUSIVE on the shared socket also wakes one worker, but always the
 * first waiting instance on the socket's queue: an idle server gives nearly every connection to
 * the same one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define BACKLOG 1024

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Reads a whole number from first to last, or -1. */
static int parse_number(const char *text, int first, int last)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < first || value > last)
        return -1;
    return (int)value;
}

/* Each worker calls this after the fork, so each has a socket (and an accept queue) of its own. */
static int open_listener(int port)
{
    /* Nonblocking, as epoll wants, so that a wake-up with nothing to accept could never hang the
     * worker in accept (with a socket of its own it should not happen). */
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0)
        die("socket");
    int on = 1;
    /* So a restarted server can bind while the last run's connections sit in TIME_WAIT. */
    if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        die("setsockopt(SO_REUSEADDR)");
    /* Every socket in the group must set it before bind; the kernel then lets them share the
     * port and picks one per new connection by a hash of the connection. */
    if (setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
        die("setsockopt(SO_REUSEPORT)");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0)
        die("bind");
    if (listen(listener, BACKLOG) != 0)
        die("listen");
    return listener;
}

/* Tells the parent that this worker is ready to accept: one byte down the pipe. */
static void say_ready(int ready_pipe)
{
    if (write(ready_pipe, "r", 1) != 1)
        die("write(ready pipe)");
    if (close(ready_pipe) != 0)
        die("close(ready pipe)");
}

/* Answers one connection with the line that says who served it. */
static void serve(int connection)
{
    char line[32];
    int length = snprintf(line, sizeof line, "worker %ld\n", (long)getpid());
    /* A new socket's send buffer takes a short line whole, so one send is enough. MSG_NOSIGNAL: a
     * client that has left gives EPIPE here instead of a SIGPIPE that would kill the worker, and
     * that (or ECONNRESET) is the client's business, not an error of ours. */
    if (send(connection, line, (size_t)length, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
        perror("send");
    if (close(connection) != 0)
        perror("close");
}

static void run_worker(int port, int ready_pipe)
{
    int listener = open_listener(port);
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1");
    /* Only this worker's instance watches this socket, so a connection wakes only this worker. */
    struct epoll_event interest = {.events = EPOLLIN, .data.fd = listener};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &interest) != 0)
        die("epoll_ctl");
    say_ready(ready_pipe);
    for (;;) {
        struct epoll_event event;
        if (epoll_wait(epoll_fd, &event, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        int connection = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (connection < 0) {
            /* ECONNABORTED: the client left before we accepted. EAGAIN is rare now that no
             * other worker accepts from this socket. Neither stops the worker. */
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
                continue;
            die("accept4");
        }
        serve(connection);
    }
}

/* Stops the workers and reaps them, so none is left running or as a zombie. */
static void stop_workers(const pid_t *workers, int count)
{
    for (int i = 0; i < count; i++)
        if (kill(workers[i], SIGTERM) != 0 && errno != ESRCH)
            perror("kill");
    for (int i = 0; i < count; i++)
        while (waitpid(workers[i], NULL, 0) < 0)
            if (errno != EINTR) {
                perror("waitpid");
                break;
            }
}

int main(int argc, char **argv)
{
    int port = argc >= 2 ? parse_number(argv[1], 1, 65535) : -1;
    int count = argc >= 3 ? parse_number(argv[2], 1, MAX_WORKERS) : 4;
    if (argc > 3 || port < 0 || count < 0) {
        fprintf(stderr, "usage: %s PORT [WORKERS]   (PORT 1-65535, WORKERS 1-%d, default 4)\n", argv[0],
                MAX_WORKERS);
        return 2;
    }
    /* The parent takes its signals with sigwaitinfo instead of a handler. They are blocked before
     * the fork, so one sent while the workers start waits for the parent instead of being lost;
     * SIGCHLD too, so a worker that dies stops the server instead of going unnoticed. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0)
        die("sigprocmask");
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0)
        die("pipe2");

    pid_t workers[MAX_WORKERS];
    for (int i = 0; i < count; i++) {
        workers[i] = fork();
        if (workers[i] < 0) {
            perror("fork");
            stop_workers(workers, i);
            return 1;
        }
        if (workers[i] == 0) {
            /* A worker dies of SIGTERM, its default action: it holds nothing to clean up. */
            if (sigprocmask(SIG_UNBLOCK, &signals, NULL) != 0)
                die("sigprocmask");
            if (close(ready[0]) != 0)
                die("close(ready pipe)");
            run_worker(port, ready[1]);
        }
    }
    if (close(ready[1]) != 0)
        die("close(ready pipe)");

    /* One byte per worker, sent once its socket listens: announcing the port earlier would let a
     * client connect before any socket is bound (refused) or while only some are (the early
     * connections all go to those). End of file first means a worker died before it was ready. */
    int status = 0;
    for (int started = 0; started < count && status == 0;) {
        char byte;
        ssize_t got = read(ready[0], &byte, 1);
        if (got == 1)
            started++;
        else if (got < 0 && errno == EINTR)
            continue;
        else {
            fprintf(stderr, "a worker did not start\n");
            status = 1;
        }
    }
    if (status == 0) {
        printf("listening on 127.0.0.1:%d\n", port);
        if (fflush(stdout) != 0)
            die("fflush");
        int caught;
        while ((caught = sigwaitinfo(&signals, NULL)) < 0)
            if (errno != EINTR)
                die("sigwaitinfo");
        if (caught == SIGCHLD) {
            fprintf(stderr, "a worker died: stopping\n");
            status = 1;
        }
    }
    stop_workers(workers, count);
    return status;
}
