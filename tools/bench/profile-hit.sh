#!/usr/bin/env bash
# profile-hit.sh: where a cache hit's instructions go, counted by callgrind (repeatable on a noisy machine).
#
# Starts the test upstream and build/corral (one thread) under valgrind --tool=callgrind, stores one 2 KB JSON object,
# then runs two h2c loads of N_SMALL and N_BIG hits (h2load -c 10 -m 10), each in its own corral run: the difference
# of the two totals divided by the difference of the hit counts is the cost of one hit without start-up. Prints that
# and the top functions (exclusive instructions) of the big run. Every process it starts, it stops by PID.
#
# Usage: tools/bench/profile-hit.sh [build/corral] [accept-encoding]   (e.g. "br, gzip"; default: identity)
# PROFILE_H1=1: the hits over HTTP/1.1 (h2load --h1) instead of h2c.
# PROFILE_ROUTE (optional): YAML lines added to the route, e.g. PROFILE_ROUTE='    rate_limit: { rate: 1000000000/s, applies_to: all }'.
set -euo pipefail

CORRAL=${1:-build/corral}
AE=${2:-}
N_SMALL=2000
N_BIG=22000
WORK=$(mktemp -d /tmp/corral-profile.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${PROFILE_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

UP_PORT=$(free_port)
CORRAL_PORT=$(free_port)
python3 tools/test-upstream.py --port "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$UP_PORT/__health" >/dev/null && break; sleep 0.1; done

cat >"$WORK/corral.yaml" <<YAML
threads: 1
listen:
  - address: 127.0.0.1:$CORRAL_PORT
upstream:
  url: http://127.0.0.1:$UP_PORT
cache:
  memory: 64MiB
routes:
  - match: { prefix: / }
    cache: true
    compress: { types: [application/json], min_size: 256, brotli_quality: 6, gzip_level: 6 }
YAML
if [ -n "${PROFILE_ROUTE:-}" ]; then printf '%s\n' "$PROFILE_ROUTE" >>"$WORK/corral.yaml"; fi
URL="http://127.0.0.1:$CORRAL_PORT/profile/hot?size=2048&cc=max-age%3D3600"
H2LOAD_AE=()
[ -n "$AE" ] && H2LOAD_AE=(-H "accept-encoding: $AE")
PROTO_ARGS=()
[ -n "${PROFILE_H1:-}" ] && PROTO_ARGS=(--h1)

# one corral run under callgrind with n hits; prints its total instruction count
run() {
    local n=$1 out=$WORK/callgrind.$1 pid
    CORRAL_HUGEPAGES=0 valgrind --tool=callgrind --callgrind-out-file="$out" "$CORRAL" -c "$WORK/corral.yaml" \
        >"$WORK/corral.$n.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    for _ in $(seq 100); do curl -sf -o /dev/null "$URL" && break; sleep 0.2; done
    curl -sf -o /dev/null --http2-prior-knowledge "${H2LOAD_AE[@]}" "$URL" # stored, and its codings made
    h2load -n "$n" -c 10 -m 10 "${PROTO_ARGS[@]}" "${H2LOAD_AE[@]}" "$URL" | grep -q "$n 2xx" || { echo "h2load: not all $n hits were 2xx" >&2; exit 1; }
    kill "$pid"
    wait "$pid" || true
    grep -o 'Collected : [0-9]*' "$WORK/corral.$n.log" | awk '{print $3}'
}

small=$(run $N_SMALL)
big=$(run $N_BIG)
echo "corral hit under callgrind, $([ -n "${PROFILE_H1:-}" ] && echo HTTP/1.1 || echo h2c), accept-encoding: ${AE:-identity}"
echo "instructions per hit: $(( (big - small) / (N_BIG - N_SMALL) ))   (($big - $small) / ($N_BIG - $N_SMALL))"
echo
echo "top functions of the $N_BIG-hit run (exclusive instructions; start-up included, about $small of them):"
callgrind_annotate --inclusive=no "$WORK/callgrind.$N_BIG" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -25 |
    sed -E 's|/usr/lib/x86_64-linux-gnu/||; s|\[[^]]*corral\]||'
