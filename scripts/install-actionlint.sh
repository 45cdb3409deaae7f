#!/usr/bin/env bash
# Installs actionlint, which the actions tests run on every workflow in
# .github/workflows, built from the Go module proxy at a pinned version
# into a cache folder outside the clone. Prints that folder on stdout;
# progress goes to stderr. A second run finds the cached binary and
# returns at once.
#
#   PATH="$(scripts/install-actionlint.sh):$PATH"
set -euo pipefail

version=v1.7.12
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
goversion=$(go env GOVERSION)
dir=$cache/actionlint-$version-$goversion
bin=$dir/actionlint

if [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "${version#v}"; then
  echo "$dir"
  exit 0
fi
echo "install-actionlint: building actionlint $version from the Go module proxy into $dir" >&2
mkdir -p "$dir"
start=$(date +%s)
GOBIN="$dir" go install "github.com/rhysd/actionlint/cmd/actionlint@$version" >&2
"$bin" -version >/dev/null
echo "install-actionlint: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
