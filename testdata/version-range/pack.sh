#!/usr/bin/env bash
# Packs src/ into a reproducible tar (spec.yaml pins its sha256) and prints
# the digest. Run after changing src/, then update the spec.
set -euo pipefail
cd "$(dirname "$0")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C src -cf version-range.tar .
sha256sum version-range.tar
