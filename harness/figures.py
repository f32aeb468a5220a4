#!/usr/bin/env python3
"""figures.py - `make figures`: the teaching figures, each measured on this machine, written as
docs/figures/NAME.json (the data, the environment, the settings and the one-line finding computed
from the data), NAME.png and NAME.svg. docs/figures.md says what to see in each.

    python3 harness/figures.py [--figures LIST] [--out DIR] [--work DIR] [--reps N]

LIST: figure numbers or names, comma- or space-separated (default: all ten). The figures that
measure servers under load run harness/bench.py (server on CPU 0, loadgen on CPU 1, as make bench)
with their own scenario lines into --work (default results/figures-<UTC time>); the others drive
the servers or bin/conn-cost directly. A figure that fails says why and the others go on; exit
status 1 if any failed.
"""
import argparse
import json
import os
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
import report  # noqa: E402

BIN = os.path.join(ROOT, "bin")
LOADGEN = os.path.join(BIN, "loadgen")
SERVER_CPU, CLIENT_CPU = "0", "1"
TERMINALS = (("pngcairo size 960,600 font 'sans,11'", "png"), ("svg size 960,600 dynamic font 'sans,11'", "svg"))


def log(message):
    print(message, file=sys.stderr, flush=True)


class FigureError(Exception):
    pass


# --- running servers and bench.py ------------------------------------------------------------------

class Server:
    """A server of bin/ on CPU 0, on an ephemeral port, stopped with SIGTERM."""

    def __init__(self, name, args=()):
        command = ["taskset", "-c", SERVER_CPU, os.path.join(BIN, name), "--port", "0", *args]
        self.name = name
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = ""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not line:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise FigureError(f"{name} did not say it was listening within 5 s")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def loadgen(port, path, args, seconds):
    """One loadgen run on CPU 1; its JSON document."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = ["taskset", "-c", CLIENT_CPU, LOADGEN, "-d", f"{seconds}s", "--warmup", "0.5s", "--quiet",
                   "--timeout", "5s", "--json", out.name, *args, f"http://127.0.0.1:{port}{path}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
        if result.returncode != 0:
            raise FigureError(f"loadgen {' '.join(args)} failed: {result.stderr.strip()[-200:]}")
        with open(out.name) as f:
            return json.load(f)


def bench_run(ctx, name, servers, lines, servers_file=None, reps=None, extra=()):
    """harness/bench.py on these servers with these scenario lines (and extra bench.py arguments);
    the loaded report.Run."""
    out = os.path.join(ctx.work, name)
    scenarios = os.path.join(ctx.work, f"{name}.scenarios")
    with open(scenarios, "w") as f:
        f.write("\n".join(lines) + "\n")
    command = [sys.executable, os.path.join(HERE, "bench.py"), "--servers", " ".join(servers),
               "--scenarios-file", scenarios, "--reps", str(reps or ctx.reps), "--out", out, "--no-plots", *extra]
    if servers_file:
        path = os.path.join(ctx.work, f"{name}.servers")
        with open(path, "w") as f:
            f.write("\n".join(servers_file) + "\n")
        command += ["--servers-file", path]
    log(f"figures: {name}: {shlex.join(command[1:])}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200,
                            env=dict(os.environ, C10K_BROWSER_CHECK="0"))
    if not os.path.exists(os.path.join(out, "results.json")):
        raise FigureError(f"bench.py wrote no results: {result.stderr.strip()[-300:]}")
    return report.Run(out)


def figure_of(run, server, scenario, point, key):
    record = run.find(server, scenario, point)
    return report.median(record, key) if report.has_figure(record) else None


def spread_of(run, server, scenario, point, key):
    record = run.find(server, scenario, point)
    if not report.has_figure(record):
        return None
    low, high = report.spread(record, key)
    return [report.median(record, key), low, high]


# --- the figures -------------------------------------------------------------------------------------

def fig_staircase(ctx):
    """8 clients at once, each GET /sleep/100 on its own connection: when does each finish?"""
    clients, sleep_ms = 8, 100
    series = {}
    for name in ("iterative", "fork-per-conn", "thread-per-conn"):
        server = Server(name)
        try:
            start = threading.Barrier(clients + 1)
            done = [None] * clients

            def client(i):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                try:
                    start.wait(timeout=10)
                    began = time.monotonic()
                    sock.sendall(f"GET /sleep/{sleep_ms} HTTP/1.1\r\nHost: c10k\r\nConnection: close\r\n\r\n".encode())
                    while sock.recv(65536):
                        pass
                    done[i] = (time.monotonic() - began) * 1000
                finally:
                    sock.close()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            start.wait(timeout=10)
            for t in threads:
                t.join(timeout=30)
            if any(d is None for d in done):
                raise FigureError(f"{name}: a client got no answer")
            series[name] = sorted(done)
        finally:
            server.stop()
    it = series["iterative"]
    finding = (f"iterative: the k-th client is done after about k × {sleep_ms} ms (the 8th after {it[-1]:.0f} ms); "
               f"fork-per-conn and thread-per-conn: all 8 within {max(series['fork-per-conn'][-1], series['thread-per-conn'][-1]):.0f} ms")
    data_lines = ["rank " + " ".join(series)] + [
        f"{k + 1} " + " ".join(f"{series[s][k]:.2f}" for s in series) for k in range(clients)]
    script = f"""set title "8 clients at once, each GET /sleep/{sleep_ms}: when each one is done"
set xlabel "client, in the order it finished"
set ylabel "completion time (ms)"
set yrange [0:*]
set xrange [0.5:{clients}.5]
set key left top
plot for [i=2:4] datafile using 1:i with steps lw 2 lc i-1 title columnheader(i), \\
     for [i=2:4] datafile using 1:i with points pt 7 lc i-1 notitle"""
    return {"settings": {"clients": clients, "route": f"/sleep/{sleep_ms}"}, "data": series,
            "finding": finding, "table": data_lines, "script": script}


def fig_connection_cost(ctx):
    """fork vs pthread_create vs a pool hand-off, and fork against the parent's resident memory."""
    result = subprocess.run([os.path.join(BIN, "conn-cost"), "--cpu", SERVER_CPU], capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise FigureError(f"conn-cost failed: {result.stderr.strip()}")
    doc = json.loads(result.stdout)
    ways = {w["way"]: w for w in doc["ways"]}
    sizes = doc["fork_by_parent_size"]
    finding = (f"CPU µs per new flow of control: fork {ways['fork']['cpu_us']:.1f}, pthread_create "
               f"{ways['pthread_create']['cpu_us']:.1f}, pool hand-off {ways['pool hand-off']['cpu_us']:.1f}; "
               f"fork takes {sizes[0]['fork_wall_us']:.0f} µs with a {sizes[0]['parent_mib']} MiB parent and "
               f"{sizes[-1]['fork_wall_us']:.0f} µs with {sizes[-1]['parent_mib']} MiB "
               f"({sizes[-1]['fork_wall_us'] / sizes[0]['fork_wall_us']:.0f}×)")
    lines = ["# way cpu_us wall_us"] + [f'"{w}" {v["cpu_us"]:.3f} {v["wall_us"]:.3f}' for w, v in ways.items()]
    lines += ["", "", "# parent_mib fork_wall_us fork_cpu_us"] + [
        f"{s['parent_mib']} {s['fork_wall_us']:.3f} {s['fork_cpu_us']:.3f}" for s in sizes]
    script = """set multiplot layout 1,2 title "The cost of a new connection's own flow of control (CPU 0)"
set title "per connection (log scale)"
set ylabel "µs"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key inside top right
set xtics rotate by -20
plot datafile index 0 using 2:xtic(1) title "CPU µs", '' index 0 using 3 title "wall µs"
unset logscale y
set xtics norotate
set style data linespoints
set title "fork + exit + wait against the parent's resident memory"
set xlabel "parent's resident memory (MiB, every page touched)"
set ylabel "µs per fork"
set xrange [0:*]
set yrange [0:*]
set key inside top left
plot datafile index 1 using 1:2 with linespoints lw 2 pt 7 title "wall", \\
     '' index 1 using 1:3 with linespoints lw 2 pt 5 title "CPU"
unset multiplot"""
    return {"settings": {"ops": doc["ops"], "rounds": doc["rounds"]}, "data": doc, "finding": finding,
            "table": lines, "script": script}


MEMORY_SERVERS = [
    "thread-per-conn:64k   thread-per-conn  blocking  --stack-kb 64",
    "thread-per-conn:256k  thread-per-conn  blocking  --stack-kb 256",
    "thread-per-conn:8m    thread-per-conn  blocking  --stack-kb 8192",
    "fork-per-conn         fork-per-conn    blocking",
    "epoll-lt              epoll-lt         event",
    "coroutine:64k         coroutine        beyond    --stack-kb 64",
    "csp                   csp              beyond",
]


def fig_memory(ctx):
    """Memory per idle connection with 10,000 idle, by design."""
    servers = [line.split()[0] for line in MEMORY_SERVERS]
    # The growth from no idle connection to 10,000 is the cost of one. Setting up 10,000 connections
    # takes a thread or a process per connection longer than loadgen's default 2 s bound: 10 s here.
    run = bench_run(ctx, "memory", servers, ["c10k  idle=0  0  /  -c 16 --idle 0",
                                             "c10k  idle=10000  10000  /  -c 16 --idle 10000"],
                    servers_file=MEMORY_SERVERS, reps=1, extra=("--timeout", "10"))
    rows, data = ["# server rss pss virtual"], {}
    for server in servers:
        # The memory is measured whether or not the 16 active connections were answered beside the
        # idle ones (a process per connection may not be): that is recorded, not hidden.
        record = run.find(server, "c10k", "idle=10000")
        values = [report.median(record, k) for k in
                  ("rss_per_idle_connection_bytes", "pss_per_idle_connection_bytes", "vmsize_per_idle_connection_bytes")]
        data[server] = dict(zip(("rss", "pss", "virtual"), values))
        held = report.median(record, "idle_held") or report.median(record, "idle_established")
        data[server]["idle_held"] = held
        data[server]["active_answered"] = report.has_figure(record)
        label = server if held in (None, 10000) else f"{server} ({held:,.0f} held)"
        rows.append(f'"{label}" ' + " ".join(f"{v:.1f}" if v and v > 0 else "NaN" for v in values))
    measured = {s: v for s, v in data.items() if v["pss"]}
    if not measured:
        raise FigureError("no server held 10,000 idle connections with a memory figure")
    cheapest = min(measured, key=lambda s: measured[s]["pss"])
    dearest = max(measured, key=lambda s: measured[s]["pss"])
    finding = (f"PSS per idle connection: {cheapest} {measured[cheapest]['pss']:,.0f} B, {dearest} "
               f"{measured[dearest]['pss']:,.0f} B ({measured[dearest]['pss'] / measured[cheapest]['pss']:.0f}×); "
               + ", ".join(f"{s} {v['pss']:,.0f}" for s, v in measured.items() if s not in (cheapest, dearest))
               + "".join(f"; {s} held {v['idle_held']:,.0f}" + ("" if v["active_answered"] else
                                                                   " and answered none of the 16 active connections")
                         for s, v in measured.items() if v["idle_held"] not in (None, 10000)))
    script = """set title "Memory per idle connection, 10,000 idle (log scale; virtual = address space reserved)"
set ylabel "bytes per idle connection"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -25
set key top left
plot datafile using 2:xtic(1) title "RSS", '' using 3 title "PSS", '' using 4 title "virtual (VmSize)" """
    return {"settings": {"idle": 10000, "servers": MEMORY_SERVERS}, "data": data, "finding": finding,
            "table": rows, "script": script, "run": run.dir}


def fig_c10k(ctx):
    """Requests/s and CPU µs/request of 16 active connections against idle ones."""
    servers = ["select", "poll", "epoll-lt", "io-uring"]
    points = [0, 1000, 5000, 10000]
    lines = [f"c10k  idle={n}  {n}  /  -c 16 --idle {n}" for n in points]
    run = bench_run(ctx, "c10k", servers, lines)
    data, table = {}, []
    for server in servers:
        data[server] = {n: {"requests_per_s": spread_of(run, server, "c10k", f"idle={n}", "requests_per_s"),
                            "server_cpu_us_per_request": spread_of(run, server, "c10k", f"idle={n}",
                                                                   "server_cpu_us_per_request")} for n in points}
        table.append(f"# {server}: idle rps rps_min rps_max cpu cpu_min cpu_max")
        for n in points:
            r, c = data[server][n]["requests_per_s"], data[server][n]["server_cpu_us_per_request"]
            if r and c:
                table.append(f"{n} " + " ".join(f"{v:.6g}" for v in r + c))
        table += ["", ""]
    def at(server, n, key):
        v = data[server][n][key]
        return v[0] if v else None
    parts = []
    for server in servers:
        zero, top = at(server, 0, "server_cpu_us_per_request"), at(server, 10000, "server_cpu_us_per_request")
        if zero and top:
            parts.append(f"{server} {zero:.1f} → {top:.1f} µs/request")
        elif zero:
            last = max((n for n in points if at(server, n, "server_cpu_us_per_request")), default=0)
            parts.append(f"{server} {zero:.1f} µs/request, nothing measured beyond {last:,} idle")
    finding = "From 0 to 10,000 idle connections: " + "; ".join(parts)
    script = f"""set multiplot layout 1,2 title "The C10K figure: 16 active connections beside N idle ones (min–max over repetitions)"
set xlabel "idle connections"
set key top left
set title "requests/s"
set yrange [0:*]
set format y "%.0s%c"
plot for [i=0:{len(servers) - 1}] datafile index i using 1:2:3:4 with yerrorlines lw 2 title word("{' '.join(servers)}", i + 1)
set title "server CPU µs per request"
set format y "%g"
plot for [i=0:{len(servers) - 1}] datafile index i using 1:5:6:7 with yerrorlines lw 2 title word("{' '.join(servers)}", i + 1)
unset multiplot"""
    return {"settings": {"servers": servers, "idle": points}, "data": data, "finding": finding, "table": table,
            "script": script, "run": run.dir}


def fig_mix(ctx):
    """The fast requests' p99 per second when 1 % of the requests block 50 ms."""
    servers = ["epoll-lt", "reactor-workers", "multi-reactor", "coroutine"]
    run = bench_run(ctx, "mix", servers, ["mix  c=64  64  /  duration=6 -c 64 --mix /sleep/50:1"], reps=2)
    data_dir = os.path.join(run.dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    drawn = report.write_mix_timeline(run, data_dir)
    if not drawn:
        raise FigureError("no per-second timeline in the mix runs")
    table, data = [], {}
    for server in servers:
        path = os.path.join(data_dir, f"mix_timeline-{server}.tsv")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
        data[server] = [[float(x) if x != "NaN" else None for x in row[:2]] for row in rows]
        table.append(f"# {server}")
        table += [" ".join(row[:2]) for row in rows]
        table += ["", ""]
    p99 = {s: figure_of(run, s, "mix", "c=64", "fast_latency_p99_us") for s in servers}
    finding = "Fast requests' p99 with 1 % /sleep/50: " + ", ".join(
        f"{s} {v / 1000:.2f} ms" for s, v in p99.items() if v is not None)
    names = [s for s in servers if s in data]
    script = f"""set title "1 % of requests sleep 50 ms: the fast requests' p99, second by second"
set xlabel "seconds of measured windows (repetitions end to end)"
set ylabel "fast requests' p99 (ms, log scale)"
set logscale y 10
set key outside right top
plot for [i=0:{len(names) - 1}] datafile index i using 1:2 with linespoints lw 2 title word("{' '.join(names)}", i + 1)"""
    return {"settings": {"servers": servers, "mix": "/sleep/50:1", "connections": 64}, "data": data,
            "p99_fast_us": p99, "finding": finding, "table": table, "script": script, "run": run.dir}


HERD_SERVERS = [
    "prefork             prefork          blocking   --workers 4",
    "reuseport:shared    reuseport        multicore  --threads 4 --listen shared",
    "reuseport:exclusive reuseport        multicore  --threads 4 --listen exclusive",
    "reuseport           reuseport        multicore  --threads 4",
    "leader-follower     leader-follower  multicore  --threads 4",
    "multi-reactor       multi-reactor    multicore  --threads 4",
]
HERD_LABELS = {"prefork": "blocking accept (prefork)", "reuseport:shared": "shared epoll",
               "reuseport:exclusive": "EPOLLEXCLUSIVE", "reuseport": "SO_REUSEPORT",
               "leader-follower": "leader/follower", "multi-reactor": "main acceptor"}


def herd_run(ctx):
    if "herd" not in ctx.cache:
        servers = [line.split()[0] for line in HERD_SERVERS]
        ctx.cache["herd"] = bench_run(ctx, "herd", servers,
                                      ["herd  c=10  10  /  fresh -c 10 --close --source {SOURCES}"],
                                      servers_file=HERD_SERVERS)
    return ctx.cache["herd"]


def fig_wakeups(ctx):
    """Wake-ups per accepted connection, by accept discipline."""
    run = herd_run(ctx)
    servers = ["prefork", "reuseport:shared", "reuseport:exclusive", "reuseport"]
    table, data = ["# discipline switches listen_wakeups"], {}
    for server in servers:
        record = run.find(server, "herd")
        if not report.has_figure(record):
            continue
        switches = report.switches_per_connection(record)
        wakeups = (record.get("server_counts") or {}).get("listen_events_per_accept")
        data[server] = {"voluntary_switches_per_connection": switches, "listen_wakeups_per_accept": wakeups}
        table.append(f'"{HERD_LABELS[server]}" {switches if switches is not None else "NaN"} '
                     f'{wakeups if wakeups is not None else "NaN"}')
    if not data:
        raise FigureError("no herd point measured")
    finding = "Voluntary context switches per accepted connection (4 workers or loops, churn c=10): " + ", ".join(
        f"{HERD_LABELS[s]} {v['voluntary_switches_per_connection']:.2f}" for s, v in data.items()
        if v["voluntary_switches_per_connection"] is not None)
    script = """set title "Wake-ups per accepted connection (churn c=10, 4 workers or loops on 1 CPU)"
set ylabel "per accepted connection"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
plot datafile using 2:xtic(1) title "voluntary context switches", '' using 3 title "listener wake-ups (where counted)" """
    return {"settings": {"servers": HERD_SERVERS[:4]}, "data": data, "finding": finding, "table": table,
            "script": script, "run": run.dir}


def fig_accepts(ctx):
    """Connections per worker and p99, by who accepts."""
    run = herd_run(ctx)
    servers = ["reuseport:shared", "reuseport", "leader-follower", "multi-reactor"]
    table, data = [], {}
    for server in servers:
        record = run.find(server, "herd")
        if not report.has_figure(record):
            continue
        # The loops that served connections: a main acceptor's own loop accepts and serves none.
        loops = [loop for loop in (record.get("server_counts") or {}).get("loops") or [] if loop.get("connections")]
        served = [loop["connections"] for loop in loops]
        data[server] = {"connections_per_loop": served, "p99_us": report.median(record, "latency_p99_us")}
        table.append((server, served, data[server]["p99_us"]))
    if not data:
        raise FigureError("no herd point measured")
    width = max(len(served) for _, served, _ in table)
    lines = ["# who " + " ".join(f"loop{i}" for i in range(width)) + " p99_ms"]
    for server, served, p99 in table:
        total = sum(served) or 1
        shares = [100 * c / total for c in served] + [0.0] * (width - len(served))
        lines.append(f'"{HERD_LABELS[server]}" ' + " ".join(f"{v:.2f}" for v in shares)
                     + f" {p99 / 1000 if p99 else 'NaN'}")
    finding = "Busiest loop's share of the connections, and p99: " + ", ".join(
        f"{HERD_LABELS[s]} {100 * max(v['connections_per_loop']) / sum(v['connections_per_loop']):.0f} % "
        f"of {len(v['connections_per_loop'])} loops, {v['p99_us'] / 1000:.2f} ms"
        for s, v in data.items() if v["connections_per_loop"] and v["p99_us"])
    script = f"""set multiplot layout 1,2 title "Who gets the connections (churn c=10, 4 loops on 1 CPU)"
set title "connections per serving loop, % of the server's"
set ylabel "% of connections"
set yrange [0:100]
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
set xtics rotate by -25
set key top right
plot for [i=2:{width + 1}] datafile using i:xtic(1) title sprintf("loop %d", i - 1)
set title "p99 latency (ms)"
set ylabel "ms"
set yrange [0:*]
set style histogram clustered
plot datafile using {width + 2}:xtic(1) notitle
unset multiplot"""
    return {"settings": {"servers": HERD_SERVERS[1:]}, "data": data, "finding": finding, "table": lines,
            "script": script, "run": run.dir}


def fig_threads(ctx):
    """Throughput against threads."""
    servers = ["multi-reactor", "reuseport", "leader-follower", "epoll-lt"]
    run = bench_run(ctx, "threads", servers, ["cores  t={T}  {T}  /  set=--threads:{T} -c 64"], reps=2)
    cpus = int(run.doc["settings"].get("server_cpu_count") or 1)
    table, data = [], {}
    for server in servers:
        points = run.measured(server, "cores")
        data[server] = [[r["x"], report.median(r, "requests_per_s")] for r in points]
        table.append(f"# {server}")
        table += [f"{x:g} {y:.6g}" for x, y in data[server] if y]
        table += ["", ""]
    best = {s: max((y for _, y in v if y), default=None) for s, v in data.items()}
    finding = (f"On {cpus} server CPU{'s' if cpus > 1 else ''}: " +
               ("no scaling curve can be drawn, the points show oversubscription; " if cpus == 1 else "") +
               "best requests/s " + ", ".join(f"{s} {v:,.0f}" for s, v in best.items() if v))
    note = ("1 server CPU: no scaling curve, only oversubscription (run on a bigger machine with --server-cpus)"
            if cpus == 1 else f"{cpus} server CPUs")
    script = f"""set title "Throughput against threads: {note}"
set xlabel "threads (--threads T, log scale)"
set ylabel "requests/s"
set logscale x 2
set yrange [0:*]
set format y "%.0s%c"
set key bottom right
plot for [i=0:{len(servers) - 1}] datafile index i using 1:2 with linespoints lw 2 title word("{' '.join(servers)}", i + 1)"""
    return {"settings": {"servers": servers, "server_cpus": cpus}, "data": data, "finding": finding,
            "table": table, "script": script, "run": run.dir}


def fig_syscalls(ctx):
    """System calls per request by event mechanism."""
    servers = ["epoll-lt", "epoll-et", "select", "poll", "io-uring", "libuv"]
    run = bench_run(ctx, "syscalls", servers, ["plaintext  c=64  64  /  -c 64", "pipeline  c=64  64  /  -c 64 -P 16"],
                    reps=1)
    table, data = ["# server keepalive pipelined"], {}
    for server in servers:
        values = [figure_of(run, server, s, "c=64", "syscalls_per_request") for s in ("plaintext", "pipeline")]
        data[server] = dict(zip(("keep-alive", "pipelined"), values))
        table.append(f'"{server}" ' + " ".join(f"{v:.4g}" if v else "NaN" for v in values))
    counted = {s: v for s, v in data.items() if v["keep-alive"]}
    if not counted:
        raise FigureError("no system calls counted (perf missing?)")
    finding = "System calls per request, keep-alive c=64 (pipelined ×16): " + ", ".join(
        f"{s} {v['keep-alive']:.2f} ({v['pipelined']:.3f})" if v["pipelined"] else f"{s} {v['keep-alive']:.2f}"
        for s, v in counted.items())
    script = """set title "System calls per request (perf, server's processes, measured window)"
set ylabel "system calls per request (log scale)"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
plot datafile using 2:xtic(1) title "keep-alive c=64", '' using 3 title "pipelined x16, c=64" """
    return {"settings": {"servers": servers}, "data": data, "finding": finding, "table": table, "script": script,
            "run": run.dir}


def fig_omission(ctx):
    """Closed against open loop when the server stalls 200 ms every second."""
    stall_ms, period_s, seconds = 200, 1.0, 5
    server = Server("epoll-lt")
    stop = threading.Event()
    stalls = []

    def staller():
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            while not stop.wait(period_s):
                began = time.monotonic()
                sock.sendall(f"GET /sleep/{stall_ms} HTTP/1.1\r\nHost: c10k\r\n\r\n".encode())
                got = b""
                while b"OK\n" not in got:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    got += chunk
                stalls.append(time.monotonic() - began)
        finally:
            sock.close()

    try:
        calm = loadgen(server.port, "/", ["-c", "16"], 2)
        rate = int(calm["rates"]["requests_per_s"] * 0.5)
        thread = threading.Thread(target=staller)
        thread.start()
        try:
            closed = loadgen(server.port, "/", ["-c", "16"], seconds)
            opened = loadgen(server.port, "/", ["-c", "16", "-R", str(rate)], seconds)
        finally:
            stop.set()
            thread.join(timeout=10)
    finally:
        server.stop()
    if not stalls:
        raise FigureError("the staller's /sleep requests were never answered")
    figures = {
        "closed loop": closed["latency"]["response_time"],
        "open loop, service time (from the actual send)": opened["latency"]["service_time"],
        "open loop, corrected (from the intended send)": opened["latency"]["response_time"],
    }
    table = ["# what p50 p99 max"] + [f'"{k}" {v["p50_us"] / 1000:.3f} {v["p99_us"] / 1000:.3f} {v["max_us"] / 1000:.3f}'
                                    for k, v in figures.items()]
    finding = (f"With a {stall_ms} ms stall every {period_s:g} s: p99 closed loop "
               f"{figures['closed loop']['p99_us'] / 1000:.2f} ms, open loop at {rate:,} req/s "
               f"{figures['open loop, corrected (from the intended send)']['p99_us'] / 1000:.1f} ms corrected "
               f"against {figures['open loop, service time (from the actual send)']['p99_us'] / 1000:.2f} ms "
               "measured from the actual send")
    script = f"""set title "A {stall_ms} ms stall every {period_s:g} s (epoll-lt, 16 connections): what the p99 says"
set ylabel "latency (ms, log scale)"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -15
set key top left
plot datafile using 3:xtic(1) title "p99", '' using 4 title "max", '' using 2 title "p50" """
    return {"settings": {"stall_ms": stall_ms, "period_s": period_s, "seconds": seconds, "open_rate": rate,
                         "connections": 16, "calm_rate": calm["rates"]["requests_per_s"]},
            "data": {k: {"p50_us": v["p50_us"], "p99_us": v["p99_us"], "max_us": v["max_us"]} for k, v in figures.items()},
            "stalls_s": stalls, "finding": finding, "table": table, "script": script}


FIGURES = [
    (1, "staircase", "Iterative vs fork vs thread: when each of 8 clients is done", fig_staircase),
    (2, "connection-cost", "The cost of a new connection: fork, pthread_create, a pool", fig_connection_cost),
    (3, "memory", "Memory per idle connection with 10,000 idle", fig_memory),
    (4, "c10k", "The C10K figure: select, poll, epoll, io_uring against idle connections", fig_c10k),
    (5, "mix", "p99 timeline when 1 % of requests block 50 ms", fig_mix),
    (6, "wakeups", "Wake-ups per accepted connection, by accept discipline", fig_wakeups),
    (7, "accepts", "Connections per worker and p99, by who accepts", fig_accepts),
    (8, "threads", "Throughput against threads", fig_threads),
    (9, "syscalls", "System calls per request, by event mechanism", fig_syscalls),
    (10, "omission", "Closed vs open loop with a periodic stall: coordinated omission", fig_omission),
]


class Context:
    def __init__(self, work, reps):
        self.work = work
        self.reps = reps
        self.cache = {}


def draw(out_dir, name, result):
    data_path = os.path.join(out_dir, f"{name}.tsv")
    with open(data_path, "w") as f:
        f.write("\n".join(result["table"]) + "\n")
    script_path = os.path.join(out_dir, f"{name}.gp")
    with open(script_path, "w") as f:
        f.write('load "plots/common.gp"\nset key noautotitle\n' + result["script"] + "\n")
    try:
        for terminal, extension in TERMINALS:
            output = os.path.join(out_dir, f"{name}.{extension}")
            settings = f"datafile='{data_path}'; output='{output}'; servers=''; terminal=\"{terminal}\""
            run = subprocess.run(["gnuplot", "-e", settings, script_path], capture_output=True, text=True,
                                 timeout=60, cwd=ROOT)
            if run.returncode != 0 or not os.path.exists(output) or os.path.getsize(output) == 0:
                raise FigureError(f"gnuplot: {run.stderr.strip()[-300:]}")
    finally:
        os.remove(script_path)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="figures.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--figures", default=os.environ.get("FIGURES", ""),
                        help="figure numbers or names, comma- or space-separated (default: all)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"), help="where the figures go")
    parser.add_argument("--work", help="where the bench runs go (default results/figures-<UTC time>)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the bench points (default 3)")
    args = parser.parse_args(argv)
    wanted = args.figures.replace(",", " ").split()
    known = {str(n): n for n, *_ in FIGURES} | {name: n for n, name, *_ in FIGURES}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: "
                     + ", ".join(f"{n} {name}" for n, name, *_ in FIGURES))
    if not 1 <= args.reps <= 20:
        parser.error("--reps must be 1 to 20")
    args.selected = [f for f in FIGURES if not wanted or f[0] in {known[w] for w in wanted}]
    return args


def main(argv):
    args = parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = args.work or os.path.join(ROOT, "results", f"figures-{stamp}")
    os.makedirs(work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    ctx = Context(work, args.reps)
    environment = bench.environment(None)
    started = time.monotonic()
    failures = []
    for number, name, title, function in args.selected:
        began = time.monotonic()
        log(f"figures: {number} {name}: {title}")
        try:
            result = function(ctx)
            draw(args.out, name, result)
        except (FigureError, subprocess.SubprocessError, OSError, KeyError, ValueError, ZeroDivisionError) as e:
            failures.append(f"{number} {name}: {e}")
            log(f"figures: {number} {name} FAILED: {e}")
            continue
        doc = {"schema": "c10k-lab/figure/1", "figure": number, "name": name, "title": title,
               "made_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "seconds": round(time.monotonic() - began, 1), "environment": environment,
               "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU,
               **{k: v for k, v in result.items() if k not in ("table", "script")}}
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.remove(os.path.join(args.out, f"{name}.tsv"))
        log(f"figures: {number} {name} ({doc['seconds']:.0f} s): {result['finding']}")
    log(f"figures: {len(args.selected) - len(failures)} of {len(args.selected)} drawn in "
        f"{time.monotonic() - started:.0f} s into {args.out}; bench runs in {work}")
    for failure in failures:
        log(f"figures: failed: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
