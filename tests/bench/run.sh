#!/usr/bin/env bash
# Tests of the benchmark harness (make bench): a tiny real run checked field by field, a run in
# which one server cannot start, one in which a server dies, the blocking family's table from a
# servers file of its own, each source of server CPU time, the report's formatting rules, bad
# arguments, redrawing the plots, Ctrl-C, and that no cgroup of a run outlives it; bin/floor's own
# cases (tests/bench/check_floor.py, also on its ASan+UBSan build) and the report's goals from a
# small real run of floor, epoll-lt and nginx beside a server that cannot run here. Every step is
# bounded by `timeout`. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
work=$(mktemp -d /tmp/c10k-bench-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# sub_checks LABEL COMMAND...: runs a checker that prints "PASS name" / "FAIL name: why" lines and
# counts each as a case of this suite, named "LABEL: name". A checker that fails without a FAIL
# line (it crashed, or timed out) is one failure more.
sub_checks() {
    local label=$1 line out status before=$failed
    shift
    out=$("$@" 2>&1)
    status=$?
    while IFS= read -r line; do
        case $line in
        "PASS "*) pass "$label: ${line#PASS }" ;;
        "FAIL "*) echo "FAIL $label: ${line#FAIL }"; failed=$((failed + 1)) ;;
        esac
    done <<<"$out"
    if ((status != 0 && failed == before)); then
        fail "$label" "exit status $status: $(tail -3 <<<"$out" | tr '\n' ' ')"
    fi
}

bench() { timeout 120 python3 harness/bench.py "$@"; }
# Each run's report is checked in a browser once, in step 4b, not after every run here.
export C10K_BROWSER_CHECK=0

# The cgroup hierarchies bench.py may use here (v1 with cpuacct, v2), and the c10k cgroups in them
# whose driver is not running, or is the driver given: a cgroup of a run that has ended is one
# left behind. (Another engineer's bench.py may be running: its cgroups are not ours to judge.)
cgroup_dirs=()
for dir in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/unified; do
    [[ -d $dir ]] && cgroup_dirs+=("$dir")
done
if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then cgroup_dirs+=(/sys/fs/cgroup); fi
orphan_cgroups() {
    local dir entry pid
    for dir in "${cgroup_dirs[@]}"; do
        for entry in "$dir"/c10k-bench-*; do
            [[ -d $entry ]] || continue
            pid=${entry##*/c10k-bench-}
            pid=${pid%%-*}
            if [[ ${1:-} == "$pid" ]] || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q bench.py; then
                echo "$entry"
            fi
        done
    done
}
# A pid that is not running: the driver of a cgroup planted as if its run had been killed.
dead_pid=999999
while [[ -e /proc/$dead_pid ]]; do dead_pid=$((dead_pid - 1)); done
expected_cpu_source=
[[ -e /sys/fs/cgroup/cpuacct/cpuacct.usage ]] && expected_cpu_source="cgroup v1 cpuacct.usage"

# 0. The loop counts of a multi-core server are recorded: reuseport with a shared listener, four
# loops, one churn point: every record gets server_counts with four loops whose accepts add up to
# the server's accepted connections, and at least one listener report per accept.
if bench --servers "reuseport:shared" --scenarios churn --reps 1 --duration 0.5 --warmup 0.1 \
    --out "$work/loops" >"$work/loops.log" 2>&1; then
    if problem=$(python3 - "$work/loops/results.json" <<'PY'
import json, sys
records = [r for r in json.load(open(sys.argv[1]))["records"] if r["server"] == "reuseport:shared"]
problems = []
if not records:
    problems.append("no reuseport:shared record")
for r in records:
    c = r.get("server_counts")
    if not c:
        problems.append(f"{r['point']}: no server_counts")
        continue
    if len(c["loops"]) != 4:
        problems.append(f"{r['point']}: {len(c['loops'])} loops, expected 4")
    if sum(loop["accepts"] for loop in c["loops"]) < 10:
        problems.append(f"{r['point']}: only {sum(loop['accepts'] for loop in c['loops'])} accepts counted")
    if not c["listen_events_per_accept"] or c["listen_events_per_accept"] <= 0:
        problems.append(f"{r['point']}: listen_events_per_accept {c['listen_events_per_accept']}")
    if not 0 < (c["connections_per_loop_jain"] or 0) <= 1:
        problems.append(f"{r['point']}: Jain's index {c['connections_per_loop_jain']}")
print("; ".join(problems))
sys.exit(1 if problems else 0)
PY
    ); then
        pass "loop_counts_recorded"
    else
        fail "loop_counts_recorded" "$problem"
    fi
else
    fail "loop_counts_recorded" "bench.py failed: $(tail -3 "$work/loops.log")"
fi

# 0b. The multicore scenarios' machinery, on a scenarios file of its own: a point for= one family is
# not run for the others (no record); a {T} line becomes one point per thread count (1, 2, 4 on one
# server CPU), each with the server restarted with --threads T (its loop counts show T loops) and
# the arguments recorded, while epoll-lt (no --threads) runs unvaried; a --mix point keeps the fast
# and slow requests' figures; the report has the herd, mix and cores sections and their plots.
cat >"$work/multicore.txt" <<'EOF'
herd   c=10  10   /  for=multicore -c 10 --close --source 127.0.0.1-127.0.0.4
mix    c=16  16   /  for=epoll-lt duration=2 -c 16 --mix /sleep/20:5
cores  t={T} {T}  /  set=--threads:{T} -c 16
EOF
if bench --servers "epoll-lt reuseport:shared" --scenarios-file "$work/multicore.txt" --server-cpus 0 --reps 1 \
    --duration 0.3 --warmup 0.1 --no-perf --out "$work/multicore" >"$work/multicore.log" 2>&1; then
    if problem=$(python3 - "$work/multicore" <<'PY'
import json, os, sys
run = sys.argv[1]
records = json.load(open(f"{run}/results.json"))["records"]
problems = []
def find(server, scenario, point=None):
    return [r for r in records if r["server"] == server and r["scenario"] == scenario and point in (None, r["point"])]
if find("epoll-lt", "herd"):
    problems.append("epoll-lt has a herd record although the point is for=multicore")
herd = find("reuseport:shared", "herd")
if len(herd) != 1 or len((herd[0].get("server_counts") or {}).get("loops") or []) != 4:
    problems.append(f"reuseport:shared herd: {[(r['status'], r.get('server_counts')) for r in herd]}")
if find("reuseport:shared", "mix") or len(find("epoll-lt", "mix")) != 1:
    problems.append("the mix point ran for the wrong servers")
else:
    mix_record = find("epoll-lt", "mix")[0]
    mix = mix_record["median"]
    if not (mix.get("fast_latency_p99_us") and mix.get("slow_latency_p99_us", 0) >= 20000):
        problems.append(f"mix: fast/slow p99 {mix.get('fast_latency_p99_us')} / {mix.get('slow_latency_p99_us')}")
    # duration=2 outlasts --duration 0.3: a 2 s window, two seconds of timeline.
    timeline = json.load(open(f"{run}/{mix_record['raw'][0]}")).get("timeline") or []
    if mix_record.get("duration_s") != 2 or len(timeline) != 2:
        problems.append(f"mix: duration_s {mix_record.get('duration_s')}, {len(timeline)} seconds of timeline")
for t in (1, 2, 4):
    shared = find("reuseport:shared", "cores", f"t={t}")
    epoll = find("epoll-lt", "cores", f"t={t}")
    if len(shared) != 1 or len(epoll) != 1:
        problems.append(f"t={t}: {len(shared)} and {len(epoll)} records")
        continue
    shared, epoll = shared[0], epoll[0]
    if shared["status"] != "ok" or shared.get("server_args") != ["--threads", str(t), "--listen", "shared"]:
        problems.append(f"t={t}: reuseport:shared {shared['status']} with {shared.get('server_args')}")
    loops = len((shared.get("server_counts") or {}).get("loops") or [])
    if loops != t:
        problems.append(f"t={t}: {loops} loops counted (not restarted per point?)")
    if "this point" not in (shared.get("server_counts") or {}).get("scope", ""):
        problems.append(f"t={t}: scope {(shared.get('server_counts') or {}).get('scope')}")
    if epoll.get("server_args") != [] or shared["x"] != t:
        problems.append(f"t={t}: epoll-lt ran with {epoll.get('server_args')}, x {shared['x']}")
    if not os.path.exists(f"{run}/logs/reuseport:shared-cores-t={t}.stderr"):
        problems.append(f"t={t}: no log of its own")
report = open(f"{run}/report.md").read()
for needed in ("## herd:", "## mix:", "## Goal: the blocking mix", "## cores:", "1 server CPU: no scaling curve",
               "herd.png", "mix_timeline.png", "cores_throughput.png", "cores_cpu.png"):
    if needed not in report:
        problems.append(f"report.md lacks {needed!r}")
herd_section = report.split("## herd:", 1)[-1].split("\n## ", 1)[0]
if "| epoll-lt |" in herd_section:
    problems.append("epoll-lt has a row in the herd table")
print("; ".join(problems))
sys.exit(1 if problems else 0)
PY
    ); then
        pass "multicore_scenarios_for_set_and_restart_per_point"
    else
        fail "multicore_scenarios_for_set_and_restart_per_point" "$problem"
    fi
    if grep -qE '^\[[0-9]+/8\] reuseport:shared cores t=4 rep 1/1' "$work/multicore.log" &&
        grep -q "^goal (e) epoll-lt: mix c=16, fast requests' p99 against the sleep: " "$work/multicore.log"; then
        pass "multicore_progress_counts_only_the_points_run"
    else
        fail "multicore_progress_counts_only_the_points_run" "no '[n/8] reuseport:shared cores t=4' or goal (e) line"
    fi
else
    fail "multicore_scenarios_for_set_and_restart_per_point" "bench.py failed: $(tail -3 "$work/multicore.log")"
fi

# 0c. The multicore paths on canned stderr, loadgen JSON and made-up results (check_multicore.py).
sub_checks "multicore" timeout 60 python3 tests/bench/check_multicore.py

# 1. A tiny run: two servers, two scenarios (churn has three points), 1 s runs. A stale cgroup of a
# killed run is planted first: the run must remove it.
stale=
if [[ -n $expected_cpu_source ]]; then
    stale=/sys/fs/cgroup/cpuacct/c10k-bench-$dead_pid-1
    mkdir "$stale" || stale=
fi
if bench --servers "epoll-lt iterative" --scenarios "churn echo" --reps 2 --duration 1 --warmup 0.2 \
    --out "$work/tiny" >"$work/tiny.log" 2>&1; then
    if python3 tests/bench/check_results.py "$work/tiny" --plots 2 \
        --expect epoll-lt:churn:ok --expect epoll-lt:echo:ok \
        --expect iterative:churn:ok --expect iterative:echo:ok \
        --family epoll-lt:event --family iterative:blocking \
        ${expected_cpu_source:+--cpu-source "$expected_cpu_source"} >"$work/tiny.check" 2>&1; then
        pass "tiny_run_schema_and_plots"
    else
        fail "tiny_run_schema_and_plots" "$(head -5 "$work/tiny.check")"
    fi
    if grep -qE '^\[[0-9]+/16\] epoll-lt churn c=64 rep 2/2 +[0-9,]+ req/s +p99 [0-9.]+ ms' "$work/tiny.log"; then
        pass "progress_lines"
    else
        fail "progress_lines" "no '[n/16] epoll-lt churn c=64 rep 2/2 ... req/s p99 ... ms' line"
    fi
    if grep -q 'estimated' "$work/tiny.log"; then pass "estimate_printed"; else fail "estimate_printed" "no estimate line"; fi
    # The churn table: per point req/s, server and client CPU per connection, calls per
    # connection; then the calls by name at c=64 (iterative's two setsockopt among them). The
    # calls are counted between loadgen's phase signals and the connections by loadgen, so the
    # connections in flight at either edge make the ratio 1.99 as often as 2.00 (1.99 in two
    # tiny runs of four here).
    if grep -q '| c=64 req/s | c=64 server CPU µs/conn | c=64 client CPU µs/conn | c=64 calls/conn |' "$work/tiny/report.md" &&
        grep -qE '^\| epoll-lt \| [0-9,]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9,]+ \|' "$work/tiny/report.md" &&
        grep -qE '^\| iterative \|.*setsockopt (2\.0[0-9]|1\.9[5-9])' "$work/tiny/report.md" &&
        grep -qE '^\| iterative \|.*accept4 (1\.0[0-5]|0\.9[5-9])' "$work/tiny/report.md"; then
        pass "report_shows_client_cpu_beside_server_cpu"
    else
        fail "report_shows_client_cpu_beside_server_cpu" "no client CPU column with figures, or no calls by name, in the churn table: $(grep -E '^\| (epoll-lt|iterative) \|' "$work/tiny/report.md" | grep -E 'accept4|–' | head -2)"
    fi
else
    fail "tiny_run_schema_and_plots" "bench.py failed: $(tail -3 "$work/tiny.log")"
fi
if [[ -n $stale ]]; then
    if [[ ! -e $stale ]]; then
        pass "stale_cgroup_removed"
    else
        fail "stale_cgroup_removed" "$stale is still there"
        rmdir "$stale"
    fi
fi
left=$(orphan_cgroups)
if [[ -z $left ]]; then pass "no_cgroup_left_after_a_run"; else fail "no_cgroup_left_after_a_run" "$left"; fi

# 2. A server that exits at once is recorded as failed, with its reason; the other is complete.
if bench --server-bin broken=/bin/false --servers "broken epoll-lt" --scenarios "churn" --reps 1 \
    --duration 1 --warmup 0.2 --out "$work/broken" >"$work/broken.log" 2>&1; then
    if python3 tests/bench/check_results.py "$work/broken" --expect broken:churn:failed \
        --expect epoll-lt:churn:ok --family broken:other >"$work/broken.check" 2>&1 &&
        grep -q '"reason": "server failed to start: exited with status 1' "$work/broken/results.json"; then
        pass "failed_server_recorded"
    else
        fail "failed_server_recorded" "$(head -5 "$work/broken.check")"
    fi
else
    fail "failed_server_recorded" "bench.py failed: $(tail -3 "$work/broken.log")"
fi

# 2b. A server that crashes mid-scenario: the points it measured are kept, the rest are failed
# with the reason, and the other server's results are complete.
if DYING_AFTER=2.5 bench --server-bin dying="$PWD/tests/bench/dying_server.sh" --servers "dying epoll-lt" \
    --scenarios "plaintext" --reps 2 --duration 0.5 --warmup 0.1 --no-perf --out "$work/dying" \
    >"$work/dying.log" 2>&1; then
    if python3 - "$work/dying/results.json" >"$work/dying.check" 2>&1 <<'PYEOF'
import json, sys
records = json.load(open(sys.argv[1]))["records"]
dying = [r["status"] for r in records if r["server"] == "dying"]
other = [r["status"] for r in records if r["server"] == "epoll-lt"]
reasons = [r.get("reason", "") for r in records if r["server"] == "dying" and r["status"] == "failed"]
first = next(r for r in records if r["server"] == "dying")
assert len(dying) == 5 and len(other) == 5, (dying, other)
assert first["reps"], "the repetitions measured before the crash were not kept"
assert dying[-1] == "failed" and reasons and all("server exited" in reason for reason in reasons), (dying, reasons)
assert all(status == "ok" for status in other), other
PYEOF
    then
        pass "server_crash_mid_scenario"
    else
        fail "server_crash_mid_scenario" "$(tail -3 "$work/dying.check")"
    fi
else
    fail "server_crash_mid_scenario" "bench.py failed: $(tail -3 "$work/dying.log")"
fi

# 2c. The blocking family's table, from a servers file of its own: iterative is in the family,
# epoll-lt is not, an entry whose binary is not in SERVERS is not run, and iterative, stuck on an
# idle connection, has no memory figure but a reason (and no plotted point at 200 idle).
cat >"$work/servers.txt" <<'EOF'
# name binary family arguments
iterative   iterative      blocking
epoll-lt    epoll-lt       event
ghost       no-such-server blocking   --workers 3
EOF
cat >"$work/scenarios.txt" <<'EOF'
churn      c=10       10    /  -c 10 --close --source {SOURCES}
plaintext  c=16       16    /  -c 16
c10k       idle=0     0     /  -c 16 --idle 0
c10k       idle=200   200   /  -c 16 --idle 200
EOF
listed=$(timeout 20 python3 harness/bench.py --servers-file "$work/servers.txt" --list | sed -n 's/^servers: *//p')
expected_list="iterative epoll-lt"
for binary in $(make -s --no-print-directory print-servers); do
    [[ $binary == iterative || $binary == epoll-lt ]] || expected_list+=" $binary"
done
if [[ $listed == "$expected_list nginx" ]]; then
    pass "servers_file_sets_the_default_list"
else
    fail "servers_file_sets_the_default_list" "listed '$listed', expected '$expected_list nginx'"
fi
if bench --servers-file "$work/servers.txt" --scenarios-file "$work/scenarios.txt" --servers "iterative epoll-lt" \
    --reps 2 --duration 0.5 --warmup 0.1 --out "$work/family" >"$work/family.log" 2>&1; then
    if python3 - "$work/family" >"$work/family.check" 2>&1 <<'PYEOF'
import json, re, sys
run = sys.argv[1]
doc = json.load(open(f"{run}/results.json"))
configs = doc["settings"]["server_configs"]
assert configs["iterative"]["family"] == "blocking" and configs["epoll-lt"]["family"] == "event", configs
assert "ghost" not in configs, configs
report = open(f"{run}/report.md").read()
section = report.split("## Blocking servers", 1)[1].split("\n## ", 1)[0]
rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| server")]
assert [row.split(" | ")[0] for row in rows] == ["| iterative"], rows
cells = [c.strip() for c in rows[0].strip("|").split("|")]
assert all(re.fullmatch(r"[0-9,.]+", c) for c in cells[1:7]), cells
assert cells[7] == "1" and cells[8] == "1", cells  # one process, one thread at c=16
mark = cells[9]
assert re.fullmatch(r"– \[\d+\]", mark) and cells[10] == cells[11] == mark, cells
assert re.search(re.escape(mark[2:]) + r" iterative, c10k idle=200: .*no response arrived", section), section
assert "PSS is the honest figure" in section and "thread-per-conn / fork-per-conn" not in section, section
stuck = next(r for r in doc["records"] if r["server"] == "iterative" and r["point"] == "idle=200")
assert stuck["status"] == "errors" and "no response arrived in any" in stuck["reason"], stuck.get("reason")
xs = [line.split()[0] for line in open(f"{run}/data/c10k_throughput-iterative.tsv") if not line.startswith("#")]
assert xs == ["0"], xs
epoll = next(r for r in doc["records"] if r["server"] == "epoll-lt" and r["point"] == "idle=200")
assert epoll["median"]["vmsize_per_idle_connection_bytes"] is not None, epoll["median"]
PYEOF
    then
        pass "blocking_family_table"
    else
        fail "blocking_family_table" "$(tail -3 "$work/family.check")"
    fi
else
    fail "blocking_family_table" "bench.py failed: $(tail -3 "$work/family.log")"
fi

# 2d. The other sources of server CPU time: cgroup v2 and the per-thread schedstat fallback (the
# tiny run used the default, cgroup v1 here), on a light point: nanoseconds, not 10 ms ticks.
echo "sleep c=16 16 /sleep/10 -c 16" >"$work/sleep.txt"
for source in cgroup-v2 schedstat; do
    case $source in
    cgroup-v2)
        prefix="cgroup v2 cpu.stat"
        [[ " ${cgroup_dirs[*]} " == *" /sys/fs/cgroup/unified "* || " ${cgroup_dirs[*]} " == *" /sys/fs/cgroup "* ]] || continue
        ;;
    schedstat) prefix="per-thread /proc/PID/task/TID/schedstat" ;;
    esac
    if bench --servers epoll-lt --scenarios-file "$work/sleep.txt" --cpu-source "$source" --reps 2 --duration 0.5 \
        --warmup 0.1 --no-perf --out "$work/$source" >"$work/$source.log" 2>&1 &&
        python3 tests/bench/check_results.py "$work/$source" --expect epoll-lt:sleep:ok --cpu-source "$prefix" \
            >"$work/$source.check" 2>&1 &&
        python3 - "$work/$source/results.json" "$prefix" <<'PYEOF'
import json, sys
record = json.load(open(sys.argv[1]))["records"][0]
sys.exit(0 if record["median"]["server_cpu_us_per_request"] > 0 and record["server_cpu_source"].startswith(sys.argv[2]) else 1)
PYEOF
    then
        pass "server_cpu_from_$source"
    else
        fail "server_cpu_from_$source" "$(tail -3 "$work/$source.check" "$work/$source.log" 2>/dev/null | tr '\n' ' ')"
    fi
done
left=$(orphan_cgroups)
if [[ -z $left ]]; then pass "no_cgroup_left_after_the_other_sources"; else fail "no_cgroup_left_after_the_other_sources" "$left"; fi

# 2e. The report's formatting rules: "within noise", "–" with reasons, the family table.
if timeout 60 python3 tests/bench/check_report.py >"$work/report.check" 2>&1; then
    pass "report_formatting ($(tail -1 "$work/report.check"))"
else
    fail "report_formatting" "$(grep '^FAIL' "$work/report.check" | head -3)"
fi

# 2f. bin/floor, the reference responder: every case of check_floor.py, on the build the bench runs
# and on an AddressSanitizer + UndefinedBehaviorSanitizer build (an over-read while counting heads
# split across reads would show there).
if [[ -x bin/floor ]]; then
    sub_checks "floor" timeout 90 python3 tests/bench/check_floor.py bin/floor bin/loadgen
else
    fail "floor" "bin/floor is not built (make all builds it)"
fi
if timeout 120 make -s --no-print-directory SANITIZE=address,undefined build/san-address-undefined/bin/floor \
    >"$work/floor-asan.log" 2>&1; then
    TEST_TIMEOUT_SCALE=3 sub_checks "floor (ASan+UBSan)" timeout 180 python3 tests/bench/check_floor.py \
        build/san-address-undefined/bin/floor bin/loadgen
else
    fail "floor (ASan+UBSan)" "cannot build it: $(tail -3 "$work/floor-asan.log")"
fi

# 2g. The floor runs by default, as a reference row just before nginx.
listed=$(timeout 20 python3 harness/bench.py --list | sed -n 's/^servers: *//p')
if [[ " $listed " == *" floor nginx " ]]; then
    pass "floor_runs_by_default_beside_nginx"
else
    fail "floor_runs_by_default_beside_nginx" "default servers: $listed"
fi

# 2h. The goals, from a small real run: floor, epoll-lt, nginx (when installed) and, under the name
# io-uring, a server that exits with status 1 and a message (skipped, not failed). check_goals.py
# recomputes every ratio printed from results.json.
printf '%s\n' "plaintext c=64 64 / -c 64" "pipeline c=64 64 / -c 64 -P 16" "c10k idle=0 0 / -c 16 --idle 0" \
    "c10k idle=300 300 / -c 16 --idle 300" "cpu c=4 4 /cpu/50 -c 4" >"$work/goals.txt"
goal_servers="floor epoll-lt io-uring"
if command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; then goal_servers+=" nginx"; fi
unsupported=$(tests/bench/unsupported_server.sh 2>&1)
if bench --server-bin io-uring="$PWD/tests/bench/unsupported_server.sh" --servers "$goal_servers" \
    --scenarios-file "$work/goals.txt" --reps 2 --duration 0.25 --warmup 0.05 --no-perf --out "$work/goals" \
    >"$work/goals.log" 2>&1; then
    sub_checks "goals" timeout 30 python3 tests/bench/check_goals.py "$work/goals" "$work/goals.log" "$unsupported"
    if python3 tests/bench/check_results.py "$work/goals" --expect io-uring:plaintext:skipped \
        --expect floor:cpu:not_applicable --expect floor:c10k:ok --family floor:reference --family io-uring:event \
        >"$work/goals.check" 2>&1; then
        pass "goals_run_schema"
    else
        fail "goals_run_schema" "$(head -5 "$work/goals.check")"
    fi
else
    fail "goals" "bench.py failed: $(tail -3 "$work/goals.log")"
fi

# 3. Bad arguments: usage and exit status 2.
echo "just-a-name" >"$work/bad-servers.txt"
for args in "--bogus" "--servers nosuchserver" "--scenarios nosuchscenario" "--reps 0" "--server-cpus x" \
    "--servers-file $work/bad-servers.txt" "--servers-file $work/missing.txt" "--cpu-source nonsense"; do
    # shellcheck disable=SC2086
    timeout 20 python3 harness/bench.py $args >"$work/bad.out" 2>&1
    status=$?
    if [[ $status == 2 ]] && grep -q usage "$work/bad.out"; then
        pass "bad_argument (${args//$work/WORK})"
    else
        fail "bad_argument (${args//$work/WORK})" "exit status $status"
    fi
done
# Into a file first: grep -q leaving the pipe early would make the lister die of a broken pipe.
timeout 20 ./run_all.sh --list >"$work/list.out" 2>&1
status=$?
if ((status == 0)) && grep -q '^scenario:  plaintext' "$work/list.out"; then
    pass "list"
else
    fail "list" "exit status $status: $(tail -2 "$work/list.out" | tr '\n' ' ')"
fi

# 4. The plots can be redrawn from results.json alone.
if [[ -f $work/tiny/results.json ]]; then
    rm -f "$work"/tiny/*.png "$work"/tiny/*.svg "$work/tiny/report.md"
    if timeout 60 make -s plots RUN="$work/tiny" >/dev/null 2>&1 &&
        python3 tests/bench/check_results.py "$work/tiny" --plots 2 >/dev/null 2>&1; then
        pass "make_plots_redraws"
    else
        fail "make_plots_redraws" "make plots did not recreate the plots and report"
    fi
fi

# 4b. The report as people read it: headless Chromium at 1400 and 390 px, nothing off the page,
# no broken or illegible plot, and the check itself catches a spoiled page.
if [[ -f $work/tiny/report.html ]]; then
    sub_checks "report in a browser" timeout 240 python3 harness/browser_check.py "$work/tiny"
else
    fail "report in a browser" "no report.html from the tiny run"
fi

# 5. Ctrl-C: the run stops, nothing is left running, partial results are kept, no cgroup is left.
python3 harness/bench.py --servers "epoll-lt" --scenarios "plaintext" --reps 3 --duration 1 --warmup 0.2 \
    --out "$work/interrupted" >"$work/interrupted.log" 2>&1 &
bench_pid=$!
for _ in $(seq 1 100); do
    grep -q '^\[4/' "$work/interrupted.log" 2>/dev/null && break
    sleep 0.1
done
kill -INT "$bench_pid"
if timeout 30 tail --pid="$bench_pid" -f /dev/null; then
    wait "$bench_pid"
    status=$?
else
    kill -KILL "$bench_pid"
    status="hung"
fi
# Any process still holding a file of the interrupted run (a server's stderr, loadgen's output)?
leftover=$(ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c "$work/interrupted" || true)
if [[ $status == 130 ]] && [[ $leftover == 0 ]] &&
    python3 -c "import json,sys; d=json.load(open('$work/interrupted/results.json')); sys.exit(0 if d['interrupted'] and len(d['records']) >= 1 else 1)"; then
    pass "ctrl_c_keeps_partial_results"
else
    fail "ctrl_c_keeps_partial_results" "exit status $status, $leftover open files of leftover processes"
fi
left=$(orphan_cgroups "$bench_pid")
if [[ -z $left ]]; then pass "no_cgroup_left_after_ctrl_c"; else fail "no_cgroup_left_after_ctrl_c" "$left"; fi

echo "$passed passed, $failed failed"
((failed == 0))
