#!/usr/bin/env bash
# miss-cpu.sh: corral's own CPU time per cache miss, from /proc/PID/stat (user + system), for "what does a miss cost?".
#
#   tools/bench/miss-cpu.sh [CORRAL_BINARY (default build/corral)] [N misses (default 2000)]
#
# One corral (threads: 1, pinned to CPU 1) in front of the test upstream (CPU 0); h2load (one connection, one stream,
# CPU 0) asks N distinct keys of 2 KB JSON once each, so every request is a miss that stores an object and makes its
# br and gzip codings (compress as in make bench). MISS_ROUTE (optional) replaces the route's compress line, e.g.
# MISS_ROUTE='    compress: false'. Prints the CPU per miss in microseconds (10 ms clock ticks: +-5% at N = 2000).
# Every process started here is stopped by PID on exit. A benchmark, not a test: it asserts nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CORRAL=${1:-$ROOT/build/corral}
N=${2:-2000}
WORK=$(mktemp -d /tmp/corral-miss.XXXXXX)
. "$ROOT/tools/bench/lib.sh"

UP=$(free_port)
PORT=$(free_port)
taskset -c 0 python3 "$ROOT/tools/test-upstream.py" --port "$UP" > "$WORK/upstream.out" 2>&1 & PIDS+=($!)
wait_up "http://127.0.0.1:$UP/__health"
corral_yaml "$PORT" "$UP" "${MISS_ROUTE:-}" > "$WORK/corral.yaml"
taskset -c 1 "$CORRAL" -c "$WORK/corral.yaml" > "$WORK/corral.out" 2>&1 & CP=$!; PIDS+=($CP)
wait_up "http://127.0.0.1:$PORT/warm?size=2048&ctype=application/json&cc=public,max-age=3600"
for i in $(seq "$N"); do
  echo "http://127.0.0.1:$PORT/miss/$$-$i?size=2048&ctype=application/json&cc=public,max-age=3600"
done > "$WORK/urls"
ticks() { awk '{print $14 + $15}' "/proc/$CP/stat"; }
t0=$(ticks)
taskset -c 0 h2load -c 1 -m 1 -n "$N" -i "$WORK/urls" | grep -E "^finished|^status codes"
t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "corral CPU per miss: $(( (t1 - t0) * 1000000 / hz / N )) us ($(( t1 - t0 )) ticks of 1/$hz s over $N misses)"
