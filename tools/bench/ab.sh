#!/usr/bin/env bash
# ab.sh: paired A/B of two corral binaries on the cache-hit workload, for "did this change cost hit throughput?".
#
#   tools/bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS (default 6)] [SECONDS per run (default 3)]
#
# Both corrals run at once (threads: 1, each pinned to CPU 1) in front of one test upstream (CPU 0), serving the same
# 2 KB JSON object; h2load (h2c, -c 50 -m 10) and wrk (HTTP/1.1, -c 50) on CPU 0 alternate between them, old then new,
# new then old, for ROUNDS rounds. Alternating short runs side by side keeps the noise of a shared machine in both
# columns; the median of the per-round new/old ratios is printed per workload. Every process started here is stopped
# by PID on exit. A benchmark, not a test: it asserts nothing.
# AB_NEW_ROUTE (optional): YAML lines added to the new side's route only, to measure a route option with one binary,
# e.g. AB_NEW_ROUTE='    rate_limit: { rate: 1000000000/s, applies_to: all }' tools/bench/ab.sh build/corral build/corral
# OLD_BINARY may be bare:PATH (tools/bench/bare_h2o, serving the same object's bytes and codings from a static
# buffer): new/old is then corral's share of the libh2o ceiling, e.g. tools/bench/ab.sh bare:build/bare_h2o build/corral.
# AB_WORKLOADS (optional, default "h2c h1"): among h2c, h2c-br (Accept-Encoding: br, gzip), h1, h1-gzip.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OLD=$1; NEW=$2; ROUNDS=${3:-6}; SECS=${4:-3}
WORK=$(mktemp -d /tmp/corral-ab.XXXXXX)
. "$ROOT/tools/bench/lib.sh"

UP=$(free_port)
taskset -c 0 python3 "$ROOT/tools/test-upstream.py" --port "$UP" > "$WORK/upstream.out" 2>&1 & PIDS+=($!)
wait_up "http://127.0.0.1:$UP/__health"
PATH_Q="/ab/item?size=2048&ctype=application/json&cc=public,max-age=3600"
for side in old new; do
  port=$(free_port); eval "PORT_$side=$port"
  if [ $side = old ] && [ "${OLD#bare:}" != "$OLD" ]; then
    curl -fs -o "$WORK/bare-body" "http://127.0.0.1:$UP/ab/bare-body?size=2048&ctype=application/json&cc=public,max-age=3600"
    taskset -c 1 "${OLD#bare:}" "$port" "$WORK/bare-body" > "$WORK/old.out" 2>&1 & PIDS+=($!)
    continue
  fi
  corral_yaml "$port" "$UP" > "$WORK/$side.yaml"
  if [ $side = new ] && [ -n "${AB_NEW_ROUTE:-}" ]; then printf '%s\n' "$AB_NEW_ROUTE" >> "$WORK/$side.yaml"; fi
  bin=$OLD; [ $side = new ] && bin=$NEW
  cp "$bin" "$WORK/corral-$side"
  taskset -c 1 "$WORK/corral-$side" -c "$WORK/$side.yaml" > "$WORK/$side.out" 2>&1 & PIDS+=($!)
done
for side in old new; do
  eval "port=\$PORT_$side"; wait_up "http://127.0.0.1:$port$PATH_Q"
done

run() { # workload side -> req/s
  local port; eval "port=\$PORT_$2"
  local ae=()
  case $1 in h2c-br) ae=(-H "accept-encoding: br, gzip") ;; h1-gzip) ae=(-H "Accept-Encoding: gzip") ;; esac
  case $1 in
    h2c*) taskset -c 0 h2load -c 50 -m 10 -t 1 -D "$SECS" "${ae[@]}" "http://127.0.0.1:$port$PATH_Q" 2>/dev/null |
           awk '/^finished in/ {for (i = 1; i <= NF; ++i) if ($i ~ /req\/s/) { gsub(",", "", $(i-1)); print $(i-1) }}' ;;
    h1*) taskset -c 0 wrk -t1 -c50 -d"${SECS}s" "${ae[@]}" "http://127.0.0.1:$port$PATH_Q" 2>/dev/null | awk '/^Requests\/sec/ {print $2}' ;;
  esac
}
for w in ${AB_WORKLOADS:-h2c h1}; do
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then o=$(run $w old); n=$(run $w new); else n=$(run $w new); o=$(run $w old); fi
    ratios+=("$(python3 -c "print('%.3f' % ($n / $o))")")
    printf '%-4s round %d: old %10.0f  new %10.0f  new/old %s\n' "$w" "$r" "$o" "$n" "${ratios[-1]}"
  done
  printf '%-4s median new/old over %d rounds: %s\n' "$w" "$ROUNDS" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c 'import sys; v=[float(x) for x in sys.stdin]; print("%.3f" % v[len(v)//2] if len(v)%2 else "%.3f" % ((v[len(v)//2-1]+v[len(v)//2])/2))')"
done
