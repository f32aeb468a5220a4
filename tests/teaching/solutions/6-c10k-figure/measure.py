#!/usr/bin/env python3
"""measure.py - the C10K figure (docs/figures.md, figure 4) with 95 % confidence intervals, and
one confound measured beside it. Exercise 6 (docs/teaching/exercises/6-c10k-figure/README.md).

    python3 measure.py [--servers "select poll epoll-lt io-uring"] [--idle "0 1000 5000 10000"]
                       [--reps 7] [--duration 1] [--warmup 0.2] [--out c10k.json]

Run it from the repository root: it starts bin/SERVER and bin/loadgen (built by `make`). For every
server and idle count, a repetition starts the server afresh on CPU 0 and runs bin/loadgen on CPU 1:
16 active keep-alive connections beside N idle ones. The server's CPU time is read (per thread, in
nanoseconds) when loadgen says its measured window begins and ends (--phase-fd), so neither the
warm-up nor the opening of the idle connections is charged to the requests. The repetitions go
round by round over all the points, each round in the opposite order to the last, so that a drift of
the machine falls on every point alike. Writes the JSON the handout describes and prints a table.
"""
import argparse
import json
import math
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

LOADGEN = os.path.join("bin", "loadgen")
SERVERS = ["select", "poll", "epoll-lt", "io-uring"]
ACTIVE = 16                        # the figure's active keep-alive connections
FD_SETSIZE = 1024                  # select's limit (servers/select.c refuses descriptors beyond it)
SPARE_DESCRIPTORS = 8              # the server's own: stdio, the listening socket, a few more
FIGURES = ("requests_per_s", "server_cpu_us_per_request")
# Repetitions: another job on the server's CPU for a minute can triple poll's cost at 5,000 idle
# while it lasts, so the runs of one point fall into two groups; with 5 of them the interval can
# then reach down to the 0-idle value, with 7 it stays clear (t/√n: 1.24 for 5, 0.92 for 7).
DEFAULT_REPS = 7
TWO_CPUS = (os.cpu_count() or 1) > 1
START_TIMEOUT_S = 5.0              # for the server's "listening on" line
LOADGEN_TIMEOUT_S = 5.0            # loadgen's --timeout, which also bounds its idle set-up
SLACK_S = 10.0                     # a loaded 2-core VM stalls for seconds at times

# The confound measured beside the figure (see CONFOUND_EXPLANATION).
CONFOUND_SERVER = "poll"
CONFOUND_IDLE = 1000
CONFOUND_CONDITIONS = (("16 active", ACTIVE), ("1 active", 1))
CONFOUND_EXPLANATION = (
    "poll costs the server one pass over all the descriptors it watches per call, ready or not, and "
    "that cost is shared by the requests the call finds ready: with 16 active connections beside "
    "1000 idle ones a call finds up to 16 requests, with 1 it finds one, so the CPU per request is "
    "many times higher. The figure's slope for poll is the cost of one call divided by the requests "
    "per call: it holds for 16 active connections only, flatters poll when many clients are active "
    "at once, and a faster client or slower server (more requests ready per call) flattens it too. "
    "epoll's cost per call does not grow with the idle connections, so its line does not depend on this.")

# Student's t, two-sided 95 % (its 0.975 quantile), by degrees of freedom. Beyond the table, the
# first terms of t's expansion around the normal quantile (Cornish-Fisher), within 0.01 % there.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}
Z_975 = 1.959964


class Failed(Exception):
    """A repetition that measured nothing, and why."""


def t_975(df):
    if df in T_975:
        return T_975[df]
    z = Z_975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def summarize(reps):
    """The mean of each figure and its 95 % confidence interval: mean ± t(0.975, n-1) · s / √n,
    s being the sample standard deviation (n - 1 in its denominator). The interval says where the
    true mean is likely to be, given n runs; the spread of single runs is s itself."""
    n = len(reps)
    mean, interval = {}, {}
    for figure in FIGURES:
        values = [rep[figure] for rep in reps]
        mean[figure] = statistics.fmean(values)
        half = t_975(n - 1) * statistics.stdev(values) / math.sqrt(n)
        interval[figure] = [mean[figure] - half, mean[figure] + half]
    return mean, interval


def overlap(a, b):
    return a[0] <= b[1] and b[0] <= a[1]


def pinned(cpu, command):
    """The command on one CPU (everything on CPU 0 when there is only one)."""
    return ["taskset", "-c", str(cpu if TWO_CPUS else 0)] + command


def cpu_ns(pid):
    """The CPU time of all the process's threads, in nanoseconds: the first field of each
    /proc/PID/task/TID/schedstat. (/proc/PID/stat counts in 10 ms ticks: a server that ran 8 ms in
    a short window on a busy machine would read 0 or 10 ms.)"""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError as e:
        raise Failed(f"cannot read the server's CPU time (has it exited?): {e}")
    total = 0
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that exited since the listing; these servers run one thread
    return total


class PhaseReader:
    """loadgen's --phase-fd lines ("measure", "end"), each awaited with a deadline."""

    def __init__(self, fd):
        self.fd, self.pending = fd, b""

    def line(self, deadline):
        """The next line; None if the deadline came first or loadgen closed the pipe."""
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 64)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")


def start_server(name):
    """The server on CPU 0 with a port of the kernel's choice; returns (process, port)."""
    server = subprocess.Popen(pinned(0, [os.path.join("bin", name), "--port", "0"]), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([server.stdout], [], [], START_TIMEOUT_S)
    line = server.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        stop_server(server)
        raise Failed(f"bin/{name} did not print 'listening on' within {START_TIMEOUT_S:g} s")
    return server, int(line.rsplit(":", 1)[1])


def stop_server(server):
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=2)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    server.stdout.close()


def measure(args, name, idle, active=ACTIVE):
    """One repetition on a fresh server: its start (Unix time), requests/s, and the server's CPU
    µs per request over loadgen's measured window."""
    started = time.time()
    server, port = start_server(name)
    try:
        with tempfile.TemporaryDirectory(prefix="c10k-measure-") as scratch:
            json_path = os.path.join(scratch, "loadgen.json")
            read_fd, write_fd = os.pipe()
            try:
                with open(os.path.join(scratch, "loadgen.err"), "w") as err:
                    loadgen = subprocess.Popen(
                        pinned(1, [LOADGEN, "-c", str(active), "--idle", str(idle), "-d", f"{args.duration}s",
                                   "--warmup", f"{args.warmup}s", "--timeout", f"{LOADGEN_TIMEOUT_S:g}s", "--quiet",
                                   "--json", json_path, "--phase-fd", str(write_fd), f"http://127.0.0.1:{port}/"]),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, pass_fds=(write_fd,))
            finally:
                os.close(write_fd)  # loadgen holds its own copy; ours would keep the pipe from ending
            try:
                phases = PhaseReader(read_fd)
                deadline = time.monotonic() + args.warmup + LOADGEN_TIMEOUT_S + SLACK_S
                if phases.line(deadline) != "measure":
                    raise Failed("loadgen's measured window did not begin in time")
                cpu0, t0 = cpu_ns(server.pid), time.monotonic()
                if phases.line(t0 + args.duration + SLACK_S) != "end":
                    raise Failed("loadgen's measured window did not end in time")
                cpu1, t1 = cpu_ns(server.pid), time.monotonic()
                loadgen.wait(timeout=LOADGEN_TIMEOUT_S + SLACK_S)
            except subprocess.TimeoutExpired:
                raise Failed("loadgen did not exit in time") from None
            finally:
                if loadgen.poll() is None:
                    loadgen.kill()
                    loadgen.wait()
                os.close(read_fd)
            if loadgen.returncode != 0:
                with open(os.path.join(scratch, "loadgen.err")) as f:
                    raise Failed(f"loadgen exited with status {loadgen.returncode}: {f.read().strip()[-200:]}")
            try:
                with open(json_path) as f:
                    doc = json.load(f)
                held, rate = doc["idle"], doc["rates"]["requests_per_s"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise Failed(f"unreadable loadgen JSON: {e!r}") from None
    finally:
        stop_server(server)
    if held["established"] < idle or held["closed_by_peer"] or held["failed"]:
        raise Failed(f"the server held {held['open_at_end']} of {idle} idle connections "
                     f"({held['closed_by_peer']} closed by it, {held['failed']} failed)")
    # The requests of an interval exactly as long as the one the CPU was sampled over.
    requests = rate * (t1 - t0)
    if requests <= 0:
        raise Failed("no response arrived in the measured window")
    return {"start": started, "requests_per_s": rate,
            "server_cpu_us_per_request": (cpu1 - cpu0) / 1e3 / requests}


def measure_with_retry(args, name, idle, active=ACTIVE):
    """A repetition, tried again once if it failed (a stall of the shared machine); raises Failed
    with both reasons if the second try fails too."""
    try:
        return measure(args, name, idle, active)
    except Failed as first:
        log(f"  {name} idle={idle}: {first}; trying again")
        try:
            return measure(args, name, idle, active)
        except Failed as second:
            raise Failed(f"{first}; and again: {second}")


def log(message):
    print(message, file=sys.stderr, flush=True)


def describe(rep):
    return f"{rep['requests_per_s']:,.0f} req/s, {rep['server_cpu_us_per_request']:.1f} µs/request"


def measure_figure(args):
    """Every (server, idle) point, --reps rounds over all of them; returns {server: {idle: point}}."""
    results = {name: {} for name in args.servers}
    points = []
    for name in args.servers:
        for idle in args.idle:
            if name == "select" and idle + ACTIVE + SPARE_DESCRIPTORS > FD_SETSIZE:
                results[name][str(idle)] = {
                    "measured": False,
                    "reason": (f"select's fd_set holds descriptors below FD_SETSIZE ({FD_SETSIZE}) only: "
                               f"{idle} idle + {ACTIVE} active connections do not fit, and bin/select "
                               "refuses the descriptors beyond it (servers/select.c)")}
            else:
                results[name][str(idle)] = {"measured": True, "reps": []}
                points.append((name, idle))
    total, done = len(points) * args.reps, 0
    for round_number in range(args.reps):
        # A B C, then C B A: drift within a round falls on every point alike over two rounds.
        order = points if round_number % 2 == 0 else points[::-1]
        for name, idle in order:
            point = results[name][str(idle)]
            done += 1
            if not point["measured"]:
                continue
            try:
                rep = measure_with_retry(args, name, idle)
            except Failed as e:
                point.clear()
                point.update({"measured": False, "reason": f"repetition {round_number + 1} failed: {e}"})
                log(f"[{done}/{total}] {name} idle={idle}: FAILED: {e}")
                continue
            point["reps"].append(rep)
            log(f"[{done}/{total}] {name} idle={idle}: {describe(rep)}")
    for name in args.servers:
        for point in results[name].values():
            if point["measured"]:
                point["mean"], point["interval95"] = summarize(point["reps"])
    return results


def measure_confound(args):
    """The active connections, 16 against 1, for poll at 1000 idle: the two conditions alternate
    (A B, B A, ...) so that drift falls on both alike."""
    conditions = [{"label": label, "active_connections": active, "reps": []}
                  for label, active in CONFOUND_CONDITIONS]
    for round_number in range(args.reps):
        for condition in (conditions if round_number % 2 == 0 else conditions[::-1]):
            try:
                rep = measure_with_retry(args, CONFOUND_SERVER, CONFOUND_IDLE, condition["active_connections"])
            except Failed as e:
                log(f"confound {condition['label']}: FAILED: {e}")
                return {"name": "requests per poll call (active connections)", "measured": False, "reason": str(e)}
            condition["reps"].append(rep)
            log(f"confound {condition['label']}: {describe(rep)}")
    for condition in conditions:
        condition["mean"], condition["interval95"] = summarize(condition["reps"])
    a, b = conditions
    figure = "server_cpu_us_per_request"
    ratio = b["mean"][figure] / a["mean"][figure]
    shown = "intervals do not overlap" if not overlap(a["interval95"][figure], b["interval95"][figure]) else \
        "intervals overlap: no effect shown"
    return {"name": "requests served per poll call: the number of active connections",
            "server": CONFOUND_SERVER, "idle": CONFOUND_IDLE,
            "setup": (f"{CONFOUND_SERVER} at {CONFOUND_IDLE} idle connections, everything as in the figure "
                      "but loadgen's -c"),
            "conditions": conditions,
            "effect": f"server CPU per request {ratio:.1f}x with {b['label']} as with {a['label']} ({shown})",
            "explanation": CONFOUND_EXPLANATION}


def interval_text(point, figure, digits):
    lo, hi = point["interval95"][figure]
    return f"{point['mean'][figure]:>10,.{digits}f} [{lo:,.{digits}f}, {hi:,.{digits}f}]"


def print_table(results, confound):
    print(f"{'server':<9} {'idle':>6} {'n':>2}  {'requests/s mean [95 % CI]':<34} "
          "server CPU µs/request mean [95 % CI]")
    for name, points in results.items():
        for idle, point in points.items():
            if not point["measured"]:
                print(f"{name:<9} {idle:>6}     not measured: {point['reason']}")
                continue
            print(f"{name:<9} {idle:>6} {len(point['reps']):>2}  {interval_text(point, 'requests_per_s', 0):<34} "
                  f"{interval_text(point, 'server_cpu_us_per_request', 1)}")
    if confound.get("conditions"):
        print(f"\nconfound: {confound['name']} ({confound['setup']})")
        for condition in confound["conditions"]:
            print(f"  {condition['label']:<14} {interval_text(condition, 'requests_per_s', 0):<34} "
                  f"{interval_text(condition, 'server_cpu_us_per_request', 1)}")
        print(f"  {confound['effect']}")
    else:
        print(f"\nconfound: not measured: {confound.get('reason')}")


def number_list(text):
    try:
        values = [int(word) for word in text.split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"need one or more counts of 0 or more: {text!r}")
    return values


def seconds(text, zero_allowed=False):
    """A number of seconds for argparse: above 0 (or 0 itself, for a warm-up), at most 600."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 <= value if zero_allowed else 0 < value) or value > 600:
        lowest = "0 or more" if zero_allowed else "above 0"
        raise argparse.ArgumentTypeError(f"{text!r} s: must be {lowest} and at most 600")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description="The C10K figure with 95 % confidence intervals, and a confound.")
    parser.add_argument("--servers", default=" ".join(SERVERS), help="servers to measure (default: %(default)s)")
    parser.add_argument("--idle", type=number_list, default=[0, 1000, 5000, 10000],
                        help='idle connection counts, e.g. "0 5000" (default: 0 1000 5000 10000)')
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS,
                        help="repetitions of every point (default: %(default)s; at least 2)")
    parser.add_argument("--duration", type=seconds, default=1.0, help="measured window in seconds (default: 1)")
    parser.add_argument("--warmup", type=lambda text: seconds(text, zero_allowed=True), default=0.2,
                        help="warm-up in seconds (default: 0.2; 0 for none)")
    parser.add_argument("--out", default="c10k.json", help="the JSON file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    args.servers = args.servers.split()
    unknown = [name for name in args.servers if name not in SERVERS]
    if unknown or not args.servers:
        parser.error(f"--servers: choose among {' '.join(SERVERS)}, not {' '.join(unknown) or 'none'}")
    if args.reps < 2:
        parser.error("--reps: at least 2 (an interval needs a standard deviation)")
    return args


def main(argv):
    args = parse_args(argv)
    for tool in [LOADGEN] + [os.path.join("bin", name) for name in args.servers]:
        if not os.access(tool, os.X_OK):
            print(f"measure.py: {tool} is not there: run make, and run this from the repository root",
                  file=sys.stderr)
            return 2
    try:
        # This script stays off the server's CPU: what runs there takes time from the server.
        if TWO_CPUS:
            os.sched_setaffinity(0, {1})
        # 10,000 idle connections need as many descriptors in the server and in loadgen, which
        # inherit this limit.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as e:
        print(f"measure.py: cannot pin to CPU 1 or raise the open-file limit: {e}", file=sys.stderr)
        return 2
    started = time.time()
    results = measure_figure(args)
    confound = measure_confound(args)
    document = {"settings": {"servers": args.servers, "idle": args.idle, "reps": args.reps,
                             "duration_s": args.duration, "warmup_s": args.warmup, "active_connections": ACTIVE,
                             "server_cpu": 0, "loadgen_cpu": 1 if TWO_CPUS else 0,
                             "cpu_time": "/proc/PID/task/*/schedstat over loadgen's measured window"},
                "started": started, "finished": time.time(), "results": results, "confound": confound}
    with open(args.out, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
    print_table(results, confound)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
