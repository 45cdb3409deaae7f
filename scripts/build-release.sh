#!/usr/bin/env bash
# Builds the release binary of pyrsia-build reproducibly: the same source
# and Go toolchain give the same bytes wherever the clone is and whoever
# builds it (no cgo, -trimpath, an empty build id, no VCS stamp, fixed
# GOFLAGS). Writes DIST/pyrsia-build-GOOS-GOARCH and prints its sha256.
# .github/workflows/release.yml runs it; `make release-check` checks it.
#
#   scripts/build-release.sh DIST [VERSION]
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: scripts/build-release.sh DIST [VERSION]" >&2
  exit 2
fi
dist=$(mkdir -p "$1" && cd "$1" && pwd)
version=${2:-}
if [[ ! "$version" =~ ^[A-Za-z0-9._+-]*$ ]]; then
  echo "build-release: VERSION \"$version\" may hold only letters, digits and . _ + -" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 GOOS=${GOOS:-linux} GOARCH=${GOARCH:-amd64}
export GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
out="$dist/pyrsia-build-$GOOS-$GOARCH"
go build -ldflags="-buildid= -X main.version=$version" -o "$out" ./cmd/pyrsia-build
(cd "$dist" && sha256sum "$(basename "$out")")
