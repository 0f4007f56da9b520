#!/usr/bin/env bash
# Installs the Debian packages corral needs to build, run, test and benchmark, only those that are missing.
# Idempotent; uses sudo when not root. Fails loudly: a missing dependency is an error, never a skipped test.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang
  libh2o-evloop-dev libssl-dev libmemcached-dev zlib1g-dev libbrotli-dev libyaml-dev libjansson-dev
  libcunit1-dev libcurl4-openssl-dev
  memcached nghttp2-client wrk curl python3 procps
)

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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
