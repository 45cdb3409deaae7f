#!/usr/bin/env bash
# Packs each sample folder into a reproducible tar (the specs pin the tars'
# sha256) and prints the digests. Run after changing a sample, then update
# the sha256 in its spec.
set -euo pipefail
cd "$(dirname "$0")"
for d in hello-c hello-maven build-time; do
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$d" -cf "$d.tar" .
  echo "$(sha256sum "$d.tar" | cut -d' ' -f1)  $d.tar"
done
