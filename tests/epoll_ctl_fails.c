/* epoll_ctl_fails.c - an LD_PRELOAD shim that makes every Nth EPOLL_CTL_ADD of an accepted
 * connection fail with ENOSPC (FAIL_EPOLL_ADD_EVERY=N), as it does when fs.epoll.max_user_watches
 * is reached, without changing that limit for the whole machine. Only connected stream sockets
 * count: a server's own descriptors (listening sockets, eventfds, one per loop in the multi-loop
 * servers) are registered as usual, so the same N means the same connections on every reactor.
 * tests/family.py uses it to check that a reactor closes and counts the one connection it could
 * not register, and goes on serving. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int is_accepted_stream(int fd)
{
    int listening = 0, type = 0;
    socklen_t length = sizeof listening;
    int saved = errno;
    int accepted = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && !listening &&
                   (length = sizeof type, getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0) &&
                   type == SOCK_STREAM;
    errno = saved;
    return accepted;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    /* Several loops may register connections at once: the count is atomic. */
    static int (*_Atomic real_epoll_ctl)(int, int, int, struct epoll_event *);
    static atomic_long every = -1, adds;
    if (real_epoll_ctl == NULL)
        real_epoll_ctl = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    if (every < 0) {
        const char *setting = getenv("FAIL_EPOLL_ADD_EVERY");
        every = setting != NULL ? strtol(setting, NULL, 10) : 0;
    }
    if (op == EPOLL_CTL_ADD && every > 0 && is_accepted_stream(fd) && (atomic_fetch_add(&adds, 1) + 1) % every == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real_epoll_ctl(epfd, op, fd, event);
}
