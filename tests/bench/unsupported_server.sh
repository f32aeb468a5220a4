#!/usr/bin/env bash
# A server whose kernel lacks what it needs: it says so on stderr and exits with status 1 before
# listening, in a line "NAME: unavailable: WHY" (the convention of bin/io-uring when io_uring is
# disabled). The driver must record it
# as skipped, with this message as the reason, and go on.
echo "io-uring: unavailable: io_uring is disabled (kernel.io_uring_disabled=2)" >&2
exit 1
