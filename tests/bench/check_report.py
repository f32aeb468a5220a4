#!/usr/bin/env python3
"""check_report.py - unit checks of harness/report.py on results made up here, where the right
answer is known: the "within noise" rule of paired ratios, "–" with a reason for points without a
figure (and no plotted point for them), the blocking family's table and the thread/fork line.
Prints "PASS name" or "FAIL name: why" per check and exits 1 if any failed.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "harness"))
import report  # noqa: E402

failures = 0
checks = 0
scratch = tempfile.mkdtemp(prefix="c10k-report-check-")


def check(name, condition, detail=""):
    global failures, checks
    checks += 1
    if condition:
        print(f"PASS {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {detail}")


def rep(number, requests_per_s, responses=None, **figures):
    values = {"rep": number, "requests_per_s": requests_per_s,
              "responses_in_window": int(requests_per_s) if responses is None else responses,
              "server_cpu_us_per_request": 10.0, "client_cpu_us_per_request": 12.0,
              "connections": 16, "connections_served": 16, "latency_p99_us": 900, "errors": 0}
    values.update(figures)
    return values


def measured(server, family, scenario, point, x, status, reps, **extra):
    medians = {}
    for key in reps[0]:
        if key != "rep" and not isinstance(reps[0][key], dict):
            values = sorted(r[key] for r in reps)
            medians[key] = values[len(values) // 2]
    medians.update(extra.pop("median_extra", {}))
    record = {"server": server, "family": family, "scenario": scenario, "point": point, "x": x, "route": "/",
              "status": status, "median": medians,
              "spread": {k: {"median": v, "min": v, "max": v} for k, v in medians.items()}, "reps": reps}
    record.update(extra)
    return record


def idle_figures(rss, pss, vmsize, established):
    return {"rss_per_idle_connection_bytes": rss, "pss_per_idle_connection_bytes": pss,
            "vmsize_per_idle_connection_bytes": vmsize, "idle_established": established}


def made_up_run(with_fork):
    """thread-per-conn, fork-per-conn (optional), iterative (blocking) and epoll-lt (event)."""
    families = {"thread-per-conn": "blocking", "fork-per-conn": "blocking", "iterative": "blocking",
                "epoll-lt": "event"}
    if not with_fork:
        del families["fork-per-conn"]
    records = []
    for server, family in families.items():
        churn = {"thread-per-conn": [3000, 3300, 2900], "fork-per-conn": [1800, 1700, 1900],
                 "iterative": [5000, 5100, 4900], "epoll-lt": [6000, 6100, 5900]}[server]
        records.append(measured(server, family, "churn", "c=10", 10, "ok",
                                [rep(i + 1, v) for i, v in enumerate(churn)]))
        records.append(measured(server, family, "plaintext", "c=16", 16, "ok",
                                [rep(i + 1, 50000 + i, processes=17 if server == "fork-per-conn" else 1,
                                     threads=17) for i in range(3)]))
        records.append(measured(server, family, "c10k", "idle=0", 0, "ok", [rep(i + 1, 40000) for i in range(3)]))
        if server == "iterative":
            # Stuck on an idle connection: nothing arrived in any window.
            records.append(measured(server, family, "c10k", "idle=1000", 1000, "errors",
                                    [rep(i + 1, 0.0, 0, connections_served=0, errors=16,
                                         error_classes={"timeout": 16}) for i in range(3)],
                                    median_extra=idle_figures(-20.0, 5.0, 0.0, 1000),
                                    reason="no response arrived in any repetition's measured window"))
        else:
            records.append(measured(server, family, "c10k", "idle=1000", 1000, "ok",
                                    [rep(i + 1, 30000) for i in range(3)],
                                    median_extra=idle_figures(150000.0, 140000.0, 266000.0, 1000)))
    records.append({"server": "epoll-lt", "family": "event", "scenario": "sleep", "point": "c=64", "x": 64,
                    "route": "/sleep/10", "status": "failed", "reason": "server failed to start: boom"})
    records.append(measured("iterative", "blocking", "sleep", "c=64", 64, "errors",
                            [rep(1, 90, errors=3), rep(2, 0, 0, errors=1), rep(3, 80)],
                            reason="loadgen counted errors"))
    return {"schema": report.SCHEMA, "environment": {}, "settings": {
        "servers": list(families), "server_configs": {s: {"family": f} for s, f in families.items()}},
        "records": records}


def load(doc):
    directory = tempfile.mkdtemp(dir=scratch)
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(doc, f)
    return report.Run(directory)


def main():
    # The "within noise" rule: a range of paired ratios that contains 1.0.
    check("ratio whose range contains 1.0 is within noise",
          report.format_ratio([0.95, 1.10, 1.02]) == "1.02× (0.95–1.10), within noise",
          report.format_ratio([0.95, 1.10, 1.02]))
    check("ratio whose range touches 1.0 is within noise", report.format_ratio([1.0, 1.2]).endswith("within noise"),
          report.format_ratio([1.0, 1.2]))
    check("ratio above 1.0 is not within noise", "noise" not in report.format_ratio([1.10, 1.30, 1.20]),
          report.format_ratio([1.10, 1.30, 1.20]))
    check("ratio below 1.0 is not within noise", "noise" not in report.format_ratio([0.5, 0.9]),
          report.format_ratio([0.5, 0.9]))
    check("a single ratio claims no range", report.format_ratio([1.0]) == "1.00×", report.format_ratio([1.0]))

    run = load(made_up_run(with_fork=True))
    notes = report.Notes()
    failed = run.find("epoll-lt", "sleep", "c=64")
    stuck = run.find("iterative", "c10k", "idle=1000")
    flagged = run.find("iterative", "sleep", "c=64")
    check("a failed point reads – with a note", report.cell(failed, "requests_per_s", notes) == "– [1]",
          report.cell(failed, "requests_per_s", notes))
    check("a point without any response reads –, not 0", report.cell(stuck, "requests_per_s", notes) == "– [2]",
          report.cell(stuck, "requests_per_s", notes))
    check("the notes give the reasons",
          notes.lines() == ["[1] epoll-lt, sleep c=64: failed: server failed to start: boom",
                            "[2] iterative, c10k idle=1000: no response arrived in any repetition's measured "
                            "window; connections served 0/16; errors timeout 48"],
          notes.lines())
    check("errors with responses keep their figure and flag",
          report.cell(flagged, "requests_per_s", notes) == "80 (errors)", report.cell(flagged, "requests_per_s", notes))

    data = tempfile.mkdtemp(dir=scratch)
    report.prepare_data(run, data)
    with open(os.path.join(data, "c10k_throughput-iterative.tsv")) as f:
        xs = [line.split()[0] for line in f if not line.startswith("#")]
    check("the plots draw no point where nothing arrived", xs == ["0"], xs)

    header, rows, lines = report.family_table(run)
    servers = [row[0] for row in rows]
    check("the family table holds the blocking servers only",
          servers == ["thread-per-conn", "fork-per-conn", "iterative"], servers)
    thread = rows[0]
    check("family table: churn, keep-alive and memory per idle connection",
          thread[1] == "3,000" and thread[2] == "10.0" and thread[3] == "12.0" and thread[4] == "50,001"
          and thread[8] == "17" and thread[9] == "146.5" and thread[10] == "136.7" and thread[11] == "259.8"
          and thread[12] == "at 1,000 idle", thread)
    iterative = rows[2]
    check("family table: no idle point with figures reads – with the reason",
          iterative[9] == iterative[10] == iterative[11] != "–" and iterative[9].startswith("– [")
          and any(line.startswith(iterative[9][2:] + " iterative") for line in lines), (iterative, lines))
    check("family table says PSS is the honest figure", any("PSS is the honest figure" in line for line in lines),
          lines)
    line = report.thread_fork_line(run)
    check("thread/fork line: the paired ratio with its range, beside the seed figure",
          line is not None and "1.67× (1.53–1.94)" in line and "3208 vs 1831" in line and "1.75×" in line, line)
    check("thread/fork line absent when fork-per-conn was not measured",
          report.thread_fork_line(load(made_up_run(with_fork=False))) is None)

    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        status = main()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(status)
