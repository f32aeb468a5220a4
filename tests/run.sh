#!/usr/bin/env bash
# Runs every test suite of c10k-lab and sums their results into one closing line.
#
# Each suite is a program that ends with a line "N passed, N failed"; a suite that dies before
# printing it counts as one failure. `make test` runs this after installing the dependencies.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
total_passed=0
total_failed=0
failed_suites=()
timings=() # how long each suite took, printed at the end

# run_suite NAME COMMAND...: runs the suite, echoing its output, and adds up its closing line.
run_suite() {
    local name=$1
    shift
    echo "=== $name: $*"
    local log started=$SECONDS
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    echo "=== $name: $((SECONDS - started)) s"
    timings+=("$((SECONDS - started)) s  $name")
    local summary
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    rm -f "$log"
    if [[ -z $summary ]]; then
        echo "=== $name: no summary line (exit status $status); counted as 1 failure"
        total_failed=$((total_failed + 1))
        failed_suites+=("$name")
        return
    fi
    local passed failed
    passed=${summary%% passed*}
    failed=${summary#*, }
    failed=${failed%% failed}
    if ((status != 0 && failed == 0)); then
        echo "=== $name: exit status $status with no failed case; counted as 1 failure"
        failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    ((failed == 0)) || failed_suites+=("$name")
}

build() {
    echo "=== build: $*"
    if ! make --no-print-directory -j"$jobs" "$@"; then
        echo "=== build failed: make $*"
        echo "0 passed, 1 failed"
        exit 1
    fi
}

servers=$(make -s print-servers)
threaded=$(make -s print-threaded-servers)
serial_flags=()
for name in $(make -s print-serial-servers); do
    serial_flags+=(--serial "$name")
done
for name in $(make -s print-bounded-servers); do
    serial_flags+=(--bounded "$name")
done

build all build/tests/test_http build/tests/test_conn build/tests/test_coro build/tests/test_chan build/tests/epoll_ctl_fails.so build/tests/fuzz_http
build SANITIZE=address,undefined servers build/san-address-undefined/tests/test_conn build/san-address-undefined/tests/test_coro \
    build/san-address-undefined/tests/test_chan
if [[ -n $threaded ]]; then
    build SANITIZE=thread $(printf 'build/san-thread/bin/%s ' $threaded) build/san-thread/bin/ring-bench build/san-thread/tests/test_chan
fi

# Every server must be in the conformance list: a server left out would go untested silently.
untested=()
conformance=" $(make -s print-conformance) "
for name in $servers; do
    [[ $conformance == *" $name "* || $conformance == *" $name:"* ]] || untested+=("$name")
done

# The conformance targets (NAME or NAME:FLAGS, see the Makefile's CONFORMANCE), in each build.
plain_bins=()
asan_bins=()
tsan_bins=()
plain_only=" $(make -s print-conformance-plain-only) "
for target in $(make -s print-conformance); do
    name=${target%%:*}
    plain_bins+=("bin/$target")
    [[ $plain_only == *" $target "* ]] && continue
    asan_bins+=("build/san-address-undefined/bin/$target")
    if [[ " $threaded " == *" $name "* ]]; then
        tsan_bins+=("build/san-thread/bin/$target")
    fi
done

if ((${#untested[@]} > 0)); then
    echo "=== servers missing from the Makefile's CONFORMANCE list: ${untested[*]}"
    total_failed=$((total_failed + ${#untested[@]}))
    failed_suites+=("conformance list")
fi
run_suite "parser unit tests" build/tests/test_http
run_suite "connection core unit tests" build/tests/test_conn
run_suite "connection core unit tests (ASan+UBSan)" build/san-address-undefined/tests/test_conn
run_suite "coroutines unit tests" build/tests/test_coro
run_suite "coroutines unit tests (ASan+UBSan)" build/san-address-undefined/tests/test_coro
run_suite "channels and processes unit tests" build/tests/test_chan
run_suite "channels and processes unit tests (ASan+UBSan)" build/san-address-undefined/tests/test_chan
run_suite "channels and processes unit tests (TSan)" build/san-thread/tests/test_chan
run_suite "the Disruptor ring (plain and TSan)" tests/ring.sh
run_suite "connection core makes no system call" tests/core_is_io_free.sh
run_suite "parser fuzzing (${FUZZ_SECONDS:-5} s)" tests/fuzz.sh "${FUZZ_SECONDS:-5}"
run_suite "conformance" python3 tests/conformance.py --jobs 2 "${serial_flags[@]}" "${plain_bins[@]}"
run_suite "conformance (ASan+UBSan)" python3 tests/conformance.py --jobs 2 "${serial_flags[@]}" "${asan_bins[@]}"
if ((${#tsan_bins[@]} > 0)); then
    run_suite "conformance (TSan)" python3 tests/conformance.py --jobs 2 "${serial_flags[@]}" "${tsan_bins[@]}"
fi
run_suite "blocking family" python3 tests/family.py bin
run_suite "blocking family (ASan+UBSan)" python3 tests/family.py build/san-address-undefined/bin
if ((${#tsan_bins[@]} > 0)); then
    run_suite "blocking family (TSan)" python3 tests/family.py build/san-thread/bin
fi
if [[ -x tests/loadgen/run.sh ]]; then
    run_suite "loadgen" tests/loadgen/run.sh
fi
run_suite "load from several hosts (namespace hosts, OpenMPI)" python3 tests/distributed.py
if [[ -x tests/bench/run.sh ]]; then
    run_suite "bench harness" tests/bench/run.sh
fi
run_suite "make figures' driver (figures 1, 2, 10)" tests/figures.sh
run_suite "the exercises' graders against solutions and starters" tests/teaching.sh
run_suite "churn-profile (calls and time per connection)" python3 tests/churn_profile.py
run_suite "perfcheck statistics" python3 tests/test_perfstats.py
run_suite "perfcheck self-test" python3 tests/perfcheck_selftest.py

echo
echo "time per suite (make test: $SECONDS s in all, builds included):"
printf '  %s\n' "${timings[@]}"
if ((${#failed_suites[@]} > 0)); then
    echo "failing suites: ${failed_suites[*]}"
fi
echo "$total_passed passed, $total_failed failed"
((total_failed == 0))
