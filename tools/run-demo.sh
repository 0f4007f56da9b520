#!/usr/bin/env bash
# make run: starts the demo upstream (tools/test-upstream.py on 127.0.0.1:8080) and corral in front of it with
# conf/corral.yaml, in-memory cache only. Ctrl-C stops both (the upstream is stopped by its PID).
set -euo pipefail
cd "$(dirname "$0")/.."
CORRAL=${1:-build/corral}
CONF=${CORRAL_CONF:-conf/corral.yaml}
# conf/corral.yaml reads the admin token from this variable, and an unset one is a start-up error
export CORRAL_ADMIN_TOKEN=${CORRAL_ADMIN_TOKEN:-demo-token}

"$CORRAL" -t -c "$CONF"

python3 tools/test-upstream.py --host 127.0.0.1 --port 8080 > build/demo-upstream.log 2>&1 &
UP_PID=$!
trap 'kill "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q ready build/demo-upstream.log 2>/dev/null && break
  kill -0 "$UP_PID" 2>/dev/null || { cat build/demo-upstream.log; echo "demo upstream failed to start" >&2; exit 1; }
  sleep 0.05
done

cat <<MSG
corral is starting on http://127.0.0.1:8081 (upstream: demo server on 127.0.0.1:8080, admin on 127.0.0.1:9091)
Try:
  curl -si --http2-prior-knowledge http://127.0.0.1:8081/v1/users/42      # first: Cache-Status: corral; fwd=uri-miss; stored
  curl -si --http2-prior-knowledge http://127.0.0.1:8081/v1/users/42      # again: Cache-Status: corral; hit; ttl=...
  curl -s -H "Authorization: Bearer $CORRAL_ADMIN_TOKEN" http://127.0.0.1:9091/metrics | grep corral_cache
Ctrl-C stops it.
MSG
"$CORRAL" -c "$CONF"
