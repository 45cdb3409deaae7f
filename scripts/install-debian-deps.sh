#!/usr/bin/env bash
# Installs the Debian packages that builds and tests need (runc for
# buildkitd, debootstrap for the maven builder image, git for git sources,
# skopeo, which the OCI serving tests pull with, Maven, a JDK and Maven
# plugins for the Maven client tests, jq for the GitHub Actions' scripts,
# node and npm for action-validator, systemd's tools for the units in deploy/) and refreshes the package lists (the busybox image is made from
# `apt-get download busybox-static`). Needs root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian-deps: run as root (apt-get)" >&2
  exit 1
fi
apt-get update -qq
need=()
for p in runc debootstrap git skopeo jq; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done
# systemd-analyze, systemd-sysusers and systemd-tmpfiles check the units in
# deploy/ (deploy/deploy_test.go); a container image may lack them.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# node and npm for action-validator (scripts/install-action-validator.sh)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The Maven client tests (publish/serve/maven_mvn_test.go, mavenDebianPackages):
# mvn, javac, and the plugins they run from Debian's offline repository.
for p in maven openjdk-17-jdk-headless libmaven-dependency-plugin-java libmaven-compiler-plugin-java \
  libmaven-resources-plugin-java junit4 junit5; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "install-debian-deps: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
