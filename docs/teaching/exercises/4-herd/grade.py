#!/usr/bin/env python3
"""grade.py - the autograder of exercise 4: builds a prefork server (default: server.c beside this
file) and measures its herd, one fresh server with 4 workers per test, every wait bounded.

    python3 grade.py [SOURCE.c]        (make grade EX=4 [SOURCE=...])

The server runs on CPU 0 and the clients on CPU 1 (when there are two). Five tests, one point
each:
1. correct: the server has 4 worker processes, and each of 200 connections gets one line,
   `worker PID`, from one of them;
2. wake-ups: 2,000 connections one after another; the server's voluntary context switches
   (/proc/PID/task/TID/status, summed over the parent and the workers) over them, per connection,
   must be 0.5 to 1.2. A herd wakes every idle worker for each connection (about 4 here); below 0.5
   the workers did not sleep between connections, which is busy polling;
3. balance, one connection at a time: over 2,000 connections, the busiest worker accepted at most
   1.5 times as many as the idlest (and the idlest some);
4. balance, clients at once: the same over 2,000 connections from 4 client threads at once (as
   many as workers; with 8, a blocking accept once measured 1.37 on a loaded host: a worker that
   is running takes what waits in the accept queue without sleeping, and more clients make the
   queue deeper);
5. SIGTERM: the parent exits within 1 s, and it has stopped and reaped every worker first.
Prints PASS or FAIL with what was measured for each, then "score: N/5"; exits 0 only on full
marks (1 otherwise, 2 when the source does not compile or the tools are missing).
"""
import collections
import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
WORKERS = 4
CONNECTIONS = 2000
BURST_CLIENTS = WORKERS
MAX_WAKEUPS = 1.2   # per connection; the herd measures about WORKERS
MIN_WAKEUPS = 0.5   # below this nobody slept: busy polling
MAX_IMBALANCE = 1.5  # busiest worker's accepts / idlest worker's; EPOLLEXCLUSIVE measured 2.5 or more
RUN_SECONDS = 30    # for 2,000 connections (they take 0.5 to 4 s here)
ANSWER = re.compile(rb"worker (\d+)\n")
PR_SET_CHILD_SUBREAPER = 36

CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = CPUS[0]
CLIENT_CPU = CPUS[1] if len(CPUS) > 1 else CPUS[0]


class Failed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid):
    """The processes whose parent is pid, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def descendants(pid):
    found = []
    for child in children(pid):
        found += [child] + descendants(child)
    return found


def voluntary_switches(pids):
    """Voluntary context switches (the times a thread went to sleep) summed over every thread of
    the processes; each sleep is ended by a wake-up, so this counts wake-ups."""
    total = 0
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            raise Failed(f"server process {pid} died")
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except OSError:
                pass  # a thread that ended: its count is gone either way
    return total


def reap(pids, seconds):
    """Reaps those of pids that became this process's children (the grader is a subreaper, so a
    worker whose parent exited comes to it); returns the pids that were ours: left behind, running
    (still there after the given seconds) or as zombies."""
    left, deadline = [], time.monotonic() + seconds
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # not ours: the server reaped it
            if done:
                left.append(pid)
                break
            if time.monotonic() > deadline:
                left.append(pid)
                break
            time.sleep(0.01)
    return left


class Server:
    """A fresh server on CPU 0, in a process group of its own so that all of it can be killed."""

    def __init__(self, binary, scratch):
        self.port = free_port()
        self.errors = open(os.path.join(scratch, "stderr"), "w+")
        self.proc = subprocess.Popen([binary, str(self.port), str(WORKERS)], stdout=subprocess.PIPE,
                                     stderr=self.errors, start_new_session=True,
                                     preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}))
        line = self.first_line(5)
        threading.Thread(target=self.drain, daemon=True).start()
        if not line.startswith(b"listening on"):
            why = f"{self.death()}{self.stderr()}"
            self.stop()
            raise Failed(f"the server did not print 'listening on' within 5 s ({why})")
        self.workers = children(self.proc.pid)

    def first_line(self, seconds):
        """The server's first line of output, waiting at most seconds for it."""
        fd = self.proc.stdout.fileno()
        line, deadline = b"", time.monotonic() + seconds
        while b"\n" not in line:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            line += chunk
        return line

    def drain(self):
        """Reads and drops what the server prints after its first line, so that a server that
        prints per connection never blocks on a full pipe; closes the pipe at end of file (when
        the server and all its workers are gone), so that nothing else closes it under this read."""
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except OSError:
            pass
        self.proc.stdout.close()

    def stderr(self):
        self.errors.seek(0)
        text = self.errors.read().strip()
        return f"; it said: {text[-300:]}" if text else ""

    def death(self):
        status = self.proc.poll()
        if status is None:
            return "it is running"
        if status < 0:
            return f"it died of signal {signal.Signals(-status).name}"
        return f"it exited with status {status}"

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        try:
            if self.proc.poll() is None:  # not reaped yet, so its pid and group are still its own
                tree = descendants(self.proc.pid)
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                kill(tree)  # any that left the group
                self.proc.wait(timeout=5)
            # What the server left behind came to the grader (a subreaper): kill it and reap it.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                kill(children(os.getpid()))
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        time.sleep(0.01)
                except ChildProcessError:
                    break  # no child left
        finally:
            self.errors.close()


def kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def ask(port):
    """One connection: connect, read to end of file, close. Returns the worker's pid."""
    answer = b""
    try:
        with socket.create_connection((HOST, port), timeout=3) as client:
            while len(answer) < 100:
                chunk = client.recv(100)
                if not chunk:
                    break
                answer += chunk
    except socket.timeout:
        raise Failed(f"a connection got no answer and no end of file within 3 s (it got {answer!r})")
    except OSError as e:
        raise Failed(f"a connection failed: {e}")
    found = ANSWER.fullmatch(answer)
    if not found:
        raise Failed(f"a connection got {answer[:60]!r}, not one line 'worker PID' and end of file")
    return int(found.group(1))


def served(server, counts, count, what):
    """Checks that count connections were all answered by the server's workers."""
    strangers = sorted(set(counts) - set(server.workers))
    if strangers:
        raise Failed(f"answers from pid {', '.join(map(str, strangers[:4]))}, not one of the workers "
                     f"{server.workers}")
    if sum(counts.values()) != count:
        raise Failed(f"{sum(counts.values())} of {count} {what} answered")


def one_at_a_time(server, count):
    counts = collections.Counter()
    deadline = time.monotonic() + RUN_SECONDS
    for done in range(count):
        if time.monotonic() > deadline:
            raise Failed(f"only {done} of {count} connections one after another in {RUN_SECONDS} s")
        counts[ask(server.port)] += 1
    served(server, counts, count, "connections")
    return counts


def spread(server, counts):
    """The accepts per worker, busiest first, and busiest / idlest (infinite when one took none)."""
    per_worker = sorted((counts.get(pid, 0) for pid in server.workers), reverse=True)
    ratio = per_worker[0] / per_worker[-1] if per_worker[-1] else float("inf")
    return per_worker, ratio


def check_spread(server, counts, how):
    per_worker, ratio = spread(server, counts)
    shown = " / ".join(map(str, per_worker))
    if ratio > MAX_IMBALANCE:
        raise Failed(f"accepts per worker, {how}: {shown}; busiest / idlest = {ratio:.2f}, "
                     f"required <= {MAX_IMBALANCE}")
    return f"accepts per worker, {how}: {shown}; busiest / idlest = {ratio:.2f} (<= {MAX_IMBALANCE})"


# --- the tests ---------------------------------------------------------------------------------------

def test_correct(server):
    if len(server.workers) != WORKERS:
        raise Failed(f"the server has {len(server.workers)} worker processes {server.workers}, "
                     f"asked for {WORKERS}")
    counts = one_at_a_time(server, 200)
    if not server.alive():
        raise Failed(server.death())
    return (f"{WORKERS} workers; 200 of 200 connections answered 'worker PID' by them "
            f"({len(counts)} different workers)")


def test_wakeups(server):
    one_at_a_time(server, 100)  # warm up: the first connections fault pages in
    time.sleep(0.05)  # let the last worker go back to sleep before counting
    everyone = [server.proc.pid] + server.workers
    before = voluntary_switches(everyone)
    started = time.monotonic()
    one_at_a_time(server, CONNECTIONS)
    took = time.monotonic() - started
    time.sleep(0.05)
    wakeups = (voluntary_switches(everyone) - before) / CONNECTIONS
    measured = (f"{wakeups:.2f} wake-ups (the server's voluntary context switches) per connection over "
                f"{CONNECTIONS} connections one after another ({CONNECTIONS / took:.0f}/s)")
    if wakeups > MAX_WAKEUPS:
        raise Failed(f"{measured}, required <= {MAX_WAKEUPS}: a connection wakes more than one worker")
    if wakeups < MIN_WAKEUPS:
        raise Failed(f"{measured}, required >= {MIN_WAKEUPS}: the workers do not sleep while they "
                     f"wait (busy polling burns a CPU)")
    return f"{measured}; required {MIN_WAKEUPS} to {MAX_WAKEUPS}"


def test_balance_sequential(server):
    counts = one_at_a_time(server, CONNECTIONS)
    return check_spread(server, counts, f"{CONNECTIONS} connections one after another")


def test_balance_burst(server):
    each = CONNECTIONS // BURST_CLIENTS
    counts = [collections.Counter() for _ in range(BURST_CLIENTS)]
    errors = []
    stop = threading.Event()
    deadline = time.monotonic() + RUN_SECONDS

    def client(mine):
        try:
            for _ in range(each):
                if stop.is_set():
                    return
                if time.monotonic() > deadline:
                    raise Failed(f"{BURST_CLIENTS} clients did not finish {CONNECTIONS} connections in "
                                 f"{RUN_SECONDS} s")
                mine[ask(server.port)] += 1
        except Failed as e:
            errors.append(str(e))
            stop.set()

    threads = [threading.Thread(target=client, args=(mine,), daemon=True) for mine in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.1, deadline + 5 - time.monotonic()))
    stop.set()
    if errors:
        raise Failed(errors[0])
    if any(thread.is_alive() for thread in threads):
        raise Failed(f"a client thread was still running {RUN_SECONDS + 5} s after the start")
    total = sum(counts, collections.Counter())
    served(server, total, each * BURST_CLIENTS, "connections")
    return check_spread(server, total, f"{each * BURST_CLIENTS} connections from {BURST_CLIENTS} clients at once")


def test_sigterm(server):
    one_at_a_time(server, 20)
    workers = list(server.workers)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        raise Failed("the server still runs 1 s after SIGTERM")
    took = time.monotonic() - sent
    # The grader is a subreaper: a worker the parent did not reap is now the grader's child.
    left = reap(workers, 0.2)
    if left:
        raise Failed(f"the parent exited ({server.death()}) without reaping worker(s) {left}: they were "
                     f"left running or as zombies")
    return f"the server stopped {took * 1000:.0f} ms after SIGTERM ({server.death()}), its workers reaped"


TESTS = [("correct", test_correct), ("wake-ups per connection", test_wakeups),
         ("balance, one connection at a time", test_balance_sequential),
         (f"balance, {BURST_CLIENTS} clients at once", test_balance_burst), ("SIGTERM", test_sigterm)]


def main(argv):
    if len(argv) > 1:
        print("usage: grade.py [SOURCE.c]", file=sys.stderr)
        return 2
    source = os.path.abspath(argv[0] if argv else os.path.join(HERE, "server.c"))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}: this grader needs Linux")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        binary = os.path.join(scratch, "server")
        try:
            build = subprocess.run(["gcc", "-std=c11", "-O2", "-g", "-Wall", "-D_FORTIFY_SOURCE=2", "-pthread",
                                    "-o", binary, source], capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            print("gcc is not installed")
            return 2
        if build.returncode != 0:
            print(f"{source} does not compile:\n{build.stderr}")
            return 2
        # The clients run on the other CPU, so they do not take the server's.
        os.sched_setaffinity(0, {CLIENT_CPU})
        print(f"server on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}, {WORKERS} workers")
        score = 0
        for name, test in TESTS:
            server = None
            try:
                server = Server(binary, scratch)
                measured = test(server)
                score += 1
                print(f"PASS {name}: {measured}")
            except Failed as e:
                print(f"FAIL {name}: {e}")
            except OSError as e:
                print(f"FAIL {name}: {e}" + ("" if server is None or server.alive() else f" ({server.death()})"))
            finally:
                if server is not None:
                    server.stop()
        print(f"score: {score}/{len(TESTS)}")
        return 0 if score == len(TESTS) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
