/* fork-per-conn.c - a new process for every connection.
 *
 * How it works: the parent only accepts. For each connection it forks a child, which serves that
 * one connection with blocking calls and exits; the parent closes its copy of the descriptor and
 * goes back to accept. Ended children are reaped as SIGCHLD interrupts accept, so none lingers as
 * a zombie. This is UNP's server 2 (chapter 30), the classic inetd-style design.
 *
 * Limits: a fork per connection (page tables copied, a process created and torn down) costs far
 * more than serving a short request, so a new connection per request is where it is slowest. Each
 * connection holds a whole process; the process limit, or --max-children, caps concurrency; past
 * it, or when fork fails, the connection gets a 503 at once. See docs/fork-per-conn.md. */
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/procs.h"
#include "common/serve_blocking.h"
#include "common/signals.h"
#include "common/stats.h"

static int max_children; /* 0: no limit but the system's */

static const struct paradigm_option fork_options[] = {
    {"max-children", "N", "children serving at once, then 503 (default 0: no limit)", &max_children, 0, 1000000, NULL},
    {0},
};

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "fork-per-conn", .options = fork_options});
    signals_install();
    procs_install_sigchld();
    stats_init();
    int listen_fd = net_listen(false, false);
    net_announce(listen_fd);

    struct proc_table children = {0};
    while (!server_stopping) {
        int fd = net_accept(listen_fd, false);
        proc_table_reap(&children, NULL, NULL);
        if (fd < 0)
            continue;
        if (max_children > 0 && children.count >= (size_t)max_children) {
            conn_refuse(fd, 503);
            continue;
        }
        pid_t pid = procs_fork();
        if (pid == 0) {
            close(listen_fd);
            serve_blocking(fd);
            procs_exit_child();
        }
        if (pid < 0) {
            conn_refuse(fd, 503); /* EAGAIN at the process limit, ENOMEM */
            continue;
        }
        close(fd);
        /* Untracked, the child still ends with its connection, or with us (procs_fork). */
        if (proc_table_add(&children, pid, -1) != 0)
            log_error("out of memory for the table of children");
    }

    proc_table_stop(&children);
    proc_table_free(&children);
    close(listen_fd);
    stats_print();
    return 0;
}
