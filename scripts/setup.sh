#!/usr/bin/env bash
# Creates .venv and installs voxbatch with everything the server and the tests need, then runs
# each scripts/setup.d/*.sh in order (system packages, npm packages, ...).
# Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
