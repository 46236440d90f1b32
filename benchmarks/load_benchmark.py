"""What batching and the scheduler buy, measured end to end over gRPC, in three modes: batching
off (max batch 1), today's greedy continuous batching (`--scheduler greedy`: every compatible
waiting row joins a running batch) and the streaming-aware scheduler (`--scheduler streaming`,
the default), on the embedded Piper voice and on VoxCPM with a mid-size random model, at 1, 4, 8
and 16 concurrent clients, plus one open-loop (Poisson) run.

    .venv/bin/python benchmarks/load_benchmark.py                       # both engines, ~12 minutes
    .venv/bin/python benchmarks/load_benchmark.py --engines voxcpm --concurrency 1 8 --rounds 1

Each mode is a fresh `voxbatch serve` process on a free loopback port (result cache off, so every
request is computed), driven by benchmarks/loadgen.py from this process; each closed-loop client
is its own caller (x-voxbatch-client). The modes run interleaved at each load, so drift in the
machine's load hits them alike; the ratios measured within one run are what matter. Half the
requests stream. Writes benchmarks/results/load-cpu.md (tables, machine, load average),
load-goodput.png and load-rows-per-step.png (rows in each step over time, greedy against
streaming-aware, at one load).
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

from benchmarks.load_results import LoadResult  # noqa: E402
from benchmarks.loadgen import DEFAULT_TEXTS, LoadSpec, recent_steps, run_load  # noqa: E402
from benchmarks.servers import ServeProcess, describe_machine, load_average  # noqa: E402

RESULTS = Path(__file__).parent / "results"
# "greedy" and "streaming" use the default window (50 ms, adaptive) and max batch (8).
# Batching off is one item at a time in queue order (no scheduler's ordering either).
MODES = {
    "off": {"max_batch_size": 1, "scheduler": "greedy"},
    "greedy": {"scheduler": "greedy"},
    "streaming": {"scheduler": "streaming"},
    # What the engine's default workers buy (Piper on a CPU: two; VoxCPM: one, the same as streaming).
    "one-worker": {"scheduler": "streaming", "workers": 1},
}
MODE_LABELS = {"off": "batching off (max batch 1, queue order)", "greedy": "greedy continuous batching", "streaming": "streaming-aware",
               "one-worker": "streaming-aware on one worker"}
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


def voxcpm_engine(folder: Path, duration_s: float, threads: int, steps: int = 10) -> Engine:
    """`steps`: inference steps per patch; more make each generation step dearer, so that fewer
    rows fit in real time (where greedy batching falls behind playback)."""
    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY, scaled, write_checkpoint

    write_checkpoint(folder, scaled(TINY, **VOXCPM_SHAPE))
    params = _count_parameters(folder)
    shape = ", ".join(f"{k} {v}" for k, v in VOXCPM_SHAPE.items())
    return Engine(
        "voxcpm", {"engine": "voxcpm", "model_dir": folder, "device": "cpu"}, VOXCPM_TEXTS, duration_s, threads,
        f"VoxCPM, random weights scaled from the tiny test model ({shape}; {params:.1f} M parameters), float32, "
        f"{threads} torch thread(s), {steps} inference steps; the stop head never fires, so each text runs to its "
        "length cap (5.4 or 6.3 s of audio for these short texts); retry_badcase off, since every "
        "try of a random model runs on and a trained one stops",
        parameters={"retry_badcase": False, **({"inference_steps": steps} if steps != 10 else {})},
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


def measure(target: str, engine: Engine, duration_s: float | None = None, **load) -> tuple[LoadResult, list]:
    """One run of the load; the result and the steps the server ran meanwhile."""
    since = time.time()
    if engine.parameters:
        load.setdefault("parameters", engine.parameters)
    spec = LoadSpec(texts=engine.texts, duration_s=duration_s or engine.duration_s, timeout_s=300, seed=7, **load)
    result = asyncio.run(run_load(target, spec))
    return result, asyncio.run(recent_steps(target, since))


def compare(servers: dict[str, ServeProcess], engine: Engine, rounds: int, duration_s: float | None = None,
            **load) -> dict[str, dict]:
    """The same load on every mode's server, `rounds` times, the modes' order reversed every other
    round (drift in the machine's load then hits them alike); one summary per mode over its
    rounds, with the steady-state rates averaged (load_results.LoadResult.steady_rate)."""
    runs: dict[str, list] = {mode: [] for mode in servers}
    for number in range(rounds):
        order = list(servers) if number % 2 == 0 else list(reversed(servers))
        for mode in order:
            runs[mode].append(measure(servers[mode].target, engine, duration_s, **load))
    summaries = {}
    for mode, done in runs.items():
        results = [r for r, _ in done]
        pooled = LoadResult(results[0].spec, [o for r in results for o in r.outcomes], sum(r.dropped for r in results),
                            sum(r.wall_s for r in results), [b for r in results for b in r.batch_sizes])
        summary = pooled.summary()  # its steady rates pool rounds on one time base: their sum
        for key in ("steady_audio_s_per_s", "steady_goodput_s_per_s", "steady_requests_per_s"):
            summary[key] /= rounds
        summary["steps"] = done[0][1]  # the first round's, for the rows-per-step plot
        rows = [r for _, steps in done for _, r in steps]
        summary["rows_per_step"] = sum(rows) / len(rows) if rows else None
        summaries[mode] = summary
    return summaries


def warm_up(target: str, engine: Engine) -> None:
    measure(target, Engine(engine.name, {}, engine.texts, 60), clients=1, max_requests=2)


def run_engine(engine: Engine, modes: list[str], concurrency: list[int], open_rate_factor: float,
               open_duration_factor: float, rounds: int) -> dict:
    rows: dict[tuple[str, str], dict] = {}
    with ExitStack() as stack:
        servers = {
            mode: stack.enter_context(ServeProcess(f"{engine.name}-{mode}", engine.threads, **engine.flags, **MODES[mode]))
            for mode in modes
        }
        for server in servers.values():
            warm_up(server.target, engine)
        for clients in concurrency:
            for mode, summary in compare(servers, engine, rounds, clients=clients, max_requests=2000).items():
                rows[(str(clients), mode)] = summary
                print(f"{engine.name} {mode:9s} {clients:2d} clients: {line(summary)}, load {load_average()}", flush=True)
        if open_rate_factor <= 0:
            return rows
        # Open loop: Poisson arrivals above what batching off (or the first mode) sustains at one client.
        base = rows.get(("1", "off")) or rows[(str(concurrency[0]), modes[0])]
        rate = round(open_rate_factor * base["steady_requests_per_s"], 2)
        duration = engine.duration_s * open_duration_factor
        for mode, summary in compare(servers, engine, rounds, duration, rate=rate, max_requests=4000).items():
            rows[(f"open {rate:g}/s", mode)] = summary
            print(f"{engine.name} {mode:9s} open {rate}/s: {line(summary)}", flush=True)
    return rows


def line(s: dict) -> str:
    viable = "-" if s["stream_viability"] is None else f"{s['stream_viability']:.0%}"
    return (f"{s['requests_per_s']:.2f} req/s, goodput {s['goodput_s_per_s']:.2f} audio s/s "
            f"(steady {s['steady_goodput_s_per_s']:.2f}, audio {s['steady_audio_s_per_s']:.2f}), viable {viable}, "
            f"first audio p95 {s['first_audio_s'].get('p95', 0):.2f} s, p95 {s['latency_s'].get('p95', 0):.2f} s, "
            f"rows per step {s['rows_per_step'] or 0:.2f}")


def ms(d: dict, key: str) -> str:
    return f"{d[key] * 1000:.0f}" if key in d else "-"


def label(load: str) -> str:
    return f"{load} clients" if load.isdigit() else load


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def engine_section(engine: Engine, rows: dict, modes: list[str]) -> list[str]:
    lines = [
        f"## {engine.name}", "", engine.description, "",
        "| load | mode | requests/s | audio s/s | goodput (viable stream audio s/s) | viable streams | "
        "first audio p50 / p95 ms | latency p50 / p95 ms | queue wait p95 ms | rows per step | requests (streams) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (load, mode), s in rows.items():
        lat, wait, ttfa = s["latency_s"], s["queue_wait_s"], s["first_audio_s"]
        viable = "-" if s["stream_viability"] is None else f"{s['stream_viability']:.1%}"
        per_step = "-" if s["rows_per_step"] is None else f"{s['rows_per_step']:.1f}"
        lines.append(
            f"| {label(load)} | {mode} | {s['steady_requests_per_s']:.2f} | {s['steady_audio_s_per_s']:.2f} | "
            f"{s['steady_goodput_s_per_s']:.2f} | "
            f"{viable} | {ms(ttfa, 'p50')} / {ms(ttfa, 'p95')} | {ms(lat, 'p50')} / {ms(lat, 'p95')} | {ms(wait, 'p95')} | "
            f"{per_step} | {s['ok']} ({s['streams']}) | {s['errors'] or '-'} |"
        )
    if "off" in modes and "streaming" in modes:
        lines += ["", "The streaming-aware scheduler against the other modes (same load, same run):", "",
                  "| load | goodput vs off | goodput vs greedy | throughput (audio s/s) vs off | throughput vs greedy | "
                  "viable streams | "
                  "first audio p95 vs off | throughput vs one worker |", "|---|---|---|---|---|---|---|---|"]
        for load in dict.fromkeys(load for load, _ in rows):
            new, off, greedy = rows[(load, "streaming")], rows[(load, "off")], rows.get((load, "greedy"))
            one = rows.get((load, "one-worker"))
            viable = "-" if new["stream_viability"] is None else f"{new['stream_viability']:.1%}"
            lines.append(
                f"| {label(load)} | {ratio(new['steady_goodput_s_per_s'], off['steady_goodput_s_per_s'])} | "
                f"{ratio(new['steady_goodput_s_per_s'], greedy['steady_goodput_s_per_s']) if greedy else '-'} | "
                f"{ratio(new['steady_audio_s_per_s'], off['steady_audio_s_per_s'])} | "
                f"{ratio(new['steady_audio_s_per_s'], greedy['steady_audio_s_per_s']) if greedy else '-'} | {viable} | "
                f"{ms(new['first_audio_s'], 'p95')} / {ms(off['first_audio_s'], 'p95')} ms | "
                f"{ratio(new['steady_audio_s_per_s'], one['steady_audio_s_per_s']) if one else '-'} |"
            )
    return lines + [""]


def plot(results: dict[str, dict], modes: list[str], trace_load: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"off": "o--", "greedy": "s:", "streaming": "^-"}
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (engine, rows) in zip(axes[0], results.items()):
        for mode in modes:
            points = [(int(load), s["steady_goodput_s_per_s"]) for (load, m), s in rows.items() if m == mode and load.isdigit()]
            ax.plot([p[0] for p in points], [p[1] for p in points], styles.get(mode, "o-"), label=MODE_LABELS[mode])
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({int(l) for l, _ in rows if l.isdigit()}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set(xlabel="concurrent clients (closed loop)", ylabel="goodput (audio s of viable streams per s)",
               title=f"{engine}: goodput")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    goodput = out / "load-goodput.png"
    fig.savefig(goodput, dpi=110)
    plt.close(fig)

    traced = [m for m in ("greedy", "streaming") if m in modes]
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 3.2 * len(results)), squeeze=False)
    for ax, (engine, rows) in zip(axes[:, 0], results.items()):
        for mode in traced:
            steps = rows.get((trace_load, mode), {}).get("steps", [])
            ax.step([t for t, _ in steps], [r for _, r in steps], where="post", label=MODE_LABELS[mode], linewidth=1)
        ax.set(xlabel="seconds into the run", ylabel="rows per step",
               title=f"{engine}: rows in each step at {label(trace_load)} (a whole-batch engine's batch is one step)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    per_step = out / "load-rows-per-step.png"
    fig.savefig(per_step, dpi=110)
    plt.close(fig)
    return [goodput, per_step]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", choices=["piper", "voxcpm"], default=["piper", "voxcpm"])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=["off", "greedy", "streaming"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per Piper configuration and round")
    parser.add_argument("--voxcpm-duration", type=float, default=8.0, help="seconds of load per VoxCPM configuration and round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each configuration, the modes' order reversed every other round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the VoxCPM server")
    parser.add_argument("--voxcpm-steps", type=int, default=10,
                        help="VoxCPM inference steps per patch (30 makes a step dear enough that 8 rows fall behind)")
    parser.add_argument("--open-rate-factor", type=float, default=1.5,
                        help="open-loop rate, as a multiple of batching off's throughput at 1 client (0: no open loop)")
    parser.add_argument("--open-duration-factor", type=float, default=1.0,
                        help="open-loop duration, as a multiple of the closed-loop duration")
    parser.add_argument("--trace-load", default="8", help="the load whose rows per step are plotted (a concurrency)")
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
                                "auto`, which computes a batch's rows one after another on a CPU and hands each "
                                "request its audio when its rows are done). Each text has two sentences (about 3 s "
                                "of audio).")
            else:
                engine = voxcpm_engine(Path(tmp) / "voxcpm-mid", args.voxcpm_duration, args.threads, args.voxcpm_steps)
            engines[name] = engine
            results[name] = run_engine(engine, args.modes, args.concurrency, args.open_rate_factor, args.open_duration_factor,
                                       args.rounds)
    minutes = (time.time() - started) / 60

    lines = [
        "# Load test: what batching and the streaming-aware scheduler buy",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {minutes:.1f} minutes, by "
        "`benchmarks/load_benchmark.py " + " ".join(sys.argv[1:]) + "`.",
        f"Machine: {describe_machine()}.",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}. The machine is shared with "
        "other work, so absolute figures are noisy; compare the modes within one run.",
        "",
        "Method: one `voxbatch serve` per mode on loopback, result cache off. Modes: "
        + "; ".join(f"{m}: {MODE_LABELS[m]}" for m in args.modes) + ". Greedy and streaming-aware use the "
        "default window (50 ms bound, adaptive) and max batch (8). Every mode but one-worker runs the engine's "
        "default workers (Piper on a CPU: two, so with Piper off and greedy are the same configuration, and their "
        "difference is the noise floor; VoxCPM: one). Closed loop: each client (its own caller) sends "
        f"its next request when the last one ends, for {args.duration:g} s (Piper) or {args.voxcpm_duration:g} s "
        f"(VoxCPM), then waits for what is in flight; each configuration runs {args.rounds} time(s), the modes' order "
        "reversed every other round, so that drift in the machine's load hits the modes alike. "
        f"Open loop: Poisson arrivals at {args.open_rate_factor:g}x "
        f"the throughput of batching off at one client, for {args.open_duration_factor:g}x as long, spread over 16 "
        "callers. Half of the requests use StreamSynthesize (PCM). The load generator runs in one process on the "
        "same machine.",
        "",
        "Columns: requests/s, audio s/s and goodput are steady-state rates: what was delivered while the load was "
        "offered, past its first second (streams chunk by chunk as the chunks arrived, a unary request when it "
        "ended), averaged over the rounds (totals over whole runs divided by their length move with the drain "
        "after the clients stop, and by a whole request when one ends just after the run: a few per cent at "
        "these counts); a stream is viable when every chunk arrived before the audio received before it had finished "
        "playing (playback starting with the first chunk); goodput is the audio seconds of viable streams per "
        "second (unary requests count in audio s/s only); first audio is the time to a stream's first chunk; "
        "latency is from the call to the last byte; queue wait is the server's (the longest of a request's work "
        "items); rows per step is the mean over the steps the server ran in the run (GetServerInfo.recent_steps; "
        "a whole-batch engine's batch counts as one step).",
        "",
    ]
    for name, rows in results.items():
        lines += engine_section(engines[name], rows, args.modes)
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "load-cpu.md"
    report.write_text("\n".join(lines), encoding="utf-8")  # the figures are kept even if plotting fails
    pngs = plot(results, args.modes, args.trace_load, args.out)
    lines += ["Plots: " + ", ".join(f"`{p.name}`" for p in pngs) + " (goodput against concurrency; rows per step over "
              f"time at {label(args.trace_load)}).", ""]
    report.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
