#!/usr/bin/env python3
"""conformance.py - the protocol conformance suite, run against every server binary.

docs/protocol.md is the spec; tests/conformance.md lists the cases. Every case gets a fresh server
(`BINARY --port 0 --header-timeout 1 --idle-timeout 2 --send-timeout 2`), found ready by its
`listening on` line, stopped with SIGTERM and then checked for a clean exit, a quiet stdout, no
sanitizer report and a well-formed `stats:` line. Every socket call has a timeout and every case a
time limit, so a broken server fails a case instead of hanging the suite.

    python3 tests/conformance.py [--serial NAME]... [--bounded NAME]... [--only SUBSTR] [--list]
                                 [--jobs N] BINARY[:FLAG,FLAG...]...

Output: one `PASS|FAIL|SKIP <server> <case>` line per case and server (a server that exits at
start-up with status 1 saying `unavailable:` gets one `SKIP <server>: <reason>` line instead), then
`N skipped` (with those reasons) and `N passed, N failed`. Exit status 1 if any case failed, 2 on
bad usage, else 0. Python 3.11 standard library only. C10K_TEST_TIMEOUT_SCALE multiplies every
case's time limit (slow builds); it never widens a deadline the protocol itself promises.
"""

import argparse
import calendar
import concurrent.futures
import os
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 2.0
SEND_TIMEOUT = 2.0
SERVER_ARGS = ["--port", "0", "--header-timeout", "1", "--idle-timeout", "2", "--send-timeout", "2"]
LATE = 1.5    # how late a deadline may fire: event loops check once per second, plus scheduling
EARLY = 0.05  # how early a deadline may fire: clock granularity only
DATE_SLACK = 5.0
READ_TIMEOUT = 3.0  # one response that the server owes at once
LIMIT_SCALE = float(os.environ.get("C10K_TEST_TIMEOUT_SCALE", "1") or 1)

PATTERN = b"abcdefghijklmnopqrstuvwxyz"
BIG = 67108864  # the largest /bytes body
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Content Too Large", 431: "Request Header Fields Too Large",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}
STATS_KEYS = ["accepted", "requests", "shed", "refused", "status400", "status404", "status405", "status408",
              "status413", "status431", "status501", "status503", "status505", "idle_timeouts",
              "send_timeouts", "resets", "io_errors", "dropped"]
STATS_RE = re.compile(r"stats: " + " ".join(rf"{k}=(\d+)" for k in STATS_KEYS))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")
IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug"
                         r"|Sep|Oct|Nov|Dec) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


class CaseFailure(Exception):
    """A check failed; the message says what was expected and what came."""


def fail(message):
    raise CaseFailure(message)


def now():
    return time.monotonic()


def short(data, limit=160):
    """repr() of bytes, cut to a readable length."""
    if data is None:
        return "nothing"
    data = bytes(data)
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def pattern(n):
    """The /bytes/N body: byte i is PATTERN[i % 26]."""
    return (PATTERN * (n // 26 + 1))[:n]


def req(method="GET", target="/", headers=(), body=b"", version="HTTP/1.1", host=True):
    """The bytes of one request; Host is added first unless host=False."""
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: c10k")
    lines += list(headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def get(target, *headers):
    return req("GET", target, headers)


def post_echo(body, *headers):
    return req("POST", "/echo", (f"Content-Length: {len(body)}", *headers), body)


# --- responses ------------------------------------------------------------------------------------

class Response:
    def __init__(self, raw_head, status, reason, headers, head_only):
        self.raw_head = raw_head    # status line and headers, without the final CRLF CRLF
        self.status = status
        self.reason = reason
        self.headers = headers      # [(name, value)] in order, as received
        self.head_only = head_only
        self.body = b""
        self.request = b""          # what the connection sent last, for messages

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def status_line(self):
        return self.raw_head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def length(self):
        return int(self.header("Content-Length"))

    def describe(self):
        text = self.raw_head.decode("latin-1").replace("\r\n", " | ")
        if self.head_only:
            return f"[{text}] (HEAD: no body read)"
        return f"[{text}] body {short(self.body, 80)}"


def parse_head(raw):
    """Parses a response head (without CRLF CRLF); raises CaseFailure if it is not HTTP/1.1."""
    lines = raw.split(b"\r\n")
    m = re.fullmatch(rb"HTTP/1\.1 (\d\d\d) ([^\r\n]*)", lines[0])
    if not m:
        fail(f"malformed status line {short(lines[0])} (head {short(raw)})")
    headers = []
    for line in lines[1:]:
        hm = re.fullmatch(rb"(" + TOKEN + rb"):[ \t]*(.*?)[ \t]*", line)
        if not hm:
            fail(f"malformed header line {short(line)} (head {short(raw)})")
        headers.append((hm.group(1).decode("latin-1"), hm.group(2).decode("latin-1")))
    resp = Response(raw, int(m.group(1)), m.group(2).decode("latin-1"), headers, False)
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    if len(lengths) != 1 or not re.fullmatch(r"\d+", lengths[0]):
        fail(f"response needs exactly one numeric Content-Length, got {lengths} "
             f"(head {short(raw)})")
    return resp


# --- connections ----------------------------------------------------------------------------------

class Conn:
    """A client connection with a read buffer; every call is bounded by a timeout and by the case's
    own deadline."""

    def __init__(self, ctx, rcvbuf=None, nodelay=False, connect_timeout=2.0):
        self.ctx = ctx
        self.buf = bytearray()
        self.sent = b""       # the last request sent, quoted in failure messages
        self.closed = None    # None, "eof" or "reset"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ctx.conns.append(self)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(ctx.bound(connect_timeout))
        try:
            self.sock.connect((HOST, ctx.port))
        except OSError as e:
            fail(f"connect to {HOST}:{ctx.port} failed: {e}")

    def send(self, data, may_fail=False, timeout=READ_TIMEOUT):
        """Sends all of data. With may_fail, a closed or reset connection returns False instead of
        failing the case (the server may refuse a request before it has all of it)."""
        self.sent = bytes(data)
        self.sock.settimeout(self.ctx.bound(timeout))
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            if may_fail:
                return False
            fail(f"sending {short(data)}: {e}")
        except socket.timeout:
            fail(f"sending {short(data)}: the server did not take it within {timeout:g} s")
        return True

    def send_while_reading(self, data, timeout=10.0, refused=False):
        """Sends data while reading whatever comes back into the buffer, so a large request cannot
        deadlock against a server that answers before it has read everything. With refused, the
        server may answer early and close: sending goes on after EOF (a lingering close reads and
        discards it) and stops quietly at a reset; returns whether everything was sent."""
        self.sent = bytes(data)
        view = memoryview(data)
        until = now() + timeout
        self.sock.setblocking(False)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                while view:
                    left = self.ctx.bound(until - now())
                    if left <= 0:
                        fail(f"sending {short(data)}: {len(view)} bytes still unsent after "
                             f"{timeout:g} s")
                    for _, events in sel.select(left):
                        if events & selectors.EVENT_READ and not self.closed:
                            try:
                                chunk = self.sock.recv(262144)
                            except ConnectionResetError:
                                self.closed = "reset"
                                chunk = b""
                            except BlockingIOError:
                                chunk = None
                            if chunk:
                                self.buf += chunk
                            elif chunk == b"":
                                self.closed = self.closed or "eof"
                        if events & selectors.EVENT_WRITE:
                            try:
                                n = self.sock.send(view[:262144])
                                view = view[n:]
                            except BlockingIOError:
                                pass
                            except (BrokenPipeError, ConnectionResetError) as e:
                                if refused:
                                    return False
                                fail(f"sending {short(data)}: {e} with {len(view)} bytes unsent")
                    if self.closed == "reset" or (self.closed and not refused):
                        if refused:
                            return False
                        fail(f"sending {short(data)}: connection {self.closed} with {len(view)} "
                             f"bytes unsent{self.got()}")
                    if self.closed:
                        sel.modify(self.sock, selectors.EVENT_WRITE)
        finally:
            self.sock.setblocking(True)
        return True

    def recv_some(self, until, size=262144):
        """One recv() into the buffer. Returns "data", "eof", "reset" or "timeout"."""
        if self.closed:
            return self.closed
        left = self.ctx.bound(until - now())
        if left <= 0:
            return "timeout"
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(size)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            self.closed = "reset"
            return "reset"
        if not data:
            self.closed = "eof"
            return "eof"
        self.buf += data
        return "data"

    def got(self):
        return f"; received {short(self.buf)}" if self.buf else "; received nothing"

    def read_head(self, timeout=READ_TIMEOUT, what=None):
        """Reads a status line and headers; returns a Response whose body is not read yet."""
        what = what or f"after sending {short(self.sent)}"
        until = now() + timeout
        scanned = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", max(0, scanned - 3))
            if end >= 0:
                break
            scanned = len(self.buf)
            if scanned > 65536:
                fail(f"{what}: no end of a response head in {scanned} bytes{self.got()}")
            state = self.recv_some(until)
            if state == "timeout":
                fail(f"{what}: no complete response head within {timeout:g} s{self.got()}")
            if state != "data":
                fail(f"{what}: connection {state} before a complete response head{self.got()}")
        raw = bytes(self.buf[:end])
        del self.buf[:end + 4]
        resp = parse_head(raw)
        resp.request = self.sent
        return resp

    def read_exact(self, n, timeout=READ_TIMEOUT, what="body"):
        until = now() + timeout
        while len(self.buf) < n:
            state = self.recv_some(until)
            if state == "timeout":
                fail(f"{what}: {len(self.buf)} of {n} bytes within {timeout:g} s "
                     f"(request {short(self.sent)})")
            if state != "data":
                fail(f"{what}: connection {state} after {len(self.buf)} of {n} bytes "
                     f"(request {short(self.sent)})")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, head_only=False, timeout=READ_TIMEOUT, what=None):
        """Reads one complete response: head, then Content-Length bytes unless head_only."""
        until = now() + timeout
        resp = self.read_head(timeout, what)
        resp.head_only = head_only
        if not head_only:
            resp.body = self.read_exact(resp.length, max(0.0, until - now()),
                                        f"body of {resp.status_line!r}")
        return resp

    def expect_eof(self, timeout=2.0, what="after the last response", allow_reset=False):
        """The server closes the connection without sending anything more; then the client closes
        too, as a real one would (a lingering close on a serial server waits for that)."""
        until = now() + timeout
        while True:
            if self.buf:
                fail(f"{what}: expected the server to close, got more bytes {short(self.buf)}")
            state = self.recv_some(until)
            if state == "eof" or (allow_reset and state == "reset"):
                self.sock.close()
                return state
            if state == "reset":
                fail(f"{what}: connection reset instead of closed (a lingering close lets the "
                     f"client read the response and then EOF)")
            if state == "timeout":
                fail(f"{what}: the server did not close the connection within {timeout:g} s")

    def reset(self):
        """Closes with SO_LINGER 0: the server sees a reset."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def gather(ctx, conns, timeout, want):
    """Reads from many connections at once until want(conn) holds for each (or it closed).
    Returns the connections still waiting when the timeout ran out."""
    until = now() + timeout
    waiting = [c for c in conns if not (want(c) or c.closed)]
    with selectors.DefaultSelector() as sel:
        for c in waiting:
            sel.register(c.sock, selectors.EVENT_READ, c)
        while waiting:
            left = ctx.bound(until - now())
            if left <= 0:
                break
            for key, _ in sel.select(left):
                c = key.data
                c.recv_some(now() + 0.5)
                if want(c) or c.closed:
                    sel.unregister(c.sock)
                    waiting.remove(c)
    return waiting


def has_response(c):
    """A complete response (head and Content-Length body) is in c's buffer."""
    end = c.buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", bytes(c.buf[:end + 2]), re.I)
    return m is not None and len(c.buf) >= end + 4 + int(m.group(1))


# --- checks ---------------------------------------------------------------------------------------

def check(ctx, r, status, *, body=None, ctype=None, connection=None, length=None, allow=None):
    """Checks a response against docs/protocol.md: status line, header order (Server, Date,
    Content-Type, Content-Length, Connection when the server closes or answers HTTP/1.0
    keep-alive, Allow for 405), Server name, IMF-fixdate Date near now, error bodies, and the given
    body / Content-Type / Connection / Allow. connection=None means no Connection header."""
    context = f"(request {short(r.request)}; response {r.describe()})"
    if r.status != status:
        fail(f"expected status {status}, got {r.status_line!r} {context}")
    problems = []
    reason = REASONS[status]
    if r.reason != reason:
        problems.append(f"status line {r.status_line!r}, expected 'HTTP/1.1 {status} {reason}'")
    names = [k for k, _ in r.headers]
    expected = ["Server", "Date", "Content-Type", "Content-Length"]
    if connection:
        expected.append("Connection")
    if status == 405:
        expected.append("Allow")
    if names != expected:
        problems.append(f"header names {names}, expected {expected}")
    server = r.header("Server")
    if server != f"c10k-{ctx.name}":
        problems.append(f"Server {server!r}, expected 'c10k-{ctx.name}'")
    date = r.header("Date")
    problem = check_date(date)
    if problem:
        problems.append(problem)
    if ctype is None:
        ctype = "text/plain" if status != 200 else None
    if ctype is not None and r.header("Content-Type") != ctype:
        problems.append(f"Content-Type {r.header('Content-Type')!r}, expected {ctype!r}")
    got_connection = r.header("Connection")
    if got_connection != connection:
        problems.append(f"Connection {got_connection!r}, expected "
                        f"{connection if connection else 'no Connection header'!r}")
    if r.head_only:
        if length is not None and r.length != length:
            problems.append(f"HEAD Content-Length {r.length}, expected {length}")
    else:
        error_body = f"{status} {reason}\n".encode()
        if status >= 400 and r.body != error_body:
            problems.append(f"error body {short(r.body)}, expected {error_body!r}")
        if body is not None and r.body != body:
            problems.append(body_difference(r.body, body))
    if allow is not None and r.header("Allow") != allow:
        problems.append(f"Allow {r.header('Allow')!r}, expected {allow!r}")
    if problems:
        fail("; ".join(problems) + " " + context)


def check_date(value):
    """None if value is an IMF-fixdate within DATE_SLACK seconds of now, else the problem."""
    if value is None:
        return "no Date header"
    m = IMF_FIXDATE.fullmatch(value)
    if not m:
        return f"Date {value!r} is not an IMF-fixdate ('Tue, 24 Nov 2026 10:51:20 GMT')"
    wday, day, mon, year, hh, mm, ss = m.groups()
    try:
        stamp = calendar.timegm((int(year), MONTHS.index(mon) + 1, int(day), int(hh), int(mm),
                                 int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        return f"Date {value!r} is not a valid date"
    if WEEKDAYS[time.gmtime(stamp).tm_wday] != wday or time.gmtime(stamp).tm_mday != int(day):
        return f"Date {value!r}: wrong weekday or day of month"
    if abs(stamp - time.time()) > DATE_SLACK:
        return f"Date {value!r} is {stamp - time.time():+.0f} s from now"
    return None


def body_difference(got, expected):
    if len(got) != len(expected):
        return f"body of {len(got)} bytes {short(got, 60)}, expected {len(expected)} bytes " \
               f"{short(expected, 60)}"
    at = next(i for i in range(len(got)) if got[i] != expected[i])
    return f"body differs first at byte {at}: {short(got[at:at + 20])}, expected " \
           f"{short(expected[at:at + 20])}"


def serves_new_connection(ctx, what="afterwards"):
    """A new connection gets GET / answered."""
    c = ctx.conn()
    c.send(get("/"))
    r = c.read_response(what=f"{what}, a new connection's GET /")
    check(ctx, r, 200, body=b"Hello, World!")
    c.close()


def elapsed_within(what, elapsed, low, high):
    if not low <= elapsed <= high:
        fail(f"{what} after {elapsed:.2f} s, expected between {low:.2f} and {high:.2f} s")


# --- servers --------------------------------------------------------------------------------------

LIVE_SERVERS = set()
LIVE_LOCK = threading.Lock()


class Server:
    """One server process: started in its own session, stdout a pipe, stderr a temp file."""

    def __init__(self, binary, args, nofile=None, address_space=None, env=None):
        self.binary = binary
        self.stderr_file = tempfile.TemporaryFile()
        self.stdout = b""
        self.port = None
        self.stopped = False
        self.problems = []   # lifecycle failures (exit status, time to exit, leftovers)
        preexec = None
        if nofile is not None or address_space is not None:
            def preexec():
                if nofile is not None:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
                if address_space is not None:
                    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        self.proc = subprocess.Popen([binary, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     preexec_fn=preexec, start_new_session=True,
                                     env={**os.environ, **env} if env else None)
        with LIVE_LOCK:
            LIVE_SERVERS.add(self)

    def wait_listening(self, timeout=5.0):
        fd = self.proc.stdout.fileno()
        until = now() + timeout
        while b"\n" not in self.stdout:
            left = until - now()
            ready = selectors.DefaultSelector()
            ready.register(fd, selectors.EVENT_READ)
            events = ready.select(max(0.0, left)) if left > 0 else []
            ready.close()
            if not events:
                fail(f"no 'listening on' line on stdout within {timeout:g} s "
                     f"(stdout {short(self.stdout)}){self.stderr_tail()}")
            data = os.read(fd, 4096)
            if not data:
                self.proc.wait(timeout=1)
                fail(f"server exited with status {self.proc.returncode} before listening "
                     f"(stdout {short(self.stdout)}){self.stderr_tail()}")
            self.stdout += data
        line = self.stdout.split(b"\n", 1)[0]
        m = re.fullmatch(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if not m or not 0 < int(m.group(1)) < 65536:
            fail(f"first stdout line {short(line)}, expected b'listening on 127.0.0.1:PORT'")
        self.port = int(m.group(1))
        return self.port

    def stderr_text(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode("utf-8", "replace")

    def stderr_tail(self, lines=8):
        text = self.stderr_text().rstrip("\n")
        if not text:
            return "; stderr empty"
        tail = text.split("\n")[-lines:]
        return "; stderr ends:\n" + "\n".join("    " + line for line in tail)

    def stop(self, sig=signal.SIGTERM, limit=1.0):
        """Sends sig and waits up to limit seconds for exit status 0; returns the seconds it took.
        A server that does not exit is killed and the problem recorded."""
        if self.stopped:
            return 0.0
        self.stopped = True
        sig_name = signal.Signals(sig).name
        start = now()
        if self.proc.poll() is not None:
            self.problems.append(f"server had already exited with status "
                                 f"{self.proc.returncode} before {sig_name}{self.stderr_tail()}")
            return 0.0
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            # What its threads were blocked in, taken before the kill: a rare stop that hangs
            # (seen about once in 300 TSan runs) can then be told apart from a slow one.
            threads = thread_states(self.proc.pid)
            self.kill()
            self.problems.append(f"did not exit within {limit:g} s of {sig_name} (killed); "
                                 f"its threads then: {threads}{self.stderr_tail()}")
            return now() - start
        took = now() - start
        rc = self.proc.returncode
        if rc != 0:
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
            self.problems.append(f"{how} after {sig_name}, expected status 0"
                                 f"{self.stderr_tail()}")
        return took

    def kill(self):
        for target in (lambda: os.killpg(self.proc.pid, signal.SIGKILL),
                       lambda: self.proc.kill()):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def finish(self):
        """Stops the server if the case did not, then returns every problem found: exit, stdout,
        processes left in its session, sanitizer reports. Also returns the parsed stats."""
        self.stop()
        if self.proc.poll() is None:
            self.kill()
        # The rest of stdout: the process is gone, so this ends at EOF (or a left-behind child).
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            until = now() + 0.5
            while until > now() and sel.select(until - now()):
                data = os.read(fd, 65536)
                if not data:
                    break
                self.stdout += data
        self.proc.stdout.close()
        expected = f"listening on 127.0.0.1:{self.port}\n".encode()
        if self.port is not None and self.stdout != expected:
            self.problems.append(f"stdout held {short(self.stdout)}, expected only {expected!r}")
        # No process may outlive the server in its session (fork/prefork children).
        for _ in range(20):
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.025)
        else:
            self.problems.append("processes were left behind in the server's session (killed)")
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        with LIVE_LOCK:
            LIVE_SERVERS.discard(self)
        text = self.stderr_text()
        self.stderr_file.close()
        report = sanitizer_report(text)
        if report:
            self.problems.append(report)
        # The exact form is checked once, by the stats_line_form case; here any line with every
        # documented counter will do, so one deviation does not hide every other result.
        stats = None
        lines = [line for line in text.split("\n") if line.startswith("stats:")]
        pairs = re.findall(r" ([a-z0-9_]+)=(\d+)", lines[0]) if len(lines) == 1 else []
        if pairs and all(k in dict(pairs) for k in STATS_KEYS):
            stats = {k: int(v) for k, v in pairs}
            stats["_line"] = lines[0]
        elif self.port is not None and self.proc.returncode == 0:
            self.problems.append(f"expected one 'stats: accepted=N ...' line on stderr with "
                                 f"{', '.join(STATS_KEYS)}, got {lines if lines else 'none'}")
        return self.problems, stats


def thread_states(pid):
    """Each thread's state, kernel wait channel and system call number, counted: for example
    "3 threads: 2x S futex_wait_queue 202, 1x R 0 running"."""
    states = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return "the process was gone"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"{base}/wchan") as f:
                wchan = f.read().strip() or "0"
            with open(f"{base}/syscall") as f:
                call = f.read().split()[0]
        except (OSError, IndexError):
            continue
        key = f"{state} {wchan} {call}"
        states[key] = states.get(key, 0) + 1
    listed = ", ".join(f"{n}x {key}" for key, n in sorted(states.items(), key=lambda kv: -kv[1]))
    return f"{sum(states.values())} threads: {listed}"


def sanitizer_report(text):
    """The first lines of a sanitizer report in text, or None."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if any(marker in line for marker in SANITIZER_MARKERS):
            return "sanitizer report on stderr:\n" + "\n".join("    " + x for x in lines[i:i + 10])
    return None


# --- cases ----------------------------------------------------------------------------------------

class Case:
    def __init__(self, name, fn, limit, doc, concurrent=None, bounded=None, alone=False, waits=False,
                 server=True, nofile=None, args=None, address_space=None, env=None):
        self.name = name
        self.fn = fn
        self.limit = limit
        self.doc = doc
        self.concurrent = concurrent  # why a --serial server skips it, or None
        self.bounded = bounded        # why a --bounded server skips it, or None
        self.alone = alone            # measures time or CPU: never runs beside other cases
        # ...but spends that time waiting for one of the server's deadlines, using next to no CPU:
        # it runs beside the other waiting cases (each with its own server), which costs none of
        # the 1.5 s lateness a deadline is allowed and saves most of make test's waiting. (Not
        # send_timeout: its server streams 64 MiB into a full socket while the deadline runs, and
        # under TSan beside seven starting servers it was once seen 1.5 s late.)
        self.waits = waits
        self.server = server          # False: the case runs the binary itself (command line)
        self.nofile = nofile          # RLIMIT_NOFILE for the server
        self.address_space = address_space  # RLIMIT_AS for the server, bytes
        self.env = env                # extra environment variables for the server
        self.args = args or SERVER_ARGS


CASES = []


def case(name, limit=5.0, doc=None, **kw):
    def register(fn):
        text = doc or " ".join((fn.__doc__ or "").split())
        CASES.append(Case(name, fn, limit, text, **kw))
        return fn
    return register


class Ctx:
    """What a case works with: the server's name and port, connections, stats expectations."""

    def __init__(self, binary, name, limit, flags=()):
        self.binary = binary
        self.name = name
        self.flags = list(flags)
        self.limit = limit
        self.deadline = now() + limit
        self.server = None
        self.port = None
        self.conns = []
        self.stat_checks = []

    def bound(self, seconds):
        """seconds, cut to what is left of the case's time limit."""
        left = self.deadline - now()
        if left <= 0:
            fail(f"case time limit of {self.limit:g} s reached")
        return min(seconds, left)

    def conn(self, **kw):
        return Conn(self, **kw)

    def expect_stats(self, **exact):
        """After the server exits its stats line must show these values."""
        for key, value in exact.items():
            self.stat_checks.append((f"{key}={value}", lambda s, k=key, v=value: s[k] == v))

    def expect_stat(self, description, predicate):
        self.stat_checks.append((description, predicate))

    def stop(self, sig):
        return self.server.stop(sig)


# Protocol: routes ---------------------------------------------------------------------------------

@case("get_root")
def _(ctx):
    """GET /: exact status line, headers Server, Date, Content-Type, Content-Length in that order,
    Date an IMF-fixdate within 5 s of now, body `Hello, World!`."""
    c = ctx.conn()
    c.send(get("/"))
    r = c.read_response()
    check(ctx, r, 200, body=b"Hello, World!", ctype="text/plain")
    if r.status_line != "HTTP/1.1 200 OK":
        fail(f"status line {r.status_line!r}")
    ctx.expect_stats(accepted=1, requests=1)


@case("stats_line_form")
def _(ctx):
    """After GET / and SIGTERM, stderr holds exactly one line `stats: accepted=1 requests=1
    shed=0 status400=0 ... io_errors=0` with exactly the documented counters in the documented
    order."""
    c = ctx.conn()
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stat("the line to be exactly 'stats: " + " ".join(f"{k}=N" for k in STATS_KEYS)
                    + "'", lambda s: STATS_RE.fullmatch(s["_line"]) is not None)
    ctx.expect_stats(accepted=1, requests=1)


@case("head_root")
def _(ctx):
    """HEAD /: the headers GET / gets (Content-Length 13), no body; then GET / on the same
    connection is answered (no stray body bytes in between)."""
    c = ctx.conn()
    c.send(req("HEAD", "/"))
    h = c.read_response(head_only=True)
    check(ctx, h, 200, ctype="text/plain", length=13)
    c.send(get("/"))
    g = c.read_response(what="GET / after HEAD / on the same connection")
    check(ctx, g, 200, body=b"Hello, World!", ctype="text/plain")
    if [k for k, _ in h.headers] != [k for k, _ in g.headers]:
        fail(f"HEAD headers {h.headers} differ from GET headers {g.headers}")
    ctx.expect_stats(accepted=1, requests=2)


@case("head_bytes")
def _(ctx):
    """HEAD /bytes/100000 and HEAD /bytes/67108864: the Content-Length and no body; GET /bytes/3
    next is answered."""
    c = ctx.conn()
    c.send(req("HEAD", "/bytes/100000"))
    check(ctx, c.read_response(head_only=True), 200, ctype="application/octet-stream",
          length=100000)
    c.send(req("HEAD", f"/bytes/{BIG}"))
    check(ctx, c.read_response(head_only=True), 200, ctype="application/octet-stream",
          length=BIG)
    c.send(get("/bytes/3"))
    check(ctx, c.read_response(), 200, body=b"abc", ctype="application/octet-stream")


@case("head_not_found")
def _(ctx):
    """HEAD /nope: 404 with the error body's Content-Length (14) but no body; kept."""
    c = ctx.conn()
    c.send(req("HEAD", "/nope"))
    check(ctx, c.read_response(head_only=True), 404, length=len(b"404 Not Found\n"))
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")


def bytes_case(n, target=None):
    @case(f"bytes_{n}" if target is None else "bytes_query_ignored",
          doc=f"GET {target or f'/bytes/{n}'}: 200, application/octet-stream, a {n}-byte body "
              f"of the a-z pattern.")
    def _(ctx):
        c = ctx.conn()
        c.send(get(target or f"/bytes/{n}"))
        check(ctx, c.read_response(), 200, body=pattern(n), ctype="application/octet-stream")
        ctx.expect_stats(accepted=1, requests=1)


for _n in (0, 1, 26, 27, 100000):
    bytes_case(_n)
bytes_case(5, "/bytes/5?x=1&y")


def kept_400_case(name, target, why):
    @case(name, doc=f"GET {target} ({why}): 400, connection kept (GET / next is answered).")
    def _(ctx):
        c = ctx.conn()
        c.send(get(target))
        check(ctx, c.read_response(), 400)
        c.send(get("/"))
        check(ctx, c.read_response(what=f"GET / after the 400 for {target}"), 200,
              body=b"Hello, World!")
        ctx.expect_stats(accepted=1, requests=2, status400=1)


kept_400_case("bytes_over_limit", "/bytes/67108865", "one over the limit")
kept_400_case("bytes_not_digits", "/bytes/abc", "not digits")
kept_400_case("bytes_empty", "/bytes/", "empty number")
kept_400_case("bytes_negative", "/bytes/-1", "a sign is not a digit")
kept_400_case("bytes_overflow", "/bytes/18446744073709551617", "2^64+1 must not wrap to 1")
kept_400_case("cpu_over_limit", "/cpu/1000001", "one over the limit")
kept_400_case("cpu_empty", "/cpu/", "empty number")
kept_400_case("sleep_over_limit", "/sleep/10001", "one over the limit")
kept_400_case("sleep_not_digits", "/sleep/5x", "not all digits")


@case("cpu_1000")
def _(ctx):
    """GET /cpu/1000: 200, text/plain, body `OK\\n`."""
    c = ctx.conn()
    c.send(get("/cpu/1000"))
    check(ctx, c.read_response(), 200, body=b"OK\n", ctype="text/plain")


@case("sleep_50")
def _(ctx):
    """GET /sleep/50: 200 `OK\\n`, and not before 50 ms."""
    c = ctx.conn()
    start = now()
    c.send(get("/sleep/50"))
    r = c.read_response()
    took = now() - start
    check(ctx, r, 200, body=b"OK\n", ctype="text/plain")
    if took < 0.050:
        fail(f"/sleep/50 answered after {took * 1000:.1f} ms")


@case("echo_body")
def _(ctx):
    """POST /echo with an 11-byte body: 200, application/octet-stream, the same body."""
    c = ctx.conn()
    c.send(post_echo(b"hello world"))
    check(ctx, c.read_response(), 200, body=b"hello world", ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=1)


@case("echo_empty")
def _(ctx):
    """POST /echo with Content-Length: 0: 200 with an empty body; kept."""
    c = ctx.conn()
    c.send(post_echo(b""))
    check(ctx, c.read_response(), 200, body=b"", ctype="application/octet-stream")
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")


@case("echo_no_length")
def _(ctx):
    """POST /echo without Content-Length has no body (RFC 9112 6.3): 200, empty; kept."""
    c = ctx.conn()
    c.send(req("POST", "/echo"))
    check(ctx, c.read_response(), 200, body=b"", ctype="application/octet-stream")
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")


@case("echo_query_ignored")
def _(ctx):
    """POST /echo?x=1: routed as /echo."""
    c = ctx.conn()
    c.send(req("POST", "/echo?x=1", ["Content-Length: 4"], b"ping"))
    check(ctx, c.read_response(), 200, body=b"ping", ctype="application/octet-stream")


@case("query_ignored")
def _(ctx):
    """GET /?a=b: routed as /."""
    c = ctx.conn()
    c.send(get("/?a=b"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!", ctype="text/plain")


@case("not_found_kept")
def _(ctx):
    """GET /nope: 404 `404 Not Found\\n`; GET / on the same connection is answered."""
    c = ctx.conn()
    c.send(get("/nope"))
    check(ctx, c.read_response(), 404)
    c.send(get("/"))
    check(ctx, c.read_response(what="GET / after the 404"), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=2)


@case("get_body_discarded")
def _(ctx):
    """GET / with a 5-byte body: the body is read and discarded, so GET /bytes/2 after it (same
    send) is answered in step."""
    c = ctx.conn()
    c.send(req("GET", "/", ["Content-Length: 5"], b"hello") + get("/bytes/2"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    check(ctx, c.read_response(), 200, body=b"ab", ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=2)


def method_405_case(name, method, target, body, allow, refused):
    raw = req(method, target, [f"Content-Length: {len(body)}"] if body else [], body)

    @case(name, doc=f"{method} {target}{' with a body' if body else ''}: 405 with "
                    f"{f'Allow: {allow}' if allow else 'the route Allow (without ' + refused + ')'}"
                    f", connection kept (and in step).")
    def _(ctx):
        c = ctx.conn()
        c.send(raw + get("/bytes/4"))
        r = c.read_response()
        check(ctx, r, 405, allow=allow)
        methods = [m.strip() for m in (r.header("Allow") or "").split(",")]
        if refused in methods:
            fail(f"Allow {r.header('Allow')!r} lists the refused method {refused}")
        check(ctx, c.read_response(what=f"GET /bytes/4 after the 405 for {method} {target}"),
              200, body=b"abcd", ctype="application/octet-stream")
        ctx.expect_stats(accepted=1, requests=2, status405=1)


method_405_case("method_put_405", "PUT", "/", b"hello", "GET, HEAD, POST", "PUT")
method_405_case("method_delete_405", "DELETE", "/x", b"", "GET, HEAD, POST", "DELETE")
method_405_case("post_root_405", "POST", "/", b"abc", None, "POST")
method_405_case("get_echo_405", "GET", "/echo", b"", None, "GET")
method_405_case("method_lowercase_405", "get", "/", b"", "GET, HEAD, POST", "get")


# Protocol: request errors -------------------------------------------------------------------------

def head_of(size, terminated=True):
    """A GET / head of exactly size bytes (request line through the empty line)."""
    start = b"GET / HTTP/1.1\r\nHost: c10k\r\nX-Pad: "
    end = b"\r\n\r\n" if terminated else b""
    return start + b"p" * (size - len(start) - len(end)) + end


@case("head_8192_accepted")
def _(ctx):
    """A request head of exactly 8192 bytes (through the empty line) is served."""
    c = ctx.conn()
    c.send(head_of(8192))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=1, status431=0)


def refused_case(name, raw, status, doc, **kw):
    """One request refused with status and close: the whole error response is readable, then EOF
    (not a reset: the server closes lingering), then a new connection is served. Bytes after the
    refused part go on being sent after the server answered."""
    @case(name, doc=f"{doc}: {status} with Connection: close, then EOF; a new connection is "
                    f"served.", **kw)
    def _(ctx):
        c = ctx.conn()
        c.send_while_reading(raw, refused=True)
        check(ctx, c.read_response(), status, connection="close")
        c.expect_eof(what=f"after the {status} for {short(raw, 60)}")
        serves_new_connection(ctx)
        counter = {f"status{status}": 1} if f"status{status}" in STATS_KEYS else {}
        ctx.expect_stats(accepted=2, requests=2, **counter)


refused_case("head_8193_431", head_of(8193), 431, "A head of 8193 bytes")
refused_case("head_endless_431", head_of(262144, terminated=False), 431,
             "256 KiB of header bytes and no end of the head (sent on after the answer)")

BAD_400 = [
    ("header_no_colon", b"GET / HTTP/1.1\r\nHost: c10k\r\nNoColon\r\n\r\n"),
    ("header_space_before_colon", b"GET / HTTP/1.1\r\nHost: c10k\r\nX-A : b\r\n\r\n"),
    ("header_empty_name", b"GET / HTTP/1.1\r\nHost: c10k\r\n: b\r\n\r\n"),
    ("header_nul_in_value", b"GET / HTTP/1.1\r\nHost: c10k\r\nX-A: a\x00b\r\n\r\n"),
    ("header_ctl_01_in_value", b"GET / HTTP/1.1\r\nHost: c10k\r\nX-A: a\x01b\r\n\r\n"),
    ("header_del_in_value", b"GET / HTTP/1.1\r\nHost: c10k\r\nX-A: a\x7fb\r\n\r\n"),
    ("header_obs_fold", b"GET / HTTP/1.1\r\nHost: c10k\r\nX-A: a\r\n b\r\n\r\n"),
    ("bare_lf_line_endings", b"GET / HTTP/1.1\nHost: c10k\n\n"),
    ("bare_lf_in_header", b"GET / HTTP/1.1\r\nHost: c10k\nX-A: b\r\n\r\n"),
    ("request_line_two_spaces", b"GET  / HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("method_not_token", b"G(T / HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("target_no_slash", b"GET x HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("target_absolute_form", b"GET http://c10k/ HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("version_lowercase", b"GET / http/1.1\r\nHost: c10k\r\n\r\n"),
    ("target_del", b"GET /a\x7f HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("target_non_ascii", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: c10k\r\n\r\n"),
    ("request_line_trailing_space", b"GET / HTTP/1.1 \r\nHost: c10k\r\n\r\n"),
    ("http11_no_host", b"GET / HTTP/1.1\r\n\r\n"),
    ("http11_two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("content_length_abc", b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: abc\r\n\r\n"),
    ("content_length_negative",
     b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: -1\r\n\r\n"),
    ("content_length_plus",
     b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: +5\r\n\r\nhello"),
    ("content_length_conflict",
     b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
]
for _name, _raw in BAD_400:
    refused_case(f"bad_{_name}", _raw, 400, f"{short(_raw, 90)}")

refused_case("version_http20_505", b"GET / HTTP/2.0\r\nHost: c10k\r\n\r\n", 505, "HTTP/2.0")
refused_case("version_http09_505", b"GET / HTTP/0.9\r\nHost: c10k\r\n\r\n", 505, "HTTP/0.9")
refused_case("version_http12_505", b"GET / HTTP/1.2\r\nHost: c10k\r\n\r\n", 505, "HTTP/1.2")
refused_case("transfer_encoding_chunked_501",
             b"POST /echo HTTP/1.1\r\nHost: c10k\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\n", 501, "Transfer-Encoding: chunked with a chunked body")
refused_case("transfer_encoding_gzip_501",
             b"GET / HTTP/1.1\r\nHost: c10k\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
             "Transfer-Encoding: gzip")
refused_case("content_length_1mib_plus_1_413",
             b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: 1048577\r\n\r\n", 413,
             "Content-Length: 1048577 sent without its body (answered at once, not after a 408)")
refused_case("content_length_1mib_plus_1_with_body_413",
             b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: 1048577\r\n\r\n"
             + b"b" * 1048577, 413,
             "Content-Length: 1048577 with the body sent on after the answer (a lingering close "
             "lets the client read the 413)")
refused_case("content_length_overflow_413",
             b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: 18446744073709551617\r\n\r\n",
             413, "Content-Length: 2^64+1 (must not wrap)")


@case("content_length_same_twice")
def _(ctx):
    """Content-Length: 5 given twice with the same value is accepted: the body is echoed."""
    c = ctx.conn()
    c.send(req("POST", "/echo", ["Content-Length: 5", "Content-Length: 5"], b"hello"))
    check(ctx, c.read_response(), 200, body=b"hello", ctype="application/octet-stream")


@case("header_tab_in_value")
def _(ctx):
    """HTAB inside a header value and as OWS, an empty value and obs-text (0xE9) are allowed:
    200."""
    c = ctx.conn()
    c.send(b"GET / HTTP/1.1\r\nHost:\tc10k\t\r\nX-A: a\tb\r\nX-Empty:\r\nX-Obs: caf\xe9\r\n\r\n")
    check(ctx, c.read_response(), 200, body=b"Hello, World!")


@case("header_names_case_insensitive", limit=6.0)
def _(ctx):
    """`hOsT:` counts as Host and `cOnNeCtIoN: CLOSE` as close: 200 with Connection: close, EOF."""
    c = ctx.conn()
    c.send(b"GET / HTTP/1.1\r\nhOsT: c10k\r\ncOnNeCtIoN: CLOSE\r\n\r\n")
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    c.expect_eof()


@case("echo_1mib", limit=10.0)
def _(ctx):
    """POST /echo with Content-Length: 1048576 (the limit) and a random body: echoed exactly."""
    body = os.urandom(1048576)
    c = ctx.conn()
    c.send_while_reading(post_echo(body))
    check(ctx, c.read_response(timeout=5.0), 200, body=body, ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=1, status413=0)


# Protocol: connection management ------------------------------------------------------------------

@case("http10_close")
def _(ctx):
    """GET / HTTP/1.0: 200 with Connection: close, then EOF; a new connection is served."""
    c = ctx.conn()
    c.send(req("GET", "/", version="HTTP/1.0", host=False))
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    c.expect_eof(what="after the HTTP/1.0 response")
    serves_new_connection(ctx)
    ctx.expect_stats(accepted=2, requests=2)


@case("http10_keep_alive")
def _(ctx):
    """HTTP/1.0 with Connection: keep-alive (then Keep-Alive): answered with Connection: keep-alive
    and kept;
    a third HTTP/1.0 request without it gets Connection: close, then EOF."""
    c = ctx.conn()
    for target, body, option in (("/", b"Hello, World!", "keep-alive"),
                                 ("/bytes/3", b"abc", "Keep-Alive")):
        c.send(req("GET", target, [f"Connection: {option}"], version="HTTP/1.0", host=False))
        check(ctx, c.read_response(), 200, body=body, connection="keep-alive")
    c.send(req("GET", "/", version="HTTP/1.0", host=False))
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    c.expect_eof()
    ctx.expect_stats(accepted=1, requests=3)


@case("http11_connection_close")
def _(ctx):
    """HTTP/1.1 with Connection: close: 200 with Connection: close, then EOF; a new connection is
    served."""
    c = ctx.conn()
    c.send(get("/", "Connection: close"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    c.expect_eof(what="after the Connection: close response")
    serves_new_connection(ctx)
    ctx.expect_stats(accepted=2, requests=2)


# struct tcp_info (linux/tcp.h): tcpi_segs_in and tcpi_data_segs_in, both since Linux 4.6.
TCPI_SEGS_IN, TCPI_DATA_SEGS_IN = 140, 152


@case("close_fin_on_response")
def _(ctx):
    """GET / with Connection: close: the FIN comes on the response's last segment, not in a segment
    of its own (the last output goes with MSG_MORE or corked, so the close sends both; docs/churn.md).
    Counted by the client's TCP_INFO at EOF: of the segments it received, only the SYN-ACK and at
    most one ACK of the request may carry no data."""
    c = ctx.conn()
    c.send(get("/", "Connection: close"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    state = c.recv_some(now() + 2.0)
    if state != "eof":
        fail(f"after the Connection: close response: {state} instead of EOF{c.got()}")
    info = c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        fail(f"TCP_INFO has {len(info)} bytes: this kernel does not count segments")
    (segs_in,) = struct.unpack_from("I", info, TCPI_SEGS_IN)
    (data_segs_in,) = struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)
    if segs_in - data_segs_in > 2:
        fail(f"the client received {segs_in} segments, {data_segs_in} with data: the FIN came in "
             f"a segment of its own (expected at most the SYN-ACK and one ACK without data)")
    c.sock.close()
    ctx.expect_stats(accepted=1, requests=1)


@case("http11_keep_alive_header")
def _(ctx):
    """HTTP/1.1 with Connection: keep-alive: kept, and the response has no Connection header (the
    header is only for a close or an HTTP/1.0 keep-alive)."""
    c = ctx.conn()
    c.send(get("/", "Connection: keep-alive"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=2)


@case("keepalive_300", limit=10.0)
def _(ctx):
    """300 requests one after another on one connection, each answered; stats accepted=1,
    requests=300."""
    c = ctx.conn()
    for i in range(300):
        target = "/" if i % 2 == 0 else f"/bytes/{i % 50}"
        c.send(get(target))
        r = c.read_response(what=f"request {i + 1} of 300 ({target}) on one connection")
        if i % 2 == 0:
            check(ctx, r, 200, body=b"Hello, World!")
        else:
            check(ctx, r, 200, body=pattern(i % 50), ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=300)


@case("pipeline_16")
def _(ctx):
    """GET /bytes/1 ... /bytes/16 sent in one send(): 16 responses, in order."""
    c = ctx.conn()
    c.send(b"".join(get(f"/bytes/{i}") for i in range(1, 17)))
    for i in range(1, 17):
        r = c.read_response(what=f"pipelined response {i} of 16")
        check(ctx, r, 200, body=pattern(i), ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=16)


@case("pipeline_mixed")
def _(ctx):
    """One send() of GET /bytes/3, POST /echo (body), HEAD /, PUT / (body), GET /nope, GET /cpu/10,
    GET /: answered in order, bodies kept in step."""
    c = ctx.conn()
    c.send(get("/bytes/3") + post_echo(b"ping") + req("HEAD", "/")
           + req("PUT", "/", ["Content-Length: 3"], b"xyz") + get("/nope") + get("/cpu/10")
           + get("/"))
    check(ctx, c.read_response(), 200, body=b"abc", ctype="application/octet-stream")
    check(ctx, c.read_response(), 200, body=b"ping", ctype="application/octet-stream")
    check(ctx, c.read_response(head_only=True), 200, length=13, ctype="text/plain")
    check(ctx, c.read_response(), 405, allow="GET, HEAD, POST")
    check(ctx, c.read_response(), 404)
    check(ctx, c.read_response(), 200, body=b"OK\n")
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=7, status405=1)


@case("pipeline_close_stops")
def _(ctx):
    """One send() of GET /bytes/1, GET / with Connection: close, GET /bytes/2: two responses,
    the second with Connection: close, then EOF (nothing after a close is answered)."""
    c = ctx.conn()
    c.send(get("/bytes/1") + get("/", "Connection: close") + get("/bytes/2"))
    check(ctx, c.read_response(), 200, body=b"a", ctype="application/octet-stream")
    check(ctx, c.read_response(), 200, body=b"Hello, World!", connection="close")
    c.expect_eof(what="after the Connection: close response in a pipeline")
    ctx.expect_stats(accepted=1, requests=2)


@case("pipeline_error_stops")
def _(ctx):
    """One send() of GET /bytes/1, a request with no colon in a header, GET /bytes/2: 200, then
    400 with Connection: close, then EOF."""
    c = ctx.conn()
    c.send(get("/bytes/1") + b"GET / HTTP/1.1\r\nHost: c10k\r\nNoColon\r\n\r\n" + get("/bytes/2"))
    check(ctx, c.read_response(), 200, body=b"a", ctype="application/octet-stream")
    check(ctx, c.read_response(), 400, connection="close")
    c.expect_eof(what="after the 400 in a pipeline")
    ctx.expect_stats(accepted=1, requests=2, status400=1)


@case("pipeline_backpressure", limit=10.0)
def _(ctx):
    """64 GET /bytes/65536 (4 MiB of responses) in one send(), nothing read for 0.5 s, then
    everything read: 64 correct responses in order (reading stops at the output limit and
    resumes)."""
    c = ctx.conn()
    c.send(b"".join(get(f"/bytes/{65536 + i}") for i in range(64)))
    time.sleep(0.5)
    for i in range(64):
        r = c.read_response(what=f"pipelined response {i + 1} of 64 after back-pressure")
        check(ctx, r, 200, body=pattern(65536 + i), ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=64)


@case("pipeline_echo_bodies", limit=10.0)
def _(ctx):
    """8 POST /echo with different random 100000-byte bodies in one stream: each echoed, in
    order."""
    bodies = [os.urandom(100000) for _ in range(8)]
    c = ctx.conn()
    c.send_while_reading(b"".join(post_echo(b) for b in bodies))
    for i, body in enumerate(bodies):
        r = c.read_response(what=f"pipelined echo {i + 1} of 8")
        check(ctx, r, 200, body=body, ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=8)


@case("pipeline_stream_then_error", limit=8.0)
def _(ctx):
    """One send() of GET /bytes/1000000 and a request with no colon in a header: the whole
    1000000-byte body first, then the 400 with Connection: close, then EOF."""
    c = ctx.conn()
    c.send(get("/bytes/1000000") + b"GET / HTTP/1.1\r\nHost: c10k\r\nNoColon\r\n\r\n")
    check(ctx, c.read_response(timeout=5.0), 200, body=pattern(1000000),
          ctype="application/octet-stream")
    check(ctx, c.read_response(), 400, connection="close")
    c.expect_eof(what="after the 400 that followed a streamed body")
    ctx.expect_stats(accepted=1, requests=2, status400=1)


@case("client_half_close")
def _(ctx):
    """GET /bytes/100000 and GET / in one send(), then shutdown(SHUT_WR): both are still
    answered in full, then the server closes (EOF)."""
    c = ctx.conn()
    c.send(get("/bytes/100000") + get("/"))
    c.sock.shutdown(socket.SHUT_WR)
    check(ctx, c.read_response(), 200, body=pattern(100000), ctype="application/octet-stream")
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    c.expect_eof(what="after answering a client that shut down its sending side")
    ctx.expect_stats(accepted=1, requests=2)


@case("split_byte_by_byte")
def _(ctx):
    """POST /echo with a 5-byte body sent one byte per send() (TCP_NODELAY, 4 ms apart): echoed."""
    c = ctx.conn(nodelay=True)
    raw = post_echo(b"hello")
    for i in range(len(raw)):
        c.send(raw[i:i + 1])
        time.sleep(0.004)
    c.sent = raw
    check(ctx, c.read_response(), 200, body=b"hello", ctype="application/octet-stream")
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=2, status408=0)


@case("slow_read_8mib", limit=12.0, alone=True)
def _(ctx):
    """GET /bytes/8388608 read slowly (SO_RCVBUF 16 KiB, paced over about 2 s): every byte
    follows the pattern and the connection is still kept after it."""
    n = 8388608
    c = ctx.conn(rcvbuf=16384)
    c.send(get(f"/bytes/{n}"))
    r = c.read_head()
    if r.status != 200 or r.length != n:
        fail(f"expected 200 with Content-Length {n}, got {r.describe()}")
    expected = pattern(n)
    got = 0
    start = now()
    pace = 2.0 / n  # seconds per byte
    while got < n:
        if not c.buf:
            state = c.recv_some(now() + READ_TIMEOUT, size=min(65536, n - got))
            if state != "data":
                fail(f"body: connection {state} after {got} of {n} bytes")
        chunk = bytes(c.buf[:n - got])
        del c.buf[:len(chunk)]
        if chunk != expected[got:got + len(chunk)]:
            fail(f"body: {body_difference(chunk, expected[got:got + len(chunk)])} "
                 f"(chunk at offset {got})")
        got += len(chunk)
        ahead = start + got * pace - now()
        if ahead > 0:
            time.sleep(ahead)
    r.body = b""
    check(ctx, r, 200, ctype="application/octet-stream")
    c.send(get("/bytes/2"))
    check(ctx, c.read_response(what="GET /bytes/2 after the slow 8 MiB"), 200, body=b"ab",
          ctype="application/octet-stream")
    ctx.expect_stats(accepted=1, requests=2, send_timeouts=0)


@case("echo_200k", limit=10.0)
def _(ctx):
    """POST /echo with a random 200000-byte body: echoed exactly; the connection is kept."""
    body = os.urandom(200000)
    c = ctx.conn()
    c.send_while_reading(post_echo(body))
    check(ctx, c.read_response(timeout=5.0), 200, body=body, ctype="application/octet-stream")
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=2)


@case("concurrent_300", limit=20.0)
def _(ctx):
    """300 connections opened first, then each sends GET /bytes/N with Connection: close, then
    all are read: 300 correct responses, each followed by EOF."""
    conns = [ctx.conn() for _ in range(300)]
    for i, c in enumerate(conns):
        c.send(get(f"/bytes/{i % 40}", "Connection: close"))
    waiting = gather(ctx, conns, 15.0, lambda c: False)
    if waiting:
        fail(f"{len(waiting)} of 300 connections were neither answered and closed within 15 s "
             f"(first waiting one has {short(waiting[0].buf)})")
    for i, c in enumerate(conns):
        r = c.read_response(timeout=0.1, what=f"connection {i + 1} of 300")
        check(ctx, r, 200, body=pattern(i % 40), ctype="application/octet-stream",
              connection="close")
        if c.buf or c.closed != "eof":
            fail(f"connection {i + 1}: after the response expected EOF, got {c.closed} with "
                 f"{short(c.buf)}")
    ctx.expect_stats(accepted=300, requests=300)


@case("client_reset_mid_response", limit=8.0)
def _(ctx):
    """GET /bytes/67108864, read 100 KB, then close with SO_LINGER 0 (reset): the server lives on,
    serves a new connection, and counts the reset (resets + io_errors >= 1)."""
    c = ctx.conn(rcvbuf=65536)
    c.send(get(f"/bytes/{BIG}"))
    r = c.read_head()
    if r.status != 200 or r.length != BIG:
        fail(f"expected 200 with Content-Length {BIG}, got {r.describe()}")
    body = c.read_exact(100000)
    if body != pattern(100000):
        fail(f"body: {body_difference(body, pattern(100000))}")
    c.reset()
    time.sleep(0.2)
    if ctx.server.proc.poll() is not None:
        fail(f"server exited with status {ctx.server.proc.returncode} after the client reset")
    serves_new_connection(ctx, "after a client reset mid-response")
    ctx.expect_stat("resets + io_errors >= 1", lambda s: s["resets"] + s["io_errors"] >= 1)
    ctx.expect_stats(accepted=2)


# Deadlines ----------------------------------------------------------------------------------------

def expect_408(ctx, c, first_byte, timeout, low, high, what):
    r = c.read_response(timeout=timeout, what=what)
    took = now() - first_byte
    check(ctx, r, 408, connection="close")
    elapsed_within(f"{what}: the 408 came", took, low, high)
    c.expect_eof(what="after the 408")


@case("slowloris_partial_head", limit=8.0, alone=True, waits=True)
def _(ctx):
    """A partial head and then nothing: 408 with Connection: close between header-timeout (1 s)
    and header-timeout + 1.5 s after the first byte, then EOF; a new connection is served."""
    c = ctx.conn()
    start = now()
    c.send(b"GET / HTTP/1.1\r\nHost: c10k\r\n")
    expect_408(ctx, c, start, HEADER_TIMEOUT + LATE + 0.5, HEADER_TIMEOUT - EARLY,
               HEADER_TIMEOUT + LATE, "a partial head")
    serves_new_connection(ctx)
    ctx.expect_stats(accepted=2, requests=2, status408=1)


@case("slow_body_408", limit=8.0, alone=True, waits=True)
def _(ctx):
    """POST /echo with Content-Length: 10, the head and 5 body bytes, then nothing: 408 within
    header-timeout + 1.5 s (the deadline covers the body too), then EOF."""
    c = ctx.conn()
    start = now()
    c.send(b"POST /echo HTTP/1.1\r\nHost: c10k\r\nContent-Length: 10\r\n\r\nhello")
    expect_408(ctx, c, start, HEADER_TIMEOUT + LATE + 0.5, HEADER_TIMEOUT - EARLY,
               HEADER_TIMEOUT + LATE, "half a body")
    ctx.expect_stats(accepted=1, requests=1, status408=1)


@case("slowloris_trickle", limit=8.0, alone=True, waits=True)
def _(ctx):
    """A head trickled one byte every 200 ms never completes: 408 within header-timeout + 1.5 s of
    the first byte (the deadline is not reset by each byte)."""
    c = ctx.conn(nodelay=True)
    raw = b"GET / HTTP/1.1\r\nHost: c10k\r\nX-Trickle: " + b"t" * 200
    start = now()
    sent = 0
    with selectors.DefaultSelector() as sel:
        sel.register(c.sock, selectors.EVENT_READ)
        while sent < len(raw) and now() - start < HEADER_TIMEOUT + LATE + 0.5:
            c.send(raw[sent:sent + 1], may_fail=True)
            sent += 1
            if sel.select(ctx.bound(0.2)):
                break
    c.sent = raw[:sent]
    expect_408(ctx, c, start, 1.0, HEADER_TIMEOUT - EARLY, HEADER_TIMEOUT + LATE,
               f"a head trickled a byte per 200 ms ({sent} bytes sent)")
    ctx.expect_stats(accepted=1, requests=1, status408=1)


@case("decimal_header_timeout", limit=6.0, alone=True, waits=True,
      args=["--port", "0", "--header-timeout", "0.5", "--idle-timeout", "2", "--send-timeout", "2"])
def _(ctx):
    """Started with --header-timeout 0.5 (decimal seconds): a partial head gets 408 between 0.5 s
    and 0.5 + 1.5 s."""
    c = ctx.conn()
    start = now()
    c.send(b"GET / HTTP/1.1\r\n")
    expect_408(ctx, c, start, 0.5 + LATE + 0.5, 0.5 - EARLY, 0.5 + LATE, "a partial head")


def accept_deferral(ctx):
    """Seconds the kernel holds back a connection that sends nothing, under --defer-accept=S: it is
    accepted when the client answers the first SYN-ACK retransmission at or after S seconds, and
    those come 1, 3, 7, 15... s after the connect (measured: S=1 at 1.07 s, 2 at 3.1 s, 4 at 7.1 s)."""
    seconds = 0
    for flag in ctx.flags:
        if flag.startswith("--defer-accept="):
            seconds = int(flag.split("=", 1)[1])
    if seconds <= 0:
        return 0.0
    retransmission = 1
    while retransmission < seconds:
        retransmission = 2 * retransmission + 1
    return float(retransmission)


@case("idle_new_connection", limit=8.0, alone=True, waits=True)
def _(ctx):
    """A connection that sends nothing is closed silently (EOF, no bytes) between idle-timeout
    (2 s) and idle-timeout + 1.5 s; counted in idle_timeouts."""
    deferred = accept_deferral(ctx)
    c = ctx.conn()
    start = now()
    c.expect_eof(deferred + IDLE_TIMEOUT + LATE + 0.5, what="an idle new connection")
    elapsed_within("an idle new connection was closed", now() - start, deferred + IDLE_TIMEOUT - EARLY,
                   deferred + IDLE_TIMEOUT + LATE)
    ctx.expect_stats(accepted=1, requests=0, idle_timeouts=1, status408=0)


@case("idle_after_request", limit=8.0, alone=True, waits=True)
def _(ctx):
    """A kept-alive connection idle after one request is closed silently between idle-timeout and
    idle-timeout + 1.5 s after its response."""
    c = ctx.conn()
    c.send(get("/"))
    check(ctx, c.read_response(), 200, body=b"Hello, World!")
    start = now()
    c.expect_eof(IDLE_TIMEOUT + LATE + 0.5, what="a kept-alive connection left idle")
    elapsed_within("the idle kept-alive connection was closed", now() - start,
                   IDLE_TIMEOUT - EARLY, IDLE_TIMEOUT + LATE)
    ctx.expect_stats(accepted=1, requests=1, idle_timeouts=1)


@case("idle_clock_after_slow_response", limit=8.0, alone=True, waits=True)
def _(ctx):
    """GET /sleep/2500 (longer than idle-timeout, 2 s): the idle clock starts when the response
    is done, not when the request was read, so GET / sent right after it on the same connection
    is answered."""
    c = ctx.conn()
    c.send(get("/sleep/2500"))
    check(ctx, c.read_response(timeout=4.0), 200, body=b"OK\n")
    c.send(get("/"))
    check(ctx, c.read_response(what="GET / sent at once after a 2.5 s /sleep response on the "
                                    "same connection"), 200, body=b"Hello, World!")
    ctx.expect_stats(accepted=1, requests=2, idle_timeouts=0)


@case("send_timeout", limit=15.0, alone=True)
def _(ctx):
    """GET /bytes/67108864 from a client that never reads (SO_RCVBUF 4 KiB): the server drops it
    within send-timeout (2 s) + 1.5 s and meanwhile (or, for a serial server, then) serves
    another client; the dropped connection ends in EOF or reset well short of 64 MiB;
    send_timeouts=1."""
    hog = ctx.conn(rcvbuf=4096)
    hog.send(get(f"/bytes/{BIG}"))
    start = now()
    time.sleep(0.1)
    other = ctx.conn()
    other.send(get("/"))
    r = other.read_response(timeout=SEND_TIMEOUT + LATE + 0.5,
                            what="another client while one client does not read")
    check(ctx, r, 200, body=b"Hello, World!")
    served = now() - start
    time.sleep(max(0.0, start + SEND_TIMEOUT + LATE - now()))
    # Drain what the kernel buffered: a dropped connection then ends; a live one would go on to
    # deliver all 64 MiB.
    until = now() + 5.0
    total = len(hog.buf)
    hog.buf.clear()
    while True:
        state = hog.recv_some(until)
        total += len(hog.buf)
        hog.buf.clear()
        if state in ("eof", "reset"):
            break
        if state == "timeout":
            fail(f"the non-reading client was not dropped: after {total} bytes nothing more and "
                 f"no EOF within 5 s")
        if total >= BIG:
            fail(f"the non-reading client was not dropped within {SEND_TIMEOUT + LATE:g} s: "
                 f"it received the whole 64 MiB body once it read")
    if ctx.name not in SERIAL and served > 1.0:
        fail(f"another client was served only after {served:.2f} s while one client did not "
             f"read, expected < 1 s")
    ctx.expect_stats(send_timeouts=1)


# Concurrency --------------------------------------------------------------------------------------

NEEDS_CONCURRENCY = "serves one connection at a time (--serial)"
NEEDS_UNBOUNDED = ("serves a fixed number of connections at once (--bounded): the others wait for a "
                   "worker by design, so 100 held connections cannot all be answered or shed")


@case("stalled_client_does_not_block", concurrent=NEEDS_CONCURRENCY, alone=True)
def _(ctx):
    """With one client connected and half a request sent (then nothing), another client's GET / is
    answered within 0.5 s."""
    stalled = ctx.conn()
    stalled.send(b"GET / HTTP/1.1\r\nHo")
    time.sleep(0.1)
    c = ctx.conn()
    start = now()
    c.send(get("/"))
    r = c.read_response(timeout=2.0, what="GET / while another client stalls mid-request")
    took = now() - start
    check(ctx, r, 200, body=b"Hello, World!")
    if took > 0.5:
        fail(f"GET / answered after {took:.2f} s while another client stalled, expected < 0.5 s")


@case("idle_clients_do_not_block", concurrent=NEEDS_CONCURRENCY, alone=True)
def _(ctx):
    """With one client connected and silent, and another kept alive after a request, a third
    client's GET / is answered within 0.5 s."""
    ctx.conn()
    kept = ctx.conn()
    kept.send(get("/"))
    check(ctx, kept.read_response(), 200, body=b"Hello, World!")
    c = ctx.conn()
    start = now()
    c.send(get("/"))
    r = c.read_response(timeout=2.0, what="GET / while two other clients are idle")
    took = now() - start
    check(ctx, r, 200, body=b"Hello, World!")
    if took > 0.5:
        fail(f"GET / answered after {took:.2f} s while other clients were idle, expected < 0.5 s")


def session_processes(sid):
    """The pids of the processes in session sid (a server and its children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                pids.append(int(entry))
    return pids


def session_cpu_seconds(sid):
    """{pid: CPU seconds} of every process in session sid (all its threads included)."""
    seconds = {}
    for pid in session_processes(sid):
        try:
            seconds[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            pass
    return seconds


@case("idle_connections_cost_no_cpu", limit=6.0, concurrent=NEEDS_CONCURRENCY, alone=True)
def _(ctx):
    """Four kept-alive connections (one request answered on each) and one that never sent
    anything, held for 1.5 s: the server's processes use < 0.15 s of CPU in that time (a loop
    that polls instead of blocking would use all of it)."""
    held = []
    for i in range(4):
        c = ctx.conn()
        c.send(get("/"))
        check(ctx, c.read_response(what=f"kept-alive connection {i + 1}"), 200, body=b"Hello, World!")
        held.append(c)
    held.append(ctx.conn())
    time.sleep(0.2)
    before = session_cpu_seconds(ctx.server.proc.pid)
    time.sleep(1.5)
    after = session_cpu_seconds(ctx.server.proc.pid)
    used = sum(after[pid] - before[pid] for pid in after if pid in before)
    if used >= 0.15:
        fail(f"the server used {used:.2f} s of CPU in 1.5 s with only idle connections open, "
             f"expected < 0.15 s (is something polling instead of blocking?)")


def open_descriptors(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@case("emfile_shedding", limit=15.0, concurrent=NEEDS_CONCURRENCY, bounded=NEEDS_UNBOUNDED, alone=True,
      nofile=64)
def _(ctx):
    """RLIMIT_NOFILE 64, 100 connections opened and held, each sends GET /: every one is either
    answered or closed/reset (shed), none hangs; 20 more during a held second cost the server
    < 0.3 s of CPU; the answered ones are still served; after all close (and the server has
    closed its ends), a new connection is served; shed > 0, unless the connections were spread
    over processes of their own (fork-per-conn), which never reach the limit."""
    conns = [ctx.conn() for _ in range(100)]
    time.sleep(0.2)
    for c in conns:
        c.send(get("/"), may_fail=True)
    # 1.5 s: under the idle timeout, so connections the server closes as idle free no descriptors
    # for a server that does not shed.
    waiting = gather(ctx, conns, 1.5, has_response)
    if waiting:
        fail(f"{len(waiting)} of 100 connections over the descriptor limit were neither answered "
             f"nor closed within 1.5 s")
    served = [c for c in conns if has_response(c)]
    for c in served:
        check(ctx, c.read_response(timeout=0.1), 200, body=b"Hello, World!")
    shed = [c for c in conns if c not in served]
    # The limit is per process: a server whose connections live in processes of their own
    # (fork-per-conn) never reaches it, and then serving all of them is right.
    spread_over_processes = len(session_processes(ctx.server.proc.pid)) > 1
    if not served or not (shed or spread_over_processes):
        fail(f"expected some connections served and the rest shed, got {len(served)} served and "
             f"{len(shed)} shed")
    for c in shed:
        if c.buf:
            fail(f"a shed connection received {short(c.buf)} before it closed")

    # Held overload: more connections arrive while every descriptor is in use.
    cpu_before = cpu_seconds(ctx.server.proc.pid)
    start = now()
    extra = [ctx.conn() for _ in range(20)]
    for c in extra:
        c.send(get("/"), may_fail=True)
    time.sleep(max(0.0, start + 1.0 - now()))
    cpu_used = cpu_seconds(ctx.server.proc.pid) - cpu_before
    if cpu_used >= 0.3:
        fail(f"the server used {cpu_used:.2f} s of CPU in 1 s of held overload (spinning on a "
             f"listening socket it cannot accept from?), expected < 0.3 s")
    waiting = gather(ctx, extra, 2.0, has_response)
    if waiting:
        fail(f"{len(waiting)} of 20 connections made at the descriptor limit were neither "
             f"answered nor closed within 2 s")

    for i, c in enumerate(served):
        c.send(get("/bytes/5"))
        check(ctx, c.read_response(what=f"an accepted connection ({i + 1} of {len(served)}) "
                                        f"during overload"),
              200, body=b"abcde", ctype="application/octet-stream")
    for c in conns + extra:
        c.close()
    # The server closes its ends as it reads their EOF: wait (2 s at most, a sanitizer build with
    # 128 threads on two CPUs is slow) until it holds few descriptors before testing it.
    until = now() + 2.0
    while now() < until and open_descriptors(ctx.server.proc.pid) > 16:
        time.sleep(0.05)
    time.sleep(0.1)
    serves_new_connection(ctx, "after all held connections closed")
    if shed:
        ctx.expect_stat("shed > 0", lambda s: s["shed"] > 0)


# Life cycle ---------------------------------------------------------------------------------------

def stop_busy_case(sig):
    name = signal.Signals(sig).name

    @case(f"{name.lower()}_busy", limit=8.0, alone=True,
          doc=f"{name} with a /sleep/5000 in progress and 10 idle connections: exit within 1 s "
              f"with status 0; the sleeping request gets 503 with Connection: close, or its "
              f"connection is closed, never a hang; stats requests counts the 503 only if it "
              f"was sent.")
    def _(ctx):
        sleeper = ctx.conn()
        sleeper.send(get("/sleep/5000"))
        time.sleep(0.3)
        idle = [ctx.conn() for _ in range(10)]
        time.sleep(0.1)
        ctx.stop(sig)
        state = "data" if sleeper.buf else sleeper.recv_some(now() + 1.0)
        if state == "timeout":
            fail(f"after {name} the /sleep/5000 connection got neither a response nor a close "
                 f"within 1 s")
        answered = state == "data" or bool(sleeper.buf)
        if answered:
            r = sleeper.read_response(timeout=1.0, what=f"/sleep/5000 interrupted by {name}")
            check(ctx, r, 503, connection="close")
        for c in idle:
            c.close()
        # requests counts responses sent: the 503 only if the client got it.
        ctx.expect_stat(f"requests={int(answered)} (the client "
                        f"{'got the 503' if answered else 'got no response, only a close'})",
                        lambda s: s["requests"] == int(answered))


stop_busy_case(signal.SIGTERM)
stop_busy_case(signal.SIGINT)


@case("sigterm_while_streaming", limit=6.0, alone=True)
def _(ctx):
    """SIGTERM while a client that does not read holds a GET /bytes/67108864 half sent: the
    server still exits within 1 s with status 0."""
    hog = ctx.conn(rcvbuf=4096)
    hog.send(get(f"/bytes/{BIG}"))
    time.sleep(0.3)
    ctx.stop(signal.SIGTERM)


def run_binary(ctx, args, timeout=3.0):
    """Runs the binary with args; returns (status, stdout, stderr). Kills it after timeout."""
    proc = subprocess.Popen([ctx.binary, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=ctx.bound(timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        fail(f"{' '.join(args)}: still running after {timeout:g} s (stdout {short(out)}, "
             f"stderr {short(err)})")
    text = err.decode("utf-8", "replace")
    report = sanitizer_report(text)
    if report:
        fail(f"{' '.join(args)}: {report}")
    return proc.returncode, out.decode("utf-8", "replace"), text


def bad_usage_case(name, args):
    @case(name, server=False,
          doc=f"`{' '.join(args)}`: exit status 2, usage on stderr, nothing listening.")
    def _(ctx):
        status, out, err = run_binary(ctx, args)
        if status != 2:
            fail(f"{' '.join(args)}: exit status {status}, expected 2 (stdout {short(out)}, "
                 f"stderr {short(err)})")
        if "usage" not in err.lower():
            fail(f"{' '.join(args)}: no usage on stderr (stderr {short(err)})")
        if "listening on" in out:
            fail(f"{' '.join(args)}: printed {short(out)}")


bad_usage_case("cli_bogus_flag", ["--port", "0", "--bogus"])
bad_usage_case("cli_port_abc", ["--port", "abc"])
bad_usage_case("cli_port_70000", ["--port", "70000"])
bad_usage_case("cli_header_timeout_negative", ["--port", "0", "--header-timeout", "-1"])
bad_usage_case("cli_port_negative", ["--port", "-1"])
bad_usage_case("cli_missing_value", ["--port", "0", "--idle-timeout"])
bad_usage_case("cli_timeout_not_a_number", ["--port", "0", "--send-timeout", "2s"])
bad_usage_case("cli_extra_argument", ["--port", "0", "extra"])


@case("cli_help", server=False)
def _(ctx):
    """`--help`: exit status 0, usage on stdout."""
    status, out, err = run_binary(ctx, ["--help"])
    if status != 0 or "usage" not in out.lower():
        fail(f"--help: exit status {status} and stdout {short(out.encode())}, expected 0 and the "
             f"usage on stdout")


@case("cli_version", server=False)
def _(ctx):
    """`--version`: exit status 0 and a stdout line starting `c10k-NAME `."""
    status, out, err = run_binary(ctx, ["--version"])
    prefix = f"c10k-{ctx.name} "
    if status != 0 or not any(line.startswith(prefix) for line in out.split("\n")):
        fail(f"--version: exit status {status} and stdout {short(out.encode())}, expected 0 and a "
             f"line starting {prefix!r}")


# --- runner ---------------------------------------------------------------------------------------

SERIAL = set()
BOUNDED = set()


class Result:
    def __init__(self, verdict, server, case_name, seconds=0.0, message=""):
        self.verdict = verdict
        self.server = server
        self.case_name = case_name
        self.seconds = seconds
        self.message = message

    def line(self):
        if self.verdict == "PASS":
            return f"PASS {self.server} {self.case_name} ({self.seconds:.2f}s)"
        return f"{self.verdict} {self.server} {self.case_name}: {self.message}"


class Target:
    """A server binary and the flags it runs with: `PATH` or `PATH:FLAG,FLAG...`, e.g.
    `bin/prefork:--workers=4,--accept-lock=flock`. The paradigm is the binary's name."""

    def __init__(self, spec):
        path, _, flags = spec.partition(":")
        self.binary = os.path.abspath(path)
        self.flags = [f for f in flags.split(",") if f]
        self.paradigm = os.path.basename(path)
        self.label = self.paradigm + (" " + " ".join(self.flags) if self.flags else "")


# Cases that fail at times for a known, open reason in the ASan build only; reported as SKIP with
# the reason, never passed. Each entry is a defect to fix, not a licence.
def run_case(target, c):
    name = target.paradigm
    if c.concurrent and name in SERIAL:
        return Result("SKIP", target.label, c.name, message=c.concurrent)
    if c.bounded and name in BOUNDED:
        return Result("SKIP", target.label, c.name, message=c.bounded)
    start = now()
    limit = c.limit * LIMIT_SCALE
    ctx = Ctx(target.binary, name, limit, target.flags)
    failures = []
    server = None
    if c.server:
        try:
            server = Server(target.binary, c.args + target.flags, c.nofile, c.address_space, c.env)
            ctx.server = server
            ctx.port = server.wait_listening()
        except CaseFailure as e:
            failures.append(str(e))
        except OSError as e:
            failures.append(f"cannot start {target.binary}: {e}")
    if not failures:
        outcome = []

        def body():
            try:
                c.fn(ctx)
            except CaseFailure as e:
                outcome.append(str(e))
            except Exception as e:  # a bug in the case or an unexpected socket error
                where = traceback.extract_tb(e.__traceback__)[-1]
                outcome.append(f"unexpected {type(e).__name__}: {e} (conformance.py line "
                               f"{where.lineno})")

        worker = threading.Thread(target=body, daemon=True)
        worker.start()
        worker.join(limit + 1.0)
        if worker.is_alive():
            failures.append(f"case did not finish within its {limit:g} s limit")
            if server:
                server.stopped = True  # killed here: the exit status says nothing more
                server.kill()
            worker.join(2.0)
        failures += outcome
    for conn in ctx.conns:
        try:
            conn.sock.close()
        except OSError:
            pass
    if server:
        problems, stats = server.finish()
        failures += [p for p in problems if p not in failures]
        if stats is not None and not failures:
            wrong = [d for d, check_stats in ctx.stat_checks if not check_stats(stats)]
            if wrong:
                failures.append(f"stats expected {', '.join(wrong)}; got {stats['_line']!r}")
    seconds = now() - start
    if failures:
        first, *rest = failures
        message = first + "".join("\n    also: " + r for r in rest)
        return Result("FAIL", target.label, c.name, seconds, message)
    return Result("PASS", target.label, c.name, seconds)


def unavailable_reason(target):
    """Starts the server once, before its cases: if it exits with status 1 and a line containing
    `unavailable:` on stderr (the kernel lacks what the paradigm needs, e.g. io_uring is disabled),
    returns that line, and its cases are skipped; otherwise returns None."""
    server = Server(target.binary, SERVER_ARGS + target.flags)
    try:
        server.wait_listening()
    except CaseFailure:
        pass
    if server.proc.poll() is None:
        server.kill()
    lines = [line for line in server.stderr_text().split("\n") if "unavailable:" in line]
    with LIVE_LOCK:
        LIVE_SERVERS.discard(server)
    server.proc.stdout.close()
    server.stderr_file.close()
    if server.proc.returncode == 1 and lines:
        return lines[0].strip()
    return None


def kill_live_servers():
    with LIVE_LOCK:
        servers = list(LIVE_SERVERS)
    for server in servers:
        server.kill()


def main(argv):
    parser = argparse.ArgumentParser(
        prog="conformance.py",
        description="Runs the docs/protocol.md conformance cases against server binaries.")
    parser.add_argument("--serial", action="append", default=[], metavar="NAME",
                        help="a paradigm that serves one connection at a time; its concurrency "
                             "cases are skipped")
    parser.add_argument("--bounded", action="append", default=[], metavar="NAME",
                        help="a paradigm that serves a fixed number of connections at once (a pool); "
                             "cases that hold more connections than that are skipped")
    parser.add_argument("--only", metavar="SUBSTR", help="run only cases whose name contains it")
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="cases run at once (timing cases run alone, or beside the other cases that only wait for a deadline); default 1")
    parser.add_argument("binaries", nargs="*", metavar="BINARY[:FLAG,FLAG...]",
                        help="a server binary, with extra flags for every case after a colon")
    args = parser.parse_args(argv)  # exits 2 on bad usage

    cases = [c for c in CASES if not args.only or args.only in c.name]
    if args.list:
        try:
            for c in cases:
                print(c.name)
        except BrokenPipeError:  # `--list | head`
            sys.stderr.close()
        return 0
    if not args.binaries:
        parser.print_usage(sys.stderr)
        print("conformance.py: error: no BINARY given", file=sys.stderr)
        return 2
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    targets = [Target(spec) for spec in args.binaries]
    for target in targets:
        if not (os.path.isfile(target.binary) and os.access(target.binary, os.X_OK)):
            parser.error(f"{target.binary}: not an executable file")
    if not cases:
        parser.error(f"no case name contains {args.only!r}")
    SERIAL.update(args.serial)
    BOUNDED.update(args.bounded)

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    skipped = []
    unavailable = []  # "label: reason" of each server that could not run here at all

    def report(result):
        counts[result.verdict] += 1
        if result.verdict == "SKIP":
            skipped.append(result)
        print(result.line(), flush=True)

    try:
        for target in targets:
            reason = unavailable_reason(target)
            if reason is not None:
                print(f"SKIP {target.label}: {reason}", flush=True)
                counts["SKIP"] += len(cases)
                unavailable.append(f"{target.label}: {reason}")
                continue
            if args.jobs == 1:
                for c in cases:
                    report(run_case(target, c))
                continue
            together = [c for c in cases if not c.alone]
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                futures = [pool.submit(run_case, target, c) for c in together]
                for future in futures:
                    report(future.result())
            waiting = [c for c in cases if c.alone and c.waits]
            if waiting:
                with concurrent.futures.ThreadPoolExecutor(len(waiting)) as pool:
                    futures = [pool.submit(run_case, target, c) for c in waiting]
                    for future in futures:
                        report(future.result())
            for c in cases:
                if c.alone and not c.waits:
                    report(run_case(target, c))
    except KeyboardInterrupt:
        kill_live_servers()
        print("interrupted", file=sys.stderr)
        return 1
    because = "; ".join(f"{len(cases)} of {u}" for u in unavailable)
    print(f"{counts['SKIP']} skipped" + (f": {because}" if because else ""))
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
