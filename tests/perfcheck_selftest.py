#!/usr/bin/env python3
"""perfcheck_selftest.py - perfcheck must find a slowdown of known size and must not invent one.

On epoll-lt, plaintext c=64, prebuilt binaries (no git, no callgrind, to keep it short):
1. A/A, bin/ against itself: no FAIL, exit status 0; its base median gives the CPU per request;
2. a candidate built with a busy wait of 10 % of that per request (-DC10K_INJECT_NS): its CPU per
   request must be a confirmed FAIL, exit status 1. Should perfcheck mark that run too noisy to
   judge, it is measured once more with 24 pairs, which must FAIL;
3. a candidate with 1 %: no FAIL on CPU per request (below the 3 % floor), exit status 0.
Timing is left to perfcheck's statistics (base and candidate measured at the same moment, in
pairs); nothing here times itself.
How often a 10 % or 3 % slowdown is caught is measured by `make perfcheck-power`, not here."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check  # noqa: E402
checks.prefix = "perfcheck: "

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERFCHECK = [sys.executable, os.path.join(ROOT, "harness", "perfcheck"), "--servers", "epoll-lt",
             "--scenarios", "plaintext", "--no-callgrind", "--base-bin", os.path.join(ROOT, "bin")]


def perfcheck(cand_bin, pairs, json_path):
    result = subprocess.run(PERFCHECK + ["--cand-bin", cand_bin, "--pairs", str(pairs), "--json", json_path],
                            capture_output=True, text=True, timeout=600)
    try:
        with open(json_path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        report = {"rows": []}
    cpu = next((r for r in report["rows"] if r["metric"] == "cpu_us_per_request"), None)
    return result.returncode, cpu, result.stdout + result.stderr[-1500:]


def build_injected(ns, work):
    build = os.path.join(work, f"inject{ns}")
    bindir = os.path.join(build, "bin")
    subprocess.run(["make", "-s", "-C", ROOT, "-j2", f"BUILD={build}", f"BINDIR={bindir}",
                    f"EXTRA_CFLAGS=-DC10K_INJECT_NS={ns}", f"{bindir}/epoll-lt", f"{bindir}/loadgen"],
                   check=True, capture_output=True, timeout=300)
    return bindir


def main():
    for bad in (["--bogus"], ["--pairs", "1"], ["--scenarios", "nosuch"]):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "harness", "perfcheck"), *bad],
                                capture_output=True, text=True, timeout=60)
        check(f"bad_flag {' '.join(bad)}", result.returncode == 2 and "usage" in result.stderr,
              f"status {result.returncode}: {result.stderr[-300:]}")
    with tempfile.TemporaryDirectory(prefix="perfcheck-selftest-") as work:
        status, cpu, output = perfcheck(os.path.join(ROOT, "bin"), 10, os.path.join(work, "aa.json"))
        check("a_a_no_fail", status == 0 and cpu is not None and cpu["verdict"] != "FAIL",
              f"status {status}, CPU row {cpu}\n{output}")
        if cpu is None or not cpu.get("base_median"):
            check("injected_runs", False, "the A/A run measured no CPU per request")
        else:
            base_ns = cpu["base_median"] * 1000
            ten_ns = round(base_ns * 0.10)
            ten = build_injected(ten_ns, work)
            status, row, output = perfcheck(ten, 12, os.path.join(work, "ten.json"))
            if row is not None and row["verdict"] != "FAIL" and row.get("too_noisy"):
                print(f"perfcheck self-test: 10 % run too noisy to judge (per-pair spread "
                      f"{row['spread_iqr'] * 100:.1f} %); measuring again with 24 pairs", flush=True)
                status, row, output = perfcheck(ten, 24, os.path.join(work, "ten-again.json"))
            check(f"injected_10_percent_fails ({ten_ns} ns per request)",
                  status == 1 and row is not None and row["verdict"] == "FAIL" and row.get("confirmation"),
                  f"status {status}, CPU row {row}\n{output}")
            one = build_injected(round(base_ns * 0.01), work)
            status, row, output = perfcheck(one, 10, os.path.join(work, "one.json"))
            check(f"injected_1_percent_no_fail ({round(base_ns * 0.01)} ns)",
                  row is not None and row["verdict"] != "FAIL",
                  f"status {status}, CPU row {row}\n{output}")
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
