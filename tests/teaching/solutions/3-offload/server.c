/* server.c - exercise 3, solved: the line server's epoll loop hands its slow lookups to worker
 * threads and hears of their results through an eventfd.
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
 * One thread, the loop, does all the socket work: epoll (level-triggered) says which sockets are
 * ready, and the loop reads, answers `fast` lines itself and writes. A `slow` line becomes a job
 * on a queue under a mutex; WORKERS threads take jobs from it and call slow_lookup, 50 ms each,
 * and the loop goes on serving everyone else meanwhile. A finished job goes on a second locked
 * queue, and the worker adds 1 to an eventfd that is in the loop's epoll set: the loop wakes in
 * the same epoll_wait that watches the sockets, reads the eventfd and takes every finished job.
 *
 *   clients <--> loop (epoll: accept, read, answer fast, write) <-- eventfd, done queue --+
 *                  | todo queue (slow ID)                                                  |
 *                  v                                                                       |
 *               workers 0 .. WORKERS-1: slow_lookup(ID) -----------------------------------+
 *
 * The trap: a job names its connection by descriptor, and once that client closes, the kernel
 * gives the same number to the next connection. So a job also carries the connection's
 * generation, a number no other connection gets, and an answer whose generation is not the one
 * now at that descriptor is dropped: its client has gone.
 *
 * Limits: WORKERS lookups run at once; the rest wait in the queue. A connection stops being read
 * while MAX_JOBS_PER_CONN of its lookups are out, so one client cannot queue unbounded work. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 4096         /* a connection's state lives at its descriptor's number; above: refused */
#define INPUT_BYTES 4096     /* a line longer than this is a broken client */
#define OUTPUT_LIMIT 65536   /* past this much unsent output, stop reading that client */
#define ANSWER_BYTES 64      /* the longest answer line */
#define MAX_EVENTS 64
#define WORKERS 8            /* lookups at once: they only wait, so threads cost no CPU */
#define MAX_JOBS_PER_CONN 64 /* a client's lookups in flight before we stop reading it */

struct conn {
    char in[INPUT_BYTES];    /* input not yet answered: complete lines, then a line begun */
    size_t in_len;
    char *out;               /* answers the socket has not taken yet */
    size_t out_len, out_cap;
    uint32_t events;         /* what epoll watches it for now */
    uint64_t generation;     /* which connection holds this descriptor; 0: none */
    int jobs_in_flight;      /* its lookups given to the workers and not back yet */
};

static struct conn conns[MAX_FDS];
static int epoll_fd;
static uint64_t connections_accepted; /* the last generation given out */

/* A slow request on its way to a worker and back. */
struct job {
    struct job *next;
    int fd;                  /* the connection that asked: its descriptor ... */
    uint64_t generation;     /* ... and which of the connections that had that descriptor */
    uint64_t id, value;
};

/* A list of jobs under a mutex. The mutex calls are not checked: on a default mutex that a
 * thread locks only once they cannot fail. */
struct job_queue {
    pthread_mutex_t lock;
    struct job *head, *tail;
};

static struct job_queue todo = {.lock = PTHREAD_MUTEX_INITIALIZER}; /* loop -> workers */
static pthread_cond_t todo_not_empty = PTHREAD_COND_INITIALIZER;
static struct job_queue done = {.lock = PTHREAD_MUTEX_INITIALIZER}; /* workers -> loop */
static int done_fd; /* eventfd: its count is the jobs finished since the loop last read it */

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

/* --- the workers ---------------------------------------------------------------------------------- */

/* Adds job at the end of the queue; the caller holds its lock. */
static void push(struct job_queue *queue, struct job *job)
{
    job->next = NULL;
    if (queue->tail != NULL)
        queue->tail->next = job;
    else
        queue->head = job;
    queue->tail = job;
}

static void *run_worker(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&todo.lock);
        while (todo.head == NULL)
            pthread_cond_wait(&todo_not_empty, &todo.lock);
        struct job *job = todo.head;
        todo.head = job->next;
        if (todo.head == NULL)
            todo.tail = NULL;
        pthread_mutex_unlock(&todo.lock);

        job->value = slow_lookup(job->id); /* 50 ms of this thread's time, none of the loop's */

        pthread_mutex_lock(&done.lock);
        push(&done, job);
        pthread_mutex_unlock(&done.lock);
        /* Wakes the loop's epoll_wait. The eventfd adds up what is written to it, so jobs that
         * finish together cost the loop one wake-up and one read. */
        uint64_t one = 1;
        if (write(done_fd, &one, sizeof one) != sizeof one)
            perror("write eventfd");
    }
    return NULL;
}

static void start_workers(void)
{
    done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (done_fd < 0) {
        perror("eventfd");
        exit(1);
    }
    struct epoll_event event = {.events = EPOLLIN, .data.fd = done_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, done_fd, &event) != 0) {
        perror("epoll_ctl");
        exit(1);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_t thread;
        int error = pthread_create(&thread, NULL, run_worker, NULL);
        if (error != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(error));
            exit(1);
        }
    }
}

/* Gives a slow request to the workers; false if there is no memory for it. */
static bool offload(int fd, uint64_t id)
{
    struct job *job = malloc(sizeof *job);
    if (job == NULL)
        return false;
    *job = (struct job){.fd = fd, .generation = conns[fd].generation, .id = id};
    conns[fd].jobs_in_flight++;
    pthread_mutex_lock(&todo.lock);
    push(&todo, job);
    pthread_cond_signal(&todo_not_empty);
    pthread_mutex_unlock(&todo.lock);
    return true;
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
 * client that sends and never reads cannot make us buffer without end, nor while many of its
 * lookups are out, so that it cannot fill the workers' queue without end. */
static bool takes_input(const struct conn *c)
{
    return c->out_len < OUTPUT_LIMIT && c->jobs_in_flight < MAX_JOBS_PER_CONN;
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

/* Answers one line (without its '\n') or gives it to the workers; false if there is no memory. */
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
        return offload(fd, id); /* answered when the job comes back (deliver_results) */
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

/* The loop's side of the eventfd: every finished job's answer goes to its client, if the client
 * is still there. */
static void deliver_results(void)
{
    /* Reset the count first, then take the jobs: a job finished after the take writes the eventfd
     * again and wakes us again. The other way round, one pushed between the take and the read
     * would wait for some later job's wake-up. */
    uint64_t finished;
    if (read(done_fd, &finished, sizeof finished) < 0 && errno != EAGAIN)
        perror("read eventfd");
    pthread_mutex_lock(&done.lock);
    struct job *job = done.head;
    done.head = done.tail = NULL;
    pthread_mutex_unlock(&done.lock);

    while (job != NULL) {
        struct job *next = job->next;
        struct conn *c = &conns[job->fd];
        /* Its client may have closed while the lookup ran, and the descriptor may be a new
         * client's now: the generation tells them apart. The answer of a client gone is dropped. */
        if (c->generation == job->generation) {
            c->jobs_in_flight--;
            char answer[ANSWER_BYTES];
            int answer_len = snprintf(answer, sizeof answer, "done %" PRIu64 " %" PRIu64 "\n", job->id, job->value);
            if (!append_output(c, answer, (size_t)answer_len) || !serve(job->fd))
                close_conn(job->fd);
        }
        free(job);
        job = next;
    }
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
        conns[fd] = (struct conn){.events = EPOLLIN, .generation = ++connections_accepted};
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
    start_workers();
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
            else if (events[i].data.fd == done_fd)
                deliver_results();
            else
                on_client_event(events[i].data.fd, events[i].events);
        }
    }
}
