#!/usr/bin/env bash
# The connection core (servers/common/conn_core.c) must make no system call of its own: a
# completion-based server hands it bytes that were already read. Checked on the object file: every
# function it calls from outside must be on this list (the protocol code, memory, the clock, whose
# coarse reading is a vDSO load, and stats). A recv, send, close or shutdown creeping in fails.
set -euo pipefail
object=${1:-build/obj/servers/common/conn_core.o}
allowed=" _GLOBAL_OFFSET_TABLE_ clock_now free malloc realloc memcpy memmove memset server_options
          stats_local stats_count_response handler_blocks handler_format_head handler_pattern_at
          handler_refuse handler_respond http_parse_request __stack_chk_fail "
passed=0 failed=0
if [[ ! -f $object ]]; then
    echo "FAIL core_is_io_free: $object is missing (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi
unexpected=()
for symbol in $(nm -u "$object" | awk '{print $NF}'); do
    [[ $allowed == *" $symbol "* || $allowed == *" $symbol"$'\n'* ]] || unexpected+=("$symbol")
done
if ((${#unexpected[@]} == 0)); then
    echo "PASS core_is_io_free: conn_core.o calls only protocol, memory, clock and stats functions"
    passed=1
else
    echo "FAIL core_is_io_free: conn_core.o calls ${unexpected[*]}"
    failed=1
fi
echo "$passed passed, $failed failed"
((failed == 0))
