"""The load step of benchmarks/gpu_check.sh: one `voxbatch serve` on the engine's device, a
closed-loop load against it, then its /metrics, all written to --out.

    .venv/bin/python benchmarks/gpu_load_run.py --model-dir CKPT --device cuda --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.loadgen import LoadSpec, format_summary, run_load  # noqa: E402
from benchmarks.servers import ServeProcess, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile-cache-dir", type=Path, default=None)
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="on")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_port = free_port()
    flags = dict(
        engine="voxcpm", model_dir=args.model_dir, device=args.device, max_batch_size=args.max_batch_size,
        max_queue_size=max(256, 4 * args.clients), metrics_port=metrics_port, compile=args.compile, log_level="info",
    )
    if args.compile_cache_dir:
        flags["compile_cache_dir"] = args.compile_cache_dir
    server = ServeProcess("gpu-check", threads=args.threads, **flags)
    try:
        with server:
            print(f"server up on {server.target}; {args.clients} clients for {args.duration:.0f} s", flush=True)
            spec = LoadSpec(clients=args.clients, max_requests=100_000, duration_s=args.duration, timeout_s=120.0, stream_share=0.5)
            summary = asyncio.run(run_load(server.target, spec)).summary()
            print(format_summary(summary), flush=True)
            (args.out / "load.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
                (args.out / "metrics.txt").write_bytes(response.read())
    finally:
        if server.log.exists():
            shutil.copyfile(server.log, args.out / "load-server.log")
            server.log.unlink()
    return 0 if summary["ok"] and not summary["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
