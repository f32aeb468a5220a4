/* prefork-fdpass.c - N preforked workers; the master alone accepts and passes each connection to
 * an idle worker over a Unix socket.
 *
 * How it works: the master polls the listening socket and one Unix socket per worker. It accepts
 * a connection, sends its descriptor to an idle worker (sendmsg with SCM_RIGHTS: the kernel
 * installs a copy in the worker) and closes its own copy. The worker serves the connection with
 * blocking calls, then writes one byte back: "idle again". While every worker is busy the master
 * holds new connections in a bounded queue (--queue) and answers 503 once that is full. This is
 * UNP's server 5 (chapter 30): the master knows who is idle, so no worker ever races for accept.
 *
 * Limits: every connection costs the master an accept, a sendmsg and a read of the idle byte,
 * and a worker a recvmsg, on top of the work itself. N workers still serve N connections at once.
 * A connection passed to a worker that then dies dies with it. See docs/prefork-fdpass.md. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/procs.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_ACCEPTS_PER_WAKEUP 64

static int queue_limit = 1024;

static const struct paradigm_option fdpass_options[] = {
    {"queue", "N", "connections held while every worker is busy, then 503 (default 1024)", &queue_limit, 1, 1000000, NULL},
    {0},
};

enum worker_state { WORKER_GONE, WORKER_IDLE, WORKER_BUSY };

struct worker {
    enum worker_state state;
    int channel;        /* the master's end of the Unix socket to this worker */
    int worker_end;     /* the worker's end, until the fork has given it away */
};

static struct worker *workers;
static int worker_count;
static int listen_fd;

/* Connections waiting for a worker: a ring of descriptors. */
static int *waiting;
static int waiting_head, waiting_len;

/* --- passing a descriptor ----------------------------------------------------------------------- */

/* One byte of data carries the descriptor: SCM_RIGHTS needs at least one. */
static int send_descriptor(int channel, int fd)
{
    char byte = 'c';
    char control[CMSG_SPACE(sizeof fd)];
    struct iovec data = {.iov_base = &byte, .iov_len = 1};
    struct msghdr message = {.msg_iov = &data, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(header), &fd, sizeof fd);
    return sendmsg(channel, &message, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Returns the descriptor received, -EAGAIN at a tick with nothing sent, or another -errno; 0
 * bytes (the master is gone) is -EPIPE. */
static int receive_descriptor(int channel)
{
    char byte;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec data = {.iov_base = &byte, .iov_len = 1};
    struct msghdr message = {.msg_iov = &data, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t n = recvmsg(channel, &message, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    if (n == 0)
        return -EPIPE;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == NULL || header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(int)))
        return -EPROTO;
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return fd;
}

/* --- the worker ---------------------------------------------------------------------------------- */

static void run_worker(int index, void *arg)
{
    (void)arg;
    int channel = workers[index].worker_end;
    /* Copies of the master's descriptors would keep them open after the master closes them:
     * a waiting connection would not end when its worker closes it, and the master's ends of the
     * channels would not show EOF when their worker dies. Only the master accepts. */
    close(listen_fd);
    for (int other = 0; other < worker_count; other++)
        if (workers[other].channel >= 0)
            close(workers[other].channel);
    for (int i = 0; i < waiting_len; i++)
        close(waiting[(waiting_head + i) % queue_limit]);
    net_set_tick_timeouts(channel);
    while (!server_stopping) {
        int fd = receive_descriptor(channel);
        if (fd == -EAGAIN)
            continue;
        if (fd < 0) {
            if (fd != -EPIPE)
                log_error("worker %d: receiving a connection: %s", index, strerror(-fd));
            return;
        }
        /* The master accepted it nonblocking, for its poll loop; blocking calls here would
         * return EAGAIN at once and the worker would spin. */
        net_set_blocking(fd);
        serve_blocking(fd);
        stats_flush(); /* a worker killed later loses only the connection it was serving */
        char idle = 'i';
        if (send(channel, &idle, 1, MSG_NOSIGNAL) != 1)
            return;
    }
}

/* --- the master's bookkeeping of its workers ------------------------------------------------------ */

static int open_channel(int index, void *arg)
{
    (void)arg;
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        return -errno;
    workers[index] = (struct worker){.state = WORKER_GONE, .channel = ends[0], .worker_end = ends[1]};
    return 0;
}

static void worker_started(int index, void *arg)
{
    (void)arg;
    close(workers[index].worker_end);
    workers[index].worker_end = -1;
    workers[index].state = WORKER_IDLE;
}

static void close_channel(int index, void *arg)
{
    (void)arg;
    if (workers[index].channel >= 0)
        close(workers[index].channel);
    if (workers[index].worker_end >= 0)
        close(workers[index].worker_end);
    workers[index] = (struct worker){.state = WORKER_GONE, .channel = -1, .worker_end = -1};
}

/* Gives the connection to an idle worker; false if none would take it. */
static bool hand_off(int fd)
{
    for (int index = 0; index < worker_count; index++) {
        struct worker *worker = &workers[index];
        if (worker->state != WORKER_IDLE)
            continue;
        if (send_descriptor(worker->channel, fd) != 0) {
            worker->state = WORKER_GONE; /* it died; the SIGCHLD path replaces it */
            continue;
        }
        worker->state = WORKER_BUSY;
        close(fd);
        return true;
    }
    return false;
}

static void accept_connections(void)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_WAKEUP; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        if (waiting_len == 0 && hand_off(fd))
            continue;
        if (waiting_len == queue_limit) {
            conn_refuse(fd, 503);
            continue;
        }
        waiting[(waiting_head + waiting_len++) % queue_limit] = fd;
    }
}

static void hand_off_waiting(void)
{
    while (waiting_len > 0 && hand_off(waiting[waiting_head])) {
        waiting_head = (waiting_head + 1) % queue_limit;
        waiting_len--;
    }
}

/* Reads a worker's "idle" bytes; EOF means the worker is gone. */
static void read_channel(struct worker *worker)
{
    char bytes[16];
    ssize_t n = recv(worker->channel, bytes, sizeof bytes, MSG_DONTWAIT);
    if (n > 0)
        worker->state = WORKER_IDLE;
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        worker->state = WORKER_GONE;
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "prefork-fdpass", .flags = OPTIONS_WORKERS,
                                                 .options = fdpass_options});
    signals_install();
    procs_install_sigchld();
    stats_init();
    listen_fd = net_listen(false, true);
    worker_count = server_options.workers;
    workers = calloc((size_t)worker_count, sizeof *workers);
    waiting = calloc((size_t)queue_limit, sizeof *waiting);
    struct pollfd *polled = calloc((size_t)worker_count + 1, sizeof *polled);
    if (workers == NULL || waiting == NULL || polled == NULL)
        die("out of memory for %d workers", worker_count);
    for (int index = 0; index < worker_count; index++)
        workers[index] = (struct worker){.state = WORKER_GONE, .channel = -1, .worker_end = -1};
    struct worker_pool pool = {.count = worker_count, .before_fork = open_channel, .after_fork = worker_started,
                               .run = run_worker, .after_exit = close_channel};
    worker_pool_start(&pool);
    net_announce(listen_fd);

    while (!server_stopping) {
        worker_pool_tend(&pool);
        hand_off_waiting();
        polled[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        for (int index = 0; index < worker_count; index++)
            polled[index + 1] = (struct pollfd){
                .fd = workers[index].state == WORKER_GONE ? -1 : workers[index].channel, .events = POLLIN};
        int ready = poll(polled, (nfds_t)worker_count + 1, NET_TICK_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %m");
        }
        for (int index = 0; index < worker_count; index++)
            if (polled[index + 1].revents != 0)
                read_channel(&workers[index]);
        hand_off_waiting();
        if (polled[0].revents & POLLIN)
            accept_connections();
    }

    /* Connections still waiting for a worker are closed like those in any server's accept queue. */
    for (; waiting_len > 0; waiting_len--, waiting_head = (waiting_head + 1) % queue_limit)
        close(waiting[waiting_head]);
    worker_pool_stop(&pool);
    free(polled);
    free(waiting);
    free(workers);
    close(listen_fd);
    stats_print();
    return 0;
}
