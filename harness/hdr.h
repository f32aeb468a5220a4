/* hdr.h - a High Dynamic Range histogram of non-negative integers (microseconds in loadgen).
 *
 * The layout is HdrHistogram's: values are grouped in buckets whose width doubles with each power
 * of two, and each bucket is split into enough sub-buckets that any value is stored within the
 * requested number of significant decimal digits. Recording is a few shifts and an increment, so
 * it can be done for every request; two histograms with the same layout merge by adding counts.
 * Mean and standard deviation are kept exactly (from the raw values), not from the buckets. */
#ifndef LOADGEN_HDR_H
#define LOADGEN_HDR_H

#include <stdbool.h>
#include <stdint.h>

struct hdr {
    int64_t highest_trackable;  /* larger values are recorded as this value and counted in clamped */
    int significant_digits;
    int sub_bucket_half_count_magnitude;
    int32_t sub_bucket_half_count;
    int32_t sub_bucket_count;
    int64_t sub_bucket_mask;
    int32_t bucket_count;
    int32_t counts_len;
    uint64_t total;
    uint64_t clamped;
    int64_t min;                /* exact; INT64_MAX while empty */
    int64_t max;                /* exact; 0 while empty */
    double sum;                 /* exact sums, so mean and stdev do not depend on bucket width */
    double sum_squares;
    uint64_t *counts;
};

/* Sets up an empty histogram for 0..highest_trackable (>= 2) with 1..5 significant digits.
 * Returns 0, -EINVAL for a bad argument or -ENOMEM. */
int hdr_init(struct hdr *hdr, int64_t highest_trackable, int significant_digits);
void hdr_destroy(struct hdr *hdr);
/* Empties the histogram, keeping its layout and memory. */
void hdr_reset(struct hdr *hdr);

/* Index of the counter that holds value (0 <= value <= highest_trackable). Inline: it runs for
 * every request. */
static inline int32_t hdr_index_of(const struct hdr *hdr, int64_t value)
{
    /* The bucket is found from the position of the highest set bit, with the lowest bucket
     * forced to cover the whole first sub-bucket range by or-ing in the mask. */
    int pow2_ceiling = 64 - __builtin_clzll((uint64_t)(value | hdr->sub_bucket_mask));
    int32_t bucket = pow2_ceiling - (hdr->sub_bucket_half_count_magnitude + 1);
    int32_t sub_bucket = (int32_t)(value >> bucket);
    return ((bucket + 1) << hdr->sub_bucket_half_count_magnitude) + (sub_bucket - hdr->sub_bucket_half_count);
}

static inline void hdr_record(struct hdr *hdr, int64_t value)
{
    if (value < 0)
        value = 0;
    if (value > hdr->highest_trackable) {
        value = hdr->highest_trackable;
        hdr->clamped++;
    }
    hdr->counts[hdr_index_of(hdr, value)]++;
    hdr->total++;
    if (value < hdr->min)
        hdr->min = value;
    if (value > hdr->max)
        hdr->max = value;
    hdr->sum += (double)value;
    hdr->sum_squares += (double)value * (double)value;
}

/* Adds every count of from into to. Returns 0, or -EINVAL when the layouts differ. */
int hdr_add(struct hdr *to, const struct hdr *from);
/* Adds count samples at counter index (as found by hdr_index_of or hdr_next_nonzero): used to
 * rebuild a histogram from a sparse copy. Min and max become the bucket's bounds and the sums use
 * the bucket's lowest value, so only percentiles of such a histogram are exact to its precision. */
void hdr_add_at_index(struct hdr *hdr, int32_t index, uint64_t count);

/* The value below or at which percentile % of the samples lie (0 < percentile <= 100), as the
 * highest value equivalent to the bucket that holds it, but never above the exact maximum.
 * 0 when the histogram is empty. */
int64_t hdr_value_at_percentile(const struct hdr *hdr, double percentile);
/* How many samples are greater than value (to the histogram's precision: whole buckets above). */
uint64_t hdr_count_above(const struct hdr *hdr, int64_t value);
double hdr_mean(const struct hdr *hdr);
double hdr_stdev(const struct hdr *hdr);

/* Iteration over non-empty counters: the first index >= from with a non-zero count, or -1. */
int32_t hdr_next_nonzero(const struct hdr *hdr, int32_t from);
/* The lowest and highest value stored at a counter index. */
int64_t hdr_lowest_at_index(const struct hdr *hdr, int32_t index);
int64_t hdr_highest_at_index(const struct hdr *hdr, int32_t index);

#endif
