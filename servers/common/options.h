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
    int defer_accept;      /* seconds of TCP_DEFER_ACCEPT on the listening socket; 0: off */
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

/* A flag of one paradigm's own (--max-children N, --accept-lock none|flock|mutex). The paradigm
 * puts the default into *value before parsing. */
struct paradigm_option {
    const char *name;            /* without the dashes */
    const char *value_name;      /* for the usage: "N", "none|flock|mutex" */
    const char *help;            /* one line, with the default */
    int *value;                  /* a number, or the index of the chosen word in choices */
    long min, max;               /* the range of a number */
    const char *const *choices;  /* NULL for a number, else the words, ending with NULL */
};

/* What a server accepts besides the common flags. */
struct paradigm {
    const char *name;            /* "prefork": responses say "Server: c10k-prefork" */
    unsigned flags;              /* OPTIONS_WORKERS, OPTIONS_THREADS */
    int default_threads;         /* --threads when not given; 0: the CPUs this process may use */
    const struct paradigm_option *options; /* its own flags, ending with {0}; may be NULL */
};

/* Parses argv into server_options and the paradigm's own variables. A bad flag or value prints
 * the usage on stderr and exits 2; --help prints it on stdout and exits 0; --version prints
 * "c10k-NAME VERSION" and exits 0. --workers defaults to the number of CPUs this process may run
 * on. */
void options_parse(int argc, char **argv, const struct paradigm *paradigm);

/* For a value that only the paradigm can judge: prints the problem and the usage on stderr and
 * exits 2, as for any bad flag. */
_Noreturn void options_usage_error(const struct paradigm *paradigm, const char *problem, const char *value);

/* The number of CPUs this process may run on (its affinity mask), at least 1. */
int options_available_cpus(void);

/* The version string compiled in from `git describe` (version.c). */
extern const char c10k_version[];

#endif
