#!/usr/bin/env python3
"""check_goals.py RUN_DIR BENCH_LOG UNSUPPORTED_MESSAGE - checks the report's goals against a small
real run of floor, epoll-lt, nginx (when installed) and a server named io-uring that cannot run
here (tests/bench/unsupported_server.sh), recomputing every figure from results.json alone:

- the floor is a reference row (family, command, a row in the summary beside nginx) and is not
  run for routes other than "/" (not_applicable, with the reason);
- the server that exited with status 1 and a message is "skipped" with that message as its reason,
  in the report's Skipped section, and the goals that name it say so;
- (a) best event server ÷ floor, server CPU per request at plaintext c=64, (b) ÷ nginx, requests/s
  pipelined, (c) the c10k loss of epoll-lt: the text printed equals the median and range of the
  paired per-repetition ratios recomputed here, and the verdict follows the target;
- the servers the goals name but the run lacks read "not measured: NAME not in this run";
- the same lines are printed at the end of the run (bench's log).
Prints "PASS name" or "FAIL name: why" per check and "N passed, N failed"; exits 1 on any failure.
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import checks  # noqa: E402
from checks import check  # noqa: E402





def ratio_text(ratios):
    """The report's format, written again here: median (low–high), "within noise" around 1.0."""
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}×"
    low, high = min(ratios), max(ratios)
    text = f"{statistics.median(ratios):.2f}× ({low:.2f}–{high:.2f})"
    return text + (", within noise" if low <= 1.0 <= high else "")


def main(run_dir, log_path, message):
    doc = json.load(open(os.path.join(run_dir, "results.json")))
    records = doc["records"]
    report = open(os.path.join(run_dir, "report.md")).read()
    log = open(log_path).read()

    def find(server, scenario, point):
        return next((r for r in records if r["server"] == server and r["scenario"] == scenario
                     and r["point"] == point), None)

    def by_rep(record, key):
        return {r["rep"]: r[key] for r in record["reps"]}

    def pairs(record, reference, key):
        mine, theirs = by_rep(record, key), by_rep(reference, key)
        return [mine[k] / theirs[k] for k in sorted(mine) if k in theirs]

    def med(record, key):
        return statistics.median(r[key] for r in record["reps"])

    section = report.split("## Goals", 1)[1].split("\n## ", 1)[0] if "## Goals" in report else ""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("("):
            rows[cells[0]] = cells[1:]
    check("goals_section_present", len(rows) >= 8, f"{len(rows)} goal rows in:\n{section[:500]}")
    with_nginx = "nginx" in doc["settings"]["servers"]

    # The floor: a reference row beside nginx, run for "/" only.
    config = doc["settings"]["server_configs"].get("floor") or {}
    check("floor_is_a_reference_row",
          config.get("family") == "reference" and config.get("command", [""])[-3:] == [os.path.join(
              os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bin", "floor"),
              "--port", "0"]
          and "\n| floor | " in report.split("## Summary", 1)[1].split("\n## ", 1)[0]
          and (not with_nginx or "\n| nginx | " in report.split("## Summary", 1)[1].split("\n## ", 1)[0]),
          config)
    cpu = find("floor", "cpu", "c=4")
    check("floor_not_run_for_other_routes",
          cpu is not None and cpu["status"] == "not_applicable" and "floor has no route /cpu/50" in cpu["reason"]
          and all(r["status"] == "ok" for r in records if r["server"] == "floor" and r["route"] == "/"),
          cpu)

    # The server that cannot run here.
    skipped = [r for r in records if r["server"] == "io-uring"]
    check("unsupported_server_skipped_with_its_message",
          len(skipped) == 5 and all(r["status"] == "skipped" and r["reason"] == message for r in skipped)
          and f"): {message}" in report.split("## Skipped", 1)[-1] and "## Failures" not in report
          and "0 failed, 5 skipped" in log,
          [(r["status"], r.get("reason")) for r in skipped])

    # (a) the best event server (epoll-lt, the only one measured) ÷ the floor, CPU per request.
    key = "(a) keep-alive plaintext c=64: server CPU µs/request, best event server ÷ floor"
    epoll, floor = find("epoll-lt", "plaintext", "c=64"), find("floor", "plaintext", "c=64")
    ratios = pairs(epoll, floor, "server_cpu_us_per_request")
    expected = (f"epoll-lt {med(epoll, 'server_cpu_us_per_request'):.2f} µs ÷ floor "
                f"{med(floor, 'server_cpu_us_per_request'):.2f} µs = {ratio_text(ratios)}")
    verdict = "met" if round(statistics.median(ratios), 2) <= 1.05 else "not met"
    check("goal_a_recomputed_from_results", rows.get(key) == [expected, "≤ 1.05×", verdict],
          f"report {rows.get(key)}, recomputed {[expected, '≤ 1.05×', verdict]}")

    # (b) pipelined requests/s ÷ nginx's.
    key = "(b) pipeline c=64 -P 16: requests/s, best event server ÷ nginx"
    if with_nginx:
        epoll, nginx = find("epoll-lt", "pipeline", "c=64"), find("nginx", "pipeline", "c=64")
        ratios = pairs(epoll, nginx, "requests_per_s")
        want = [f"epoll-lt {med(epoll, 'requests_per_s'):,.0f} req/s ÷ nginx {med(nginx, 'requests_per_s'):,.0f} "
                f"req/s = {ratio_text(ratios)}", "≥ 5×",
                "met" if round(statistics.median(ratios), 2) >= 5 else "not met"]
    else:
        want = ["not measured: nginx not in this run", "≥ 5×", "not measured"]
    check("goal_b_recomputed_from_results", rows.get(key) == want, f"report {rows.get(key)}, recomputed {want}")

    # (c) epoll-lt's loss with idle connections, and the servers the goal names but the run lacks.
    key = "(c) epoll-lt: c10k requests/s lost at idle=300 against idle=0"
    zero, most = find("epoll-lt", "c10k", "idle=0"), find("epoll-lt", "c10k", "idle=300")
    loss = [100 * (1 - r) for r in pairs(most, zero, "requests_per_s")]
    want = [f"{med(zero, 'requests_per_s'):,.0f} → {med(most, 'requests_per_s'):,.0f} req/s: loss "
            f"{statistics.median(loss):.1f} % ({min(loss):.1f}–{max(loss):.1f} %)", "≤ 5 %",
            "met" if round(statistics.median(loss), 1) <= 5 else "not met"]
    check("goal_c_loss_recomputed_from_results", rows.get(key) == want, f"report {rows.get(key)}, recomputed {want}")
    absent = {
        "(c) epoll-et: c10k requests/s lost at idle=300 against idle=0": ["not measured: epoll-et not in this run", "≤ 5 %", "not measured"],
        "(c) libuv: c10k requests/s lost at idle=300 against idle=0": ["not measured: libuv not in this run", "≤ 5 %", "not measured"],
        "(c) select: c10k requests/s lost at idle=300 against idle=0": ["not measured: select not in this run", "–", "not measured"],
        "(c) io-uring: c10k requests/s lost at idle=300 against idle=0": [f"not measured: io-uring: skipped: {message}", "≤ 5 %", "not measured"],
        "(d) io-uring ÷ epoll-et, plaintext c=64: server CPU µs/request and system calls/request":
            [f"not measured: io-uring: skipped: {message}; epoll-et not in this run", "–", "not measured"],
    }
    wrong = {k: rows.get(k) for k, v in absent.items() if rows.get(k) != v}
    check("goals_name_absent_and_skipped_servers", not wrong, wrong)

    # The same goals are printed at the end of the run.
    missing = [k for k, (measured, target, verdict) in rows.items()
               if f"goal {k}: {measured}" + ("" if target == "–" else f"; goal {target}: {verdict}") not in log]
    check("goals_printed_at_the_end_of_the_run", rows and not missing, missing)
    return checks.summary()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
