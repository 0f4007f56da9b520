# lib.sh: what the bench shell scripts share (sourced; not run). Before sourcing, a script sets WORK (its temp dir) and
# may append PIDs to PIDS; on exit every PID is killed and waited for and WORK removed. Servers bind to 127.0.0.1.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_up URL: polls (5 s at most) until URL answers 2xx, else exits naming the script
wait_up() { for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "$(basename "$0"): $1 did not answer" >&2; exit 1; }
# The hit route's compression, as make bench configures corral
BENCH_COMPRESS='    compress: { types: [application/json], min_size: 256, brotli_quality: 6, gzip_level: 6 }'
# corral_yaml PORT UPSTREAM_PORT [ROUTE_LINES (default BENCH_COMPRESS)]: a one-thread corral caching every path,
# as the bench scripts run it, on stdout
corral_yaml() {
  cat <<YAML
threads: 1
listen:
  - address: 127.0.0.1:$1
upstream:
  url: http://127.0.0.1:$2
cache:
  memory: 256MiB
routes:
  - match: { prefix: / }
    cache: true
${3:-$BENCH_COMPRESS}
YAML
}
