#!/usr/bin/env bash
# Installs voxbatch if needed and starts the gRPC server on the embedded default voice.
# Extra arguments go to `voxbatch serve` (see `voxbatch serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/voxbatch serve "$@"
