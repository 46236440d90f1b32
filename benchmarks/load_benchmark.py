"""What batching buys, measured end to end over gRPC: batching off (max batch 1) against batching
on (the default 50 ms window and batch of 8), on the embedded Piper voice and on VoxCPM with a
mid-size random model, at 1, 4, 8 and 16 concurrent clients, plus one open-loop (Poisson) run.

    .venv/bin/python benchmarks/load_benchmark.py                       # both engines, ~10 minutes
    .venv/bin/python benchmarks/load_benchmark.py --engines piper --duration 5

Each configuration is a fresh `voxbatch serve` process on a free loopback port (result cache off,
so every request is computed), driven by benchmarks/loadgen.py from this process. The two modes
run interleaved at each concurrency, so drift in the machine's load hits both alike; the ratios
measured within one run are what matter. Half the requests stream. Writes
benchmarks/results/load-cpu.md (tables, machine, load average) and load-throughput.png,
load-latency-p95.png.

The batcher has no adaptive window (the window is fixed, --batch-window-ms), so there is no third
mode to compare; the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import DEFAULT_TEXTS, LoadSpec, run_load  # noqa: E402
from benchmarks.servers import ServeProcess, describe_machine, load_average  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MODES = {"off": {"max_batch_size": 1}, "on": {}}  # "on" is the default window (50 ms) and size (8)
# 4 or 5 tokens each for the test tokenizer, so 34 or 40 patches (5.4 or 6.3 s of audio).
VOXCPM_TEXTS = ("Hello there.", "I am fine, thank you.", "The quick brown fox.", "How are you today?",
                "The quick dog.", "Read aloud, too!")
VOXCPM_SHAPE = {"hidden": 256, "layers": 4, "local_layers": 1, "vae_dim": 128}


@dataclass
class Engine:
    name: str
    flags: dict
    texts: tuple[str, ...]
    duration_s: float
    threads: int | None = None
    description: str = ""
    parameters: dict | None = None  # sent with every request


def voxcpm_engine(folder: Path, duration_s: float, threads: int) -> Engine:
    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY, scaled, write_checkpoint

    write_checkpoint(folder, scaled(TINY, **VOXCPM_SHAPE))
    params = _count_parameters(folder)
    shape = ", ".join(f"{k} {v}" for k, v in VOXCPM_SHAPE.items())
    return Engine(
        "voxcpm", {"engine": "voxcpm", "model_dir": folder, "device": "cpu"}, VOXCPM_TEXTS, duration_s, threads,
        f"VoxCPM, random weights scaled from the tiny test model ({shape}; {params:.1f} M parameters), float32, "
        f"{threads} torch thread(s), 10 inference steps; the stop head never fires, so each text runs to its "
        "length cap (5.4 or 6.3 s of audio for these short texts); retry_badcase off, since every "
        "try of a random model runs on and a trained one stops",
        parameters={"retry_badcase": False},
    )


def _count_parameters(folder: Path) -> float:
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        for key in f.keys():
            n = 1
            for d in f.get_slice(key).get_shape():
                n *= d
            total += n
    return total / 1e6


def measure(target: str, engine: Engine, duration_s: float | None = None, **load) -> dict:
    if engine.parameters:
        load.setdefault("parameters", engine.parameters)
    spec = LoadSpec(texts=engine.texts, duration_s=duration_s or engine.duration_s, timeout_s=300, seed=7, **load)
    return asyncio.run(run_load(target, spec)).summary()


def warm_up(target: str, engine: Engine) -> None:
    measure(target, Engine(engine.name, {}, engine.texts, 60), clients=1, max_requests=2)


def run_engine(engine: Engine, concurrency: list[int], open_rate_factor: float, open_duration_factor: float) -> dict:
    rows: dict[tuple[str, str], dict] = {}
    with ExitStack() as stack:
        servers = {
            mode: stack.enter_context(ServeProcess(f"{engine.name}-{mode}", engine.threads, **engine.flags, **flags))
            for mode, flags in MODES.items()
        }
        for server in servers.values():
            warm_up(server.target, engine)
        for clients in concurrency:
            for mode, server in servers.items():
                rows[(str(clients), mode)] = summary = measure(server.target, engine, clients=clients, max_requests=2000)
                print(f"{engine.name} {mode:3s} {clients:2d} clients: {summary['requests_per_s']:.2f} req/s, "
                      f"p95 {summary['latency_s'].get('p95', 0):.2f} s, load {load_average()}", flush=True)
        # Open loop: Poisson arrivals above what batching off sustains alone.
        rate = round(open_rate_factor * rows[("1", "off")]["requests_per_s"], 2)
        for mode, server in servers.items():
            rows[(f"open {rate:g}/s", mode)] = summary = measure(
                server.target, engine, engine.duration_s * open_duration_factor, rate=rate, max_requests=2000
            )
            print(f"{engine.name} {mode:3s} open {rate}/s: {summary['requests_per_s']:.2f} req/s, "
                  f"p95 {summary['latency_s'].get('p95', 0):.2f} s", flush=True)
    return rows


def ms(d: dict, key: str) -> str:
    return f"{d[key] * 1000:.0f}" if key in d else "-"


def engine_section(engine: Engine, rows: dict) -> list[str]:
    lines = [
        f"## {engine.name}", "", engine.description, "",
        "| load | batching | requests/s | audio s/s | p50 ms | p95 ms | p99 ms | queue wait p50 / p95 ms | "
        "mean batch (per item) | first audio p50 / p95 ms | viable streams | requests (streams) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (load, mode), s in rows.items():
        lat, wait, ttfa = s["latency_s"], s["queue_wait_s"], s["first_audio_s"]
        viable = "-" if s["stream_viability"] is None else f"{s['stream_viability']:.0%}"
        batch = "-" if s["batch_size_item_mean"] is None else f"{s['batch_size_item_mean']:.1f}"
        load_label = f"{load} clients" if load.isdigit() else load
        lines.append(
            f"| {load_label} | {mode} | {s['requests_per_s']:.2f} | {s['audio_s_per_s']:.2f} | {ms(lat, 'p50')} | "
            f"{ms(lat, 'p95')} | {ms(lat, 'p99')} | {ms(wait, 'p50')} / {ms(wait, 'p95')} | {batch} | "
            f"{ms(ttfa, 'p50')} / {ms(ttfa, 'p95')} | {viable} | {s['ok']} ({s['streams']}) | {s['errors'] or '-'} |"
        )
    lines += ["", "What batching buys (on against off, same load):", "",
              "| load | throughput ratio | p50 latency on / off | p95 latency on / off | p95 cost (ms) |",
              "|---|---|---|---|---|"]
    for load in dict.fromkeys(load for load, _ in rows):
        on, off = rows[(load, "on")], rows[(load, "off")]
        ratio = on["requests_per_s"] / off["requests_per_s"] if off["requests_per_s"] else float("nan")
        p50 = on["latency_s"].get("p50", 0) / max(off["latency_s"].get("p50", 0), 1e-9)
        p95 = on["latency_s"].get("p95", 0) / max(off["latency_s"].get("p95", 0), 1e-9)
        cost = (on["latency_s"].get("p95", 0) - off["latency_s"].get("p95", 0)) * 1000
        load_label = f"{load} clients" if load.isdigit() else load
        lines.append(f"| {load_label} | {ratio:.2f}x | {p50:.2f} | {p95:.2f} | {cost:+.0f} |")
    lines += ["", "Batch sizes the server ran with batching on (size: batches):", ""]
    for (load, mode), s in rows.items():
        if mode == "on":
            lines.append(f"- {load}{' clients' if load.isdigit() else ''}: {s['batch_size_counts']}")
    return lines + [""]


def plot(results: dict[str, dict], engines: dict[str, Engine], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for metric, title, name in (
        (lambda s: s["requests_per_s"], "throughput (requests/s)", "load-throughput.png"),
        (lambda s: s["latency_s"].get("p95", float("nan")), "p95 latency (s)", "load-latency-p95.png"),
    ):
        fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
        for ax, (engine, rows) in zip(axes[0], results.items()):
            for mode, style in (("off", "o--"), ("on", "s-")):
                points = [(int(load), metric(s)) for (load, m), s in rows.items() if m == mode and load.isdigit()]
                ax.plot([p[0] for p in points], [p[1] for p in points], style,
                        label=f"batching {mode}" + (" (max batch 1)" if mode == "off" else " (50 ms, max 8)"))
            ax.set_xscale("log", base=2)
            ax.set_xticks([int(l) for l, m in rows if m == "on" and l.isdigit()])
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("concurrent clients (closed loop)")
            ax.set_ylabel(title)
            ax.set_title(f"{engine}: {title}")
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", choices=["piper", "voxcpm"], default=["piper", "voxcpm"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per Piper configuration")
    parser.add_argument("--voxcpm-duration", type=float, default=15.0, help="seconds of load per VoxCPM configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the VoxCPM server")
    parser.add_argument("--open-rate-factor", type=float, default=1.5,
                        help="open-loop rate, as a multiple of batching off's throughput at 1 client")
    parser.add_argument("--open-duration-factor", type=float, default=2.0,
                        help="open-loop duration, as a multiple of the closed-loop duration")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started, load_before = time.time(), load_average()
    results: dict[str, dict] = {}
    engines: dict[str, Engine] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.engines:
            if name == "piper":
                engine = Engine("piper", {"engine": "piper"}, DEFAULT_TEXTS, args.duration, None,
                                "The embedded voice (Piper, joe-us medium, onnxruntime on the CPU, `--piper-batch-mode "
                                "auto`, which computes a batch's rows one after another on a CPU). Each text has two "
                                "sentences (about 3 s of audio).")
            else:
                engine = voxcpm_engine(Path(tmp) / "voxcpm-mid", args.voxcpm_duration, args.threads)
            engines[name] = engine
            results[name] = run_engine(engine, args.concurrency, args.open_rate_factor, args.open_duration_factor)
    minutes = (time.time() - started) / 60

    lines = [
        "# Load test: what batching buys",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {minutes:.1f} minutes, by "
        "`benchmarks/load_benchmark.py`.",
        f"Machine: {describe_machine()}.",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}. The machine is shared with "
        "other work, so absolute figures are noisy; compare the two modes within one run.",
        "",
        "Method: one `voxbatch serve` per mode on loopback, result cache off. Batching off is `--max-batch-size 1`; "
        "on is the default (`--batch-window-ms 50 --max-batch-size 8`). The batcher has no adaptive window, so "
        "there is no third mode. Closed loop: each client sends its next request when the last one ends, for "
        f"{args.duration:g} s (Piper) or {args.voxcpm_duration:g} s (VoxCPM), then waits for what is in flight. Open "
        f"loop: Poisson arrivals at {args.open_rate_factor:g}x the throughput of batching off at one client, for "
        f"{args.open_duration_factor:g}x as long. Half of "
        "the requests use StreamSynthesize (PCM). The load generator runs in one process on the same machine.",
        "",
        "Columns: latency is from the call to the last byte; queue wait is the server's (the longest of a "
        "request's sentences); mean batch is the size of the batch the average work item ran in (a batch's size "
        "counts every item it served: VoxCPM admits waiting items into a running batch between generation steps, "
        "at most 8 rows at a time, so its batches can count more than 8); first audio is "
        "the time to the first streamed chunk; a stream is viable when every chunk arrived before the audio "
        "received before it had finished playing (playback starting with the first chunk).",
        "",
    ]
    for name, rows in results.items():
        lines += engine_section(engines[name], rows)
    args.out.mkdir(parents=True, exist_ok=True)
    pngs = plot(results, engines, args.out)
    lines += ["Plots: " + ", ".join(f"`{p.name}`" for p in pngs) + " (throughput and p95 latency against concurrency).", ""]
    report = "\n".join(lines)
    (args.out / "load-cpu.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
