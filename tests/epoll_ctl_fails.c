/* epoll_ctl_fails.c - an LD_PRELOAD shim that makes every Nth EPOLL_CTL_ADD fail with ENOSPC
 * (FAIL_EPOLL_ADD_EVERY=N), as it does when fs.epoll.max_user_watches is reached, without
 * changing that limit for the whole machine. tests/family.py uses it to check that a reactor
 * closes and counts the one connection it could not register, and goes on serving. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    static int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
    static long every = -1, adds;
    if (real_epoll_ctl == NULL)
        real_epoll_ctl = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    if (every < 0) {
        const char *setting = getenv("FAIL_EPOLL_ADD_EVERY");
        every = setting != NULL ? strtol(setting, NULL, 10) : 0;
    }
    if (op == EPOLL_CTL_ADD && every > 0 && ++adds % every == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real_epoll_ctl(epfd, op, fd, event);
}
