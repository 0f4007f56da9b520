#!/usr/bin/env bash
# tests/helm/run.sh: the Helm chart and the Dockerfile, offline (no cluster, no image build). `make helm-test`.
#   - helm (tools/install-helm.sh) lint --strict, on helm/corral and the parent-chart example in helm/examples/
#   - helm template for each case (defaults, tests/helm/values/*.yaml, the parent example), every object validated
#     against the Kubernetes schemas and every rendered corral.yaml through `corral -t` (check.mjs)
#   - values.schema.json allows only keys sidecar/conf/config_schema.c knows (keys it lacks are listed as info)
#   - each tests/helm/bad/*.yaml must be rejected by values.schema.json (helm template exits non-zero)
#   - NOTES.txt names the admin Service, status page, metrics and token; a native sidecar is refused before 1.29
#   - a config change changes the checksum annotation (so it rolls the pods); chart, image tag and binary versions agree
#   - Dockerfile: every shared library `ldd build/corral` shows comes from a package the runtime stage installs
#     (dpkg -S on the resolved path); dockerfilelint finds no issue
# Every helm and node call is bounded by `timeout`. Prints one line per check and "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
CORRAL=${CORRAL_BIN:-build/corral}
# the Dockerfile check looks at the image's binary: the plain build (a sanitized one links the sanitizer runtimes)
IMAGE_BIN=${IMAGE_BIN:-build/corral}
for b in "$CORRAL" "$IMAGE_BIN"; do [ -x "$b" ] || { echo "helm-test: $b is missing (make all)" >&2; exit 1; }; done
HELM=$(tools/install-helm.sh | tail -n 1)
T="timeout 60"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 failures=""
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); failures+="FAIL $*"$'\n'; echo "FAIL $*"; }
# a check.mjs run: its lines are shown, its counts added
mjs() {
  local out rc=0
  out=$($T node tests/helm/check.mjs "$@") || rc=$?
  echo "$out" | grep -v '^check: '
  passed=$((passed + $(echo "$out" | grep -c '^ok ' || true)))
  failed=$((failed + $(echo "$out" | grep -c '^FAIL ' || true)))
  if grep -q '^FAIL ' <<<"$out"; then failures+="$(grep '^FAIL ' <<<"$out")"$'\n'; fi
  [ $rc -eq 0 ] || [ "$(echo "$out" | grep -c '^FAIL ' || true)" -gt 0 ] || bad "check.mjs $* exited $rc"
}

echo "helm-test: $($HELM version --short), $("$CORRAL" --version)"
mjs --self-test

# ---- values.schema.json allows no key corral does not know (sidecar/conf/config_schema.c)
mjs --schema-drift helm/corral/values.schema.json sidecar/conf/config_schema.c
node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1])); s.$defs.route.properties.time_to_live = {type: "string"};
  console.log(JSON.stringify(s))' helm/corral/values.schema.json >"$tmp/drift.json"
drift=$($T node tests/helm/check.mjs --schema-drift "$tmp/drift.json" sidecar/conf/config_schema.c || true)
if grep -q 'FAIL schema drift: routes\[\] .*not in corral: time_to_live' <<<"$drift"; then ok "schema drift check: a route key corral lacks is caught"; else bad "schema drift check missed time_to_live: $drift"; fi

# ---- lint
if out=$($T "$HELM" lint --strict helm/corral 2>&1); then ok "helm lint --strict helm/corral"; else bad "helm lint --strict helm/corral: $out"; fi
for f in tests/helm/values/*.yaml; do
  if out=$($T "$HELM" lint --strict helm/corral -f "$f" 2>&1); then ok "helm lint --strict -f $f"; else bad "helm lint --strict -f $f: $out"; fi
done
# the parent example refers to the chart as file://../../corral: build its dependency in a copy, not in the tree
cp -r helm "$tmp/helm"
rm -rf "$tmp/helm/examples/parent/charts"
if out=$($T "$HELM" dependency build "$tmp/helm/examples/parent" 2>&1) && out=$($T "$HELM" lint --strict "$tmp/helm/examples/parent" 2>&1); then
  ok "helm lint --strict helm/examples/parent (corral as a dependency)"
else
  bad "helm/examples/parent: $out"
fi

# ---- render and validate each case
render() {  # name, then helm template arguments
  local name=$1; shift
  if $T "$HELM" template "$name-rel" "$@" --namespace shop >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
    ok "$name: helm template"
    mjs --corral "$CORRAL" --case "$name" "$tmp/$name.yaml"
  else
    bad "$name: helm template failed: $(cat "$tmp/$name.err")"
  fi
}
render defaults helm/corral
for f in tests/helm/values/*.yaml; do render "$(basename "$f" .yaml)" helm/corral -f "$f"; done
render parent "$tmp/helm/examples/parent"

# ---- values.schema.json rejects bad values
for f in tests/helm/bad/*.yaml; do
  if $T "$HELM" template r helm/corral -f "$f" >/dev/null 2>"$tmp/bad.err"; then
    bad "$f: accepted, values.schema.json should reject it"
  elif grep -q "values don't meet the specifications of the schema" "$tmp/bad.err"; then
    ok "$f: rejected by values.schema.json ($(grep -m1 "at '" "$tmp/bad.err" | sed 's/^ *- //'))"
  else
    bad "$f: rejected, but not by the schema: $(cat "$tmp/bad.err")"
  fi
done

# ---- NOTES.txt (helm install --dry-run=client renders it offline) says how to reach the status page and metrics
for f in "" tests/helm/values/*.yaml; do
  if notes=$($T "$HELM" install r helm/corral --dry-run=client ${f:+-f "$f"} 2>&1 | sed -n '/^NOTES:/,$p') &&
     grep -q 'svc/r-corral-admin 9091' <<<"$notes" && grep -q '9091/metrics' <<<"$notes" && grep -q 'status page' <<<"$notes" &&
     grep -q 'get secret' <<<"$notes"; then
    ok "NOTES.txt ${f:-(defaults)}: admin Service, status page, metrics, token"
  else
    bad "NOTES.txt ${f:-(defaults)}: $notes"
  fi
done

# ---- a native sidecar is refused on a cluster before 1.29 (it would block the pod), legacy mode renders there
if $T "$HELM" template r helm/corral -f tests/helm/values/wrapped.yaml --kube-version 1.28.0 >/dev/null 2>"$tmp/kv.err"; then
  bad "nativeSidecar on Kubernetes 1.28: rendered, should be refused"
elif grep -q 'nativeSidecar needs Kubernetes 1.29' "$tmp/kv.err"; then ok "nativeSidecar on Kubernetes 1.28: refused with a message"
else bad "nativeSidecar on Kubernetes 1.28: failed otherwise: $(cat "$tmp/kv.err")"; fi
if $T "$HELM" template r helm/corral -f tests/helm/values/legacy.yaml --kube-version 1.27.0 >/dev/null 2>"$tmp/kv.err"; then
  ok "legacy mode on Kubernetes 1.27: renders"
else bad "legacy mode on Kubernetes 1.27: $(cat "$tmp/kv.err")"; fi

# ---- a change of corral.yaml changes the pod template (the checksum roll)
sum() { local o; o=$($T "$HELM" template r helm/corral -f tests/helm/values/wrapped.yaml "$@") && grep -m1 'checksum/corral-config' <<<"$o"; }
printf 'config:\n  cache: { max_object_size: 2MiB }\n' >"$tmp/changed.yaml"
a=$(sum); b=$(sum); c=$(sum -f "$tmp/changed.yaml")
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "checksum annotation: stable across renders, changed by a config change"; else bad "checksum annotation: '$a' '$b' '$c'"; fi

# ---- versions agree: Chart.yaml appVersion, values image.tag, corral --version
app=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' helm/corral/Chart.yaml)
tag=$(sed -n 's/^  tag: *"\([^"]*\)".*/\1/p' helm/corral/values.yaml | head -n 1)
bin=$("$CORRAL" --version | awk '{print $2}')
if [ -n "$app" ] && [ "$app" = "$tag" ] && [ "$app" = "$bin" ]; then ok "versions agree: appVersion, image.tag, corral --version ($app)"; else bad "versions: appVersion '$app', image.tag '$tag', corral '$bin'"; fi

# ---- Dockerfile: the runtime stage installs a package for every shared library of build/corral
runtime_pkgs() {  # the packages of the last stage's apt-get install lines
  awk '/^FROM /{stage++} {print stage "\t" $0}' "$1" | awk -F'\t' -v last="$(grep -c '^FROM ' "$1")" '$1 == last {print $2}' |
    sed -e 's/#.*//' | tr '\\' '\n' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
    grep -vxE 'apt-get|install|update|rm|run|RUN|groupadd|useradd|-y|&&' | sort -u
}
lib_pkgs() {  # "library package" for each ldd line (linux-vdso is the kernel's, not a file)
  ldd "$IMAGE_BIN" | awk '$1 !~ /^linux-vdso/ {print $1, ($3 != "" ? $3 : $1)}' | while read -r lib p; do
    local r pkg
    r=$(readlink -f "$p")
    pkg=$(dpkg -S "$r" 2>/dev/null || dpkg -S "$p" 2>/dev/null || dpkg -S "/lib/${r#/usr/lib/}" 2>/dev/null || true)
    echo "$lib ${pkg%%:*}"
  done
}
docker_libs() {  # Dockerfile; prints the libraries it misses, one a line
  local have; have=$(runtime_pkgs "$1")
  lib_pkgs | while read -r lib pkg; do
    if [ -z "$pkg" ] || ! grep -qxF "$pkg" <<<"$have"; then echo "$lib(${pkg:-no package})"; fi
  done
}
missing=$(docker_libs Dockerfile)
n=$(lib_pkgs | wc -l)
if [ -z "$missing" ] && [ "$n" -gt 5 ]; then ok "Dockerfile: the runtime stage installs the package of each of the $n shared libraries of $IMAGE_BIN"; else bad "Dockerfile: no package installed for $missing"; fi
grep -v 'libjansson4' Dockerfile >"$tmp/Dockerfile.nojansson"
# (no `| grep -q` on a producer under pipefail: grep's early exit would SIGPIPE it into a false failure)
missing_nj=$(docker_libs "$tmp/Dockerfile.nojansson")
if grep -q '^libjansson' <<<"$missing_nj"; then ok "Dockerfile check: a runtime stage without libjansson4 is caught"; else bad "Dockerfile check: missed a removed libjansson4"; fi
last_stage=$(awk '/^FROM /{s=""} {s=s $0 "\n"} END{printf "%s", s}' Dockerfile)
if grep -qE '^USER +10001' <<<"$last_stage" && grep -q 'tools/install-deps.sh' Dockerfile && grep -qE 'RUN make .*all' Dockerfile &&
   grep -q '^FROM debian:bookworm AS build' Dockerfile && grep -q '^FROM debian:bookworm-slim' <<<"$last_stage"; then
  ok "Dockerfile: bookworm build stage with install-deps.sh and make, bookworm-slim runtime as uid 10001"
else
  bad "Dockerfile: stages, install script, make or USER not as expected"
fi
if out=$($T tests/helm/node_modules/.bin/dockerfilelint Dockerfile 2>&1); then ok "dockerfilelint Dockerfile: no issue"; else bad "dockerfilelint Dockerfile: $out"; fi

[ -z "$failures" ] || printf 'helm-test: the failures again:\n%s' "$failures"
echo "helm-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
