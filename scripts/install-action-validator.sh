#!/usr/bin/env bash
# Installs action-validator (the npm package @action-validator/cli, which
# checks action.yml files against GitHub's metadata schema: a run step
# without shell, an output without value), which the actions tests run on
# every action.yml, at a pinned version into a cache folder outside the
# clone. Needs node and npm (scripts/install-debian-deps.sh installs them).
# Prints the folder of the action-validator command on stdout; progress
# goes to stderr. A second run finds the cached install and returns at
# once.
#
#   PATH="$(scripts/install-action-validator.sh):$PATH"
set -euo pipefail

version=0.6.0
cache=${PYRSIA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrsia-build/tools}
dir=$cache/action-validator-v$version
bin=$dir/node_modules/.bin/action-validator
# action-validator has no --version: its package.json says it.
installed() { grep -q "\"version\": \"$version\"" "$1/node_modules/@action-validator/cli/package.json" 2>/dev/null && [ -x "$1/node_modules/.bin/action-validator" ]; }

if installed "$dir"; then
  echo "$dir/node_modules/.bin"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-action-validator: npm is not installed: run scripts/install-debian-deps.sh (as root)" >&2
  exit 1
fi
echo "install-action-validator: installing @action-validator/cli@$version from the npm registry into $dir" >&2
start=$(date +%s)
tmp=$(mktemp -d "$cache/.action-validator.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "@action-validator/cli@$version" >&2
installed "$tmp" || { echo "install-action-validator: npm installed no action-validator $version" >&2; exit 1; }
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "install-action-validator: done in $(( $(date +%s) - start ))s" >&2
echo "$dir/node_modules/.bin"
