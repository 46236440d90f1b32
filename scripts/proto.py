"""Generate, check and lint everything derived from proto/.

    python scripts/proto.py generate   # rewrite the generated Python stubs
    python scripts/proto.py check      # fail when the committed stubs are stale
    python scripts/proto.py lint       # buf lint + buf breaking against the released baseline

Generated files are never edited by hand: change the .proto and run `generate`.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO_FILES = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))
PYTHON_OUT = ROOT / "sdk" / "python"
GENERATED_PY_DIR = PYTHON_OUT / "voxbatch" / "tts"
# Google API annotations come from the googleapis-common-protos wheel, so no registry is needed.
DEPS_DIR = ROOT / "build" / "proto-deps"
GOOGLE_API_PROTOS = ("annotations.proto", "http.proto", "httpbody.proto")
# The contract as first released; `buf breaking` compares the working tree against it.
BASELINE_IMAGE = PROTO_DIR / "baseline" / "voxbatch-tts-v1.binpb"


def _google_api_dir() -> Path:
    import google.api

    return Path(google.api.__path__[0])


def _well_known_dir() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def copy_deps() -> Path:
    target = DEPS_DIR / "google" / "api"
    target.mkdir(parents=True, exist_ok=True)
    for name in GOOGLE_API_PROTOS:
        shutil.copyfile(_google_api_dir() / name, target / name)
    return DEPS_DIR


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    argv = ["protoc", f"-I{PROTO_DIR}", f"-I{copy_deps()}", f"-I{_well_known_dir()}", *args]
    if protoc.main(argv) != 0:
        raise SystemExit(f"protoc failed: {' '.join(argv)}")


def generate_python(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc([f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *PROTO_FILES])
    # protoc writes no __init__.py; the generated modules import each other as packages.
    for directory in (out_dir / "voxbatch" / "tts").rglob("*"):
        if directory.is_dir():
            (directory / "__init__.py").touch()
    (out_dir / "voxbatch" / "tts" / "__init__.py").touch()


def _generated_files(root: Path) -> dict[str, Path]:
    base = root / "voxbatch" / "tts"
    return {p.relative_to(root).as_posix(): p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def cmd_generate() -> None:
    if GENERATED_PY_DIR.exists():
        shutil.rmtree(GENERATED_PY_DIR)
    generate_python(PYTHON_OUT)
    print(f"generated {len(_generated_files(PYTHON_OUT))} files under {GENERATED_PY_DIR.relative_to(ROOT)}")


def stale_files() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate_python(fresh_root)
        fresh = _generated_files(fresh_root)
        committed = _generated_files(PYTHON_OUT)
        problems = [f"missing: {name}" for name in sorted(fresh.keys() - committed.keys())]
        problems += [f"unexpected: {name}" for name in sorted(committed.keys() - fresh.keys())]
        problems += [
            f"stale: {name}"
            for name in sorted(fresh.keys() & committed.keys())
            if not filecmp.cmp(fresh[name], committed[name], shallow=False)
        ]
        return problems


def cmd_check() -> None:
    problems = stale_files()
    if problems:
        print("Generated code is stale; run `python scripts/proto.py generate`:", *problems, sep="\n  ")
        raise SystemExit(1)
    print("generated code is up to date")


def _buf(*args: str) -> None:
    copy_deps()
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if buf is None:
        raise SystemExit("buf not found: pip install buf-bin")
    subprocess.run([buf, *args], cwd=ROOT, check=True)


def cmd_lint() -> None:
    _buf("lint")
    current = DEPS_DIR.parent / "voxbatch-tts-current.binpb"
    _build_image(current)
    _buf("breaking", str(current.relative_to(ROOT)), "--against", str(BASELINE_IMAGE.relative_to(ROOT)))
    print("buf lint and buf breaking passed")


def _build_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _buf("build", "--path", "proto/voxbatch", "-o", str(path.relative_to(ROOT)))


def cmd_baseline() -> None:
    _build_image(BASELINE_IMAGE)
    print(f"wrote {BASELINE_IMAGE.relative_to(ROOT)}")


def main() -> None:
    commands = {"generate": cmd_generate, "check": cmd_check, "lint": cmd_lint, "baseline": cmd_baseline}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(commands))
    commands[parser.parse_args().command]()


if __name__ == "__main__":
    main()
