#!/usr/bin/env bash
# make figures' driver (harness/figures.py) on the three figures that need no bench run: the
# staircase (1), the cost of a new connection (2) and coordinated omission (10), into a scratch
# directory. Checked: each writes its PNG, SVG and JSON; the JSON has the environment, the data and
# a finding; and the data shows the effect the figure is about, with wide margins (the iterative
# server's 8th client waits for the 7 before it, the threaded server's do not; a process costs
# more than a thread; the open loop's corrected p99 sees the stall the closed loop hides). Also a
# bad figure name is a usage error. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
work=$(mktemp -d /tmp/c10k-figures-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

if timeout 300 python3 harness/figures.py --figures "staircase,2 omission" --out "$work/out" --work "$work/runs" \
    >"$work/log" 2>&1; then
    pass "figures 1, 2 and 10 drawn ($(grep -c ': FAILED' "$work/log") failed)"
else
    fail "figures 1, 2 and 10 drawn" "$(tail -5 "$work/log" | tr '\n' ' ')"
fi
for name in staircase connection-cost omission; do
    if [[ -s $work/out/$name.png && -s $work/out/$name.svg && -s $work/out/$name.json ]]; then
        pass "$name: PNG, SVG and JSON written"
    else
        fail "$name: PNG, SVG and JSON written" "$(ls "$work/out" 2>&1 | tr '\n' ' ')"
    fi
done

out=$(python3 - "$work/out" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, f"{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def check(name, ok, detail):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
for name in ("staircase", "connection-cost", "omission"):
    doc = load(name)
    check(f"{name}: JSON with schema, environment, finding and data",
          doc is not None and doc.get("schema") == "c10k-lab/figure/1" and doc.get("environment", {}).get("kernel")
          and doc.get("finding") and doc.get("data"), str(doc)[:300])
stairs = (load("staircase") or {}).get("data", {})
it, th = stairs.get("iterative", []), stairs.get("thread-per-conn", [])
check("staircase: the iterative server's 8th client waits for the seven before it (>= 5x the 1st)",
      len(it) == 8 and it[-1] >= 5 * it[0], it)
check("staircase: thread-per-conn serves the 8 at once (the last within 2x the first)",
      len(th) == 8 and th[-1] <= 2 * th[0], th)
ways = {w["way"]: w for w in ((load("connection-cost") or {}).get("data", {}).get("ways") or [])}
check("connection cost: fork costs more CPU than pthread_create",
      "fork" in ways and "pthread_create" in ways and ways["fork"]["cpu_us"] > ways["pthread_create"]["cpu_us"], ways)
sizes = (load("connection-cost") or {}).get("data", {}).get("fork_by_parent_size") or []
check("connection cost: fork with a 1 GiB parent takes longer than with 10 MiB",
      len(sizes) >= 2 and sizes[-1]["fork_wall_us"] > sizes[0]["fork_wall_us"], sizes)
lat = (load("omission") or {}).get("data", {})
closed = (lat.get("closed loop") or {}).get("p99_us")
corrected = (lat.get("open loop, corrected (from the intended send)") or {}).get("p99_us")
check("omission: the open loop's corrected p99 sees the 200 ms stall (>= 100 ms) that the closed loop's hides (10x lower)",
      closed and corrected and corrected >= 100000 and corrected >= 10 * closed, lat)
EOF
)
while IFS= read -r line; do
    case $line in
    "PASS "*) pass "${line#PASS }" ;;
    "FAIL "*) fail "${line#FAIL }" "" ;;
    esac
done <<<"$out"

timeout 20 python3 harness/figures.py --figures nosuch >"$work/bad" 2>&1
status=$?
if [[ $status == 2 ]] && grep -q "unknown figure" "$work/bad"; then
    pass "an unknown figure is a usage error (status 2)"
else
    fail "an unknown figure is a usage error (status 2)" "status $status: $(tail -2 "$work/bad")"
fi
echo "$passed passed, $failed failed"
((failed == 0))
