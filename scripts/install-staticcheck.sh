#!/usr/bin/env bash
# Installs staticcheck, which `make test` runs, built from the Go module
# proxy at a pinned version into a cache folder outside the clone. Prints
# that folder on stdout; progress goes to stderr. A second run finds the
# cached binary and returns at once.
#
#   PATH="$(scripts/install-staticcheck.sh):$PATH"
set -euo pipefail

version=v0.8.2 # staticcheck 2026.2.2
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
goversion=$(go env GOVERSION)
dir=$cache/staticcheck-$version-$goversion
bin=$dir/staticcheck

if [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "${version#v}"; then
  echo "$dir"
  exit 0
fi
echo "install-staticcheck: building staticcheck $version from the Go module proxy into $dir" >&2
mkdir -p "$dir"
start=$(date +%s)
GOBIN="$dir" go install "honnef.co/go/tools/cmd/staticcheck@$version" >&2
"$bin" -version >/dev/null
echo "install-staticcheck: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
