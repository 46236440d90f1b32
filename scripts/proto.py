"""Generate, check and lint everything derived from proto/.

    python scripts/proto.py generate   # rewrite the generated code of both SDKs
    python scripts/proto.py check      # fail when either SDK's generated code or the descriptor set is stale
    python scripts/proto.py lint       # buf lint + buf breaking against the released baseline
    python scripts/proto.py descriptor # rewrite deploy/envoy/voxbatch.pb (also done by `generate`)

Python: grpcio-tools writes sdk/python/voxbatch/tts/. TypeScript: `buf generate` with
sdk/typescript/buf.gen.yaml and the local protoc-gen-es plugin (installed by `npm ci` in
sdk/typescript, see scripts/setup.d/30-typescript.sh) writes sdk/typescript/src/gen/.
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
TS_DIR = ROOT / "sdk" / "typescript"
TS_TEMPLATE = TS_DIR / "buf.gen.yaml"
GENERATED_TS_DIR = TS_DIR / "src" / "gen"  # the template's `out`, relative to the output root
TS_PLUGIN = TS_DIR / "node_modules" / ".bin" / "protoc-gen-es"
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
    import google.rpc

    rpc_target = DEPS_DIR / "google" / "rpc"
    rpc_target.mkdir(parents=True, exist_ok=True)
    for extra in DESCRIPTOR_EXTRAS:
        shutil.copyfile(Path(google.rpc.__path__[0]) / Path(extra).name, rpc_target / Path(extra).name)
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


def generate_typescript(output_root: Path) -> None:
    """`buf generate` into output_root/sdk/typescript/src/gen (output_root ROOT: in place)."""
    if not TS_PLUGIN.exists():
        raise SystemExit(
            f"{TS_PLUGIN.relative_to(ROOT)} is missing: run scripts/setup.d/30-typescript.sh (npm ci in sdk/typescript)"
        )
    _buf(
        "generate",
        "--template", str(TS_TEMPLATE.relative_to(ROOT)),
        "--path", str((PROTO_DIR / "voxbatch").relative_to(ROOT)),
        "--output", str(output_root),
    )


def _generated_files(root: Path) -> dict[str, Path]:
    base = root / "voxbatch" / "tts"
    return {p.relative_to(root).as_posix(): p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _generated_ts_files(output_root: Path) -> dict[str, Path]:
    base = output_root / GENERATED_TS_DIR.relative_to(ROOT)
    return {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()}


def cmd_generate() -> None:
    if GENERATED_PY_DIR.exists():
        shutil.rmtree(GENERATED_PY_DIR)
    generate_python(PYTHON_OUT)
    print(f"generated {len(_generated_files(PYTHON_OUT))} files under {GENERATED_PY_DIR.relative_to(ROOT)}")
    if GENERATED_TS_DIR.exists():
        shutil.rmtree(GENERATED_TS_DIR)
    generate_typescript(ROOT)
    print(f"generated {len(_generated_ts_files(ROOT))} files under {GENERATED_TS_DIR.relative_to(ROOT)}")
    cmd_descriptor()


def _compare(fresh: dict[str, Path], committed: dict[str, Path], prefix: str) -> list[str]:
    problems = [f"missing: {prefix}{name}" for name in sorted(fresh.keys() - committed.keys())]
    problems += [f"unexpected: {prefix}{name}" for name in sorted(committed.keys() - fresh.keys())]
    problems += [
        f"stale: {prefix}{name}"
        for name in sorted(fresh.keys() & committed.keys())
        if not filecmp.cmp(fresh[name], committed[name], shallow=False)
    ]
    return problems


def stale_files() -> list[str]:
    """What differs between the committed generated code of both SDKs and a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_py, fresh_ts = Path(tmp) / "python", Path(tmp) / "typescript"
        generate_python(fresh_py)
        problems = _compare(_generated_files(fresh_py), _generated_files(PYTHON_OUT), "sdk/python/")
        generate_typescript(fresh_ts)
        ts_prefix = GENERATED_TS_DIR.relative_to(ROOT).as_posix() + "/"
        problems += _compare(_generated_ts_files(fresh_ts), _generated_ts_files(ROOT), ts_prefix)
        return problems


def cmd_check() -> None:
    problems = stale_files() + stale_descriptor()
    if problems:
        print("Generated code is stale; run `python scripts/proto.py generate`:", *problems, sep="\n  ")
        raise SystemExit(1)
    print("generated code is up to date")


# -- Envoy's descriptor set --------------------------------------------------------------------
# The gRPC-JSON transcoder reads the contract as a FileDescriptorSet with every import included
# (google/api/http.proto, httpbody.proto, google/protobuf/descriptor.proto, ...).
ENVOY_DESCRIPTOR = ROOT / "deploy" / "envoy" / "voxbatch.pb"
# Types the server puts in status details (google.rpc.RetryInfo on a refused quota): the transcoder
# must know them to turn a rich status into JSON, else it answers an empty body.
DESCRIPTOR_EXTRAS = ["google/rpc/error_details.proto"]


def build_descriptor(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _protoc([f"--descriptor_set_out={path}", "--include_imports", *PROTO_FILES, *DESCRIPTOR_EXTRAS])


def stale_descriptor() -> list[str]:
    """Differences between the committed descriptor set and a fresh build. Our own files must match
    exactly; imported files only by name, so that a newer googleapis-common-protos wheel (whose
    google/api files may gain options) does not make the committed set look stale."""
    from google.protobuf import descriptor_pb2

    name = ENVOY_DESCRIPTOR.relative_to(ROOT).as_posix()
    if not ENVOY_DESCRIPTOR.exists():
        return [f"missing: {name}"]
    with tempfile.TemporaryDirectory() as tmp:
        build_descriptor(Path(tmp) / "fresh.pb")
        fresh = descriptor_pb2.FileDescriptorSet.FromString((Path(tmp) / "fresh.pb").read_bytes())
    committed = descriptor_pb2.FileDescriptorSet.FromString(ENVOY_DESCRIPTOR.read_bytes())
    fresh_files = {f.name: f for f in fresh.file}
    committed_files = {f.name: f for f in committed.file}
    problems = [f"stale: {name} lacks {n}" for n in sorted(fresh_files.keys() - committed_files.keys())]
    problems += [f"stale: {name} has {n}, no longer imported" for n in sorted(committed_files.keys() - fresh_files.keys())]
    problems += [
        f"stale: {name} ({n} changed)"
        for n in sorted(fresh_files.keys() & committed_files.keys())
        if n.startswith("voxbatch/") and fresh_files[n] != committed_files[n]
    ]
    return problems


def cmd_descriptor() -> None:
    build_descriptor(ENVOY_DESCRIPTOR)
    print(f"wrote {ENVOY_DESCRIPTOR.relative_to(ROOT)}")


def cmd_check_descriptor() -> None:
    problems = stale_descriptor()
    if problems:
        print("Envoy's descriptor set is stale; run `python scripts/proto.py descriptor`:", *problems, sep="\n  ")
        raise SystemExit(1)
    print("descriptor set is up to date")


def _buf(*args: str) -> None:
    copy_deps()
    # buf runs from the repository root: buf.yaml's modules and buf.gen.yaml's paths are relative to it.
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
    commands = {"generate": cmd_generate, "check": cmd_check, "lint": cmd_lint, "baseline": cmd_baseline,
                "descriptor": cmd_descriptor, "check-descriptor": cmd_check_descriptor}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(commands))
    commands[parser.parse_args().command]()


if __name__ == "__main__":
    main()
