#!/usr/bin/env bash
# Installs the cosign command that the interoperability tests run against,
# built from the Go module proxy, into a cache folder outside the clone.
# Prints that folder on stdout; progress goes to stderr. A second run finds
# the cached binary and returns at once.
#
#   PATH="$(scripts/install-cosign.sh):$PATH"
set -euo pipefail

version=v2.6.5
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
dir=$cache/cosign-$version
bin=$dir/cosign

if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "GitVersion:.*${version#v}"; then
  echo "$dir"
  exit 0
fi
echo "install-cosign: building cosign $version from the Go module proxy into $dir (about 3-4 minutes cold)" >&2
mkdir -p "$dir"
start=$(date +%s)
# -s -w: no symbol table or DWARF, a shorter link; the build info that
# "version" prints stays.
GOBIN="$dir" go install -ldflags="-s -w" "github.com/sigstore/cosign/v2/cmd/cosign@$version" >&2
"$bin" version >/dev/null
echo "install-cosign: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
