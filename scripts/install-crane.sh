#!/usr/bin/env bash
# Installs crane (go-containerregistry's registry client), which the OCI
# serving tests pull with, built from the Go module proxy at a pinned
# version into a cache folder outside the clone. Prints that folder on
# stdout; progress goes to stderr. A second run finds the cached binary and
# returns at once.
#
#   PATH="$(scripts/install-crane.sh):$PATH"
set -euo pipefail

version=v0.22.1
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
dir=$cache/crane-$version
bin=$dir/crane

if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "${version#v}"; then
  echo "$dir"
  exit 0
fi
echo "install-crane: building crane $version from the Go module proxy into $dir" >&2
mkdir -p "$dir"
start=$(date +%s)
# crane prints the version it was stamped with; go install stamps the
# module version into the build info, which crane reads.
# -s -w: no symbol table or DWARF, a shorter link; the build info that
# "version" prints stays.
GOBIN="$dir" CGO_ENABLED=0 go install -ldflags="-s -w" "github.com/google/go-containerregistry/cmd/crane@$version" >&2
"$bin" version >/dev/null
echo "install-crane: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
