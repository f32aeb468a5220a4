#!/usr/bin/env bash
# The Disruptor-style ring (servers/common/ring.h), the locked queue and the channel
# (servers/common/chan.c) between two threads, through bin/ring-bench's
# own check (every message once, in order, or exit status 1), in the plain build and under
# ThreadSanitizer (which must see no race: the orderings of ring.h are the weakest that are
# correct, and TSan checks them as written). Every batch size 1 to 256 is run, with a ring small
# enough to fill. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
for bench in bin/ring-bench build/san-thread/bin/ring-bench; do
    out=$(timeout 120 "$bench" --messages 20000 --rounds 1 --size 256 2>&1)
    status=$?
    lines=$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x$' <<<"$out")
    if ((status == 0)) && ((lines == 9)) && ! grep -q "ThreadSanitizer" <<<"$out"; then
        echo "PASS $bench: every message once and in order, batches 1 to 256, in all three designs"
        passed=$((passed + 1))
    else
        echo "FAIL $bench: exit status $status, $lines of 9 batch lines: $(tail -5 <<<"$out" | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
