/* stats.c - see stats.h. */
#include "stats.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>

#include "log.h"

_Thread_local uint64_t stats_local[STAT_COUNT];

static _Atomic uint64_t *stats_totals;

static const char *const stats_names[STAT_COUNT] = {
    [STAT_ACCEPTED] = "accepted",          [STAT_REQUESTS] = "requests",
    [STAT_SHED] = "shed",                  [STAT_REFUSED] = "refused",
    [STAT_STATUS_400] = "status400",
    [STAT_STATUS_404] = "status404",       [STAT_STATUS_405] = "status405",
    [STAT_STATUS_408] = "status408",       [STAT_STATUS_413] = "status413",
    [STAT_STATUS_431] = "status431",       [STAT_STATUS_501] = "status501",
    [STAT_STATUS_503] = "status503",       [STAT_STATUS_505] = "status505",
    [STAT_IDLE_TIMEOUTS] = "idle_timeouts", [STAT_SEND_TIMEOUTS] = "send_timeouts",
    [STAT_RESETS] = "resets",              [STAT_IO_ERRORS] = "io_errors",
    [STAT_DROPPED] = "dropped",
};

void stats_count_response(int status)
{
    stats_local[STAT_REQUESTS]++;
    switch (status) {
    case 400: stats_local[STAT_STATUS_400]++; break;
    case 404: stats_local[STAT_STATUS_404]++; break;
    case 405: stats_local[STAT_STATUS_405]++; break;
    case 408: stats_local[STAT_STATUS_408]++; break;
    case 413: stats_local[STAT_STATUS_413]++; break;
    case 431: stats_local[STAT_STATUS_431]++; break;
    case 501: stats_local[STAT_STATUS_501]++; break;
    case 503: stats_local[STAT_STATUS_503]++; break;
    case 505: stats_local[STAT_STATUS_505]++; break;
    default: break;
    }
}

void stats_init(void)
{
    void *shared = mmap(NULL, sizeof(uint64_t) * STAT_COUNT, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        die("mmap(stats): %m");
    stats_totals = shared;
}

void stats_flush(void)
{
    for (int i = 0; i < STAT_COUNT; i++) {
        if (stats_local[i] != 0)
            atomic_fetch_add(&stats_totals[i], stats_local[i]);
        stats_local[i] = 0;
    }
}

void stats_print(void)
{
    char line[1024];
    size_t len = 0;
    stats_flush();
    len += (size_t)snprintf(line, sizeof line, "stats:");
    for (int i = 0; i < STAT_COUNT && len < sizeof line; i++)
        len += (size_t)snprintf(line + len, sizeof line - len, " %s=%llu", stats_names[i],
                                (unsigned long long)atomic_load(&stats_totals[i]));
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}
