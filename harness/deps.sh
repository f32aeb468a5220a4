#!/usr/bin/env bash
# Installs the Debian packages c10k-lab needs, and nothing when they are all present already.
# `make test` and `make bench` run it first, so a fresh Debian 12 machine needs no manual step.
set -euo pipefail

packages=(
    build-essential pkg-config      # gcc, make
    libuv1-dev libjansson-dev liburing-dev
    libboost-context-dev libpcl1-dev   # the coroutines' switch (fcontext); libpcl for bin/coro-switch
    clang libclang-rt-14-dev        # libFuzzer for the parser fuzz target
    python3                         # the conformance suite (standard library only)
    curl wrk apache2-utils nghttp2-client nginx-light   # yardsticks and the reference server
    gnuplot-nox                     # plots
    chromium                        # the report's browser check (harness/browser_check.py)
    linux-perf                      # system calls per request in the benchmark and perfcheck
    valgrind                        # perfcheck: user-space instructions per request (callgrind)
    git                             # perfcheck: the base in a git worktree
    openmpi-bin libopenmpi-dev      # bin/loadgen-mpi: the load from several hosts (docs/distributed.md)
    iproute2                        # namespace hosts for its tests (harness/netns-hosts)
)

missing=()
for package in "${packages[@]}"; do
    # dpkg -s also succeeds for removed-but-configured packages; require "install ok installed".
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts nginx on installation; the benchmark starts its own, so the system one must not
# hold port 80 or a CPU.
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    "${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || "${sudo[@]}" service nginx stop >/dev/null 2>&1 || true
fi
