/* loadgen_stats.c - per-thread statistics: three histograms and the per-second timeline.
 *
 * Each thread owns its statistics outright, so recording needs no lock and no atomic operation;
 * the main thread adds them up after the threads have been joined. The timeline cannot keep a
 * full histogram for every second of a long run (190 KB each), so a thread fills one histogram for
 * the current second and, when the second is over, keeps only its non-empty counters. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

int run_stats_init(struct run_stats *stats, const struct config *config)
{
    memset(stats, 0, sizeof *stats);
    int error;
    if ((error = hdr_init(&stats->response, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0 ||
        (error = hdr_init(&stats->service, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0 ||
        (error = hdr_init(&stats->lag, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0 ||
        (error = hdr_init(&stats->timeline.current, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0) {
        run_stats_destroy(stats);
        return error;
    }
    double seconds = ceil(config->duration_s);
    stats->timeline.second_count = seconds < 1 ? 1 : (size_t)seconds;
    stats->timeline.seconds = calloc(stats->timeline.second_count, sizeof *stats->timeline.seconds);
    if (stats->timeline.seconds == NULL) {
        run_stats_destroy(stats);
        return -ENOMEM;
    }
    stats->timeline.current_second = -1;
    return 0;
}

void run_stats_destroy(struct run_stats *stats)
{
    hdr_destroy(&stats->response);
    hdr_destroy(&stats->service);
    hdr_destroy(&stats->lag);
    hdr_destroy(&stats->timeline.current);
    free(stats->timeline.seconds);
    free(stats->timeline.entries);
    stats->timeline.seconds = NULL;
    stats->timeline.entries = NULL;
}

/* Keeps the non-empty counters of the finished second and empties the histogram for the next. */
void timeline_flush(struct timeline *timeline)
{
    if (timeline->current_second < 0 || timeline->current.total == 0)
        return;
    struct second_stats *second = &timeline->seconds[timeline->current_second];
    second->first_entry = (uint32_t)timeline->entry_count;
    for (int32_t i = hdr_next_nonzero(&timeline->current, 0); i >= 0;
         i = hdr_next_nonzero(&timeline->current, i + 1)) {
        if (timeline->entry_count == timeline->entry_cap) {
            size_t cap = timeline->entry_cap ? timeline->entry_cap * 2 : 1024;
            struct sparse_entry *grown = realloc(timeline->entries, cap * sizeof *grown);
            if (grown == NULL)
                break; /* the second keeps what fitted; its percentiles are then approximate */
            timeline->entries = grown;
            timeline->entry_cap = cap;
        }
        uint64_t count = timeline->current.counts[i];
        timeline->entries[timeline->entry_count++] =
            (struct sparse_entry){.index = i, .count = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count};
    }
    second->entry_count = (uint32_t)(timeline->entry_count - second->first_entry);
    hdr_reset(&timeline->current);
}

int timeline_record(struct timeline *timeline, int64_t second, int64_t latency_us)
{
    if (second < 0)
        second = 0;
    if ((size_t)second >= timeline->second_count)
        second = (int64_t)timeline->second_count - 1;
    /* A thread's clock only moves forward, so seconds arrive in order; clamp just in case. */
    if (second < timeline->current_second)
        second = timeline->current_second;
    if (second != timeline->current_second) {
        timeline_flush(timeline);
        timeline->current_second = second;
    }
    if (latency_us >= 0)
        hdr_record(&timeline->current, latency_us);
    return (int)second;
}
