#!/usr/bin/env bash
# The main job, until the build network exists: make a node key, pack the
# sample reproducibly, attest it, verify it offline, and show that a changed
# artifact is refused.
#
#   scripts/demo.sh [PYRSIA_BUILD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
pb=$(realpath "${1:-bin/pyrsia-build}")
work=${PYRSIA_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$work"
export COSIGN_PASSWORD=${COSIGN_PASSWORD-demo}
step() { printf '\n== %s\n' "$*"; }

step "1/5 key pair for node-a (cosign format) in $work"
"$pb" keygen --force --output-key-prefix "$work/node-a"

step "2/5 pack the sample reproducibly"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  -C testdata/sample -cf "$work/hello-1.0.tar" hello
sha256sum "$work/hello-1.0.tar"

step "3/5 attest: in-toto SLSA provenance v1, DSSE, Sigstore bundle v0.3"
"$pb" attest --key "$work/node-a.key" --spec testdata/sample/hello.yaml \
  --builder-id urn:pyrsia-build:node:node-a "$work/hello-1.0.tar"

step "4/5 verify offline"
"$pb" verify --key "$work/node-a.pub" "$work/hello-1.0.tar"

step "5/5 a changed artifact is refused (exit 1 expected)"
cp "$work/hello-1.0.tar" "$work/evil-1.0.tar"
printf 'x' >> "$work/evil-1.0.tar"
set +e
"$pb" verify --key "$work/node-a.pub" --bundle "$work/hello-1.0.tar.sigstore.json" "$work/evil-1.0.tar"
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "demo: expected exit 1 for the changed artifact, got $rc" >&2
  exit 1
fi
printf '\ndemo: ok (files in %s)\n' "$work"
