#!/usr/bin/env python3
"""test_perfstats.py - perfcheck's statistics against known values.

The exact signed-rank probabilities are checked against a published table (the lower tail for
n = 10: P(T <= 8) = 0.0244, P(T <= 10) = 0.0420, P(T <= 11) = 0.0527; and the smallest p of n
pairs, 2^-n), and against brute-force enumeration of every sign assignment, ties included; the
Hodges-Lehmann interval against the textbook rule for n = 10 (the 9th smallest and 9th largest
of the 55 Walsh averages)."""
import itertools
import math
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import perfstats  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check  # noqa: E402
checks.prefix = "perfstats: "





def brute_force_p(diffs):
    nonzero = [d for d in diffs if d != 0]
    ranks = perfstats._ranks([abs(d) for d in nonzero])
    observed = sum(r for r, d in zip(ranks, nonzero) if d > 0)
    at_least = sum(1 for signs in itertools.product((False, True), repeat=len(nonzero))
                   if sum(r for r, positive in zip(ranks, signs) if positive) >= observed - 1e-9)
    return at_least / 2 ** len(nonzero)


def main():
    # Lower tail of T for n = 10 from the table: P(W+ >= 55 - t) = P(T <= t) by symmetry. A set of
    # differences whose positive ranks sum to 55 - t: all positive but ranks summing to t negative.
    for t, table_p in ((8, 0.0244), (10, 0.0420), (11, 0.0527)):
        negative_ranks = {8: (8,), 10: (10,), 11: (1, 10)}[t]
        diffs = [(-r if r in negative_ranks else r) * 0.01 for r in range(1, 11)]
        p, n, w_plus = perfstats.wilcoxon_greater(diffs)
        check(f"table_n10_T{t}", n == 10 and w_plus == 55 - t and abs(p - table_p) < 0.00005,
              f"p={p:.5f} n={n} W+={w_plus}, table {table_p}")
    for n in (5, 10, 12):
        p, _, _ = perfstats.wilcoxon_greater([0.01 * (i + 1) for i in range(n)])
        check(f"all_{n}_positive_is_2^-{n}", p == 2.0 ** -n, f"p={p}")
    p, n, _ = perfstats.wilcoxon_greater([0.0, 0.0, 0.01])
    check("zeros_dropped", n == 1 and p == 0.5, f"p={p} n={n}")
    rng = random.Random(20261202)
    worst = 0.0
    for trial in range(40):
        n = rng.randint(3, 11)
        # one decimal: plenty of ties among the absolute values
        diffs = [round(rng.gauss(0.2, 1.0), 1) or 0.1 for _ in range(n)]
        worst = max(worst, abs(perfstats.wilcoxon_greater(diffs)[0] - brute_force_p(diffs)))
    check("exact_with_ties_matches_enumeration", worst < 1e-12, f"largest difference {worst}")

    diffs = [0.01 * i for i in range(1, 11)]
    walsh = sorted((diffs[i] + diffs[j]) / 2 for i in range(10) for j in range(i, 10))
    estimate, low, high = perfstats.hodges_lehmann(diffs)
    check("hodges_lehmann_n10", math.isclose(estimate, 0.055) and low == walsh[8] and high == walsh[46],
          f"estimate {estimate} interval {low}..{high}, expected {walsh[8]}..{walsh[46]}")
    estimate, low, high = perfstats.hodges_lehmann([0.05, 0.07])
    check("too_few_pairs_whole_range", low == 0.05 and high == 0.07, f"{low}..{high}")
    q1, q3 = perfstats.quartiles([1, 2, 3, 4, 5])
    check("quartiles", (q1, q3) == (2, 4), f"{q1} {q3}")
    r = perfstats.log_ratios([10, 10], [11, 9])
    check("log_ratios", math.isclose(r[0], math.log(1.1)) and math.isclose(r[1], math.log(0.9)), str(r))

    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
