#!/usr/bin/env python3
"""grade.py - the autograder of exercise 5: sizing a thread pool with Little's law.

    python3 grade.py [ANSWER.txt]        (make grade EX=5 [SOURCE=...])

Reads N from the answer's first line (`threads = N`), then measures on this machine, with
bin/thread-pool on CPU 0 and bin/loadgen on CPU 1 (both built by `make`):
1. the answer names a pool size (1 point);
2. N is within 15 % of Little's law for 80 % busy threads: N = λ W / 0.8, with λ = 800 requests/s
   and W the mean time of one GET /sleep/20 as the grader measures it at a light load (1 point);
3. a pool of N threads keeps up with 800 requests/s, a new connection per request: at least 97 %
   of the offered rate answered, with p99 at most 3 W (1 point).
Prints PASS or FAIL with what it measured, then "score: N/3"; exits 0 only on full marks (1
otherwise, 2 when the tools are not built).
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
SERVER = os.path.join(ROOT, "bin", "thread-pool")
LOADGEN = os.path.join(ROOT, "bin", "loadgen")
RATE = 800
BUSY = 0.8
SLEEP = "/sleep/20"
TWO_CPUS = (os.cpu_count() or 1) > 1


def pinned(cpu, command):
    return ["taskset", "-c", str(cpu if TWO_CPUS else 0), *command]


class Server:
    def __init__(self, threads):
        self.proc = subprocess.Popen(pinned(0, [SERVER, "--threads", str(threads), "--port", "0"]),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 5)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("bin/thread-pool did not start")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(port, connections, rate, seconds):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        result = subprocess.run(pinned(1, [LOADGEN, "--close", "-c", str(connections), "-R", str(rate),
                                           "-d", f"{seconds}s", "--warmup", "1s", "--timeout", "2s", "--quiet",
                                           "--json", out.name, f"http://127.0.0.1:{port}{SLEEP}"]),
                                capture_output=True, text=True, timeout=seconds + 30)
        if result.returncode != 0:
            raise RuntimeError(f"loadgen failed: {result.stderr.strip()[-200:]}")
        with open(out.name) as f:
            return json.load(f)


def main(argv):
    if len(argv) > 1:
        print("usage: grade.py [ANSWER.txt]", file=sys.stderr)
        return 2
    for tool in (SERVER, LOADGEN):
        if not os.access(tool, os.X_OK):
            print(f"{tool} is not built: run make", file=sys.stderr)
            return 2
    answer = argv[0] if argv else os.path.join(HERE, "answer.txt")
    score = 0
    try:
        with open(answer) as f:
            first = f.readline()
    except OSError as e:
        first = ""
        print(f"FAIL the answer names a pool size: {e}")
    found = re.fullmatch(r"\s*threads\s*=\s*(\d+)\s*", first)
    threads = int(found.group(1)) if found else None
    if threads is not None and 1 <= threads <= 1024:
        score += 1
        print(f"PASS the answer names a pool size: {threads} threads")
    elif first:
        print(f"FAIL the answer names a pool size: the first line must be 'threads = N' (1 to 1024), not {first.strip()!r}")
        threads = None

    server = Server(64)
    try:
        light = load(server.port, 4, 100, 3)
    finally:
        server.stop()
    w_s = light["latency"]["response_time"]["mean_us"] / 1e6
    target = RATE * w_s / BUSY
    print(f"measured: W = {w_s * 1000:.2f} ms at 100 requests/s; Little's law: {RATE} x {w_s * 1000:.2f} ms = "
          f"{RATE * w_s:.1f} busy threads, {target:.1f} threads for {BUSY:.0%} busy")
    if threads is not None and abs(threads - target) <= 0.15 * target:
        score += 1
        print(f"PASS {threads} threads is within 15 % of {target:.1f}")
    else:
        print(f"FAIL the pool size is within 15 % of {target:.1f} ({0.85 * target:.1f} to {1.15 * target:.1f}):"
              f" {threads}")

    if threads is not None:
        server = Server(threads)
        try:
            heavy = load(server.port, 64, RATE, 4)
        finally:
            server.stop()
        answered = heavy["rates"]["requests_per_s"]
        p99_s = heavy["latency"]["response_time"]["p99_us"] / 1e6
        if answered >= 0.97 * RATE and p99_s <= 3 * w_s:
            score += 1
            print(f"PASS {threads} threads keep up: {answered:.0f} of {RATE} requests/s, p99 {p99_s * 1000:.1f} ms")
        else:
            print(f"FAIL {threads} threads keep up with {RATE} requests/s (>= {0.97 * RATE:.0f} answered, "
                  f"p99 <= {3 * w_s * 1000:.1f} ms): {answered:.0f} answered, p99 {p99_s * 1000:.1f} ms")
    else:
        print("FAIL a pool of the answer's size keeps up: no size to try")
    print(f"score: {score}/3")
    return 0 if score == 3 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
