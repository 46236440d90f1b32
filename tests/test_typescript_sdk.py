"""The TypeScript SDK (sdk/typescript): `npm test` type-checks it with tsc (strict), starts a real
server on a free loopback port and runs Node's test runner against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sdk" / "typescript"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_typescript_sdk_passes_npm_test():
    npm = shutil.which("npm")
    assert npm is not None, "npm is missing: run scripts/setup.sh"
    assert (PACKAGE / "node_modules" / ".bin" / "tsc").exists(), "run scripts/setup.d/30-typescript.sh (npm ci)"
    # The Node tests start the server with this interpreter (the one running pytest, in .venv).
    env = {**os.environ, "VOXBATCH_PYTHON": sys.executable, "NO_COLOR": "1"}
    result = subprocess.run(
        [npm, "test"], cwd=PACKAGE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280
    )
    assert result.returncode == 0, result.stdout
    assert "# fail 0" in result.stdout or "ℹ fail 0" in result.stdout, result.stdout
