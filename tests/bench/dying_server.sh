#!/usr/bin/env bash
# A server that crashes in the middle of a scenario: bin/epoll-lt, killed with SIGKILL after
# DYING_AFTER seconds (default 1.5). The subshell's $$ is this script's PID, which exec hands to
# the server.
here=$(cd "$(dirname "$0")/../.." && pwd)
(sleep "${DYING_AFTER:-1.5}"; kill -KILL $$) &
exec "$here/bin/epoll-lt" "$@"
