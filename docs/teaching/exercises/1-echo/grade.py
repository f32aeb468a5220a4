#!/usr/bin/env python3
"""grade.py - the autograder of exercise 1: builds an echo server (default: echo.c beside this
file) and tortures it, one fresh server per test, every wait bounded.

    python3 grade.py [SOURCE.c]        (make grade EX=1 [SOURCE=...])

Six tests, one point each, one per planted bug: partial writes, SIGPIPE, descriptor leak,
zombies, blocking in the loop, FD_SETSIZE. Prints PASS or FAIL with what was seen for each, then
"score: N/6"; exits 0 only on full marks (1 otherwise, 2 when the source does not compile).
"""
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"


class Failed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def raise_nofile(limit):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(limit, hard)), hard))


class Server:
    def __init__(self, binary, nofile=None):
        self.port = free_port()

        def limits():
            if nofile:
                raise_nofile(nofile)
        self.proc = subprocess.Popen([binary, str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=limits)
        ready, _, _ = select.select([self.proc.stdout], [], [], 5)
        if not ready or b"listening on" not in self.proc.stdout.readline():
            self.stop()
            raise Failed("the server did not print 'listening on' within 5 s")

    def alive(self):
        return self.proc.poll() is None

    def death(self):
        status = self.proc.poll()
        if status is None:
            return "it is running"
        if status < 0:
            return f"it died of signal {signal.Signals(-status).name}"
        return f"it exited with status {status}"

    def stop(self):
        # Its children first: once the server is reaped they belong to init and cannot be found.
        left = children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def connect(self, timeout=3.0):
        return socket.create_connection((HOST, self.port), timeout=timeout)


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def zombies(pid):
    count = 0
    for child in children(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    count += 1
        except OSError:
            pass
    return count


def read_exactly(sock, n, seconds):
    deadline = time.monotonic() + seconds
    data = bytearray()
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(1 << 20, n - len(data)))
        except (socket.timeout, ConnectionError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def echoes(server, line=b"ping\n", seconds=2.0):
    """A new client's line comes back."""
    with server.connect() as c:
        c.sendall(line)
        return read_exactly(c, len(line), seconds) == line


# --- the tests ---------------------------------------------------------------------------------------

def test_partial_writes(server):
    """8 MiB of lines from a client that starts reading only a second after it starts sending
    (more than the kernel's socket buffers hold): every byte comes back, in order."""
    line = b"x" * 1023 + b"\n"
    count = 8192
    total = count * len(line)
    with server.connect() as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.settimeout(20)
        sent = []

        def send_all():
            try:
                c.sendall(line * count)
                sent.append(True)
            except OSError:
                pass
        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        time.sleep(1.0)
        got = read_exactly(c, total, 20)
        sender.join(timeout=5)
    if got != line * count:
        raise Failed(f"{len(got):,} of {total:,} bytes came back" + ("" if server.alive() else f"; {server.death()}"))


def test_sigpipe(server):
    """Five clients send 256 KiB of lines and reset the connection at once: the server lives on."""
    line = b"y" * 1023 + b"\n"
    for _ in range(5):
        c = server.connect()
        try:
            c.sendall(line * 256)
        except OSError:
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    time.sleep(0.5)
    if not server.alive():
        raise Failed(f"after clients that left without reading, {server.death()}")
    if not echoes(server):
        raise Failed("the server is alive but a new client's line did not come back")


def test_descriptor_leak(server):
    """1,500 clients connect, echo a line and leave: the server holds few descriptors after."""
    for _ in range(1500):
        with server.connect() as c:
            c.sendall(b"a\n")
            read_exactly(c, 2, 2)
    time.sleep(0.3)
    if not server.alive():
        raise Failed(server.death())
    held = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    if held > 50:
        raise Failed(f"{held} descriptors open after 1,500 clients came and went")


def test_zombies(server):
    """30 clients ask for the date: no child is left a zombie."""
    for _ in range(30):
        with server.connect() as c:
            c.sendall(b"date\n")
            c.settimeout(3)
            try:
                c.recv(4096)
            except OSError:
                pass
    time.sleep(1.0)
    left = zombies(server.proc.pid)
    if left:
        raise Failed(f"{left} zombie children after 30 dates")


def test_blocking(server):
    """A client sends half a line and waits: another client's line still comes back within 1 s."""
    with server.connect() as slow:
        slow.sendall(b"hel")
        time.sleep(0.2)
        started = time.monotonic()
        ok = echoes(server, seconds=1.0)
        took = time.monotonic() - started
        if not ok:
            raise Failed(f"a second client waited {took:.1f} s and got nothing while the first had sent half a line")
        slow.sendall(b"lo\n")
        if read_exactly(slow, 6, 2) != b"hello\n":
            raise Failed("the half line, once finished, did not come back whole")


def test_fd_setsize(server):
    """1,100 clients at once (the server may hold up to 4,096 descriptors): the server survives
    descriptors past FD_SETSIZE (1,024), and serves a new client once they leave."""
    held = []
    try:
        for _ in range(1100):
            try:
                c = server.connect(timeout=2)
                c.sendall(b"b\n")
                held.append(c)
            except OSError:
                break
        time.sleep(0.5)
        if not server.alive():
            raise Failed(f"with {len(held)} clients connected, {server.death()}")
    finally:
        for c in held:
            c.close()
    time.sleep(0.5)
    if not server.alive():
        raise Failed(f"after 1,100 clients, {server.death()}")
    if not echoes(server):
        raise Failed("after 1,100 clients left, a new client's line did not come back")


TESTS = [("partial writes", test_partial_writes, None), ("SIGPIPE", test_sigpipe, None),
         ("descriptor leak", test_descriptor_leak, None), ("zombies", test_zombies, None),
         ("blocking in the loop", test_blocking, None), ("FD_SETSIZE", test_fd_setsize, 4096)]


def main(argv):
    if len(argv) > 1:
        print("usage: grade.py [SOURCE.c]", file=sys.stderr)
        return 2
    source = os.path.abspath(argv[0] if argv else os.path.join(HERE, "echo.c"))
    raise_nofile(8192)  # for the 1,100 clients of the last test
    with tempfile.TemporaryDirectory() as scratch:
        binary = os.path.join(scratch, "echo")
        # _FORTIFY_SOURCE makes an FD_SET past FD_SETSIZE abort at once instead of corrupting memory.
        build = subprocess.run(["gcc", "-std=c11", "-O2", "-g", "-Wall", "-D_FORTIFY_SOURCE=2", "-o", binary, source],
                               capture_output=True, text=True, timeout=120)
        if build.returncode != 0:
            print(f"{source} does not compile:\n{build.stderr}")
            return 2
        score = 0
        for name, test, nofile in TESTS:
            server = None
            try:
                server = Server(binary, nofile)
                test(server)
                score += 1
                print(f"PASS {name}")
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
