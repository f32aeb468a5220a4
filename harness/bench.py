#!/usr/bin/env python3
"""bench.py - the benchmark driver behind `make bench` (run through ./run_all.sh).

For every server and every scenario of harness/scenarios.txt: start the server fresh, pinned to
its CPUs; for every point of the scenario run bin/loadgen (pinned to the other CPUs) `--reps`
times, measuring the server from /proc (CPU time, memory, processes, threads, context switches)
and with perf (system calls); stop the server with SIGTERM. Everything goes into
results/<UTC time>-<commit>/results.json, rewritten after every measurement so an interrupted run
keeps what it has, and report.py turns it into plots and a report. See docs/bench.md.
"""
import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = "c10k-lab/results/1"
SCENARIOS_FILE = os.path.join(ROOT, "harness", "scenarios.txt")
LOADGEN = os.path.join(ROOT, "bin", "loadgen")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0
# System calls are counted in a run of their own after the measured ones: perf's tracepoint costs
# the server 15-20 % of its throughput, which must not show in the figures it sits beside.
SYSCALL_RUN_S = 0.5
SYSCALL_RUN_WARMUP_S = 0.1
DEFAULT_SOURCES = "127.0.0.1-127.0.0.16"


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop measuring, keep what we have."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# --- scenarios -----------------------------------------------------------------------------------

class Point:
    def __init__(self, scenario, label, x, route, args, quick):
        self.scenario, self.label, self.x, self.route = scenario, label, x, route
        self.args, self.quick = args, quick


def load_scenarios(path=SCENARIOS_FILE):
    points = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 4:
                raise SystemExit(f"{path}:{number}: expected: scenario point x route args...")
            scenario, label, x, route, args = fields[0], fields[1], float(fields[2]), fields[3], fields[4:]
            quick = bool(args) and args[0] == "quick"
            points.append(Point(scenario, label, x, route, args[1:] if quick else args, quick))
    return points


def scenario_names(points):
    names = []
    for point in points:
        if point.scenario not in names:
            names.append(point.scenario)
    return names


# --- servers ---------------------------------------------------------------------------------------

def makefile_list(target):
    out = subprocess.run(["make", "-s", "--no-print-directory", target], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
# Written by c10k-lab's bench.py: the reference row. One worker, like our single-core servers.
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{
    worker_connections {connections};
    use epoll;
    multi_accept off;
}}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""


def read_proc(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def proc_stat_fields(pid):
    text = read_proc(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def process_tree(root_pid):
    """The root and all its descendants that are alive now."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


class Server:
    """One server process (and its children), started fresh for a scenario."""

    def __init__(self, name, command, run_dir, cpus, tag):
        self.name, self.command, self.cpus = name, command, cpus
        self.stderr_path = os.path.join(run_dir, "logs", f"{tag}.stderr")
        self.process = None
        self.port = None
        self.run_dir = run_dir

    def start(self):
        os.makedirs(os.path.dirname(self.stderr_path), exist_ok=True)
        stderr = open(self.stderr_path, "w")
        is_nginx = self.name == "nginx"
        command = list(self.command)
        if is_nginx:
            self.port = free_port()
            conf_dir = os.path.join(self.run_dir, "nginx")
            os.makedirs(conf_dir, exist_ok=True)
            conf = os.path.join(conf_dir, "nginx.conf")
            with open(conf, "w") as f:
                nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                f.write(NGINX_CONF.format(dir=conf_dir, port=self.port, nofile=nofile, connections=nofile - 16))
            command += ["-c", conf, "-p", conf_dir, "-e", os.path.join(conf_dir, "nginx-error.log")]
        else:
            command += ["--port", "0"]
        try:
            self.process = subprocess.Popen(
                ["taskset", "-c", self.cpus] + command, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=stderr, start_new_session=True, cwd=ROOT)
        except OSError as e:
            stderr.close()
            return f"cannot start {command[0]}: {e}"
        stderr.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        if is_nginx:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return f"exited with status {self.process.returncode} before listening"
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return None
                except OSError:
                    time.sleep(0.05)
            return f"not listening within {START_TIMEOUT_S:.0f} s"
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(self.process.stdout.fileno(), 1)
            if not chunk:
                break
            line += chunk
        match = re.fullmatch(rb"listening on (\S+):(\d+)\n", line)
        if not match:
            if self.process.poll() is not None:
                return f"exited with status {self.process.returncode} before listening"
            return f"no 'listening on' line within {START_TIMEOUT_S:.0f} s (got {line[:80]!r})"
        self.port = int(match.group(2))
        return None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def pids(self):
        return process_tree(self.process.pid) if self.alive() else []

    def counters(self):
        """CPU seconds (children reaped included), context switches, processes and threads."""
        cpu = voluntary = involuntary = threads = 0
        pids = self.pids()
        for pid in pids:
            fields = proc_stat_fields(pid)
            if fields:
                # utime stime cutime cstime are fields 14-17 of stat, 12-15 after the name.
                cpu += sum(int(v) for v in fields[11:15]) / CLK_TCK
                threads += int(fields[17])
            for task in os.listdir(f"/proc/{pid}/task") if os.path.exists(f"/proc/{pid}/task") else []:
                status = read_proc(f"/proc/{pid}/task/{task}/status") or ""
                for key, value in re.findall(r"^(voluntary_ctxt_switches|nonvoluntary_ctxt_switches):\s+(\d+)",
                                             status, re.M):
                    if key.startswith("voluntary"):
                        voluntary += int(value)
                    else:
                        involuntary += int(value)
        return {"cpu_s": cpu, "voluntary": voluntary, "involuntary": involuntary,
                "processes": len(pids), "threads": threads}

    def reset_peak_rss(self):
        """Restarts the kernel's peak-RSS mark (VmHWM) of every process at its current RSS.
        Returns None, or why it could not (the peak is then the process's lifetime peak)."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError as e:
                return f"cannot reset the peak RSS: {e}"
        return None

    def proc_bytes(self, file, field):
        """A "Field:  N kB" line of /proc/PID/<file>, in bytes, summed over the processes."""
        total = 0
        for pid in self.pids():
            match = re.search(rf"^{field}:\s+(\d+) kB", read_proc(f"/proc/{pid}/{file}") or "", re.M)
            if match:
                total += int(match.group(1)) * 1024
        return total

    def peak_rss(self):
        """Peak RSS (VmHWM). The kernel keeps the peak, so nothing samples the server while it is
        measured: a sampler sharing the server's CPU showed up as latency (p99 of 2-3 ms instead
        of 0.1 ms at a quarter of the load)."""
        return self.proc_bytes("status", "VmHWM")

    def pss(self):
        """PSS: shared pages divided among their sharers."""
        return self.proc_bytes("smaps_rollup", "Pss")

    def stderr_tail(self, lines=20):
        text = read_proc(self.stderr_path) or ""
        if self.name == "nginx":
            text += read_proc(os.path.join(self.run_dir, "nginx", "nginx-error.log")) or ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        """SIGTERM, then SIGKILL; returns None when it stopped cleanly, else the problem."""
        if self.process is None:
            return None
        problem = None
        if self.process.poll() is not None:
            problem = f"had exited with status {self.process.returncode}"
        else:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
                if self.process.returncode != 0:
                    problem = f"exited with status {self.process.returncode} on SIGTERM"
            except subprocess.TimeoutExpired:
                problem = f"did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed"
        # Whatever is left of its process group goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        return problem


# --- one measurement -------------------------------------------------------------------------------

def perf_available():
    try:
        result = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf cannot run: {e}"
    if result.returncode != 0 or "raw_syscalls:sys_enter" not in result.stderr:
        return "perf cannot count raw_syscalls:sys_enter here: " + result.stderr.strip()[-200:]
    if "<not supported>" in result.stderr or "<not counted>" in result.stderr:
        return "perf: raw_syscalls:sys_enter not supported here"
    return None


def start_perf(pids, path):
    return subprocess.Popen(["perf", "stat", "-x,", "-o", path, "-e", "raw_syscalls:sys_enter",
                             "-p", ",".join(str(p) for p in pids)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_perf(perf, path):
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(5)
    except subprocess.TimeoutExpired:
        perf.kill()
        perf.wait()
        return None, "perf did not stop"
    text = read_proc(path) or ""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter":
            if fields[0].strip().isdigit():
                return int(fields[0]), None
            return None, f"perf counted {fields[0]!r}"
    return None, "perf wrote no count"


def loadgen_summary(doc):
    """The figures of one loadgen JSON document that the results keep (see docs/loadgen.md)."""
    totals, rates, response = doc["totals"], doc["rates"], doc["latency"]["response_time"]
    summary = {
        "requests_per_s": rates["requests_per_s"],
        "bytes_per_s": rates["bytes_read_per_s"],
        "completed": totals["completed"],
        "failed": totals["failed"],
        "warmup_completed": totals["warmup"]["completed"],
        "in_flight_at_end": totals["in_flight_at_end"],
        "responses_in_window": totals["responses_in_window"],
        "connections": doc["fairness"]["connections"],
        "connections_served": doc["fairness"]["served"],
        "fairness_jain_index": doc["fairness"]["jain_index"],
        "errors": doc["errors"]["total"],
        "latency_p50_us": response["p50_us"],
        "latency_p90_us": response["p90_us"],
        "latency_p99_us": response["p99_us"],
        "latency_p999_us": response["p99_9_us"],
        "latency_max_us": response["max_us"],
        "latency_mean_us": response["mean_us"],
        "client_cpu_us_per_request": doc["cpu"]["us_per_request"],
    }
    if doc["config"]["mode"] == "open":
        service = doc["latency"]["service_time"]
        summary.update({
            "offered_rate": rates["offered_per_s"],
            "achieved_rate": rates["achieved_per_s"],
            "saturated": bool(rates["saturated"]),
            "service_p50_us": service["p50_us"],
            "service_p99_us": service["p99_us"],
            "send_lag_p99_us": rates["send_lag_p99_us"],
        })
    if doc["config"]["idle"]:
        summary["idle_established"] = doc["idle"]["established"]
        summary["idle_open_at_end"] = doc["idle"]["open_at_end"]
    return summary


class Bench:
    def __init__(self, args, run_dir, points, servers):
        self.args, self.run_dir, self.points, self.servers = args, run_dir, points, servers
        self.results_path = os.path.join(run_dir, "results.json")
        self.records = []
        self.perf_problem = None if not args.no_perf else "disabled with --no-perf"
        if self.perf_problem is None:
            self.perf_problem = perf_available()
        self.current_loadgen = None
        self.current_perf = None
        self.current_servers = []
        self.runs_total = sum(len(self.applicable(s, points)) for s in servers) * args.reps
        self.runs_done = 0
        self.started = time.monotonic()
        self.plaintext_rate = {}
        self.document = {
            "schema": SCHEMA,
            "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished_at": None,
            "complete": False,
            "interrupted": False,
            "environment": environment(args),
            "settings": {
                "servers": [s for s in servers], "scenarios": scenario_names(points),
                "reps": args.reps, "duration_s": args.duration, "warmup_s": args.warmup,
                "server_cpus": args.server_cpus, "client_cpus": args.client_cpus,
                "loadgen_threads": args.loadgen_threads, "timeout_s": args.timeout,
                "sources": args.sources, "quick": args.quick,
                "syscalls": self.perf_problem or ("perf stat -e raw_syscalls:sys_enter on the server's processes, "
                                                  "in a separate short run per point"),
            },
            "records": self.records,
        }
        self.save()

    def applicable(self, server, points):
        return [p for p in points if not self.route_missing(server, p)]

    def route_missing(self, server, point):
        return server == "nginx" and point.route != "/"

    def save(self):
        temporary = self.results_path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(self.document, f, indent=1)
            f.write("\n")
        os.replace(temporary, self.results_path)

    def eta(self):
        if self.runs_done == 0:
            return "?"
        left = (time.monotonic() - self.started) / self.runs_done * (self.runs_total - self.runs_done)
        return f"{int(left // 60)}m{int(left % 60):02d}s"

    def server_command(self, name):
        if name == "nginx":
            return [shutil.which("nginx") or "/usr/sbin/nginx"]
        if name in self.args.server_bin:
            return [self.args.server_bin[name]]
        return [os.path.join(ROOT, "bin", name)]

    def record(self, server, point, status, **fields):
        record = {"server": server, "scenario": point.scenario, "point": point.label, "x": point.x,
                  "route": point.route, "status": status}
        record.update(fields)
        self.records.append(record)
        self.save()
        return record

    def run(self):
        for scenario in scenario_names(self.points):
            self.run_scenario(scenario, [p for p in self.points if p.scenario == scenario])
        self.document["complete"] = True

    def run_scenario(self, scenario, points):
        """Starts every server fresh for the scenario (all pinned to the server CPUs, idle but one at
        a time), then measures point by point, alternating the servers' order from one repetition to
        the next (A B C, C B A, ...): the machine's drift then falls on all of them alike, and the
        repetitions of two servers with the same number were taken side by side."""
        servers = []
        for name in self.servers:
            missing = [p for p in points if self.route_missing(name, p)]
            for point in missing:
                self.record(name, point, "not_applicable", reason=f"{name} has no route {point.route}")
            if len(missing) == len(points):
                continue
            server = Server(name, self.server_command(name), self.run_dir, self.args.server_cpus,
                            f"{name}-{scenario}")
            self.current_servers.append(server)
            problem = server.start()
            if problem:
                stop_problem = server.stop()
                self.current_servers.remove(server)
                tail = server.stderr_tail()
                for point in points:
                    if point not in missing:
                        self.runs_done += self.args.reps
                        self.record(name, point, "failed", reason=f"server failed to start: {problem}",
                                    stop_problem=stop_problem, stderr_tail=tail)
                log(f"[{self.runs_done}/{self.runs_total}] {name} {scenario}: FAILED to start: {problem}")
                continue
            servers.append(server)
        dead = {}
        last_record = {}
        try:
            for point in points:
                present = [s for s in servers if not self.route_missing(s.name, point)]
                for server in present:
                    if server.name in dead:
                        self.runs_done += self.args.reps
                        log(f"[{self.runs_done}/{self.runs_total}] {server.name} {scenario} {point.label}  "
                            f"FAILED: {dead[server.name]}  (eta {self.eta()})")
                        last_record[server.name] = self.record(server.name, point, "failed",
                                                               reason=dead[server.name],
                                                               stderr_tail=server.stderr_tail())
                for record in self.run_point([s for s in present if s.name not in dead], point):
                    last_record[record["server"]] = record
                    server = next(s for s in present if s.name == record["server"])
                    if not server.alive() and server.name not in dead:
                        dead[server.name] = f"server exited (status {server.process.returncode}) during {scenario}"
                        record["status"] = "failed"
                        record["reason"] = dead[server.name]
                        record["stderr_tail"] = server.stderr_tail()
                        self.save()
        finally:
            stop_problems = {s.name: s.stop() for s in servers}
            self.current_servers = []
        for server in servers:
            record = last_record.get(server.name)
            if stop_problems[server.name] and server.name not in dead and record is not None:
                record.setdefault("stop_problem", stop_problems[server.name])
                record["stderr_tail"] = server.stderr_tail()
        self.save()

    def loadgen_args(self, server_name, point):
        args = []
        for arg in point.args:
            match = re.fullmatch(r"\{RATE(\d+)\}", arg)
            if match:
                base = self.plaintext_rate.get(server_name)
                if not base:
                    return None, "no plaintext c=64 throughput to base the rate on"
                arg = str(max(1, int(base * int(match.group(1)) / 100)))
            arg = arg.replace("{SOURCES}", self.args.sources)
            args.append(arg)
        return args, None

    def run_point(self, servers, point):
        """Measures one point on every server, alternating their order by repetition; returns the
        records it wrote."""
        records, runs = [], []
        for server in servers:
            args, problem = self.loadgen_args(server.name, point)
            if problem:
                self.runs_done += self.args.reps
                records.append(self.record(server.name, point, "failed", reason=problem))
            else:
                runs.append({"server": server, "args": args, "reps": [], "raw": [], "failures": []})
        for rep in range(1, self.args.reps + 1):
            for run in (runs if rep % 2 else runs[::-1]):
                server = run["server"]
                if not server.alive():
                    run["failures"].append(f"rep {rep}: server not running")
                    self.runs_done += 1
                    log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
                        f"rep {rep}/{self.args.reps}  FAILED: server not running  (eta {self.eta()})")
                    continue
                raw = os.path.join("raw", f"{server.name}-{point.scenario}-{point.label}-rep{rep}.json")
                measured, problem = self.measure(server, point, run["args"], os.path.join(self.run_dir, raw))
                self.runs_done += 1
                if problem:
                    run["failures"].append(f"rep {rep}: {problem}")
                    log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
                        f"rep {rep}/{self.args.reps}  FAILED: {problem}  (eta {self.eta()})")
                    continue
                measured["rep"] = rep
                run["raw"].append(raw)
                run["reps"].append(measured)
                p99 = measured["latency_p99_us"]
                starved = measured["connections"] - measured["connections_served"]
                served = f"  served {measured['connections_served']}/{measured['connections']}" if starved else ""
                log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
                    f"rep {rep}/{self.args.reps}  {measured['requests_per_s']:,.0f} req/s  "
                    f"p99 {p99 / 1000:.1f} ms  errors {measured['errors']}{served}  (eta {self.eta()})")
        for run in runs:
            records.append(self.finish_point(run["server"], point, run["args"], run["reps"], run["raw"],
                                             run["failures"]))
        return records

    def finish_point(self, server, point, args, reps, raw_files, failures):
        if not reps:
            return self.record(server.name, point, "failed", reason="; ".join(failures) or "no measurement",
                               stderr_tail=server.stderr_tail(), loadgen_args=args)
        # A run in which no response arrived measured nothing but a stall: that is an error too.
        status = "errors" if any(r["errors"] or not r["responses_in_window"] for r in reps) or failures else "ok"
        extra = {}
        if any(not r["responses_in_window"] for r in reps):
            extra["reason"] = ("no response arrived in some repetition's measured window: the server "
                               "answered none of the active connections")
        elif any(r["errors"] for r in reps):
            extra["reason"] = "loadgen counted errors (see errors in the repetitions' raw JSON)"
        elif failures:
            extra["reason"] = "; ".join(failures)
        summary = summarize(reps)
        if self.perf_problem is None and server.alive():
            extra["syscall_run"] = self.count_syscalls(server, point, args)
            per_request = extra["syscall_run"]["syscalls_per_request"]
            if per_request is not None:
                summary["syscalls_per_request"] = {"median": per_request, "min": per_request, "max": per_request}
        if point.scenario == "plaintext" and point.label == "c=64":
            self.plaintext_rate[server.name] = summary["requests_per_s"]["median"]
        if any("saturated" in r for r in reps):
            extra["saturated"] = any(r.get("saturated") for r in reps)
        return self.record(server.name, point, status, loadgen_args=args, median=summary_medians(summary),
                           spread=summary, reps=reps, raw=raw_files, failures=failures, **extra)

    def count_syscalls(self, server, point, args):
        """One short extra run with perf attached; only its system calls per request are used."""
        raw = os.path.join("raw", f"{server.name}-{point.scenario}-{point.label}-syscalls.json")
        measured, problem = self.measure(server, point, args, os.path.join(self.run_dir, raw), count_syscalls=True,
                                         duration=SYSCALL_RUN_S, warmup=SYSCALL_RUN_WARMUP_S)
        if problem:
            return {"raw": raw, "syscalls": None, "requests": None, "syscalls_per_request": None,
                    "problem": problem}
        return {"raw": raw, "syscalls": measured["syscalls"],
                "requests": measured["completed"] + measured["warmup_completed"],
                "syscalls_per_request": measured["syscalls_per_request"], "problem": measured["syscalls_problem"]}

    def measure(self, server, point, args, raw_path, count_syscalls=False, duration=None, warmup=None):
        os.makedirs(os.path.dirname(raw_path), exist_ok=True)
        duration = self.args.duration if duration is None else duration
        warmup = self.args.warmup if warmup is None else warmup
        url = f"http://127.0.0.1:{server.port}{point.route}"
        command = ["taskset", "-c", self.args.client_cpus, LOADGEN,
                   "-t", str(self.args.loadgen_threads), "-d", str(duration),
                   "--warmup", str(warmup), "--timeout", str(self.args.timeout),
                   "--json", raw_path, "--quiet"] + args + [url]
        before = server.counters()
        peak_problem = server.reset_peak_rss()
        perf = perf_path = None
        if count_syscalls:
            perf_path = raw_path[:-5] + ".perf"
            perf = self.current_perf = start_perf(server.pids(), perf_path)
            time.sleep(0.1)  # perf must be attached before the load starts
        stdout_path = raw_path[:-5] + ".out"
        with open(stdout_path, "w") as out:
            loadgen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, cwd=ROOT)
        self.current_loadgen = loadgen
        started = time.monotonic()
        deadline = started + warmup + duration + self.args.timeout + 30
        # PSS has no kernel-kept peak: it is read once, halfway through the measured window, while
        # loadgen's connections (the idle ones of c10k included) are all open.
        pss_at = started + warmup + duration / 2
        pss = None
        hung = False
        try:
            loadgen.wait(timeout=max(0.0, pss_at - time.monotonic()))
        except subprocess.TimeoutExpired:
            pss = server.pss()
            try:
                loadgen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                loadgen.kill()
                hung = True
        peak_rss = server.peak_rss()
        loadgen.wait()
        self.current_loadgen = None
        syscalls = None
        syscall_problem = self.perf_problem or "counted in a separate run (record's syscall_run)"
        if perf:
            syscalls, syscall_problem = stop_perf(perf, perf_path)
            self.current_perf = None
        after = server.counters()
        if hung:
            return None, "loadgen did not finish in time (killed)"
        if loadgen.returncode != 0:
            tail = "\n".join((read_proc(stdout_path) or "").splitlines()[-5:])
            return None, f"loadgen exited with status {loadgen.returncode}: {tail}"
        try:
            with open(raw_path) as f:
                doc = json.load(f)
            measured = loadgen_summary(doc)
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"unreadable loadgen JSON: {e!r}"
        requests = measured["completed"] + measured["warmup_completed"]
        cpu = after["cpu_s"] - before["cpu_s"]
        measured.update({
            "server_cpu_s": round(cpu, 4),
            "server_cpu_us_per_request": round(cpu * 1e6 / requests, 3) if requests else None,
            "peak_rss_bytes": peak_rss,
            "peak_rss_problem": peak_problem,
            "pss_mid_run_bytes": pss or 0,
            "processes": after["processes"],
            "threads": after["threads"],
            "voluntary_switches": after["voluntary"] - before["voluntary"],
            "involuntary_switches": after["involuntary"] - before["involuntary"],
            "syscalls": syscalls,
            "syscalls_per_request": round(syscalls / requests, 3) if syscalls is not None and requests else None,
            "syscalls_problem": syscall_problem if syscalls is None else None,
        })
        return measured, None

    def finish(self):
        """Derived figures that need several points: memory per idle connection in c10k."""
        for server in self.servers:
            base = next((r for r in self.records if r["server"] == server and r["scenario"] == "c10k"
                         and r["x"] == 0 and r.get("median")), None)
            for record in self.records:
                if (record["server"] != server or record["scenario"] != "c10k" or not record.get("median")
                        or record["x"] == 0 or base is None):
                    continue
                idle = record["median"].get("idle_established") or record["x"]
                delta = record["median"]["peak_rss_bytes"] - base["median"]["peak_rss_bytes"]
                record["median"]["memory_per_idle_connection_bytes"] = round(delta / idle, 1) if idle else None
        self.document["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.document["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.save()

    def interrupt(self):
        for process in (self.current_loadgen, self.current_perf):
            if process and process.poll() is None:
                process.kill()
                process.wait()
        for server in self.current_servers:
            server.stop()


def summarize(reps):
    """Median, min and max of every numeric field over the repetitions."""
    summary = {}
    for key in reps[0]:
        if key == "rep":
            continue
        values = [r[key] for r in reps if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        if values:
            summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def summary_medians(summary):
    return {key: value["median"] for key, value in summary.items()}


# --- environment -----------------------------------------------------------------------------------

def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def environment(args):
    cpu_model = None
    for line in (read_proc("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    governor = read_proc("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    nginx_version = None
    try:
        nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "kernel": os.uname().release,
        "machine": os.uname().machine,
        "cpu_model": cpu_model,
        "nproc": os.cpu_count(),
        "cpu_governor": governor.strip() if governor else None,
        "memory_total_kib": int(re.search(r"MemTotal:\s+(\d+)", read_proc("/proc/meminfo") or "MemTotal: 0").group(1)),
        "commit": command_output(["git", "describe", "--always", "--dirty"]),
        "compiler": (command_output(["gcc", "--version"]) or "").splitlines()[0:1],
        "cflags": command_output(["make", "-s", "--no-print-directory", "print-cflags"]),
        "loadgen_version": command_output([LOADGEN, "--version"]),
        "nginx_version": nginx_version,
        "python": sys.version.split()[0],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv, points, servers):
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description="Runs every server through every scenario of harness/scenarios.txt and writes "
                    "results/<UTC time>-<commit>/ (results.json, plots, report).")
    parser.add_argument("--servers", help=f"space-separated servers (default: {' '.join(servers)})")
    parser.add_argument("--scenarios", help=f"space-separated scenarios (default: all: {' '.join(scenario_names(points))})")
    parser.add_argument("--reps", type=int, help="repetitions of every point (default 3; 1 with --quick)")
    parser.add_argument("--duration", type=float, default=1.0, help="measured seconds per run (default 1)")
    parser.add_argument("--warmup", type=float, default=0.25, help="warm-up seconds before every run (default 0.25)")
    parser.add_argument("--timeout", type=float, default=2.0, help="loadgen's per-request timeout (default 2 s)")
    parser.add_argument("--quick", action="store_true", help="the reduced suite (make bench-quick)")
    parser.add_argument("--server-cpus", default="0", help="CPU list for the server (default 0)")
    parser.add_argument("--client-cpus", default="1", help="CPU list for the loadgen (default 1)")
    parser.add_argument("--loadgen-threads", type=int, default=1, help="loadgen threads (default 1)")
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help=f"loopback source range for churn (default {DEFAULT_SOURCES})")
    parser.add_argument("--server-bin", action="append", default=[], metavar="NAME=PATH",
                        help="benchmark another server binary under NAME (it must follow docs/protocol.md)")
    parser.add_argument("--out", help="run directory (default results/<UTC time>-<commit>)")
    parser.add_argument("--no-perf", action="store_true", help="do not count system calls with perf")
    parser.add_argument("--no-plots", action="store_true", help="write results.json only")
    parser.add_argument("--list", action="store_true", help="print the servers and scenarios, then exit")
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3

    extra = {}
    for item in args.server_bin:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--server-bin wants NAME=PATH, got {item!r}")
        extra[name] = os.path.abspath(path)
    args.server_bin = extra
    known_servers = servers + list(extra)
    args.server_list = args.servers.replace(",", " ").split() if args.servers else known_servers
    for name in args.server_list:
        if name not in known_servers:
            parser.error(f"unknown server {name!r} (known: {' '.join(known_servers)})")
    known_scenarios = scenario_names(points)
    args.scenario_list = args.scenarios.replace(",", " ").split() if args.scenarios else known_scenarios
    for name in args.scenario_list:
        if name not in known_scenarios:
            parser.error(f"unknown scenario {name!r} (known: {' '.join(known_scenarios)})")
    if "latency" in args.scenario_list and "plaintext" not in args.scenario_list:
        parser.error("the latency scenario needs plaintext (its rates are fractions of plaintext c=64)")
    if args.reps < 1 or args.duration <= 0 or args.warmup < 0 or args.timeout <= 0 or args.loadgen_threads < 1:
        parser.error("--reps, --duration, --timeout and --loadgen-threads must be positive, --warmup not negative")
    if not re.fullmatch(r"[0-9,\-]+", args.server_cpus) or not re.fullmatch(r"[0-9,\-]+", args.client_cpus):
        parser.error("--server-cpus and --client-cpus take CPU lists like 0 or 0-3 or 0,2")
    return args


def cpu_list(text):
    """The CPUs of a taskset-style list, e.g. "0-3,6"."""
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def main(argv):
    points = load_scenarios()
    servers = makefile_list("print-servers") + ["nginx"]
    args = parse_args(argv, points, servers)
    if args.list:
        print("servers:   " + " ".join(servers))
        for name in scenario_names(points):
            labels = [p.label + ("*" if p.quick else "") for p in points if p.scenario == name]
            print(f"scenario:  {name:10s} {' '.join(labels)}")
        print("(* in the quick suite)")
        return 0
    if args.quick:
        points = [p for p in points if p.quick]
    points = [p for p in points if p.scenario in args.scenario_list]
    if args.quick and "plaintext" not in args.scenario_list:
        points = [p for p in points if p.scenario != "latency"]

    # This driver (and perf and gnuplot, which it starts) stays off the server's CPUs: anything that
    # runs there is counted as the server's latency.
    try:
        os.sched_setaffinity(0, cpu_list(args.client_cpus) & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    except (OSError, ValueError) as e:
        log(f"bench: cannot pin the driver to CPUs {args.client_cpus}: {e}")

    # Servers and the loadgen inherit the raised limit: the c10k scenario needs 10 000+ descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    commit = command_output(["git", "rev-parse", "--short", "HEAD"]) or "nocommit"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = os.path.abspath(args.out or os.path.join(ROOT, "results", f"{stamp}-{commit}"))
    os.makedirs(run_dir, exist_ok=True)

    bench = Bench(args, run_dir, points, args.server_list)
    # Overheads measured on a 2-core box: ~0.2 s per run (processes, idle set-up), ~0.25 s per
    # system-call run, ~0.3 s to start a scenario's servers.
    scenarios = scenario_names(points)
    estimate = bench.runs_total * (args.warmup + args.duration + 0.2) + len(scenarios) * 0.3
    if bench.perf_problem is None:
        estimate += bench.runs_total / args.reps * (SYSCALL_RUN_WARMUP_S + SYSCALL_RUN_S + 0.25)
    log(f"bench: {len(args.server_list)} servers x {len(scenarios)} scenarios, {bench.runs_total} runs of "
        f"{args.warmup:g}+{args.duration:g} s; estimated {int(estimate // 60)}m{int(estimate % 60):02d}s")
    log(f"bench: writing {run_dir}")
    if bench.perf_problem:
        log(f"bench: system calls not counted: {bench.perf_problem}")

    def on_signal(number, frame):
        raise Interrupted()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    status = 0
    try:
        bench.run()
    except Interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log("bench: interrupted; stopping the processes and keeping the partial results")
        bench.interrupt()
        bench.document["interrupted"] = True
        status = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bench.finish()

    latest = os.path.join(ROOT, "results", "latest")
    if os.path.dirname(run_dir) == os.path.join(ROOT, "results"):
        if os.path.islink(latest) or not os.path.exists(latest):
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(os.path.basename(run_dir), latest)
    if not args.no_plots:
        report = subprocess.run([sys.executable, os.path.join(ROOT, "harness", "report.py"), run_dir])
        if report.returncode != 0:
            log("bench: the report failed; results.json is complete")
            status = status or 1
    failed = [r for r in bench.records if r["status"] == "failed"]
    log(f"bench: done in {bench.document['elapsed_s']:.0f} s: {len(bench.records)} records, "
        f"{len(failed)} failed; see {run_dir}/report.md")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
