#!/usr/bin/env bash
# Step 1 of every pyrsia-build action: build pyrsia-build from this
# action's own source (cached) and give its path as the output "path".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null 2>&1 || pb_die 2 "jq is not on PATH: the action reads pyrsia-build's JSON with it (GitHub's runners have it; on a self-hosted runner: apt-get install jq)"
pb_install
pb_output path "$PB"
