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
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOTS_DIR = os.path.join(ROOT, "plots")
SCHEMA = "c10k-lab/results/1"

# The point that stands for a scenario in the summary tables and the CPU-per-request plot.
REPRESENTATIVE = {"plaintext": "c=64", "c10k": "idle=10000", "latency": "50%"}

PLOTS = [
    ("throughput", "Throughput vs concurrency (plaintext)"),
    ("latency_p99", "p99 latency vs concurrency (plaintext)"),
    ("latency_rate", "Corrected latency vs offered rate (latency)"),
    ("c10k_throughput", "Throughput vs idle connections (c10k)"),
    ("c10k_memory", "Server memory vs idle connections (c10k)"),
    ("cpu_per_request", "Server CPU per request, by scenario"),
    ("churn", "Keep-alive vs a new connection per request"),
]


def median(record, key):
    value = (record.get("median") or {}).get(key)
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
    """A point with figures to show: measured (ok, or errors with responses) and something arrived.
    Anything else reads "–" with its reason, and the plots draw no point for it."""
    return (record is not None and record.get("status") in ("ok", "errors") and bool(record.get("median"))
            and not nothing_arrived(record))


def missing_reason(record):
    """Why a record has no figure, in a few words."""
    if record["status"] == "not_applicable":
        return "not applicable: " + (record.get("reason") or "")
    if record["status"] == "failed":
        return "failed: " + (record.get("reason") or "; ".join(record.get("failures") or []) or "no measurement")
    reps = record.get("reps") or []
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


def write_bars(run, data_dir, name, rows):
    """A table for a clustered bar chart: one row per label, one column per server."""
    servers = [s for s in run.servers if any(values.get(s) is not None for _, values in rows)]
    rows = [(label, values) for label, values in rows if any(v is not None for v in values.values())]
    if not servers or not rows:
        return []
    with open(os.path.join(data_dir, f"{name}.tsv"), "w") as f:
        f.write("label " + " ".join(servers) + "\n")
        for label, values in rows:
            f.write(label + " " + " ".join(f"{values[s]:.6g}" if values.get(s) is not None else "NaN"
                                           for s in servers) + "\n")
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
    cpu_rows = []
    for scenario in run.scenarios:
        values = {}
        for server in run.servers:
            record = run.representative(server, scenario)
            values[server] = median(record, "server_cpu_us_per_request") if has_figure(record) else None
        cpu_rows.append((scenario, values))
    have["cpu_per_request"] = write_bars(run, data_dir, "cpu_per_request", cpu_rows)
    churn_rows = []
    for scenario, label in (("plaintext", "keep-alive"), ("churn", "new-connection")):
        values = {}
        for server in run.servers:
            record = run.find(server, scenario, "c=64")
            values[server] = median(record, "requests_per_s") if has_figure(record) else None
        churn_rows.append((label, values))
    have["churn"] = write_bars(run, data_dir, "churn", churn_rows)
    return {name: servers for name, servers in have.items() if servers}


def draw(run_dir, data_dir, plot, servers):
    """Runs plots/PLOT.gp for PNG and SVG; returns the problem, or None."""
    script = os.path.join(PLOTS_DIR, f"{plot}.gp")
    for terminal, extension in (("pngcairo size 960,600 font 'sans,11'", "png"),
                                ("svg size 960,600 dynamic font 'sans,11'", "svg")):
        output = os.path.join(run_dir, f"{plot}.{extension}")
        settings = (f"datadir='{data_dir}'; output='{output}'; servers='{' '.join(servers)}'; "
                    f"terminal=\"{terminal}\"")
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


def paired_ratios(record, reference, key):
    """record / reference per repetition number: bench.py ran repetitions with the same number side
    by side (alternating the servers)."""
    theirs = {r.get("rep"): r.get(key) for r in reference.get("reps") or [] if r.get("rep") is not None}
    return [r[key] / theirs[r["rep"]] for r in record.get("reps") or []
            if isinstance(r.get(key), (int, float)) and isinstance(theirs.get(r.get("rep")), (int, float))
            and theirs[r["rep"]] > 0]


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
    header = ["server", "plaintext c=64 req/s", "req/s ratio to nginx", "p99 ms", "connections served",
              "server CPU µs/req", "client CPU µs/req", "CPU/req ratio to nginx", "syscalls/req", "churn req/s",
              "memory per idle conn (bytes)", "peak RSS MiB"]
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
                     cell(plain, "syscalls_per_request", notes, 2),
                     cell(churn, "requests_per_s", notes), cell(c10k, "memory_per_idle_connection_bytes", notes),
                     cell(plain, "peak_rss_bytes", notes, 1, 1 / 1048576)])
    return header, rows, notes.lines()


def scenario_table(run, scenario):
    notes = Notes()
    labels = run.points(scenario)
    key = "latency_p99_us" if scenario == "latency" else "requests_per_s"
    header = ["server"] + [f"{label} {'p99 ms' if scenario == 'latency' else 'req/s'}" for label in labels]
    # In open loop every server is offered a share of its own throughput: compare latencies there.
    ratio_key = "latency_p99_us" if scenario == "latency" else "requests_per_s"
    header += ["p99 ms", "server CPU µs/req", "client CPU µs/req",
               "p99 ratio to nginx" if scenario == "latency" else "ratio to nginx"]
    rows = []
    for server in run.servers:
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


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header, rows):
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


def environment_lines(doc):
    env, settings = doc["environment"], doc["settings"]
    return [
        f"kernel {env.get('kernel')}, {env.get('cpu_model')}, {env.get('nproc')} CPUs, "
        f"governor {env.get('cpu_governor') or 'not readable'}",
        f"commit {env.get('commit')}, {' '.join(env.get('compiler') or [])}, loadgen {env.get('loadgen_version')}, "
        f"{env.get('nginx_version')}",
        f"server on CPUs {settings['server_cpus']}, loadgen on CPUs {settings['client_cpus']} "
        f"({settings['loadgen_threads']} thread(s)); {settings['reps']} repetitions of "
        f"{settings['warmup_s']} s warm-up + {settings['duration_s']} s, medians (min–max in results.json)",
        f"server CPU: {settings.get('server_cpu_source', '/proc/PID/stat ticks over the whole run')}, "
        "in loadgen's measured window",
        f"system calls: {settings['syscalls']}",
        f"started {doc['started_at']}, finished {doc.get('finished_at')}, {doc.get('elapsed_s')} s"
        + (", INTERRUPTED (partial results)" if doc.get("interrupted") else ""),
    ]


READING_NOTE = ("Ratios are medians of the ratios of repetitions run side by side, with their range; a "
                "range that contains 1.0 reads \"within noise\". Client CPU stands beside server CPU "
                "because on loopback the kernel charges part of the receive path to the sender: the sum of "
                "the two per request is the robust figure. \"–\" marks a point without a figure, with its "
                "reason under the table.")


def failures(run):
    return [r for r in run.records if r["status"] in ("failed", "errors")]


def sections(run):
    """[(title, header, rows, lines under the table)] in the report's order."""
    header, rows, notes = summary_table(run)
    out = [("Summary", header, rows, notes + [READING_NOTE])]
    header, rows, notes = family_table(run)
    if rows:
        line = thread_fork_line(run)
        out.append(("Blocking servers (after UNP chapter 30)", header, rows, notes + ([line] if line else [])))
    for scenario in run.scenarios:
        out.append((scenario,) + scenario_table(run, scenario))
    return out


def write_reports(run, drawn, problems):
    doc = run.doc
    tables = sections(run)
    md = ["# c10k-lab benchmark report", ""]
    md += [f"- {line}" for line in environment_lines(doc)] + [""]
    for title, header, rows, lines in tables:
        md += [f"## {title}", "", markdown_table(header, rows), ""]
        if lines:
            md += [line + "  " for line in lines[:-1]] + [lines[-1], ""]
    md += ["## Plots", ""]
    for plot, title in PLOTS:
        if plot in drawn:
            md += [f"### {title}", "", f"![{title}]({plot}.png)", ""]
    for problem in problems:
        md.append(f"- plot not drawn: {problem}")
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

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>c10k-lab report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}",
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;",
             "text-align:right}th{background:#eee}td:first-child{text-align:left}img{max-width:100%}",
             "p.note{font-size:90%;margin:0.2em 0}",
             "</style></head><body><h1>c10k-lab benchmark report</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in environment_lines(doc)]
    parts.append("</ul>")
    for title, header, rows, lines in tables:
        parts += [f"<h2>{html.escape(title)}</h2>", html_table(header, rows)]
        parts += [f"<p class='note'>{html.escape(line)}</p>" for line in lines]
    parts.append("<h2>Plots</h2>")
    for plot, title in PLOTS:
        if plot in drawn:
            with open(os.path.join(run.dir, f"{plot}.png"), "rb") as f:
                image = base64.b64encode(f.read()).decode()
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                         f"src='data:image/png;base64,{image}'>")
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
        problem = draw(run.dir, data_dir, plot, servers)
        if problem:
            problems.append(problem)
        else:
            drawn.append(plot)
    write_reports(run, drawn, problems)
    print(f"report: {len(drawn)} plots, {run.dir}/report.md and report.html", file=sys.stderr)
    for problem in problems:
        print(f"report: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
