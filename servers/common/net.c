/* net.c - see net.h. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "signals.h"
#include "stats.h"

/* A descriptor kept open only to be given up when accept fails with EMFILE (the trick of
 * libev and libuv). Acceptors on many threads share it without a lock: a thread takes it with an
 * exchange, so only one holds it at a time, and -1 means it is in use or lost (see
 * restore_reserve). */
static atomic_int reserve_fd = -1;

/* Threads inside a blocking accept. Linux gives each its descriptor slot before it waits, so with
 * more blocking acceptors than free slots the surplus ones fail with EMFILE while the others wait
 * in slots of their own: a connection then pending is theirs to take, not to be shed. */
static atomic_int blocking_acceptors;

/* Opens a reserve unless one is there; false when the process is out of descriptors. */
static bool put_reserve(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int none = -1;
    if (!atomic_compare_exchange_strong(&reserve_fd, &none, fd))
        close(fd);
    return true;
}

static void set_socket_option(int fd, int level, int name, int value, const char *what)
{
    if (setsockopt(fd, level, name, &value, sizeof value) != 0)
        die("setsockopt(%s): %m", what);
}

void net_set_tick_timeouts(int fd)
{
    struct timeval tick = {.tv_sec = 0, .tv_usec = NET_TICK_MS * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof tick) != 0)
        log_error("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO): %m");
}

void net_set_blocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        log_error("fcntl(O_NONBLOCK): %m");
}

int net_listen(bool reuse_port, bool nonblocking)
{
    const struct server_options *opts = &server_options;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *addresses;
    char port[16];
    snprintf(port, sizeof port, "%d", opts->port);
    int rc = getaddrinfo(opts->host, port, &hints, &addresses);
    if (rc != 0)
        die("cannot resolve %s: %s", opts->host, gai_strerror(rc));

    int fd = -1, saved_errno = 0;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC |
                    (nonblocking ? SOCK_NONBLOCK : 0), address->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        set_socket_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
        if (reuse_port)
            set_socket_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
        /* The kernel holds a connection back until its first bytes arrive (or the time is up), so
         * accept hands over a connection whose request can be read at once (docs/churn.md). */
        if (opts->defer_accept > 0)
            set_socket_option(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, opts->defer_accept, "TCP_DEFER_ACCEPT");
        if (bind(fd, address->ai_addr, address->ai_addrlen) == 0 && listen(fd, opts->backlog) == 0)
            break;
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addresses);
    if (fd < 0) {
        errno = saved_errno;
        die("cannot listen on %s:%d: %m", opts->host, opts->port);
    }
    if (!nonblocking)
        net_set_tick_timeouts(fd);

    if (!put_reserve())
        die("open(/dev/null): %m");
    return fd;
}

int net_local_port(int listen_fd)
{
    struct sockaddr_storage address;
    socklen_t len = sizeof address;
    if (getsockname(listen_fd, (struct sockaddr *)&address, &len) != 0)
        die("getsockname: %m");
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return ntohs(((struct sockaddr_in *)&address)->sin_port);
}

void net_announce(int listen_fd)
{
    struct sockaddr_storage address;
    socklen_t len = sizeof address;
    char host[INET6_ADDRSTRLEN];
    int port;
    if (getsockname(listen_fd, (struct sockaddr *)&address, &len) != 0)
        die("getsockname: %m");
    if (address.ss_family == AF_INET6) {
        struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *)&address;
        inet_ntop(AF_INET6, &ipv6->sin6_addr, host, sizeof host);
        port = ntohs(ipv6->sin6_port);
        printf("listening on [%s]:%d\n", host, port);
    } else {
        struct sockaddr_in *ipv4 = (struct sockaddr_in *)&address;
        inet_ntop(AF_INET, &ipv4->sin_addr, host, sizeof host);
        port = ntohs(ipv4->sin_port);
        printf("listening on %s:%d\n", host, port);
    }
    if (fflush(stdout) != 0)
        die("cannot write the ready line: %m");
}

/* With many blocking acceptors, another one can take the slot the reserve gave up, between the
 * close and the shedding accept: it then holds the slot while it blocks, or serves a connection in
 * it, and the reserve cannot be opened again. Every shed after that would fail, and connections
 * would wait in the queue, neither served nor refused, for as long as every slot stays in use. So
 * an acceptor that returns while the reserve is missing puts it back: into a free slot if there
 * is one, else into the slot of the connection it just took, which is then shed (it was over the
 * limit the reserve stands for). Returns the descriptor to serve, or -1. */
static int restore_reserve(int accepted_fd)
{
    if (put_reserve() || accepted_fd < 0)
        return accepted_fd;
    close(accepted_fd);
    stats_add(STAT_SHED, 1);
    put_reserve();
    return -1;
}

/* Out of descriptors (EMFILE): free the reserve, take the pending connection with it, close it.
 * Linux reports EMFILE before it looks at the queue, so a blocking acceptor first waits (a tick
 * at most) for a connection to be pending: otherwise it would spin. By then a descriptor may have
 * come free, so it tries a plain accept first, and returns that connection to be served. A
 * stopping server sheds nothing more. */
static int accept_at_limit(int listen_fd, bool nonblocking)
{
    struct pollfd pending = {.fd = listen_fd, .events = POLLIN};
    if (poll(&pending, 1, nonblocking ? 0 : NET_TICK_MS) <= 0 || server_stopping)
        return -1;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
    if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
        return fd;
    bool shed = false;
    int reserve = atomic_load(&blocking_acceptors) > 0 ? -1 : atomic_exchange(&reserve_fd, -1);
    if (reserve >= 0) {
        close(reserve);
        /* Blocking, for a tick at most, if another acceptor took the connection poll saw. */
        int refused = accept(listen_fd, NULL, NULL);
        if (refused >= 0) {
            close(refused);
            stats_add(STAT_SHED, 1);
            shed = true;
        }
        put_reserve();
    }
    /* Nothing could be shed: wait rather than spin on a socket that stays readable. */
    if (!shed && !nonblocking)
        nanosleep(&(struct timespec){.tv_nsec = NET_TICK_MS * 1000000L}, NULL);
    return -1;
}

int net_accept(int listen_fd, bool nonblocking)
{
    if (!nonblocking)
        atomic_fetch_add(&blocking_acceptors, 1);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
    int accept_errno = errno;
    if (!nonblocking)
        atomic_fetch_sub(&blocking_acceptors, 1);
    if (fd < 0 && (accept_errno == EMFILE || accept_errno == ENFILE)) {
        fd = accept_at_limit(listen_fd, nonblocking);
        accept_errno = EAGAIN; /* shed, or nothing to shed: not an error */
    }
    if (atomic_load(&reserve_fd) < 0) {
        bool had_connection = fd >= 0;
        fd = restore_reserve(fd);
        if (had_connection && fd < 0)
            return -1;
    }
    if (fd >= 0) {
        stats_add(STAT_ACCEPTED, 1);
        return fd;
    }
    errno = accept_errno;
    switch (errno) {
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall refused it */
        return -1;
    case ENOBUFS:
    case ENOMEM:
        log_error("accept: %m");
        return -1;
    default:
        die("accept: %m");
    }
}
