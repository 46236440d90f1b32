#!/usr/bin/env bash
# A C++ compiler for torch inductor: `--compile on` on a CPU (and the compiled-step tests, which
# compile the tiny model) generate and build C++ kernels. Skipped when g++ is already there;
# needs root (CI and the dev machines run as root).
set -euo pipefail
if command -v g++ >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "50-compiler.sh: g++ is missing; run as root, or: sudo apt-get install -y g++" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends g++ >/dev/null
command -v g++ >/dev/null
