#!/usr/bin/env bash
# The main job: a local build network of three build-node daemons on
# loopback, each with its own data folder, its own keys and its own private
# buildkitd. They talk only over libp2p: a request is gossiped, every node
# rebuilds the sample from source with the network off and gossips its
# signed vote, the Raft leader appends the entry once a majority (2 of 3)
# agrees, every node checks the entry against the policy and applies it to
# its own replica of the log, and the nodes cosign the checkpoint. The
# artifacts are then verified offline with nothing but the policy file. An
# irreproducible sample shows the verdict of a request without a quorum.
#
#   scripts/demo.sh [PYRSIA_BUILD_BINARY]   (as root; installs buildkit and
#                                            makes builder images first)
#
# Ctrl-C stops the nodes (and their buildkitds) cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
pb=$(realpath "${1:-bin/pyrsia-build}")
work=${PYRSIA_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$work"
export COSIGN_PASSWORD=${COSIGN_PASSWORD-demo}
images=${PYRSIA_IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/images}
nodes=(node-a node-b node-c)
network=demo.pyrsia.local/network
base_p2p=${PYRSIA_DEMO_P2P_PORT:-4101}
base_api=${PYRSIA_DEMO_API_PORT:-7881}
src_port=${PYRSIA_DEMO_SRC_PORT:-7880}
step() { printf '\n== %s\n' "$*"; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "demo: stopping ${#pids[@]} processes" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "0/8 tools: runc, debootstrap, buildkitd; builder images in $images"
scripts/install-debian-deps.sh
PATH="$(scripts/install-buildkit.sh):$PATH"
export PATH
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
for img in busybox maven; do
  if [ ! -f "$images/$img/index.json" ]; then
    "$pb" image make --store "$images" "$img"
  fi
done
digest() { sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$images/$1/index.json" | head -1; }

step "1/8 the sample sources, served on loopback (a spec from the network names a URL, never a local file)"
python3 -m http.server --bind 127.0.0.1 --directory "$repo/testdata/build" "$src_port" >"$work/sources.log" 2>&1 &
pids+=($!)
src=http://127.0.0.1:$src_port
spec() { # spec SAMPLE ECOSYSTEM COORDINATE IMAGE RECIPE > file
  cat <<SPEC
version: 1
ecosystem: $2
coordinate: $3
source:
  archive:
    url: $src/$1.tar
    sha256: $(sha256sum "$repo/testdata/build/$1.tar" | cut -d' ' -f1)
recipe:
  $5
builderImage:
  name: $4
  digest: $(digest "$4")
sourceDateEpoch: 1700000000
SPEC
}
spec hello-c oci hello-c:1.0 maven "oci: {dockerfile: Dockerfile}" > "$work/hello-c.yaml"
spec hello-maven maven org.example.hello:hello-app:1.0.0 maven "maven: {}" > "$work/hello-maven.yaml"
spec build-time oci build-time:1.0 busybox "oci: {dockerfile: Dockerfile}" > "$work/build-time.yaml"
ls "$work"/*.yaml

step "2/8 keys: each node makes its own (cosign key for votes, note key for checkpoints, libp2p identity)"
for n in "${nodes[@]}"; do
  if [ ! -f "$work/nodes/$n/keys/p2p.key" ]; then
    "$pb" node init --data "$work/nodes/$n" --name "$n" > "$work/$n.json"
  fi
done

step "3/8 the network policy: three build nodes, rule 2 of 3; its digest names the network"
rm -f "$work/policy.json"
"$pb" network init --name "$network" --policy "$work/policy.json" "$work"/node-{a,b,c}.json
"$pb" network show --policy "$work/policy.json"

step "4/8 three build-node daemons on loopback, each with its own buildkitd"
peer() { sed -n 's/.*"peerId": "\([^"]*\)".*/\1/p' "$work/$1.json"; }
for i in "${!nodes[@]}"; do
  n=${nodes[$i]}
  boot=()
  for j in "${!nodes[@]}"; do
    [ "$j" = "$i" ] || boot+=(--bootstrap "/ip4/127.0.0.1/tcp/$((base_p2p + j))/p2p/$(peer "${nodes[$j]}")")
  done
  "$pb" node --build --data "$work/nodes/$n" --policy "$work/policy.json" \
    --listen "/ip4/127.0.0.1/tcp/$((base_p2p + i))" --api "127.0.0.1:$((base_api + i))" \
    --images "$images" --deadline 20m "${boot[@]}" 2>"$work/$n.log" &
  pids+=($!)
  echo "$n: pid $!, API http://127.0.0.1:$((base_api + i)), log $work/$n.log"
done
api=127.0.0.1:$base_api
echo "waiting for the nodes to find each other and elect a Raft leader"
for _ in $(seq 300); do
  s=$(curl -fsS "http://$api/status" 2>/dev/null || true)
  if echo "$s" | grep -q '"leader": "node-' && echo "$s" | grep -q '"node-b"' && echo "$s" | grep -q '"node-c"'; then break; fi
  sleep 0.2
done
curl -fsS "http://$api/status" | sed -n '/"raft"/,/}/p'

step "5/8 publish the OCI sample through node-a: every node builds it, votes, and cosigns"
"$pb" publish --node "$api" --data "$work/nodes/node-a" --policy "$work/policy.json" -o "$work/hello-c.proof.json" "$work/hello-c.yaml"

step "6/8 anyone verifies the image with the policy alone: its manifest against the proof bundle"
# The build of any node that voted with the majority (the artifact is the same).
find_build() { # find_build PATTERN: the result.json of a build that names PATTERN
  local f
  for f in "$work"/nodes/*/builds/*/result.json; do
    if [ -f "$f" ] && grep -q "$1" "$f"; then echo "$f"; return 0; fi
  done
  echo "demo: no build names $1" >&2
  return 1
}
res=$(find_build '"hello-c:1.0"')
image=$(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$res" | head -1)
layout=$(sed -n 's/.*"path": "\([^"]*\)".*/\1/p' "$res" | head -1)
manifest="$(dirname "$res")/$layout/blobs/sha256/${image#sha256:}"
"$pb" verify --policy "$work/policy.json" --bundle "$work/hello-c.proof.json" "$manifest"

step "7/8 publish the Maven sample and verify its jars with the policy alone"
"$pb" publish --node "$api" --data "$work/nodes/node-a" --policy "$work/policy.json" -o "$work/hello-maven.proof.json" "$work/hello-maven.yaml"
res=$(find_build 'hello-app')
for jar in $(sed -n 's/.*"path": "\([^"]*\.jar\)".*/\1/p' "$res"); do
  "$pb" verify --policy "$work/policy.json" --bundle "$work/hello-maven.proof.json" "$(dirname "$res")/$jar"
done
"$pb" status --node "$api" org.example.hello:hello-app:1.0.0

step "8/8 an irreproducible sample: no quorum is a verdict, with the differing files"
set +e
"$pb" publish --node "$api" --data "$work/nodes/node-a" --policy "$work/policy.json" "$work/build-time.yaml"
rc=$?
set -e
if [ "$rc" -ne 1 ]; then echo "demo: expected no quorum for the irreproducible sample (exit 1), got $rc" >&2; exit 1; fi

printf '\ndemo: ok (everything is in %s; the nodes stop now)\n' "$work"
