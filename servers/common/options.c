/* options.c - command-line parsing, strict: a value that is not entirely a number in range is an
 * error, never silently 0, because a benchmark run with a misread flag measures the wrong thing. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

struct server_options server_options;

static void print_usage(FILE *out, const char *name, unsigned optional_flags)
{
    fprintf(out,
            "usage: %s [options]\n"
            "  --host ADDR            address to listen on (default 127.0.0.1)\n"
            "  --port N               port, 0 for an ephemeral one (default 8080)\n"
            "  --backlog N            listen backlog (default 1024)\n"
            "  --header-timeout S     seconds for a whole request to arrive (default 10)\n"
            "  --idle-timeout S       seconds a connection may wait between requests (default 60)\n"
            "  --send-timeout S       seconds a client may stall a response (default 30)\n",
            name);
    if (optional_flags & OPTIONS_WORKERS)
        fprintf(out, "  --workers N            worker processes (default: CPUs available)\n");
    if (optional_flags & OPTIONS_THREADS)
        fprintf(out, "  --threads N            threads (default: CPUs available)\n");
    fprintf(out,
            "  --help                 print this help\n"
            "  --version              print the version\n");
}

static _Noreturn void usage_error(const char *name, unsigned optional_flags, const char *problem,
                                  const char *value)
{
    fprintf(stderr, "c10k-%s: %s%s%s\n", name, problem, value ? ": " : "", value ? value : "");
    print_usage(stderr, name, optional_flags);
    exit(2);
}

static bool parse_int(const char *text, long min, long max, int *result)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *result = (int)value;
    return true;
}

static bool parse_seconds(const char *text, double *result)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value) || value <= 0 || value > 86400)
        return false;
    *result = value;
    return true;
}

static int available_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}

void options_parse(int argc, char **argv, const char *name, unsigned optional_flags)
{
    enum { OPT_HOST = 256, OPT_PORT, OPT_BACKLOG, OPT_HEADER_TIMEOUT, OPT_IDLE_TIMEOUT,
           OPT_SEND_TIMEOUT, OPT_WORKERS, OPT_THREADS, OPT_HELP, OPT_VERSION };
    static const struct option long_options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"backlog", required_argument, NULL, OPT_BACKLOG},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct server_options *opts = &server_options;
    *opts = (struct server_options){
        .name = name, .host = "127.0.0.1", .port = 8080, .backlog = 1024,
        .header_timeout = 10, .idle_timeout = 60, .send_timeout = 30,
    };
    if (optional_flags & OPTIONS_WORKERS)
        opts->workers = available_cpus();
    if (optional_flags & OPTIONS_THREADS)
        opts->threads = available_cpus();

    opterr = 0; /* we print our own message, with the usage */
    int option;
    while ((option = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        bool ok = true;
        switch (option) {
        case OPT_HOST: opts->host = optarg; break;
        case OPT_PORT: ok = parse_int(optarg, 0, 65535, &opts->port); break;
        case OPT_BACKLOG: ok = parse_int(optarg, 1, INT_MAX, &opts->backlog); break;
        case OPT_HEADER_TIMEOUT: ok = parse_seconds(optarg, &opts->header_timeout); break;
        case OPT_IDLE_TIMEOUT: ok = parse_seconds(optarg, &opts->idle_timeout); break;
        case OPT_SEND_TIMEOUT: ok = parse_seconds(optarg, &opts->send_timeout); break;
        case OPT_WORKERS:
            if (!(optional_flags & OPTIONS_WORKERS))
                usage_error(name, optional_flags, "this server has no worker processes", "--workers");
            ok = parse_int(optarg, 1, 4096, &opts->workers);
            break;
        case OPT_THREADS:
            if (!(optional_flags & OPTIONS_THREADS))
                usage_error(name, optional_flags, "this server has no thread option", "--threads");
            ok = parse_int(optarg, 1, 100000, &opts->threads);
            break;
        case OPT_HELP:
            print_usage(stdout, name, optional_flags);
            exit(0);
        case OPT_VERSION:
            printf("c10k-%s %s\n", name, c10k_version);
            exit(0);
        case ':':
            usage_error(name, optional_flags, "missing value for", argv[optind - 1]);
        default:
            usage_error(name, optional_flags, "unknown option", argv[optind - 1]);
        }
        if (!ok)
            usage_error(name, optional_flags, "bad value", optarg);
    }
    if (optind < argc)
        usage_error(name, optional_flags, "unexpected argument", argv[optind]);
}
