/* loadgen_mix.h - which path each request of a --mix goes to: deterministic and evenly spread.
 *
 * Path i should get the share w_i / MIX_WHOLE of the requests (path 0, the URL's own path, gets
 * the rest). After n requests it has had a_i; its slack is n * w_i - a_i * MIX_WHOLE. Choosing
 * the path with the largest slack each time (smooth weighted round-robin) can fall more than one
 * request behind with three or more paths, so this is Tijdeman's rule for the "chairman assignment
 * problem" (1980): among the paths at least delta = 1 / (2(m-1)) ahead of their last turn, the
 * one whose next turn is due soonest (earliest deadline first). Every path then stays within
 * 1 - delta < 1 request of its exact share after every request, which with one sequence per
 * thread makes a run's per-path counts exact to within one request per thread and path.
 *
 * Integers only: the slack of each path stays within (-MIX_WHOLE, MIX_WHOLE], so every product
 * below fits easily in 64 bits. Costs one pass over the paths per request, and only with --mix. */
#ifndef LOADGEN_MIX_H
#define LOADGEN_MIX_H

#include <stdint.h>

#define MAX_PATHS 16              /* the URL's path and up to 15 --mix paths */
#define MIX_WHOLE 1000000         /* 100 %: shares are in millionths (percent with 4 decimals) */

struct mix_state {
    int count;                    /* paths, >= 1 */
    int64_t weight[MAX_PATHS];    /* millionths, summing to MIX_WHOLE */
    int64_t slack[MAX_PATHS];
};

static inline void mix_init(struct mix_state *mix, int count, const int32_t *weight)
{
    mix->count = count;
    for (int i = 0; i < count; i++) {
        mix->weight[i] = weight[i];
        mix->slack[i] = 0;
    }
}

/* The path of the next request. */
static inline int mix_next(struct mix_state *mix)
{
    if (mix->count == 1)
        return 0;
    const int64_t twice = 2 * (int64_t)(mix->count - 1); /* 1 / delta */
    int chosen = -1;
    int64_t chosen_key = 0;
    for (int i = 0; i < mix->count; i++) {
        int64_t slack = mix->slack[i] += mix->weight[i];
        if (twice * slack < MIX_WHOLE)
            continue; /* less than delta ahead: its turn would put it too far ahead */
        /* Requests until its next turn is due, times twice * weight: compare key_i / w_i. */
        int64_t key = (twice - 1) * MIX_WHOLE - twice * slack;
        if (chosen < 0 || key * mix->weight[chosen] < chosen_key * mix->weight[i]) {
            chosen = i;
            chosen_key = key;
        }
    }
    /* The slacks add up to MIX_WHOLE after the increments, so the largest is at least
     * MIX_WHOLE / count >= delta * MIX_WHOLE: some path is always eligible. */
    if (chosen < 0)
        chosen = 0;
    mix->slack[chosen] -= MIX_WHOLE;
    return chosen;
}

#endif
