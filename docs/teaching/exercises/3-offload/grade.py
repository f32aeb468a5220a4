#!/usr/bin/env python3
"""grade.py - the autograder of exercise 3: builds a line server (default: server.c beside this
file) that must keep its epoll loop free of a 50 ms blocking call, and tests it, one fresh server
per test, every wait bounded.

    python3 grade.py [SOURCE.c]        (make grade EX=3 [SOURCE=...])

Six tests, one point each:
1. answers: fast and slow requests, pipelined, split across reads, and a bad line, on four
   connections: every ID answered once, in any order, with the right VALUE;
2. fast requests at a 5 % slow mix: 16 connections, each sending a request, waiting for its
   answer and 5 ms more, for 4 s; the fast requests' p99 round trip must be under 5 ms (a loop
   that runs the lookups itself: 146 to 199 ms; one that offloads them: under 1 ms on a quiet
   machine), and every slow one answered (at least 50 of them), correctly and no sooner than its
   50 ms. With other work on the machine a good server's p99 was anywhere from 3 to 90 ms in one
   window, so up to three windows are tried and one that meets the bound passes;
3. lookups side by side: 20 slow requests sent at once on 20 connections are all answered within
   0.5 s, half the time of one after another (8 workers: 0.15 s);
4. an eventfd in the loop's epoll set (/proc/PID/fd and /proc/PID/fdinfo);
5. descriptor reuse: clients that send a slow request and close, then new connections (which get
   the same descriptor numbers) that send only fast ones: no new connection receives a `done`;
6. SIGTERM with lookups in flight stops the server within 1 s.
Prints PASS or FAIL with what was measured for each, then "score: N/6"; exits 0 only on full
marks (1 otherwise, 2 when the source does not compile or gcc is missing).
The server runs on CPU 0 and the grader on CPU 1 when the machine has two.
"""
import math
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
TWO_CPUS = len(os.sched_getaffinity(0)) > 1 and (os.cpu_count() or 1) > 1
SLOW_S = 0.050            # slow_lookup's sleep
MASK = (1 << 64) - 1


class Failed(Exception):
    pass


def lookup_value(request_id):
    """What slow_lookup(ID) returns (splitmix64's finaliser, modulo a million)."""
    x = (request_id + 0x9e3779b97f4a7c15) & MASK
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & MASK
    return (x ^ (x >> 31)) % 1000000


def answer_to(kind, request_id):
    return f"ok {request_id}" if kind == "fast" else f"done {request_id} {lookup_value(request_id)}"


def pin_to_cpu0():
    os.setsid()  # its own process group: stop() kills whatever it started with it
    if TWO_CPUS:
        os.sched_setaffinity(0, {0})


class Server:
    def __init__(self, binary, scratch):
        # Files, not pipes: a server that prints as it works would fill a pipe nobody reads, and block.
        self.output = open(os.path.join(scratch, "server.out"), "w+b")
        self.proc = subprocess.Popen([binary, "0"], stdout=self.output, stderr=subprocess.STDOUT,
                                     preexec_fn=pin_to_cpu0)
        deadline = time.monotonic() + 5
        line = ""
        while time.monotonic() < deadline and self.alive():
            with open(self.output.name, "rb") as f:
                line = f.readline().decode(errors="replace")
            if line.endswith("\n"):
                break
            time.sleep(0.01)
        found = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not found:
            state = "" if self.alive() else f"; {self.death()}"
            self.stop()
            raise Failed(f"the server did not print 'listening on 127.0.0.1:PORT' within 5 s (it printed {line!r}{state})")
        self.port = int(found.group(1))

    def status(self):
        """The server's exit status (negative: the signal), or None while it runs. It is not
        reaped here, so that its pid, and so its process group, stay ours until stop()."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        ended = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if ended is None or ended.si_pid == 0:
            return None
        return -ended.si_status if ended.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else ended.si_status

    def alive(self):
        return self.status() is None

    def death(self):
        status = self.status()
        if status is None:
            return "it is running"
        if status < 0:
            return f"it died of signal {signal.Signals(-status).name}"
        return f"it exited with status {status}"

    def stop(self):
        if self.proc.returncode is None:  # not reaped yet, so the group is still the server's
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the server and any process it started
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.output.close()

    def connect(self):
        return socket.create_connection((HOST, self.port), timeout=3)


class Lines:
    """A nonblocking client socket and the lines it has received."""

    def __init__(self, sock):
        self.sock = sock
        sock.setblocking(False)
        self.buffer = b""
        self.closed = False

    def send(self, data):
        # Requests are a few dozen bytes into a socket whose buffer the server keeps empty.
        if self.sock.send(data) != len(data):
            raise Failed("a request did not fit in the socket's buffer")

    def receive(self):
        """Reads what has arrived; returns the complete lines (without '\\n')."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        except ConnectionError:
            data = b""
        if not data:
            self.closed = True
            return []
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line.decode(errors="replace") for line in lines]


def collect(clients, wanted, seconds):
    """Reads from every client until each has `wanted[i]` lines or the time is up; returns the
    lines per client."""
    selector = selectors.DefaultSelector()
    got = [[] for _ in clients]
    for index, client in enumerate(clients):
        selector.register(client.sock, selectors.EVENT_READ, index)
    deadline = time.monotonic() + seconds
    try:
        while any(len(got[i]) < wanted[i] and not clients[i].closed for i in range(len(clients))):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                client = clients[key.data]
                got[key.data] += client.receive()
                if client.closed:
                    selector.unregister(client.sock)
    finally:
        selector.close()
    return got


def serves_fresh_client(server):
    """A new client's fast and slow requests are answered correctly within 2 s."""
    with server.connect() as sock:
        client = Lines(sock)
        client.send(b"fast 4242\nslow 4243\n")
        got = collect([client], [2], 2.0)[0]
    return sorted(got) == sorted([answer_to("fast", 4242), answer_to("slow", 4243)])


def percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- the tests ---------------------------------------------------------------------------------------

def test_answers(server):
    """Pipelined, split and bad lines on four connections: every answer right, each ID once."""
    plan = [
        [b"fast 1\nslow 2\nfast 3\nslow 4\nfast 5\n"],          # pipelined, in one send
        [b"sl", b"ow 11\nfa", b"st 12\n"],                       # lines split across sends
        [b"hello\nfast 18446744073709551615\nslow 18446744073709551615\nslow -3\n"],  # bad lines, the largest ID
        [b"".join(b"slow %d\n" % (100 + i) for i in range(6)) + b"fast 99\n"],
    ]
    expected = [
        [answer_to("fast", 1), answer_to("slow", 2), answer_to("fast", 3), answer_to("slow", 4), answer_to("fast", 5)],
        [answer_to("slow", 11), answer_to("fast", 12)],
        ["error", answer_to("fast", MASK), answer_to("slow", MASK), "error"],
        [answer_to("slow", 100 + i) for i in range(6)] + [answer_to("fast", 99)],
    ]
    clients = [Lines(server.connect()) for _ in plan]
    try:
        longest = max(len(parts) for parts in plan)
        for step in range(longest):
            for client, parts in zip(clients, plan):
                if step < len(parts):
                    client.send(parts[step])
            time.sleep(0.02)  # each part of the split line arrives on its own
        # Any order is allowed (the IDs say which answer is which); then 0.1 s more for answers too many.
        got = collect(clients, [len(e) for e in expected], 5.0)
        for lines, more in zip(got, collect(clients, [1 << 30] * len(clients), 0.1)):
            lines += more
    finally:
        for client in clients:
            client.sock.close()
    for index, (want, have) in enumerate(zip(expected, got)):
        if sorted(have) != sorted(want):
            missing = sorted(set(want) - set(have))
            extra = [line for line in have if line not in want or have.count(line) > want.count(line)]
            raise Failed(f"connection {index + 1} sent {b''.join(plan[index]).decode().strip().splitlines()} and got "
                         f"{have}; missing {missing}, unexpected {extra}" + ("" if server.alive() else f"; {server.death()}"))
    slow = sum(line.startswith("done") for want in expected for line in want)
    return (f"{sum(map(len, expected))} answers on {len(plan)} connections ({slow} slow, 2 errors), each right and "
            "each once")


def test_fast_requests(server):
    """16 connections, each: send a request (slow with probability 5 %), wait for its answer, wait
    5 ms, again; 4 s. The fast requests' p99 must be < 5 ms; every slow one answered right, in no
    less than its 50 ms, and at least 50 of them. Up to three such windows: one that meets it
    passes."""
    # Three tries, not one: with other servers and load generators on both CPUs, a good server's
    # p99 was measured anywhere from 3 to 90 ms in one window (the machine's stalls, which a
    # lookup of 50 ms cannot be told from), and below 1 ms on a quiet machine. A loop that runs
    # the lookups itself is blocked most of the time at this mix (the 16 clients want more than
    # its 20 lookups a second): its p99 was 146 to 199 ms in every window, and its median 35 to
    # 45 ms, so no retry can pass it.
    p99_limit_ms = 5.0
    tries = []
    for attempt in range(3):
        fast_rtts, slow_rtts = fast_window(server, random.Random(3 + attempt))
        p50_ms = percentile(fast_rtts, 0.50) * 1000
        p99_ms = percentile(fast_rtts, 0.99) * 1000
        measured = (f"{len(fast_rtts)} fast answered, p99 {p99_ms:.2f} ms (median {p50_ms:.2f} ms); "
                    f"{len(slow_rtts)} slow answered" +
                    (f", in {min(slow_rtts) * 1000:.1f} to {max(slow_rtts) * 1000:.1f} ms" if slow_rtts else ""))
        if len(slow_rtts) < 50:
            raise Failed(f"at least 50 slow requests must be answered: {measured}")
        if min(slow_rtts) < SLOW_S - 0.0005:
            raise Failed(f"a slow answer came in less than slow_lookup's 50 ms (was it changed?): {measured}")
        tries.append(measured)
        if p99_ms < p99_limit_ms:
            return (f"{measured} (required: p99 < {p99_limit_ms:.0f} ms in one of 3 windows, >= 50 slow, none "
                    f"under 50 ms; window {attempt + 1})")
    raise Failed(f"the fast requests' p99 must be < {p99_limit_ms:.0f} ms in one of 3 windows of 4 s: "
                 + "; ".join(tries))


def fast_window(server, rng):
    """One window of test_fast_requests; returns the round trips of the fast and the slow requests."""
    connections, seconds, think_s, slow_share = 16, 4.0, 0.005, 0.05
    answer_timeout_s = 2.0
    selector = selectors.DefaultSelector()
    clients = []
    try:
        for index in range(connections):
            client = Lines(server.connect())
            client.pending = None  # (kind, id, sent at)
            client.next_at = 0.0
            clients.append(client)
            selector.register(client.sock, selectors.EVENT_READ, client)
        fast_rtts, slow_rtts = [], []
        next_id = 1
        start = time.monotonic()
        end = start + seconds
        while True:
            now = time.monotonic()
            for client in clients:
                if client.pending is None and now >= client.next_at and now < end:
                    kind = "slow" if rng.random() < slow_share else "fast"
                    client.pending = (kind, next_id, time.monotonic())
                    client.send(f"{kind} {next_id}\n".encode())
                    next_id += 1
                elif client.pending is not None and now - client.pending[2] > answer_timeout_s:
                    kind, request_id, _ = client.pending
                    raise Failed(f"'{kind} {request_id}' had no answer after {answer_timeout_s:.0f} s "
                                 f"({len(fast_rtts)} fast and {len(slow_rtts)} slow answered before)"
                                 + ("" if server.alive() else f"; {server.death()}"))
            busy = [c for c in clients if c.pending is not None]
            if now >= end and not busy:
                break
            waits = [c.next_at - now for c in clients if c.pending is None and now < end]
            timeout = max(0.0, min(waits + [0.05]))
            for key, _ in selector.select(timeout):
                client = key.data
                for line in client.receive():
                    arrived = time.monotonic()
                    if client.pending is None:
                        raise Failed(f"an answer {line!r} came to a connection that had no request out")
                    kind, request_id, sent_at = client.pending
                    if line != answer_to(kind, request_id):
                        raise Failed(f"'{kind} {request_id}' was answered {line!r}, not {answer_to(kind, request_id)!r}")
                    (fast_rtts if kind == "fast" else slow_rtts).append(arrived - sent_at)
                    client.pending = None
                    client.next_at = arrived + think_s
                if client.closed:
                    raise Failed(f"the server closed a connection ({len(fast_rtts)} fast and {len(slow_rtts)} slow "
                                 "answered before)" + ("" if server.alive() else f"; {server.death()}"))
    finally:
        selector.close()
        for client in clients:
            client.sock.close()
    if not fast_rtts:
        raise Failed("no fast request was answered")
    return fast_rtts, slow_rtts


def test_side_by_side(server):
    """20 slow requests at once on 20 connections: all answered within 0.5 s, half the time of one
    after another (which no noise can make shorter), so that a stall of the machine does not fail
    a pool that takes 0.15 s."""
    count, limit_s = 20, 0.5
    clients = [Lines(server.connect()) for _ in range(count)]
    try:
        time.sleep(0.05)  # let the server accept them all before the clock starts
        started = time.monotonic()
        for index, client in enumerate(clients):
            client.send(b"slow %d\n" % (500 + index))
        got = collect(clients, [1] * count, 3.0)
        took = time.monotonic() - started
    finally:
        for client in clients:
            client.sock.close()
    wrong = [(500 + i, lines) for i, lines in enumerate(got) if lines != [answer_to("slow", 500 + i)]]
    if wrong:
        request_id, lines = wrong[0]
        raise Failed(f"{len(wrong)} of {count} slow requests were not answered right within 3 s "
                     f"(slow {request_id} got {lines})" + ("" if server.alive() else f"; {server.death()}"))
    if took >= limit_s:
        raise Failed(f"{count} slow requests at once took {took:.3f} s; required < {limit_s} s (one after another: "
                     f"{count * SLOW_S:.1f} s)")
    return f"{count} slow requests at once answered in {took:.3f} s (< {limit_s} s)"


def descriptors(pid):
    """{fd: what it is} for the process, from /proc/PID/fd."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass  # closed meanwhile
    return found


def test_eventfd(server):
    """After a slow request: an eventfd is open and in an epoll set (its tfd in the epoll's fdinfo)."""
    if not serves_fresh_client(server):
        raise Failed("a fast and a slow request were not answered right within 2 s")
    pid = server.proc.pid
    fds = descriptors(pid)
    eventfds = sorted(fd for fd, what in fds.items() if what == "anon_inode:[eventfd]")
    epolls = sorted(fd for fd, what in fds.items() if what == "anon_inode:[eventpoll]")
    watched = {}
    for epoll_fd in epolls:
        with open(f"/proc/{pid}/fdinfo/{epoll_fd}") as f:
            watched[epoll_fd] = sorted(int(line.split()[1]) for line in f if line.startswith("tfd:"))
    seen = f"eventfds {eventfds}, epoll sets {watched or '(none)'}"
    if not eventfds:
        raise Failed(f"no eventfd among the server's descriptors ({seen})")
    if not any(fd in fds_watched for fd in eventfds for fds_watched in watched.values()):
        raise Failed(f"no eventfd is in an epoll set ({seen})")
    return seen


def test_descriptor_reuse(server):
    """Rounds of: 4 clients send `slow ID` and close at once; 10 ms later 4 new clients (the kernel
    gives them the lowest free descriptors: the ones just closed) send `fast` every 10 ms for
    150 ms, past the lookups' end. No new client may receive a `done`; each gets its own `ok`s."""
    rounds, per_round, fast_each = 8, 4, 15
    next_id = 1000
    for round_number in range(rounds):
        for _ in range(per_round):
            with server.connect() as sock:
                sock.sendall(b"slow %d\n" % next_id)
            next_id += 1
        time.sleep(0.01)  # the server reads the requests and the ends, and closes
        fresh = [Lines(server.connect()) for _ in range(per_round)]
        try:
            sent = [[] for _ in fresh]
            got = [[] for _ in fresh]
            for step in range(fast_each):
                for index, client in enumerate(fresh):
                    client.send(b"fast %d\n" % next_id)
                    sent[index].append(answer_to("fast", next_id))
                    next_id += 1
                for index, lines in enumerate(collect(fresh, [1 << 30] * len(fresh), 0.01)):
                    got[index] += lines
            for index, lines in enumerate(collect(fresh, [len(s) - len(g) for s, g in zip(sent, got)], 1.0)):
                got[index] += lines
        finally:
            for client in fresh:
                client.sock.close()
        for index in range(per_round):
            stray = [line for line in got[index] if line.startswith("done")]
            if stray:
                raise Failed(f"round {round_number + 1}: a new connection that sent only fast requests received "
                             f"{stray[0]!r}, the answer of a client that had closed")
            if sorted(got[index]) != sorted(sent[index]):
                raise Failed(f"round {round_number + 1}: a new connection sent {len(sent[index])} fast requests "
                             f"and got {len(got[index])} answers, {len(set(sent[index]) & set(got[index]))} of them "
                             "its own" + ("" if server.alive() else f"; {server.death()}"))
        time.sleep(0.01)  # the server closes them before the next round's clients come
    if not server.alive():
        raise Failed(server.death())
    if not serves_fresh_client(server):
        raise Failed("after the rounds, a new client's fast and slow requests were not answered right")
    return f"{rounds} rounds of {per_round} slow-and-close clients, each followed by {per_round} new fast-only connections"


def test_sigterm(server):
    """SIGTERM while 10 lookups are in flight: the server is gone within 1 s."""
    with server.connect() as sock:
        sock.sendall(b"".join(b"slow %d\n" % (9000 + i) for i in range(10)))
        time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        while server.alive() and time.monotonic() - started < 1.0:
            time.sleep(0.005)
        took = time.monotonic() - started
    if server.alive():
        raise Failed("still running 1 s after SIGTERM, with lookups in flight")
    return f"it stopped {took:.3f} s after SIGTERM ({server.death()})"


TESTS = [("answers", test_answers), ("fast requests at a 5 % slow mix", test_fast_requests),
         ("lookups side by side", test_side_by_side), ("eventfd in the epoll set", test_eventfd),
         ("descriptor reuse", test_descriptor_reuse), ("SIGTERM", test_sigterm)]


def main(argv):
    if len(argv) > 1:
        print("usage: grade.py [SOURCE.c]", file=sys.stderr)
        return 2
    source = os.path.abspath(argv[0] if argv else os.path.join(HERE, "server.c"))
    if shutil.which("gcc") is None:
        print("gcc is not installed: it is needed to build the server")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        binary = os.path.join(scratch, "server")
        build = subprocess.run(["gcc", "-std=c11", "-O2", "-g", "-Wall", "-D_FORTIFY_SOURCE=2", "-pthread",
                                "-o", binary, source], capture_output=True, text=True, timeout=120)
        if build.returncode != 0:
            print(f"{source} does not compile:\n{build.stderr}")
            return 2
        if build.stderr.strip():
            print(f"gcc warns:\n{build.stderr.rstrip()}")
        if TWO_CPUS:
            os.sched_setaffinity(0, {1})  # the load on CPU 1, the server on CPU 0
        score = 0
        for name, test in TESTS:
            server = None
            try:
                server = Server(binary, scratch)
                measured = test(server)
                score += 1
                print(f"PASS {name}" + (f": {measured}" if measured else ""))
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
