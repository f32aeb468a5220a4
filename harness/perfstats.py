"""perfstats.py - the statistics of perfcheck: paired log-ratios, the exact one-sided Wilcoxon
signed-rank test, and the Hodges-Lehmann estimate with its exact confidence interval.

Why these: benchmark noise on a shared machine is neither normal nor symmetric in the raw
numbers, but the log of a paired ratio (candidate over base, measured back to back) is close to
symmetric about the true effect, which is what the signed-rank test assumes. It uses only ranks,
so one disturbed pair (the host stole the CPU for a second) moves the result by one rank, not by
its size. The Hodges-Lehmann estimate (the median of the Walsh averages) is the estimate that
belongs to the test, and its interval comes from the same distribution, so the two never
disagree.
"""
import math


def log_ratios(base, candidate):
    """r_i = ln(candidate_i / base_i) for each pair; pairs with a non-positive value are skipped."""
    return [math.log(c / b) for b, c in zip(base, candidate) if b > 0 and c > 0]


def _ranks(values):
    """Ranks of values (1-based), ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _signed_rank_counts(doubled_ranks):
    """counts[s]: how many of the 2^n sign assignments give a doubled W+ of s (exact, with ties)."""
    counts = [1]
    for rank in doubled_ranks:
        grown = counts + [0] * rank
        for s, ways in enumerate(counts):
            grown[s + rank] += ways
        counts = grown
    return counts


def wilcoxon_greater(diffs):
    """Exact one-sided p of the signed-rank test that the differences are centred above 0.

    Zero differences are dropped (Wilcoxon's rule); ties among the rest get mean ranks, and the
    p-value is exact for those ranks (the permutation distribution of W+, not a normal
    approximation). Returns (p, n used, W+)."""
    nonzero = [d for d in diffs if d != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0, 0, 0.0
    ranks = _ranks([abs(d) for d in nonzero])
    doubled = [int(round(2 * r)) for r in ranks]
    w_plus_doubled = sum(r for r, d in zip(doubled, nonzero) if d > 0)
    counts = _signed_rank_counts(doubled)
    at_least = sum(counts[w_plus_doubled:])
    return at_least / 2 ** n, n, w_plus_doubled / 2


def hodges_lehmann(diffs, confidence=0.95):
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j, and the two-sided interval of the
    given confidence: the k-th smallest and k-th largest Walsh averages, k from the exact
    signed-rank distribution (no ties assumed for the interval). Returns (estimate, low, high);
    with too few pairs for that confidence the interval is the whole range."""
    n = len(diffs)
    if n == 0:
        return 0.0, 0.0, 0.0
    walsh = sorted((diffs[i] + diffs[j]) / 2 for i in range(n) for j in range(i, n))
    m = len(walsh)
    estimate = (walsh[(m - 1) // 2] + walsh[m // 2]) / 2
    # The largest k with P(W+ <= k - 1) <= alpha/2: the interval [walsh[k-1], walsh[m-k]].
    counts = _signed_rank_counts([2 * r for r in range(1, n + 1)])  # doubled ranks 2..2n
    total = 2 ** n
    alpha_half = (1 - confidence) / 2
    cumulative, k = 0, 0
    for w in range(m + 1):  # W+ takes integer values 0..m
        cumulative += counts[2 * w]
        if cumulative / total > alpha_half:
            k = w  # P(W+ <= w - 1) <= alpha/2 < P(W+ <= w)
            break
    if k < 1:
        return estimate, walsh[0], walsh[-1]
    return estimate, walsh[k - 1], walsh[m - k]


def median(values):
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return (s[(n - 1) // 2] + s[n // 2]) / 2


def quartiles(values):
    """Q1 and Q3 by linear interpolation between order statistics (numpy's default)."""
    s = sorted(values)
    n = len(s)

    def at(q):
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return at(0.25), at(0.75)
