#!/usr/bin/env bash
# Checks that scripts/build-release.sh is reproducible: builds the binary
# twice, the second time from a copy of the tree in another folder with an
# empty Go build cache, and compares the two sha256 sums. A few minutes
# (the second build compiles everything). `make release-check` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
a=$(scripts/build-release.sh "$work/a" check | cut -d' ' -f1)
mkdir "$work/tree"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/tree"
b=$(GOCACHE="$work/gocache" "$work/tree/scripts/build-release.sh" "$work/b" check | cut -d' ' -f1)
if [ "$a" != "$b" ]; then
  echo "release-check: two builds differ: $a (here) and $b (a copy in another folder, empty build cache)" >&2
  exit 1
fi
echo "release-check: two builds give sha256 $a"
