#!/usr/bin/env bash
# make bench: corral side by side with nginx (proxy_cache + brotli/gzip filters) and Varnish (do_gzip, http2), all in
# front of the same test upstream, in one run.
#
#   tools/bench/run.sh [CORRAL_BINARY] [--json FILE] [--quick] [--only hit,stampede,latency,tier]
#
# Workloads (tools/bench/bench.py drives them and prints the table):
#   1. cache-hit throughput of a 2 KB JSON object: h2c `h2load -c 50 -m 10 -D 5` identity and `br, gzip`,
#      HTTP/1.1 `wrk -t1 -c50 -d5s` identity and gzip; the Content-Encoding each server really served is printed;
#      the same runs against build/bare_h2o (the libh2o ceiling: the same body and codings from a static buffer,
#      pinned like the servers) give corral's ratio to the ceiling;
#   2. miss and pass overhead: p50/p99 of sequential HTTP/1.1 requests, direct to the upstream vs via each proxy, in
#      two placements (all on one CPU; proxy on CPU 1 with client and upstream on CPU 0), and each proxy's CPU time
#      per request;
#   3. stampede (issue 3): 500 then 5000 clients on a cold key with a 200 ms upstream: upstream fetches, latency;
#   4. tier (issue 13, tools/bench/tier_bench.py, which starts and stops its own 3 memcached, 3 corrals and upstream):
#      L2 hit vs L1 hit at a second pod, a stampede of 300 clients over 3 pods, invalidation delay between two pods.
# Hit runs are best of 2 rounds and latency samples are pooled over 2 interleaved rounds; the whole run takes about
# 2.5 minutes (--quick: about 30 s, one round of 2 s runs, no 5000-client stampede). --only runs some sections.
#
# Equivalence: one worker each (corral threads: 1, nginx worker_processes 1; Varnish's thread pools all share the
# pinned CPU), 256 MiB of cache each, in memory (nginx's cache files on tmpfs, /dev/shm, when there is one), the
# same upstream, freshness from the upstream's Cache-Control only, compression
# of application/json from 256 bytes at level 6 (nginx gzip and brotli per response, as nginx compresses on the fly;
# Varnish gzips once at store time, its default level 6; corral makes gzip and br once at store time).
#
# Set-up: every server (corral, nginx master+worker, varnishd and its threads) is pinned to CPU 1, the load generators
# and the test upstream to CPU 0 (section 2 moves the upstream and the client to CPU 1 for its one-CPU placement,
# then back). Everything listens on 127.0.0.1 on free ports. Config files are generated into a temp dir; nginx and
# Varnish keep their pid files, logs and work dirs there. Every process started here is stopped by PID on exit
# (trap), and the temp dirs are removed (BENCH_KEEP=1 keeps the one with the logs).
# BENCH_CORRAL_YAML (optional): top-level YAML lines added to corral's config, e.g. BENCH_CORRAL_YAML='log: { access: off }'.
# A benchmark, not a test: it asserts nothing, but says when a peer is missing, broken, or not serving from cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

CORRAL=$ROOT/build/corral
JSON=""
QUICK=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json) JSON=$2; shift 2 ;;
    --json=*) JSON=${1#--json=}; shift ;;
    --quick) QUICK=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) CORRAL=$1; shift ;;
  esac
done
# paths given relative to where we were started; then work from the repository root
case "$CORRAL" in /*) ;; *) CORRAL=$PWD/$CORRAL ;; esac
case "$JSON" in ""|/*) ;; *) JSON=$PWD/$JSON ;; esac
cd "$ROOT"
[ -x "$CORRAL" ] || { echo "run.sh: $CORRAL is not an executable (run make first)" >&2; exit 1; }
for t in h2load wrk curl python3 taskset; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is missing (tools/install-deps.sh --bench)" >&2; exit 1; }
done

# 5000 stampede clients need 5000 descriptors in h2load and as many in each server
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
  echo "run.sh: warning: ulimit -n is $(ulimit -n); the 5000-client stampede needs ~12000" >&2
fi

WORK=$(mktemp -d /tmp/corral-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user and need to reach $WORK/nginx
PIDS=()
NAMES=()
NCACHE=""
cleanup() {
  local i
  for i in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for i in "${!PIDS[@]}"; do
    # give each a few seconds (corral drains for up to 10 s), then KILL by the same PID
    for _ in $(seq 1 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  case "$NCACHE" in /dev/shm/corral-bench-nginx.*) rm -rf "$NCACHE" ;; esac
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "run.sh: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CPU CMD...: runs CMD pinned to CPU in the background, records its PID
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" > "$WORK/$name.out" 2>&1 &
  PIDS+=($!); NAMES+=("$name")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # wait_http NAME URL [PID]: up to 10 s for any HTTP answer
  local i
  for i in $(seq 1 200); do
    curl -s -o /dev/null -m 1 "$2" && return 0
    [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && break
    sleep 0.05
  done
  echo "run.sh: $1 did not come up ($2); its output:" >&2
  tail -n 20 "$WORK/$1.out" >&2 || true
  return 1
}

CPU_SERVER=1; CPU_CLIENT=0
if [ "$(nproc)" -lt 2 ]; then CPU_SERVER=0; echo "run.sh: warning: one CPU, servers and load share it" >&2; fi

UP_PORT=$(free_port)
CORRAL_PORT=$(free_port)
NGINX_H1_PORT=$(free_port); NGINX_H2_PORT=$(free_port)
VARNISH_PORT=$(free_port)

# --- the test upstream (CPU 0, beside the load generators: the servers under test keep CPU 1 to themselves)
start upstream "$CPU_CLIENT" python3 tools/test-upstream.py --port "$UP_PORT"
UP_PID=${PIDS[-1]}
wait_http upstream "http://127.0.0.1:$UP_PORT/__health" "$UP_PID"

# --- corral: one event-loop thread (like nginx's one worker), same memory as the peers
cat > "$WORK/corral.yaml" <<YAML
threads: 1
listen:
  - address: 127.0.0.1:$CORRAL_PORT
upstream:
  url: http://127.0.0.1:$UP_PORT
  max_connections: 64
cache:
  memory: 256MiB
routes:
  - match: { prefix: /pass }
    cache: false
  - match: { prefix: / }
    cache: true
    compress: { types: [application/json], min_size: 256, brotli_quality: 6, gzip_level: 6 }
${BENCH_CORRAL_YAML:-}
YAML
# run a private copy: a `make` elsewhere relinking build/corral mid-run must not change (or break) what is measured
cp "$CORRAL" "$WORK/corral-bin"
start corral "$CPU_SERVER" "$WORK/corral-bin" -c "$WORK/corral.yaml"
CORRAL_PID=${PIDS[-1]}
wait_http corral "http://127.0.0.1:$CORRAL_PORT/pass/ready" "$CORRAL_PID"
# corral-rl: the same config with a rate limit on the hit route that is never reached (the limiter's cost, hit rounds)
CORRAL_RL_PORT=$(free_port)
sed -e "s/127.0.0.1:$CORRAL_PORT/127.0.0.1:$CORRAL_RL_PORT/" \
    -e 's|^    compress: \(.*\)$|    compress: \1\n    rate_limit: { rate: 1000000000/s, burst: 1000000000, applies_to: all }|' \
    "$WORK/corral.yaml" > "$WORK/corral-rl.yaml"
grep -q "rate_limit" "$WORK/corral-rl.yaml" || { echo "run.sh: corral-rl.yaml has no rate_limit" >&2; exit 1; }
start corral-rl "$CPU_SERVER" "$WORK/corral-bin" -c "$WORK/corral-rl.yaml"
wait_http corral-rl "http://127.0.0.1:$CORRAL_RL_PORT/pass/ready" "${PIDS[-1]}"

# --- nginx: master + one worker, everything under $WORK; HTTP/1.1 and h2c (prior knowledge) need two listeners
NGINX_STATUS=missing
if command -v nginx >/dev/null; then
  N="$WORK/nginx"
  mkdir -p "$N/tmp" "$N/logs"
  # nginx's cache is files: on tmpfs when there is one, so that it is kept in memory like corral's and Varnish's, and
  # its miss cost does not depend on the disk and on what earlier runs left in its filesystem (on this machine's
  # ext4 /tmp, nginx's miss CPU grew from 110 to 520 us per request over five runs)
  NCACHE=$(mktemp -d /dev/shm/corral-bench-nginx.XXXXXX 2>/dev/null) || { NCACHE="$N/cache"; mkdir -p "$NCACHE"; }
  chmod 755 "$NCACHE"
  BROTLI_SO=/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so
  BROTLI_STATIC_SO=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
  USER_LINE=""
  if [ "$(id -u)" = 0 ]; then
    NGX_USER=www-data; id "$NGX_USER" >/dev/null 2>&1 || NGX_USER=nobody
    USER_LINE="user $NGX_USER $(id -gn "$NGX_USER");"
    chown -R "$NGX_USER" "$NCACHE" "$N/tmp"
  fi
  BROTLI_LOAD="" BROTLI_CONF=""
  if [ -f "$BROTLI_SO" ]; then
    BROTLI_LOAD="load_module $BROTLI_SO;"
    BROTLI_CONF="brotli on; brotli_types application/json; brotli_min_length 256; brotli_comp_level 6;"
    # brotli_static (off: compress on the fly, never look for .br files) is a directive of the separate static module
    if [ -f "$BROTLI_STATIC_SO" ]; then
      BROTLI_LOAD="$BROTLI_LOAD load_module $BROTLI_STATIC_SO;"
      BROTLI_CONF="brotli_static off; $BROTLI_CONF"
    fi
  else
    echo "run.sh: warning: $BROTLI_SO missing (libnginx-mod-http-brotli-filter): nginx runs without brotli" >&2
  fi
  cat > "$N/nginx.conf" <<NGINX
$BROTLI_LOAD
$USER_LINE
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $N/nginx.pid;
error_log $N/logs/error.log warn;
events { worker_connections 16000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $N/tmp/body;
  proxy_temp_path $N/tmp/proxy;
  fastcgi_temp_path $N/tmp/fastcgi;
  uwsgi_temp_path $N/tmp/uwsgi;
  scgi_temp_path $N/tmp/scgi;
  keepalive_requests 1000000;
  proxy_cache_path $NCACHE levels=1:2 keys_zone=bench:32m max_size=256m inactive=1h use_temp_path=off;
  upstream origin { server 127.0.0.1:$UP_PORT; keepalive 64; }
  gzip on; gzip_types application/json; gzip_min_length 256; gzip_proxied any; gzip_vary on; gzip_comp_level 6;
  $BROTLI_CONF
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server {
    listen 127.0.0.1:$NGINX_H1_PORT backlog=4096;
    listen 127.0.0.1:$NGINX_H2_PORT http2 backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_cache bench;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      add_header X-Cache-Status \$upstream_cache_status always;
    }
    location /pass/ {
      proxy_pass http://origin;
    }
  }
}
NGINX
  if nginx -t -p "$N" -e "$N/logs/error.log" -c "$N/nginx.conf" > "$WORK/nginx-t.out" 2>&1; then
    start nginx "$CPU_SERVER" nginx -p "$N" -e "$N/logs/error.log" -c "$N/nginx.conf"
    if wait_http nginx "http://127.0.0.1:$NGINX_H1_PORT/pass/ready" "${PIDS[-1]}"; then NGINX_STATUS=ok; else NGINX_STATUS=failed; fi
  else
    NGINX_STATUS=failed; echo "run.sh: nginx -t failed:" >&2; cat "$WORK/nginx-t.out" >&2
  fi
else
  echo "run.sh: nginx is not installed (tools/install-deps.sh --bench): its column stays empty" >&2
fi

# --- Varnish: malloc storage, do_gzip, HTTP/2 (h2c prior knowledge and Upgrade on the same port as HTTP/1.1)
VARNISH_STATUS=missing
if command -v varnishd >/dev/null; then
  V="$WORK/varnish"
  mkdir -p "$V"
  cat > "$V/bench.vcl" <<VCL
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$UP_PORT"; }
sub vcl_recv {
  if (req.url ~ "^/pass/") { return (pass); }
}
sub vcl_backend_response {
  # compress what is stored (as corral does), not what is passed through
  if (!bereq.uncacheable && beresp.http.content-type ~ "json") { set beresp.do_gzip = true; }
}
sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
VCL
  # -j none: no privilege separation (we may be root; the jail's users need not exist); -F: foreground, so the PID
  # we hold is the manager's, and TERM to it stops the child too.
  start varnish "$CPU_SERVER" varnishd -F -j none -n "$V/work" -a "127.0.0.1:$VARNISH_PORT" -T 127.0.0.1:0 \
    -f "$V/bench.vcl" -s malloc,256m -P "$V/varnishd.pid" \
    -p feature=+http2 -p listen_depth=4096 -p thread_pool_max=10000
  if wait_http varnish "http://127.0.0.1:$VARNISH_PORT/pass/ready" "${PIDS[-1]}"; then VARNISH_STATUS=ok; else VARNISH_STATUS=failed; fi
else
  echo "run.sh: varnishd is not installed (tools/install-deps.sh --bench): its column stays empty" >&2
fi

export BENCH_WORK="$WORK" BENCH_UP_PORT="$UP_PORT" BENCH_CPU_CLIENT="$CPU_CLIENT" BENCH_CPU_SERVER="$CPU_SERVER"
export BENCH_CORRAL_PORT="$CORRAL_PORT" BENCH_CORRAL_PID="$CORRAL_PID" BENCH_CORRAL_BIN="$CORRAL" BENCH_CORRAL_RL_PORT="$CORRAL_RL_PORT"
export BENCH_NGINX_H1_PORT="$NGINX_H1_PORT" BENCH_NGINX_H2_PORT="$NGINX_H2_PORT" BENCH_NGINX_STATUS="$NGINX_STATUS"
export BENCH_VARNISH_PORT="$VARNISH_PORT" BENCH_VARNISH_STATUS="$VARNISH_STATUS"
export BENCH_QUICK="$QUICK"
# the libh2o ceiling (tools/bench/bare_h2o.c, built by make bench): bench.py starts and stops it for the hit runs
BARE_BIN=${BENCH_BARE:-$ROOT/build/bare_h2o}
case "$BARE_BIN" in /*) ;; *) BARE_BIN=$ROOT/$BARE_BIN ;; esac
export BENCH_BARE_BIN="$BARE_BIN" BENCH_BARE_PORT="$(free_port)"
# pid list for the driver's liveness checks: NAME=PID,...
PIDLIST=""
for i in "${!PIDS[@]}"; do PIDLIST+="${NAMES[$i]}=${PIDS[$i]},"; done
export BENCH_PIDS="$PIDLIST"

ARGS=()
[ -n "$JSON" ] && ARGS+=(--json "$JSON")
[ -n "$ONLY" ] && ARGS+=(--only "$ONLY")
python3 tools/bench/bench.py "${ARGS[@]}"
