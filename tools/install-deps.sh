#!/usr/bin/env bash
# Installs the Debian packages corral needs to build, run, test and benchmark, only those that are missing.
# Idempotent; uses sudo when not root. Fails loudly: a missing dependency is an error, never a skipped test.
#
#   tools/install-deps.sh           what build, run and test need (libclang-rt-dev: libFuzzer and the sanitizer
#                                   runtimes for clang, only recommended by clang and so not pulled in below;
#                                   `make test` runs the fuzz targets over their corpus; prometheus: promtool, which
#                                   the metrics tests run on /metrics)
#                                   Also Debian's chromium, and playwright-core from npm in tests/browser (npm ci,
#                                   at its lockfile's version, only when that version is not there yet): the status
#                                   page's browser test (tests/e2e/test_status_page.c) drives /usr/bin/chromium with it.
#                                   node and npm come from Debian when absent (playwright-core needs Node >= 20).
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
  python3-h2 chromium
  prometheus
  nodejs unzip   # tests/helm: tools/install-helm.sh (npm ci, helm from an npm package's zip)
)
BENCH_PKGS=(nginx libnginx-mod-http-brotli-filter libnginx-mod-http-brotli-static varnish)
[ "$BENCH" = 1 ] && PKGS+=("${BENCH_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
command -v npm >/dev/null || missing+=(npm)   # Debian's nodejs comes without npm; NodeSource's carries it
# tests/helm's npm packages and helm (tools/install-helm.sh); skipped where tests/helm is absent (the Dockerfile's
# build stage copies only this script)
install_helm() { if [ -f "$(dirname "$0")/../tests/helm/package.json" ]; then "$(dirname "$0")/install-helm.sh" >/dev/null; fi; }

# tests/browser's npm packages (playwright-core), at the lockfile's version; npm ci only when that is not installed
browser_modules() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  [ -f "$dir/package.json" ] || return 0   # the Dockerfile's build stage copies only this script
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "install-deps: node $(node --version) is too old for playwright-core (tests/browser): it needs Node >= 20" >&2
    exit 1
  fi
  if node -e 'const d = process.argv[1], l = require(d + "/package-lock.json"), m = require(d + "/node_modules/playwright-core/package.json");
              process.exit(l.packages["node_modules/playwright-core"].version === m.version ? 0 : 1)' "$dir" 2>/dev/null; then
    return 0
  fi
  echo "install-deps: npm ci in tests/browser"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ ${#missing[@]} -eq 0 ]; then
  install_helm
  browser_modules
  exit 0
fi

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
install_helm
browser_modules
