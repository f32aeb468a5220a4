/* signals.c - see signals.h. */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

#if defined(__SANITIZE_THREAD__)
/* Under TSan a handler is run late, at the thread's next intercepted call, and now and then not at
 * all: csp's main thread, in a bounded epoll_wait loop, once slept on with the flag unset (1 of
 * about 4,500 stops in a TSan conformance run), as prethread's nanosleep loop did before
 * signals_wait_stop. In a TSan build the stop signals are therefore taken synchronously by a
 * watcher thread (sigtimedwait involves no handler) for every server: the main thread and every
 * thread it starts block them, the watcher sets the flag and wakes the main thread, and each
 * loop, bounded by a tick, sees the flag within one even if that wake-up's handler is late. The
 * other builds keep the handler (and no extra thread: iterative stays one thread). Only the
 * threaded servers are built with TSan; a forking one would pass the blocked mask to its
 * children, which have no watcher. */
static pthread_t main_thread;

static void *watch_stop_signals(void *unused)
{
    (void)unused;
    sigset_t stop = signals_stop_set();
    while (!server_stopping) {
        int taken = sigtimedwait(&stop, NULL, &(struct timespec){.tv_nsec = NET_TICK_MS * 1000000L});
        if (taken == SIGTERM || taken == SIGINT) {
            server_stopping = 1;
            pthread_kill(main_thread, SIGNAL_WAKE);
        } else if (taken < 0 && errno != EAGAIN && errno != EINTR) {
            die("sigtimedwait: %m");
        }
    }
    return NULL;
}

static void start_stop_watcher(void)
{
    static bool started;
    if (started)
        return;
    started = true;
    main_thread = pthread_self();
    sigset_t stop = signals_stop_set();
    pthread_t watcher;
    int error = pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (error == 0)
        error = pthread_create(&watcher, NULL, watch_stop_signals, NULL);
    if (error == 0)
        error = pthread_detach(watcher);
    if (error != 0)
        die("the stop-signal watcher: %s", strerror(error));
}
#endif

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
#if defined(__SANITIZE_THREAD__)
    start_stop_watcher();
#endif
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
