"""Batched vs sequential VoxCPM generation, measured in one run.

    .venv/bin/python benchmarks/voxcpm_throughput.py                 # CPU, mid-size random model
    .venv/bin/python benchmarks/voxcpm_throughput.py --shapes 1.5 --device cuda --sizes 1 2 4 8 16 32
    .venv/bin/python benchmarks/voxcpm_throughput.py --shapes 2 --device cuda --sizes 1 2 4 8 16 32

Random weights cost the same compute as trained ones. The stop head is zeroed, so every row
generates exactly its length cap and batches of equal texts do equal work. For each batch size
B it times B requests one after another and the same B requests as one batch, and reports audio
seconds per wall second, the real-time factor each request saw, the time to first streamed audio,
and (on a GPU) peak memory against the engine's estimate. Writes a markdown table to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from voxbatch_server.domain import EngineParams, SpeechTask
from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
from voxbatch_server.engines.voxcpm.generate import generate
from voxbatch_server.engines.voxcpm.random_checkpoint import TINY, TINY_V2, VOXCPM_1_5, VOXCPM_2, scaled, write_checkpoint

TEXT = "Numbers like 42 are read aloud, too!"


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    model = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.2f}"


def run(engine: VoxCPMEngine, batch_size: int, steps: int) -> dict:
    works = [engine.prepare(SpeechTask(TEXT, "default", EngineParams(seed=i, inference_steps=steps), stream=True)) for i in range(batch_size)]
    requests = [w.request for w in works]
    sync = torch.cuda.synchronize if engine.device.startswith("cuda") else (lambda: None)

    sync()
    started = time.perf_counter()
    first_alone = None
    audio_seconds = 0.0
    for request in requests:
        t0 = time.perf_counter()
        first: list[float] = []
        rows = generate(engine._net, [request], on_piece=lambda i, s: first or first.append(time.perf_counter() - t0))
        first_alone = first_alone or first[0]
        audio_seconds += len(rows[0].audio) / engine.info.native_sample_rate
    sync()
    sequential = time.perf_counter() - started

    if engine.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    first_batched: list[float] = []
    started = time.perf_counter()
    rows = generate(engine._net, requests, on_piece=lambda i, s: first_batched or first_batched.append(time.perf_counter() - started))
    sync()
    batched = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() - base if engine.device.startswith("cuda") else None
    per_request_audio = len(rows[0].audio) / engine.info.native_sample_rate
    return {
        "B": batch_size,
        "audio_s": audio_seconds,
        "seq_s": sequential,
        "batch_s": batched,
        "seq_tput": audio_seconds / sequential,
        "batch_tput": audio_seconds / batched,
        "speedup": sequential / batched,
        "rtf_seq": (sequential / batch_size) / per_request_audio,
        "rtf_batch": batched / per_request_audio,
        "ttfa_seq": first_alone,
        "ttfa_batch": first_batched[0],
        "peak_mb": None if peak is None else peak / 2**20,
        "estimate_mb": engine.memory_cost(works) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=["mid", "1.5", "mid2", "2"], default="mid",
                        help="random weights of the real VoxCPM-1.5 or VoxCPM2 shapes, or CPU-sized ones")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=10, help="flow-matching steps per patch")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = {
        "1.5": VOXCPM_1_5, "2": VOXCPM_2,
        "mid": scaled(TINY, hidden=512, layers=8, local_layers=2, vae_dim=512),
        "mid2": scaled(TINY_V2, hidden=512, layers=8, local_layers=2, vae_dim=512),
    }[args.shapes]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_checkpoint(Path(tmp) / "model", config)
        engine = VoxCPMEngine(folder, device=args.device, dtype=args.dtype)
        run(engine, 1, args.steps)  # warm-up
        results = [run(engine, b, args.steps) for b in args.sizes]
    params = sum(p.numel() for p in engine._net.parameters()) / 1e6
    lines = [
        f"# VoxCPM batched vs sequential ({args.shapes} shapes, {params:.0f} M parameters, {engine.model.dtype}, {args.steps} steps)",
        "",
        f"Machine: {machine(args.device)}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}.",
        f"Each request: {TEXT!r} generated to its length cap ({results[0]['audio_s'] / results[0]['B']:.2f} s of audio).",
        "",
        "| batch | audio s | sequential s | batched s | audio s per s, seq | audio s per s, batched | speed-up | RTF seq | RTF batched | first audio seq s | first audio batched s | peak MiB | estimate MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(
            f"| {r['B']} | {r['audio_s']:.1f} | {r['seq_s']:.2f} | {r['batch_s']:.2f} | {r['seq_tput']:.2f} | {r['batch_tput']:.2f} | "
            f"{r['speedup']:.2f}x | {r['rtf_seq']:.3f} | {r['rtf_batch']:.3f} | {r['ttfa_seq']:.3f} | {r['ttfa_batch']:.3f} | {peak} | {r['estimate_mb']:.0f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"voxcpm-{args.shapes}-{'gpu' if args.device.startswith('cuda') else 'cpu'}.md"
    (args.out / name).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
