#!/usr/bin/env bash
# Makes builder images like `pyrsia-build image make --store STORE NAME...`,
# but skips an image that the store already holds from the same inputs:
# the same image code (builder/image and what it imports from this module),
# the same Go toolchain and the same Debian package lists (the apt lists'
# InRelease files, which pin every package version; they change after an
# `apt-get update` that finds new versions). A make that succeeds writes its
# key and digest to STORE/.made/NAME; a later run skips NAME only when the
# key is the same, STORE/NAME/index.json names that digest and every blob
# matches its sha256. Anything else makes the image again. .ci/run uses it.
#
#   scripts/make-images-cached.sh PYRSIA_BUILD STORE NAME...
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: scripts/make-images-cached.sh PYRSIA_BUILD STORE NAME..." >&2
  exit 2
fi
pb=$1 store=$2
shift 2
cd "$(dirname "$0")/.."
lists=${PYRSIA_APT_LISTS:-/var/lib/apt/lists}

# key NAME prints the key of NAME's inputs, or nothing when they cannot be
# known (then NAME is always made).
key() {
  local name=$1 suite=
  case "$name" in
  busybox) ;; # apt-get download from this machine's sources
  maven | maven-jdk21)
    # debootstrap of a suite from this machine's mirror: only known when
    # this machine's lists hold that suite.
    local c=MavenSuite
    [ "$name" = maven-jdk21 ] && c=Maven21Suite
    suite=$(sed -En "s/^(const[[:space:]]+)?[[:space:]]*$c[[:space:]]*=[[:space:]]*\"([a-z]+)\".*/\2/p" builder/image/maven.go | head -n1)
    [ -n "$suite" ] || return 0
    compgen -G "$lists/*_dists_${suite}_InRelease" >/dev/null || return 0
    ;;
  *) return 0 ;;
  esac
  local files mods
  # The Go and embedded files of the image code in this module, and the
  # versions of the other modules it imports.
  files=$(go list -deps -f '{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}' ./builder/image) || return 0
  mods=$(go list -deps -f '{{if .Module}}{{if not .Module.Main}}{{.Module.Path}}@{{.Module.Version}}{{end}}{{end}}' ./builder/image | sort -u) || return 0
  [ -n "$files" ] || return 0
  compgen -G "$lists/*InRelease" >/dev/null || return 0
  {
    echo "make-images-cached v1 $name $suite"
    go env GOVERSION
    echo "$mods"
    # debootstrap writes files of its own into the maven images.
    [ -z "$suite" ] || dpkg-query -W -f='debootstrap ${Version}\n' debootstrap
    # shellcheck disable=SC2086 # one path a line, no spaces in this module
    sha256sum $files | sed "s#  $PWD/#  #"
    sha256sum "$lists"/*InRelease | sed "s#  $lists/#  #"
  } | sha256sum | cut -d' ' -f1
}

# intact NAME DIGEST: the store's NAME is DIGEST and its blobs are whole.
intact() {
  local dir=$store/$1 f
  grep -q "\"$2\"" "$dir/index.json" 2>/dev/null || return 1
  for f in "$dir"/blobs/sha256/*; do
    [ -f "$f" ] || return 1
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || return 1
  done
}

for name in "$@"; do
  k=$(key "$name")
  made=$store/.made/$name
  if [ -n "$k" ] && [ -f "$made" ]; then
    read -r oldk digest <"$made" || true
    if [ "$oldk" = "$k" ] && [ -n "${digest:-}" ] && intact "$name" "$digest"; then
      echo "make-images-cached: $name $digest is in $store, made from the same inputs: not made again" >&2
      echo "$name $digest"
      continue
    fi
  fi
  rm -f "$made"
  out=$("$pb" image make --store "$store" "$name")
  echo "$out"
  read -r n digest <<<"$out"
  if [ -n "$k" ] && [ "$n" = "$name" ] && [[ "$digest" == sha256:* ]]; then
    mkdir -p "$store/.made"
    echo "$k $digest" >"$made.tmp"
    mv "$made.tmp" "$made"
  fi
done
