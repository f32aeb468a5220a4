#!/usr/bin/env python3
"""report.py RUN_DIR - plots and report of one benchmark run, from its results.json alone.

bench.py calls it at the end of a run; `make plots RUN=results/<run>` calls it again, so plots and
report can be redrawn (after a change to a gnuplot script, say) without measuring anything.
Writes RUN_DIR/data/*.tsv (what the plots draw), RUN_DIR/*.png and *.svg (gnuplot scripts in
plots/), RUN_DIR/report.md and a self-contained RUN_DIR/report.html.
"""
import base64
import html
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOTS_DIR = os.path.join(ROOT, "plots")
SCHEMA = "c10k-lab/results/1"

# The point that stands for a scenario in the summary tables and the CPU-per-request plot.
REPRESENTATIVE = {"plaintext": "c=64", "c10k": "idle=10000", "latency": "50%", "churn": "c=64", "churn-defer": "c=64"}

PLOTS = [
    ("throughput", "Throughput vs concurrency (plaintext)"),
    ("latency_p99", "p99 latency vs concurrency (plaintext)"),
    ("latency_rate", "Corrected latency vs offered rate (latency)"),
    ("c10k_throughput", "Throughput vs idle connections (c10k)"),
    ("c10k_memory", "Server memory vs idle connections (c10k)"),
    ("c10k_cpu", "Server CPU per request vs idle connections (c10k)"),
    ("cpu_per_request", "Server CPU per request, by scenario"),
    ("churn", "Keep-alive vs a new connection per request"),
    ("herd", "The herd: listen wake-ups and context switches per accepted connection (herd)"),
    ("herd_loops", "Accepts per loop (herd)"),
    ("mix_timeline", "Blocking mix: the fast requests' p99 per second (mix)"),
    ("cores_throughput", "Throughput vs threads (cores)"),
    ("cores_cpu", "Server CPU per request vs threads (cores)"),
    ("handoff", "The cost of one hand-off, by design (handoff)"),
]


def median(record, key):
    value = ((record or {}).get("median") or {}).get(key)
    return value if isinstance(value, (int, float)) else None


def spread(record, key):
    value = (record.get("spread") or {}).get(key)
    return (value["min"], value["max"]) if value else (None, None)


def nothing_arrived(record):
    """No response arrived in the window of any repetition: the point measured only a stall."""
    reps = record.get("reps") or []
    if reps:
        return all(not r.get("responses_in_window") for r in reps)
    return not median(record, "responses_in_window")


def has_figure(record):
    """A point with figures to show: measured (ok, or errors with responses) and something arrived,
    so that its median rate is above zero. Anything else reads "–" with its reason, and the plots
    draw no point for it (a failed point is not a real 0)."""
    return (record is not None and record.get("status") in ("ok", "errors") and bool(record.get("median"))
            and not nothing_arrived(record) and (median(record, "requests_per_s") or 0) > 0)


def missing_reason(record):
    """Why a record has no figure, in a few words."""
    if record["status"] == "not_applicable":
        return "not applicable: " + (record.get("reason") or "")
    if record["status"] == "skipped":
        return "skipped: " + (record.get("reason") or "")
    if record["status"] == "failed":
        return "failed: " + (record.get("reason") or "; ".join(record.get("failures") or []) or "no measurement")
    reps = record.get("reps") or []
    if not nothing_arrived(record) and not (median(record, "requests_per_s") or 0) > 0:
        return ("the median repetition answered nothing (" + record["status"] + "): " +
                (f"{median(record, 'errors'):,.0f} errors" if median(record, "errors") else "no rate") +
                " in its measured window")
    served = [f"{r['connections_served']}/{r['connections']}" for r in reps
              if r.get("connections") is not None and r.get("connections_served") is not None]
    classes = {}
    for r in reps:
        for name, count in (r.get("error_classes") or {}).items():
            classes[name] = classes.get(name, 0) + count
    detail = ""
    if served:
        detail += f"; connections served {', '.join(sorted(set(served)))}"
    if classes:
        detail += "; errors " + ", ".join(f"{name} {count:,}" for name, count in sorted(classes.items()))
    return "no response arrived in any repetition's measured window" + detail


class Notes:
    """Footnotes of one table: a cell without a figure reads "– [n]", and [n] the reason under
    the table. One number per server and reason, however many cells share it."""

    def __init__(self):
        self.numbers = {}
        self.places = {}

    def mark(self, record, reason=None):
        reason = reason or missing_reason(record)
        key = (record["server"], reason)
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            self.places[key] = []
        place = f"{record['scenario']} {record['point']}"
        if place not in self.places[key]:
            self.places[key].append(place)
        return f"– [{self.numbers[key]}]"

    def lines(self):
        return [f"[{number}] {server}, {', '.join(self.places[(server, reason)])}: {reason}"
                for (server, reason), number in self.numbers.items()]


class Run:
    def __init__(self, run_dir):
        self.dir = run_dir
        with open(os.path.join(run_dir, "results.json")) as f:
            self.doc = json.load(f)
        if self.doc.get("schema") != SCHEMA:
            raise SystemExit(f"report.py: {run_dir}/results.json is not {SCHEMA}")
        self.records = self.doc["records"]
        self.servers = []
        self.scenarios = []
        for record in self.records:
            if record["server"] not in self.servers:
                self.servers.append(record["server"])
            if record["scenario"] not in self.scenarios:
                self.scenarios.append(record["scenario"])

    def find(self, server, scenario, point=None):
        for record in self.records:
            if record["server"] == server and record["scenario"] == scenario and \
                    (point is None or record["point"] == point):
                return record
        return None

    def points(self, scenario):
        labels = []
        for record in self.records:
            if record["scenario"] == scenario and record["point"] not in labels:
                labels.append(record["point"])
        return labels

    def measured(self, server, scenario):
        """The points of a scenario that have figures, by x: the plots draw these and no others."""
        return sorted((r for r in self.records if r["server"] == server and r["scenario"] == scenario
                       and has_figure(r)), key=lambda r: r["x"])

    def family(self, server):
        config = (self.doc.get("settings", {}).get("server_configs") or {}).get(server) or {}
        if config.get("family"):
            return config["family"]
        record = next((r for r in self.records if r["server"] == server and r.get("family")), None)
        return record["family"] if record else ("reference" if server == "nginx" else "other")

    def representative(self, server, scenario):
        record = self.find(server, scenario, REPRESENTATIVE.get(scenario))
        if record is None:
            record = self.find(server, scenario)
        return record


# --- data and plots ------------------------------------------------------------------------------

def write_series(run, data_dir, name, scenario, x_of, columns):
    """One TSV per server: x, then (median, min, max) of every column. Returns the servers written."""
    written = []
    for server in run.servers:
        rows = []
        for record in run.measured(server, scenario):
            values = []
            for key, scale in columns:
                m = median(record, key)
                lo, hi = spread(record, key)
                if m is None:
                    break
                values += [m * scale, (lo if lo is not None else m) * scale, (hi if hi is not None else m) * scale]
            else:
                x = x_of(record)
                if x is not None:
                    rows.append([x] + values)
        if rows:
            with open(os.path.join(data_dir, f"{name}-{server}.tsv"), "w") as f:
                f.write("# x " + " ".join(f"{k}_median {k}_min {k}_max" for k, _ in columns) + "\n")
                for row in rows:
                    f.write(" ".join(f"{v:.6g}" for v in row) + "\n")
            written.append(server)
    return written


def write_starved_labels(run, data_dir, name, scenario, servers):
    """Labels for the points where some connections got no response: "1/64 served". A latency
    percentile there describes only the connections that were served."""
    for server in servers:
        with open(os.path.join(data_dir, f"{name}_starved-{server}.tsv"), "w") as f:
            f.write("# x p99_ms label\n")
            for record in run.measured(server, scenario):
                served, connections = median(record, "connections_served"), median(record, "connections")
                p99 = median(record, "latency_p99_us")
                if served is not None and connections and served < connections and p99 is not None:
                    f.write(f"{record['x']:.6g} {p99 * 1e-3:.6g} {served:.0f}/{connections:.0f}-served\n")


def bar_value(record, key):
    """A bar's height, or why there is none: a missing bar must say whether the point was not run,
    does not apply, was skipped, failed or measured zero, and these must look different."""
    if record is None:
        return "not run"
    if record["status"] == "not_applicable":
        return "n/a"
    if record["status"] == "skipped":
        return "skipped"
    if not has_figure(record):
        return "failed"
    value = median(record, key)
    if value is None:
        return "not measured"
    return value if value > 0 else "zero"


def write_bars(run, data_dir, name, rows):
    """A table for a clustered bar chart: one row per label, one column per server; and NAME_marks.tsv
    with a label where a bar is missing (bar_value's reason), at the bar's place: x = the cluster's
    index plus the bar's offset in it (gnuplot's clustered histogram with gap 1)."""
    def number(v):
        return isinstance(v, (int, float))
    servers = [s for s in run.servers if any(number(values.get(s)) for _, values in rows)]
    rows = [(label, values) for label, values in rows if any(number(v) for v in values.values())]
    if not servers or not rows:
        return []
    numbers = [v for _, values in rows for s, v in values.items() if s in servers and number(v)]
    base = min(numbers) / 2 if numbers else 1.0  # where a label stands: below every bar, above 0 on a log axis
    with open(os.path.join(data_dir, f"{name}.tsv"), "w") as f, \
            open(os.path.join(data_dir, f"{name}_marks.tsv"), "w") as marks:
        f.write("label " + " ".join(servers) + "\n")
        marks.write("x y why\n")  # a header line: the bar charts read their files with autotitle columnheader
        for i, (label, values) in enumerate(rows):
            f.write(label + " " + " ".join(f"{values[s]:.6g}" if number(values.get(s)) else "NaN"
                                           for s in servers) + "\n")
            for j, server in enumerate(servers):
                why = values.get(server)
                if isinstance(why, str):
                    x = i + (j - (len(servers) - 1) / 2) / (len(servers) + 1)
                    marks.write(f'{x:.4f} {base:.6g} "{why}"\n')
    return servers


def prepare_data(run, data_dir):
    """Writes the data of every plot; returns {plot: servers} for the plots that have data."""
    os.makedirs(data_dir, exist_ok=True)
    have = {}
    have["throughput"] = write_series(run, data_dir, "throughput", "plaintext", lambda r: r["x"],
                                      [("requests_per_s", 1)])
    have["latency_p99"] = write_series(run, data_dir, "latency_p99", "plaintext", lambda r: r["x"],
                                       [("latency_p99_us", 1e-3)])
    write_starved_labels(run, data_dir, "latency_p99", "plaintext", have["latency_p99"])
    have["latency_rate"] = write_series(run, data_dir, "latency_rate", "latency",
                                        lambda r: median(r, "offered_rate"),
                                        [("latency_p99_us", 1e-3), ("service_p99_us", 1e-3)])
    have["c10k_throughput"] = write_series(run, data_dir, "c10k_throughput", "c10k", lambda r: r["x"],
                                           [("requests_per_s", 1)])
    have["c10k_memory"] = write_series(run, data_dir, "c10k_memory", "c10k", lambda r: r["x"],
                                       [("peak_rss_bytes", 1 / 1048576)])
    have["c10k_cpu"] = write_series(run, data_dir, "c10k_cpu", "c10k", lambda r: r["x"],
                                    [("server_cpu_us_per_request", 1)])
    cpu_rows = []
    for scenario in run.scenarios:
        values = {}
        for server in run.servers:
            values[server] = bar_value(run.representative(server, scenario), "server_cpu_us_per_request")
        cpu_rows.append((scenario, values))
    have["cpu_per_request"] = write_bars(run, data_dir, "cpu_per_request", cpu_rows)
    churn_rows = []
    for scenario, label in (("plaintext", "keep-alive"), ("churn", "new-connection")):
        values = {}
        for server in run.servers:
            values[server] = bar_value(run.find(server, scenario, "c=64"), "requests_per_s")
        churn_rows.append((label, values))
    have["churn"] = write_bars(run, data_dir, "churn", churn_rows)
    have.update(prepare_multicore_data(run, data_dir))
    return {name: servers for name, servers in have.items() if servers}


def plot_settings(run, data_dir, plot, servers):
    """gnuplot settings every plot gets from the run: `reps` (one repetition has no range, so no
    error bars and no error-bar symbol in the key), `xlo`/`xhi` when every server has the same one x
    (a quick run's single point, drawn in the middle of its own range instead of at the edge of an
    empty default one), and `has_marks` when a bar chart has bars that say why they are missing."""
    settings = [f"reps={int(run.doc.get('settings', {}).get('reps') or 1)}"]
    xs = set()
    for server in servers:
        path = os.path.join(data_dir, f"{plot}-{server}.tsv")
        if os.path.exists(path):
            with open(path) as f:
                xs.update(line.split()[0] for line in f if line.strip() and not line.startswith("#"))
    if len(xs) == 1:
        x = float(xs.pop())
        low, high = (x / 2, x * 2) if x > 0 else (x - 1, x + 1)
        settings.append(f"xlo={low:.6g}; xhi={high:.6g}")
    marks = os.path.join(data_dir, f"{plot}_marks.tsv")
    if os.path.exists(marks):
        with open(marks) as f:
            if sum(1 for line in f if line.strip() and not line.startswith("#")) > 1:  # past its header
                settings.append("has_marks=1")
    return "; ".join(settings)


def draw(run_dir, data_dir, plot, servers, extra=""):
    """Runs plots/PLOT.gp (or the multicore plots' script, written into data/) for PNG and SVG, with
    extra gnuplot settings; returns the problem, or None."""
    script = os.path.join(PLOTS_DIR, f"{plot}.gp")
    if plot in MULTICORE_SCRIPTS:
        script = os.path.join(data_dir, f"{plot}.gp")
        with open(script, "w") as f:
            f.write(MULTICORE_SCRIPTS[plot])
    for terminal, extension in (("pngcairo size 960,600 font 'sans,11'", "png"),
                                ("svg size 960,600 dynamic font 'sans,11'", "svg")):
        output = os.path.join(run_dir, f"{plot}.{extension}")
        settings = (f"datadir='{data_dir}'; output='{output}'; servers='{' '.join(servers)}'; "
                    f"terminal=\"{terminal}\"" + (f"; {extra}" if extra else ""))
        try:
            result = subprocess.run(["gnuplot", "-e", settings, script], capture_output=True, text=True,
                                    timeout=60, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"gnuplot failed: {e}"
        if result.returncode != 0 or not os.path.exists(output) or os.path.getsize(output) == 0:
            return f"gnuplot {plot}.gp: {result.stderr.strip()[-300:]}"
    return None


# --- report ----------------------------------------------------------------------------------------

def fmt(value, digits=0, scale=1.0):
    if value is None:
        return "–"
    value *= scale
    return f"{value:,.{digits}f}"


def cell(record, key, notes, digits=0, scale=1.0):
    if record is None:
        return "–"
    if not has_figure(record):
        return notes.mark(record)
    value = median(record, key)
    text = fmt(value, digits, scale)
    if value is None and key == "syscalls_per_request":
        problem = (record.get("syscall_run") or {}).get("problem")
        if problem:
            return notes.mark(record, f"system calls not counted: {problem}")
    if record["status"] == "errors":
        return text + " (errors)"
    # Percentiles cover only the requests that were answered: say when some connections got nothing.
    served, connections = median(record, "connections_served"), median(record, "connections")
    if key.startswith("latency") and served is not None and connections and served < connections:
        return f"{text} ({served:.0f}/{connections:.0f} served)"
    return text


def format_ratio(ratios):
    """The median of paired ratios with their range: "1.87× (1.62–2.05)". A range that contains
    1.0 cannot tell the two apart: "1.04× (0.93–1.12), within noise"."""
    if not ratios:
        return "–"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}×"
    low, high = min(ratios), max(ratios)
    text = f"{statistics.median(ratios):.2f}× ({low:.2f}–{high:.2f})"
    return text + (", within noise" if low <= 1.0 <= high else "")


def paired_ratios(record, reference, key, keep_zero=False):
    """record / reference per repetition number: bench.py ran repetitions with the same number side
    by side (alternating the servers)."""
    theirs = {r.get("rep"): r.get(key) for r in reference.get("reps") or [] if r.get("rep") is not None}
    # A repetition that measured nothing (0) is a failed one, not a ratio of 0 (unless keep_zero: a
    # goal that counts a refused request as lost).
    return [r[key] / theirs[r["rep"]] for r in record.get("reps") or []
            if isinstance(r.get(key), (int, float)) and isinstance(theirs.get(r.get("rep")), (int, float))
            and theirs[r["rep"]] > 0 and (r[key] > 0 or keep_zero)]


def ratio_text(record, reference, key="requests_per_s"):
    """record / reference as the median of paired ratios with their range (format_ratio). Falls
    back to the ratio of the medians for results without repetition numbers."""
    if not has_figure(record) or not has_figure(reference):
        return "–"
    ratios = paired_ratios(record, reference, key)
    if ratios:
        return format_ratio(ratios)
    mine, other = median(record, key), median(reference, key)
    return f"{mine / other:.2f}×" if mine and other else "–"


def summary_table(run):
    notes = Notes()
    nginx = run.find("nginx", "plaintext", "c=64")
    floor = run.find(FLOOR, "plaintext", "c=64")
    header = ["server", "plaintext c=64 req/s", "req/s ÷ nginx's (higher is better)", "p99 ms", "connections served",
              "server CPU µs/req", "client CPU µs/req", "server CPU/req ÷ nginx's (lower is better)",
              "server CPU/req ÷ floor's (lower is better)",
              "syscalls/req", "churn req/s", "memory per idle conn (bytes)", "peak RSS MiB"]
    rows = []
    for server in run.servers:
        plain = run.find(server, "plaintext", "c=64")
        churn = run.find(server, "churn", "c=64")
        c10k = run.find(server, "c10k", "idle=10000") or next(
            (r for r in reversed(run.measured(server, "c10k"))), None)
        served = "–"
        if has_figure(plain) and median(plain, "connections") is not None:
            served = f"{median(plain, 'connections_served'):.0f}/{median(plain, 'connections'):.0f}"
        rows.append([server, cell(plain, "requests_per_s", notes), ratio_text(plain, nginx),
                     cell(plain, "latency_p99_us", notes, 2, 1e-3), served,
                     cell(plain, "server_cpu_us_per_request", notes, 1),
                     cell(plain, "client_cpu_us_per_request", notes, 1),
                     ratio_text(plain, nginx, "server_cpu_us_per_request"),
                     ratio_text(plain, floor, "server_cpu_us_per_request") if floor else "–",
                     cell(plain, "syscalls_per_request", notes, 2),
                     cell(churn, "requests_per_s", notes), cell(c10k, "memory_per_idle_connection_bytes", notes),
                     cell(plain, "peak_rss_bytes", notes, 1, 1 / 1048576)])
    missing = [f"the ratios to {name}'s read – because {name} is not in this run (or its plaintext c=64 "
               "point has no figure)" for name, record in (("nginx", nginx), (FLOOR, floor)) if not has_figure(record)]
    return header, rows, notes.lines() + missing


def scenario_table(run, scenario):
    notes = Notes()
    labels = run.points(scenario)
    key = "latency_p99_us" if scenario == "latency" else "requests_per_s"
    header = ["server"] + [f"at {label} of its own rate: p99 ms" if scenario == "latency" else f"{label} req/s"
                           for label in labels]
    # In open loop every server is offered a share of its own throughput: compare latencies there.
    ratio_key = "latency_p99_us" if scenario == "latency" else "requests_per_s"
    header += ["p99 ms", "server CPU µs/req", "client CPU µs/req",
               "p99 ÷ nginx's (lower is better)" if scenario == "latency" else "req/s ÷ nginx's (higher is better)"]
    rows = []
    for server in servers_in(run, scenario):
        row = [server]
        for label in labels:
            record = run.find(server, scenario, label)
            row.append(cell(record, key, notes, 2 if key == "latency_p99_us" else 0,
                            1e-3 if key == "latency_p99_us" else 1))
        rep = run.representative(server, scenario)
        row.append(cell(rep, "latency_p99_us", notes, 2, 1e-3))
        row.append(cell(rep, "server_cpu_us_per_request", notes, 1))
        row.append(cell(rep, "client_cpu_us_per_request", notes, 1))
        row.append(ratio_text(rep, run.representative("nginx", scenario), ratio_key))
        rows.append(row)
    return header, rows, notes.lines()


BLOCKING_FAMILY = "blocking"
# The figure the thread-per-connection / fork-per-connection ratio is held against.
SEED_COMPARISON = ("3208 vs 1831 requests/s, 1.75×, thread-per-conn against fork-per-conn with a new "
                   "connection per request from 10 clients, on an old laptop in an earlier comparison")
MEMORY_NOTE = ("Memory per idle connection: growth of RSS, PSS and virtual memory (VmSize), summed over "
               "the server's processes and read halfway through the window, from c10k idle=0 to the "
               "largest idle point this server measured, per idle connection it held there (established, or for a "
               "thread or process per connection, the threads it had made by then). PSS is the "
               "honest figure for processes (RSS counts a shared page once in every process that maps it); "
               "virtual shows what each thread reserves for its stack, mostly never resident.")


def largest_idle_point(run, server):
    """The c10k record with the most idle connections that has figures and idle connections
    established, or None."""
    candidates = [r for r in run.measured(server, "c10k")
                  if r["x"] > 0 and (median(r, "idle_established") or 0) > 0]
    return candidates[-1] if candidates else None


def family_table(run, family=BLOCKING_FAMILY):
    """One row per server of the family, in the manner of UNP chapter 30: the cost of a
    connection (churn c=10) and of a request on a kept connection (plaintext c=16), what the
    paradigm is made of (processes, threads), and what an idle connection costs."""
    notes = Notes()
    header = ["server", "churn c=10 req/s", "churn server CPU µs/req", "churn client CPU µs/req",
              "keep-alive c=16 req/s", "keep-alive server CPU µs/req", "keep-alive client CPU µs/req",
              "processes at c=16", "threads at c=16", "RSS per idle conn KiB", "PSS per idle conn KiB",
              "virtual per idle conn KiB", "idle conns"]
    rows = []
    for server in run.servers:
        if run.family(server) != family:
            continue
        churn = run.find(server, "churn", "c=10")
        plain = run.find(server, "plaintext", "c=16")
        row = [server, cell(churn, "requests_per_s", notes), cell(churn, "server_cpu_us_per_request", notes, 1),
               cell(churn, "client_cpu_us_per_request", notes, 1), cell(plain, "requests_per_s", notes),
               cell(plain, "server_cpu_us_per_request", notes, 1), cell(plain, "client_cpu_us_per_request", notes, 1),
               cell(plain, "processes", notes), cell(plain, "threads", notes)]
        idle = largest_idle_point(run, server)
        if idle is not None:
            row += [cell(idle, key, notes, 1, 1 / 1024) for key in
                    ("rss_per_idle_connection_bytes", "pss_per_idle_connection_bytes",
                     "vmsize_per_idle_connection_bytes")]
            held = median(idle, "idle_held") or median(idle, "idle_established")
            row.append(f"at {held:,.0f} idle")
        else:
            tried = [r for r in run.records if r["server"] == server and r["scenario"] == "c10k" and r["x"] > 0]
            if tried:
                worst = max(tried, key=lambda r: r["x"])
                mark = notes.mark(worst, "no c10k point with idle connections has figures: "
                                  + (missing_reason(worst) if not has_figure(worst) else "no idle connection established"))
            else:
                mark = "–"
            row += [mark, mark, mark, "–"]
        rows.append(row)
    return header, rows, notes.lines() + ([MEMORY_NOTE] if rows else [])


def thread_fork_line(run):
    """thread-per-conn / fork-per-conn, churn c=10 requests/s, beside the seed figure; None unless
    both were measured."""
    thread, fork = run.find("thread-per-conn", "churn", "c=10"), run.find("fork-per-conn", "churn", "c=10")
    if not has_figure(thread) or not has_figure(fork):
        return None
    return (f"thread-per-conn / fork-per-conn, churn c=10 requests/s (paired repetitions): "
            f"{ratio_text(thread, fork)}; held against {SEED_COMPARISON}.")

# --- goals: the event servers against the references ---------------------------------------------

FLOOR, NGINX, EVENT_FAMILY = "floor", "nginx", "event"
GOAL_FLOOR_CPU = 1.05  # (a) the best event server's server CPU per request ÷ the floor's, at most
GOAL_PIPELINE = 5.0    # (b) the best event server's pipelined requests/s ÷ nginx's, at least
GOAL_C10K_LOSS = 5.0   # (c) % of c10k throughput lost at the most idle connections, at most
GOAL_CHURN_ITERATIVE = 1.0  # (f) churn c=64: the best event server's CPU per connection ÷ iterative's, at most
GOAL_CHURN_NGINX = 0.8      # (f) ... ÷ nginx's, at most
ITERATIVE = "iterative"
# The event servers the c10k goal names (each gets a row, "not measured" when absent), and those
# whose cost grows with the descriptors they watch: no loss goal, their CPU per request instead.
C10K_GOAL_SERVERS = ("epoll-lt", "epoll-et", "libuv", "io-uring")
C10K_SCANNING = ("poll", "select")
URING, EPOLL_ET = "io-uring", "epoll-et"
GOALS_NOTE = ("Every ratio is the median of the ratios of repetitions run side by side (the same "
              "repetition number), with their range; the verdict judges that median as printed. Best = "
              "the event server (family \"event\" in harness/servers.txt) with the lowest median server "
              "CPU µs/request at that point. The floor (docs/floor.md) parses nothing: a server at 1.00× its "
              "CPU per request spends nothing beside the kernel's and loopback's work. c10k: requests/s of "
              "the 16 active connections with the most idle connections of the run against none, per "
              "repetition. System calls per request come from one counting run per point, so their ratio "
              "has no range. (d) Why io-uring's CPU per request stays near epoll's although it makes a "
              "tenth of the system calls or fewer: the loopback TCP work (about 87 % of either server's CPU "
              "in a profile) is the same whoever asks for it, and io_uring's own work per operation (a "
              "request to fill and read, a wake-up turned into deferred task work, a completion to post "
              "and reap) costs about what the saved system calls cost on this kind of CPU, where a system "
              "call needs no page-table switch; see docs/io-uring.md. (f) Churn: server CPU per connection "
              "(one request each) at 64 clients, without and with TCP_DEFER_ACCEPT; docs/churn.md.")


class Goal:
    """A row of the goals table. verdict: "met", "not met", "not measured", or "–" (no target)."""

    def __init__(self, what, measured, target="–", verdict="–"):
        self.what, self.measured, self.target, self.verdict = what, measured, target, verdict

    def row(self):
        return [self.what, self.measured, self.target, self.verdict]

    def line(self):
        if self.target == "–":
            return f"{self.what}: {self.measured}"
        return f"{self.what}: {self.measured}; goal {self.target}: {self.verdict}"


def why_absent(run, server, scenario, point):
    """None if server has a figure at the point, else why not, in a few words."""
    if server not in run.servers:
        return f"{server} not in this run"
    record = run.find(server, scenario, point)
    if record is None:
        return f"{server} has no {scenario} {point} in this run"
    if not has_figure(record):
        return f"{server}: {missing_reason(record)}"
    return None


def paired(record, reference, key):
    """(median, text) of the paired ratios record / reference (format_ratio); the ratio of the
    medians for results without repetition numbers; None without figures."""
    ratios = paired_ratios(record, reference, key)
    if not ratios:
        mine, other = median(record, key), median(reference, key)
        if mine is None or not other:
            return None
        ratios = [mine / other]
    return statistics.median(ratios), format_ratio(ratios)


def best_event(run, scenario, point):
    """(name, record) of the event server with the lowest median server CPU per request at the
    point, or (None, why there is none)."""
    events = [s for s in run.servers if run.family(s) == EVENT_FAMILY]
    if not events:
        return None, "no event server in this run"
    measured = [(median(r, "server_cpu_us_per_request"), s, r) for s in events
                for r in [run.find(s, scenario, point)]
                if has_figure(r) and median(r, "server_cpu_us_per_request") is not None]
    if not measured:
        return None, "no event server has a figure here (" + "; ".join(
            why_absent(run, s, scenario, point) or f"{s}: no server CPU figure" for s in events) + ")"
    _, name, record = min(measured, key=lambda m: m[0])
    return name, record


def verdict(value, target, at_most):
    return "met" if (value <= target if at_most else value >= target) else "not met"


def goal_floor_cpu(run):
    what = "(a) keep-alive plaintext c=64: server CPU µs/request, best event server ÷ floor"
    target = f"≤ {GOAL_FLOOR_CPU:.2f}×"
    name, best = best_event(run, "plaintext", "c=64")
    problem = why_absent(run, FLOOR, "plaintext", "c=64") or (None if name else best)
    if problem:
        return Goal(what, f"not measured: {problem}", target, "not measured")
    floor = run.find(FLOOR, "plaintext", "c=64")
    if paired(best, floor, "server_cpu_us_per_request") is None:
        return Goal(what, "not measured: floor has no server CPU figure", target, "not measured")
    value, text = paired(best, floor, "server_cpu_us_per_request")
    measured = (f"{name} {median(best, 'server_cpu_us_per_request'):.2f} µs ÷ floor "
                f"{median(floor, 'server_cpu_us_per_request'):.2f} µs = {text}")
    return Goal(what, measured, target, verdict(round(value, 2), GOAL_FLOOR_CPU, at_most=True))


def pipeline_point(run):
    labels = run.points("pipeline")
    return "c=64" if "c=64" in labels or not labels else labels[0]


def goal_pipeline(run):
    point = pipeline_point(run)
    what = f"(b) pipeline {point} -P 16: requests/s, best event server ÷ nginx"
    target = f"≥ {GOAL_PIPELINE:g}×"
    name, best = best_event(run, "pipeline", point)
    problem = why_absent(run, NGINX, "pipeline", point) or (None if name else best)
    if problem:
        return Goal(what, f"not measured: {problem}", target, "not measured")
    nginx = run.find(NGINX, "pipeline", point)
    value, text = paired(best, nginx, "requests_per_s")
    measured = (f"{name} {median(best, 'requests_per_s'):,.0f} req/s ÷ nginx "
                f"{median(nginx, 'requests_per_s'):,.0f} req/s = {text}")
    return Goal(what, measured, target, verdict(round(value, 2), GOAL_PIPELINE, at_most=False))


def refusals(record, point):
    """What a c10k point with errors shows: the errors by class (summed over the repetitions) and
    the idle connections the server closed (select refuses descriptors at FD_SETSIZE)."""
    reps = record.get("reps") or []
    classes = {}
    for r in reps:
        for name, count in (r.get("error_classes") or {}).items():
            classes[name] = classes.get(name, 0) + count
    parts = []
    if classes:
        text = "errors " + ", ".join(f"{name} {count:,}" for name, count in sorted(classes.items()))
        if "status" in classes:
            text += " (status: responses other than 2xx, e.g. 503 refusals)"
        parts.append(text + f" in {len(reps)} repetitions")
    closed = median(record, "idle_closed_by_peer")
    if closed:
        parts.append(f"idle connections: {median(record, 'idle_open_at_end'):,.0f} of "
                     f"{median(record, 'idle_established'):,.0f} established still open at the end, "
                     f"{closed:,.0f} closed by the server (medians)")
    return f"; at {point}: " + "; ".join(parts) if parts else ""


def goals_c10k(run):
    labels = {r["point"]: r["x"] for r in run.records if r["scenario"] == "c10k"}
    if not labels:
        return [Goal("(c) c10k", "not measured: no c10k scenario in this run", f"≤ {GOAL_C10K_LOSS:g} %",
                     "not measured")]
    base = min(labels, key=labels.get)
    top = max(labels, key=labels.get)
    events = [s for s in run.servers if run.family(s) == EVENT_FAMILY]
    named = [s for s in C10K_GOAL_SERVERS + C10K_SCANNING if s not in events]
    goals = []
    for server in events + named:
        scanning = server in C10K_SCANNING
        what = f"(c) {server}: c10k requests/s lost at {top} against {base}"
        target = "–" if scanning else f"≤ {GOAL_C10K_LOSS:g} %"
        zero, most = run.find(server, "c10k", base), run.find(server, "c10k", top)
        problem = why_absent(run, server, "c10k", base)
        if problem is None and (most is None or most["status"] not in ("ok", "errors") or not most.get("reps")):
            problem = why_absent(run, server, "c10k", top)
        if problem:
            goals.append(Goal(what, f"not measured: {problem}", target, "not measured"))
            continue
        # A point without any response is data here: every request refused is a loss of 100 %.
        ratios = paired_ratios(most, zero, "requests_per_s", keep_zero=True)
        if not ratios:
            goals.append(Goal(what, "not measured: no repetitions to pair", target, "not measured"))
            continue
        loss = [100 * (1 - ratio) for ratio in ratios]
        spread_text = f" ({min(loss):.1f}–{max(loss):.1f} %)" if len(loss) > 1 else ""
        measured = (f"{median(zero, 'requests_per_s'):,.0f} → {median(most, 'requests_per_s'):,.0f} req/s: "
                    f"loss {statistics.median(loss):.1f} %{spread_text}" + refusals(most, top))
        goals.append(Goal(what, measured, target,
                          "–" if scanning else verdict(round(statistics.median(loss), 1), GOAL_C10K_LOSS, at_most=True)))
        if scanning:
            goals.append(goal_c10k_cpu(run, server, base, top, labels))
    return goals


def goal_c10k_cpu(run, server, base, top, labels):
    """How a scanning server's CPU per request rises with the idle connections it watches."""
    figures = []
    for label in sorted(labels, key=labels.get):
        record = run.find(server, "c10k", label)
        value = median(record, "server_cpu_us_per_request") if has_figure(record) else None
        figures.append(f"{value:.2f} at {label}" if value is not None else f"– at {label}")
    zero, most = run.find(server, "c10k", base), run.find(server, "c10k", top)
    rise = paired(most, zero, "server_cpu_us_per_request") if has_figure(most) and has_figure(zero) else None
    text = "µs/request " + ", ".join(figures)
    text += f"; {top} ÷ {base}: {rise[1]}" if rise else f"; {top} ÷ {base}: – ({why_absent(run, server, 'c10k', top) or 'no figure'})"
    return Goal(f"(c) {server}: c10k server CPU µs/request as idle connections grow", text)


def goals_uring(run):
    goals = []
    for scenario, point in (("plaintext", "c=64"), ("pipeline", pipeline_point(run))):
        what = f"(d) {URING} ÷ {EPOLL_ET}, {scenario} {point}: server CPU µs/request and system calls/request"
        problems = [p for p in (why_absent(run, s, scenario, point) for s in (URING, EPOLL_ET)) if p]
        if problems:
            goals.append(Goal(what, "not measured: " + "; ".join(problems), "–", "not measured"))
            continue
        uring, epoll = run.find(URING, scenario, point), run.find(EPOLL_ET, scenario, point)
        cpu = paired(uring, epoll, "server_cpu_us_per_request")
        if cpu is None or median(uring, "server_cpu_us_per_request") is None:
            text = "CPU: no server CPU figure; "
        else:
            text = (f"CPU {median(uring, 'server_cpu_us_per_request'):.2f} vs "
                    f"{median(epoll, 'server_cpu_us_per_request'):.2f} µs = {cpu[1]}; ")
        calls_uring, calls_epoll = median(uring, "syscalls_per_request"), median(epoll, "syscalls_per_request")
        if calls_uring is not None and calls_epoll:
            text += f"system calls {calls_uring:.2f} vs {calls_epoll:.2f} = {calls_uring / calls_epoll:.2f}×"
        else:
            text += "system calls not counted: " + "; ".join(
                f"{name}: {(r.get('syscall_run') or {}).get('problem') or 'no count'}"
                for name, r in ((URING, uring), (EPOLL_ET, epoll)) if median(r, "syscalls_per_request") is None)
        goals.append(Goal(what, text))
    return goals


def goals_churn(run):
    """(f) churn c=64 (and churn-defer c=64): the best event server's server CPU per connection
    against iterative's and nginx's."""
    goals = []
    for scenario in ("churn", "churn-defer"):
        if scenario not in run.scenarios:
            continue
        name, best = best_event(run, scenario, "c=64")
        for reference, target in ((ITERATIVE, GOAL_CHURN_ITERATIVE), (NGINX, GOAL_CHURN_NGINX)):
            what = f"(f) {scenario} c=64: server CPU µs/connection, best event server ÷ {reference}"
            problem = why_absent(run, reference, scenario, "c=64") or (None if name else best)
            other = run.find(reference, scenario, "c=64")
            ratio = paired(best, other, "server_cpu_us_per_request") if not problem else None
            if problem or ratio is None:
                goals.append(Goal(what, f"not measured: {problem or reference + ' has no server CPU figure'}",
                                  f"≤ {target:.2f}×", "not measured"))
                continue
            measured = (f"{name} {median(best, 'server_cpu_us_per_request'):.1f} µs ÷ {reference} "
                        f"{median(other, 'server_cpu_us_per_request'):.1f} µs = {ratio[1]}")
            goals.append(Goal(what, measured, f"≤ {target:.2f}×", verdict(round(ratio[0], 2), target, at_most=True)))
    return goals


def goals(run):
    return [goal_floor_cpu(run), goal_pipeline(run)] + goals_c10k(run) + goals_uring(run) + goals_churn(run)


# --- churn: the cost of a connection --------------------------------------------------------------

CHURN_NOTE = ("One request per connection, so per connection = per request. Server CPU µs/connection is the "
              "server's CPU in loadgen's window over the connections answered in it; system calls per "
              "connection come from the separate counting run of each point, by name from one "
              "syscalls:sys_enter_NAME tracepoint per call (only those above 0.01 are shown). churn-defer is "
              "the same load with TCP_DEFER_ACCEPT on every server (--defer-accept 1; nginx: listen ... "
              "deferred): the kernel hands a connection over only once its request has arrived. Server "
              "sleeps/conn = voluntary context switches of the server's threads in the window per connection: "
              "each sleep ends in a wake-up, which costs the server and the client that wakes it. Where the "
              "microseconds go, call by call: harness/churn-profile and docs/churn.md.")


def calls_by_name(record):
    by_name = (record or {}).get("syscall_run", {}) or {}
    by_name = by_name.get("by_name_per_request") or {}
    shown = [(n, v) for n, v in sorted(by_name.items(), key=lambda item: -item[1]) if v >= 0.01]
    return " · ".join(f"{n} {v:.2f}" for n, v in shown) or "–"


def sleeps_text(record):
    """The server's voluntary context switches per connection (its sleeps: each one is a wake-up
    later, paid by the server and by whoever wakes it), median over the repetitions."""
    value = switches_per_connection(record) if record else None
    return "–" if value is None else f"{value:.2f}"


def churn_table(run):
    notes = Notes()
    labels = run.points("churn")
    defer = "churn-defer" in run.scenarios
    header = ["server"]
    for label in labels:
        header += [f"{label} req/s", f"{label} server CPU µs/conn", f"{label} client CPU µs/conn",
                   f"{label} calls/conn"]
    header += ["calls by name per connection, c=64", "c=64 server sleeps/conn"]
    if defer:
        header += ["defer c=64 server CPU µs/conn", "defer c=64 calls/conn", "defer ÷ without (CPU)",
                   "defer calls by name, c=64", "defer c=64 server sleeps/conn"]
    rows = []
    for server in servers_in(run, "churn"):
        row = [server]
        for label in labels:
            record = run.find(server, "churn", label)
            row += [cell(record, "requests_per_s", notes), cell(record, "server_cpu_us_per_request", notes, 1),
                    cell(record, "client_cpu_us_per_request", notes, 1), cell(record, "syscalls_per_request", notes, 2)]
        plain = run.find(server, "churn", "c=64")
        row += [calls_by_name(plain), sleeps_text(plain)]
        if defer:
            deferred = run.find(server, "churn-defer", "c=64")
            row += [cell(deferred, "server_cpu_us_per_request", notes, 1),
                    cell(deferred, "syscalls_per_request", notes, 2),
                    ratio_text(deferred, plain, "server_cpu_us_per_request") if deferred and plain else "–",
                    calls_by_name(deferred), sleeps_text(deferred)]
        rows.append(row)
    return header, rows, notes.lines() + [CHURN_NOTE]


# --- the multicore family: the herd, the blocking mix, threads against CPUs, hand-offs -------------

MIX_GOAL_MS = 5.0  # (e) reactor-workers: the fast requests' p99 in the blocking mix, at most
MIX_GOAL_SERVERS = "reactor-workers"  # the configurations whose name starts with it
MIX_BLOCKING = "epoll-lt"  # the reactor that blocks: its fast requests wait for the sleep
HERD_NOTE = ("Counted by the servers' loops over their whole run for this point (warm-ups and the "
             "system-call run included), printed on exit (docs/bench.md, server_counts). Listen wake-ups = "
             "times the listening socket was reported to a loop; empty accepts = reports whose accept "
             "found nothing. Level-triggered epoll re-checks the socket before a woken waiter returns, so "
             "the herd shows in voluntary context switches per connection (measured in the window) more "
             "than in empty accepts (docs/reuseport.md). Accepts per loop: the loops that accept (a "
             "multi-reactor's sub-reactors never do); Jain's index 1 = even, 1/n = one loop took all. "
             "epoll-lt prints no loop counts: one loop, one thread, so it is woken at most once per "
             "connection it accepts.")
MIX_NOTE = ("Fast = the URL's path (\"/\", loadgen's paths[0]); slow = the --mix path. Latencies are "
            "medians over the repetitions of each repetition's percentile. A thread pool that holds one "
            "connection per thread serves only as many connections as it has threads: \"(n/64 served)\" "
            "says so, and its percentiles describe only the connections it served.")
CORES_ONE_CPU = ("1 server CPU: no scaling curve can be drawn here; the points show oversubscription: "
                 "T threads on 1 CPU.")
HANDOFF_NOTE = ("/cpu/0 goes from the reactor to a worker and back but costs nothing itself: its server CPU "
                "per request minus that of \"/\" (plaintext, which stays on the reactor) at the same "
                "concurrency is the cost of one round-trip hand-off, wake-ups included. The two were measured "
                "in different scenarios, not side by side: a difference within the noise of \"/\" (10–20 %, "
                "about 1 µs) is not a measurement. Wake-ups per job are counted by the server over the "
                "point's whole run (warm-ups included).")


def records_of(run, scenario):
    return [r for r in run.records if r["scenario"] == scenario]


def servers_in(run, scenario):
    """The servers with a record in the scenario, in the run's order (a point for= some servers has
    no record for the others)."""
    names = {r["server"] for r in records_of(run, scenario)}
    return [s for s in run.servers if s in names]


def rep_values(record, fn):
    """fn(rep) over the record's repetitions, the Nones left out."""
    values = []
    for r in (record or {}).get("reps") or []:
        try:
            value = fn(r)
        except (KeyError, TypeError, ZeroDivisionError):
            value = None
        if isinstance(value, (int, float)):
            values.append(value)
    return values


def switches_per_connection(record):
    """Median over the repetitions of voluntary context switches ÷ requests in the sampled window
    (one request per connection in the herd's churn)."""
    values = rep_values(record, lambda r: r["voluntary_switches"] / (r["requests_per_s"] * r["server_cpu_window_s"]))
    return statistics.median(values) if values else None


def herd_table(run):
    notes = Notes()
    header = ["server", "loops", "accepted", "listen wake-ups per accept", "empty accepts per accept",
              "voluntary switches per connection", "server CPU µs/conn", "client CPU µs/conn",
              "accepts per loop", "accepts Jain", "connections per loop Jain"]
    rows = []
    for server in servers_in(run, "herd"):
        record = run.find(server, "herd")
        if not has_figure(record):
            mark = notes.mark(record)
            rows.append([server] + [mark] * (len(header) - 1))
            continue
        counts = record.get("server_counts") or {}
        stats = record.get("server_stats") or {}
        loops = counts.get("loops") or []
        switches = switches_per_connection(record)
        row = [server]
        if loops:
            accepting = [loop.get("accepts", 0) for loop in loops if loop.get("accepts") or loop.get("listen_events")]
            spread_ = counts.get("accepts_spread") or {}
            row += [str(len(loops)), fmt(counts.get("accepts")), fmt(counts.get("listen_events_per_accept"), 3),
                    fmt(counts.get("empty_accepts_per_accept"), 4)]
            tail = [" / ".join(f"{a:,}" for a in accepting) or "–", fmt(spread_.get("jain"), 3),
                    fmt(counts.get("connections_per_loop_jain"), 3)]
        else:
            row += ["1 (not counted)", fmt(stats.get("accepted")), "not counted (one loop: ≤ 1)", "not counted"]
            tail = ["–", "–", "–"]
        row += [fmt(switches, 2), cell(record, "server_cpu_us_per_request", notes, 1),
                cell(record, "client_cpu_us_per_request", notes, 1)] + tail
        rows.append(row)
    return header, rows, notes.lines() + ([HERD_NOTE] if rows else [])


def sleep_ms(record):
    """The slow path's sleep in ms (/sleep/50 -> 50), from the repetitions' paths, or None."""
    for r in (record or {}).get("reps") or []:
        for path in (r.get("paths") or [])[1:]:
            match = re.fullmatch(r"/sleep/(\d+)", path.get("path") or "")
            if match:
                return int(match.group(1))
    return None


def mix_share(run):
    """The --mix share of the slow requests, as the loadgen arguments say ("1 %"), or "some"."""
    for record in records_of(run, "mix"):
        args = record.get("loadgen_args") or []
        for flag, value in zip(args, args[1:]):
            match = re.fullmatch(r"/\S*:([0-9.]+)", value) if flag == "--mix" else None
            if match:
                return f"{match.group(1)} %"
    return "some"


def mix_table(run):
    notes = Notes()
    header = ["server", "requests/s", "fast p50 ms", "fast p99 ms", "fast max ms", "slow p99 ms", "slow max ms",
              "connections served", "server CPU µs/req"]
    rows = []
    for server in servers_in(run, "mix"):
        record = run.find(server, "mix")
        served = "–"
        if has_figure(record) and median(record, "connections") is not None:
            served = f"{median(record, 'connections_served'):.0f}/{median(record, 'connections'):.0f}"
        row = [server, cell(record, "requests_per_s", notes)]
        for key in ("fast_latency_p50_us", "fast_latency_p99_us", "fast_latency_max_us",
                    "slow_latency_p99_us", "slow_latency_max_us"):
            row.append(cell(record, key, notes, 2, 1e-3) if has_figure(record) and median(record, key) is not None
                       else (notes.mark(record, "no per-path figures (loadgen without --mix paths)")
                             if has_figure(record) else cell(record, key, notes)))
        row += [served, cell(record, "server_cpu_us_per_request", notes, 1)]
        rows.append(row)
    return header, rows, notes.lines() + ([MIX_NOTE] if rows else [])


def p99_text(record, key="fast_latency_p99_us"):
    values = [v / 1000 for v in rep_values(record, lambda r: r[key])]
    if not values:
        return None, None
    value = statistics.median(values)
    extra = f" ({min(values):.2f}–{max(values):.2f} over {len(values)} repetitions)" if len(values) > 1 else ""
    return value, f"{value:.2f} ms{extra}"


def goals_mix(run):
    """(e) the blocking mix: reactor-workers keeps the fast requests' p99 under 5 ms; epoll-lt's,
    for comparison, against the sleep. Empty when the run has no mix scenario."""
    if "mix" not in run.scenarios:
        return []
    goals = []
    target = f"≤ {MIX_GOAL_MS:g} ms"
    named = [s for s in servers_in(run, "mix") if s.startswith(MIX_GOAL_SERVERS)] or [MIX_GOAL_SERVERS]
    point = (records_of(run, "mix")[0])["point"]
    blocking = mix_share(run)
    for server in named:
        what = f"(e) {server}: mix {point}, fast requests' p99 with {blocking} of requests blocking"
        record = run.find(server, "mix")
        problem = why_absent(run, server, "mix", point)
        value, text = p99_text(record) if problem is None else (None, None)
        if problem is None and value is None:
            problem = f"{server}: no per-path figures"
        if problem:
            goals.append(Goal(what, f"not measured: {problem}", target, "not measured"))
            continue
        goals.append(Goal(what, text, target, verdict(round(value, 2), MIX_GOAL_MS, at_most=True)))
    what = f"(e) {MIX_BLOCKING}: mix {point}, fast requests' p99 against the sleep"
    record = run.find(MIX_BLOCKING, "mix")
    problem = why_absent(run, MIX_BLOCKING, "mix", point)
    value, text = p99_text(record) if problem is None else (None, None)
    if problem or value is None:
        goals.append(Goal(what, f"not measured: {problem or 'no per-path figures'}"))
    else:
        sleep = sleep_ms(record)
        goals.append(Goal(what, text + (f" = {value / sleep:.2f}× the {sleep} ms sleep" if sleep else "")))
    return goals


def server_cpu_count(run):
    settings = run.doc.get("settings") or {}
    if isinstance(settings.get("server_cpu_count"), int):
        return settings["server_cpu_count"]
    cpus = set()
    try:
        for part in str(settings.get("server_cpus", "0")).split(","):
            low, _, high = part.partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError:
        return None
    return len(cpus) or None


def cores_table(run):
    notes = Notes()
    points = sorted({(r["x"], r["point"]) for r in records_of(run, "cores")})
    header = (["server"] + [f"{label} req/s" for _, label in points]
              + [f"{label} server CPU µs/req" for _, label in points])
    rows = []
    for server in servers_in(run, "cores"):
        row = [server] + [cell(run.find(server, "cores", label), "requests_per_s", notes) for _, label in points]
        row += [cell(run.find(server, "cores", label), "server_cpu_us_per_request", notes, 1) for _, label in points]
        rows.append(row)
    cpus = server_cpu_count(run)
    lines = notes.lines()
    if rows:
        if cpus == 1:
            lines.append(CORES_ONE_CPU)
        elif cpus:
            lines.append(f"{cpus} server CPUs: T up to {cpus} is the scaling curve, T above it oversubscription.")
        lines.append("Each point restarts the server with --threads T (record's server_args); a server whose "
                     "arguments have no --threads (epoll-lt, one thread) is the same at every T: its line is "
                     "the baseline and the point-to-point noise.")
    return header, rows, lines


def handoff_table(run):
    notes = Notes()
    header = ["server", "hand-off", "c", "/ server CPU µs/req (plaintext)", "/cpu/0 server CPU µs/req",
              "hand-off ns", "/cpu/0 req/s", "worker wake-ups per job", "reactor wake-ups per job"]
    rows = []
    for server in servers_in(run, "handoff"):
        for record in sorted(records_of(run, "handoff"), key=lambda r: -r["x"]):
            if record["server"] != server:
                continue
            plain = run.find(server, "plaintext", record["point"])
            counts = record.get("server_counts") or {}
            mode = (counts.get("handoff") or {}).get("mode") or "–"
            mine, base = median(record, "server_cpu_us_per_request"), median(plain, "server_cpu_us_per_request")
            if not has_figure(record) or mine is None:
                cost = cell(record, "server_cpu_us_per_request", notes) if not has_figure(record) else "–"
            elif plain is None:
                cost = notes.mark(record, f"no plaintext {record['point']} in this run to set \"/\" beside")
            elif not has_figure(plain) or base is None:
                cost = notes.mark(plain)
            else:
                cost = fmt((mine - base) * 1000)
            rows.append([server, mode, record["point"], cell(plain, "server_cpu_us_per_request", notes, 2)
                         if plain else "–", cell(record, "server_cpu_us_per_request", notes, 2), cost,
                         cell(record, "requests_per_s", notes), fmt(counts.get("worker_wakeups_per_job"), 3),
                         fmt(counts.get("reactor_wakeups_per_job"), 4)])
    return header, rows, notes.lines() + ([HANDOFF_NOTE] if rows else [])


def handoff_costs(run):
    """{c label: {server: hand-off ns}} for the plot."""
    out = {}
    for record in records_of(run, "handoff"):
        plain = run.find(record["server"], "plaintext", record["point"])
        mine, base = median(record, "server_cpu_us_per_request"), median(plain, "server_cpu_us_per_request")
        if has_figure(record) and has_figure(plain) and mine is not None and base is not None:
            out.setdefault(record["point"], {})[record["server"]] = (mine - base) * 1000
    return out


def write_mix_timeline(run, data_dir):
    """mix_timeline-SERVER.tsv: the fast requests' p99 per second of the measured windows, the
    repetitions end to end (a blank line between two: no line joins them). Returns the servers."""
    written = []
    for server in servers_in(run, "mix"):
        record = run.find(server, "mix")
        if not has_figure(record):
            continue
        rows, offset = [], 0.0
        for raw in record.get("raw") or []:
            try:
                with open(os.path.join(run.dir, raw)) as f:
                    timeline = json.load(f).get("timeline") or []
            except (OSError, ValueError):
                continue
            block = []
            for second in timeline:
                paths = second.get("paths") or []
                fast = paths[0] if paths else second
                end = offset + (second.get("second") or 0) + (second.get("length_s") or 1)
                if isinstance(fast.get("p99_ms"), (int, float)):
                    maximum = fast.get("max_ms")
                    block.append(f"{end:.6g} {fast['p99_ms']:.6g} "
                                 + (f"{maximum:.6g}" if isinstance(maximum, (int, float)) else "NaN"))
            offset += sum(second.get("length_s") or 1 for second in timeline)
            if block:
                rows.append(block)
        if rows:
            with open(os.path.join(data_dir, f"mix_timeline-{server}.tsv"), "w") as f:
                f.write("# seconds_of_measured_windows fast_p99_ms fast_max_ms (repetitions end to end)\n")
                f.write("\n\n\n".join("\n".join(block) for block in rows) + "\n")
            written.append(server)
    if written:
        with open(os.path.join(data_dir, "mix_goal.tsv"), "w") as f:
            f.write(f"# goal_ms sleep_ms\n{MIX_GOAL_MS:g} {sleep_ms(run.find(written[0], 'mix')) or 'NaN'}\n")
    return written


def write_herd_loops(run, data_dir):
    """herd_loops.tsv: per server with loop counts, each accepting loop's share of the accepts, %."""
    rows = []
    for server in servers_in(run, "herd"):
        record = run.find(server, "herd")
        loops = (record or {}).get("server_counts", {}).get("loops") or []
        accepting = [loop.get("accepts", 0) for loop in loops if loop.get("accepts") or loop.get("listen_events")]
        total = sum(accepting)
        if has_figure(record) and total:
            rows.append((server, [100 * a / total for a in accepting]))
    if not rows:
        return []
    width = max(len(shares) for _, shares in rows)
    with open(os.path.join(data_dir, "herd_loops.tsv"), "w") as f:
        f.write("server " + " ".join(f"loop{i}" for i in range(width)) + "\n")
        for server, shares in rows:
            f.write(server + " " + " ".join(f"{v:.6g}" for v in shares) + " NaN" * (width - len(shares)) + "\n")
    return [server for server, _ in rows]


def prepare_multicore_data(run, data_dir):
    have = {}
    herd_rows = [("listen-wake-ups/accept", {}), ("voluntary-switches/connection", {})]
    for server in servers_in(run, "herd"):
        record = run.find(server, "herd")
        if has_figure(record):
            herd_rows[0][1][server] = (record.get("server_counts") or {}).get("listen_events_per_accept")
            herd_rows[1][1][server] = switches_per_connection(record)
    have["herd"] = write_bars(run, data_dir, "herd", herd_rows)
    have["herd_loops"] = write_herd_loops(run, data_dir)
    have["mix_timeline"] = write_mix_timeline(run, data_dir)
    have["cores_throughput"] = write_series(run, data_dir, "cores_throughput", "cores", lambda r: r["x"],
                                            [("requests_per_s", 1)])
    have["cores_cpu"] = write_series(run, data_dir, "cores_cpu", "cores", lambda r: r["x"],
                                     [("server_cpu_us_per_request", 1)])
    have["handoff"] = write_bars(run, data_dir, "handoff", sorted(handoff_costs(run).items(),
                                                                  key=lambda item: item[0] != "c=64"))
    return have


def multicore_settings(run, data_dir, plot):
    """The gnuplot variables a multicore plot needs beside datadir, output, servers, terminal."""
    if plot == "mix_timeline":
        return f"goal={MIX_GOAL_MS:g}"
    if plot == "herd_loops":
        with open(os.path.join(data_dir, "herd_loops.tsv")) as f:
            return f"loops={len(f.readline().split()) - 1}"
    if plot in ("cores_throughput", "cores_cpu"):
        what = "Requests/s" if plot == "cores_throughput" else "Server CPU per request"
        return f"cores_title='{cores_title(run, what)}'"
    return ""


def cores_title(run, what):
    cpus = server_cpu_count(run)
    if cpus == 1:
        return f"{what} vs threads: 1 server CPU, oversubscription (T threads on 1 CPU), not scaling"
    return f"{what} vs threads (cores: --threads T on {cpus or '?'} server CPUs)"


# The clustered bars of the herd, herd_loops and handoff plots.
HISTOGRAM = """set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
"""

# The plots of the multicore scenarios: gnuplot scripts kept here (written into the run's data/),
# with the same variables as plots/*.gp (plots/common.gp).
MULTICORE_SCRIPTS = {
    "herd": """load "plots/common.gp"
set title "The herd (churn c=10): wake-ups per accepted connection (lower is better)"
set ylabel "per accepted connection"
set yrange [0:*]
""" + HISTOGRAM + """set key autotitle columnheader
plot for [i=2:words(servers)+1] sprintf("%s/herd.tsv", datadir) using i:xtic(1)
""",
    "herd_loops": """load "plots/common.gp"
set title "The herd (churn c=10): accepts per loop, % of the server's accepts"
set ylabel "% of accepts"
set yrange [0:100]
""" + HISTOGRAM + """set xtics rotate by -30
set key autotitle columnheader
plot for [i=2:loops+1] sprintf("%s/herd_loops.tsv", datadir) using i:xtic(1)
""",
    "mix_timeline": """load "plots/common.gp"
set title "Blocking mix (1 % /sleep): fast requests' p99 per second (repetitions end to end)"
set xlabel "seconds of measured windows"
set ylabel "fast requests' p99, ms"
set logscale y 10
set xrange [0:*]
plot for [s in servers] sprintf("%s/mix_timeline-%s.tsv", datadir, s) using 1:2 with linespoints lw 2 title s, \\
     goal with lines dt 2 lw 2 lc rgb "#444444" title sprintf("goal: %g ms", goal)
""",
    "cores_throughput": """load "plots/common.gp"
set title cores_title
set xlabel "threads (--threads T)"
set ylabel "requests/s"
set logscale x 2
set yrange [0:*]
set format y "%.0s%c"
plot for [s in servers] sprintf("%s/cores_throughput-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
""",
    "cores_cpu": """load "plots/common.gp"
set title cores_title
set xlabel "threads (--threads T)"
set ylabel "server CPU µs per request"
set logscale x 2
set yrange [0:*]
plot for [s in servers] sprintf("%s/cores_cpu-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
""",
    "handoff": """load "plots/common.gp"
set title "Cost of one hand-off reactor -> worker -> reactor: /cpu/0 minus / server CPU"
set ylabel "ns per request"
""" + HISTOGRAM + """set key autotitle columnheader
plot for [i=2:words(servers)+1] sprintf("%s/handoff.tsv", datadir) using i:xtic(1)
""",
}


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header, rows):
    """A table in a box of its own that scrolls sideways when the table is wider than the page (a
    phone), so the page itself never does."""
    out = ["<div class='scroll'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table></div>"


def plural(count, word, words=None):
    return f"{count} {word if count == 1 else (words or word + 's')}"


def cpus_text(cpu_list):
    """ "CPU 0", "CPUs 0-3": a CPU list as words."""
    single = re.fullmatch(r"\d+", str(cpu_list)) is not None
    return f"CPU {cpu_list}" if single else f"CPUs {cpu_list}"


def environment_lines(doc):
    env, settings = doc["environment"], doc["settings"]
    memory = env.get("memory_total_kib")
    loadgen = env.get("loadgen_version") or "version unknown"
    lines = []
    if settings.get("quick"):
        lines.append("QUICK RUN (make bench-quick): the reduced set of points, "
                     + plural(settings["reps"], "repetition") + " each: "
                     + ("no ranges, no error bars; " if settings["reps"] == 1 else "")
                     + "for a first look, not for conclusions")
    lines += [
        f"reproduce: git checkout {env.get('commit') or '(commit unknown)'} && make && "
        f"{settings.get('command') or './run_all.sh (the command was not recorded)'}",
        f"CPU: {env.get('cpu_model') or 'model unknown'}"
        + (f" ({env['cpu_details']})" if env.get("cpu_details") else "")
        + f", {plural(env.get('nproc') or 0, 'CPU')} online, governor {env.get('cpu_governor') or 'not readable'}",
        f"memory {memory / 1048576:.1f} GiB" if memory else "memory not read",
        f"kernel {env.get('kernel')}, open-file limit {env.get('nofile_limit') or 'not read'}",
        f"commit {env.get('commit')}, {' '.join(env.get('compiler') or [])}, flags {env.get('cflags') or 'not read'}",
        f"{loadgen if loadgen.startswith('loadgen') else 'loadgen ' + loadgen}"
        + (f", {env['nginx_version']}" if env.get("nginx_version") else ", nginx not installed"),
        f"server on {cpus_text(settings['server_cpus'])}, loadgen on {cpus_text(settings['client_cpus'])} "
        f"({plural(settings['loadgen_threads'], 'thread')}); {plural(settings['reps'], 'repetition')} of "
        f"{settings['warmup_s']} s warm-up + {settings['duration_s']} s, medians (min–max in results.json)",
        f"server CPU: {settings.get('server_cpu_source', '/proc/PID/stat ticks over the whole run')}, "
        "in loadgen's measured window",
        f"system calls: {settings['syscalls']}",
        f"started {doc['started_at']}, finished {doc.get('finished_at')}, {doc.get('elapsed_s')} s"
        + (", INTERRUPTED (partial results)" if doc.get("interrupted") else ""),
    ]
    return lines


# One paragraph per scenario: what it does and what it shows (harness/scenarios.txt is the source).
SCENARIO_TEXT = {
    "plaintext": "GET / over N keep-alive connections, closed loop (each connection sends its next request "
                 "when the answer arrives): throughput, latency and CPU per request against concurrency.",
    "churn": "GET / with a new connection for every request (Connection: close) from N clients spread over "
             "loopback source addresses: what accepting, setting up and tearing down a connection costs.",
    "churn-defer": "churn at 64 clients with TCP_DEFER_ACCEPT on every server (--defer-accept 1, nginx's "
                   "listen ... deferred): accept hands over a connection only once its request is there.",
    "c10k-defer": "c10k at 10 000 idle connections with TCP_DEFER_ACCEPT on every server (--defer-accept 1, "
                  "nginx's listen ... deferred): idle connections send nothing, so accept may not see them.",
    "c10k": "16 active keep-alive connections while N idle connections are held open: what an idle "
            "connection costs each design in CPU per request and in memory.",
    "pipeline": "64 connections with 16 requests in flight each (HTTP/1.1 pipelining): the per-request "
                "cost once system calls are amortised over many requests.",
    "cpu": "GET /cpu/200 at 64 connections: every request burns 200 µs of the handling thread's CPU, so "
           "the server's CPU, not its I/O, is the limit.",
    "sleep": "GET /sleep/10 at 64 connections: every request blocks its handling thread 10 ms without CPU "
             "(a model of blocking I/O): a single loop serialises them, threads and workers overlap them.",
    "bytes": "GET /bytes/1048576 at 16 connections: 1 MiB responses, a test of the write path and "
             "back-pressure.",
    "echo": "POST /echo with 64 KiB bodies at 16 connections: the body read and written back.",
    "latency": "Open loop (loadgen -R): requests sent on a fixed schedule at 25 %, 50 % and 75 % of the "
               "requests/s this server reached in plaintext at 64 connections in this run (the point "
               "labels are those shares); p99 measured from the intended send time, so queueing in the "
               "client is not hidden (coordinated omission).",
    "herd": "Churn at 10 clients, each server started for this point alone: how many of its loops wake "
            "up, and how often they switch, per accepted connection.",
    "mix": "64 keep-alive connections, 1 % of the requests GET /sleep/50: the fast requests' latency "
           "beside the slow ones, per second.",
    "cores": "Plaintext at 64 connections with --threads T: throughput and CPU per request against the "
             "number of threads (and of server CPUs where there are several).",
    "handoff": "GET /cpu/0 beside GET / at the same concurrency: /cpu/0 goes to a worker and back but "
               "costs nothing itself, so the difference is the hand-off.",
}


READING_NOTE = ("Ratios are medians of the ratios of repetitions run side by side, with their range; a "
                "range that contains 1.0 reads \"within noise\". Client CPU stands beside server CPU "
                "because on loopback the kernel charges part of the receive path to the sender: the sum of "
                "the two per request is the robust figure. \"–\" marks a point without a figure, with its "
                "reason under the table.")


def failures(run):
    return [r for r in run.records if r["status"] in ("failed", "errors")]


def skipped(run):
    """[(server, reason, points)] of the servers that could not run here, and said why."""
    out = {}
    for r in run.records:
        if r["status"] == "skipped":
            out.setdefault((r["server"], r.get("reason") or ""), []).append(f"{r['scenario']} {r['point']}")
    return [(server, reason, points) for (server, reason), points in out.items()]


def sections(run):
    """[(title, header, rows, lines under the table)] in the report's order."""
    header, rows, notes = summary_table(run)
    out = [("Summary", header, rows, notes + [READING_NOTE])]
    out.append(("Goals: the event servers against the floor and nginx",
                ["goal", "measured in this run", "target", "verdict"], [g.row() for g in goals(run)], [GOALS_NOTE]))
    header, rows, notes = family_table(run)
    if rows:
        line = thread_fork_line(run)
        out.append(("Blocking servers (after UNP chapter 30)", header, rows, notes + ([line] if line else [])))
    for scenario in run.scenarios:
        if scenario in MULTICORE_SECTIONS:
            title, table = MULTICORE_SECTIONS[scenario]
            header, rows, notes = table(run)
            out.append((title, header, rows, notes))
            if scenario == "mix" and goals_mix(run):
                out.append(("Goal: the blocking mix", ["goal", "measured in this run", "target", "verdict"],
                            [g.row() for g in goals_mix(run)], [MIX_GOAL_NOTE]))
        elif scenario == "churn":
            out.append(("churn: the cost of a connection (a new connection per request)",) + churn_table(run))
        elif scenario == "churn-defer" and "churn" in run.scenarios:
            continue  # in the churn table
        else:
            out.append((scenario,) + scenario_table(run, scenario))
    return out


MULTICORE_SECTIONS = {
    "herd": ("herd: the thundering herd (churn c=10, a new connection per request)", herd_table),
    "mix": ("mix: a share of the requests block (--mix): the fast requests beside the slow", mix_table),
    "cores": ("cores: threads against server CPUs (plaintext c=64)", cores_table),
    "handoff": ("handoff: the cost of a hand-off to the worker pool (/cpu/0 beside /)", handoff_table),
}
MIX_GOAL_NOTE = ("(e) The fast requests' p99 is the median over the repetitions of each repetition's p99 of "
                 "\"/\" (loadgen's paths[0]); the verdict judges it as printed. A reactor that runs the sleep "
                 "itself makes every fast request that arrives during it wait: its p99 is about the sleep.")


def write_reports(run, drawn, problems):
    doc = run.doc
    tables = sections(run)
    md = ["# c10k-lab benchmark report", ""]
    md += [f"- {line}" for line in environment_lines(doc)] + [""]
    for title, header, rows, lines in tables:
        md += [f"## {title}", ""]
        if SCENARIO_TEXT.get(title.split(":")[0]):
            md += [SCENARIO_TEXT[title.split(":")[0]], ""]
        md += [markdown_table(header, rows), ""]
        if lines:
            md += [line + "  " for line in lines[:-1]] + [lines[-1], ""]
    md += ["## Plots", ""]
    for plot, title in PLOTS:
        if plot in drawn:
            md += [f"### {title}", "", f"![{title}]({plot}.png)", "", f"[{plot}.svg]({plot}.svg) (scalable)", ""]
    for problem in problems:
        md.append(f"- plot not drawn: {problem}")
    if skipped(run):
        md += ["", "## Skipped: the server cannot run here", ""]
        md += [f"- **{server}** ({', '.join(points)}): {reason}" for server, reason, points in skipped(run)]
    bad = failures(run)
    if bad:
        md += ["", "## Failures and errors", ""]
        for r in bad:
            reason = r.get("reason") or "; ".join(r.get("failures") or []) or \
                f"{median(r, 'errors')} errors (median per run)"
            md.append(f"- **{r['server']} {r['scenario']} {r['point']}** ({r['status']}): {reason}")
            if r.get("stderr_tail"):
                md += ["", "  ```", *["  " + line for line in r["stderr_tail"].splitlines()[-8:]], "  ```"]
    with open(os.path.join(run.dir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # Phones: the viewport is the device's width; a table wider than the page scrolls inside its own
    # box; a plot keeps at least 640 px (its text about 7 px and more) and scrolls in its box too,
    # with a link to the SVG, which zooms without blur.
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>c10k-lab report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}",
             "div.scroll{overflow-x:auto;max-width:100%}",
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;",
             "text-align:right}th{background:#eee}td:first-child{text-align:left}",
             "figure{margin:1em 0;overflow-x:auto;max-width:100%}figure img{width:100%;min-width:640px;height:auto}",
             "figcaption{font-size:90%}p.note,p.scenario{font-size:90%;margin:0.2em 0}",
             "li{overflow-wrap:anywhere}pre{overflow-x:auto;white-space:pre-wrap}",
             "@media (max-width:600px){body{margin:1em auto}h1{font-size:1.4em}}",
             "</style></head><body><h1>c10k-lab benchmark report</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in environment_lines(doc)]
    parts.append("</ul>")
    for title, header, rows, lines in tables:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if SCENARIO_TEXT.get(title.split(":")[0]):
            parts.append(f"<p class='scenario'>{html.escape(SCENARIO_TEXT[title.split(':')[0]])}</p>")
        parts.append(html_table(header, rows))
        parts += [f"<p class='note'>{html.escape(line)}</p>" for line in lines]
    parts.append("<h2>Plots</h2>")
    for plot, title in PLOTS:
        if plot in drawn:
            with open(os.path.join(run.dir, f"{plot}.png"), "rb") as f:
                image = base64.b64encode(f.read()).decode()
            parts.append(f"<h3>{html.escape(title)}</h3><figure><img alt='{html.escape(title)}' "
                         f"width='960' height='600' src='data:image/png;base64,{image}'>"
                         f"<figcaption><a href='{plot}.svg'>{plot}.svg</a> (scalable) · "
                         f"<a href='{plot}.png'>{plot}.png</a></figcaption></figure>")
    if skipped(run):
        parts.append("<h2>Skipped: the server cannot run here</h2><ul>")
        parts += [f"<li><b>{html.escape(server)}</b> ({html.escape(', '.join(points))}): {html.escape(reason)}</li>"
                  for server, reason, points in skipped(run)]
        parts.append("</ul>")
    if bad:
        parts.append("<h2>Failures and errors</h2><ul>")
        for r in bad:
            reason = r.get("reason") or "; ".join(r.get("failures") or []) or "errors during the run"
            parts.append(f"<li><b>{html.escape(r['server'])} {html.escape(r['scenario'])} "
                         f"{html.escape(r['point'])}</b> ({r['status']}): {html.escape(reason)}"
                         + (f"<pre>{html.escape(r['stderr_tail'])}</pre>" if r.get("stderr_tail") else "")
                         + "</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    with open(os.path.join(run.dir, "report.html"), "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: report.py RUN_DIR   (a results/<run> directory with a results.json)", file=sys.stderr)
        return 2
    run = Run(os.path.abspath(argv[0]))
    data_dir = os.path.join(run.dir, "data")
    drawn, problems = [], []
    for plot, servers in prepare_data(run, data_dir).items():
        extra = [plot_settings(run, data_dir, plot, servers)]
        if plot in MULTICORE_SCRIPTS:
            extra.append(multicore_settings(run, data_dir, plot))
        problem = draw(run.dir, data_dir, plot, servers, "; ".join(e for e in extra if e))
        if problem:
            problems.append(problem)
        else:
            drawn.append(plot)
    write_reports(run, drawn, problems)
    for goal in goals(run) + goals_mix(run):
        print(f"goal {goal.line()}", file=sys.stderr)
    print(f"report: {len(drawn)} plots, {run.dir}/report.md and report.html", file=sys.stderr)
    for problem in problems:
        print(f"report: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
