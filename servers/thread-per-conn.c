/* thread-per-conn.c - a new thread for every connection.
 *
 * How it works: the main thread only accepts. For each connection it starts a detached thread
 * with a --stack-kb stack, which serves that connection with blocking calls and ends; the kernel
 * schedules the threads, and a thread blocked in read costs no CPU. This is UNP's server 6
 * (chapter 30): a fork-per-conn whose "process" shares the address space, so it is made in
 * microseconds instead of copying page tables.
 *
 * Limits: a thread per connection still costs a stack (reserved address space, partly resident),
 * a kernel task and a scheduler entry; thousands of idle clients are thousands of threads. When
 * pthread_create fails (thread or memory limit) the connection gets a 503 at once. See
 * docs/thread-per-conn.md. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/threads.h"

#define STOP_GRACE_S 0.6 /* the threads notice the stop within a tick (NET_TICK_MS) */

static int stack_kb = 256;

static const struct paradigm_option thread_options[] = {
    {"stack-kb", "N", "stack of each connection's thread, KiB (default 256)", &stack_kb, 16, 1048576, NULL},
    {0},
};

int main(int argc, char **argv)
{
    struct paradigm paradigm = {.name = "thread-per-conn", .options = thread_options};
    options_parse(argc, argv, &paradigm);
    size_t stack_bytes = (size_t)stack_kb * 1024;
    int error = threads_check_stack(stack_bytes);
    if (error != 0) {
        char value[64];
        snprintf(value, sizeof value, "%d (%s)", stack_kb, strerror(error));
        options_usage_error(&paradigm, "no thread can start with --stack-kb", value);
    }
    signals_install();
    stats_init();
    int listen_fd = net_listen(false, false);
    net_announce(listen_fd);

    while (!server_stopping) {
        int fd = net_accept(listen_fd, false);
        if (fd < 0)
            continue;
        if (threads_serve_detached(fd, stack_bytes) != 0)
            conn_refuse(fd, 503);
    }

    close(listen_fd);
    int running = threads_wait_detached(STOP_GRACE_S);
    if (running > 0)
        log_error("%d connection threads did not stop within %.1f s; their counts are lost", running, STOP_GRACE_S);
    stats_print();
    return 0;
}
