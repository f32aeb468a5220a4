#!/usr/bin/env python3
"""check_multicore.py - unit checks of the multicore scenarios' paths in harness/bench.py and
harness/report.py, on canned server stderr, canned loadgen JSON and made-up results where the right
answer is known: the `loop K:`, `handoff:` and `stats:` lines parsed and their derived figures
(listen wake-ups and empty accepts per accept, the spread of accepts and connections over loops,
wake-ups per job); the per-path figures of a --mix run, and a document without them; the
scenarios file's for=, set=, fresh and {T} (the thread ladder, its quick form, bad tokens); and the
report's herd, mix (goal (e) at its boundary, the timeline from raw JSON), cores (1 server CPU
against several) and handoff tables. Prints "PASS name" or "FAIL name: why" per check and exits 1
if any failed.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "harness"))
import bench  # noqa: E402
import report  # noqa: E402
sys.path.insert(0, os.path.join(HERE, ".."))
import checks  # noqa: E402
from checks import check  # noqa: E402

scratch = tempfile.mkdtemp(prefix="c10k-multicore-check-")

# What reuseport --listen shared (4 loops) and reactor-workers print on SIGTERM, and epoll-lt.
SHARED_STDERR = """listening on 127.0.0.1:4000
loop 0: wakeups=900 listen_events=400 accepts=300 empty_accepts=12 connections=300 requests=3000
loop 1: wakeups=800 listen_events=300 accepts=300 empty_accepts=6 connections=300 requests=3000
loop 2: wakeups=700 listen_events=250 accepts=200 empty_accepts=2 connections=200 requests=2000
loop 3: wakeups=600 listen_events=250 accepts=200 empty_accepts=0 connections=200 requests=2000
stats: accepted=1000 requests=10000 shed=0 status400=0
"""
MULTI_REACTOR_STDERR = """loop 0: wakeups=100 listen_events=100 accepts=400 empty_accepts=0 connections=0 requests=0
loop 1: wakeups=90 listen_events=0 accepts=0 empty_accepts=0 connections=100 requests=500
loop 2: wakeups=90 listen_events=0 accepts=0 empty_accepts=0 connections=100 requests=500
loop 3: wakeups=90 listen_events=0 accepts=0 empty_accepts=0 connections=100 requests=500
loop 4: wakeups=90 listen_events=0 accepts=0 empty_accepts=0 connections=100 requests=500
"""
WORKERS_STDERR = """handoff: mode=splice jobs=2000 worker_wakeups=80 reactor_wakeups=60
loop 0: wakeups=10 listen_events=5 accepts=64 empty_accepts=0 connections=64 requests=4000
stats: accepted=64 requests=4000
"""
PREFORK_STDERR = "stats: accepted=3 requests=30\nstats: accepted=4 requests=40 shed=1\n"


def parsing_checks():
    counts = bench.server_counts(SHARED_STDERR)
    check("loop lines: one object per loop, every count",
          counts and len(counts["loops"]) == 4 and counts["loops"][2] == {
              "loop": 2, "wakeups": 700, "listen_events": 250, "accepts": 200, "empty_accepts": 2,
              "connections": 200, "requests": 2000}, counts and counts.get("loops"))
    check("listen wake-ups per accept = sum of listen_events / sum of accepts",
          counts["accepts"] == 1000 and counts["listen_events"] == 1200 and counts["listen_events_per_accept"] == 1.2,
          counts)
    check("empty accepts per accept", counts["empty_accepts_per_accept"] == 0.02, counts["empty_accepts_per_accept"])
    # (1000)^2 / (4 * (300^2 + 300^2 + 200^2 + 200^2)) = 1e6 / 1.04e6
    check("accepts spread: min, max and Jain's index over the loops",
          counts["accepts_spread"] == {"min": 200, "max": 300, "jain": 0.962}, counts["accepts_spread"])
    check("connections spread and Jain's index", counts["connections_spread"] == {"min": 200, "max": 300, "jain": 0.962}
          and counts["connections_per_loop_jain"] == 0.962, counts)
    check("the scope says the counts cover the whole run",
          "whole run" in counts["scope"] and "warm-ups" in counts["scope"], counts["scope"])
    check("no handoff without a handoff line", "handoff" not in counts and "worker_wakeups_per_job" not in counts, counts)

    counts = bench.server_counts(MULTI_REACTOR_STDERR, scope="this point")
    check("multi-reactor: the accepting loop is the main one, the serving loops the sub-reactors",
          counts["accepts_spread"] == {"min": 400, "max": 400, "jain": 1.0}
          and counts["connections_spread"] == {"min": 100, "max": 100, "jain": 1.0} and counts["scope"] == "this point",
          counts)
    counts = bench.server_counts(WORKERS_STDERR)
    check("handoff line: mode and counts, wake-ups per job",
          counts["handoff"] == {"mode": "splice", "jobs": 2000, "worker_wakeups": 80, "reactor_wakeups": 60}
          and counts["worker_wakeups_per_job"] == 0.04 and counts["reactor_wakeups_per_job"] == 0.03, counts)
    check("no counts from a server without loop lines",
          bench.server_counts("listening on 127.0.0.1:1\nstats: accepted=3 requests=3\n") is None)
    stats = bench.server_stats(PREFORK_STDERR)
    check("stats lines summed over the processes that print them",
          stats["lines"] == 2 and stats["accepted"] == 7 and stats["requests"] == 70 and stats["shed"] == 1, stats)
    check("no stats without a stats line", bench.server_stats("listening on 127.0.0.1:1\n") is None)


def loadgen_doc(paths=None, timeline=None):
    response = {"p50_us": 100, "p90_us": 200, "p99_us": 300, "p99_9_us": 400, "max_us": 500, "mean_us": 120}
    doc = {"totals": {"completed": 1000, "failed": 0, "warmup": {"completed": 10}, "in_flight_at_end": 0,
                      "responses_in_window": 1000},
           "rates": {"requests_per_s": 1000.0, "bytes_read_per_s": 1.0},
           "latency": {"response_time": response},
           "fairness": {"connections": 64, "served": 64, "jain_index": 1.0},
           "errors": {"total": 0}, "cpu": {"us_per_request": 5.0},
           "config": {"mode": "closed", "idle": 0}, "timeline": timeline or []}
    if paths is not None:
        doc["paths"] = paths
    return doc


def path(name, requests, p50, p99, maximum, errors=0):
    return {"path": name, "percent": 1.0 if "sleep" in name else 99.0, "requests": requests, "errors": errors,
            "latency": {"response_time": {"p50_us": p50, "p99_us": p99, "max_us": maximum}}}


def mix_parsing_checks():
    summary = bench.loadgen_summary(loadgen_doc([path("/", 990, 40, 90, 3000), path("/sleep/50", 10, 50000, 51000, 52000, 1)]))
    check("--mix: the fast (paths[0]) and slow (paths[1]) requests' figures",
          summary["fast_requests"] == 990 and summary["fast_latency_p99_us"] == 90 and summary["fast_latency_max_us"] == 3000
          and summary["slow_latency_p99_us"] == 51000 and summary["slow_errors"] == 1 and summary["fast_latency_p50_us"] == 40,
          summary)
    check("--mix: every path kept", [p["path"] for p in summary["paths"]] == ["/", "/sleep/50"]
          and summary["paths"][1]["latency_max_us"] == 52000, summary.get("paths"))
    summary = bench.loadgen_summary(loadgen_doc())
    check("without --mix: no per-path figures, nothing else missing",
          "paths" not in summary and not any(k.startswith(("fast_", "slow_")) for k in summary)
          and summary["latency_p99_us"] == 300, summary)
    partial = path("/", 990, 40, 90, 3000)
    del partial["latency"]
    summary = bench.loadgen_summary(loadgen_doc([partial]))
    check("a path without latency figures is tolerated",
          summary["fast_requests"] == 990 and "fast_latency_p99_us" not in summary and "slow_requests" not in summary, summary)
    medians = bench.summary_medians(bench.summarize([
        bench.loadgen_summary(loadgen_doc([path("/", 1, 1, p99, 1), path("/sleep/50", 1, 1, 1, 1)])) for p99 in (80, 120, 90)]))
    check("the fast p99 has a median over the repetitions", medians["fast_latency_p99_us"] == 90, medians)


def scenario_checks():
    check("thread ladder, 1 CPU: 1, 2, 4", bench.thread_ladder(1) == [1, 2, 4], bench.thread_ladder(1))
    check("thread ladder, 6 CPUs: powers of two, the CPUs, then 2× and 4×",
          bench.thread_ladder(6) == [1, 2, 4, 6, 12, 24], bench.thread_ladder(6))
    check("quick thread ladder, 4 CPUs: 1, 4, 16", bench.thread_ladder(4, quick=True) == [1, 4, 16],
          bench.thread_ladder(4, quick=True))
    path_ = os.path.join(scratch, "scenarios.txt")
    with open(path_, "w") as f:
        f.write("herd c=10 10 / quick for=multicore,epoll-lt -c 10 --close\n"
                "cores t={T} {T} / quick for=epoll-lt,reuseport* set=--threads:{T} -c 64\n"
                "handoff c=1 1 /cpu/0 for=reactor-workers* fresh duration=2.5 -c 1\n"
                "plaintext c=64 64 / -c 64\n")
    points = bench.load_scenarios(path_, server_cpus=2)
    labels = [(p.scenario, p.label, p.x, p.quick) for p in points]
    check("{T} becomes one point per thread count, quick ones marked",
          labels == [("herd", "c=10", 10.0, True), ("cores", "t=1", 1.0, True), ("cores", "t=2", 2.0, True),
                     ("cores", "t=4", 4.0, False), ("cores", "t=8", 8.0, True), ("handoff", "c=1", 1.0, False),
                     ("plaintext", "c=64", 64.0, False)], labels)
    cores = points[2]
    check("set= and for= are read, the loadgen arguments left as they are",
          cores.server_set == (("--threads", "2"),) and cores.servers_for == ["epoll-lt", "reuseport*"]
          and cores.args == ["-c", "64"] and points[0].args == ["-c", "10", "--close"] and not cores.fresh
          and points[5].fresh and points[6].servers_for is None, vars(cores))
    check("duration= is read as the point's seconds; without it None",
          points[5].duration == 2.5 and points[5].args == ["-c", "1"] and cores.duration is None, vars(points[5]))
    shared = bench.ServerConfig("reuseport:shared", "reuseport", "multicore", ["--threads", "4", "--listen", "shared"])
    workers = bench.ServerConfig("reactor-workers", "reactor-workers", "multicore", ["--workers", "16"])
    epoll = bench.ServerConfig("epoll-lt", "epoll-lt", "event", [])
    check("for= matches names by pattern and families",
          cores.is_for(shared) and cores.is_for(epoll) and not cores.is_for(workers)
          and points[0].is_for(workers) and points[0].is_for(epoll) and points[6].is_for(workers)
          and not points[0].is_for(bench.ServerConfig("thread-pool", "thread-pool", "blocking", [])))
    check("set= replaces the option's value, keeps the rest, adds nothing to a server without it",
          bench.apply_server_set(shared.args, cores.server_set) == ["--threads", "2", "--listen", "shared"]
          and bench.apply_server_set(["--threads=4"], cores.server_set) == ["--threads=2"]
          and bench.apply_server_set([], cores.server_set) == [] and shared.args[1] == "4")
    with open(path_, "w") as f:
        f.write("churn-defer c=64 64 / quick add=--defer-accept:1 -c 64 --close\n")
    defer = bench.load_scenarios(path_)[0]
    check("add= is read: the option is appended to every server's arguments, nginx gets deferred",
          defer.server_add == (("--defer-accept", "1"),) and defer.args == ["-c", "64", "--close"]
          and bench.apply_server_set(shared.args, defer.server_set, defer.server_add)
          == ["--threads", "4", "--listen", "shared", "--defer-accept", "1"]
          and bench.nginx_listen_options(defer.server_add) == " deferred"
          and bench.nginx_listen_options((("--threads", "2"),)) == "", vars(defer))
    for bad, why in (("x c=1 1 / quick bogus -c 1\n", "unknown token"), ("x c=1 1 / set=--threads -c 1\n", "set="),
                     ("x c=1 1 / add=--defer-accept -c 1\n", "add="),
                     ("x c=1 1 / -c 1\nx c=1 1 / -c 2\n", "twice"),
                     ("x c=1 1 / duration=0 -c 1\n", "duration="), ("x c=1 1 / duration=soon -c 1\n", "duration=")):
        with open(path_, "w") as f:
            f.write(bad)
        try:
            bench.load_scenarios(path_)
            problem = "accepted"
        except ValueError as e:
            problem = None if why in str(e) else str(e)
        check(f"a bad scenarios line is refused ({why})", problem is None, problem)
    # The suite's own file: the new scenarios, each with its quick point.
    points = bench.load_scenarios(bench.SCENARIOS_FILE, server_cpus=1)
    quick = {(p.scenario, p.label) for p in points if p.quick}
    check("scenarios.txt: herd, mix, handoff and a reduced cores in the quick suite",
          {("herd", "c=10"), ("mix", "c=64"), ("handoff", "c=64"), ("cores", "t=1"), ("cores", "t=4")} <= quick
          and ("cores", "t=2") not in quick, sorted(q for q in quick if q[0] in ("herd", "mix", "cores", "handoff")))


def rep(number, **figures):
    values = {"rep": number, "requests_per_s": 10000.0, "responses_in_window": 10000, "server_cpu_us_per_request": 10.0,
              "client_cpu_us_per_request": 12.0, "connections": 64, "connections_served": 64, "latency_p99_us": 900,
              "errors": 0, "voluntary_switches": 20000, "server_cpu_window_s": 1.0}
    values.update(figures)
    return values


def measured(server, family, scenario, point, x, reps, route="/", **extra):
    keys = [k for k in reps[0] if k != "rep" and isinstance(reps[0][k], (int, float))]
    medians = {k: sorted(r[k] for r in reps)[len(reps) // 2] for k in keys}
    record = {"server": server, "family": family, "scenario": scenario, "point": point, "x": x, "route": route,
              "status": "ok", "median": medians,
              "spread": {k: {"median": v, "min": v, "max": v} for k, v in medians.items()}, "reps": reps}
    record.update(extra)
    return record


def write_raw(directory, name, p99s):
    """A repetition's loadgen JSON with a timeline of len(p99s) seconds, the fast path's p99 each."""
    os.makedirs(os.path.join(directory, "raw"), exist_ok=True)
    timeline = [{"second": i, "t": i + 1, "length_s": 1, "requests": 100, "p99_ms": 99.0,
                 "paths": [{"path": "/", "requests": 99, "p99_ms": p99, "max_ms": p99 * 2},
                           {"path": "/sleep/50", "requests": 1, "p99_ms": 50.0, "max_ms": 50.0}]}
                for i, p99 in enumerate(p99s)]
    with open(os.path.join(directory, "raw", name), "w") as f:
        json.dump(loadgen_doc(timeline=timeline), f)
    return f"raw/{name}"


def made_up_run(server_cpus="0"):
    directory = tempfile.mkdtemp(dir=scratch)
    families = {"epoll-lt": "event", "reuseport:shared": "multicore", "reactor-workers": "multicore",
                "reactor-workers:ring": "multicore"}
    shared = bench.server_counts(SHARED_STDERR)
    workers = bench.server_counts(WORKERS_STDERR)
    records = [
        # herd: 1000 connections a second, 2 or 1.5 switches each.
        measured("epoll-lt", "event", "herd", "c=10", 10, [rep(1, requests_per_s=1000.0, voluntary_switches=1000)],
                 server_stats=bench.server_stats(PREFORK_STDERR)),
        measured("reuseport:shared", "multicore", "herd", "c=10", 10,
                 [rep(1, requests_per_s=1000.0, voluntary_switches=3000), rep(2, requests_per_s=1000.0, voluntary_switches=4000)],
                 server_counts=shared),
        # mix: epoll-lt's fast p99 is the sleep, reactor-workers' exactly the goal, ring's just above.
        measured("epoll-lt", "event", "mix", "c=64", 64,
                 [rep(i + 1, fast_latency_p50_us=50000, fast_latency_p99_us=v, fast_latency_max_us=100000,
                      slow_latency_p99_us=100000, slow_latency_max_us=100000,
                      paths=[{"path": "/"}, {"path": "/sleep/50"}]) for i, v in enumerate((51000, 52000, 50000))],
                 loadgen_args=["-c", "64", "--mix", "/sleep/50:1"],
                 raw=[write_raw(directory, "epoll-lt-mix-c=64-rep1.json", [51.0, 52.0]),
                      write_raw(directory, "epoll-lt-mix-c=64-rep2.json", [50.0])]),
        measured("reactor-workers", "multicore", "mix", "c=64", 64,
                 [rep(1, fast_latency_p50_us=100, fast_latency_p99_us=5000, fast_latency_max_us=9000,
                      slow_latency_p99_us=200000, slow_latency_max_us=200000)], raw=[]),
        measured("reactor-workers:ring", "multicore", "mix", "c=64", 64,
                 [rep(1, fast_latency_p50_us=100, fast_latency_p99_us=5010, fast_latency_max_us=9000,
                      slow_latency_p99_us=200000, slow_latency_max_us=200000)], raw=[]),
        # cores
        measured("epoll-lt", "event", "cores", "t=1", 1, [rep(1, requests_per_s=120000.0)], server_args=[]),
        measured("epoll-lt", "event", "cores", "t=4", 4, [rep(1, requests_per_s=121000.0)], server_args=[]),
        measured("reuseport:shared", "multicore", "cores", "t=1", 1, [rep(1, requests_per_s=118000.0)],
                 server_args=["--threads", "1", "--listen", "shared"]),
        measured("reuseport:shared", "multicore", "cores", "t=4", 4, [rep(1, requests_per_s=100000.0)],
                 server_args=["--threads", "4", "--listen", "shared"]),
        # handoff beside plaintext: 13.5 - 5.5 µs = 8000 ns at c=64; no plaintext c=1.
        measured("reactor-workers", "multicore", "plaintext", "c=64", 64, [rep(1, server_cpu_us_per_request=5.5)]),
        measured("reactor-workers", "multicore", "handoff", "c=64", 64, [rep(1, server_cpu_us_per_request=13.5)],
                 route="/cpu/0", server_counts=workers),
        measured("reactor-workers", "multicore", "handoff", "c=1", 1, [rep(1, server_cpu_us_per_request=20.0)],
                 route="/cpu/0", server_counts=workers),
    ]
    doc = {"schema": report.SCHEMA, "environment": {}, "settings": {
        "servers": list(families), "server_cpus": server_cpus, "duration_s": 1,
        "server_configs": {s: {"family": f} for s, f in families.items()}}, "records": records}
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(doc, f)
    return report.Run(directory)


def report_checks():
    run = made_up_run()
    header, rows, lines = report.herd_table(run)
    table = {row[0]: dict(zip(header, row)) for row in rows}
    check("herd table: one row per server of the scenario, no others", list(table) == ["epoll-lt", "reuseport:shared"],
          list(table))
    shared = table["reuseport:shared"]
    check("herd table: wake-ups and empty accepts per accept, accepts per loop, Jain's index",
          shared["listen wake-ups per accept"] == "1.200" and shared["empty accepts per accept"] == "0.0200"
          and shared["accepts per loop"] == "300 / 300 / 200 / 200" and shared["accepts Jain"] == "0.962"
          and shared["loops"] == "4" and shared["accepted"] == "1,000", shared)
    check("herd table: voluntary switches per connection, the median of the repetitions",
          shared["voluntary switches per connection"] == "3.50" and table["epoll-lt"]["voluntary switches per connection"] == "1.00",
          (shared, table["epoll-lt"]))
    check("herd table: epoll-lt's one loop is not counted but its accepts are (stats line)",
          table["epoll-lt"]["loops"] == "1 (not counted)" and table["epoll-lt"]["accepted"] == "7"
          and table["epoll-lt"]["listen wake-ups per accept"].startswith("not counted"), table["epoll-lt"])

    header, rows, lines = report.mix_table(run)
    table = {row[0]: dict(zip(header, row)) for row in rows}
    check("mix table: the fast requests' p50, p99 and max, the slow ones' p99",
          table["epoll-lt"]["fast p99 ms"] == "51.00" and table["epoll-lt"]["fast p50 ms"] == "50.00"
          and table["reactor-workers"]["fast p99 ms"] == "5.00" and table["reactor-workers"]["slow p99 ms"] == "200.00"
          and table["reactor-workers"]["fast max ms"] == "9.00", table)
    goals = {g.what: g for g in report.goals_mix(run)}
    met = goals.get("(e) reactor-workers: mix c=64, fast requests' p99 with 1 % of requests blocking")
    above = goals.get("(e) reactor-workers:ring: mix c=64, fast requests' p99 with 1 % of requests blocking")
    check("goal (e): 5.00 ms is met, 5.01 ms is not", met and met.verdict == "met" and met.target == "≤ 5 ms"
          and above and above.verdict == "not met" and above.measured.startswith("5.01 ms"),
          [(g.what, g.measured, g.verdict) for g in goals.values()])
    blocking = goals.get("(e) epoll-lt: mix c=64, fast requests' p99 against the sleep")
    check("goal (e): epoll-lt's fast p99 against the sleep, from the data",
          blocking and blocking.measured == "51.00 ms (50.00–52.00 over 3 repetitions) = 1.02× the 50 ms sleep",
          blocking and blocking.measured)
    check("goal (e) absent from a run without the mix", report.goals_mix(run_without(run, "mix")) == [])

    header, rows, lines = report.cores_table(run)
    check("cores: on 1 server CPU the report says so instead of claiming a curve",
          report.CORES_ONE_CPU in lines and rows[1][:3] == ["reuseport:shared", "118,000", "100,000"], (rows, lines))
    header, rows, lines = report.cores_table(made_up_run(server_cpus="0-3"))
    check("cores: on 4 server CPUs no such sentence", report.CORES_ONE_CPU not in lines
          and any("4 server CPUs" in line for line in lines), lines)

    header, rows, lines = report.handoff_table(run)
    table = {row[2]: dict(zip(header, row)) for row in rows}
    check("handoff: /cpu/0 minus / in ns, and the wake-ups per job",
          table["c=64"]["hand-off ns"] == "8,000" and table["c=64"]["hand-off"] == "splice"
          and table["c=64"]["worker wake-ups per job"] == "0.040" and table["c=64"]["reactor wake-ups per job"] == "0.0300",
          table.get("c=64"))
    check("handoff: without plaintext at that concurrency, – and why",
          table["c=1"]["hand-off ns"].startswith("– [") and any("no plaintext c=1" in line for line in lines),
          (table.get("c=1"), lines))

    data = os.path.join(run.dir, "data")
    have = report.prepare_data(run, data)
    with open(os.path.join(data, "mix_timeline-epoll-lt.tsv")) as f:
        blocks = f.read().split("\n\n\n")
    rows = [[line.split() for line in block.strip().splitlines() if not line.startswith("#")] for block in blocks]
    check("mix timeline: the fast p99 per second, repetitions end to end, apart",
          rows == [[["1", "51", "102"], ["2", "52", "104"]], [["3", "50", "100"]]], rows)
    check("the multicore plots have data", all(have.get(p) for p in ("herd", "herd_loops", "mix_timeline",
                                                                      "cores_throughput", "cores_cpu", "handoff")),
          {p: have.get(p) for p in ("herd", "herd_loops", "mix_timeline", "cores_throughput", "cores_cpu", "handoff")})
    with open(os.path.join(data, "herd.tsv")) as f:
        herd = [line.split() for line in f]
    check("herd plot: epoll-lt's listen wake-ups are not drawn (not counted), its switches are",
          herd[0] == ["label", "epoll-lt", "reuseport:shared"] and herd[1] == ["listen-wake-ups/accept", "NaN", "1.2"]
          and herd[2] == ["voluntary-switches/connection", "1", "3.5"], herd)
    with open(os.path.join(data, "handoff.tsv")) as f:
        handoff = [line.split() for line in f]
    check("handoff plot: the cost in ns per server", handoff == [["label", "reactor-workers"], ["c=64", "8000"]], handoff)


def run_without(run, scenario):
    doc = json.load(open(os.path.join(run.dir, "results.json")))
    doc["records"] = [r for r in doc["records"] if r["scenario"] != scenario]
    directory = tempfile.mkdtemp(dir=scratch)
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(doc, f)
    return report.Run(directory)


def main():
    parsing_checks()
    mix_parsing_checks()
    scenario_checks()
    report_checks()
    return checks.summary()


if __name__ == "__main__":
    try:
        status = main()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(status)
