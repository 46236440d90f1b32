#!/usr/bin/env bash
# Everything only a GPU can show, in one command (under 8 minutes on one GPU); results in one
# folder (default benchmarks/results/gpu-check/). `--dry-run` rehearses the same steps on the
# CPU at tiny shapes. See benchmarks/gpu_check.py for the steps; --help lists the options.
set -uo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" benchmarks/gpu_check.py "$@"
