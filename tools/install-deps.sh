#!/usr/bin/env bash
# Installs the Debian packages corral needs to build, run, test and benchmark, only those that are missing.
# Idempotent; uses sudo when not root. Fails loudly: a missing dependency is an error, never a skipped test.
#
#   tools/install-deps.sh           what build, run and test need (libclang-rt-dev: libFuzzer and the sanitizer
#                                   runtimes for clang, only recommended by clang and so not pulled in below;
#                                   `make test` runs the fuzz targets over their corpus; prometheus: promtool, which
#                                   the metrics tests run on /metrics)
#   tools/install-deps.sh --bench   that, plus the peers `make bench` compares corral with (nginx with Debian's brotli
#                                   modules, Varnish). Their packaged services are not started: the benchmark runs its
#                                   own instances on free ports, and a system nginx on port 80 would only compete for CPU.
set -euo pipefail

BENCH=0
case "${1:-}" in
  "") ;;
  --bench) BENCH=1 ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

PKGS=(
  build-essential pkg-config clang libclang-rt-dev
  libh2o-evloop-dev libssl-dev libmemcached-dev zlib1g-dev libbrotli-dev libyaml-dev libjansson-dev
  libcunit1-dev libcurl4-openssl-dev
  memcached nghttp2-client wrk curl openssl python3 procps
  python3-h2
  prometheus
)
BENCH_PKGS=(nginx libnginx-mod-http-brotli-filter libnginx-mod-http-brotli-static varnish)
[ "$BENCH" = 1 ] && PKGS+=("${BENCH_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# another apt (a second install, unattended-upgrades) may hold the lock: wait for it rather than fail
APT_WAIT=(-o DPkg::Lock::Timeout=300)
$SUDO apt-get "${APT_WAIT[@]}" update -qq
if { [ "$BENCH" = 1 ] || [[ " ${missing[*]} " == *" prometheus "* ]]; } && [ ! -e /usr/sbin/policy-rc.d ]; then
  # keep the packaged nginx, varnish and prometheus services from starting (invoke-rc.d asks policy-rc.d; 101 = "not allowed"),
  # and remove this file again however the install ends
  printf '#!/bin/sh\n# temporary, from corral tools/install-deps.sh --bench\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
