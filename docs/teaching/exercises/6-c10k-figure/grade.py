#!/usr/bin/env python3
"""grade.py - the autograder of exercise 6: the C10K figure with 95 % confidence intervals, and a
confound.

    python3 grade.py [MEASURE.py]        (make grade EX=6 [SOURCE=...])

Runs the script (default: measure.py beside this file) from the repository root as

    python3 MEASURE.py --servers "select poll epoll-lt io-uring" --idle "0 5000" --duration 0.25
                       --warmup 0.05 --out FILE

with its own default --reps, then measures poll and epoll-lt at 5000 idle connections itself (server
on CPU 0, bin/loadgen on CPU 1, CPU time from /proc/PID/task/*/schedstat over loadgen's window), and
checks the JSON the script wrote, one point per test:
1. complete: every server at every idle count, select's 5000 reported as not measured with a reason;
2. at least 5 repetitions per point, and real ones: the means of poll's and epoll-lt's server CPU
   µs/request at 5000 idle are within 1/4x to 4x of the grader's own;
3. the intervals are mean ± t(0.975, n-1) · s/√n (Student's t, s the sample standard deviation),
   within 2 % of their half-width;
4. interleaved: in start-time order no point has more than 2 repetitions in a row, and each point's
   repetitions span at least half of the sequence;
5. the figure's shape: poll's µs/request at 5000 idle is at least 3x its 0-idle value with the two
   intervals (recomputed as in 3) apart, and epoll-lt's at most 2x;
6. a confound: named, explained in a sentence, two conditions of at least 5 repetitions each,
   alternating in time, with intervals as in 3 that do not overlap on one of the two figures.
Prints PASS or FAIL with what it measured, then "score: N/6"; exits 0 only on full marks (1
otherwise, 2 when the tools are not built or the script is not valid Python).
"""
import functools
import json
import math
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
LOADGEN = os.path.join(ROOT, "bin", "loadgen")
SERVERS = ["select", "poll", "epoll-lt", "io-uring"]
IDLE = [0, 5000]
TOP = max(IDLE)
DURATION_S = 0.25
WARMUP_S = 0.05
SCRIPT_ARGS = ["--servers", " ".join(SERVERS), "--idle", " ".join(map(str, IDLE)),
               "--duration", str(DURATION_S), "--warmup", str(WARMUP_S)]
SCRIPT_TIMEOUT_S = 120        # a bound, not a target: the intended script takes 25-45 s here
FIGURES = ("requests_per_s", "server_cpu_us_per_request")
CPU = "server_cpu_us_per_request"
MIN_REPS = 5
REAL_FACTOR = 4.0             # test 2: the script's mean within 1/4x..4x of the grader's (seen 0.43-2.4x)
INTERVAL_TOLERANCE = 0.02     # test 3: of the interval's half-width
POLL_GROWTH_MIN = 3.0         # test 5: poll's µs/request at 5000 idle over 0 idle (seen 10-33x)
EPOLL_GROWTH_MAX = 2.0        # test 5: epoll-lt's (seen 0.75-1.31x)
ACTIVE = 16
REFERENCE_REPS = 2
TWO_CPUS = (os.cpu_count() or 1) > 1


class Failed(Exception):
    pass


# --- Student's t, computed here rather than tabled: the script's table is what is checked --------

@functools.lru_cache(maxsize=None)
def t_975(df):
    """The 0.975 quantile of Student's t with df degrees of freedom: bisection on its distribution
    function, the density integrated from 0 by Simpson's rule."""
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x):
        return math.exp(log_scale - (df + 1) / 2 * math.log1p(x * x / df))

    def area(t, steps=2000):
        h = t / steps
        inner = sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
        return (density(0) + inner + density(t)) * h / 3

    lo, hi = 0.0, 64.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if area(mid) < 0.475:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(values):
    """(mean, half-width) of the two-sided 95 % confidence interval of the mean."""
    n = len(values)
    return statistics.fmean(values), t_975(n - 1) * statistics.stdev(values) / math.sqrt(n)


def apart(a, b):
    """Whether two (mean, half) intervals do not overlap."""
    return a[0] + a[1] < b[0] - b[1] or b[0] + b[1] < a[0] - a[1]


def text(interval, digits=1):
    mean, half = interval
    return f"{mean:,.{digits}f} [{mean - half:,.{digits}f}, {mean + half:,.{digits}f}]"


# --- reading the script's JSON ----------------------------------------------------------------

def member(value, *keys):
    """value[key1][key2]..., or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_reps(reps, window):
    """Why a list of repetitions is unusable, or None: each needs a start (Unix time, within the
    script's run) and both figures, positive."""
    if not isinstance(reps, list) or not reps:
        return "no repetitions"
    for i, rep in enumerate(reps):
        if not isinstance(rep, dict):
            return f"repetition {i + 1} is not an object"
        if not is_number(rep.get("start")) or not window[0] - 1 <= rep["start"] <= window[1] + 1:
            return (f"repetition {i + 1}'s start {rep.get('start')!r} is not a Unix time within the script's run "
                    f"({window[0]:.0f} to {window[1]:.0f})")
        for figure in FIGURES:
            if not is_number(rep.get(figure)) or rep[figure] <= 0:
                return f"repetition {i + 1}'s {figure} is {rep.get(figure)!r}, not a positive number"
    return None


def interval_problem(where, summary, reps):
    """Why the summary's mean and interval95 differ from Student's t on the repetitions, or None."""
    if len(reps) < 2:
        return f"{where}: {len(reps)} repetition has no interval"
    for figure in FIGURES:
        mean, half = t_interval([rep[figure] for rep in reps])
        given_mean, given = member(summary, "mean", figure), member(summary, "interval95", figure)
        pair = isinstance(given, list) and len(given) == 2 and all(map(is_number, given))
        if not is_number(given_mean) or not pair:
            return f"{where} {figure}: mean {given_mean!r} and interval95 {given!r} are not a number and [lo, hi]"
        tolerance = INTERVAL_TOLERANCE * max(half, 1e-6 * abs(mean))
        if abs(given_mean - mean) > tolerance or abs(given[0] - (mean - half)) > tolerance \
                or abs(given[1] - (mean + half)) > tolerance:
            given_half = (given[1] - given[0]) / 2
            ratio = f"; its half-width is {given_half / half:.2f}x that" if half > 0 else ""
            return (f"{where} {figure}: given {given_mean:.4g} [{given[0]:.4g}, {given[1]:.4g}], Student's t "
                    f"(n={len(reps)}, t={t_975(len(reps) - 1):.3f}) gives {mean:.4g} [{mean - half:.4g}, "
                    f"{mean + half:.4g}]{ratio}")
    return None


def longest_run(labels):
    longest = run = 0
    for i, label in enumerate(labels):
        run = run + 1 if i and labels[i - 1] == label else 1
        longest = max(longest, run)
    return longest


# --- measuring, as the script must ----------------------------------------------------------------

def pinned(cpu, command):
    return ["taskset", "-c", str(cpu if TWO_CPUS else 0)] + command


def cpu_ns(pid):
    """CPU time of the process's threads: the first field of /proc/PID/task/TID/schedstat (ns)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


class PhaseReader:
    """loadgen's --phase-fd lines, each awaited with a deadline (both may come in one read when
    the grader was kept off its CPU for a window's length)."""

    def __init__(self, fd):
        self.fd, self.pending = fd, b""

    def line(self, deadline):
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.fd, 64) if ready else b""
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")


def stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)


def measure(name, idle):
    """The server's CPU µs per request of one fresh run, as the handout says to measure it."""
    server = subprocess.Popen(pinned(0, [os.path.join(ROOT, "bin", name), "--port", "0"]),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 5)
        line = server.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise Failed(f"bin/{name} did not start")
        port = int(line.rsplit(":", 1)[1])
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            read_fd, write_fd = os.pipe()
            try:
                loadgen = subprocess.Popen(
                    pinned(1, [LOADGEN, "-c", str(ACTIVE), "--idle", str(idle), "-d", f"{DURATION_S}s", "--warmup",
                               f"{WARMUP_S}s", "--timeout", "5s", "--quiet", "--json", out.name, "--phase-fd",
                               str(write_fd), f"http://127.0.0.1:{port}/"]),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    pass_fds=(write_fd,))
            finally:
                os.close(write_fd)
            try:
                phases = PhaseReader(read_fd)
                if phases.line(time.monotonic() + WARMUP_S + 15) != "measure":
                    raise Failed("loadgen's window did not begin")
                cpu0, t0 = cpu_ns(server.pid), time.monotonic()
                if phases.line(t0 + DURATION_S + 10) != "end":
                    raise Failed("loadgen's window did not end")
                cpu1, t1 = cpu_ns(server.pid), time.monotonic()
                loadgen.wait(timeout=15)
            finally:
                stop(loadgen)
                os.close(read_fd)
            with open(out.name) as f:
                doc = json.load(f)
    finally:
        stop(server)
        server.stdout.close()
    requests = doc["rates"]["requests_per_s"] * (t1 - t0)
    if requests <= 0:
        raise Failed(f"no responses from {name}")
    return (cpu1 - cpu0) / 1e3 / requests


def measure_with_retry(name, idle):
    """A run, tried once more if it failed: a stall of the shared machine must not fail a student."""
    try:
        return measure(name, idle)
    except (Failed, OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return measure(name, idle)


def measure_reference():
    """poll and epoll-lt at the top idle count, REFERENCE_REPS runs each, alternating; returns
    ({name: mean µs/request}, None) or ({}, why not)."""
    runs = {name: [] for name in ("poll", "epoll-lt")}
    try:
        for rep in range(REFERENCE_REPS):
            for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
                runs[name].append(measure_with_retry(name, TOP))
    except (Failed, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
        return {}, f"the grader's own measurement failed: {e}"
    print(f"measured by the grader at {TOP} idle, {REFERENCE_REPS} runs each: "
          + ", ".join(f"{name} {', '.join(f'{v:.1f}' for v in values)} µs/request"
                      for name, values in runs.items()))
    return {name: statistics.fmean(values) for name, values in runs.items()}, None


def run_script(source, out):
    """Runs the script in a session of its own, so that it and whatever it started can be killed
    together; returns (exit status or None on timeout, seconds, tail of its output)."""
    log_path = out + ".log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        script = subprocess.Popen([sys.executable, source, *SCRIPT_ARGS, "--out", out], cwd=ROOT,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            status = script.wait(timeout=SCRIPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            # Servers or loadgens it left behind would load the machine under the grader's own runs.
            try:
                os.killpg(script.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            script.wait()
    with open(log_path, errors="replace") as f:
        tail = "\n".join(f.read().strip().splitlines()[-5:])
    return status, time.monotonic() - started, tail


# --- the tests --------------------------------------------------------------------------------

def test_complete(doc, window):
    """The usable points {(server, idle): point}, and what is wrong with the others."""
    results = doc.get("results")
    if not isinstance(results, dict):
        raise Failed("the JSON has no 'results' object")
    usable, problems = {}, []
    for name in SERVERS:
        for idle in IDLE:
            point = member(results, name, str(idle))
            where = f"{name} at {idle} idle"
            if not isinstance(point, dict) or not isinstance(point.get("measured"), bool):
                problems.append(f"{where}: missing (or no 'measured': true/false)")
            elif name == "select" and idle + ACTIVE >= 1024:
                if point["measured"] or not isinstance(point.get("reason"), str) or not point["reason"].strip():
                    problems.append(f"{where}: must be 'measured': false with a 'reason' (beyond FD_SETSIZE), "
                                    f"not {json.dumps(point)[:120]}")
            elif not point["measured"]:
                problems.append(f"{where}: not measured: {point.get('reason')!r}")
            else:
                problem = check_reps(point.get("reps"), window)
                if problem:
                    problems.append(f"{where}: {problem}")
                else:
                    usable[(name, idle)] = point
    return usable, problems


def test_real(usable, reference, reference_problem):
    if not usable:
        raise Failed("no usable points")
    counts = {f"{name} {idle}": len(point["reps"]) for (name, idle), point in usable.items()}
    few = {where: n for where, n in counts.items() if n < MIN_REPS}
    if few:
        raise Failed(f"at least {MIN_REPS} repetitions per point; got "
                     + ", ".join(f"{where}: {n}" for where, n in few.items()))
    if reference_problem:
        raise Failed(reference_problem)
    compared = []
    for name, grader in reference.items():
        point = usable.get((name, TOP))
        if point is None:
            raise Failed(f"no usable {name} point at {TOP} idle to compare with the grader's "
                         f"{grader:.1f} µs/request")
        mine = statistics.fmean(rep[CPU] for rep in point["reps"])
        compared.append(f"{name} at {TOP} idle {mine:.1f} µs/request against the grader's {grader:.1f} "
                        f"({mine / grader:.2f}x)")
        if not 1 / REAL_FACTOR <= mine / grader <= REAL_FACTOR:
            raise Failed(f"the means must be within 1/{REAL_FACTOR:g}x to {REAL_FACTOR:g}x of the grader's own "
                         f"measurement: " + "; ".join(compared))
    return (f"{min(counts.values())} to {max(counts.values())} repetitions per point; " + "; ".join(compared)
            + f" (required: >= {MIN_REPS}, within 1/{REAL_FACTOR:g}x to {REAL_FACTOR:g}x)")


def test_intervals(usable):
    if not usable:
        raise Failed("no usable points")
    for (name, idle), point in usable.items():
        problem = interval_problem(f"{name} at {idle} idle", point, point["reps"])
        if problem:
            raise Failed(problem + " (required: mean ± t(0.975, n-1)·s/√n within 2 % of the half-width)")
    example = usable.get(("poll", TOP)) or next(iter(usable.values()))
    interval = t_interval([rep[CPU] for rep in example["reps"]])
    return (f"{2 * len(usable)} intervals match mean ± t(0.975, n-1)·s/√n within 2 % of their half-width "
            f"(e.g. {text(interval)} µs/request from {len(example['reps'])} repetitions)")


def test_interleaved(usable):
    if not usable:
        raise Failed("no usable points")
    sequence = sorted((rep["start"], f"{name} {idle}")
                      for (name, idle), point in usable.items() for rep in point["reps"])
    gaps = [b[0] - a[0] for a, b in zip(sequence, sequence[1:])]
    if gaps and min(gaps) < DURATION_S / 2:
        raise Failed(f"two repetitions started {min(gaps) * 1000:.0f} ms apart, less than half a {DURATION_S:g} s "
                     "window: the start times are not those of repetitions run one after another")
    labels = [label for _, label in sequence]
    longest = longest_run(labels)
    shortest_span, narrowest = 1.0, None
    for label in set(labels):
        positions = [i for i, other in enumerate(labels) if other == label]
        span = (positions[-1] - positions[0]) / max(1, len(labels) - 1)
        if span < shortest_span:
            shortest_span, narrowest = span, label
    order = " ".join(label.replace("epoll-lt", "epoll").replace("io-uring", "uring") for label in labels[:8])
    measured = (f"longest run of one point {longest}, narrowest span {shortest_span:.0%} of the sequence "
                f"({narrowest}); the first starts: {order} ...")
    if longest > 2 or shortest_span < 0.5:
        raise Failed(f"{measured} (required: runs of at most 2 and every point spanning at least 50 %: "
                     "measure round by round over all the points)")
    return measured + " (required: runs <= 2, spans >= 50 %)"


def test_shape(usable):
    intervals = {}
    for name in ("poll", "epoll-lt"):
        for idle in IDLE:
            point = usable.get((name, idle))
            if point is None or len(point["reps"]) < 2:
                raise Failed(f"no {name} point at {idle} idle with 2 or more repetitions")
            intervals[(name, idle)] = t_interval([rep[CPU] for rep in point["reps"]])
    poll0, poll_top = intervals[("poll", 0)], intervals[("poll", TOP)]
    epoll0, epoll_top = intervals[("epoll-lt", 0)], intervals[("epoll-lt", TOP)]
    poll_growth, epoll_growth = poll_top[0] / poll0[0], epoll_top[0] / epoll0[0]
    measured = (f"poll {text(poll0)} -> {text(poll_top)} µs/request ({poll_growth:.1f}x), epoll-lt {text(epoll0)} "
                f"-> {text(epoll_top)} ({epoll_growth:.2f}x), from 0 to {TOP} idle")
    required = (f"poll >= {POLL_GROWTH_MIN:g}x with the intervals apart, epoll-lt <= {EPOLL_GROWTH_MAX:g}x; "
                "intervals recomputed with Student's t")
    if poll_growth < POLL_GROWTH_MIN or not apart(poll0, poll_top) or epoll_growth > EPOLL_GROWTH_MAX:
        raise Failed(f"{measured} (required: {required})")
    return f"{measured} (required: {required})"


def test_confound(doc, window):
    confound = doc.get("confound")
    if not isinstance(confound, dict) or not confound:
        raise Failed("the 'confound' section is empty")
    if confound.get("measured") is False:
        raise Failed(f"the confound was not measured: {confound.get('reason')!r}")
    name, explanation = confound.get("name"), confound.get("explanation")
    if not isinstance(name, str) or not name.strip():
        raise Failed("the confound has no 'name'")
    if not isinstance(explanation, str) or len(explanation.split()) < 10:
        raise Failed("the confound's 'explanation' must say in a sentence (10 words or more) what it does "
                     "to the figure")
    conditions = confound.get("conditions")
    if not (isinstance(conditions, list) and len(conditions) == 2 and all(isinstance(c, dict) for c in conditions)):
        raise Failed("the confound needs 'conditions': a list of two objects")
    labels = [c.get("label") for c in conditions]
    if not all(isinstance(label, str) and label.strip() for label in labels) or labels[0] == labels[1]:
        raise Failed(f"the two conditions need two different labels, not {labels!r}")
    for condition in conditions:
        problem = check_reps(condition.get("reps"), window)
        if problem:
            raise Failed(f"condition {condition['label']!r}: {problem}")
        if len(condition["reps"]) < MIN_REPS:
            raise Failed(f"condition {condition['label']!r}: {len(condition['reps'])} repetitions "
                         f"(required: >= {MIN_REPS})")
        problem = interval_problem(f"condition {condition['label']!r}", condition, condition["reps"])
        if problem:
            raise Failed(problem)
    sequence = sorted((rep["start"], c["label"]) for c in conditions for rep in c["reps"])
    longest = longest_run([label for _, label in sequence])
    if longest > 2:
        raise Failed(f"the two conditions' repetitions must alternate in time (A B A B or A B B A); "
                     f"{longest} of one ran in a row")
    shown = []
    for figure in FIGURES:
        a, b = (t_interval([rep[figure] for rep in c["reps"]]) for c in conditions)
        digits = 0 if figure == "requests_per_s" else 1
        shown.append((apart(a, b), f"{figure} {text(a, digits)} against {text(b, digits)}"))
    measured = f"{name!r}, {labels[0]!r} against {labels[1]!r}: " + "; ".join(s for _, s in shown)
    if not any(ok for ok, _ in shown):
        raise Failed(f"{measured}: no effect shown (required: the two intervals apart on one of the figures)")
    return measured + " (intervals apart)"


def main(argv):
    if len(argv) > 1:
        print("usage: grade.py [MEASURE.py]", file=sys.stderr)
        return 2
    for tool in [LOADGEN] + [os.path.join(ROOT, "bin", name) for name in SERVERS]:
        if not os.access(tool, os.X_OK):
            print(f"{tool} is not built: run make", file=sys.stderr)
            return 2
    if shutil.which("taskset") is None:
        print("taskset (util-linux) is not installed: the servers and loadgen are pinned with it", file=sys.stderr)
        return 2
    source = os.path.abspath(argv[0] if argv else os.path.join(HERE, "measure.py"))
    try:
        with open(source) as f:
            compile(f.read(), source, "exec")
    except (SyntaxError, ValueError, OSError) as e:
        print(f"{source} is not a Python script that compiles:\n{e}")
        return 2
    # The grader and the script it runs stay off the servers' CPU; 5000 idle connections need the
    # open-file limit raised (the children inherit both).
    try:
        if TWO_CPUS:
            os.sched_setaffinity(0, {1})
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as e:
        print(f"cannot pin the grader to CPU 1 or raise the open-file limit: {e}", file=sys.stderr)
        return 2

    score = 0
    with tempfile.TemporaryDirectory(prefix="c10k-grade-") as scratch:
        out = os.path.join(scratch, "c10k.json")
        began = time.time()
        shown = os.path.relpath(source, ROOT) if source.startswith(ROOT + os.sep) else source
        print(f"running: python3 {shown} {' '.join(SCRIPT_ARGS)} --out FILE")
        status, seconds, tail = run_script(source, out)
        window = (began, time.time())
        doc, problem = None, None
        if status is None:
            problem = f"the script did not finish within {SCRIPT_TIMEOUT_S} s (killed); its last lines:\n{tail}"
        elif status != 0:
            problem = f"the script exited with status {status}; its last lines:\n{tail}"
        else:
            try:
                with open(out) as f:
                    doc = json.load(f)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as e:
                problem = f"the script wrote no readable JSON to --out: {e}"
        print(f"the script took {seconds:.1f} s" + (f"; {problem}" if problem else ""))
        if problem:
            for test in ("complete", "repetitions", "intervals", "interleaved", "shape", "confound"):
                print(f"FAIL {test}: no results to check")
            print("score: 0/6")
            return 1

    usable, problems = test_complete(doc, window)
    if problems:
        print(f"FAIL complete: {len(problems)} of {len(SERVERS) * len(IDLE)} points: "
              + "; ".join(problems[:3]))
    else:
        score += 1
        print(f"PASS complete: {len(usable)} points measured, select at {TOP} idle reported not measured: "
              f"{doc['results']['select'][str(TOP)]['reason'][:80]!r}")

    if ("poll", TOP) in usable and ("epoll-lt", TOP) in usable:
        reference, reference_problem = measure_reference()
    else:
        reference, reference_problem = {}, f"no usable poll and epoll-lt points at {TOP} idle to compare"

    tests = [("repetitions", lambda: test_real(usable, reference, reference_problem)),
             ("intervals", lambda: test_intervals(usable)),
             ("interleaved", lambda: test_interleaved(usable)),
             ("shape", lambda: test_shape(usable)),
             ("confound", lambda: test_confound(doc, window))]
    for name, test in tests:
        try:
            measured = test()
            score += 1
            print(f"PASS {name}: {measured}")
        except Failed as e:
            print(f"FAIL {name}: {e}")
    print(f"score: {score}/6")
    return 0 if score == 6 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
