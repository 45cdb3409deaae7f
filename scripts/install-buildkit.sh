#!/usr/bin/env bash
# Installs what builds need: runc from Debian, and buildkitd + buildctl built
# from the Go module proxy (`go install` refuses buildkit's go.mod, so the
# module is downloaded and built in its folder) into a cache folder outside
# the clone. Prints that folder on stdout; progress goes to stderr.
#
#   PATH="$(scripts/install-buildkit.sh):$PATH"
set -euo pipefail

version=v0.34.2
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
dir=$cache/buildkit-$version

if ! command -v runc >/dev/null 2>&1; then
  echo "install-buildkit: installing runc from Debian" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "install-buildkit: run as root to install runc" >&2; exit 1; fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >&2
fi

if [ -x "$dir/buildkitd" ] && [ -x "$dir/buildctl" ] && "$dir/buildctl" --version 2>/dev/null | grep -q "$version"; then
  echo "$dir"
  exit 0
fi
echo "install-buildkit: building buildkitd and buildctl $version from the Go module proxy into $dir (about 2 minutes cold)" >&2
start=$(date +%s)
mkdir -p "$dir"
src=$(cd "$(mktemp -d)" && go mod download -json "github.com/moby/buildkit@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then echo "install-buildkit: could not download github.com/moby/buildkit@$version" >&2; exit 1; fi
# -s -w: no symbol table or DWARF (a quarter less link CPU; buildkitd is
# 57 MB instead of 81 MB); the version stays stamped.
(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build \
  -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$version" \
  -o "$dir/" ./cmd/buildkitd ./cmd/buildctl) >&2
"$dir/buildctl" --version >&2
echo "install-buildkit: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
