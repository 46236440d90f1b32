"""VoxCPM throughput, measured in one run: batched against sequential, or compiled against eager.

    .venv/bin/python benchmarks/voxcpm_throughput.py                 # CPU, mid-size random model
    .venv/bin/python benchmarks/voxcpm_throughput.py --compare compile --threads 1   # compiled vs eager, CPU
    .venv/bin/python benchmarks/voxcpm_throughput.py --shapes 1.5 --device cuda --compare compile \
        --sizes 1 2 4 8 16 32 64                                     # what benchmarks/gpu_check.sh runs
    .venv/bin/python benchmarks/voxcpm_throughput.py --shapes 2 --device cuda --sizes 1 2 4 8 16 32   # VoxCPM2

Random weights cost the same compute as trained ones. The stop head is zeroed, so every row
generates exactly its length cap and batches of equal texts do equal work.

`--compare batching` (the default): for each batch size B it times B requests one after another
and the same B requests as one batch. `--compare compile`: for each B it times the batch on the
eager engine and on an engine whose whole decode step is compiled per row bucket (`--compile on`:
CUDA graphs on a GPU, inductor on a CPU; compile time is reported apart, it is paid at start-up;
the run fails if a compiled batch fell back to the eager step). Both report audio seconds per wall second (the
aggregate real-time factor), the real-time factor each request saw, the time to first streamed
audio, and on a GPU the peak memory against the engine's estimate. Writes a markdown table and
the figures as JSON to benchmarks/results/ (or --out).
"""

from __future__ import annotations

import argparse
import json
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


def works_for(engine: VoxCPMEngine, batch_size: int, steps: int):
    return [engine.prepare(SpeechTask(TEXT, "default", EngineParams(seed=i, inference_steps=steps), stream=True)) for i in range(batch_size)]


def timed_batch(engine: VoxCPMEngine, works) -> dict:
    """One batch, streamed: wall time, first audio, audio length and (CUDA) peak memory."""
    cuda = engine.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    first: list[float] = []
    started = time.perf_counter()
    rows = generate(engine._net, [w.request for w in works], on_piece=lambda i, s: first or first.append(time.perf_counter() - started))
    steps = max(len(r.patches) for r in rows)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "steps": steps,
        "first_audio_s": first[0],
        "audio_s": sum(len(r.audio) for r in rows) / engine.info.native_sample_rate,
        "request_audio_s": len(rows[0].audio) / engine.info.native_sample_rate,
        "peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else None,
        "estimate_mb": engine.memory_cost(works) / 2**20,
    }


def run_batching(engine: VoxCPMEngine, batch_size: int, steps: int) -> dict:
    works = works_for(engine, batch_size, steps)
    started = time.perf_counter()
    first_alone = None
    for work in works:
        alone = timed_batch(engine, [work])
        first_alone = first_alone or alone["first_audio_s"]
    sequential = time.perf_counter() - started
    batch = timed_batch(engine, works)
    audio_seconds = batch["audio_s"]
    return {
        "B": batch_size,
        "audio_s": audio_seconds,
        "seq_s": sequential,
        "batch_s": batch["wall_s"],
        "seq_tput": audio_seconds / sequential,
        "batch_tput": audio_seconds / batch["wall_s"],
        "speedup": sequential / batch["wall_s"],
        "rtf_seq": (sequential / batch_size) / batch["request_audio_s"],
        "rtf_batch": batch["wall_s"] / batch["request_audio_s"],
        "ttfa_seq": first_alone,
        "ttfa_batch": batch["first_audio_s"],
        "peak_mb": batch["peak_mb"],
        "estimate_mb": batch["estimate_mb"],
    }


def run_compile(eager: VoxCPMEngine, compiled: VoxCPMEngine, batch_size: int, steps: int, repeats: int = 1) -> dict:
    """The best of `repeats` runs of each, alternating which goes first, so that a busy machine's
    slow moments hit both sides alike."""
    result: dict = {"B": batch_size}
    runs: dict[str, list[dict]] = {"eager": [], "compiled": []}
    step = compiled._net.compiled_step
    for repeat in range(repeats):
        order = [("eager", eager), ("compiled", compiled)]
        for name, engine in order if repeat % 2 == 0 else order[::-1]:
            before = step.calls
            runs[name].append(timed_batch(engine, works_for(engine, batch_size, steps)))
            if name == "compiled" and step.calls - before < runs[name][-1]["steps"]:
                raise RuntimeError(f"batch {batch_size}: some steps ran eager on the compiled engine")
    for name, timed in runs.items():
        batch = min(timed, key=lambda r: r["wall_s"])
        result[name] = {
            **batch,
            "tput": batch["audio_s"] / batch["wall_s"],
            "rtf": batch["wall_s"] / batch["request_audio_s"],
        }
    result["speedup"] = result["eager"]["wall_s"] / result["compiled"]["wall_s"]
    return result


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def batching_table(results: list[dict]) -> list[str]:
    lines = [
        "| batch | audio s | sequential s | batched s | audio s per s, seq | audio s per s, batched | speed-up | RTF seq | RTF batched | first audio seq s | first audio batched s | peak MiB | estimate MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['B']} | {r['audio_s']:.1f} | {r['seq_s']:.2f} | {r['batch_s']:.2f} | {r['seq_tput']:.2f} | {r['batch_tput']:.2f} | "
            f"{r['speedup']:.2f}x | {r['rtf_seq']:.3f} | {r['rtf_batch']:.3f} | {r['ttfa_seq']:.3f} | {r['ttfa_batch']:.3f} | "
            f"{mib(r['peak_mb'])} | {r['estimate_mb']:.0f} |"
        )
    return lines


def compile_table(results: list[dict]) -> list[str]:
    lines = [
        "| batch | audio s | eager s | compiled s | speed-up | audio s per s, eager | audio s per s, compiled | RTF eager | RTF compiled | first audio eager s | first audio compiled s | peak MiB eager | peak MiB compiled | estimate MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e, c = r["eager"], r["compiled"]
        lines.append(
            f"| {r['B']} | {e['audio_s']:.1f} | {e['wall_s']:.2f} | {c['wall_s']:.2f} | {r['speedup']:.2f}x | {e['tput']:.2f} | "
            f"{c['tput']:.2f} | {e['rtf']:.3f} | {c['rtf']:.3f} | {e['first_audio_s']:.3f} | {c['first_audio_s']:.3f} | "
            f"{mib(e['peak_mb'])} | {mib(c['peak_mb'])} | {e['estimate_mb']:.0f} |"
        )
    return lines


def write_report(args: argparse.Namespace, engine: VoxCPMEngine, results: list[dict], compile_s: float | None) -> str:
    params = sum(p.numel() for p in engine._net.parameters()) / 1e6
    first = results[0]["eager"] if args.compare == "compile" else results[0]
    title = "batched vs sequential" if args.compare == "batching" else "compiled vs eager, batched"
    lines = [
        f"# VoxCPM {title} ({args.shapes} shapes, {params:.0f} M parameters, {engine.model.dtype}, {args.steps} steps)",
        "",
        f"Machine: {machine(args.device)}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}.",
        f"Each request: {TEXT!r} generated to its length cap ({first['audio_s'] / results[0]['B']:.2f} s of audio).",
    ]
    if compile_s is not None:
        lines.append(
            f"Compiled engine: load and compile of the decode step for row buckets up to {max(args.sizes)}: "
            f"{compile_s:.1f} s (start-up cost, not in the timings). Each figure: the best of {args.repeats} "
            f"run{'s' if args.repeats > 1 else ''}, eager and compiled alternating."
        )
    lines += ["", *(batching_table(results) if args.compare == "batching" else compile_table(results))]
    report = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"voxcpm-{args.shapes}-{'gpu' if args.device.startswith('cuda') else 'cpu'}" + ("-compile" if args.compare == "compile" else "")
    (args.out / f"{name}.md").write_text(report, encoding="utf-8")
    figures = {"shapes": args.shapes, "compare": args.compare, "device": machine(args.device), "compile_s": compile_s, "results": results}
    (args.out / f"{name}.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return report


CONFIGS = {
    "tiny": lambda: TINY,
    "mid": lambda: scaled(TINY, hidden=512, layers=8, local_layers=2, vae_dim=512),
    "1.5": lambda: VOXCPM_1_5,
    "tiny2": lambda: TINY_V2,
    "mid2": lambda: scaled(TINY_V2, hidden=512, layers=8, local_layers=2, vae_dim=512),
    "2": lambda: VOXCPM_2,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=list(CONFIGS), default="mid",
                        help="random weights of the real VoxCPM-1.5 or VoxCPM2 shapes, or CPU-sized ones")
    parser.add_argument("--compare", choices=["batching", "compile"], default="batching")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=10, help="flow-matching steps per patch")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1, help="--compare compile: best of this many runs per side")
    parser.add_argument("--model-dir", type=Path, default=None, help="an existing checkpoint (default: a random one of --shapes)")
    parser.add_argument("--compile-cache-dir", type=Path, default=None, help="inductor's cache (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model_dir or write_checkpoint(Path(tmp) / "model", CONFIGS[args.shapes]())
        engine = VoxCPMEngine(folder, device=args.device, dtype=args.dtype)
        timed_batch(engine, works_for(engine, 1, args.steps))  # warm-up
        compiled, compile_s = None, None
        if args.compare == "compile":
            started = time.perf_counter()
            compiled = VoxCPMEngine(
                folder, device=args.device, dtype=args.dtype, compile="on", compile_max_rows=max(args.sizes),
                compile_cache_dir=args.compile_cache_dir, compile_steps=(args.steps,),
            )
            compile_s = time.perf_counter() - started
        results: list[dict] = []
        for size in args.sizes:
            results.append(
                run_compile(engine, compiled, size, args.steps, args.repeats) if compiled else run_batching(engine, size, args.steps)
            )
            # Written after every size: a run stopped by a time limit keeps what it measured.
            report = write_report(args, engine, results, compile_s)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
