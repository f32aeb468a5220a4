#!/usr/bin/env python3
"""check_report.py - unit checks of harness/report.py on results made up here, where the right
answer is known: the "within noise" rule of paired ratios, "–" with a reason for points without a
figure (and no plotted point for them), the blocking family's table and the thread/fork line, and
the goals: which event server is best, met and not met at the boundary, the c10k loss, select's
refusals shown as errors, a skipped or absent server "not measured", io-uring against epoll-et.
Prints "PASS name" or "FAIL name: why" per check and exits 1 if any failed.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "harness"))
import report  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import checks  # noqa: E402
from checks import check  # noqa: E402

scratch = tempfile.mkdtemp(prefix="c10k-report-check-")




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


def reader_checks():
    """What a reader of the report needs: failed, zero and not-run told apart, no 0.00× ratio, a quick
    run's single point and single repetition drawn as such, the environment in words."""
    zero = measured("epoll-lt", "event", "sleep", "c=64", 64, "errors",
                    [rep(1, 0.0, 5, errors=40), rep(2, 0.0, 3, errors=41), rep(3, 20.0, 20, errors=2)])
    notes = report.Notes()
    text = report.cell(zero, "requests_per_s", notes)
    check("a point whose median rate is 0 reads – with a reason, not \"0 (errors)\"",
          text == "– [1]" and "answered nothing" in notes.lines()[0], (text, notes.lines()))
    base = measured("nginx", "reference", "sleep", "c=64", 64, "ok", [rep(i + 1, 100.0) for i in range(3)])
    some = measured("epoll-lt", "event", "sleep", "c=64", 64, "errors",
                    [rep(1, 0.0, 0, errors=9), rep(2, 50.0), rep(3, 60.0)])
    check("a repetition that measured nothing is left out of a paired ratio, never 0.00×",
          report.paired_ratios(some, base, "requests_per_s") == [0.5, 0.6], report.paired_ratios(some, base, "requests_per_s"))
    check("no ratio to a point without a figure", report.ratio_text(zero, base) == "–", report.ratio_text(zero, base))

    run = load(made_up_run(with_fork=True))
    skipped = {"server": "epoll-lt", "scenario": "c10k", "point": "idle=0", "status": "skipped", "reason": "x"}
    values = [report.bar_value(r, "server_cpu_us_per_request") for r in (
        None, {"server": "a", "status": "not_applicable"}, skipped, zero,
        measured("a", "event", "plaintext", "c=64", 64, "ok", [rep(1, 10.0, server_cpu_us_per_request=0.0)]),
        measured("a", "event", "plaintext", "c=64", 64, "ok", [rep(1, 10.0, server_cpu_us_per_request=4.5)]))]
    check("a missing bar says why: not run, n/a, skipped, failed and zero all differ",
          values == ["not run", "n/a", "skipped", "failed", "zero", 4.5], values)
    data = tempfile.mkdtemp(dir=scratch)
    have = report.prepare_data(run, data)
    with open(os.path.join(data, "cpu_per_request_marks.tsv")) as f:
        marks = f.read().splitlines()
    # epoll-lt's sleep point failed to start; fork-per-conn and thread-per-conn ran no sleep point.
    check("the CPU-per-request chart labels its missing bars",
          marks[0] == "x y why" and any(line.endswith('"failed"') for line in marks)
          and any(line.endswith('"not run"') for line in marks), marks)
    settings = report.plot_settings(run, data, "cpu_per_request", have["cpu_per_request"])
    check("a bar chart with missing bars is told to draw their labels", "has_marks=1" in settings, settings)

    quick = made_up_run(with_fork=False)
    quick["records"] = [r for r in quick["records"] if r["scenario"] == "plaintext"]
    quick["settings"].update(reps=1, quick=True, server_cpus="0", client_cpus="1", loadgen_threads=1,
                             warmup_s=0.25, duration_s=1.0, syscalls="perf", command="./run_all.sh --quick")
    quick["environment"] = {"loadgen_version": "loadgen (c10k-lab) abc", "cpu_model": "AMD EPYC",
                            "cpu_details": "vendor AuthenticAMD, family 25", "nproc": 1, "memory_total_kib": 2097152,
                            "nofile_limit": 1024, "cflags": "-O2 -g", "commit": "abc", "kernel": "6.1"}
    quick.update(started_at="t0", finished_at="t1", elapsed_s=1.0)
    run = load(quick)
    data = tempfile.mkdtemp(dir=scratch)
    have = report.prepare_data(run, data)
    settings = report.plot_settings(run, data, "throughput", have["throughput"])
    check("a quick run: one repetition and one x, drawn around that x", settings == "reps=1; xlo=8; xhi=32", settings)
    lines = report.environment_lines(run.doc)
    joined = " | ".join(lines)
    check("the environment: quick run flagged, command to reproduce, CPU in full, memory, flags, file limit",
          lines[0].startswith("QUICK RUN") and "git checkout abc && make && ./run_all.sh --quick" in joined
          and "vendor AuthenticAMD, family 25" in joined and "memory 2.0 GiB" in joined and "flags -O2 -g" in joined
          and "open-file limit 1024" in joined, lines)
    check("the environment in words: 1 repetition, CPU 0, 1 CPU, loadgen named once",
          "1 repetition of" in joined and "server on CPU 0, loadgen on CPU 1 (1 thread)" in joined
          and "1 CPU online" in joined and "loadgen loadgen" not in joined, lines)
    out = tempfile.mkdtemp(dir=scratch)
    run.dir = out
    report.write_reports(run, [], [])
    with open(os.path.join(out, "report.html")) as f:
        page = f.read()
    with open(os.path.join(out, "report.md")) as f:
        md = f.read()
    check("the HTML report: viewport meta, every table in a scrolling box",
          "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
          and page.count("<table>") == page.count("<div class='scroll'><table>") > 0, page[:400])
    check("each scenario's section opens with what the scenario does",
          report.SCENARIO_TEXT["plaintext"] in page and report.SCENARIO_TEXT["plaintext"] in md)
    check("the ratio columns say the metric and which way is better",
          "req/s ÷ nginx's (higher is better)" in md and "server CPU/req ÷ nginx's (lower is better)" in md, md[:600])


def load(doc):
    directory = tempfile.mkdtemp(dir=scratch)
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(doc, f)
    return report.Run(directory)


def goal_run(with_floor=True, uring_measured=False, floor_cpu=(6.0, 6.0, 6.0)):
    """floor and nginx (reference), epoll-lt, epoll-et, select and io-uring (event). epoll-et has the
    lowest CPU per request, so it is the best; io-uring is skipped unless uring_measured."""
    families = {"epoll-lt": "event", "epoll-et": "event", "select": "event", "io-uring": "event",
                "floor": "reference", "nginx": "reference"}
    if not with_floor:
        del families["floor"]

    def point(server, scenario, label, x, values, key="requests_per_s", status="ok", **extra):
        reps = [rep(i + 1, **({"requests_per_s": 50000} | v)) for i, v in enumerate(values)]
        return measured(server, families[server], scenario, label, x, status, reps, **extra)

    cpu = lambda *values: [{"server_cpu_us_per_request": v} for v in values]  # noqa: E731
    records = [
        point("epoll-lt", "plaintext", "c=64", 64, cpu(6.6, 6.6, 6.6)),
        point("epoll-et", "plaintext", "c=64", 64, cpu(6.3, 6.2, 6.4)),
        point("select", "plaintext", "c=64", 64, cpu(7.0, 7.0, 7.0)),
        point("nginx", "plaintext", "c=64", 64, cpu(8.0, 8.0, 8.0)),
        point("epoll-lt", "pipeline", "c=64", 64, [{"requests_per_s": 400000, "server_cpu_us_per_request": 0.6}] * 3),
        point("epoll-et", "pipeline", "c=64", 64, [{"requests_per_s": v, "server_cpu_us_per_request": 0.5}
                                                   for v in (490000, 560000, 600000)]),
        point("nginx", "pipeline", "c=64", 64, [{"requests_per_s": v} for v in (100000, 110000, 120000)]),
        point("epoll-lt", "c10k", "idle=0", 0, [{"requests_per_s": 100000}] * 3),
        point("epoll-lt", "c10k", "idle=10000", 10000, [{"requests_per_s": v} for v in (96000, 94000, 97000)]),
        point("select", "c10k", "idle=0", 0, [{"requests_per_s": 100000, "server_cpu_us_per_request": 6.0}] * 3),
        point("select", "c10k", "idle=1000", 1000, [{"requests_per_s": 90000, "server_cpu_us_per_request": 7.5}] * 3),
        point("select", "c10k", "idle=10000", 10000,
              [{"requests_per_s": 0.0, "responses_in_window": 0, "connections_served": 0, "errors": 500,
                "error_classes": {"status": 500}, "idle_established": 10000, "idle_open_at_end": 1010,
                "idle_closed_by_peer": 8990}] * 3, status="errors", reason="no response arrived"),
    ]
    if with_floor:
        records.append(point("floor", "plaintext", "c=64", 64, cpu(*floor_cpu)))
    if uring_measured:
        records.append(point("io-uring", "plaintext", "c=64", 64, cpu(6.0, 6.0, 6.0),
                             median_extra={"syscalls_per_request": 0.55}))
        records.append(point("epoll-et", "plaintext", "c=64", 64, cpu(6.7, 6.7, 6.7),
                             median_extra={"syscalls_per_request": 2.4}))
        records = [r for r in records if not (r["server"] == "epoll-et" and r["scenario"] == "plaintext"
                                              and r["reps"][0]["server_cpu_us_per_request"] == 6.3)]
    else:
        for scenario, label, x in (("plaintext", "c=64", 64), ("pipeline", "c=64", 64), ("c10k", "idle=0", 0)):
            records.append({"server": "io-uring", "family": "event", "scenario": scenario, "point": label, "x": x,
                            "route": "/", "status": "skipped", "reason": "io_uring disabled"})
    return {"schema": report.SCHEMA, "environment": {}, "settings": {
        "servers": list(families), "server_configs": {s: {"family": f} for s, f in families.items()}},
        "records": records}


def goal_checks():
    goals = {g.what.split(":")[0]: g for g in report.goals(load(goal_run()))}
    a = goals["(a) keep-alive plaintext c=64"]
    check("goal (a): the event server with the lowest CPU per request, paired with the floor",
          a.measured == "epoll-et 6.30 µs ÷ floor 6.00 µs = 1.05× (1.03–1.07)" and a.verdict == "met", a.line())
    b = goals["(b) pipeline c=64 -P 16"]
    check("goal (b): at the target exactly is met",
          b.measured == "epoll-et 560,000 req/s ÷ nginx 110,000 req/s = 5.00× (4.90–5.09)" and b.verdict == "met",
          b.line())
    c = {g.what: g for g in report.goals_c10k(load(goal_run()))}
    lt = c["(c) epoll-lt: c10k requests/s lost at idle=10000 against idle=0"]
    check("goal (c): loss from paired repetitions",
          lt.measured == "100,000 → 96,000 req/s: loss 4.0 % (3.0–6.0 %)" and lt.verdict == "met", lt.line())
    sel = c["(c) select: c10k requests/s lost at idle=10000 against idle=0"]
    check("goal (c): select's refusals are shown as errors and closed connections, without a verdict",
          sel.measured.startswith("100,000 → 0 req/s: loss 100.0 % (100.0–100.0 %); at idle=10000: errors status 1,500")
          and "1,010 of 10,000 established still open at the end, 8,990 closed by the server" in sel.measured
          and sel.verdict == "–" and sel.target == "–", sel.line())
    rise = c["(c) select: c10k server CPU µs/request as idle connections grow"]
    check("goal (c): select's CPU per request by idle count",
          rise.measured.startswith("µs/request 6.00 at idle=0, 7.50 at idle=1000, – at idle=10000; "
                                   "idle=10000 ÷ idle=0: – (select: no response arrived"), rise.line())
    uring = c["(c) io-uring: c10k requests/s lost at idle=10000 against idle=0"]
    et = c["(c) epoll-et: c10k requests/s lost at idle=10000 against idle=0"]
    libuv = c["(c) libuv: c10k requests/s lost at idle=10000 against idle=0"]
    check("goal (c): skipped, unmeasured and absent servers are not measured, with why",
          uring.measured == "not measured: io-uring: skipped: io_uring disabled" and uring.verdict == "not measured"
          and et.measured == "not measured: epoll-et has no c10k idle=0 in this run"
          and libuv.measured == "not measured: libuv not in this run" and "(c) poll: c10k requests/s lost at "
          "idle=10000 against idle=0" in c, [uring.line(), et.line(), libuv.line()])
    d = goals["(d) io-uring ÷ epoll-et, plaintext c=64"]
    check("goal (d): a skipped io-uring is not measured", d.measured == "not measured: io-uring: skipped: io_uring "
          "disabled" and d.verdict == "not measured", d.line())

    goals = {g.what.split(":")[0]: g for g in report.goals(load(goal_run(with_floor=False, uring_measured=True)))}
    a = goals["(a) keep-alive plaintext c=64"]
    check("goal (a): without the floor, not measured", a.measured == "not measured: floor not in this run"
          and a.verdict == "not measured", a.line())
    d = goals["(d) io-uring ÷ epoll-et, plaintext c=64"]
    check("goal (d): CPU per request paired, system calls per request side by side",
          d.measured == "CPU 6.00 vs 6.70 µs = 0.90× (0.90–0.90); system calls 0.55 vs 2.40 = 0.23×", d.line())
    # epoll-et's repetitions over 1.06: every paired ratio is 1.06, just above the target.
    a = report.goal_floor_cpu(load(goal_run(floor_cpu=(6.3 / 1.06, 6.2 / 1.06, 6.4 / 1.06))))
    check("goal (a): just above the target is not met", a.verdict == "not met" and a.measured.endswith(
        "= 1.06× (1.06–1.06)"), a.line())
    failed = {"server": "epoll-et", "family": "event", "scenario": "plaintext", "point": "c=64", "x": 64,
              "route": "/", "status": "skipped", "reason": "io_uring disabled"}
    check("a skipped point reads – with its message", report.missing_reason(failed) == "skipped: io_uring disabled",
          report.missing_reason(failed))


def churn_run(epoll_cpu, defer=True):
    """churn c=64 (and churn-defer c=64) for iterative, nginx, epoll-lt and select: iterative at
    20 µs per connection in every repetition, nginx at 30, epoll-lt at epoll_cpu (one per
    repetition), select at 40; with per-call counts in the system-call run."""
    families = {"iterative": "blocking", "nginx": "reference", "epoll-lt": "event", "select": "event"}
    cpu = {"iterative": (20.0, 20.0, 20.0), "nginx": (30.0, 30.0, 30.0), "epoll-lt": epoll_cpu,
           "select": (40.0, 40.0, 40.0)}
    by_name = {"iterative": {"setsockopt": 2.0, "accept4": 1.0, "close": 1.0, "futex": 0.004},
               "nginx": {"accept4": 1.0, "writev": 1.0}, "epoll-lt": {"accept4": 1.0, "epoll_ctl": 1.0},
               "select": {"select": 1.2}}
    records = []
    for scenario in ("churn", "churn-defer") if defer else ("churn",):
        for server, family in families.items():
            factor = 0.8 if scenario == "churn-defer" and server == "epoll-lt" else 1.0
            # epoll-lt sleeps 0.7, 0.6, 0.8 times per connection (of 10,000 in a 1 s window)
            counted = server == "epoll-lt" and scenario == "churn"
            records.append(measured(server, family, scenario, "c=64", 64, "ok",
                                    [rep(i + 1, 10000, server_cpu_us_per_request=c * factor,
                                         **({"voluntary_switches": (7000, 6000, 8000)[i], "server_cpu_window_s": 1.0}
                                            if counted else {}))
                                     for i, c in enumerate(cpu[server])],
                                    syscall_run={"syscalls_per_request": 6.0, "by_name_per_request": by_name[server]}))
    return load({"schema": report.SCHEMA, "environment": {}, "settings": {
        "servers": list(families), "server_configs": {s: {"family": f} for s, f in families.items()}},
        "records": records})


def churn_checks():
    run = churn_run((20.0, 19.0, 21.0))
    goals = [g for g in report.goals(run) if g.what.startswith("(f)")]
    check("churn goals: two per churn scenario", len(goals) == 4, [g.what for g in goals])
    first = goals[0]
    check("churn goal: the best event server against iterative, paired, met at 1.00×",
          "epoll-lt" in first.measured and "1.00× (0.95–1.05), within noise" in first.measured
          and first.verdict == "met", first.line())
    check("churn goal: against nginx 0.67×, met", goals[1].verdict == "met" and "0.67×" in goals[1].measured,
          goals[1].line())
    check("churn-defer goal: 0.8 × 20 µs against iterative's 20: 0.80×, met",
          "0.80×" in goals[2].measured and goals[2].verdict == "met", goals[2].line())
    slow = [g for g in report.goals(churn_run((26.0, 25.0, 27.0), defer=False)) if g.what.startswith("(f)")]
    check("churn goal: 1.30× iterative is not met, 0.87× nginx is not met either",
          [g.verdict for g in slow] == ["not met", "not met"], [g.line() for g in slow])
    header, rows, lines = report.churn_table(run)
    iterative = next(r for r in rows if r[0] == "iterative")
    check("churn table: calls by name, largest first, tiny ones left out",
          "setsockopt 2.00 · accept4 1.00 · close 1.00" in iterative and not any("futex" in str(c) for c in iterative),
          iterative)
    epoll = next(r for r in rows if r[0] == "epoll-lt")
    sleeps = header.index("c=64 server sleeps/conn")
    check("churn table: the server's sleeps per connection, median of the repetitions; – where not counted",
          epoll[sleeps] == "0.70" and iterative[sleeps] == "–"
          and epoll[header.index("defer c=64 server sleeps/conn")] == "–", (header, epoll, iterative))
    check("churn table: churn-defer beside churn, with the paired ratio",
          "defer ÷ without (CPU)" in header and "0.80× (0.80–0.80)" in next(r for r in rows if r[0] == "epoll-lt"),
          (header, rows))


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

    goal_checks()
    churn_checks()
    reader_checks()
    return checks.summary()


if __name__ == "__main__":
    try:
        status = main()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(status)
