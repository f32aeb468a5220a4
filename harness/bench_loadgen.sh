#!/usr/bin/env bash
# harness/bench_loadgen.sh - bin/loadgen against wrk (make bench-loadgen).
#
# For each server (nginx with one worker, and bin/epoll-lt) and each load (64 keep-alive
# connections, and the same pipelined 16 deep), runs loadgen and wrk alternately (A B, then B A,
# ...) for --rounds rounds each, one thread, server pinned to --server-cpu and client to
# --client-cpu. Client CPU time is measured the same way for both: /usr/bin/time around the client
# process (user + system), divided by the requests it completed. Prints medians and the median of
# the per-round ratios loadgen/wrk, with their spread. Every run is bounded by `timeout`; the
# servers are killed on exit, also on Ctrl-C.
set -euo pipefail

duration=10
rounds=3
server_cpu=0
client_cpu=1
connections=64
servers="nginx epoll-lt"
loads="c64 p16"

usage() {
    cat <<EOF
usage: $0 [options]
  --duration S      seconds per run (default $duration)
  --rounds N        runs of each client per case (default $rounds)
  --server-cpu C    CPU (taskset list) for the server (default $server_cpu)
  --client-cpu C    CPU (taskset list) for the clients (default $client_cpu)
  --connections N   connections (default $connections)
  --servers LIST    "nginx epoll-lt" or one of them (default "$servers")
  --loads LIST      "c64 p16" or one of them (default "$loads")
EOF
    exit 2
}

while (($#)); do
    case $1 in
    --duration) duration=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --server-cpu) server_cpu=${2:?}; shift 2 ;;
    --client-cpu) client_cpu=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --servers) servers=${2:?}; shift 2 ;;
    --loads) loads=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done
[[ $duration =~ ^[0-9]+$ && $rounds =~ ^[0-9]+$ && $connections =~ ^[0-9]+$ ]] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
LOADGEN=${LOADGEN:-$root/bin/loadgen}
EPOLL_LT=${EPOLL_LT:-$root/bin/epoll-lt}
[[ $LOADGEN == /* ]] || LOADGEN=$root/$LOADGEN
[[ $EPOLL_LT == /* ]] || EPOLL_LT=$root/$EPOLL_LT
for tool in wrk nginx taskset python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool is missing (make deps)" >&2; exit 1; }
done
[[ -x $LOADGEN ]] || { echo "bench-loadgen: $LOADGEN is missing (make bin/loadgen)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-loadgen.XXXXXX")
server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 5 s) until something accepts connections on 127.0.0.1:$1.
wait_for_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench-loadgen: nothing listens on port $1" >&2
    return 1
}

start_nginx() {
    port=$(free_port)
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "Hello, World!"; }
    }
}
EOF
    # The master and its one worker both run on the server CPU (the worker inherits the mask).
    taskset -c "$server_cpu" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
        >"$tmp/nginx/stdout" 2>&1 &
    server_pid=$!
    wait_for_port "$port"
}

start_epoll_lt() {
    [[ -x $EPOLL_LT ]] || { echo "bench-loadgen: $EPOLL_LT is missing (make bin/epoll-lt)" >&2; exit 1; }
    mkfifo "$tmp/ready"
    taskset -c "$server_cpu" "$EPOLL_LT" --port 0 >"$tmp/ready" 2>"$tmp/epoll-lt.err" &
    server_pid=$!
    local line=
    exec {ready_fd}<"$tmp/ready"
    read -r -t 5 -u "$ready_fd" line || true
    exec {ready_fd}<&-
    rm -f "$tmp/ready"
    [[ $line == "listening on "* ]] || { echo "bench-loadgen: epoll-lt did not start" >&2; exit 1; }
    port=${line##*:}
}

# wrk's pipelining: its documented way is a Lua script whose request() returns the requests
# concatenated; wrk then waits for all of them before writing the batch again.
cat >"$tmp/pipeline16.lua" <<'EOF'
init = function(args)
   local r = {}
   for i = 1, 16 do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
EOF

# run_client CLIENT LOAD: one run; prints "requests_per_s cpu_us_per_request".
run_client() {
    local client=$1 load=$2
    local url="http://127.0.0.1:$port/"
    local bound=$((duration + 20))
    if [[ $client == wrk ]]; then
        local script=()
        [[ $load == p16 ]] && script=(-s "$tmp/pipeline16.lua")
        timeout -k 5 "$bound" /usr/bin/time -f '%U %S' -o "$tmp/time" \
            taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${duration}s" "${script[@]}" "$url" >"$tmp/wrk.out"
        python3 - "$tmp/wrk.out" "$tmp/time" <<'EOF'
import re, sys
out = open(sys.argv[1]).read()
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
requests = int(re.search(r"(\d+) requests in", out).group(1))
rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
if re.search(r"Non-2xx|Socket errors", out):
    print("wrk reported errors:", out, file=sys.stderr)
print(rate, (user + system) * 1e6 / requests)
EOF
    else
        local pipeline=1
        [[ $load == p16 ]] && pipeline=16
        timeout -k 5 "$bound" /usr/bin/time -f '%U %S' -o "$tmp/time" \
            taskset -c "$client_cpu" "$LOADGEN" -t 1 -c "$connections" -P "$pipeline" -d "$duration" \
            --quiet --json "$tmp/loadgen.json" "$url"
        python3 - "$tmp/loadgen.json" "$tmp/time" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
totals = doc["totals"]
if doc["errors"]["total"]:
    print("loadgen reported errors:", doc["errors"], file=sys.stderr)
# All requests the process completed, as for wrk (there is no warm-up here).
requests = totals["completed"] + totals["warmup"]["completed"]
print(doc["rates"]["requests_per_s"], (user + system) * 1e6 / requests)
EOF
    fi
}

results=$tmp/results
: >"$results"
for server in $servers; do
    case $server in
    nginx) start_nginx ;;
    epoll-lt) start_epoll_lt ;;
    *) echo "bench-loadgen: unknown server $server" >&2; exit 2 ;;
    esac
    for load in $loads; do
        # A short unmeasured run first: the first run after a server starts is often low.
        saved=$duration
        duration=2
        run_client wrk "$load" >/dev/null
        duration=$saved
        for round in $(seq "$rounds"); do
            if ((round % 2)); then order="loadgen wrk"; else order="wrk loadgen"; fi
            for client in $order; do
                rate='' cpu=''
                read -r rate cpu < <(run_client "$client" "$load") || true
                if [[ -z ${cpu:-} ]]; then
                    echo "bench-loadgen: the $client run against $server ($load) failed" >&2
                    exit 1
                fi
                echo "$server $load $round $client $rate $cpu" >>"$results"
                printf '  %-8s %-4s round %d %-8s %10.0f req/s %6.2f us/req\n' "$server" "$load" "$round" "$client" "$rate" "$cpu" >&2
            done
        done
    done
    stop_server
done

echo
echo "bench-loadgen: $rounds rounds of ${duration}s, -t1 -c$connections, server on CPU $server_cpu, clients on CPU $client_cpu"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
cases = []
for server, load, *_ in rows:
    if (server, load) not in cases:
        cases.append((server, load))
def fmt(values, spec):
    return " ".join(format(v, spec) for v in values)
print(f"{'server':9} {'load':5} {'client':8} {'req/s median':>13} {'client CPU us/req':>18}   runs (req/s; us/req)")
for server, load in cases:
    data = {}
    for s, l, round_, client, rate, cpu in rows:
        if (s, l) == (server, load):
            data.setdefault(client, {})[int(round_)] = (float(rate), float(cpu))
    for client in ("wrk", "loadgen"):
        runs = [data[client][r] for r in sorted(data[client])]
        rates, cpus = [r for r, _ in runs], [c for _, c in runs]
        print(f"{server:9} {load:5} {client:8} {statistics.median(rates):13.0f} {statistics.median(cpus):18.2f}"
              f"   {fmt(rates, '.0f')}; {fmt(cpus, '.2f')}")
    paired = sorted(set(data["wrk"]) & set(data["loadgen"]))
    rate_ratios = [data["loadgen"][r][0] / data["wrk"][r][0] for r in paired]
    cpu_ratios = [data["loadgen"][r][1] / data["wrk"][r][1] for r in paired]
    print(f"{server:9} {load:5} {'ratio':8} {statistics.median(rate_ratios):13.2f} {statistics.median(cpu_ratios):18.2f}"
          f"   loadgen/wrk per round: {fmt(rate_ratios, '.2f')}; {fmt(cpu_ratios, '.2f')}")
print("floors: req/s ratio >= 1.00, CPU ratio <= 1.00")
EOF
