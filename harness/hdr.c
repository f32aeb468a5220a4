/* hdr.c - HDR histogram (see hdr.h). The arithmetic follows HdrHistogram_c with the lowest
 * discernible value fixed at 1, which is all loadgen needs (1 µs resolution). */
#include "hdr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int hdr_init(struct hdr *hdr, int64_t highest_trackable, int significant_digits)
{
    memset(hdr, 0, sizeof *hdr);
    if (highest_trackable < 2 || significant_digits < 1 || significant_digits > 5)
        return -EINVAL;
    /* Enough sub-buckets that two adjacent values at the top of a bucket still differ in the
     * requested digit: 2 * 10^digits, rounded up to a power of two. */
    int64_t single_unit_range = 2;
    for (int i = 0; i < significant_digits; i++)
        single_unit_range *= 10;
    int magnitude = 0;
    while ((INT64_C(1) << magnitude) < single_unit_range)
        magnitude++;
    hdr->sub_bucket_half_count_magnitude = magnitude - 1;
    hdr->sub_bucket_count = INT32_C(1) << magnitude;
    hdr->sub_bucket_half_count = hdr->sub_bucket_count / 2;
    hdr->sub_bucket_mask = hdr->sub_bucket_count - 1;

    int64_t smallest_untrackable = hdr->sub_bucket_count;
    int32_t buckets = 1;
    while (smallest_untrackable <= highest_trackable) {
        if (smallest_untrackable > INT64_MAX / 2) {
            buckets++;
            break;
        }
        smallest_untrackable <<= 1;
        buckets++;
    }
    hdr->bucket_count = buckets;
    hdr->counts_len = (buckets + 1) * hdr->sub_bucket_half_count;
    hdr->highest_trackable = highest_trackable;
    hdr->significant_digits = significant_digits;
    hdr->counts = calloc((size_t)hdr->counts_len, sizeof *hdr->counts);
    if (hdr->counts == NULL)
        return -ENOMEM;
    hdr->min = INT64_MAX;
    return 0;
}

void hdr_destroy(struct hdr *hdr)
{
    free(hdr->counts);
    hdr->counts = NULL;
}

void hdr_reset(struct hdr *hdr)
{
    memset(hdr->counts, 0, (size_t)hdr->counts_len * sizeof *hdr->counts);
    hdr->total = 0;
    hdr->clamped = 0;
    hdr->min = INT64_MAX;
    hdr->max = 0;
    hdr->sum = 0;
    hdr->sum_squares = 0;
}

int hdr_add(struct hdr *to, const struct hdr *from)
{
    if (to->counts_len != from->counts_len || to->sub_bucket_count != from->sub_bucket_count)
        return -EINVAL;
    for (int32_t i = 0; i < from->counts_len; i++)
        to->counts[i] += from->counts[i];
    to->total += from->total;
    to->clamped += from->clamped;
    if (from->min < to->min)
        to->min = from->min;
    if (from->max > to->max)
        to->max = from->max;
    to->sum += from->sum;
    to->sum_squares += from->sum_squares;
    return 0;
}

int64_t hdr_lowest_at_index(const struct hdr *hdr, int32_t index)
{
    int32_t bucket = (index >> hdr->sub_bucket_half_count_magnitude) - 1;
    int32_t sub_bucket = (index & (hdr->sub_bucket_half_count - 1)) + hdr->sub_bucket_half_count;
    if (bucket < 0) {
        sub_bucket -= hdr->sub_bucket_half_count;
        bucket = 0;
    }
    return (int64_t)sub_bucket << bucket;
}

int64_t hdr_highest_at_index(const struct hdr *hdr, int32_t index)
{
    int32_t bucket = (index >> hdr->sub_bucket_half_count_magnitude) - 1;
    if (bucket < 0)
        bucket = 0;
    return hdr_lowest_at_index(hdr, index) + (INT64_C(1) << bucket) - 1;
}

void hdr_add_at_index(struct hdr *hdr, int32_t index, uint64_t count)
{
    if (index < 0 || index >= hdr->counts_len || count == 0)
        return;
    int64_t lowest = hdr_lowest_at_index(hdr, index);
    int64_t highest = hdr_highest_at_index(hdr, index);
    hdr->counts[index] += count;
    hdr->total += count;
    if (lowest < hdr->min)
        hdr->min = lowest;
    if (highest > hdr->max)
        hdr->max = highest;
    hdr->sum += (double)lowest * (double)count;
    hdr->sum_squares += (double)lowest * (double)lowest * (double)count;
}

int64_t hdr_value_at_percentile(const struct hdr *hdr, double percentile)
{
    if (hdr->total == 0)
        return 0;
    if (percentile > 100)
        percentile = 100;
    /* The rank of the sample asked for, rounded up, and at least the first sample. */
    uint64_t rank = (uint64_t)ceil(percentile / 100.0 * (double)hdr->total);
    if (rank < 1)
        rank = 1;
    if (rank > hdr->total)
        rank = hdr->total;
    uint64_t seen = 0;
    for (int32_t i = 0; i < hdr->counts_len; i++) {
        seen += hdr->counts[i];
        if (seen >= rank) {
            int64_t value = hdr_highest_at_index(hdr, i);
            return value < hdr->max ? value : hdr->max;
        }
    }
    return hdr->max;
}

uint64_t hdr_count_above(const struct hdr *hdr, int64_t value)
{
    if (value >= hdr->highest_trackable)
        return 0;
    int32_t first = hdr_index_of(hdr, value < 0 ? 0 : value) + 1;
    uint64_t count = 0;
    for (int32_t i = first; i < hdr->counts_len; i++)
        count += hdr->counts[i];
    return count;
}

double hdr_mean(const struct hdr *hdr)
{
    return hdr->total ? hdr->sum / (double)hdr->total : 0;
}

double hdr_stdev(const struct hdr *hdr)
{
    if (hdr->total < 2)
        return 0;
    double mean = hdr_mean(hdr);
    double variance = hdr->sum_squares / (double)hdr->total - mean * mean;
    return variance > 0 ? sqrt(variance) : 0;
}

int32_t hdr_next_nonzero(const struct hdr *hdr, int32_t from)
{
    for (int32_t i = from < 0 ? 0 : from; i < hdr->counts_len; i++)
        if (hdr->counts[i] != 0)
            return i;
    return -1;
}
