#!/usr/bin/env bash
# The main job: a local network of three build nodes, on the embedded
# defaults. Each node rebuilds the sample from source in its own private
# buildkitd with the network off and signs an attestation with its own cosign
# key; the artifact digests are compared (absolute majority: 2 of 3); the
# entry goes into a transparency log whose checkpoint the nodes cosign; and
# the artifact is verified offline from the proof bundle. Then an
# irreproducible sample shows how a disagreement is explained.
#
#   scripts/demo.sh [PYRSIA_BUILD_BINARY]     (as root; installs buildkit
#                                              and makes builder images first)
# The libp2p/Raft network that does this between machines is still to come:
# here the three nodes are processes on this machine, run one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
pb=$(realpath "${1:-bin/pyrsia-build}")
work=${PYRSIA_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$work"
export COSIGN_PASSWORD=${COSIGN_PASSWORD-demo}
images=${PYRSIA_IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/images}
nodes=(node-a node-b node-c)
origin=demo.pyrsia.local/build-log
step() { printf '\n== %s\n' "$*"; }

step "0/7 tools: runc, debootstrap, buildkitd; builder images in $images"
scripts/install-debian-deps.sh
PATH="$(scripts/install-buildkit.sh):$PATH"
export PATH
for img in busybox maven; do
  if [ ! -f "$images/$img/index.json" ]; then
    "$pb" image make --store "$images" "$img"
  fi
done
digest() { sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$images/$1/index.json" | head -1; }

spec() { # spec SAMPLE COORDINATE IMAGE > file
  local tarball="$repo/testdata/build/$1.tar"
  cat <<SPEC
version: 1
ecosystem: oci
coordinate: $2
source:
  archive:
    path: $tarball
    sha256: $(sha256sum "$tarball" | cut -d' ' -f1)
recipe:
  oci:
    dockerfile: Dockerfile
builderImage:
  name: $3
  digest: $(digest "$3")
sourceDateEpoch: 1700000000
SPEC
}
spec hello-c hello-c:1.0 maven > "$work/hello-c.yaml"
spec build-time build-time:1.0 busybox > "$work/build-time.yaml"

step "1/7 keys: a cosign key (attestations) and a note key (cosignatures) per node, a log key"
for n in "${nodes[@]}"; do
  "$pb" keygen --force --output-key-prefix "$work/$n" 2>/dev/null
  "$pb" log keygen --force --name "$n" --output-prefix "$work/$n" 2>/dev/null
done
"$pb" log keygen --force --name "$origin" --output-prefix "$work/log" 2>/dev/null
ls "$work"/*.pub

step "2/7 each node rebuilds hello-c from source (own buildkitd, network off) and attests"
for n in "${nodes[@]}"; do
  rm -rf "$work/out/$n"
  "$pb" build --key "$work/$n.key" --images "$images" --data-dir "$work/state/$n" \
    --builder-id "urn:pyrsia-build:node:$n" --progress plain --out "$work/out/$n" "$work/hello-c.yaml" \
    2> "$work/$n.build.err" | tee "$work/$n.digests"
done

step "3/7 quorum: an absolute majority (2 of 3) must report the same image digest"
winner=$(for n in "${nodes[@]}"; do sed -n 2p "$work/$n.digests" | cut -d' ' -f1; done | sort | uniq -c | sort -rn | head -1)
count=${winner%% sha256:*}; count=${count// /}; image=sha256:${winner##* sha256:}
echo "$count of 3 nodes agree on $image"
[ "$count" -ge 2 ] || { echo "demo: no quorum" >&2; exit 1; }

step "4/7 publish: one log entry with the nodes' attestations; the nodes cosign the checkpoint"
bundles=()
for n in "${nodes[@]}"; do bundles+=("$work/out/$n/attestation.sigstore.json"); done
"$pb" log make-entry --spec "$work/hello-c.yaml" -o "$work/entry.json" "${bundles[@]}"
cosigners=()
for n in "${nodes[@]}"; do cosigners+=(--cosigner "$work/$n.note.key:$work/state/$n/cosigner"); done
"$pb" log append --dir "$work/log" --origin "$origin" --key "$work/log.note.key" "${cosigners[@]}" "$work/entry.json"

step "5/7 proof bundle: entry, inclusion proof, final checkpoint"
index=$("$pb" log checkpoint --dir "$work/log" 2>/dev/null | sed -n 2p)
"$pb" log proof --dir "$work/log" -o "$work/hello-c.proof.json" "$((index - 1))"

step "6/7 anyone verifies the image offline: its manifest against the proof bundle and the policy keys"
manifest="$work/out/node-a/artifacts/image/blobs/sha256/${image#sha256:}"
keys=(); for n in "${nodes[@]}"; do keys+=(--key "$work/$n.pub" --cosigner-key "$work/$n.note.pub"); done
"$pb" verify --bundle "$work/hello-c.proof.json" --log-key "$work/log.note.pub" "${keys[@]}" "$manifest"

step "7/7 an irreproducible sample: two nodes disagree, and diff says why"
for n in node-a node-b; do
  rm -rf "$work/out/bt-$n"
  "$pb" build --key "$work/$n.key" --images "$images" --data-dir "$work/state/$n" --progress quiet \
    --out "$work/out/bt-$n" "$work/build-time.yaml" 2>/dev/null
done
set +e
"$pb" diff "$work/out/bt-node-a" "$work/out/bt-node-b"
rc=$?
set -e
if [ "$rc" -ne 1 ]; then echo "demo: expected the irreproducible builds to differ (exit 1), got $rc" >&2; exit 1; fi

printf '\ndemo: ok (everything is in %s)\n' "$work"
