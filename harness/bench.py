#!/usr/bin/env python3
"""bench.py - the benchmark driver behind `make bench` (run through ./run_all.sh).

For every server of harness/servers.txt (and the Makefile's SERVERS) and every scenario of
harness/scenarios.txt: start the server fresh, pinned to its CPUs, in a cgroup of its own; for every
point of the scenario run bin/loadgen (pinned to the other CPUs) `--reps` times, and sample the
server (CPU time, context switches, memory, processes, threads) when loadgen says its measured
window begins and ends (--phase-fd); count system calls with perf in a separate short run; stop
the server with SIGTERM and remove its cgroup. Everything goes into
results/<UTC time>-<commit>/results.json, rewritten after every measurement so an interrupted run
keeps what it has, and report.py turns it into plots and a report. See docs/bench.md.
"""
import argparse
import errno
import fnmatch
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = "c10k-lab/results/1"
SCENARIOS_FILE = os.path.join(ROOT, "harness", "scenarios.txt")
SERVERS_FILE = os.path.join(ROOT, "harness", "servers.txt")
LOADGEN = os.path.join(ROOT, "bin", "loadgen")
# --load-hosts: bin/loadgen-mpi on several hosts, driven by this (docs/distributed.md).
LOADGEN_CLUSTER = os.path.join(ROOT, "harness", "loadgen-cluster")
# mpirun's start on every load host, on top of loadgen's own phases (0.5 s on namespace hosts).
CLUSTER_LAUNCH_S = 15.0
# As harness/loadgen-cluster's default: an ssh that gives up on a silent host after about 3 s.
DEFAULT_RSH_AGENT = "ssh -o ServerAliveInterval=1 -o ServerAliveCountMax=3 -o ConnectTimeout=5 -o BatchMode=yes"
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0
# System calls are counted in a run of their own after the measured ones: perf's tracepoint costs
# the server 15-20 % of its throughput, which must not show in the figures it sits beside.
SYSCALL_RUN_S = 0.5
SYSCALL_RUN_WARMUP_S = 0.1
DEFAULT_SOURCES = "127.0.0.1-127.0.0.16"
# Beyond warm-up and duration, what loadgen may take to start (exec, connections) before its
# "measure" line, or to write "end" after the window: a loaded 2-core VM stalls for a second at times.
PHASE_SLACK_S = 5.0
# perf acknowledges "enable"/"disable" within a millisecond here; attaching to many threads first
# can take longer.
PERF_ACK_TIMEOUT_S = 5.0
# A controlled perf counter that was scheduled for less than this share of the server's CPU time in
# its window has missed most of it (see Bench.measure).
SYSCALL_RUNNING_MIN = 0.25
# Every cgroup this driver makes is called c10k-bench-<driver pid>-<n>, so one left by a killed
# run is recognised (its driver is gone) and removed by the next run.
CGROUP_PREFIX = "c10k-bench-"
CGROUP_NAME = re.compile(r"c10k-bench-(\d+)-(\d+)")
CGROUP_REMOVE_TIMEOUT_S = 3.0
CPU_SOURCES = {
    "cgroup-v1": "cgroup v1 cpuacct.usage (ns)",
    "cgroup-v2": "cgroup v2 cpu.stat usage_usec (µs)",
    "schedstat": ("per-thread /proc/PID/task/TID/schedstat (ns) over the process tree, plus reaped "
                  "children's cutime+cstime (10 ms ticks); threads that exit within the window are lost"),
}


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop measuring, keep what we have."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# --- scenarios -----------------------------------------------------------------------------------

class Point:
    def __init__(self, scenario, label, x, route, args, quick, servers_for=None, server_set=(), fresh=False,
                 duration=None, server_add=()):
        self.scenario, self.label, self.x, self.route = scenario, label, x, route
        self.args, self.quick = args, quick
        # for=PATTERN,...: the servers (by name or family, shell patterns) the point is run for;
        # None: every server.
        self.servers_for = servers_for
        # set=OPTION:VALUE,...: the server runs with OPTION's value replaced by VALUE (servers whose
        # arguments lack OPTION run with their own: a baseline).
        self.server_set = tuple(server_set)
        # add=OPTION:VALUE,...: the servers run with these options added (nginx: see
        # nginx_listen_options).
        self.server_add = tuple(server_add)
        # fresh: the server is started for this point alone, so its exit counts belong to it.
        self.fresh = fresh
        # duration=SECONDS: the point's measured window is at least this long (a per-second
        # timeline needs more than the default second); None: --duration.
        self.duration = duration

    def is_for(self, config):
        """Whether the point is run for this server configuration (its for= patterns)."""
        if self.servers_for is None:
            return True
        return any(fnmatch.fnmatchcase(config.name, pattern) or fnmatch.fnmatchcase(config.family, pattern)
                   for pattern in self.servers_for)


def thread_ladder(cpus, quick=False):
    """The thread counts of a {T} line: 1, 2, 4, ... up to the number of server CPUs (that number
    itself too), then twice and four times it (oversubscription). The quick suite takes 1, the
    number of CPUs and four times it."""
    ladder = []
    t = 1
    while t < cpus:
        ladder.append(t)
        t *= 2
    ladder += [cpus, 2 * cpus, 4 * cpus]
    if quick:
        ladder = [1, cpus, 4 * cpus]
    return sorted(set(ladder))


def apply_server_set(args, server_set, server_add=()):
    """A server's arguments with the values of the options of set= replaced (`--threads 4` or
    `--threads=4`); an option the arguments lack is not added. Then add='s options are appended."""
    args = list(args)
    for option, value in server_add:
        args += [option, value]
    for option, value in server_set:
        for i, arg in enumerate(args):
            if arg == option and i + 1 < len(args):
                args[i + 1] = value
            elif arg.startswith(option + "="):
                args[i] = f"{option}={value}"
    return args


# What nginx's listen directive gains for an option of add= (the same effect as the option has
# on our servers); an option without an entry is not applied to nginx.
NGINX_ADD = {"--defer-accept": " deferred"}


def nginx_listen_options(server_add):
    return "".join(NGINX_ADD.get(option, "") for option, _ in server_add)


def load_scenarios(path=SCENARIOS_FILE, server_cpus=1):
    """The points of a scenarios file; a line with {T} becomes one point per thread count of
    thread_ladder(server_cpus)."""
    points = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 4:
                raise ValueError(f"{path}:{number}: expected: scenario point x route args...")
            expanded = any("{T}" in field for field in fields)
            quick_line = len(fields) > 4 and fields[4] == "quick"
            ladder = thread_ladder(server_cpus) if expanded else [None]
            quick_ladder = thread_ladder(server_cpus, quick=True) if expanded else [None]
            for t in ladder:
                line_fields = [field.replace("{T}", str(t)) for field in fields] if expanded else fields
                points.append(parse_point(path, number, line_fields, quick_line and t in quick_ladder))
    labels = set()
    for point in points:
        if (point.scenario, point.label) in labels:
            raise ValueError(f"{path}: point {point.label} of {point.scenario} is defined twice")
        labels.add((point.scenario, point.label))
    return points


def parse_point(path, number, fields, quick):
    scenario, label, route, rest = fields[0], fields[1], fields[3], fields[4:]
    try:
        x = float(fields[2])
    except ValueError:
        raise ValueError(f"{path}:{number}: x must be a number, got {fields[2]!r}") from None
    if rest and rest[0] == "quick":
        rest = rest[1:]
    servers_for, server_set, fresh, duration, server_add = None, [], False, None, []
    while rest and not rest[0].startswith("-"):
        token = rest.pop(0)
        if token.startswith("for=") and len(token) > 4:
            servers_for = token[4:].split(",")
        elif token.startswith(("set=", "add=")):
            pairs = server_set if token.startswith("set=") else server_add
            for item in token[4:].split(","):
                option, sep, value = item.partition(":")
                if not sep or not option.startswith("-") or not value:
                    raise ValueError(f"{path}:{number}: {token[:4]} takes OPTION:VALUE,..., got {item!r}")
                pairs.append((option, value))
        elif token == "fresh":
            fresh = True
        elif token.startswith("duration="):
            try:
                duration = float(token[9:])
            except ValueError:
                duration = None
            if duration is None or not duration > 0:
                raise ValueError(f"{path}:{number}: duration= takes a positive number of seconds, got {token!r}")
        else:
            raise ValueError(f"{path}:{number}: unknown token {token!r} (before the loadgen arguments: "
                             "quick, for=, set=, add=, fresh, duration=)")
    return Point(scenario, label, x, route, rest, quick, servers_for, server_set, fresh, duration, server_add)


def scenario_names(points):
    names = []
    for point in points:
        if point.scenario not in names:
            names.append(point.scenario)
    return names


# --- which servers, with which arguments -----------------------------------------------------------

class ServerConfig:
    """One benchmarked configuration: a name, the binary (bin/<binary>, or a path), its family and
    the arguments it is run with (before --port 0)."""

    def __init__(self, name, binary, family, args, path=None):
        self.name, self.binary, self.family, self.args = name, binary, family, list(args)
        self.path = path or os.path.join(ROOT, "bin", binary)


def load_server_table(path):
    """harness/servers.txt: name, binary, family, arguments... per line ('#' starts a comment)."""
    table = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 3:
                raise ValueError(f"{path}:{number}: expected: name binary family arguments...")
            name, binary, family = fields[:3]
            if any(c in name for c in "/\0") or name in (".", "..") or name == "nginx":
                raise ValueError(f"{path}:{number}: {name!r} cannot name a server (it names files)")
            if any(entry.name == name for entry in table):
                raise ValueError(f"{path}:{number}: {name!r} is defined twice")
            table.append(ServerConfig(name, binary, family, fields[3:]))
    return table


# The family of the reference rows: nginx (configured by the driver) and the floor (bin/floor,
# harness/floor.c, a harness tool that `make all` builds, not in SERVERS). They answer GET / only.
REFERENCE = "reference"


def nginx_config():
    return ServerConfig("nginx", "nginx", REFERENCE, [], path=shutil.which("nginx") or "/usr/sbin/nginx")


def server_catalogue(table, makefile_servers, extra_bins):
    """The default server list and every configuration --servers may name. Defaults: every entry of
    the table whose binary is in SERVERS, then every SERVERS binary without an entry (no
    arguments, family "other"), then the table's reference entries (the floor: a harness tool in
    bin/, not a server, so not in SERVERS), then nginx. --server-bin NAME=PATH replaces the binary
    of a known NAME (arguments and family kept) or adds NAME."""
    known = {entry.name: entry for entry in table}
    defaults = [entry.name for entry in table if entry.binary in makefile_servers and entry.family != REFERENCE]
    for binary in makefile_servers:
        if not any(entry.binary == binary for entry in table) and binary not in known:
            known[binary] = ServerConfig(binary, binary, "other", [])
            defaults.append(binary)
    defaults += [entry.name for entry in table if entry.family == REFERENCE]
    known["nginx"] = nginx_config()
    defaults.append("nginx")
    for name, path in extra_bins.items():
        if name in known:
            known[name].path = path
        else:
            known[name] = ServerConfig(name, os.path.basename(path), "other", [], path=path)
    return defaults, known


def makefile_list(target):
    out = subprocess.run(["make", "-s", "--no-print-directory", target], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
# Written by c10k-lab's bench.py: the reference row. One worker, like our single-core servers.
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{
    worker_connections {connections};
    use epoll;
    multi_accept off;
}}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {{
        listen {address}:{port} backlog=1024{listen_options};
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""


def read_proc(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def proc_stat_fields(pid):
    text = read_proc(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def process_tree(root_pid):
    """The root and all its descendants that are alive now (walks all of /proc: the fallback when
    the server has no cgroup)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def task_ids(pid):
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


# --- cgroups: the server's CPU time in nanoseconds, exited children included ---------------------------

def cgroup_parents():
    """[(source, directory)]: where this driver may make child cgroups that account CPU time: its own
    cgroup in the v1 hierarchy that has cpuacct, then in the v2 (unified) hierarchy."""
    own = {}
    for line in (read_proc("/proc/self/cgroup") or "").splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        own[controllers] = path
    v1, v2 = [], []
    for line in (read_proc("/proc/self/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount_point, fstype, options = fields[1].replace("\\040", " "), fields[2], fields[3].split(",")
        if fstype == "cgroup" and "cpuacct" in options:
            path = next((p for c, p in own.items() if "cpuacct" in c.split(",")), None)
            if path is not None:
                v1.append(("cgroup-v1", os.path.join(mount_point, path.lstrip("/"))))
        elif fstype == "cgroup2" and "" in own:
            v2.append(("cgroup-v2", os.path.join(mount_point, own[""].lstrip("/"))))
    return v1 + v2


class Cgroup:
    """A cgroup of one server: every process and thread it ever runs is charged to it, whether or
    not it is still alive, so forked children that come and go are counted to the nanosecond."""
    live = set()  # made by this driver and not yet removed: removed at exit whatever happens

    def __init__(self, source, path):
        self.source, self.path = source, path

    @classmethod
    def create(cls, source, parent, number):
        cgroup = cls(source, os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}-{number}"))
        os.mkdir(cgroup.path)
        cls.live.add(cgroup)
        try:
            cgroup.usage_ns()
        except (OSError, ValueError):
            cgroup.remove()
            raise
        return cgroup

    def join(self):
        """Moves the calling process in; Popen's preexec_fn, so the server starts inside."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def usage_ns(self):
        if self.source == "cgroup-v1":
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read())
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * 1000
        raise ValueError(f"no usage_usec in {self.path}/cpu.stat")

    def _ids(self, name):
        text = read_proc(os.path.join(self.path, name))
        # v1 may list a process twice while it moves.
        return sorted({int(v) for v in text.split()}) if text else []

    def processes(self):
        return self._ids("cgroup.procs")

    def threads(self):
        return self._ids("tasks" if self.source == "cgroup-v1" else "cgroup.threads")

    def kill_all(self):
        # Only processes in this server's own cgroup: whatever it forked, even if it left the session.
        if self.source == "cgroup-v2" and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            try:
                with open(os.path.join(self.path, "cgroup.kill"), "w") as f:
                    f.write("1")
                return
            except OSError:
                pass
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self):
        """Kills what is left in it and removes it; returns None, or why it could not (bounded)."""
        deadline = time.monotonic() + CGROUP_REMOVE_TIMEOUT_S
        problem = None
        while True:
            if self.processes():
                self.kill_all()
            try:
                os.rmdir(self.path)
                Cgroup.live.discard(self)
                return None
            except FileNotFoundError:
                Cgroup.live.discard(self)
                return None
            except OSError as e:
                # EBUSY while killed tasks finish exiting.
                problem = f"cannot remove cgroup {self.path}: {e}"
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    return problem
            time.sleep(0.02)


def remove_all_cgroups():
    for cgroup in list(Cgroup.live):
        problem = cgroup.remove()
        if problem:
            log(f"bench: {problem}")


def driver_alive(pid):
    cmdline = read_proc(f"/proc/{pid}/cmdline")
    return cmdline is not None and "bench.py" in cmdline


def remove_stale_cgroups(parents):
    """Cgroups of earlier runs whose driver is gone (killed with SIGKILL, say): their leftover
    processes are that run's servers, so they are killed and the cgroup removed."""
    for source, parent in parents:
        try:
            entries = os.listdir(parent)
        except OSError:
            continue
        for entry in entries:
            match = CGROUP_NAME.fullmatch(entry)
            if not match or int(match.group(1)) == os.getpid() or driver_alive(int(match.group(1))):
                continue
            stale = Cgroup(source, os.path.join(parent, entry))
            problem = stale.remove()
            log(f"bench: stale cgroup {stale.path} of a run that is gone: "
                + (problem or "removed"))


def choose_cpu_source(requested):
    """The CPU accounting for this run: the first of cgroup v1 cpuacct, cgroup v2 and per-thread
    schedstat that works here (or the one asked for). Returns (source, parent directory or None,
    why the better ones were not used)."""
    notes = []
    if requested == "schedstat":
        return "schedstat", None, ["asked for with --cpu-source"]
    for source, parent in cgroup_parents():
        if requested not in ("auto", source):
            continue
        try:
            Cgroup.create(source, parent, 0).remove()
            return source, parent, notes
        except (OSError, ValueError) as e:
            notes.append(f"{source} at {parent}: {e}")
    if requested != "auto":
        notes.append(f"{requested} not available")
    if not notes:
        notes.append("no cgroup hierarchy accounts CPU here")
    return "schedstat", None, notes


class Server:
    """One server process (and its children), started fresh for a scenario."""
    cgroups_made = 0

    def __init__(self, config, command, run_dir, tag, cpu_source, cgroup_parent, address="127.0.0.1",
                 nginx_listen=""):
        self.config, self.name, self.command = config, config.name, command
        self.nginx_listen = nginx_listen  # options of nginx's listen directive (nginx_listen_options)
        self.address = address  # where the load reaches it (--server-host), and nginx listens
        self.stderr_path = os.path.join(run_dir, "logs", f"{tag}.stderr")
        self.process = None
        self.port = None
        self.run_dir = run_dir
        self.cpu_source, self.cgroup_parent = cpu_source, cgroup_parent
        self.cgroup = None
        self.cpu_source_note = None
        # Set when the server exited with status 1 before listening with a line "NAME: unavailable:
        # WHY" on stderr: the convention for "this kernel lacks what I need" (io_uring disabled,
        # say), which a die() of a real start-up failure does not print. Its message.
        self.skip_message = None

    def _make_cgroup(self):
        if self.cgroup_parent is None:
            return
        Server.cgroups_made += 1
        try:
            self.cgroup = Cgroup.create(self.cpu_source, self.cgroup_parent, Server.cgroups_made)
        except (OSError, ValueError) as e:
            self._fall_back(f"cannot make a cgroup: {e}")

    def _fall_back(self, why):
        if self.cgroup is not None:
            self.cgroup.remove()
        self.cgroup = None
        self.cpu_source = "schedstat"
        self.cpu_source_note = why
        log(f"bench: {self.name}: CPU from schedstat instead of a cgroup: {why}")

    def start(self):
        os.makedirs(os.path.dirname(self.stderr_path), exist_ok=True)
        is_nginx = self.name == "nginx"
        if is_nginx:
            self.port = free_port()
            conf_dir = os.path.join(self.run_dir, "nginx")
            os.makedirs(conf_dir, exist_ok=True)
            with open(os.path.join(conf_dir, "nginx.conf"), "w") as f:
                nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                f.write(NGINX_CONF.format(dir=conf_dir, port=self.port, nofile=nofile, connections=nofile - 16,
                                          address=self.address, listen_options=self.nginx_listen))
        self._make_cgroup()
        with open(self.stderr_path, "w") as stderr:
            while True:
                try:
                    self.process = subprocess.Popen(
                        self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                        start_new_session=True, cwd=ROOT, preexec_fn=self.cgroup.join if self.cgroup else None)
                    break
                except subprocess.SubprocessError as e:
                    if self.cgroup is None:
                        return f"cannot start {self.command[0]}: {e}"
                    # The move into the cgroup failed in the child: measure without it.
                    self._fall_back(f"cannot move the server into its cgroup: {e}")
                except OSError as e:
                    return f"cannot start {self.command[0]}: {e}"
        deadline = time.monotonic() + START_TIMEOUT_S
        if is_nginx:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return f"exited with status {self.process.returncode} before listening"
                try:
                    socket.create_connection((self.address, self.port), timeout=0.5).close()
                    return None
                except OSError:
                    time.sleep(0.05)
            return f"not listening within {START_TIMEOUT_S:.0f} s"
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(self.process.stdout.fileno(), 1)
            if not chunk:
                break
            line += chunk
        match = re.fullmatch(rb"listening on (\S+):(\d+)\n", line)
        if not match:
            if self.process.poll() is None and line == b"":
                # Its stdout closed: it is exiting; give it a moment to say with which status.
                try:
                    self.process.wait(max(0.0, min(1.0, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass
            if self.process.poll() is not None:
                said = [text for text in (read_proc(self.stderr_path) or "").splitlines()
                        if "unavailable:" in text]
                if self.process.returncode == 1 and said:
                    self.skip_message = said[-1].strip()
                return f"exited with status {self.process.returncode} before listening"
            return f"no 'listening on' line within {START_TIMEOUT_S:.0f} s (got {line[:80]!r})"
        self.port = int(match.group(2))
        return self.check_local() if self.address != "127.0.0.1" else None

    def check_local(self):
        """Its CPU, memory and system calls are read from this machine's /proc, so the process
        started (through --rsh-agent on a --server-host too) must be the server itself, here."""
        try:
            exe = os.path.realpath(f"/proc/{self.process.pid}/exe")
        except OSError as e:
            return f"cannot see the server's process: {e}"
        wanted = os.path.realpath(shutil.which(self.config.path) or self.config.path)
        if exe != wanted:
            return (f"the process started is {exe}, not the server {wanted}: the server must run on this "
                    "machine (a namespace host through --server-agent, or here) so that its CPU can be measured")
        return None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def pids(self):
        """The server's processes: its cgroup's list (a fork-per-connection server holding 10 000
        connections has 10 000 processes: walking all of /proc for them takes seconds), else its
        process tree."""
        if self.cgroup is not None:
            return self.cgroup.processes()
        return process_tree(self.process.pid) if self.alive() else []

    def thread_ids(self, pids):
        if self.cgroup is not None:
            return self.cgroup.threads()
        return [tid for pid in pids for tid in task_ids(pid)]

    def cpu_ns(self):
        if self.cgroup is not None:
            try:
                return self.cgroup.usage_ns()
            except (OSError, ValueError):
                return None
        total = 0.0
        for pid in self.pids():
            fields = proc_stat_fields(pid)
            if fields:
                # cutime and cstime (fields 16-17 of stat, 14-15 after the name): reaped children.
                total += (int(fields[13]) + int(fields[14])) * 1e9 / CLK_TCK
            for tid in task_ids(pid):
                schedstat = read_proc(f"/proc/{pid}/task/{tid}/schedstat")
                if schedstat:
                    total += int(schedstat.split()[0])
        return int(total)

    def cpu_sample(self):
        """(CPU ns, when): the time is the middle of the read, which takes a while without a cgroup."""
        before = time.monotonic()
        ns = self.cpu_ns()
        return ns, (before + time.monotonic()) / 2

    def switches(self):
        """Context switches summed over every thread there is now."""
        voluntary = involuntary = 0
        for tid in self.thread_ids(self.pids()):
            status = read_proc(f"/proc/{tid}/status") or ""
            for key, value in re.findall(r"^(voluntary_ctxt_switches|nonvoluntary_ctxt_switches):\s+(\d+)",
                                         status, re.M):
                if key.startswith("voluntary"):
                    voluntary += int(value)
                else:
                    involuntary += int(value)
        return voluntary, involuntary

    def reset_peak_rss(self):
        """Restarts the kernel's peak-RSS mark (VmHWM) of every process at its current RSS.
        Returns None, or why it could not (the peak is then the process's lifetime peak)."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except FileNotFoundError:
                pass  # the process has exited since it was listed
            except OSError as e:
                return f"cannot reset the peak RSS: {e}"
        return None

    def memory(self, with_pss=True):
        """Summed over the server's processes, in bytes: VmHWM (peak RSS), VmRSS, VmSize (virtual:
        a thread's stack reservation shows here, mostly not resident) and PSS (shared pages divided
        among their sharers); and how many processes and threads there are. Read once or twice a
        run, never polled: the kernel keeps the peak, and a sampler sharing the server's CPU showed
        up as latency (p99 of 2-3 ms instead of 0.1 ms at a quarter of the load)."""
        totals = {"VmHWM": 0, "VmRSS": 0, "VmSize": 0, "Pss": 0, "processes": 0, "threads": 0}
        for pid in self.pids():
            status = read_proc(f"/proc/{pid}/status")
            if status is None:
                continue
            totals["processes"] += 1
            for key, value in re.findall(r"^(VmHWM|VmRSS|VmSize):\s+(\d+) kB", status, re.M):
                totals[key] += int(value) * 1024
            threads = re.search(r"^Threads:\s+(\d+)", status, re.M)
            totals["threads"] += int(threads.group(1)) if threads else 0
            if with_pss:
                match = re.search(r"^Pss:\s+(\d+) kB", read_proc(f"/proc/{pid}/smaps_rollup") or "", re.M)
                totals["Pss"] += int(match.group(1)) * 1024 if match else 0
        return totals

    def stderr_tail(self, lines=20):
        text = read_proc(self.stderr_path) or ""
        if self.name == "nginx":
            text += read_proc(os.path.join(self.run_dir, "nginx", "nginx-error.log")) or ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        """SIGTERM, then SIGKILL; then whatever is left in its cgroup goes, and the cgroup. Returns
        None when it stopped cleanly, else the problem."""
        if self.process is None:
            return self._remove_cgroup(None)
        problem = None
        if self.process.poll() is not None:
            problem = f"had exited with status {self.process.returncode}"
        else:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
                if self.process.returncode != 0:
                    problem = f"exited with status {self.process.returncode} on SIGTERM"
            except subprocess.TimeoutExpired:
                problem = f"did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed"
        # Whatever is left of its process group goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        return self._remove_cgroup(problem)

    def _remove_cgroup(self, problem):
        if self.cgroup is None:
            return problem
        removal = self.cgroup.remove()
        if removal:
            log(f"bench: {removal}")
            problem = f"{problem}; {removal}" if problem else removal
        self.cgroup = None
        return problem


# --- system calls --------------------------------------------------------------------------------------

# The calls the separate system-call run counts by name (a syscalls:sys_enter_NAME tracepoint
# each, where the kernel has it): what a server makes per request or connection. Others are only
# in the total.
SYSCALL_NAMES = ["accept", "accept4", "recvfrom", "read", "recvmsg", "sendto", "write", "writev", "sendmsg",
                 "close", "shutdown", "setsockopt", "getsockopt", "fcntl", "ioctl", "epoll_ctl", "epoll_wait",
                 "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6", "io_uring_enter",
                 "futex", "clone", "clone3", "wait4", "mmap", "munmap", "madvise", "rt_sigprocmask"]
TRACEFS_SYSCALLS = next((p for p in ("/sys/kernel/tracing/events/syscalls",
                                     "/sys/kernel/debug/tracing/events/syscalls") if os.path.isdir(p)), None)


def traced_syscall_names():
    """The names of SYSCALL_NAMES this kernel has an enter tracepoint for."""
    if TRACEFS_SYSCALLS is None:
        return []
    return [n for n in SYSCALL_NAMES if os.path.isdir(os.path.join(TRACEFS_SYSCALLS, f"sys_enter_{n}"))]


def perf_calls(path):
    """{name: count} of the syscalls:sys_enter_NAME lines of a `perf stat -x,` output file."""
    calls = {}
    for line in (read_proc(path) or "").splitlines():
        fields = line.split(",")
        if len(fields) > 3 and fields[2].startswith("syscalls:sys_enter_") and fields[0].strip().isdigit():
            calls[fields[2][len("syscalls:sys_enter_"):]] = int(fields[0])
    return calls


def perf_count(path, enabled=False):
    """(count, seconds the counter ran, problem) from a `perf stat -x,` output file for
    raw_syscalls:sys_enter. enabled: perf acknowledged enabling the counter, so "<not counted>"
    (it never ran while enabled: no thread of the server was scheduled) means no system call."""
    text = read_proc(path) or ""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 3 and fields[2] == "raw_syscalls:sys_enter":
            running_s = int(fields[3]) / 1e9 if fields[3].strip().isdigit() else None
            if fields[0].strip().isdigit():
                return int(fields[0]), running_s, None
            if enabled and fields[0].strip() == "<not counted>":
                return 0, 0.0, None
            return None, None, f"perf counted {fields[0]!r}"
    return None, None, "perf wrote no count"


class SyscallCounter:
    """`perf stat -e raw_syscalls:sys_enter` attached to the server's processes (children forked
    later inherit the counter). Controlled, it starts disabled (-D -1) and counts only between
    enable() and disable() (--control fd:CTL,ACK), i.e. loadgen's measured window."""
    ATTEMPTS = 3

    def __init__(self, path, controlled, by_name=()):
        self.path, self.controlled = path, controlled
        self.by_name = list(by_name)  # also count these calls one by one (SYSCALL_NAMES)
        self.enabled_at = self.disabled_at = None
        self.problem = None
        self.process = None
        self.running_s = None  # how long the counter was scheduled, children's time included
        self.control_delay_s = 0.0  # the longest wait for an ack of enable or disable
        self.control_write = self.ack_read = None

    def start(self, list_pids):
        """Attaches perf; self.problem says if it could not. list_pids: returns the processes to
        attach to. A process that exits between the listing and the attach (a fork-per-connection
        child of the previous run) makes perf give up, so a failed attach is retried with a new
        list. Apart from __init__ so that whoever may have to kill() it holds it first."""
        for _ in range(self.ATTEMPTS):
            self.problem = None
            self._start(list_pids())
            problem = self._wait_attached()
            if problem is None:
                return
            self.kill()
            self.problem = problem
        self.problem = f"perf could not attach ({self.ATTEMPTS} tries): {self.problem}"

    def _start(self, pids):
        command = ["perf", "stat", "-x,", "-o", self.path, "-e", "raw_syscalls:sys_enter"]
        for name in self.by_name:
            command += ["-e", f"syscalls:sys_enter_{name}"]
        keep = ()
        if self.controlled:
            control_read, self.control_write = os.pipe()
            self.ack_read, ack_write = os.pipe()
            command += ["-D", "-1", "--control", f"fd:{control_read},{ack_write}"]
            keep = (control_read, ack_write)
        command += ["-p", ",".join(str(p) for p in pids)]
        try:
            with open(self.path + ".err", "w") as stderr:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=stderr, start_new_session=True, pass_fds=keep)
        finally:
            for fd in keep:
                os.close(fd)

    def _wait_attached(self):
        """None once perf counts (controlled: it answers a ping only after attaching), else why not."""
        if self.controlled:
            if self._command("ping") is not None:
                return None
        else:
            time.sleep(0.1)  # perf must be attached before the load starts
            if self.process.poll() is None:
                return None
        try:
            self.process.wait(1)
        except subprocess.TimeoutExpired:
            pass
        lines = (read_proc(self.path + ".err") or "").strip().splitlines()
        return (self.problem or "perf exited") + (f": {lines[0][:200]}" if lines else "")

    def _command(self, word):
        """Sends a --control command and waits for perf's ack. Returns when the command took
        effect, as far as can be told: halfway between the send and the ack (enabling the counter
        of every child of a server holding thousands of them takes perf a tenth of a second); or
        None."""
        if self.problem:
            return None
        sent = time.monotonic()
        try:
            os.write(self.control_write, f"{word}\n".encode())
        except OSError as e:
            self.problem = f"perf --control: cannot send {word}: {e}"
            return None
        deadline = time.monotonic() + PERF_ACK_TIMEOUT_S
        received = b""
        while b"ack" not in received:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.ack_read], [], [], max(0.0, left))
            if not ready:
                self.problem = f"perf did not acknowledge {word} within {PERF_ACK_TIMEOUT_S:.0f} s"
                return None
            chunk = os.read(self.ack_read, 64)
            if not chunk:
                self.problem = f"perf exited before acknowledging {word}"
                return None
            received += chunk
        acked = time.monotonic()
        self.control_delay_s = max(self.control_delay_s, acked - sent)
        return (sent + acked) / 2

    def enable(self):
        self.enabled_at = self._command("enable")

    def disable(self):
        self.disabled_at = self._command("disable")

    def window_s(self):
        if self.enabled_at is None or self.disabled_at is None:
            return None
        return self.disabled_at - self.enabled_at

    def _close(self):
        for fd in (self.control_write, self.ack_read):
            if fd is not None:
                os.close(fd)
        self.control_write = self.ack_read = None

    def stop(self):
        """Stops perf; returns (count, problem)."""
        if self.process is None or self.problem:
            self.kill()
            return None, self.problem
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, "perf did not stop"
        self._close()
        count, self.running_s, problem = perf_count(self.path, enabled=self.controlled and self.window_s() is not None)
        return count, problem

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close()


def perf_available():
    try:
        result = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf cannot run: {e}"
    if result.returncode != 0 or "raw_syscalls:sys_enter" not in result.stderr:
        return "perf cannot count raw_syscalls:sys_enter here: " + result.stderr.strip()[-200:]
    if "<not supported>" in result.stderr or "<not counted>" in result.stderr:
        return "perf: raw_syscalls:sys_enter not supported here"
    return None


def perf_control_problem():
    """Whether `perf stat -D -1 --control fd:` works here: counts a shell loop (which makes system
    calls, so the counter runs while enabled) between an enable and a disable. Returns None, or why
    not."""
    target = subprocess.Popen(["sh", "-c", "while :; do echo >/dev/null; done"], stdin=subprocess.DEVNULL,
                              start_new_session=True)
    handle, path = tempfile.mkstemp(prefix="c10k-perf-probe-")
    os.close(handle)
    counter = SyscallCounter(path, controlled=True)
    try:
        counter.start(lambda: [target.pid])
        counter.enable()
        time.sleep(0.05)
        counter.disable()
        count, problem = counter.stop()
        if count is None:
            return f"perf --control did not work: {problem}"
        return None
    except OSError as e:
        return f"perf --control did not work: {e}"
    finally:
        counter.kill()
        target.kill()
        target.wait()
        for leftover in (path, path + ".err"):
            if os.path.exists(leftover):
                os.unlink(leftover)


# --- one measurement -------------------------------------------------------------------------------

class PhaseReader:
    """loadgen's --phase-fd lines ("measure", "end"), read with a deadline."""

    def __init__(self, fd):
        self.fd, self.pending, self.eof = fd, b"", False

    def next(self, deadline):
        """The next line; None when the deadline came first, "" at end of file (loadgen gone)."""
        while b"\n" not in self.pending:
            if self.eof:
                return ""
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 64)
            if not chunk:
                self.eof = True
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")

    def close(self):
        os.close(self.fd)


def loadgen_summary(doc):
    """The figures of one loadgen JSON document that the results keep (see docs/loadgen.md)."""
    totals, rates, response = doc["totals"], doc["rates"], doc["latency"]["response_time"]
    summary = {
        "requests_per_s": rates["requests_per_s"],
        "bytes_per_s": rates["bytes_read_per_s"],
        "completed": totals["completed"],
        "failed": totals["failed"],
        "warmup_completed": totals["warmup"]["completed"],
        "in_flight_at_end": totals["in_flight_at_end"],
        "responses_in_window": totals["responses_in_window"],
        "connections": doc["fairness"]["connections"],
        "connections_served": doc["fairness"]["served"],
        "fairness_jain_index": doc["fairness"]["jain_index"],
        "errors": doc["errors"]["total"],
        # By class, only those that occurred: the reason a point that served nobody gives.
        "error_classes": {k: v for k, v in doc["errors"].items()
                          if k not in ("total", "connect_without_request") and v},
        "latency_p50_us": response["p50_us"],
        "latency_p90_us": response["p90_us"],
        "latency_p99_us": response["p99_us"],
        "latency_p999_us": response["p99_9_us"],
        "latency_max_us": response["max_us"],
        "latency_mean_us": response["mean_us"],
        "client_cpu_us_per_request": doc["cpu"]["us_per_request"],
    }
    paths = doc.get("paths")
    if paths:
        # --mix: every path's figures; "fast" is the URL's path (paths[0]), "slow" the first --mix path.
        summary["paths"] = [{"path": path.get("path"), "percent": path.get("percent"),
                             "requests": path.get("requests"), "errors": path.get("errors"),
                             **{f"latency_{name}_us": ((path.get("latency") or {}).get("response_time") or {}).get(f"{name}_us")
                                for name in ("p50", "p99", "max")}}
                            for path in paths]
        for prefix, path in (("fast", summary["paths"][0]), ("slow", summary["paths"][1] if len(paths) > 1 else None)):
            if path is None:
                continue
            for key in ("requests", "errors", "latency_p50_us", "latency_p99_us", "latency_max_us"):
                if isinstance(path.get(key), (int, float)):
                    summary[f"{prefix}_{key}"] = path[key]
    if doc["config"]["mode"] == "open":
        service = doc["latency"]["service_time"]
        summary.update({
            "offered_rate": rates["offered_per_s"],
            "achieved_rate": rates["achieved_per_s"],
            "saturated": bool(rates["saturated"]),
            "service_p50_us": service["p50_us"],
            "service_p99_us": service["p99_us"],
            "send_lag_p99_us": rates["send_lag_p99_us"],
        })
    if doc["config"]["idle"]:
        summary["idle_established"] = doc["idle"]["established"]
        summary["idle_open_at_end"] = doc["idle"]["open_at_end"]
        # A server that refuses descriptors it cannot watch (select beyond FD_SETSIZE) closes them.
        summary["idle_closed_by_peer"] = doc["idle"]["closed_by_peer"]
        summary["idle_failed"] = doc["idle"]["failed"]
    return summary


class Bench:
    def __init__(self, args, run_dir, points, servers, catalogue, cpu_source):
        self.args, self.run_dir, self.points, self.servers = args, run_dir, points, servers
        self.catalogue = catalogue
        self.cpu_source, self.cgroup_parent, cpu_notes = cpu_source
        self.results_path = os.path.join(run_dir, "results.json")
        self.records = []
        self.perf_problem = None if not args.no_perf else "disabled with --no-perf"
        if self.perf_problem is None:
            self.perf_problem = perf_available()
        self.perf_control_problem = None
        if self.perf_problem is None:
            self.perf_control_problem = perf_control_problem()
        # Every loadgen and perf counter running (several at once with --simultaneous), for interrupt.
        self.current_loadgens = set()
        self.current_perfs = set()
        self.current_servers = []
        self.runs_total = sum(len(self.applicable(s, points)) for s in servers) * args.reps
        # Measured seconds over all runs (a point's duration= lengthens its own), for the estimate.
        self.seconds_total = sum(max(args.duration, p.duration or 0)
                                 for s in servers for p in self.applicable(s, points)) * args.reps
        self.runs_done = 0
        self.started = time.monotonic()
        self.plaintext_rate = {}
        # The arguments of the servers whose arguments a point's set= changed, while it runs.
        self.group_args = {}
        cpu_text = CPU_SOURCES[self.cpu_source]
        if cpu_notes and self.cpu_source == "schedstat":
            cpu_text += " (no cgroup: " + "; ".join(cpu_notes) + ")"
        if self.perf_problem:
            syscalls = self.perf_problem
        elif self.perf_control_problem:
            syscalls = ("perf stat -e raw_syscalls:sys_enter on the server's processes, in a separate short "
                        "run per point, over the whole run (warm-up included): " + self.perf_control_problem)
        else:
            syscalls = ("perf stat -e raw_syscalls:sys_enter on the server's processes, in a separate short "
                        "run per point, enabled only in loadgen's measured window (--control)")
        if self.perf_problem is None and args.syscalls_every_rep:
            syscalls = syscalls.replace("in a separate short run per point", "in every repetition, "
                                        "while its CPU is measured")
        self.document = {
            "schema": SCHEMA,
            "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished_at": None,
            "complete": False,
            "interrupted": False,
            "environment": environment(args),
            "settings": {
                "servers": [s for s in servers], "scenarios": scenario_names(points),
                "server_configs": {name: {"binary": catalogue[name].binary, "family": catalogue[name].family,
                                          "args": catalogue[name].args, "command": self.server_command(name)}
                                   for name in servers},
                "reps": args.reps, "duration_s": args.duration, "warmup_s": args.warmup,
                "server_cpus": args.server_cpus, "client_cpus": args.client_cpus,
                "server_cpu_count": len(cpu_list(args.server_cpus)),
                "loadgen_threads": args.loadgen_threads, "timeout_s": args.timeout,
                "sources": args.sources, "quick": args.quick,
                "load_hosts": args.load_hosts or None, "server_host": args.server_host,
                # What reproduces the run: this command, at the commit of the environment.
                "command": shlex.join(["./run_all.sh"] + args.argv),
                "server_cpu_source": cpu_text,
                "syscalls": syscalls,
            },
            "records": self.records,
        }
        self.save()

    def applicable(self, server, points):
        """The points measured on a server: those for it, with its route."""
        return [p for p in points if self.is_for(server, p) and not self.route_missing(server, p)]

    def is_for(self, server, point):
        """A point is run only for the servers its for= names (no record for the others)."""
        return point.is_for(self.catalogue[server])

    def route_missing(self, server, point):
        """The reference rows (nginx, the floor) answer GET / only: /cpu, /sleep, /bytes and /echo
        are not applicable to them."""
        return self.catalogue[server].family == REFERENCE and point.route != "/"

    def save(self):
        temporary = self.results_path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(self.document, f, indent=1)
            f.write("\n")
        os.replace(temporary, self.results_path)

    def eta(self):
        if self.runs_done == 0:
            return "?"
        left = (time.monotonic() - self.started) / self.runs_done * (self.runs_total - self.runs_done)
        return f"{int(left // 60)}m{int(left % 60):02d}s"

    def server_command(self, name, server_set=(), server_add=()):
        """The full command line a server runs with (recorded in results.json as it is run);
        server_set, server_add: a point's set= and add= (see apply_server_set)."""
        config = self.catalogue[name]
        command = ["taskset", "-c", self.args.server_cpus, config.path]
        if name == "nginx":
            conf_dir = os.path.join(self.run_dir, "nginx")
            command += ["-c", os.path.join(conf_dir, "nginx.conf"), "-p", conf_dir,
                        "-e", os.path.join(conf_dir, "nginx-error.log")]
        else:
            command += apply_server_set(config.args, server_set, server_add)
            command += ["--port", "0"] + (["--host", self.args.server_host] if self.args.server_host else [])
        if self.args.server_agent:
            # The agent runs a command line on the host as ssh does; exec keeps the process the
            # server's own, so that it is measured and stopped as one started here.
            command = shlex.split(self.args.rsh_agent) + [self.args.server_host, "exec " + shlex.join(command)]
        return command

    def record(self, server, point, status, **fields):
        record = {"server": server, "family": self.catalogue[server].family, "scenario": point.scenario,
                  "point": point.label, "x": point.x, "route": point.route, "status": status}
        varied = self.group_args.get(server)
        if varied is not None:
            record["server_args"] = varied
        if point.duration and point.duration > self.args.duration:
            record["duration_s"] = point.duration
        record.update(fields)
        self.records.append(record)
        self.save()
        return record

    def run(self):
        for scenario in scenario_names(self.points):
            self.run_scenario(scenario, [p for p in self.points if p.scenario == scenario])
        self.document["complete"] = True

    def run_scenario(self, scenario, points):
        """Runs the scenario's points in groups that share the servers' arguments (a point with
        set= changes them; a fresh point is a group of its own): every server is started fresh for
        each group. Most scenarios are one group: the servers run for the whole scenario."""
        groups = []
        for point in points:
            key = (point.server_set, point.server_add, point.label if point.fresh else None)
            group = next((g for g in groups if g[0] == key), None)
            if group is None:
                groups.append((key, [point]))
            else:
                group[1].append(point)
        for _, group in groups:
            tag = scenario if len(groups) == 1 else f"{scenario}-{group[0].label}"
            self.run_group(scenario, group, tag, whole=len(groups) == 1)

    def run_group(self, scenario, points, tag, whole):
        """Starts every server fresh for these points (all pinned to the server CPUs, idle but one at
        a time), then measures point by point, alternating the servers' order from one repetition to
        the next (A B C, C B A, ...): the machine's drift then falls on all of them alike, and the
        repetitions of two servers with the same number were taken side by side."""
        servers = []
        first_record = len(self.records)
        server_set, server_add = points[0].server_set, points[0].server_add
        self.group_args = {}
        for name in self.servers:
            mine = [p for p in points if self.is_for(name, p)]
            if not mine:
                continue
            missing = [p for p in mine if self.route_missing(name, p)]
            for point in missing:
                self.record(name, point, "not_applicable",
                            reason=f"{name} has no route {point.route} (a reference row answers GET / only)")
            if len(missing) == len(mine):
                continue
            if name == "nginx":
                listen = nginx_listen_options(server_add)
                args = [f"listen{listen}"] if listen else []
            else:
                listen = ""
                args = apply_server_set(self.catalogue[name].args, server_set, server_add)
            if server_set or server_add:
                self.group_args[name] = args
            server = Server(self.catalogue[name], self.server_command(name, server_set, server_add), self.run_dir,
                            f"{name}-{tag}", self.cpu_source, self.cgroup_parent, self.args.server_host or "127.0.0.1",
                            nginx_listen=listen)
            self.current_servers.append(server)
            problem = server.start()
            if problem:
                stop_problem = server.stop()
                self.current_servers.remove(server)
                tail = server.stderr_tail()
                for point in mine:
                    if point in missing:
                        continue
                    self.runs_done += self.args.reps
                    if server.skip_message:
                        # Not a failure: this machine lacks what the server needs, and it said so.
                        self.record(name, point, "skipped", reason=server.skip_message, stderr_tail=tail)
                    else:
                        self.record(name, point, "failed", reason=f"server failed to start: {problem}",
                                    stop_problem=stop_problem, stderr_tail=tail)
                if server.skip_message:
                    log(f"[{self.runs_done}/{self.runs_total}] {name} {scenario}: SKIPPED: {server.skip_message}")
                else:
                    log(f"[{self.runs_done}/{self.runs_total}] {name} {scenario}: FAILED to start: {problem}")
                continue
            servers.append(server)
        dead = {}
        last_record = {}
        try:
            for point in points:
                present = [s for s in servers if self.is_for(s.name, point) and not self.route_missing(s.name, point)]
                for server in present:
                    if server.name in dead:
                        self.runs_done += self.args.reps
                        log(f"[{self.runs_done}/{self.runs_total}] {server.name} {scenario} {point.label}  "
                            f"FAILED: {dead[server.name]}  (eta {self.eta()})")
                        last_record[server.name] = self.record(server.name, point, "failed",
                                                               reason=dead[server.name],
                                                               stderr_tail=server.stderr_tail())
                for record in self.run_point([s for s in present if s.name not in dead], point):
                    last_record[record["server"]] = record
                    server = next(s for s in present if s.name == record["server"])
                    if not server.alive() and server.name not in dead:
                        dead[server.name] = f"server exited (status {server.process.returncode}) during {scenario}"
                        record["status"] = "failed"
                        record["reason"] = dead[server.name]
                        record["stderr_tail"] = server.stderr_tail()
                        self.save()
        finally:
            stop_problems = {s.name: s.stop() for s in servers}
            self.current_servers = []
        for server in servers:
            record = last_record.get(server.name)
            if stop_problems[server.name] and server.name not in dead and record is not None:
                record.setdefault("stop_problem", stop_problems[server.name])
                record["stderr_tail"] = server.stderr_tail()
            scope = ("the server's whole run for this scenario (all points, repetitions, warm-ups, syscall runs)"
                     if whole else "the server's whole run for this point (" + ", ".join(p.label for p in points)
                     + ": repetitions, warm-ups, syscall run)")
            stderr = read_proc(server.stderr_path) or ""
            counts, stats = server_counts(stderr, scope), server_stats(stderr, scope)
            for record in self.records[first_record:]:
                if record["server"] == server.name and record["scenario"] == scenario:
                    if counts:
                        record["server_counts"] = counts
                    if stats:
                        record["server_stats"] = stats
        self.group_args = {}
        self.save()

    def loadgen_args(self, server_name, point):
        args = []
        for arg in point.args:
            match = re.fullmatch(r"\{RATE(\d+)\}", arg)
            if match:
                base = self.plaintext_rate.get(server_name)
                if not base:
                    return None, "no plaintext c=64 throughput to base the rate on"
                arg = str(max(1, int(base * int(match.group(1)) / 100)))
            arg = arg.replace("{SOURCES}", self.args.sources)
            args.append(arg)
        return args, None

    def run_point(self, servers, point):
        """Measures one point on every server, alternating their order by repetition; returns the
        records it wrote."""
        records, runs = [], []
        for server in servers:
            args, problem = self.loadgen_args(server.name, point)
            if problem:
                self.runs_done += self.args.reps
                records.append(self.record(server.name, point, "failed", reason=problem))
            else:
                runs.append({"server": server, "args": args, "reps": [], "raw": [], "failures": []})
        count_syscalls = self.args.syscalls_every_rep and self.perf_problem is None
        for rep in range(1, self.args.reps + 1):
            if self.args.simultaneous:
                # Every server at once, each under its own loadgen: a moment when the machine is
                # slow falls on all of them alike.
                # Started in alternated order too, should starting first be an advantage.
                live = [run for run in (runs if rep % 2 else runs[::-1]) if self.check_alive(run, point, rep)]
                outcomes = {}

                def measure_one(run):
                    try:
                        outcomes[id(run)] = self.measure(run["server"], point, run["args"],
                                                         self.raw_path(run, point, rep), count_syscalls=count_syscalls)
                    except Exception as e:  # reported as this repetition's failure, not lost in a thread
                        outcomes[id(run)] = (None, f"measurement failed: {e!r}")
                threads = [threading.Thread(target=measure_one, args=(run,)) for run in live]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                for run in live:
                    self.take_rep(run, point, rep, *outcomes[id(run)])
                continue
            for run in (runs if rep % 2 else runs[::-1]):
                if self.check_alive(run, point, rep):
                    self.take_rep(run, point, rep, *self.measure(run["server"], point, run["args"],
                                                                  self.raw_path(run, point, rep),
                                                                  count_syscalls=count_syscalls))
        for run in runs:
            records.append(self.finish_point(run["server"], point, run["args"], run["reps"], run["raw"],
                                             run["failures"]))
        return records

    def check_alive(self, run, point, rep):
        server = run["server"]
        if server.alive():
            return True
        run["failures"].append(f"rep {rep}: server not running")
        self.runs_done += 1
        log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
            f"rep {rep}/{self.args.reps}  FAILED: server not running  (eta {self.eta()})")
        return False

    def raw_path(self, run, point, rep):
        return os.path.join(self.run_dir, "raw", f"{run['server'].name}-{point.scenario}-{point.label}-rep{rep}.json")

    def take_rep(self, run, point, rep, measured, problem):
        """Files one repetition's measurement (or its failure) under its run, and logs it."""
        server = run["server"]
        self.runs_done += 1
        if problem:
            run["failures"].append(f"rep {rep}: {problem}")
            log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
                f"rep {rep}/{self.args.reps}  FAILED: {problem}  (eta {self.eta()})")
            return
        measured["rep"] = rep
        run["raw"].append(os.path.relpath(self.raw_path(run, point, rep), self.run_dir))
        run["reps"].append(measured)
        p99 = measured["latency_p99_us"]
        starved = measured["connections"] - measured["connections_served"]
        served = f"  served {measured['connections_served']}/{measured['connections']}" if starved else ""
        log(f"[{self.runs_done}/{self.runs_total}] {server.name} {point.scenario} {point.label} "
            f"rep {rep}/{self.args.reps}  {measured['requests_per_s']:,.0f} req/s  "
            f"p99 {p99 / 1000:.1f} ms  errors {measured['errors']}{served}  (eta {self.eta()})")

    def finish_point(self, server, point, args, reps, raw_files, failures):
        if not reps:
            return self.record(server.name, point, "failed", reason="; ".join(failures) or "no measurement",
                               stderr_tail=server.stderr_tail(), loadgen_args=args)
        # A run in which no response arrived measured nothing but a stall: that is an error too.
        status = "errors" if any(r["errors"] or not r["responses_in_window"] for r in reps) or failures else "ok"
        extra = {"server_cpu_source": CPU_SOURCES[server.cpu_source]
                 + (f" ({server.cpu_source_note})" if server.cpu_source_note else "")}
        if all(not r["responses_in_window"] for r in reps):
            extra["reason"] = ("no response arrived in any repetition's measured window: the server "
                               "answered none of the active connections")
        elif any(not r["responses_in_window"] for r in reps):
            extra["reason"] = ("no response arrived in some repetition's measured window: the server "
                               "answered none of the active connections")
        elif any(r["errors"] for r in reps):
            extra["reason"] = "loadgen counted errors (see errors in the repetitions' raw JSON)"
        elif failures:
            extra["reason"] = "; ".join(failures)
        summary = summarize(reps)
        if self.perf_problem is None and server.alive() and not self.args.syscalls_every_rep:
            extra["syscall_run"] = self.count_syscalls(server, point, args)
            per_request = extra["syscall_run"]["syscalls_per_request"]
            if per_request is not None:
                summary["syscalls_per_request"] = {"median": per_request, "min": per_request, "max": per_request}
        if point.scenario == "plaintext" and point.label == "c=64":
            self.plaintext_rate[server.name] = summary["requests_per_s"]["median"]
        if any("saturated" in r for r in reps):
            extra["saturated"] = any(r.get("saturated") for r in reps)
        return self.record(server.name, point, status, loadgen_args=args, median=summary_medians(summary),
                           spread=summary, reps=reps, raw=raw_files, failures=failures, **extra)

    def count_syscalls(self, server, point, args):
        """One short extra run with perf attached; only its system calls per request are used."""
        raw = os.path.join("raw", f"{server.name}-{point.scenario}-{point.label}-syscalls.json")
        for attempt in (1, 2):
            measured, problem = self.measure(server, point, args, os.path.join(self.run_dir, raw),
                                             count_syscalls=True, duration=SYSCALL_RUN_S, warmup=SYSCALL_RUN_WARMUP_S,
                                             by_name=True)
            # An incomplete count is a rare accident (see measure): one more run, not a lost figure.
            if problem or measured["syscalls"] is not None or not server.alive():
                break
        scope = "whole run" if self.perf_control_problem else "measured window"
        if problem:
            return {"raw": raw, "scope": scope, "syscalls": None, "requests": None, "window_s": None,
                    "control_delay_s": None, "counter_running_s": None, "server_cpu_s": None, "syscalls_per_request": None,
                    "problem": problem}
        return {"raw": raw, "scope": scope, "syscalls": measured["syscalls"],
                "requests": measured["syscall_requests"], "window_s": measured["syscall_window_s"],
                "control_delay_s": measured["syscall_control_delay_s"],
                "counter_running_s": measured["syscall_counter_running_s"], "server_cpu_s": measured["server_cpu_s"],
                "syscalls_per_request": measured["syscalls_per_request"],
                "by_name_per_request": measured.get("syscalls_by_name_per_request"),
                "problem": measured["syscalls_problem"]}

    def cluster_command(self, raw_path, phase_fd):
        """harness/loadgen-cluster: one bin/loadgen-mpi rank per load host, each on --client-cpus."""
        command = [LOADGEN_CLUSTER, "--hosts", ",".join(self.args.load_hosts), "--rsh-agent", self.args.rsh_agent,
                   "--cpus", self.args.client_cpus, "--json", raw_path, "--phase-fd", str(phase_fd),
                   "--work-dir", raw_path[:-5] + ".ranks"]
        return command + (["--subnet", self.args.subnet] if self.args.subnet else [])

    def measure(self, server, point, args, raw_path, count_syscalls=False, duration=None, warmup=None,
                by_name=False):
        """One loadgen run. The server is sampled when loadgen writes "measure" (its window has
        begun: warm-up over, idle connections set up) and "end", so the warm-up and the set-up of
        10 000 idle connections are charged to no request, and the CPU per request divides the
        CPU of the sampled interval by the requests of an interval exactly as long."""
        os.makedirs(os.path.dirname(raw_path), exist_ok=True)
        if duration is None:
            duration = max(self.args.duration, point.duration or 0)
        warmup = self.args.warmup if warmup is None else warmup
        url = f"http://{server.address}:{server.port}{point.route}"
        phase_read, phase_write = os.pipe()
        options = ["-t", str(self.args.loadgen_threads), "-d", str(duration), "--warmup", str(warmup),
                   "--timeout", str(self.args.timeout), "--quiet"]
        if self.args.load_hosts:
            command = self.cluster_command(raw_path, phase_write) + ["--"] + options + without_sources(args) + [url]
        else:
            command = ["taskset", "-c", self.args.client_cpus, self.args.loadgens.get(server.name, LOADGEN)] + options + [
                "--json", raw_path, "--phase-fd", str(phase_write)] + args + [url]
        peak_problem = server.reset_peak_rss()
        perf = None
        perf_path = raw_path[:-5] + ".perf"
        stdout_path = raw_path[:-5] + ".out"
        phases = PhaseReader(phase_read)
        try:
            if count_syscalls:
                perf = SyscallCounter(perf_path, controlled=self.perf_control_problem is None,
                                      by_name=traced_syscall_names() if by_name else ())
                self.current_perfs.add(perf)
                perf.start(server.pids)
            with open(stdout_path, "w") as out:
                try:
                    loadgen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                               pass_fds=(phase_write,))
                finally:
                    os.close(phase_write)
            self.current_loadgens.add(loadgen)
            started = time.monotonic()
            window, phase_problem = self.sample_window(server, phases, perf, started, warmup, duration, args)
            # Closing its connections and writing the JSON is quick; a loadgen that missed its phase
            # lines is stuck or dying, and gets a second.
            deadline = time.monotonic() + (1 if phase_problem else self.args.timeout + 30)
            try:
                loadgen.wait(timeout=max(0.0, deadline - time.monotonic()))
                hung = False
            except subprocess.TimeoutExpired:
                loadgen.kill()
                loadgen.wait()
                hung = True
            self.current_loadgens.discard(loadgen)
            syscalls = None
            syscall_problem = self.perf_problem or "counted in a separate run (record's syscall_run)"
            if perf:
                syscalls, syscall_problem = perf.stop()
                self.current_perfs.discard(perf)
        finally:
            phases.close()
        if hung:
            return None, "loadgen did not finish in time (killed)"
        if loadgen.returncode != 0:
            tail = "\n".join((read_proc(stdout_path) or "").splitlines()[-5:])
            return None, f"loadgen exited with status {loadgen.returncode}: {tail}"
        if phase_problem:
            return None, phase_problem
        try:
            with open(raw_path) as f:
                doc = json.load(f)
            measured = loadgen_summary(doc)
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"unreadable loadgen JSON: {e!r}"
        rate = measured["requests_per_s"]
        window_s = window["t1"] - window["t0"]
        cpu_s = None
        if window["cpu1"] is not None and window["cpu0"] is not None:
            cpu_s = (window["cpu1"] - window["cpu0"]) / 1e9
        # Requests in the sampled interval: loadgen's rate over its window, times the interval's
        # length, so a sample taken late neither adds CPU without requests nor the reverse.
        requests = rate * window_s
        memory = window["memory"]
        measured.update({
            "server_cpu_s": round(cpu_s, 6) if cpu_s is not None else None,
            "server_cpu_window_s": round(window_s, 6),
            "server_cpu_us_per_request": round(cpu_s * 1e6 / requests, 3) if cpu_s is not None and requests > 0 else None,
            "peak_rss_bytes": max(memory["VmHWM"], window["peak_at_end"]),
            "peak_rss_problem": peak_problem,
            "pss_mid_run_bytes": memory["Pss"],
            "rss_mid_run_bytes": memory["VmRSS"],
            "vmsize_mid_run_bytes": memory["VmSize"],
            "processes": memory["processes"],
            "threads": memory["threads"],
            "voluntary_switches": window["switches1"][0] - window["switches0"][0],
            "involuntary_switches": window["switches1"][1] - window["switches0"][1],
            "syscalls": syscalls,
            "syscalls_per_request": None,
            "syscalls_problem": syscall_problem if syscalls is None else None,
        })
        if count_syscalls:
            if perf.controlled:
                perf_window = perf.window_s()
                syscall_requests = rate * perf_window if perf_window else 0
            else:
                perf_window = None  # the whole run: every request answered, warm-up included
                syscall_requests = measured["completed"] + measured["warmup_completed"]
            measured["syscall_counter_running_s"] = round(perf.running_s, 6) if perf.running_s is not None else None
            measured["syscall_requests"] = round(syscall_requests, 1)
            measured["syscall_window_s"] = round(perf_window, 6) if perf_window else None
            measured["syscall_control_delay_s"] = round(perf.control_delay_s, 6) if perf.controlled else None
            # Seen in two of a few dozen controlled runs on a fork-per-connection server, cause not
            # found: the counter ran for a few ms of the window and counted a tenth of the calls.
            # Its running time, set against the CPU the server used in the same window (normally
            # 0.75-1.1 of it), shows that: such a count is refused, not reported low.
            if (perf.controlled and syscalls and cpu_s is not None and cpu_s > 0.005
                    and perf.running_s is not None and perf.running_s < SYSCALL_RUNNING_MIN * cpu_s):
                measured["syscalls_problem"] = (f"perf's counter ran {perf.running_s * 1e3:.1f} ms while the "
                                                f"server used {cpu_s * 1e3:.1f} ms of CPU: an incomplete count")
                measured["syscalls"] = syscalls = None
            if syscalls is not None and syscall_requests > 0:
                measured["syscalls_per_request"] = round(syscalls / syscall_requests, 3)
                if perf.by_name:
                    measured["syscalls_by_name_per_request"] = {
                        name: round(count / syscall_requests, 3)
                        for name, count in sorted(perf_calls(perf.path).items(), key=lambda item: -item[1]) if count}
        return measured, None

    def sample_window(self, server, phases, perf, started, warmup, duration, args):
        """Waits for loadgen's "measure" and "end" lines and samples the server at each, and its
        memory halfway between. Returns (samples, problem)."""
        # loadgen bounds the set-up of its idle connections by --timeout.
        idle_bound = self.args.timeout if "--idle" in args else 0
        launch = CLUSTER_LAUNCH_S if self.args.load_hosts else 0
        line = phases.next(started + warmup + idle_bound + PHASE_SLACK_S + launch)
        if line != "measure":
            return None, self.phase_problem("measure", line)
        cpu0, t0 = server.cpu_sample()
        if perf and perf.controlled:
            perf.enable()
        switches0 = server.switches()
        # Memory has no kernel-kept peak but RSS: read once, halfway through the window, while
        # loadgen's connections (the idle ones of c10k included) are all open. In a thread of its
        # own: reading 10 000 processes' smaps_rollup outlasts a short window, and the end sample
        # must not wait for it (CPU spent after the window, closing connections, would be charged to
        # requests extrapolated past it).
        sampled = {}
        sampler = None
        line = phases.next(t0 + duration / 2)
        if line is None:
            sampler = threading.Thread(target=lambda: sampled.update(server.memory()), daemon=True)
            sampler.start()
            line = phases.next(t0 + duration + PHASE_SLACK_S)
        if line != "end":
            if sampler:
                sampler.join()
            return None, self.phase_problem("end", line)
        cpu1, t1 = server.cpu_sample()
        if perf and perf.controlled:
            perf.disable()
        switches1 = server.switches()
        if sampler:
            sampler.join()
        memory = sampled if sampled else server.memory()
        # Processes that exit with their connection (fork per connection) take their peak with them:
        # the peak is the larger of the sums read halfway and now.
        peak_at_end = server.memory(with_pss=False)["VmHWM"]
        return {"cpu0": cpu0, "t0": t0, "cpu1": cpu1, "t1": t1, "switches0": switches0, "switches1": switches1,
                "memory": memory, "peak_at_end": peak_at_end}, None

    @staticmethod
    def phase_problem(expected, line):
        if line is None:
            return f"loadgen wrote no {expected!r} line in time"
        if line == "":
            return f"loadgen closed its phase pipe before {expected!r}"
        return f"loadgen wrote {line!r} instead of {expected!r}"

    def finish(self):
        """Derived figures that need several points: memory per idle connection in c10k, from the
        peak RSS (the summary table's figure) and from RSS, PSS and VmSize read halfway through."""
        per_idle = (("memory_per_idle_connection_bytes", "peak_rss_bytes"),
                    ("rss_per_idle_connection_bytes", "rss_mid_run_bytes"),
                    ("pss_per_idle_connection_bytes", "pss_mid_run_bytes"),
                    ("vmsize_per_idle_connection_bytes", "vmsize_mid_run_bytes"))
        for server in self.servers:
            base = next((r for r in self.records if r["server"] == server and r["scenario"] == "c10k"
                         and r["x"] == 0 and r.get("median")), None)
            for record in self.records:
                if (record["server"] != server or record["scenario"] != "c10k" or not record.get("median")
                        or record["x"] == 0 or base is None):
                    continue
                idle = record["median"].get("idle_established")
                # A server with a thread or process per connection may not have accepted them all
                # yet when memory is read (the backlog holds the rest: a thread-per-connection
                # server had 6 951 threads for 10 000 established): divide by those it holds.
                grown = (record["median"].get("threads") or 0) - (base["median"].get("threads") or 0)
                if idle and 0 < grown < idle:
                    idle = grown
                record["median"]["idle_held"] = idle
                for key, source in per_idle:
                    here, there = record["median"].get(source), base["median"].get(source)
                    record["median"][key] = (round((here - there) / idle, 1)
                                             if idle and here is not None and there is not None else None)
        self.document["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.document["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.save()

    def interrupt(self):
        for loadgen in list(self.current_loadgens):
            if loadgen.poll() is None:
                loadgen.kill()
                loadgen.wait()
        for perf in list(self.current_perfs):
            perf.kill()
        for server in self.current_servers:
            server.stop()


LOOP_LINE = re.compile(r"loop (\d+): ((?:[a-z_]+=\d+ ?)+)$")
HANDOFF_LINE = re.compile(r"handoff: mode=(\w+) ((?:[a-z_]+=\d+ ?)+)$")
STATS_LINE = re.compile(r"stats: ((?:[a-z_0-9]+=\d+ ?)+)$")
COUNTS_SCOPE = "the server's whole run for this scenario (all points, repetitions, warm-ups, syscall runs)"


def jain(values):
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all are equal, 1/n when one has all."""
    squares = sum(v * v for v in values)
    return round(sum(values) ** 2 / (len(values) * squares), 3) if values and squares else None


def spread_of(values):
    return {"min": min(values), "max": max(values), "jain": jain(values)} if values else None


def server_counts(stderr_text, scope=COUNTS_SCOPE):
    """The per-loop counts (`loop K: wakeups=N ...`) and hand-off counts (`handoff: mode=M ...`)
    that the multi-core servers print on exit, or None. They cover the server's whole life: every
    point, repetition, warm-up and syscall run it was started for (scope says which)."""
    loops, handoff = [], None
    for line in stderr_text.splitlines():
        match = LOOP_LINE.match(line)
        if match:
            loops.append({"loop": int(match.group(1)),
                          **{k: int(v) for k, v in re.findall(r"([a-z_]+)=(\d+)", match.group(2))}})
            continue
        match = HANDOFF_LINE.match(line)
        if match:
            handoff = {"mode": match.group(1), **{k: int(v) for k, v in re.findall(r"([a-z_]+)=(\d+)", match.group(2))}}
    if not loops and handoff is None:
        return None
    counts = {"scope": scope}
    if loops:
        accepts = sum(loop.get("accepts", 0) for loop in loops)
        events = sum(loop.get("listen_events", 0) for loop in loops)
        # The loops that serve connections (a multi-reactor's main loop only accepts), and those
        # that accept (a multi-reactor's sub-reactors never do; a loop that watches the listener but
        # was never told of it cannot be told apart from one that does not watch it).
        served = [loop.get("connections", 0) for loop in loops if loop.get("connections", 0) or not loop.get("accepts")]
        accepting = [loop.get("accepts", 0) for loop in loops if loop.get("accepts", 0) or loop.get("listen_events", 0)]
        counts.update({
            "loops": loops,
            "accepts": accepts,
            "listen_events": events,
            "listen_events_per_accept": round(events / accepts, 3) if accepts else None,
            "empty_accepts_per_accept": round(sum(loop.get("empty_accepts", 0) for loop in loops) / accepts, 4) if accepts else None,
            "connections_per_loop_jain": jain(served) if any(served) else None,
            "accepts_spread": spread_of(accepting),
            "connections_spread": spread_of(served) if any(served) else None,
        })
    if handoff is not None:
        jobs = handoff.get("jobs", 0)
        counts["handoff"] = handoff
        if jobs:
            counts["worker_wakeups_per_job"] = round(handoff.get("worker_wakeups", 0) / jobs, 4)
            counts["reactor_wakeups_per_job"] = round(handoff.get("reactor_wakeups", 0) / jobs, 4)
    return counts


def server_stats(stderr_text, scope=COUNTS_SCOPE):
    """The `stats: accepted=N requests=N ...` line(s) a server of this project prints on exit,
    summed over the lines (a server with several processes may print one each), or None."""
    totals, lines = {}, 0
    for line in stderr_text.splitlines():
        match = STATS_LINE.match(line)
        if match:
            lines += 1
            for key, value in re.findall(r"([a-z_0-9]+)=(\d+)", match.group(1)):
                totals[key] = totals.get(key, 0) + int(value)
    if not lines:
        return None
    return {"scope": scope, "lines": lines, **totals}


def summarize(reps):
    """Median, min and max of every numeric field over the repetitions."""
    summary = {}
    for key in reps[0]:
        if key == "rep":
            continue
        values = [r[key] for r in reps if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        if values:
            summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def summary_medians(summary):
    return {key: value["median"] for key, value in summary.items()}


# --- environment -----------------------------------------------------------------------------------

def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def without_sources(args):
    """Loadgen's options without --source: its loopback source addresses do not exist on the load
    hosts, whose ranks each have their own ephemeral ports anyway."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--source":
            skip = True
        elif not arg.startswith("--source="):
            kept.append(arg)
    return kept


def host_environment(agent, host):
    """What one host says of itself, through the agent that reaches it."""
    script = ("echo kernel=$(uname -srm); echo nproc=$(nproc --all); "
              "echo cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); "
              "echo memory_total_kib=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2); "
              "echo cpu_governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)")
    try:
        done = subprocess.run(shlex.split(agent) + [host, script], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"host": host, "problem": str(e)}
    if done.returncode != 0:
        return {"host": host, "problem": f"status {done.returncode}: {done.stderr.strip()[-200:]}"}
    said = dict(line.partition("=")[::2] for line in done.stdout.splitlines() if "=" in line)
    return {"host": host, **{key: value.strip() or None for key, value in said.items()}}


def environment(args):
    # The model name alone can be short ("AMD EPYC" in a VM): the vendor, family, model, stepping
    # and cache size of the first CPU say which part it is.
    cpuinfo = {}
    for line in (read_proc("/proc/cpuinfo") or "").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        cpuinfo[key.strip()] = value.strip()
    cpu_model = cpuinfo.get("model name")
    cpu_details = ", ".join(f"{name} {cpuinfo[key]}" for key, name in (
        ("vendor_id", "vendor"), ("cpu family", "family"), ("model", "model"), ("stepping", "stepping"),
        ("cache size", "cache"), ("microcode", "microcode")) if cpuinfo.get(key)) or None
    governor = read_proc("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    nginx_version = None
    try:
        nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "kernel": os.uname().release,
        "machine": os.uname().machine,
        "cpu_model": cpu_model,
        "cpu_details": cpu_details,
        "nproc": os.cpu_count(),
        "cpu_governor": governor.strip() if governor else None,
        "memory_total_kib": int(re.search(r"MemTotal:\s+(\d+)", read_proc("/proc/meminfo") or "MemTotal: 0").group(1)),
        "commit": command_output(["git", "describe", "--always", "--dirty"]),
        "compiler": (command_output(["gcc", "--version"]) or "").splitlines()[0:1],
        "cflags": command_output(["make", "-s", "--no-print-directory", "print-cflags"]),
        "loadgen_version": command_output([LOADGEN, "--version"]),
        "nginx_version": nginx_version,
        "python": sys.version.split()[0],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        # --load-hosts: where the load came from and where the server ran, each host in its own words
        # (make figures passes no arguments: everything on this machine).
        **(hosts_environment(args) if args is not None else {}),
    }


def hosts_environment(args):
    return {
        "load_hosts": [host_environment(args.rsh_agent, h) for h in args.load_hosts] if args.load_hosts else None,
        "server_host": (host_environment(args.rsh_agent, args.server_host) if args.server_agent
                        else args.server_host),
    }


# --- command line ----------------------------------------------------------------------------------

def browser_check(run_dir):
    """The report as people read it: harness/browser_check.py opens report.html in headless Chromium
    at 1400 and 390 px and keeps a screenshot of each in the run directory. Its verdict is reported,
    not gated on: the measurements stand whatever the layout (C10K_BROWSER_CHECK=0 skips it)."""
    try:
        result = subprocess.run([sys.executable, os.path.join(ROOT, "harness", "browser_check.py"), run_dir],
                                capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        log("bench: the browser check of the report did not finish within 300 s")
        return
    if result.returncode == 2:
        log(f"bench: no browser check of the report: {result.stderr.strip()}")
        return
    for line in result.stdout.splitlines():
        if line.startswith("FAIL"):
            log(f"bench: report in a browser: {line}")
    log(f"bench: report in a browser ({result.stdout.strip().splitlines()[-1] if result.stdout.strip() else 'no output'}): "
        f"{run_dir}/screenshot-1400.png, {run_dir}/screenshot-390.png")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description="Runs every server of harness/servers.txt (and the Makefile's SERVERS) through every "
                    "scenario of harness/scenarios.txt and writes results/<UTC time>-<commit>/ "
                    "(results.json, plots, report).")
    parser.add_argument("--servers", help="space-separated server names (default: see --list)")
    parser.add_argument("--scenarios", help="space-separated scenarios (default: all)")
    parser.add_argument("--reps", type=int, help="repetitions of every point (default 3; 1 with --quick)")
    parser.add_argument("--duration", type=float, default=1.0, help="measured seconds per run (default 1)")
    parser.add_argument("--warmup", type=float, default=0.25, help="warm-up seconds before every run (default 0.25)")
    parser.add_argument("--timeout", type=float, default=2.0, help="loadgen's per-request timeout (default 2 s)")
    parser.add_argument("--quick", action="store_true", help="the reduced suite (make bench-quick)")
    parser.add_argument("--server-cpus", default="0", help="CPU list for the server (default 0)")
    parser.add_argument("--client-cpus", default="1", help="CPU list for the loadgen (default 1)")
    parser.add_argument("--loadgen-threads", type=int, default=1, help="loadgen threads (default 1)")
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help=f"loopback source range for churn (default {DEFAULT_SOURCES})")
    parser.add_argument("--server-bin", action="append", default=[], metavar="NAME=PATH",
                        help="run server NAME from PATH (a known NAME keeps its arguments and family; "
                             "the binary must follow docs/protocol.md)")
    parser.add_argument("--servers-file", default=SERVERS_FILE, metavar="FILE",
                        help="the server configurations (default harness/servers.txt)")
    parser.add_argument("--scenarios-file", default=SCENARIOS_FILE, metavar="FILE",
                        help="the scenarios (default harness/scenarios.txt)")
    parser.add_argument("--cpu-source", default="auto", choices=["auto"] + list(CPU_SOURCES),
                        help="how server CPU time is read (default auto: cgroup v1, cgroup v2, else schedstat)")
    parser.add_argument("--out", help="run directory (default results/<UTC time>-<commit>)")
    parser.add_argument("--no-perf", action="store_true", help="do not count system calls with perf")
    parser.add_argument("--simultaneous", action="store_true",
                        help="measure a point's servers at the same time, each under its own loadgen "
                             "(all on the same CPUs): perfcheck's pairs")
    parser.add_argument("--syscalls-every-rep", action="store_true",
                        help="count system calls in every repetition (perf attached while CPU is measured) "
                             "instead of one separate run per point: paired figures, for perfcheck")
    parser.add_argument("--server-loadgen", action="append", default=[], metavar="NAME=PATH",
                        help="drive server NAME with the load generator at PATH (default bin/loadgen): "
                             "perfcheck measures two load generators against one server this way")
    parser.add_argument("--no-plots", action="store_true", help="write results.json only")
    parser.add_argument("--list", action="store_true", help="print the servers and scenarios, then exit")
    hosts = parser.add_argument_group("several load hosts (docs/distributed.md)")
    hosts.add_argument("--load-hosts", metavar="H1,H2,...",
                       help="run the load on these hosts, one bin/loadgen-mpi rank each, through mpirun")
    hosts.add_argument("--hostfile", help="the load hosts, one per line (instead of --load-hosts)")
    hosts.add_argument("--server-host", metavar="ADDRESS",
                       help="the server listens on this address, which the load hosts reach it by")
    hosts.add_argument("--server-agent", action="store_true",
                       help="start the server on --server-host through --rsh-agent (a namespace host of this "
                            "machine); without it the server runs here")
    hosts.add_argument("--rsh-agent", default=None,
                       help="how to reach a host: CMD HOST COMMAND (default: ssh with keepalives)")
    hosts.add_argument("--subnet", help="the network the hosts share (CIDR), for mpirun's traffic")
    args = parser.parse_args(argv)
    args.argv = list(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3

    if not re.fullmatch(r"[0-9,\-]+", args.server_cpus) or not re.fullmatch(r"[0-9,\-]+", args.client_cpus):
        parser.error("--server-cpus and --client-cpus take CPU lists like 0 or 0-3 or 0,2")
    try:
        args.server_cpu_count = len(cpu_list(args.server_cpus))
    except ValueError:
        parser.error("--server-cpus and --client-cpus take CPU lists like 0 or 0-3 or 0,2")
    try:
        args.points = load_scenarios(args.scenarios_file, args.server_cpu_count)
        table = load_server_table(args.servers_file)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    extra = {}
    for item in args.server_bin:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--server-bin wants NAME=PATH, got {item!r}")
        extra[name] = os.path.abspath(path)
    args.loadgens = {}
    for item in args.server_loadgen:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--server-loadgen wants NAME=PATH, got {item!r}")
        args.loadgens[name] = os.path.abspath(path)
    args.default_servers, args.catalogue = server_catalogue(table, makefile_list("print-servers"), extra)
    args.server_list = args.servers.replace(",", " ").split() if args.servers else args.default_servers
    for name in args.server_list:
        if name not in args.catalogue:
            parser.error(f"unknown server {name!r} (known: {' '.join(args.catalogue)})")
    if len(set(args.server_list)) != len(args.server_list):
        parser.error("a server is named twice in --servers")
    known_scenarios = scenario_names(args.points)
    args.scenario_list = args.scenarios.replace(",", " ").split() if args.scenarios else known_scenarios
    for name in args.scenario_list:
        if name not in known_scenarios:
            parser.error(f"unknown scenario {name!r} (known: {' '.join(known_scenarios)})")
    if "latency" in args.scenario_list and "plaintext" not in args.scenario_list:
        parser.error("the latency scenario needs plaintext (its rates are fractions of plaintext c=64)")
    if args.reps < 1 or args.duration <= 0 or args.warmup < 0 or args.timeout <= 0 or args.loadgen_threads < 1:
        parser.error("--reps, --duration, --timeout and --loadgen-threads must be positive, --warmup not negative")
    if not re.fullmatch(r"[0-9,\-]+", args.server_cpus) or not re.fullmatch(r"[0-9,\-]+", args.client_cpus):
        parser.error("--server-cpus and --client-cpus take CPU lists like 0 or 0-3 or 0,2")
    check_hosts(parser, args)
    return args


def check_hosts(parser, args):
    """--load-hosts and its companions: all or nothing."""
    if args.load_hosts and args.hostfile:
        parser.error("--load-hosts and --hostfile exclude each other")
    if args.hostfile:
        try:
            with open(args.hostfile) as f:
                args.load_hosts = ",".join(line.split("#", 1)[0].split()[0] for line in f
                                           if line.split("#", 1)[0].split())
        except OSError as e:
            parser.error(f"--hostfile: {e}")
    args.load_hosts = [h for h in (args.load_hosts or "").split(",") if h]
    if args.rsh_agent is None:
        args.rsh_agent = DEFAULT_RSH_AGENT
    if args.load_hosts and not args.server_host:
        parser.error("--load-hosts needs --server-host: the address the load hosts reach the server by")
    if (args.server_host or args.server_agent) and not args.load_hosts:
        parser.error("--server-host and --server-agent go with --load-hosts (or --hostfile)")
    if args.server_agent and not args.server_host:
        parser.error("--server-agent needs --server-host")
    if args.load_hosts and not os.path.exists(os.path.join(ROOT, "bin", "loadgen-mpi")):
        parser.error("--load-hosts needs bin/loadgen-mpi (OpenMPI: make deps, then make)")


def cpu_list(text):
    """The CPUs of a taskset-style list, e.g. "0-3,6"."""
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def main(argv):
    args = parse_args(argv)
    points = args.points
    if args.list:
        print("servers:   " + " ".join(args.default_servers))
        for name in args.default_servers:
            config = args.catalogue[name]
            shown = os.path.relpath(config.path, ROOT) if config.path.startswith(ROOT + os.sep) else config.path
            print(f"  {name:18s} {config.family:10s} {' '.join([shown] + config.args)}")
        for name in scenario_names(points):
            labels = [p.label + ("*" if p.quick else "") for p in points if p.scenario == name]
            patterns = sorted({",".join(p.servers_for) for p in points if p.scenario == name and p.servers_for})
            print(f"scenario:  {name:10s} {' '.join(labels)}" + (f"  (for {' '.join(patterns)})" if patterns else ""))
        print("(* in the quick suite)")
        return 0
    if args.quick:
        points = [p for p in points if p.quick]
    points = [p for p in points if p.scenario in args.scenario_list]
    if args.quick and "plaintext" not in args.scenario_list:
        points = [p for p in points if p.scenario != "latency"]

    # This driver (and perf and gnuplot, which it starts) stays off the server's CPUs: anything that
    # runs there is counted as the server's latency.
    try:
        os.sched_setaffinity(0, cpu_list(args.client_cpus) & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    except (OSError, ValueError) as e:
        log(f"bench: cannot pin the driver to CPUs {args.client_cpus}: {e}")

    # Servers and the loadgen inherit the raised limit: the c10k scenario needs 10 000+ descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    commit = command_output(["git", "rev-parse", "--short", "HEAD"]) or "nocommit"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = os.path.abspath(args.out or os.path.join(ROOT, "results", f"{stamp}-{commit}"))
    os.makedirs(run_dir, exist_ok=True)

    def on_signal(number, frame):
        raise Interrupted()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    status = 0
    try:
        remove_stale_cgroups(cgroup_parents())
        cpu_source = choose_cpu_source(args.cpu_source)
        if cpu_source[0] == "schedstat":
            log(f"bench: server CPU from {CPU_SOURCES['schedstat']}: {'; '.join(cpu_source[2])}")
        bench = Bench(args, run_dir, points, args.server_list, args.catalogue, cpu_source)
        # Overheads measured on a 2-core box: ~0.2 s per run (processes, idle set-up), ~0.25 s per
        # system-call run, ~0.3 s to start a scenario's servers.
        scenarios = scenario_names(points)
        estimate = bench.runs_total * (args.warmup + 0.2) + bench.seconds_total + len(scenarios) * 0.3
        if bench.perf_problem is None:
            estimate += bench.runs_total / args.reps * (SYSCALL_RUN_WARMUP_S + SYSCALL_RUN_S + 0.25)
        log(f"bench: {len(args.server_list)} servers x {len(scenarios)} scenarios, {bench.runs_total} runs of "
            f"{args.warmup:g}+{args.duration:g} s; estimated {int(estimate // 60)}m{int(estimate % 60):02d}s")
        log(f"bench: writing {run_dir}")
        if bench.perf_problem:
            log(f"bench: system calls not counted: {bench.perf_problem}")
        elif bench.perf_control_problem:
            log(f"bench: system calls counted over whole runs: {bench.perf_control_problem}")
        try:
            bench.run()
        except Interrupted:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            log("bench: interrupted; stopping the processes and keeping the partial results")
            bench.interrupt()
            bench.document["interrupted"] = True
            status = 130
    except Interrupted:
        # Before the first measurement: nothing to keep.
        log("bench: interrupted before measuring anything")
        remove_all_cgroups()
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Whatever happened (an exception included), no cgroup of this run outlives it.
        remove_all_cgroups()
    bench.finish()

    latest = os.path.join(ROOT, "results", "latest")
    if os.path.dirname(run_dir) == os.path.join(ROOT, "results"):
        if os.path.islink(latest) or not os.path.exists(latest):
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(os.path.basename(run_dir), latest)
    if not args.no_plots:
        report = subprocess.run([sys.executable, os.path.join(ROOT, "harness", "report.py"), run_dir])
        if report.returncode != 0:
            log("bench: the report failed; results.json is complete")
            status = status or 1
        elif os.environ.get("C10K_BROWSER_CHECK", "1") != "0":
            browser_check(run_dir)
    failed = [r for r in bench.records if r["status"] == "failed"]
    skipped = [r for r in bench.records if r["status"] == "skipped"]
    log(f"bench: done in {bench.document['elapsed_s']:.0f} s: {len(bench.records)} records, "
        f"{len(failed)} failed, {len(skipped)} skipped; see {run_dir}/report.md")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
