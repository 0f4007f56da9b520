#!/usr/bin/env bash
# make bench: cache-hit throughput of corral over h2c (h2load -c 50 -m 10) and HTTP/1.1 (wrk -t1 -c50), a 2 KB JSON
# object, with corral pinned to CPU 1 and the load generator to CPU 0. A benchmark, not a test: it prints numbers and
# asserts nothing. Every process it starts is stopped by PID on exit. Side-by-side runs against nginx and Varnish
# are tracked in issue 6.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORRAL=${1:-build/corral}
DURATION=${BENCH_SECONDS:-5}
WORK=$(mktemp -d /tmp/corral-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port); PORT=$(free_port)
CPU_SERVER=1; CPU_CLIENT=0
[ "$(nproc)" -lt 2 ] && CPU_SERVER=0

python3 tools/test-upstream.py --port "$UP_PORT" > "$WORK/up.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/corral.yaml" <<YAML
threads: 1
listen:
  - address: 127.0.0.1:$PORT
upstream:
  url: http://127.0.0.1:$UP_PORT
cache:
  memory: 64MiB
routes:
  - match: { prefix: / }
    ttl: 1h
YAML
for _ in $(seq 1 100); do grep -q ready "$WORK/up.log" && break; sleep 0.05; done
taskset -c "$CPU_SERVER" "$CORRAL" -c "$WORK/corral.yaml" > "$WORK/corral.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done

URL="http://127.0.0.1:$PORT/bench/item?size=2048&ctype=application/json"
curl -s -o /dev/null "$URL"
curl -s -D - -o /dev/null "$URL" | grep -i cache-status

h2c=$(taskset -c "$CPU_CLIENT" h2load -D "$DURATION" -c 50 -m 10 -t 1 "$URL" 2>/dev/null | awk '/^finished in/ {print $4}')
h1=$(taskset -c "$CPU_CLIENT" wrk -t1 -c50 -d"${DURATION}s" "$URL" 2>/dev/null | awk '/^Requests\/sec/ {print $2}')
echo
printf '%-28s %12s\n' "workload (2 KB hit)" "req/s"
printf '%-28s %12s\n' "h2c  h2load -c50 -m10" "${h2c:-?}"
printf '%-28s %12s\n' "h1   wrk -t1 -c50" "${h1:-?}"
echo "upstream requests for the object: $(curl -s "http://127.0.0.1:$UP_PORT/__count?path=/bench/item")"
