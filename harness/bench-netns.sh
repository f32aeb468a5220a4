#!/usr/bin/env bash
# make bench-netns: one benchmark scenario with the load from three hosts, on namespace hosts of
# this machine (harness/netns-hosts): the server on h0 (CPU 0), one bin/loadgen-mpi rank on each
# of h1..h3 (all on CPU 1), and this driver and mpirun in the set's control namespace. Arguments go
# to run_all.sh (default: the churn scenario for iterative and epoll-lt, quick). The set is removed
# on every exit. docs/distributed.md explains the real-hosts version of the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
./harness/deps.sh
make --no-print-directory -s -j"$(nproc)" all
if ! reason=$(harness/netns-hosts check); then
    echo "bench-netns: cannot make namespace hosts here: $reason" >&2
    exit 1
fi
set_name=bn$$
set_name=${set_name:0:6}
trap 'harness/netns-hosts down "$set_name"' EXIT
trap 'exit 130' INT TERM
harness/netns-hosts up "$set_name" 4 >/dev/null
state=/run/c10k-lab/netns/$set_name
IFS=, read -r server_host load_1 load_2 load_3 <"$state/addresses"
if (($# == 0)); then
    set -- --quick --servers "iterative epoll-lt" --scenarios churn
fi
# The driver runs in the control namespace, from which the hosts are reachable (and nothing else).
harness/netns-hosts exec "$set_name" python3 harness/bench.py "$@" \
    --load-hosts "$load_1,$load_2,$load_3" --server-host "$server_host" --server-agent \
    --rsh-agent "$state/agent" --subnet "$(cat "$state/subnet")"
