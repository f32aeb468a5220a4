#!/usr/bin/env python3
"""check_results.py RUN_DIR [--expect SERVER:SCENARIO:STATUS]... [--family SERVER:FAMILY]...
                     [--cpu-source PREFIX] [--plots N]

Checks a benchmark run's results.json field by field against the schema documented in
docs/bench.md ("c10k-lab/results/1"), that every raw loadgen file it names exists and is valid
JSON, that the report exists, and that the plots are non-empty PNG and SVG images. Also: server
CPU was read in loadgen's window (the sampled interval is as long as the window) at nanosecond
resolution (not in 10 ms ticks), every server's command line and family are recorded, the CPU
source is named (and starts with PREFIX), and the system calls were counted in the window when
perf could be controlled. Prints one line per problem and exits 1 if there is any.
"""
import json
import os
import sys

NUMBER = (int, float)
problems = []


def problem(message):
    problems.append(message)
    print(f"  problem: {message}")


def check_fields(where, obj, spec):
    """spec: {key: type or tuple of types}; None in a tuple allows null."""
    if not isinstance(obj, dict):
        problem(f"{where}: expected an object, got {type(obj).__name__}")
        return
    for key, types in spec.items():
        if key not in obj:
            problem(f"{where}: missing field {key!r}")
            continue
        allowed = types if isinstance(types, tuple) else (types,)
        value = obj[key]
        ok = any((t is None and value is None) or (t is not None and isinstance(value, t)
                 and not (t in (int, float) and isinstance(value, bool))) for t in allowed)
        if not ok:
            problem(f"{where}.{key}: {value!r} is not {' or '.join('null' if t is None else t.__name__ for t in allowed)}")


TOP = {"schema": str, "started_at": str, "finished_at": str, "complete": bool, "interrupted": bool,
       "elapsed_s": NUMBER, "environment": dict, "settings": dict, "records": list}
ENVIRONMENT = {"kernel": str, "machine": str, "cpu_model": (str, None), "nproc": int,
               "cpu_governor": (str, None), "memory_total_kib": int, "commit": (str, None),
               "compiler": list, "cflags": (str, None), "loadgen_version": (str, None),
               "nginx_version": (str, None), "python": str, "nofile_limit": int}
SETTINGS = {"servers": list, "scenarios": list, "reps": int, "duration_s": NUMBER, "warmup_s": NUMBER,
            "server_cpus": str, "client_cpus": str, "loadgen_threads": int, "timeout_s": NUMBER,
            "sources": str, "quick": bool, "syscalls": str, "server_cpu_source": str, "server_configs": dict}
SERVER_CONFIG = {"binary": str, "family": str, "args": list, "command": list}
RECORD = {"server": str, "family": str, "scenario": str, "point": str, "x": NUMBER, "route": str, "status": str}
MEASURED = {"loadgen_args": list, "median": dict, "spread": dict, "reps": list, "raw": list, "failures": list,
            "server_cpu_source": str}
SYSCALL_RUN = {"raw": str, "scope": str, "syscalls": (int, None), "requests": (NUMBER, None),
               "window_s": (NUMBER, None), "control_delay_s": (NUMBER, None), "counter_running_s": (NUMBER, None),
               "server_cpu_s": (NUMBER, None),
               "syscalls_per_request": (NUMBER, None), "problem": (str, None)}
# Sampling the server at loadgen's phase lines may lag them by a few ms each; more than this and the
# window was not the one sampled.
WINDOW_SLACK_S = 0.1
METRICS = {"requests_per_s": NUMBER, "bytes_per_s": NUMBER, "completed": int, "failed": int,
           "warmup_completed": int, "in_flight_at_end": int, "errors": int,
           "responses_in_window": int, "rep": int, "connections": int, "connections_served": int,
           "fairness_jain_index": NUMBER, "latency_p50_us": NUMBER, "latency_p90_us": NUMBER,
           "latency_p99_us": NUMBER, "latency_p999_us": NUMBER, "latency_max_us": NUMBER,
           "latency_mean_us": NUMBER, "client_cpu_us_per_request": (NUMBER, None),
           "server_cpu_s": (NUMBER, None), "server_cpu_window_s": NUMBER,
           "server_cpu_us_per_request": (NUMBER, None), "peak_rss_bytes": int,
           "peak_rss_problem": (str, None), "pss_mid_run_bytes": int, "rss_mid_run_bytes": int,
           "vmsize_mid_run_bytes": int, "processes": int, "threads": int, "voluntary_switches": int,
           "involuntary_switches": int, "syscalls": (int, None), "syscalls_per_request": (NUMBER, None),
           "syscalls_problem": (str, None)}
SPREAD = {"median": NUMBER, "min": NUMBER, "max": NUMBER}


def check_servers(settings, families, cpu_source):
    configs = settings.get("server_configs") or {}
    for name in settings.get("servers") or []:
        config = configs.get(name)
        check_fields(f"settings.server_configs[{name!r}]", config, SERVER_CONFIG)
        if not isinstance(config, dict) or not isinstance(config.get("command"), list):
            continue
        command = config["command"]
        if not command or not all(isinstance(word, str) for word in command):
            problem(f"server {name}: command {command!r} is not a list of words")
        elif name != "nginx" and command[-2:] != ["--port", "0"]:
            problem(f"server {name}: command {command!r} does not end with --port 0")
        elif not set(config.get("args") or []) <= set(command):
            problem(f"server {name}: its arguments {config.get('args')!r} are not in its command {command!r}")
    for expectation in families:
        name, _, family = expectation.rpartition(":")
        if (configs.get(name) or {}).get("family") != family:
            problem(f"server {name}: family {(configs.get(name) or {}).get('family')!r}, expected {family!r}")
    if cpu_source and not str(settings.get("server_cpu_source", "")).startswith(cpu_source):
        problem(f"server_cpu_source is {settings.get('server_cpu_source')!r}, expected {cpu_source!r}...")


cpu_figures = []  # (where, server CPU seconds, a whole number of 10 ms ticks?)


def check_window(where, rep, duration):
    """The CPU was sampled around loadgen's window, at nanosecond resolution."""
    window = rep.get("server_cpu_window_s")
    if isinstance(window, NUMBER) and abs(window - duration) > WINDOW_SLACK_S:
        problem(f"{where}: server CPU sampled over {window} s, the window is {duration} s")
    cpu = rep.get("server_cpu_s")
    if isinstance(cpu, NUMBER) and cpu > 0:
        # One figure in 10 000 read in µs is a whole number of ticks by chance; all of them are not.
        cpu_figures.append((where, cpu, abs(cpu * 100 - round(cpu * 100)) < 1e-6))
    rss, vmsize = rep.get("rss_mid_run_bytes"), rep.get("vmsize_mid_run_bytes")
    if isinstance(rss, int) and isinstance(vmsize, int) and not 0 < rss <= vmsize:
        problem(f"{where}: mid-run RSS {rss} and VmSize {vmsize}: expected 0 < RSS <= VmSize")


def check_run(run_dir, expectations, min_plots, families=(), cpu_source=None):
    path = os.path.join(run_dir, "results.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        problem(f"{path}: {e}")
        return
    check_fields("results", doc, TOP)
    if doc.get("schema") != "c10k-lab/results/1":
        problem(f"schema is {doc.get('schema')!r}")
    check_fields("environment", doc.get("environment"), ENVIRONMENT)
    check_fields("settings", doc.get("settings"), SETTINGS)
    settings = doc.get("settings") or {}
    check_servers(settings, families, cpu_source)
    duration = settings.get("duration_s")
    windowed_syscalls = "measured window" in str(settings.get("syscalls", ""))
    seen = {}
    for i, record in enumerate(doc.get("records", [])):
        where = f"records[{i}]"
        check_fields(where, record, RECORD)
        status = record.get("status")
        seen[(record.get("server"), record.get("scenario"))] = seen.get((record.get("server"), record.get("scenario")), []) + [status]
        if status in ("ok", "errors"):
            check_fields(where, record, MEASURED)
            if record.get("server") not in (settings.get("server_configs") or {}):
                problem(f"{where}: server {record.get('server')!r} has no server_configs entry")
            if str(settings.get("syscalls", "")).startswith("perf stat"):
                run = record.get("syscall_run")
                check_fields(f"{where}.syscall_run", run, SYSCALL_RUN)
                per_request = run.get("syscalls_per_request") if isinstance(run, dict) else None
                # perf's acks bound when enable and disable took effect: the window may be off by that.
                delay = (run.get("control_delay_s") or 0) if isinstance(run, dict) else 0
                if windowed_syscalls and isinstance(run, dict) and (
                        run.get("scope") != "measured window" or not isinstance(run.get("window_s"), NUMBER)
                        or abs(run["window_s"] - 0.5) > WINDOW_SLACK_S + delay):
                    problem(f"{where}: system calls not counted over the 0.5 s window: {run!r:.200}")
                # A point without responses (status errors) has no requests to divide by.
                if status == "ok" and (not isinstance(per_request, NUMBER) or per_request <= 0):
                    problem(f"{where}: no system calls per request from the syscall_run: {run!r:.200}")
                elif (record.get("median") or {}).get("syscalls_per_request") != per_request:
                    problem(f"{where}: median.syscalls_per_request is not the syscall_run's figure")
            # Medians of counts may fall between two integers; every always-present figure is a number.
            check_fields(f"{where}.median", record.get("median"),
                         {k: NUMBER for k, v in METRICS.items() if v in (int, NUMBER) and k != "rep"})
            for j, rep in enumerate(record.get("reps", [])):
                check_fields(f"{where}.reps[{j}]", rep, METRICS)
                if isinstance(duration, NUMBER):
                    check_window(f"{where}.reps[{j}]", rep, duration)
                if rep.get("responses_in_window", 0) <= 0 and status == "ok":
                    problem(f"{where}.reps[{j}]: an ok run had no response in its window")
                if rep.get("requests_per_s", 0) <= 0 and status == "ok":
                    problem(f"{where}.reps[{j}]: requests_per_s is not positive")
                if rep.get("server_cpu_us_per_request") is not None and rep["server_cpu_us_per_request"] <= 0:
                    problem(f"{where}.reps[{j}]: server CPU per request is not positive")
                if rep.get("syscalls") is not None:
                    problem(f"{where}.reps[{j}]: system calls counted in a measured repetition")
                if rep.get("peak_rss_bytes", 0) <= 0:
                    problem(f"{where}.reps[{j}]: peak RSS was not measured")
            for key, value in (record.get("spread") or {}).items():
                check_fields(f"{where}.spread.{key}", value, SPREAD)
                if isinstance(value, dict) and all(isinstance(value.get(k), NUMBER) for k in SPREAD):
                    if not value["min"] <= value["median"] <= value["max"]:
                        problem(f"{where}.spread.{key}: median outside [min, max]")
            if len(record.get("reps", [])) != len(record.get("raw", [])):
                problem(f"{where}: {len(record.get('reps', []))} reps but {len(record.get('raw', []))} raw files")
            for raw in record.get("raw", []):
                try:
                    with open(os.path.join(run_dir, raw)) as f:
                        raw_doc = json.load(f)
                    if raw_doc.get("schema") != "c10k-lab/loadgen/2":
                        problem(f"{raw}: schema {raw_doc.get('schema')!r}")
                except (OSError, ValueError) as e:
                    problem(f"{where}: raw file {raw}: {e}")
        if status in ("failed", "not_applicable", "errors", "skipped"):
            if not isinstance(record.get("reason"), str) or not record["reason"]:
                problem(f"{where}: a {status} record without a reason")
        elif status != "ok":
            problem(f"{where}: unknown status {status!r}")
    if len(cpu_figures) >= 2 and all(ticks for _, _, ticks in cpu_figures):
        problem(f"server CPU is in whole 10 ms ticks in all {len(cpu_figures)} repetitions, e.g. "
                f"{cpu_figures[0][0]}: {cpu_figures[0][1]} s")
    for expectation in expectations:
        server, scenario, status = expectation.rsplit(":", 2)
        statuses = seen.get((server, scenario))
        if not statuses:
            problem(f"no record for {server} {scenario}")
        elif any(s != status for s in statuses):
            problem(f"{server} {scenario}: statuses {statuses}, expected all {status}")
    for name in ("report.md", "report.html"):
        p = os.path.join(run_dir, name)
        if not os.path.exists(p) or os.path.getsize(p) == 0:
            problem(f"{name} missing or empty")
    pngs = [f for f in os.listdir(run_dir) if f.endswith(".png")]
    for png in pngs:
        with open(os.path.join(run_dir, png), "rb") as f:
            head = f.read(8)
        if head != b"\x89PNG\r\n\x1a\n" or os.path.getsize(os.path.join(run_dir, png)) < 1000:
            problem(f"{png} is not a non-empty PNG image")
        svg = os.path.join(run_dir, png[:-4] + ".svg")
        if not os.path.exists(svg):
            problem(f"{png} has no SVG twin")
        else:
            with open(svg) as f:
                text = f.read()
            if "<svg" not in text or "</svg>" not in text:
                problem(f"{os.path.basename(svg)} is not an SVG image")
    if len(pngs) < min_plots:
        problem(f"{len(pngs)} plots, expected at least {min_plots}")


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir, expectations, min_plots, families, cpu_source = argv[0], [], 0, [], None
    rest = argv[1:]
    while rest:
        if rest[0] == "--expect" and len(rest) > 1:
            expectations.append(rest[1])
        elif rest[0] == "--family" and len(rest) > 1:
            families.append(rest[1])
        elif rest[0] == "--cpu-source" and len(rest) > 1:
            cpu_source = rest[1]
        elif rest[0] == "--plots" and len(rest) > 1:
            min_plots = int(rest[1])
        else:
            print(f"check_results.py: bad argument {rest[0]!r}", file=sys.stderr)
            return 2
        rest = rest[2:]
    check_run(run_dir, expectations, min_plots, families, cpu_source)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
