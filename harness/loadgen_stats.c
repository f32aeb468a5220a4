/* loadgen_stats.c - per-thread statistics: the histograms of each path and the per-second
 * timeline, and the merge of the threads' timelines.
 *
 * Each thread owns its statistics outright, so recording needs no lock and no atomic operation;
 * the main thread adds them up after the threads have been joined. A thread records a response in
 * its path's histogram only; the all-path histograms are the sum of the paths', made at the merge.
 *
 * The timeline cannot keep a histogram for every second and path of a long run, so a thread fills
 * one coarse histogram (TIMELINE_DIGITS) per path for the current second and, when the second is
 * over, keeps only its non-empty counters (8 bytes each) and its exact maximum. The timeline
 * covers at most MAX_TIMELINE_SECONDS. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static int path_stats_init(struct path_stats *path, bool open_loop)
{
    int error;
    if ((error = hdr_init(&path->response, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0)
        return error;
    if (!open_loop)
        return 0;
    if ((error = hdr_init(&path->service, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0 ||
        (error = hdr_init(&path->lag, LATENCY_HIGHEST_US, LATENCY_DIGITS)) != 0)
        return error;
    return 0;
}

static int timeline_init(struct timeline *timeline, const struct config *config)
{
    timeline->path_count = config->path_count;
    for (int p = 0; p < config->path_count; p++) {
        int error = hdr_init(&timeline->current[p], LATENCY_HIGHEST_US, TIMELINE_DIGITS);
        if (error != 0)
            return error;
    }
    double seconds = ceil(config->duration_s);
    if (seconds < 1)
        seconds = 1;
    timeline->truncated = seconds > MAX_TIMELINE_SECONDS;
    timeline->second_count = timeline->truncated ? MAX_TIMELINE_SECONDS : (size_t)seconds;
    timeline->seconds = calloc(timeline->second_count * (size_t)config->path_count, sizeof *timeline->seconds);
    timeline->loose_errors = calloc(timeline->second_count, sizeof *timeline->loose_errors);
    if (timeline->seconds == NULL || timeline->loose_errors == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < timeline->second_count * (size_t)config->path_count; i++)
        timeline->seconds[i].max_us = -1;
    timeline->current_second = -1;
    return 0;
}

int run_stats_init(struct run_stats *stats, const struct config *config, bool merged)
{
    memset(stats, 0, sizeof *stats);
    bool open_loop = config->rate > 0;
    int error = 0;
    for (int p = 0; p < config->path_count && error == 0; p++)
        error = path_stats_init(&stats->paths[p], open_loop);
    if (error == 0 && merged) {
        if ((error = hdr_init(&stats->response, LATENCY_HIGHEST_US, LATENCY_DIGITS)) == 0 &&
            (error = hdr_init(&stats->service, LATENCY_HIGHEST_US, LATENCY_DIGITS)) == 0)
            error = hdr_init(&stats->lag, LATENCY_HIGHEST_US, LATENCY_DIGITS);
    }
    if (error == 0 && !merged)
        error = timeline_init(&stats->timeline, config);
    if (error != 0)
        run_stats_destroy(stats);
    return error;
}

void run_stats_destroy(struct run_stats *stats)
{
    hdr_destroy(&stats->response);
    hdr_destroy(&stats->service);
    hdr_destroy(&stats->lag);
    for (int p = 0; p < MAX_PATHS; p++) {
        hdr_destroy(&stats->paths[p].response);
        hdr_destroy(&stats->paths[p].service);
        hdr_destroy(&stats->paths[p].lag);
        hdr_destroy(&stats->timeline.current[p]);
    }
    free(stats->timeline.seconds);
    free(stats->timeline.loose_errors);
    free(stats->timeline.entries);
    stats->timeline.seconds = NULL;
    stats->timeline.loose_errors = NULL;
    stats->timeline.entries = NULL;
}

/* Keeps the non-empty counters and the maximum of the finished second's histograms and empties
 * them for the next. */
void timeline_flush(struct timeline *timeline)
{
    if (timeline->current_second < 0)
        return;
    for (int p = 0; p < timeline->path_count; p++) {
        struct hdr *current = &timeline->current[p];
        if (current->total == 0)
            continue;
        struct second_stats *second =
            &timeline->seconds[(size_t)timeline->current_second * (size_t)timeline->path_count + (size_t)p];
        second->first_entry = (uint32_t)timeline->entry_count;
        second->max_us = current->max;
        for (int32_t i = hdr_next_nonzero(current, 0); i >= 0; i = hdr_next_nonzero(current, i + 1)) {
            if (timeline->entry_count == timeline->entry_cap) {
                size_t cap = timeline->entry_cap ? timeline->entry_cap * 2 : 1024;
                struct sparse_entry *grown = realloc(timeline->entries, cap * sizeof *grown);
                if (grown == NULL)
                    break; /* the second keeps what fitted; its percentiles are then approximate */
                timeline->entries = grown;
                timeline->entry_cap = cap;
            }
            uint64_t count = current->counts[i];
            timeline->entries[timeline->entry_count++] =
                (struct sparse_entry){.index = i, .count = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count};
        }
        second->entry_count = (uint32_t)(timeline->entry_count - second->first_entry);
        hdr_reset(current);
    }
}

bool timeline_move_to(struct timeline *timeline, int64_t second)
{
    if (second < 0)
        second = 0;
    if ((size_t)second >= timeline->second_count) {
        if (timeline->truncated) {
            timeline_flush(timeline);
            timeline->current_second = -1;
            return false;
        }
        /* Just past the end of the window (the last batch of events): the last second. */
        second = (int64_t)timeline->second_count - 1;
    }
    /* A thread's clock only moves forward, so seconds arrive in order; clamp just in case. */
    if (second < timeline->current_second)
        second = timeline->current_second;
    if (second != timeline->current_second) {
        timeline_flush(timeline);
        timeline->current_second = second;
    }
    return true;
}

/* --- the merge -------------------------------------------------------------------------------- */

/* One second's histogram added up from sparse copies: dense counters, and the list of the
 * non-empty ones, which is all that is read (sorted) and all that is cleared afterwards. */
struct sparse_sum {
    uint64_t *counts;
    int32_t *used;
    size_t used_len;
    uint64_t total;
    int64_t max_us;
};

static int sparse_sum_init(struct sparse_sum *sum, const struct hdr *layout)
{
    sum->counts = calloc((size_t)layout->counts_len, sizeof *sum->counts);
    sum->used = malloc((size_t)layout->counts_len * sizeof *sum->used);
    sum->used_len = 0;
    sum->total = 0;
    sum->max_us = -1;
    return sum->counts && sum->used ? 0 : -ENOMEM;
}

static void sparse_sum_add(struct sparse_sum *sum, int32_t index, uint64_t count)
{
    if (sum->counts[index] == 0)
        sum->used[sum->used_len++] = index;
    sum->counts[index] += count;
    sum->total += count;
}

static int compare_index(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* As hdr_value_at_percentile: the highest value of the bucket holding the rank, at most the max. */
static int64_t sparse_percentile(const struct sparse_sum *sum, const struct hdr *layout, double percentile)
{
    uint64_t rank = (uint64_t)ceil(percentile / 100.0 * (double)sum->total);
    if (rank < 1)
        rank = 1;
    if (rank > sum->total)
        rank = sum->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < sum->used_len; i++) {
        seen += sum->counts[sum->used[i]];
        if (seen >= rank) {
            int64_t value = hdr_highest_at_index(layout, sum->used[i]);
            return value < sum->max_us ? value : sum->max_us;
        }
    }
    return sum->max_us;
}

/* Fills in the point's percentiles and maximum, and empties the sum. */
static void sparse_sum_take(struct sparse_sum *sum, const struct hdr *layout, struct timeline_point *point)
{
    point->p50_us = point->p99_us = point->max_us = -1;
    if (sum->total > 0) {
        qsort(sum->used, sum->used_len, sizeof *sum->used, compare_index);
        point->p50_us = sparse_percentile(sum, layout, 50);
        point->p99_us = sparse_percentile(sum, layout, 99);
        point->max_us = sum->max_us;
    }
    for (size_t i = 0; i < sum->used_len; i++)
        sum->counts[sum->used[i]] = 0;
    sum->used_len = 0;
    sum->total = 0;
    sum->max_us = -1;
}

int timeline_merge(const struct timeline *const *timelines, int count, size_t seconds, struct timeline_point *points,
                   struct timeline_point *path_points)
{
    const struct hdr *layout = &timelines[0]->current[0];
    int path_count = timelines[0]->path_count;
    struct sparse_sum path_sum = {0}, all_sum = {0};
    int error = sparse_sum_init(&path_sum, layout);
    if (error == 0)
        error = sparse_sum_init(&all_sum, layout);
    for (size_t s = 0; s < seconds && error == 0; s++) {
        struct timeline_point *point = &points[s];
        *point = (struct timeline_point){0};
        for (int t = 0; t < count; t++)
            point->errors += timelines[t]->loose_errors[s];
        for (int p = 0; p < path_count; p++) {
            struct timeline_point *path_point = &path_points[s * (size_t)path_count + (size_t)p];
            *path_point = (struct timeline_point){0};
            for (int t = 0; t < count; t++) {
                const struct timeline *timeline = timelines[t];
                const struct second_stats *second = &timeline->seconds[s * (size_t)path_count + (size_t)p];
                path_point->completed += second->completed;
                path_point->errors += second->errors;
                for (uint32_t e = 0; e < second->entry_count; e++) {
                    const struct sparse_entry *entry = &timeline->entries[second->first_entry + e];
                    sparse_sum_add(&path_sum, entry->index, entry->count);
                    sparse_sum_add(&all_sum, entry->index, entry->count);
                }
                if (second->max_us > path_sum.max_us)
                    path_sum.max_us = second->max_us;
                if (second->max_us > all_sum.max_us)
                    all_sum.max_us = second->max_us;
            }
            sparse_sum_take(&path_sum, layout, path_point);
            point->completed += path_point->completed;
            point->errors += path_point->errors;
        }
        sparse_sum_take(&all_sum, layout, point);
    }
    free(path_sum.counts);
    free(path_sum.used);
    free(all_sum.counts);
    free(all_sum.used);
    return error;
}
