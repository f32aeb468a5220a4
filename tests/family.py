#!/usr/bin/env python3
"""family.py - each family's own cases, beyond the conformance suite.

What the process and thread servers promise besides the protocol: children are reaped, a killed
worker is replaced while the others go on, a full pool or queue answers 503 and then serves
again, descriptor passing loses no connection, and SIGTERM with every worker busy still ends the
server within a second with nothing left behind. What the reactors promise: a connection the
kernel will not register (epoll_ctl failing with ENOSPC) is closed and counted, and the others
are served. The servers run the way conformance.py runs them
(its Server, Ctx and Conn classes: readiness by the `listening on` line, every wait bounded, the
exit, stdout, leftover processes, sanitizer reports and the stats line checked after each case).

    python3 tests/family.py [--only SUBSTR] [--list] BIN_DIR

BIN_DIR holds the server binaries (bin, or a sanitizer build's bin). Output: one
`PASS|FAIL|SKIP <server> <case>` line per case, then `N skipped` and `N passed, N failed`; exit
status 1 if any case failed, 2 on bad usage.
"""
import argparse
import json
import resource
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402  (the shared server and connection machinery)
from conformance import check, fail, get, now  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "bin", "loadgen")
HELLO = b"Hello, World!"

CASES = []  # (server, flags, Case)


def case(name, paradigm, flags=(), limit=10.0, doc=None, **kw):
    """Registers a case run against the binary `paradigm` with extra flags; kw go to cf.Case."""
    def register(fn):
        text = doc or " ".join((fn.__doc__ or "").split())
        CASES.append((paradigm, list(flags), cf.Case(name, fn, limit, text, alone=True, **kw)))
        return fn
    return register


# --- what /proc says about a server ----------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def children(pid):
    """The pids whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == pid:
                found.append(int(entry))
    return found


def sockets(pid):
    """How many sockets a process holds."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                pass
    except OSError:
        return 0
    return count


def threads_of(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def wait_for(what, predicate, timeout):
    """Polls predicate until it holds; fails with `what` after timeout seconds."""
    until = now() + timeout
    while not predicate():
        if now() > until:
            fail(f"{what} (not within {timeout:g} s)")
        time.sleep(0.02)


def served(ctx, what="a new connection"):
    c = ctx.conn()
    c.send(get("/"))
    check(ctx, c.read_response(what=what), 200, body=HELLO)
    c.close()


def hold(ctx, count):
    """count keep-alive connections, each answered once, so each holds a worker."""
    conns = []
    for i in range(count):
        c = ctx.conn()
        c.send(get("/"))
        check(ctx, c.read_response(what=f"held connection {i + 1}"), 200, body=HELLO)
        conns.append(c)
    return conns


def expect_503(ctx, what):
    c = ctx.conn()
    c.send(get("/"), may_fail=True)
    r = c.read_response(what=what)
    check(ctx, r, 503, connection="close")
    c.expect_eof(what=f"after the 503 of {what}", allow_reset=True)


def pending(ctx, count):
    """count connections with a request sent and no answer yet (they wait for a worker)."""
    conns = []
    for _ in range(count):
        c = ctx.conn()
        c.send(get("/"))
        conns.append(c)
    time.sleep(0.3)
    for i, c in enumerate(conns):
        if c.recv_some(now() + 0.01) not in ("timeout",):
            fail(f"waiting connection {i + 1} got {c.closed or cf.short(c.buf)} while every worker "
                 f"was busy; expected it to wait")
    return conns


# --- reaping and restarting ------------------------------------------------------------------------

@case("no_zombies_after_2000", "fork-per-conn", limit=30.0)
def _(ctx):
    """2000 connections, one request each, eight at a time: every one answered; afterwards no
    child in state Z and none left at all within 1 s; stats count the children's requests."""
    errors = []
    count = 2000
    lock = threading.Lock()
    next_index = [0]

    def client():
        while True:
            with lock:
                if next_index[0] >= count or errors:
                    return
                next_index[0] += 1
            try:
                c = ctx.conn()
                c.send(get("/", "Connection: close"))
                r = c.read_response()
                check(ctx, r, 200, body=HELLO, connection="close")
                c.expect_eof()
            except cf.CaseFailure as e:
                with lock:
                    errors.append(str(e))
                return

    workers = [threading.Thread(target=client) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(ctx.bound(25.0))
    if errors:
        fail(f"a request failed: {errors[0]}")
    ctx.conns.clear()  # 2000 closed sockets; nothing to close at the end
    master = ctx.server.proc.pid
    zombies = []

    def all_reaped():
        kids = children(master)
        zombies[:] = [pid for pid in kids if (proc_stat(pid) or ("?",))[0] == "Z"]
        return not kids
    try:
        wait_for("every child reaped", all_reaped, 1.0)
    except cf.CaseFailure:
        fail(f"1 s after the last connection closed: {len(children(master))} children left, "
             f"{len(zombies)} of them zombies (state Z)")
    ctx.expect_stats(accepted=count, requests=count)


def kill_idle_worker_case(lock):
    @case(f"kill_idle_workers_{lock}", "prefork", ["--workers=4", f"--accept-lock={lock}"], limit=12.0)
    def _(ctx):
        """Two clients keep requesting on two connections (two busy workers) while the other
        workers, one of them holding the accept lock, are killed with SIGKILL: the master starts
        new ones within 1 s, a new connection is served, and the two clients see no error."""
        master = ctx.server.proc.pid
        wait_for("4 workers running", lambda: len(children(master)) == 4, 2.0)
        # Mid-run: a worker that dies within 1 s of its start is restarted only after a second
        # (the master's guard against a worker that crashes at once, over and over).
        time.sleep(1.1)
        busy = hold(ctx, 2)
        errors, answered, stop = [], [0, 0], threading.Event()

        def keep_asking(i, c):
            try:
                while not stop.is_set():
                    c.send(get("/"))
                    check(ctx, c.read_response(what="a client of a surviving worker"), 200, body=HELLO)
                    answered[i] += 1
            except cf.CaseFailure as e:
                errors.append(str(e))

        clients = [threading.Thread(target=keep_asking, args=(i, c)) for i, c in enumerate(busy)]
        for t in clients:
            t.start()
        try:
            time.sleep(0.2)
            idle = [pid for pid in children(master) if sockets(pid) == 1]
            if len(idle) != 2:
                fail(f"expected 2 idle workers (only the listening socket open), found {len(idle)} "
                     f"of {len(children(master))}")
            for pid in idle:
                os.kill(pid, signal.SIGKILL)
            killed_at = now()
            wait_for("4 workers running again, the killed ones replaced",
                     lambda: len(set(children(master)) - set(idle)) == 4, 1.0)
            replaced = now() - killed_at
            served(ctx, f"a new connection {replaced:.2f} s after two workers were killed")
            before = list(answered)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in clients:
                t.join(5.0)
        if errors:
            fail(f"a client of a surviving worker saw an error: {errors[0]}")
        if answered[0] <= before[0] or answered[1] <= before[1]:
            fail(f"the clients of the surviving workers stopped being served: {before} then {answered}")


for _lock in ("none", "flock", "mutex"):
    kill_idle_worker_case(_lock)


# --- full pools answer 503, then serve again ---------------------------------------------------------

@case("max_children_503", "fork-per-conn", ["--max-children=2"])
def _(ctx):
    """--max-children 2: two held connections, then a third gets 503 with Connection: close at
    once; once one held connection closes, a new one is served; refused=1."""
    held = hold(ctx, 2)
    expect_503(ctx, "a third connection at --max-children 2")
    held[0].close()
    time.sleep(0.2)
    served(ctx, "a new connection after one child ended")
    ctx.expect_stats(refused=1, status503=1)


def queue_full_case(name, server, flags, holders, where):
    @case(name, server, flags,
          doc=f"{' '.join(flags)}: two held connections occupy the {holders}, two more wait in "
              f"{where}, the fifth gets 503 at once; when the held ones close the queued ones are "
              f"answered, and a new connection is served; refused=1.")
    def _(ctx):
        held = hold(ctx, 2)
        queued = pending(ctx, 2)
        expect_503(ctx, f"a fifth connection with {where} full")
        for c in held:
            c.close()
        for i, c in enumerate(queued):
            check(ctx, c.read_response(what=f"queued connection {i + 1} after the held ones closed"),
                  200, body=HELLO)
        served(ctx)
        ctx.expect_stats(refused=1, status503=1)


queue_full_case("queue_full_503", "thread-pool", ["--threads=2", "--queue=2"], "threads", "the queue")
queue_full_case("fdpass_queue_full_503", "prefork-fdpass", ["--workers=2", "--queue=2"], "workers",
                "the master's queue")


GIB = 1 << 30


@case("thread_create_fails_503", "thread-per-conn", ["--stack-kb=1048576"], address_space=6 * GIB)
def _(ctx):
    """1 GiB stacks under a 6 GiB address-space limit: of 8 held connections some are served and
    the rest get 503 at once (pthread_create fails); after they close, a new one is served;
    refused counts the 503s."""
    conns = [ctx.conn() for _ in range(8)]
    for c in conns:
        c.send(get("/"), may_fail=True)
    results = {200: 0, 503: 0}
    for i, c in enumerate(conns):
        r = c.read_response(what=f"held connection {i + 1} of 8 with 1 GiB stacks")
        if r.status not in results:
            fail(f"connection {i + 1}: expected 200 or 503, got {r.status_line!r}")
        check(ctx, r, r.status, body=HELLO if r.status == 200 else None,
              connection="close" if r.status == 503 else None)
        results[r.status] += 1
    if not results[200] or not results[503]:
        fail(f"expected some served and some refused, got {results}")
    for c in conns:
        c.close()
    time.sleep(0.3)
    served(ctx, "a new connection after the threads ended")
    refused = results[503]
    ctx.expect_stat(f"refused={refused}", lambda s: s["refused"] == refused)


# --- descriptor passing under churn ----------------------------------------------------------------

@case("fdpass_churn_300_loses_nothing", "prefork-fdpass", ["--workers=4"], limit=20.0)
def _(ctx):
    """300 clients each making a new connection per request for 2 s (bin/loadgen --close -c 300):
    no request fails in any way, and the master refuses none."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [LOADGEN, "-c", "300", "--close", "-d", "2", "--timeout", "5", "--quiet",
                   "--source", "127.0.0.1-127.0.0.8", "--json", out.name,
                   f"http://127.0.0.1:{ctx.port}/"]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=ctx.bound(15.0))
        except subprocess.TimeoutExpired:
            fail("bin/loadgen did not finish within 15 s")
        if run.returncode != 0:
            fail(f"bin/loadgen exited with {run.returncode}: {run.stderr.strip()[-300:]}")
        doc = json.load(open(out.name))
    errors, completed = doc["errors"], doc["totals"]["completed"]
    if errors["total"] or completed < 1000:
        fail(f"expected no errors and at least 1000 requests, got {completed} completed and "
             f"errors {errors}")
    ctx.expect_stats(refused=0, status503=0)


# --- SIGTERM with every worker busy ------------------------------------------------------------------

def sigterm_all_busy_case(server, flags, busy):
    @case("sigterm_all_busy", server, flags, limit=8.0,
          doc=f"{busy} requests in /sleep/2000 (every worker busy) and 2 more connections waiting: "
              f"SIGTERM ends the server within 1 s with status 0 and no process or thread left; "
              f"each sleeper gets its 503 or a close.")
    def _(ctx):
        sleepers = []
        for _ in range(busy):
            c = ctx.conn()
            c.send(get("/sleep/2000"))
            sleepers.append(c)
        for _ in range(2):
            ctx.conn().send(get("/"))
        time.sleep(0.4)
        took = ctx.stop(signal.SIGTERM)
        if took > 1.0:
            fail(f"SIGTERM took {took:.2f} s")
        for i, c in enumerate(sleepers):
            state = "data" if c.buf else c.recv_some(now() + 1.0)
            if state == "timeout":
                fail(f"sleeper {i + 1}: neither a response nor a close after SIGTERM")
            if state == "data":
                check(ctx, c.read_response(what=f"sleeper {i + 1} after SIGTERM"), 503, connection="close")


for _server, _flags, _busy in (("fork-per-conn", [], 4), ("prefork", ["--workers=2"], 2),
                               ("prefork", ["--workers=2", "--accept-lock=flock"], 2),
                               ("prefork", ["--workers=2", "--accept-lock=mutex"], 2),
                               ("prefork-fdpass", ["--workers=2"], 2), ("thread-per-conn", [], 4),
                               ("thread-pool", ["--threads=2"], 2), ("prethread", ["--threads=2"], 2),
                               ("prethread", ["--threads=2", "--accept-lock=mutex"], 2)):
    sigterm_all_busy_case(_server, _flags, _busy)


# --- flags of the family ---------------------------------------------------------------------------

def bad_flag_case(server, args):
    @case(f"cli_{args[0].lstrip('-')}_{args[1]}", server, server=False)
    def _(ctx):
        """A bad value of the server's own flag: exit status 2, usage on stderr."""
        status, out, err = cf.run_binary(ctx, ["--port", "0", *args])
        if status != 2 or "usage" not in err.lower() or "listening on" in out:
            fail(f"{' '.join(args)}: exit status {status}, stderr {cf.short(err.encode())}, expected "
                 f"2 and the usage")


for _server, _args in (("prefork", ["--accept-lock", "spinlock"]), ("prefork", ["--workers", "0"]),
                       ("prefork-fdpass", ["--queue", "0"]), ("thread-pool", ["--queue", "-1"]),
                       ("thread-pool", ["--threads", "0"]), ("prethread", ["--accept-lock", "flock"]),
                       ("fork-per-conn", ["--max-children", "x"]), ("thread-per-conn", ["--stack-kb", "8"]),
                       ("iterative", ["--workers", "2"])):
    bad_flag_case(_server, _args)


# Cases whose premise holds in the plain build only, with the reason.
# --- reactors: a connection that cannot be registered -----------------------------------------------

EPOLL_CTL_FAILS = os.path.join(ROOT, "build", "tests", "epoll_ctl_fails.so")


def registration_fails_case(server, flags=(), send_after=0.0):
    @case("registration_fails_dropped", server, flags, limit=10.0,
          env={"LD_PRELOAD": EPOLL_CTL_FAILS, "FAIL_EPOLL_ADD_EVERY": "3",
               "ASAN_OPTIONS": "verify_asan_link_order=0"})
    def _(ctx):
        """Every third epoll_ctl(EPOLL_CTL_ADD) of an accepted connection fails with ENOSPC (an
        LD_PRELOAD shim; the server's own listeners and eventfds are not counted): of 9
        connections made one after another, numbers 3, 6 and 9 are closed without an answer and
        the other 6 get 200; a 10th is served; dropped=3 (summed over a server's loops)."""
        if not os.path.exists(EPOLL_CTL_FAILS):
            fail(f"{EPOLL_CTL_FAILS} is not built (make {os.path.relpath(EPOLL_CTL_FAILS, ROOT)})")
        for i in range(1, 10):
            c = ctx.conn()
            time.sleep(send_after)
            c.send(get("/"), may_fail=True)
            if i % 3 == 0:
                c.expect_eof(what=f"connection {i}, which could not be registered", allow_reset=True)
            else:
                check(ctx, c.read_response(what=f"connection {i}"), 200, body=HELLO)
            c.close()
        served(ctx, "a 10th connection after the failed registrations")
        ctx.expect_stat("dropped=3", lambda s: s["dropped"] == 3)


# The single-loop reactors, and every multi-loop one with two loops (or workers), so that
# connections are registered by more than one thread.
for reactor, reactor_flags in (("multi-reactor", ("--threads=2",)), ("reuseport", ("--threads=2",)),
                               ("reuseport", ("--threads=2", "--listen=shared")),
                               ("leader-follower", ("--threads=2",)), ("reactor-workers", ("--workers=2",)),
                               ("actor", ("--threads=2", "--workers=2"))):
    registration_fails_case(reactor, reactor_flags)
# epoll-lt and epoll-et (under their accept hold) and the coroutine servers read a new connection
# before registering it (a request already there is answered without epoll): the request is sent
# only once the server has met EAGAIN and registered.
registration_fails_case("epoll-lt", send_after=0.1)
registration_fails_case("epoll-et", send_after=0.1)
registration_fails_case("coroutine", send_after=0.1)
registration_fails_case("csp", ("--workers=2",), send_after=0.1)


def accept_hold_case(server):
    @case("accept_hold_bounded", server, ("--accept-hold=1000000",), limit=15.0)
    def _(ctx):
        """--accept-hold 1000000: a connection that has not spoken holds the listener. A connection
        made meanwhile is answered as soon as the silent one speaks (within 0.6 s), or else once the
        hold runs out (after 0.8 s or more, and within 5 s). After a hold ran out, no hold begins for
        ten holds' time: a connection made beside a new silent one is answered at once (within 0.6 s)."""
        def beside_a_silent_one(speak_after=None):
            silent = ctx.conn()
            time.sleep(0.1)  # accepted by now, and found silent
            start = time.monotonic()
            waiting = ctx.conn()
            waiting.send(get("/"))
            if speak_after is not None:
                time.sleep(speak_after)
                silent.send(get("/"))
            check(ctx, waiting.read_response(what="a connection made beside a silent one", timeout=5.0), 200,
                  body=HELLO)
            waited = time.monotonic() - start
            if speak_after is None:
                silent.send(get("/"))
            check(ctx, silent.read_response(what="the silent connection, once it spoke"), 200, body=HELLO)
            waiting.close()
            silent.close()
            return waited

        waited = beside_a_silent_one(speak_after=0.1)
        if waited > 0.6:
            fail(f"answered {waited:.3f} s after it was sent: the hold did not end when the silent connection spoke")
        waited = beside_a_silent_one()
        if not 0.8 <= waited <= 5.0:
            fail(f"answered {waited:.3f} s after it was sent, not after the 1 s hold ran out")
        waited = beside_a_silent_one()
        if waited > 0.6:
            fail(f"answered {waited:.3f} s after it was sent: a hold began right after one ran out")
        served(ctx, "a connection after the holds")


for reactor in ("epoll-lt", "epoll-et"):
    accept_hold_case(reactor)


PLAIN_ONLY = {
    "thread_create_fails_503": "a sanitizer's shadow memory needs more address space than the "
                               "limit this case sets",
    "stack_that_cannot_start": "a sanitizer's shadow memory needs more address space than the "
                               "limit this case sets",
}


@case("stack_that_cannot_start", "thread-per-conn", server=False)
def _(ctx):
    """--stack-kb 1048576 under a 512 MiB address-space limit, so no thread of that size can
    start: exit status 2 with the usage at start, instead of a 503 for every connection."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
    try:
        run = subprocess.run([ctx.binary, "--port", "0", "--stack-kb", "1048576"], capture_output=True,
                             text=True, timeout=ctx.bound(3.0), preexec_fn=limit)
    except subprocess.TimeoutExpired:
        fail("--stack-kb 1048576 under RLIMIT_AS 512 MiB: still running after 3 s")
    if run.returncode != 2 or "usage" not in run.stderr.lower() or "no thread can start" not in run.stderr:
        fail(f"exit status {run.returncode}, stderr {cf.short(run.stderr.encode())}, expected 2, "
             f"'no thread can start' and the usage")


def main(argv):
    parser = argparse.ArgumentParser(prog="family.py", description=__doc__.split("\n")[0])
    parser.add_argument("--only", metavar="SUBSTR")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("bin_dir", nargs="?")
    args = parser.parse_args(argv)
    selected = [(s, f, c) for s, f, c in CASES if not args.only or args.only in f"{s} {c.name}"]
    if args.list:
        for server, flags, c in selected:
            print(f"{server} {' '.join(flags)} {c.name}".replace("  ", " "))
        return 0
    if not args.bin_dir:
        parser.error("no BIN_DIR given")
    sanitized = "san-" in os.path.abspath(args.bin_dir)
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    try:
        for server, flags, c in selected:
            target = cf.Target(os.path.join(args.bin_dir, server) + (":" + ",".join(flags) if flags else ""))
            if not os.access(target.binary, os.X_OK):
                result = cf.Result("SKIP", target.label, c.name, message=f"{target.binary} not built")
            elif c.name in PLAIN_ONLY and sanitized:
                result = cf.Result("SKIP", target.label, c.name, message=PLAIN_ONLY[c.name])
            else:
                result = cf.run_case(target, c)
            counts[result.verdict] += 1
            print(result.line(), flush=True)
    except KeyboardInterrupt:
        cf.kill_live_servers()
        return 1
    print(f"{counts['SKIP']} skipped")
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
