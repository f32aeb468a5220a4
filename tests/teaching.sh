#!/usr/bin/env bash
# The exercises' autograders (docs/teaching/exercises/N-*/grade.py), each run against its
# solution (tests/teaching/solutions/N-*/), which must get full marks (exit 0), and against the
# starter code the handout gives, which must not (exit 1, a score below the maximum). Ends with
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

for exercise in docs/teaching/exercises/*/; do
    name=$(basename "$exercise")
    grader=$exercise/grade.py
    [[ -f $grader ]] || continue
    solution_dir=tests/teaching/solutions/$name
    if [[ ! -d $solution_dir ]]; then
        fail "$name" "no solution in $solution_dir to test the grader against"
        continue
    fi
    # The starter: the exercise's one file besides its handout and grader; the solution has its name.
    starter=$(find "$exercise" -maxdepth 1 -type f ! -name README.md ! -name grade.py | head -1)
    solution=$solution_dir/$(basename "$starter")
    out=$(timeout 300 python3 "$grader" "$solution" 2>&1)
    status=$?
    if ((status == 0)) && grep -qE '^score: ([0-9]+)/\1$' <<<"$out"; then
        pass "$name: the solution gets full marks ($(grep '^score:' <<<"$out"))"
    else
        fail "$name: the solution gets full marks" "status $status: $(grep -E '^(FAIL|score)' <<<"$out" | tr '\n' ' ')"
    fi
    out=$(timeout 300 python3 "$grader" "$starter" 2>&1)
    status=$?
    if ((status == 1)) && grep -q '^score:' <<<"$out" && ! grep -qE '^score: ([0-9]+)/\1$' <<<"$out"; then
        pass "$name: the starter does not ($(grep '^score:' <<<"$out"))"
    else
        fail "$name: the starter does not get full marks" "status $status: $(tail -2 <<<"$out" | tr '\n' ' ')"
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
