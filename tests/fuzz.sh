#!/usr/bin/env bash
# fuzz.sh SECONDS - runs the parser's libFuzzer target (build/tests/fuzz_http) for SECONDS over a
# temporary copy of tests/fuzz-corpus/http and build/fuzz-corpus (when it exists), so the seed
# corpus is never modified. Prints "PASS fuzz_http (N runs)" or "FAIL fuzz_http: CRASH-FILE",
# then one summary line like every suite of `make test`; exits 1 on a failure.
# A crashing input is kept in build/fuzz-crashes/; reproduce it with `build/tests/fuzz_http FILE`.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

seconds=${1:-}
if [[ ! $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi

fuzzer=build/tests/fuzz_http
crashes=build/fuzz-crashes

fail() {
    echo "FAIL fuzz_http: $1"
    echo "0 passed, 1 failed"
    exit 1
}

[[ -x $fuzzer ]] || fail "$fuzzer is not built (make $fuzzer)"

work=$(mktemp -d "${TMPDIR:-/tmp}/c10k-fuzz.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$crashes"
cp tests/fuzz-corpus/http/* "$work/corpus/" || fail "cannot copy tests/fuzz-corpus/http"
if [[ -d build/fuzz-corpus ]]; then
    find build/fuzz-corpus -maxdepth 1 -type f -exec cp -t "$work/corpus/" {} + ||
        fail "cannot copy build/fuzz-corpus"
fi

# -max_total_time bounds the run; timeout(1) bounds it again should the fuzzer itself hang (a
# single input taking over 10 s is reported by libFuzzer as a failure through -timeout).
timeout --kill-after=10 $((seconds + 60)) \
    "$fuzzer" -max_total_time="$seconds" -max_len=9000 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$work/corpus" >"$work/log" 2>&1
status=$?

if ((status != 0)); then
    crash=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$work/log" | tail -n 1)
    tail -n 40 "$work/log" >&2
    if [[ -n $crash ]]; then
        fail "$crash"
    elif ((status == 124 || status == 137)); then
        fail "did not stop within $((seconds + 60)) s"
    else
        fail "exit status $status, no crash file (see the log above)"
    fi
fi

runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/log" | tail -n 1)
echo "PASS fuzz_http (${runs:-?} runs)"
echo "1 passed, 0 failed"
