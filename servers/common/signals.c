/* signals.c - see signals.h. */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "log.h"
#include "net.h"

atomic_int server_stopping;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    server_stopping = 1;
}

/* Only there to be caught: a blocked call in the thread it is sent to returns EINTR. */
static void on_wake_signal(int signal_number)
{
    (void)signal_number;
}

void signals_install(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    /* A peer that closes early must cost an EPIPE on one connection, not the whole server. */
    action.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &action, NULL) != 0)
        die("sigaction(SIGPIPE): %m");
    action.sa_handler = on_stop_signal;
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0)
        die("sigaction(SIGTERM/SIGINT): %m");
    action.sa_handler = on_wake_signal;
    if (sigaction(SIGNAL_WAKE, &action, NULL) != 0)
        die("sigaction(SIGUSR1): %m");
}

sigset_t signals_stop_set(void)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    return stop;
}

void signals_wait_stop(void)
{
    sigset_t stop = signals_stop_set();
    int error = pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (error != 0)
        die("pthread_sigmask: %s", strerror(error));
    /* The flag may already be set by a signal handled before the block; and the wait is bounded
     * like every other, although only a signal ends it. */
    while (!server_stopping) {
        int taken = sigtimedwait(&stop, NULL, &(struct timespec){.tv_nsec = NET_TICK_MS * 1000000L});
        if (taken == SIGTERM || taken == SIGINT)
            server_stopping = 1;
        else if (taken < 0 && errno != EAGAIN && errno != EINTR)
            die("sigtimedwait: %m");
    }
}
