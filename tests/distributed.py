#!/usr/bin/env python3
"""The multi-host load generator (bin/loadgen-mpi under harness/loadgen-cluster) on network-
namespace hosts that this suite makes and removes itself (harness/netns-hosts): one server host
and three load hosts on a bridge, with mpirun in a control namespace. Nothing leaves the machine.

Checked: the merged counts are the exact sums of the ranks' and agree with what the server says it
answered; the merged histogram is the sum of the ranks' own; the open-loop rate is shared out; a
killed rank gives a partial result within 10 s, a cut link within 15 s; nothing is left behind,
also after Ctrl-C; bad usage exits 2. Skipped, with the reason, where namespaces cannot be made.
Ends with "N passed, N failed".
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETNS = os.path.join(ROOT, "harness", "netns-hosts")
CLUSTER = os.path.join(ROOT, "harness", "loadgen-cluster")
LOADGEN_MPI = os.path.join(ROOT, "bin", "loadgen-mpi")
SERVER = os.path.join(ROOT, "bin", "epoll-lt")
STATE = "/run/c10k-lab/netns"
LOAD_HOSTS = 3

sys.path.insert(0, os.path.join(ROOT, "harness"))
from merge_ranks import merge_documents  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""), flush=True)


def run(command, timeout, **kw):
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kw)


class HostSet:
    """A set of namespace hosts: h0 runs the server, h1..h3 the load; removed on every exit."""

    def __init__(self, name):
        self.name = name
        up = run([NETNS, "up", name, str(LOAD_HOSTS + 1)], timeout=60)
        if up.returncode != 0:
            raise RuntimeError(f"netns-hosts up failed: {up.stderr.strip()}")
        state = os.path.join(STATE, name)
        self.agent = os.path.join(state, "agent")
        with open(os.path.join(state, "subnet")) as f:
            self.subnet = f.read().strip()
        with open(os.path.join(state, "addresses")) as f:
            self.addresses = f.read().strip().split(",")
        self.server_host, self.load_hosts = self.addresses[0], self.addresses[1:]
        self.server = None

    def start_server(self, log_path):
        """epoll-lt on h0 (pinned to CPU 0), started through the agent as bench does."""
        command = f"exec taskset -c 0 {shlex.quote(SERVER)} --host {self.server_host} --port 0"
        self.server_log = log_path
        # A session of its own: a Ctrl-C meant for the load must not stop the server under it.
        self.server = subprocess.Popen([self.agent, self.server_host, command], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True,
                                       start_new_session=True)
        line = self.server.stdout.readline()
        match = re.fullmatch(r"listening on (\S+):(\d+)\n", line)
        if not match:
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(match.group(2))
        return f"http://{self.server_host}:{self.port}/"

    def stop_server(self):
        """SIGTERM; returns the server's `stats:` counts."""
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(5)
        with open(self.server_log) as f:
            text = f.read()
        stats = {}
        for line in text.splitlines():
            if line.startswith("stats:"):
                stats = {k: int(v) for k, v in re.findall(r"([a-z_]+)=(\d+)", line)}
        self.server = None
        return stats

    def cluster(self, json_path, loadgen_args, work_dir, cluster_timeout=3, extra=()):
        """The loadgen-cluster command, run inside the control namespace."""
        return [NETNS, "exec", self.name, CLUSTER, "--hosts", ",".join(self.load_hosts), "--rsh-agent", self.agent,
                "--subnet", self.subnet, "--cpus", "1", "--json", json_path, "--work-dir", work_dir,
                "--cluster-timeout", str(cluster_timeout), *extra, "--"] + loadgen_args

    def pids(self, host_index):
        done = run(["ip", "netns", "pids", f"{self.name}-h{host_index}"], timeout=10)
        return [int(p) for p in done.stdout.split()]

    def rank_pid(self, host_index):
        for pid in self.pids(host_index):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"loadgen-mpi" in f.read().split(b"\0")[0]:
                        return pid
            except OSError:
                pass
        return None

    def remove(self):
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        run([NETNS, "down", self.name], timeout=60)


def load(path):
    with open(path) as f:
        return json.load(f)


def rank_docs(work_dir):
    return [load(os.path.join(work_dir, f"rank.rank{r}.json")) for r in range(LOAD_HOSTS)
            if os.path.exists(os.path.join(work_dir, f"rank.rank{r}.json"))]


def histogram(doc, key="response_time"):
    return {low: count for low, count in doc["latency"][key]["histogram"]}


def check_complete_run(hosts, tmp):
    url = hosts.start_server(os.path.join(tmp, "server-closed.log"))
    work, out = os.path.join(tmp, "closed"), os.path.join(tmp, "closed.json")
    done = run(hosts.cluster(out, ["-c", "12", "-d", "2", "--warmup", "0.5", url], work), timeout=90)
    stats = hosts.stop_server()
    check("a three-host closed-loop run ends well", done.returncode == 0 and os.path.exists(out),
          f"status {done.returncode}: {done.stderr.strip()[-300:]}" if done.returncode else "")
    if done.returncode != 0:
        return
    merged, ranks = load(out), rank_docs(work)
    cluster = merged["cluster"]
    check("rank 0 merged all three ranks itself", cluster["merged_by"] == "bin/loadgen-mpi" and
          cluster["partial"] is False and cluster["size"] == LOAD_HOSTS and len(ranks) == LOAD_HOSTS,
          f"{cluster['merged_by']}, partial {cluster['partial']}, {len(ranks)} rank files")
    differ = []
    for section, fields in (("totals", ("started", "completed", "failed", "in_flight_at_end", "responses_in_window",
                                        "bytes_read", "bytes_written", "connections_opened")),
                            ("errors", ("total",)), ("fairness", ("connections", "served"))):
        for field in fields:
            total = sum(r[section][field] for r in ranks)
            if merged[section][field] != total:
                differ.append(f"{section}.{field} {merged[section][field]} != {total}")
    completed = merged["totals"]["completed"]
    check("merged counters are the exact sums of the ranks' counters", not differ and completed > 0,
          "; ".join(differ) or f"{completed} requests = " + " + ".join(str(r["totals"]["completed"]) for r in ranks))
    # Every request the server answered was a warm-up or measured one that loadgen read, or one
    # still in flight when loadgen stopped (answered, never read).
    read = completed + merged["totals"]["warmup"]["completed"]
    in_flight = merged["totals"]["in_flight_at_end"] + merged["totals"]["warmup"]["in_flight_at_end"]
    answered = stats.get("requests")
    check("the server answered what the ranks read, plus at most what was in flight at the end",
          answered is not None and read <= answered <= read + in_flight,
          f"server requests={answered}, read {read}, in flight {in_flight}")
    summed = {}
    for r in ranks:
        for low, count in histogram(r).items():
            summed[low] = summed.get(low, 0) + count
    mine = histogram(merged)
    check("the merged histogram is bucket for bucket the sum of the ranks' histograms",
          mine == summed and sum(mine.values()) == merged["latency"]["response_time"]["count"],
          f"{len(mine)} buckets, {sum(mine.values())} samples" if mine == summed else
          f"{len(set(mine.items()) ^ set(summed.items()))} buckets differ")
    lows = sorted(summed)
    check("merged min and max are the ranks' extremes",
          merged["latency"]["response_time"]["min_us"] == min(r["latency"]["response_time"]["min_us"] for r in ranks)
          and merged["latency"]["response_time"]["max_us"] == max(r["latency"]["response_time"]["max_us"] for r in ranks)
          and lows[0] <= merged["latency"]["response_time"]["min_us"])
    per_host = cluster["hosts"]
    check("the per-host section names each host with its share and its requests",
          [h["host"] for h in per_host] == hosts.load_hosts and [h["connections"] for h in per_host] == [4, 4, 4]
          and [h["requests"] for h in per_host] == [r["totals"]["completed"] for r in ranks]
          and all("environment" in h for h in per_host),
          ", ".join(f"{h['host']}: {h['requests']}" for h in per_host))
    skew, launch = cluster["start_skew_ms"], cluster["launch"]
    check("the start skew is measured, and small on one machine", skew is not None and 0 <= skew < 100,
          f"start skew {skew:.3f} ms, mpirun start to the barrier {launch.get('to_start_barrier_s')} s, "
          f"wall {launch['wall_s']} s for a {launch['run_length_s']} s run")
    # The harness's merge of the same files (what a partial result is made by) agrees with MPI's.
    again = merge_documents(ranks)
    same = [key for key in ("count", "min_us", "max_us", "p50_us", "p90_us", "p99_us", "p99_9_us", "histogram")
            if again["latency"]["response_time"][key] != merged["latency"]["response_time"][key]]
    check("harness/merge_ranks.py merges the rank files to the same latencies and counts as MPI did",
          not same and again["totals"]["completed"] == completed and again["cluster"]["partial"] is False,
          f"differ: {same}" if same else f"p99 {again['latency']['response_time']['p99_us']} us")
    timeline = merged["timeline"]
    check("the merged timeline adds the ranks' seconds", len(timeline) == 2 and
          sum(t["completed"] for t in timeline) == sum(sum(t["completed"] for t in r["timeline"]) for r in ranks),
          f"{[t['completed'] for t in timeline]}")


def check_open_loop(hosts, tmp):
    url = hosts.start_server(os.path.join(tmp, "server-open.log"))
    work, out = os.path.join(tmp, "open"), os.path.join(tmp, "open.json")
    done = run(hosts.cluster(out, ["-c", "9", "-R", "3000", "-d", "2", url], work), timeout=90)
    stats = hosts.stop_server()
    if done.returncode != 0:
        check("an open-loop run shares the rate out", False, f"status {done.returncode}: {done.stderr[-300:]}")
        return
    merged, ranks = load(out), rank_docs(work)
    intended = [r["totals"]["intended"] for r in ranks]
    check("an open-loop run shares the rate out: each rank a third, the total as asked",
          merged["config"]["rate"] == 3000 and all(r["config"]["rate"] == 1000 for r in ranks)
          and merged["totals"]["intended"] == sum(intended) and abs(sum(intended) - 6000) <= 3
          and max(intended) - min(intended) <= 2,
          f"intended per rank {intended}, total {merged['totals']['intended']}")
    # At 333 requests a second per connection, a request is rarely in flight when the run stops;
    # when none is, the server's count must be loadgen's exactly.
    totals = merged["totals"]
    read = totals["completed"] + totals["warmup"]["completed"]
    in_flight = totals["in_flight_at_end"] + totals["warmup"]["in_flight_at_end"]
    answered = stats.get("requests")
    check("open loop: the server answered exactly what the ranks read when nothing was in flight at the end"
          if in_flight == 0 else "open loop: the server answered what the ranks read, plus at most those in flight",
          answered is not None and read <= answered <= read + in_flight,
          f"server requests={answered}, read {read}, in flight {in_flight}")


def run_with_fault(hosts, tmp, tag, loadgen_args, fault):
    """A 20 s run on the three load hosts; 1.5 s after the last host's rank appears, fault() breaks
    something. Returns loadgen-cluster's exit status, the seconds from the fault to its exit, the
    result (or None), what fault() returned, and the rank files' directory."""
    url = hosts.start_server(os.path.join(tmp, f"server-{tag}.log"))
    work, out = os.path.join(tmp, tag), os.path.join(tmp, f"{tag}.json")
    process = subprocess.Popen(hosts.cluster(out, loadgen_args + [url], work), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while hosts.rank_pid(LOAD_HOSTS) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)
    broke = time.monotonic()
    what = fault()
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    took = time.monotonic() - broke
    hosts.stop_server()
    return process.returncode, took, load(out) if os.path.exists(out) else None, what, work


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def failed_hosts(doc):
    return [f["host"] for f in (doc or {}).get("cluster", {}).get("failed_hosts", [])]


def check_killed_rank(hosts, tmp):
    status, took, doc, victim, _ = run_with_fault(
        hosts, tmp, "kill", ["-c", "12", "-d", "20"], lambda: kill_all([p for p in [hosts.rank_pid(LOAD_HOSTS)] if p]))
    cluster = (doc or {}).get("cluster", {})
    check("a rank killed mid-run: exit status 3 and a partial result within 10 s",
          victim and status == 3 and doc is not None and took <= 10 and cluster.get("partial") is True
          and hosts.load_hosts[-1] in failed_hosts(doc) and doc["totals"]["completed"] > 0
          and cluster.get("ranks_merged") == LOAD_HOSTS - 1,
          f"status {status} after {took:.1f} s; failed hosts {failed_hosts(doc)}; "
          f"{cluster.get('ranks_merged')} ranks merged; "
          f"{(doc or {}).get('totals', {}).get('completed')} requests of the survivors kept")


def check_vanished_host(hosts, tmp):
    """Every process of one load host killed at once (its mpirun daemon too): a host that crashed."""
    status, took, doc, victims, _ = run_with_fault(
        hosts, tmp, "vanish", ["-c", "12", "-d", "20"], lambda: kill_all(hosts.pids(LOAD_HOSTS - 1)))
    check("a host that vanishes (rank and daemon killed): exit status 3 and a partial result within 10 s",
          len(victims) >= 2 and status == 3 and doc is not None and took <= 10
          and doc["cluster"].get("partial") is True and hosts.load_hosts[LOAD_HOSTS - 2] in failed_hosts(doc)
          and doc["totals"]["completed"] > 0,
          f"{len(victims)} processes killed; status {status} after {took:.1f} s; failed hosts {failed_hosts(doc)}")


def check_cut_link(hosts, tmp):
    status, took, doc, _, work = run_with_fault(
        hosts, tmp, "cut", ["-c", "12", "-d", "20", "--timeout", "1"],
        lambda: run([NETNS, "cut", hosts.name, str(LOAD_HOSTS)], timeout=10))
    run([NETNS, "heal", hosts.name, str(LOAD_HOSTS)], timeout=10)
    cluster = (doc or {}).get("cluster", {})
    cut_host = hosts.load_hosts[-1]
    reasons = [f["reason"] for f in cluster.get("failed_hosts", []) if f["host"] == cut_host]
    check("a cut link: exit status 3 and a partial result naming the host within 15 s",
          status == 3 and doc is not None and took <= 15 and cluster.get("partial") is True
          and any("no beat" in r for r in reasons) and doc["totals"]["completed"] > 0,
          f"status {status} after {took:.1f} s; {cut_host}: {'; '.join(reasons)}")
    # A namespace host's file can still be read through the agent, so nothing measured is lost.
    check("a cut link: every rank's measurements are in the partial result, the cut host's too",
          doc is not None and cluster.get("ranks_merged") == LOAD_HOSTS and doc["totals"]["completed"] ==
          sum(r["totals"]["completed"] for r in rank_docs(work)),
          f"{cluster.get('ranks_merged')} ranks merged")
    # The cut host's mpirun daemon cannot hear that the job is over; the set's removal must end it.
    check("nothing of the run is left on the load hosts but the cut host's daemon",
          all(not hosts.pids(i) for i in range(1, LOAD_HOSTS)), f"pids {[hosts.pids(i) for i in range(1, 4)]}")


def check_bench(hosts, tmp):
    """make bench's driver with the load from the three hosts and the server on h0 (make
    bench-netns), on one quick point."""
    out = os.path.join(tmp, "bench")
    done = run([NETNS, "exec", hosts.name, sys.executable, os.path.join(ROOT, "harness", "bench.py"), "--quick",
                "--servers", "epoll-lt", "--scenarios", "churn", "--reps", "1", "--duration", "0.5", "--warmup", "0.1",
                "--no-plots", "--out", out, "--load-hosts", ",".join(hosts.load_hosts), "--server-host",
                hosts.server_host, "--server-agent", "--rsh-agent", hosts.agent, "--subnet", hosts.subnet], timeout=180)
    try:
        results = load(os.path.join(out, "results.json"))
    except (OSError, ValueError) as e:
        check("bench.py with --load-hosts measures a scenario", False, f"status {done.returncode}: {e}; "
              f"{done.stderr.strip()[-300:]}")
        return
    records = results["records"]
    raws = [load(os.path.join(out, r["raw"][0] if isinstance(r["raw"], list) else r["raw"])) for r in records
            if r.get("raw")] if all(r.get("raw") for r in records) else []
    cpu = [r["median"].get("server_cpu_us_per_request") for r in records if r.get("median")]
    check("bench.py with --load-hosts measures a scenario: every point ok, the server's CPU measured, each "
          "result merged from three hosts, every host's environment recorded",
          done.returncode == 0 and records and all(r["status"] == "ok" for r in records) and all(cpu)
          and raws and all(d["cluster"]["size"] == LOAD_HOSTS and not d["cluster"]["partial"] for d in raws)
          and len(results["environment"]["load_hosts"]) == LOAD_HOSTS
          and all(h.get("kernel") for h in results["environment"]["load_hosts"]),
          f"{len(records)} points, server CPU µs/request {cpu}" if records else f"status {done.returncode}")


def check_usage(hosts):
    done = run([CLUSTER, "--json", "/dev/null", "--", "http://127.0.0.1:1/"], timeout=30)
    check("loadgen-cluster without hosts: usage, exit 2", done.returncode == 2 and "usage" in done.stderr,
          f"status {done.returncode}")
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "few.json")
        done = run(hosts.cluster(out, ["-c", "2", "-d", "1", f"http://{hosts.server_host}:1/"], work), timeout=60)
        ranks_said = "fewer connections than the 3 ranks" in done.stderr
        check("fewer connections than ranks: loadgen-mpi's message, and no result pretends otherwise",
              done.returncode != 0 and ranks_said and (not os.path.exists(out) or load(out)["cluster"]["partial"]),
              f"status {done.returncode}")


def child(name):
    """--child NAME: a run that the parent interrupts with SIGINT, as Ctrl-C would."""
    hosts = process = None

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        hosts = HostSet(name)
        tmp = sys.argv[3]
        url = hosts.start_server(os.path.join(tmp, "server.log"))
        process = subprocess.Popen(hosts.cluster(os.path.join(tmp, "out.json"), ["-c", "6", "-d", "30", url],
                                                 os.path.join(tmp, "work")), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while hosts.rank_pid(LOAD_HOSTS) is None:
            time.sleep(0.2)
        time.sleep(2)  # well into the run: the ranks are measuring
        print("running", flush=True)
        process.wait(60)
    except KeyboardInterrupt:
        pass
    finally:
        # loadgen-cluster had the Ctrl-C too: it saves what the ranks measured before the hosts go.
        if process is not None:
            try:
                process.wait(20)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                process.kill()
        if hosts is not None:
            hosts.remove()
    return 0


def check_ctrl_c():
    name = f"dc{os.getpid() % 10000}"
    tmp = tempfile.mkdtemp(prefix="distributed-child-")
    process = subprocess.Popen([sys.executable, __file__, "--child", name, tmp], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = ""
    try:
        line = process.stdout.readline()
        if line == "running\n":
            os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        # This suite interrupted meanwhile: the child still cleans up after itself.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(30)
    left = [ns for ns in run(["ip", "netns", "list"], timeout=10).stdout.split() if ns.startswith(name + "-")]
    leftovers = run(["pgrep", "-f", f"{STATE}/{name}/agent|distributed-child-"], timeout=10).stdout.split()
    check("after Ctrl-C mid-run the namespaces and their processes are gone",
          line == "running\n" and process.returncode is not None and not left and not leftovers
          and not os.path.exists(os.path.join(STATE, name)),
          f"child said {line.strip()!r}, exit {process.returncode}; namespaces left {left}; processes {leftovers}")
    out = os.path.join(tmp, "out.json")
    doc = load(out) if os.path.exists(out) else {}
    cluster = doc.get("cluster", {})
    check("after Ctrl-C the result is partial, says interrupted, and keeps every rank's measurements",
          cluster.get("partial") is True and cluster.get("why_partial") == "interrupted"
          and cluster.get("ranks_merged") == LOAD_HOSTS and (doc.get("totals") or {}).get("completed", 0) > 0,
          f"{cluster.get('why_partial')}, {cluster.get('ranks_merged')} ranks merged, "
          f"{(doc.get('totals') or {}).get('completed')} requests")
    if left:
        run([NETNS, "down", name], timeout=60)
    subprocess.run(["rm", "-rf", tmp])


def skip_reason():
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_NET_ADMIN"
    for path in (LOADGEN_MPI, SERVER):
        if not os.access(path, os.X_OK):
            return f"{os.path.relpath(path, ROOT)} is not built (OpenMPI missing? make deps, then make)"
    if subprocess.run(["sh", "-c", "command -v mpirun"], capture_output=True).returncode != 0:
        return "mpirun is not installed (openmpi-bin)"
    done = run([NETNS, "check"], timeout=30)
    if done.returncode != 0:
        return done.stdout.strip() or done.stderr.strip()
    return None


def main():
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2])
    reason = skip_reason()
    if reason:
        print(f"SKIP: the distributed suite cannot run here: {reason}")
        print("0 passed, 0 failed")
        return 0
    name = f"dt{os.getpid() % 10000}"
    hosts = None

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        hosts = HostSet(name)
        with tempfile.TemporaryDirectory() as tmp:
            for test in (check_complete_run, check_open_loop, check_killed_rank, check_vanished_host,
                         check_cut_link):
                try:
                    test(hosts, tmp)
                except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as e:
                    check(test.__name__, False, f"{type(e).__name__}: {e}")
                    if hosts.server is not None:
                        hosts.server.kill()
                        hosts.server.wait()
                        hosts.server = None
            check_bench(hosts, tmp)
            check_usage(hosts)
    except RuntimeError as e:
        check("namespace hosts", False, str(e))
    except KeyboardInterrupt:
        check("interrupted", False)
    finally:
        if hosts is not None:
            hosts.remove()
    left = [ns for ns in run(["ip", "netns", "list"], timeout=10).stdout.split() if ns.startswith(name + "-")]
    check("the suite's namespaces are gone", not left, f"left {left}" if left else "")
    check_ctrl_c()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
