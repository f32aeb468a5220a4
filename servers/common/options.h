/* options.h - the command line every server shares. */
#ifndef C10K_OPTIONS_H
#define C10K_OPTIONS_H

#include <stdbool.h>

struct server_options {
    const char *name;      /* the paradigm, e.g. "epoll-lt"; responses say "Server: c10k-NAME" */
    const char *host;
    int port;
    int backlog;
    double header_timeout; /* seconds; see docs/protocol.md, "Deadlines" */
    double idle_timeout;
    double send_timeout;
    int workers;           /* processes, for paradigms that have them */
    int threads;           /* threads, for paradigms that have them */
};

/* The one set of options of this process, read by the protocol code for its deadlines. */
extern struct server_options server_options;

/* Which of the optional flags a paradigm accepts. */
enum {
    OPTIONS_WORKERS = 1 << 0,
    OPTIONS_THREADS = 1 << 1,
};

/* Parses argv into server_options. A bad flag or value prints the usage on stderr and exits 2;
 * --help prints it on stdout and exits 0; --version prints "c10k-NAME VERSION" and exits 0.
 * --workers and --threads default to the number of CPUs this process may run on. */
void options_parse(int argc, char **argv, const char *name, unsigned optional_flags);

/* The version string compiled in from `git describe` (version.c). */
extern const char c10k_version[];

#endif
