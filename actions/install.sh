#!/usr/bin/env bash
# Step 1 of every pyrsia-build action: build pyrsia-build from this
# action's own source (cached) and give its path as the output "path".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pb_install
pb_output path "$PB"
