#!/usr/bin/env python3
"""perfcheck_selftest.py - perfcheck must find a slowdown of known size and must not invent one.

On epoll-lt, plaintext c=64, prebuilt binaries (no git, no callgrind, to keep it short):
1. A/A, bin/ against itself: no FAIL, exit status 0; its base median gives the CPU per request;
2. a candidate built with a busy wait of 10 % of that per request (-DC10K_INJECT_NS): its CPU per
   request must be a confirmed FAIL, exit status 1;
3. a candidate with 1 %: no FAIL on CPU per request (below the 3 % floor), exit status 0.
Timing is left to perfcheck's statistics (paired, alternated runs); nothing here times itself."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERFCHECK = [sys.executable, os.path.join(ROOT, "harness", "perfcheck"), "--servers", "epoll-lt",
             "--scenarios", "plaintext", "--no-callgrind", "--base-bin", os.path.join(ROOT, "bin")]
passed = failed = 0


def check(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS perfcheck: {name}")
    else:
        failed += 1
        print(f"FAIL perfcheck: {name}: {detail}")


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
        check(result.returncode == 2 and "usage" in result.stderr, f"bad_flag {' '.join(bad)}",
              f"status {result.returncode}: {result.stderr[-300:]}")
    with tempfile.TemporaryDirectory(prefix="perfcheck-selftest-") as work:
        status, cpu, output = perfcheck(os.path.join(ROOT, "bin"), 10, os.path.join(work, "aa.json"))
        check(status == 0 and cpu is not None and cpu["verdict"] != "FAIL", "a_a_no_fail",
              f"status {status}, CPU row {cpu}\n{output}")
        if cpu is None or not cpu.get("base_median"):
            check(False, "injected_runs", "the A/A run measured no CPU per request")
        else:
            base_ns = cpu["base_median"] * 1000
            ten = build_injected(round(base_ns * 0.10), work)
            status, row, output = perfcheck(ten, 12, os.path.join(work, "ten.json"))
            check(status == 1 and row is not None and row["verdict"] == "FAIL" and row.get("confirmation"),
                  f"injected_10_percent_fails ({round(base_ns * 0.10)} ns per request)",
                  f"status {status}, CPU row {row}\n{output}")
            one = build_injected(round(base_ns * 0.01), work)
            status, row, output = perfcheck(one, 10, os.path.join(work, "one.json"))
            check(row is not None and row["verdict"] != "FAIL", f"injected_1_percent_no_fail ({round(base_ns * 0.01)} ns)",
                  f"status {status}, CPU row {row}\n{output}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
