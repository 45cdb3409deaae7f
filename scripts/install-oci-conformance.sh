#!/usr/bin/env bash
# Builds the OCI distribution-spec conformance suite (a Ginkgo test binary)
# that the OCI serving tests run against a node's /v2/, from the Go module
# proxy at a pinned version, in a throw-away module, into a cache folder
# outside the clone. Prints that folder (it holds `oci-conformance`) on
# stdout; progress goes to stderr. A second run finds the cached binary and
# returns at once.
#
# This version is pinned on purpose: it skips its push set-up when only
# OCI_TEST_PULL is set, where the newer, rewritten suite crashes.
#
#   PATH="$(scripts/install-oci-conformance.sh):$PATH"
set -euo pipefail

version=v0.0.0-20231101194043-f2182352d4cc
mod=github.com/opencontainers/distribution-spec/conformance
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
dir=$cache/oci-conformance-$version
bin=$dir/oci-conformance

if [ -x "$bin" ] && [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "$dir"
  exit 0
fi
echo "install-oci-conformance: building $mod@$version from the Go module proxy into $dir" >&2
mkdir -p "$dir"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  go mod init oci-conformance-build >/dev/null 2>&1
  go get -t "$mod@$version" >&2
  CGO_ENABLED=0 go test -c -o "$bin" "$mod" >&2
)
echo "$version" >"$dir/VERSION"
echo "install-oci-conformance: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
