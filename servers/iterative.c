/* iterative.c - the iterative server: one connection at a time.
 *
 * How it works: accept a connection, serve it until the client leaves (or a deadline ends it),
 * then accept the next. This is the first server of every networking course (UNP, chapter 4):
 * no concurrency at all, so no locks, no events, no state beyond the one connection.
 *
 * Limits: while one client is served, every other one waits in the kernel's listen backlog. A
 * keep-alive client that goes quiet holds the whole server for --idle-timeout; a slow reader holds
 * it for as long as it reads; a /sleep stalls everybody. It is fast per request and hopeless under
 * concurrency, which is exactly what the benchmarks show. See docs/iterative.md. */
#include <unistd.h>

#include "common/net.h"
#include "common/options.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "iterative"});
    signals_install();
    stats_init();
    /* A blocking listening socket whose accept wakes every NET_TICK_MS to look at the stop flag. */
    int listen_fd = net_listen(false, false);
    net_announce(listen_fd);

    while (!server_stopping) {
        int fd = net_accept(listen_fd, false);
        if (fd >= 0)
            serve_blocking_polled(fd);
    }

    close(listen_fd);
    stats_print();
    return 0;
}
