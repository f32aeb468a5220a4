#!/usr/bin/env python3
"""check_floor.py FLOOR [LOADGEN] - the cases of bin/floor, the benchmark's reference responder
(harness/floor.c, docs/floor.md), each a named edge case with a bound on every wait.

The floor answers each read with as many canned responses as the read completed request heads
("\\r\\n\\r\\n"), so the cases check the count exactly: pipelined requests split at every byte offset,
byte by byte, a random stream of CR, LF and other bytes in random pieces (its count of
"\\r\\n\\r\\n" is the count of responses), a client that sends many requests without reading
(60 000: the responses wait for EPOLLOUT, and another client is served meanwhile), resets and closes, curl
on one kept connection, loadgen pipelined (the floor's own count of requests against loadgen's),
10 000 idle connections, SIGTERM and SIGINT with connections open (exit 0 within 1 s), and bad
flags (usage, exit 2). Prints "PASS name" or "FAIL name: why" per case and "N passed, N failed";
exits 1 if any failed. TEST_TIMEOUT_SCALE multiplies the bounds (e.g. 3 under a sanitizer).
"""
import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import checks  # noqa: E402
from checks import check  # noqa: E402

SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def bound(seconds):
    return seconds * SCALE


def report(name, problem):
    """problem: None for a pass, else what went wrong."""
    check(name, problem is None, problem)


class Floor:
    """bin/floor --port 0, ready when it prints its line; stop() returns (status, seconds, stats)."""

    def __init__(self, binary, *args):
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                                        stderr=self.stderr, stdin=subprocess.DEVNULL)
        ready, _, _ = select.select([self.process.stdout], [], [], bound(5))
        line = self.process.stdout.readline().decode() if ready else ""
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not match:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"no ready line within 5 s (got {line!r})")
        self.port = int(match.group(1))

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=bound(2))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def stop(self, signal_number=15):
        started = time.monotonic()
        self.process.send_signal(signal_number)
        try:
            status = self.process.wait(bound(5))
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        elapsed = time.monotonic() - started
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        match = re.search(r"^stats: (.*)$", text, re.M)
        stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))} if match else {}
        return status, elapsed, stats, text


def parse_response(data):
    """The first response of data: (its bytes, problem or None). Checks it is a valid HTTP/1.1 200
    with Content-Length 13, Content-Type text/plain, a Server header and the body Hello, World!"""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None, f"no end of head in {data[:120]!r}"
    lines = head.decode("ascii", errors="replace").split("\r\n")
    if lines[0] != "HTTP/1.1 200 OK":
        return None, f"status line {lines[0]!r}"
    fields = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            return None, f"bad field line {line!r}"
        fields[name.lower()] = value.strip()
    if fields.get("content-length") != "13" or fields.get("content-type") != "text/plain" or not fields.get("server"):
        return None, f"header fields {fields}"
    if rest[:13] != b"Hello, World!":
        return None, f"body {rest[:13]!r}"
    return head + sep + rest[:13], None


def receive(sock, size):
    """Exactly size bytes, or what came within the bound."""
    data = b""
    deadline = time.monotonic() + bound(5)
    while len(data) < size and time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def nothing_more(socks, wait=0.05):
    """None if no socket has a byte more within wait seconds, else which one did."""
    ready, _, _ = select.select(socks, [], [], bound(wait))
    return None if not ready else f"{len(ready)} connection(s) got bytes beyond the expected responses"


RESPONSE = None  # the floor's response, taken from its first answer


def expect_responses(sock, count):
    data = receive(sock, count * len(RESPONSE))
    if data != RESPONSE * count:
        return f"expected {count} responses ({count * len(RESPONSE)} bytes), got {len(data)} bytes: {data[-80:]!r}"
    return None


def case_one_request(floor):
    global RESPONSE
    with floor.connect() as sock:
        sock.sendall(REQUEST)
        data, response = b"", None
        deadline = time.monotonic() + bound(5)
        while response is None and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0, deadline - time.monotonic()))
            chunk = sock.recv(4096) if ready else b""
            if not chunk:
                break
            data += chunk
            response, problem = parse_response(data)
        response, problem = parse_response(data)
        if problem:
            return problem
        if data != response:
            return f"{len(data) - len(response)} bytes beyond one response"
        RESPONSE = response
        return nothing_more([sock])


def case_split_at_every_offset(floor, count=4):
    """count pipelined requests cut in two at every offset, one connection per offset, all at once:
    the first part, a pause for the floor to read it, then the rest."""
    stream = REQUEST * count
    socks = [floor.connect() for _ in range(1, len(stream))]
    try:
        for offset, sock in enumerate(socks, 1):
            sock.sendall(stream[:offset])
        # The complete requests in each first part are answered: then that part has been read.
        for offset, sock in enumerate(socks, 1):
            problem = expect_responses(sock, stream[:offset].count(b"\r\n\r\n"))
            if problem:
                return f"offset {offset}, first part: {problem}"
        time.sleep(bound(0.01))  # for the parts without a complete request, which say nothing
        for offset, sock in enumerate(socks, 1):
            sock.sendall(stream[offset:])
        for offset, sock in enumerate(socks, 1):
            problem = expect_responses(sock, count - stream[:offset].count(b"\r\n\r\n"))
            if problem:
                return f"offset {offset}, second part: {problem}"
        return nothing_more(socks)
    finally:
        for sock in socks:
            sock.close()


def case_byte_by_byte(floor, count=3):
    with floor.connect() as sock:
        for byte in REQUEST * count:
            sock.sendall(bytes([byte]))
            time.sleep(0.001)
        return expect_responses(sock, count) or nothing_more([sock])


def case_random_stream(floor, seed=None):
    """CR, LF, 'x' and ':' at random, in random pieces: as many responses as "\\r\\n\\r\\n" occurs
    (counted without overlap, as the floor restarts its match after each)."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    stream = bytes(rng.choice(b"\r\r\n\nx:") for _ in range(4000))
    with floor.connect() as sock:
        offset = 0
        while offset < len(stream):
            piece = rng.randint(1, 24)
            sock.sendall(stream[offset:offset + piece])
            offset += piece
            time.sleep(0.0003)
        problem = expect_responses(sock, stream.count(b"\r\n\r\n")) or nothing_more([sock])
    return f"seed {seed}: {problem}" if problem else None


def flood(floor, count):
    """A connection with a small receive buffer (16 KiB, so loopback's autotuning cannot take the
    floor's responses) and a thread sending it count requests; the thread ends when the floor has
    read them all or the connection is gone."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(bound(5))
    sock.connect(("127.0.0.1", floor.port))

    def send():
        try:
            sock.sendall(REQUEST * count)
        except OSError:
            pass
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sock, sender


def case_no_reader_then_all(binary, count=60000):
    """A client sends 60 000 requests and reads nothing for a while: the responses (5.9 MB) exceed
    the socket buffers, so the floor must keep what it owes and wait for EPOLLOUT (its count of
    write_waits says it did), serving another client meanwhile; then every response arrives, in
    order, exactly once."""
    floor = Floor(binary)
    try:
        sock, sender = flood(floor, count)
        with sock:
            time.sleep(bound(0.3))
            with floor.connect() as other:
                other.sendall(REQUEST)
                problem = expect_responses(other, 1)
                if problem:
                    return f"another client while one was blocked: {problem}"
            data = receive(sock, count * len(RESPONSE))
            sender.join(bound(5))
            if data != RESPONSE * count:
                return f"expected {count} responses, got {len(data)} bytes ({len(data) / len(RESPONSE):.1f} responses)"
            problem = nothing_more([sock])
            if problem:
                return problem
    finally:
        status, _, stats, text = floor.stop()
    if status != 0 or stats.get("write_waits", 0) < 1 or stats.get("requests") != count + 1:
        return f"floor exit {status}, stats {stats} (expected write_waits >= 1, requests {count + 1}): {text[-200:]}"
    return None


def case_resets_and_closes(floor):
    """A reset in the middle of a request, a close with responses unread, a reset with responses
    owed: the floor drops those connections and serves the next client."""
    linger = struct.pack("ii", 1, 0)  # close() sends RST
    first = floor.connect()
    first.sendall(REQUEST[:10])
    first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    first.close()
    second = floor.connect()
    second.sendall(REQUEST * 50)
    second.close()
    third = floor.connect()
    third.sendall(REQUEST * 30000)
    time.sleep(bound(0.05))
    third.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    third.close()
    time.sleep(bound(0.05))
    with floor.connect() as sock:
        sock.sendall(REQUEST * 2)
        return expect_responses(sock, 2)


def case_curl_keep_alive(floor):
    url = f"http://127.0.0.1:{floor.port}/"
    try:
        result = subprocess.run(["curl", "-s", "--max-time", str(bound(3)), "-w", "|%{http_code} %{num_connects}\n",
                                 url, url], capture_output=True, text=True, timeout=bound(10))
    except FileNotFoundError:
        return None  # curl is one of make deps' packages; without it there is nothing to check
    expected = "Hello, World!|200 1\nHello, World!|200 0\n"
    if result.returncode != 0 or result.stdout != expected:
        return f"curl exit {result.returncode}, output {result.stdout!r}, expected {expected!r}"
    return None


def run_loadgen(loadgen, floor, *args):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        result = subprocess.run([loadgen, "--json", out.name, "--quiet", *args, f"http://127.0.0.1:{floor.port}/"],
                                capture_output=True, text=True, timeout=bound(60))
        if result.returncode != 0:
            raise RuntimeError(f"loadgen exit {result.returncode}: {result.stdout[-300:]} {result.stderr[-300:]}")
        with open(out.name) as f:
            return json.load(f)


def case_loadgen_pipelined(loadgen, binary):
    """loadgen -P 16: no error, and the floor counted every request loadgen had answered and no more
    than it sent."""
    floor = Floor(binary)
    try:
        doc = run_loadgen(loadgen, floor, "-c", "8", "-P", "16", "-d", "0.5", "--warmup", "0.1")
    finally:
        status, _, stats, text = floor.stop()
    totals, warmup = doc["totals"], doc["totals"]["warmup"]
    answered = totals["completed"] + warmup["completed"]
    sent = totals["started"] + warmup["started"]
    if doc["errors"]["total"] or not totals["accounting_ok"] or totals["completed"] < 1000:
        return f"errors {doc['errors']}, accounting {totals['accounting_ok']}, completed {totals['completed']}"
    if status != 0 or not answered <= stats.get("requests", -1) <= sent:
        return f"floor exit {status}, counted {stats.get('requests')} requests, loadgen got {answered} of {sent}: {text[-200:]}"
    return None


def case_idle_10000(loadgen, binary):
    floor = Floor(binary)
    try:
        doc = run_loadgen(loadgen, floor, "-c", "4", "-d", "0.5", "--idle", "10000", "--timeout", str(bound(5)))
    finally:
        status, _, stats, text = floor.stop()
    idle = doc["idle"]
    if idle["established"] != 10000 or idle["open_at_end"] != 10000 or doc["errors"]["total"] or \
            doc["totals"]["completed"] < 100:
        return f"idle {idle}, errors {doc['errors']['total']}, completed {doc['totals']['completed']}"
    if status != 0 or stats.get("accepted", 0) < 10004 or stats.get("errors") != 0:
        return f"floor exit {status}, stats {stats}: {text[-200:]}"
    return None


def case_stop(binary, signal_number):
    """A stop signal with an idle connection and a blocked one (responses owed, never read): exit 0
    within a second, and the counts printed."""
    floor = Floor(binary)
    idle = floor.connect()
    blocked, _ = flood(floor, 60000)
    time.sleep(bound(0.2))
    status, elapsed, stats, text = floor.stop(signal_number)
    idle.close()
    blocked.close()
    if status != 0 or elapsed > 1.0 or "requests" not in stats:
        return f"exit status {status} after {elapsed:.2f} s, stats {stats}: {text[-200:]}"
    if stats.get("write_waits", 0) < 1:
        return f"the blocked connection never waited for EPOLLOUT: {stats}"
    return None


def case_bad_flags(binary):
    for args in (["--bogus"], ["--port", "70000"], ["--port"], ["--backlog", "0"], ["--port", "8x"], ["extra"]):
        result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=bound(5))
        if result.returncode != 2 or "usage:" not in result.stderr or result.stdout:
            return f"{' '.join(args)}: exit {result.returncode}, stderr {result.stderr[:100]!r}"
    result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=bound(5))
    if result.returncode != 0 or not result.stdout.startswith("usage:"):
        return f"--help: exit {result.returncode}, stdout {result.stdout[:100]!r}"
    return None


def main(argv):
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    binary, loadgen = argv[0], (argv[1] if len(argv) > 1 else None)
    floor = Floor(binary)
    try:
        report("one_request_one_valid_response", case_one_request(floor))
        if RESPONSE is None:
            report("the_other_cases", "no valid response to compare with")
        else:
            for name, case in (("pipelined_split_at_every_offset", case_split_at_every_offset),
                               ("pipelined_byte_by_byte", case_byte_by_byte),
                               ("random_cr_lf_stream_in_random_pieces", case_random_stream),
                               ("resets_and_closes", case_resets_and_closes),
                               ("curl_two_requests_one_connection", case_curl_keep_alive)):
                try:
                    report(name, case(floor))
                except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                    report(name, repr(e))
    finally:
        status, elapsed, stats, text = floor.stop()
    report("sigterm_after_the_cases", None if status == 0 and elapsed <= 1.0 and stats.get("errors") == 0 else
           f"exit {status} after {elapsed:.2f} s, stats {stats}: {text[-300:]}")
    cases = [("60000_requests_unread_then_all_answered", lambda: case_no_reader_then_all(binary)),
             ("sigterm_with_connections_open_exits_0_within_1s", lambda: case_stop(binary, 15)),
             ("sigint_with_connections_open_exits_0_within_1s", lambda: case_stop(binary, 2)),
             ("bad_flags_print_usage_and_exit_2", lambda: case_bad_flags(binary))]
    if loadgen:
        cases += [("loadgen_pipelined_every_request_counted", lambda: case_loadgen_pipelined(loadgen, binary)),
                  ("loadgen_10000_idle_connections", lambda: case_idle_10000(loadgen, binary))]
    for name, case in cases:
        try:
            report(name, case())
        except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as e:
            report(name, repr(e))
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
