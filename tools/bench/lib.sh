# lib.sh: what the bench shell scripts share (sourced; not run). Before sourcing, a script sets WORK (its temp dir) and
# may append PIDs to PIDS; on exit every PID is killed and waited for and WORK removed. Servers bind to 127.0.0.1.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_up URL: polls (5 s at most) until URL answers 2xx, else exits naming the script
wait_up() { for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "$(basename "$0"): $1 did not answer" >&2; exit 1; }
