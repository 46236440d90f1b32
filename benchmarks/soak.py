"""A bounded soak: steady load on one `voxbatch serve` for a few minutes, with invalid, abandoned and
expiring requests mixed in. Checks that no request is lost and that the server's memory stays flat.

    .venv/bin/python benchmarks/soak.py                      # Piper, 3 minutes
    .venv/bin/python benchmarks/soak.py --minutes 10 --clients 8

The load comes in windows (closed loop, `--clients` callers each); after each window the server's
resident memory is read from /proc. Lost means: a request of the main load that did not end OK with
all its audio, or a side request that did not get its expected status. Memory is flat when the
growth over the second half of the run stays under `--max-growth-mib`. Writes
benchmarks/results/soak-piper.md; exits 1 when a check fails. tests/reliability/test_soak.py is
the short version the test suite runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from benchmarks.loadgen import LoadSpec, run_load  # noqa: E402
from benchmarks.servers import ServeProcess, describe_machine, load_average  # noqa: E402
from voxbatch.tts.v1 import tts_pb2 as pb  # noqa: E402
from voxbatch.tts.v1 import tts_pb2_grpc  # noqa: E402

EXPECTED = {"invalid": "INVALID_ARGUMENT", "abandoned": "CANCELLED", "expiring": "DEADLINE_EXCEEDED"}


def side_traffic(target: str, stop: threading.Event, seen: Counter) -> None:
    """Requests that must fail in a known way, one of each kind every half second."""
    with grpc.insecure_channel(target) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        while not stop.wait(0.5):
            try:
                stub.Synthesize(pb.SynthesizeRequest(text="Hello.", sample_rate_hz=-5), timeout=30)
                seen[("invalid", "OK")] += 1
            except grpc.RpcError as error:
                seen[("invalid", error.code().name)] += 1
            stream = stub.StreamSynthesize(pb.StreamSynthesizeRequest(text="First part. Second part. Third."), timeout=60)
            try:
                next(stream)
                stream.cancel()
                seen[("abandoned", "CANCELLED")] += 1
            except grpc.RpcError as error:
                seen[("abandoned", error.code().name)] += 1
            try:
                stub.Synthesize(pb.SynthesizeRequest(text="No time at all."), timeout=0.001)
                seen[("expiring", "OK")] += 1
            except grpc.RpcError as error:
                seen[("expiring", error.code().name)] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per load window")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-growth-mib", type=float, default=32.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    started, load_before = time.time(), load_average()
    windows = []
    seen: Counter = Counter()
    stop = threading.Event()
    with ServeProcess("soak-piper", engine="piper") as server:
        side = threading.Thread(target=side_traffic, args=(server.target, stop, seen), daemon=True)
        side.start()
        rss_start = server.rss_mib()
        end = time.monotonic() + args.minutes * 60
        index = 0
        while time.monotonic() < end:
            spec = LoadSpec(clients=args.clients, max_requests=100_000, duration_s=min(args.window, end - time.monotonic()),
                            timeout_s=120, seed=index)
            summary = asyncio.run(run_load(server.target, spec)).summary()
            windows.append((time.time() - started, summary, server.rss_mib()))
            print(f"window {index}: {summary['ok']}/{summary['sent']} ok, {summary['requests_per_s']:.2f} req/s, "
                  f"rss {windows[-1][2]:.0f} MiB", flush=True)
            index += 1
        stop.set()
        side.join(30)

    sent = sum(s["sent"] for _, s, _ in windows)
    lost = sum(s["sent"] - s["ok"] + s["incomplete"] for _, s, _ in windows)
    side_wrong = {k: n for k, n in seen.items() if EXPECTED[k[0]] != k[1]}
    half = windows[len(windows) // 2][2] if windows else rss_start
    growth = windows[-1][2] - half if windows else 0.0
    ok = lost == 0 and not side_wrong and growth < args.max_growth_mib
    lines = [
        "# Soak: Piper, steady load with faults mixed in",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} by `benchmarks/soak.py`, "
        f"{args.minutes:g} minutes, {args.clients} clients in {args.window:g} s windows, plus an invalid, an abandoned "
        "and an expiring request every half second.",
        f"Machine: {describe_machine()}.",
        f"Load average before: {load_before}; after: {load_average()}.",
        "",
        f"**{'PASS' if ok else 'FAIL'}**: {sent} requests of the main load, {lost} lost; side requests "
        f"{dict(sorted((f'{k} {c}', n) for (k, c), n in seen.items()))}"
        f"{', unexpected: ' + str(side_wrong) if side_wrong else ''}; server memory {rss_start:.0f} MiB just after start-up, "
        f"{half:.0f} MiB at half time, {windows[-1][2] if windows else rss_start:.0f} MiB at the end: "
        f"{growth:+.0f} MiB over the second half (limit {args.max_growth_mib:g}).",
        "",
        "| window ends (s) | requests | ok | requests/s | audio s/s | p50 ms | p95 ms | server RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for at, s, rss in windows:
        lat = s["latency_s"]
        lines.append(f"| {at:.0f} | {s['sent']} | {s['ok']} | {s['requests_per_s']:.2f} | {s['audio_s_per_s']:.2f} | "
                     f"{lat.get('p50', 0) * 1000:.0f} | {lat.get('p95', 0) * 1000:.0f} | {rss:.0f} |")
    report = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak-piper.md").write_text(report, encoding="utf-8")
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
