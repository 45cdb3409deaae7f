#!/usr/bin/env bash
# Installs the Debian packages that builds and tests need (runc for
# buildkitd, debootstrap for the maven builder image, git for git sources,
# and skopeo, which the OCI serving tests pull with) and refreshes the
# package lists (the busybox image is made from
# `apt-get download busybox-static`). Needs root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian-deps: run as root (apt-get)" >&2
  exit 1
fi
apt-get update -qq
need=()
for p in runc debootstrap git skopeo; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ "${#need[@]}" -gt 0 ]; then
  echo "install-debian-deps: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
