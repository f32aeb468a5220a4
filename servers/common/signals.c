/* signals.c - see signals.h. */
#include "signals.h"

#include <string.h>

#include "log.h"

atomic_int server_stopping;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    server_stopping = 1;
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
}
