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
#include <string.h>

#include "log.h"

struct server_options server_options;

#define MAX_PARADIGM_OPTIONS 8

static void print_usage(FILE *out, const struct paradigm *paradigm)
{
    fprintf(out,
            "usage: %s [options]\n"
            "  --host ADDR            address to listen on (default 127.0.0.1)\n"
            "  --port N               port, 0 for an ephemeral one (default 8080)\n"
            "  --backlog N            listen backlog (default 1024)\n"
            "  --header-timeout S     seconds for a whole request to arrive (default 10)\n"
            "  --idle-timeout S       seconds a connection may wait between requests (default 60)\n"
            "  --send-timeout S       seconds a client may stall a response (default 30)\n"
            "  --defer-accept S       accept a connection only once its first bytes came, or after\n"
            "                         S seconds (TCP_DEFER_ACCEPT; default 0: off)\n",
            paradigm->name);
    if (paradigm->flags & OPTIONS_WORKERS)
        fprintf(out, "  --workers N            worker processes (default: CPUs available)\n");
    if (paradigm->flags & OPTIONS_THREADS) {
        if (paradigm->default_threads > 0)
            fprintf(out, "  --threads N            threads (default %d)\n", paradigm->default_threads);
        else
            fprintf(out, "  --threads N            threads (default: CPUs available)\n");
    }
    for (const struct paradigm_option *option = paradigm->options; option && option->name; option++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", option->name, option->value_name);
        fprintf(out, "  %-22s %s\n", flag, option->help);
    }
    fprintf(out,
            "  --help                 print this help\n"
            "  --version              print the version\n");
}

_Noreturn void options_usage_error(const struct paradigm *paradigm, const char *problem, const char *value)
{
    fprintf(stderr, "c10k-%s: %s%s%s\n", paradigm->name, problem, value ? ": " : "", value ? value : "");
    print_usage(stderr, paradigm);
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

static bool parse_choice(const char *text, const char *const *choices, int *result)
{
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcmp(text, choices[i]) == 0) {
            *result = i;
            return true;
        }
    }
    return false;
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

int options_available_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}

void options_parse(int argc, char **argv, const struct paradigm *paradigm)
{
    enum { OPT_HOST = 256, OPT_PORT, OPT_BACKLOG, OPT_HEADER_TIMEOUT, OPT_IDLE_TIMEOUT,
           OPT_SEND_TIMEOUT, OPT_DEFER_ACCEPT, OPT_WORKERS, OPT_THREADS, OPT_HELP, OPT_VERSION, OPT_PARADIGM };
    static const struct option common_options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"backlog", required_argument, NULL, OPT_BACKLOG},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT},
        {"defer-accept", required_argument, NULL, OPT_DEFER_ACCEPT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
    };
    enum { COMMON_COUNT = sizeof common_options / sizeof common_options[0] };
    /* The paradigm's own flags follow the common ones; getopt_long returns OPT_PARADIGM + i. */
    struct option long_options[COMMON_COUNT + MAX_PARADIGM_OPTIONS + 1];
    memcpy(long_options, common_options, sizeof common_options);
    int own_count = 0;
    for (const struct paradigm_option *option = paradigm->options; option && option->name; option++) {
        if (own_count == MAX_PARADIGM_OPTIONS)
            die("%s has more than %d options of its own", paradigm->name, MAX_PARADIGM_OPTIONS);
        long_options[COMMON_COUNT + own_count] =
            (struct option){option->name, required_argument, NULL, OPT_PARADIGM + own_count};
        own_count++;
    }
    long_options[COMMON_COUNT + own_count] = (struct option){NULL, 0, NULL, 0};

    struct server_options *opts = &server_options;
    *opts = (struct server_options){
        .name = paradigm->name, .host = "127.0.0.1", .port = 8080, .backlog = 1024,
        .header_timeout = 10, .idle_timeout = 60, .send_timeout = 30,
    };
    if (paradigm->flags & OPTIONS_WORKERS)
        opts->workers = options_available_cpus();
    if (paradigm->flags & OPTIONS_THREADS)
        opts->threads = paradigm->default_threads > 0 ? paradigm->default_threads : options_available_cpus();

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
        case OPT_DEFER_ACCEPT: ok = parse_int(optarg, 0, 3600, &opts->defer_accept); break;
        case OPT_WORKERS:
            if (!(paradigm->flags & OPTIONS_WORKERS))
                options_usage_error(paradigm, "this server has no worker processes", "--workers");
            ok = parse_int(optarg, 1, 4096, &opts->workers);
            break;
        case OPT_THREADS:
            if (!(paradigm->flags & OPTIONS_THREADS))
                options_usage_error(paradigm, "this server has no thread option", "--threads");
            ok = parse_int(optarg, 1, 100000, &opts->threads);
            break;
        case OPT_HELP:
            print_usage(stdout, paradigm);
            exit(0);
        case OPT_VERSION:
            printf("c10k-%s %s\n", paradigm->name, c10k_version);
            exit(0);
        case ':':
            options_usage_error(paradigm, "missing value for", argv[optind - 1]);
        default:
            if (option >= OPT_PARADIGM && option < OPT_PARADIGM + own_count) {
                const struct paradigm_option *own = &paradigm->options[option - OPT_PARADIGM];
                ok = own->choices ? parse_choice(optarg, own->choices, own->value)
                                  : parse_int(optarg, own->min, own->max, own->value);
                break;
            }
            options_usage_error(paradigm, "unknown option", argv[optind - 1]);
        }
        if (!ok)
            options_usage_error(paradigm, "bad value", optarg);
    }
    if (optind < argc)
        options_usage_error(paradigm, "unexpected argument", argv[optind]);
}
