#!/usr/bin/env bash
# Tests of the benchmark harness (make bench): a tiny real run checked field by field, a run in
# which one server cannot start, bad arguments, redrawing the plots, and Ctrl-C. Every step is
# bounded by `timeout`. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
work=$(mktemp -d /tmp/c10k-bench-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

bench() { timeout 120 python3 harness/bench.py "$@"; }

# 1. A tiny run: two servers, two scenarios, 1 s runs.
if bench --servers "epoll-lt iterative" --scenarios "churn echo" --reps 2 --duration 1 --warmup 0.2 \
    --out "$work/tiny" >"$work/tiny.log" 2>&1; then
    if python3 tests/bench/check_results.py "$work/tiny" --plots 2 \
        --expect epoll-lt:churn:ok --expect epoll-lt:echo:ok \
        --expect iterative:churn:ok --expect iterative:echo:ok >"$work/tiny.check" 2>&1; then
        pass "tiny_run_schema_and_plots"
    else
        fail "tiny_run_schema_and_plots" "$(head -5 "$work/tiny.check")"
    fi
    if grep -qE '^\[[0-9]+/8\] epoll-lt churn c=64 rep 2/2 +[0-9,]+ req/s +p99 [0-9.]+ ms' "$work/tiny.log"; then
        pass "progress_lines"
    else
        fail "progress_lines" "no '[n/8] epoll-lt churn c=64 rep 2/2 ... req/s p99 ... ms' line"
    fi
    if grep -q 'estimated' "$work/tiny.log"; then pass "estimate_printed"; else fail "estimate_printed" "no estimate line"; fi
else
    fail "tiny_run_schema_and_plots" "bench.py failed: $(tail -3 "$work/tiny.log")"
fi

# 2. A server that exits at once is recorded as failed, with its reason; the other is complete.
if bench --server-bin broken=/bin/false --servers "broken epoll-lt" --scenarios "churn" --reps 1 \
    --duration 1 --warmup 0.2 --out "$work/broken" >"$work/broken.log" 2>&1; then
    if python3 tests/bench/check_results.py "$work/broken" --expect broken:churn:failed \
        --expect epoll-lt:churn:ok >"$work/broken.check" 2>&1 &&
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

# 3. Bad arguments: usage and exit status 2.
for args in "--bogus" "--servers nosuchserver" "--scenarios nosuchscenario" "--reps 0" "--server-cpus x"; do
    # shellcheck disable=SC2086
    timeout 20 python3 harness/bench.py $args >"$work/bad.out" 2>&1
    status=$?
    if [[ $status == 2 ]] && grep -q usage "$work/bad.out"; then
        pass "bad_argument ($args)"
    else
        fail "bad_argument ($args)" "exit status $status"
    fi
done
if timeout 20 ./run_all.sh --list | grep -q '^scenario:  plaintext'; then pass "list"; else fail "list" "no scenario list"; fi

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

# 5. Ctrl-C: the run stops, nothing is left running, partial results are kept.
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

echo "$passed passed, $failed failed"
((failed == 0))
