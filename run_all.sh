#!/usr/bin/env bash
# The benchmark behind `make bench` (full suite) and `make bench-quick` (--quick): installs what is
# missing, builds, then runs harness/bench.py with the arguments given here. `./run_all.sh --help`
# lists the options; docs/bench.md explains the scenarios and the output.
set -euo pipefail
cd "$(dirname "$0")"
for arg in "$@"; do
    case $arg in
    -h | --help | --list) exec python3 harness/bench.py "$@" ;;
    esac
done
./harness/deps.sh
make --no-print-directory -s -j"$(nproc)" all
exec python3 harness/bench.py "$@"
