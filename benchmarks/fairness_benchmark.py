"""Fair share under a flood: a flooding caller (many concurrent long streams) next to a light
caller (one short request at a time), on one server, over gRPC on loopback.

    .venv/bin/python benchmarks/fairness_benchmark.py                     # VoxCPM mid, ~2 minutes
    .venv/bin/python benchmarks/fairness_benchmark.py --engine piper --duration 10

Three phases on the same server (streaming-aware scheduler, defaults otherwise; result cache
off): the light caller alone, the flood alone, then both at once. The light caller's p95
latency with the flood should stay within 2x of its latency alone, and the flood should still
get most of what it gets alone (it uses the capacity the light caller leaves). Callers are named
with x-voxbatch-client ("light", "flood"). Writes benchmarks/results/fairness-cpu.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load_benchmark import VOXCPM_TEXTS, voxcpm_engine  # noqa: E402
from benchmarks.loadgen import DEFAULT_TEXTS, LoadSpec, run_load  # noqa: E402
from benchmarks.servers import ServeProcess, describe_machine, load_average  # noqa: E402

RESULTS = Path(__file__).parent / "results"
LIGHT_TEXTS = {"voxcpm": ("Hello there.",), "piper": ("Hello there.",)}
FLOOD_TEXTS = {
    "voxcpm": tuple(" ".join(VOXCPM_TEXTS[i : i + 3]) for i in range(0, len(VOXCPM_TEXTS), 3)),  # three sentences each
    "piper": tuple(" ".join(DEFAULT_TEXTS[i : i + 3]) for i in range(0, len(DEFAULT_TEXTS), 3)),  # six sentences each
}


def light_spec(engine: str, duration_s: float, parameters: dict) -> LoadSpec:
    return LoadSpec(clients=1, duration_s=duration_s, max_requests=10_000, timeout_s=300, stream_share=0.0,
                    texts=LIGHT_TEXTS[engine], caller="light", callers=1, seed=1, parameters=parameters)


def flood_spec(engine: str, duration_s: float, clients: int, parameters: dict) -> LoadSpec:
    return LoadSpec(clients=clients, duration_s=duration_s, max_requests=10_000, timeout_s=300, stream_share=1.0,
                    texts=FLOOD_TEXTS[engine], caller="flood", callers=1, seed=2, parameters=parameters)


async def phases(target: str, engine: str, duration_s: float, flood_clients: int, parameters: dict) -> dict[str, dict]:
    await run_load(target, light_spec(engine, 3.0, parameters))  # warm-up
    light_alone = (await run_load(target, light_spec(engine, duration_s, parameters))).summary()
    flood_alone = (await run_load(target, flood_spec(engine, duration_s, flood_clients, parameters))).summary()
    light, flood = await asyncio.gather(
        run_load(target, light_spec(engine, duration_s, parameters)),
        run_load(target, flood_spec(engine, duration_s, flood_clients, parameters)),
    )
    return {"light alone": light_alone, "flood alone": flood_alone, "light with flood": light.summary(),
            "flood with light": flood.summary()}


def report(engine: str, results: dict[str, dict], args, started: float, load_before: str) -> str:
    def p(s: dict, key: str, q: str) -> str:
        return f"{s[key][q] * 1000:.0f}" if q in s[key] else "-"

    lines = [
        "# Fair share: a flooding caller next to a light caller", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} by `benchmarks/fairness_benchmark.py "
        + " ".join(sys.argv[1:]) + "`.",
        f"Machine: {describe_machine()}.",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}.", "",
        f"Engine: {engine}. Light caller: one client sending one short unary request at a time ({LIGHT_TEXTS[engine][0]!r}). "
        f"Flood: {args.flood_clients} concurrent clients of one caller, each streaming long texts "
        f"({len(FLOOD_TEXTS[engine][0].split('. '))} sentences) back to back. Each phase runs {args.duration:g} s.", "",
        "| phase | requests | requests/s | audio s/s | latency p50 / p95 ms | first audio p95 ms | viable streams | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, s in results.items():
        viable = "-" if s["stream_viability"] is None else f"{s['stream_viability']:.1%}"
        lines.append(
            f"| {phase} | {s['ok']} | {s['requests_per_s']:.2f} | {s['audio_s_per_s']:.2f} | {p(s, 'latency_s', 'p50')} / "
            f"{p(s, 'latency_s', 'p95')} | {p(s, 'first_audio_s', 'p95')} | {viable} | {s['errors'] or '-'} |"
        )
    lines += [
        "", "Where the light caller's time goes (p50 / p95 ms; the server's timings of each request):", "",
        "| phase | latency | queue wait | engine compute | in the server, in all | outside the server (network, client) |",
        "|---|---|---|---|---|---|",
    ]
    for phase in ("light alone", "light with flood"):
        s = results[phase]
        lines.append(f"| {phase} | " + " | ".join(
            f"{p(s, key, 'p50')} / {p(s, key, 'p95')}"
            for key in ("latency_s", "queue_wait_s", "unary_compute_s", "unary_server_s", "unary_outside_server_s")
        ) + " |")
    alone, shared = results["light alone"]["latency_s"], results["light with flood"]["latency_s"]
    flood_alone, flood_shared = results["flood alone"]["audio_s_per_s"], results["flood with light"]["audio_s_per_s"]
    ratio = shared.get("p95", 0) / alone["p95"] if alone.get("p95") else float("nan")
    kept = flood_shared / flood_alone if flood_alone else float("nan")
    lines += [
        "", f"- Light caller's p95 latency with the flood / alone: **{ratio:.2f}x** (target: at most 2x).",
        f"- The flood's audio throughput next to the light caller / alone: **{kept:.2f}x** (it keeps the capacity "
        "the light caller leaves).", "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["voxcpm", "piper"], default="voxcpm")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--flood-clients", type=int, default=12)
    parser.add_argument("--scheduler", choices=["streaming", "greedy"], default="streaming")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the VoxCPM server")
    parser.add_argument("--fair-slowdown", type=float, default=None,
                        help="the server's --fair-slowdown (default: the server's default; 0: fair-share order only)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started, load_before = time.time(), load_average()
    with tempfile.TemporaryDirectory() as tmp:
        if args.engine == "voxcpm":
            engine = voxcpm_engine(Path(tmp) / "voxcpm-mid", args.duration, args.threads)
            flags, threads, parameters = engine.flags, engine.threads, engine.parameters or {}
        else:
            flags, threads, parameters = {"engine": "piper"}, None, {}
        if args.fair_slowdown is not None:
            flags = {**flags, "fair_slowdown": args.fair_slowdown}
        with ServeProcess(f"fair-{args.engine}", threads, **flags, scheduler=args.scheduler) as server:
            results = asyncio.run(phases(server.target, args.engine, args.duration, args.flood_clients, parameters))
    text = report(args.engine, results, args, started, load_before)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fairness-cpu-{args.engine}.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
