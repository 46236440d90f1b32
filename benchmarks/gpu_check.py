"""Everything only a GPU can show, in one command, with every result in one folder.

    benchmarks/gpu_check.sh                      # on a GPU machine: under 8 minutes
    benchmarks/gpu_check.sh --dry-run            # the same steps on the CPU at tiny shapes (CI runs it)
    benchmarks/gpu_check.sh --out /tmp/check     # default: benchmarks/results/gpu-check/

Steps, in order of what they are worth (each one's failure or time-out is recorded, and the
next still runs; the whole run keeps within --budget-s):

1. environment: the GPU (nvidia-smi), driver, torch and CUDA versions.
2. checkpoint: a random VoxCPM checkpoint at the full 1.5 shapes (tiny for the dry run), shared
   by the steps below and deleted at the end.
3. cuda-tests: `pytest tests/gpu` (bfloat16 against float32, per-row CUDA generators, the
   free-memory budget, an out-of-memory batch halved with nothing lost, CUDA graphs against
   eager); JUnit XML and the log.
4. throughput: benchmarks/voxcpm_throughput.py --compare compile for batch 1 to 64: RTF,
   aggregate audio seconds per second, first audio, peak memory against the engine's estimate,
   eager against the captured whole decode step (CUDA graphs per row bucket). The dry run
   measures batched against sequential instead, eager only, unless given --compile: inductor on
   a CPU would cost CI more than the rest.
5. throughput-v2: the same sweep at VoxCPM2's shapes (its own random checkpoint, 2 B parameters),
   at batch 1, 8 and 64.
6. load: a `voxbatch serve` on the GPU (compiled, the cache of step 4), benchmarks/loadgen.py
   against it, then its /metrics (GPU utilisation and memory, estimated against measured
   peaks) and its log.

summary.md and summary.json say what each step did, how long it took, which files it wrote and
which steps a time limit cut short.
The exit status is 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu-check"


@dataclass
class Plan:
    """What differs between the real run and the dry run."""

    device: str
    shapes: str
    v2_shapes: str
    sizes: list[int]
    v2_sizes: list[int]
    repeats: int  # throughput: best of this many runs per side
    load_clients: int
    load_seconds: float
    threads: int | None
    compile: bool  # compare compiled with eager, and serve compiled
    step_limits_s: dict[str, float]
    budget_s: float  # the whole run's default limit; the step limits add up to no more

    @classmethod
    def for_run(cls, dry_run: bool, compile_on_cpu: bool = False) -> Plan:
        if dry_run:
            # Compiling on a CPU costs CI more than everything else here together; CI tests the
            # compiled path in tests/engines/voxcpm/test_compiled_step.py instead.
            return cls("cpu", "tiny", "tiny2", [1, 2], [1, 2], 1, 2, 3.0, 1, compile_on_cpu,
                       {"environment": 20, "checkpoint": 40, "cuda-tests": 90, "throughput": 110, "throughput-v2": 80,
                        "load": 80}, 420)
        # Under 8 minutes on one GPU, the promise: the limits add up to the budget, so a
        # step that overruns is stopped at its own limit and never eats a later step's time. The
        # sweeps are sized to fit: one run per side, and VoxCPM2 (2 B parameters, its checkpoint
        # written inside its step) at three batch sizes spanning the range instead of seven.
        return cls("cuda", "1.5", "2", [1, 2, 4, 8, 16, 32, 64], [1, 8, 64], 1, 32, 20.0, None, True,
                   {"environment": 20, "checkpoint": 60, "cuda-tests": 60, "throughput": 150, "throughput-v2": 100,
                    "load": 80}, 470)


@dataclass
class StepResult:
    name: str
    status: str  # ok, failed, timed out, skipped
    seconds: float
    detail: str = ""
    files: list[str] = field(default_factory=list)


class Check:
    def __init__(self, out: Path, plan: Plan, budget_s: float, dry_run: bool) -> None:
        self.out = out
        self.plan = plan
        self.dry_run = dry_run
        self.deadline = time.monotonic() + budget_s
        self.results: list[StepResult] = []
        self.work = Path(tempfile.mkdtemp(prefix="voxbatch-gpu-check-"))
        self.model_dir = self.work / "model"
        self.compile_cache = self.work / "compile-cache"  # shared by the throughput and load steps
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        if plan.threads:
            self.env.update(OMP_NUM_THREADS=str(plan.threads), MKL_NUM_THREADS=str(plan.threads))
        if dry_run:
            self.env["VOXBATCH_GPU_TESTS_DEVICE"] = "cpu"

    # -- running steps ------------------------------------------------------------------------

    def limit(self, name: str) -> float:
        return max(0.0, min(self.plan.step_limits_s[name], self.deadline - time.monotonic()))

    def run(self, name: str, args: list[str], log_name: str) -> StepResult:
        """One subprocess with its output in `log_name`, within the step's limit and the budget."""
        limit = self.limit(name)
        if limit < 5:
            return self.record(StepResult(name, "skipped", 0.0, "no time left in the budget"))
        log_path = self.out / log_name
        started = time.monotonic()
        with open(log_path, "wb") as log:
            log.write(f"$ {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True)
            try:
                code = process.wait(limit)
            except subprocess.TimeoutExpired:
                _stop(process)
                why = "its own limit" if limit >= self.plan.step_limits_s[name] - 1 else "the end of the run's budget"
                return self.record(StepResult(name, "timed out", time.monotonic() - started, f"stopped after {limit:.0f} s, {why}", [log_name]))
        status = "ok" if code == 0 else "failed"
        detail = "" if code == 0 else f"exit status {code}; last lines:\n{_tail(log_path)}"
        return self.record(StepResult(name, status, time.monotonic() - started, detail, [log_name]))

    def record(self, result: StepResult) -> StepResult:
        self.results.append(result)
        print(f"[gpu-check] {result.name}: {result.status} ({result.seconds:.1f} s)", flush=True)
        self.write_summary()
        return result

    # -- the steps ----------------------------------------------------------------------------

    def environment(self) -> None:
        started = time.monotonic()
        lines = []
        smi = shutil.which("nvidia-smi")
        if smi:
            lines.append(_capture([smi, "--query-gpu=name,memory.total,driver_version,compute_cap", "--format=csv"]))
            lines.append(_capture([smi]))
        else:
            lines.append("nvidia-smi: not found")
        lines.append(_capture([sys.executable, "-c", (
            "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, "
            "'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); "
            "print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
        )], env=self.env))
        (self.out / "environment.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        cuda_line = lines[-1].strip().splitlines()
        status = "ok"
        detail = cuda_line[-1] if cuda_line else ""
        if not self.dry_run and "available True" not in lines[-1]:
            status, detail = "failed", f"torch sees no CUDA device: {detail}"
        self.record(StepResult("environment", status, time.monotonic() - started, detail, ["environment.txt"]))

    def checkpoint(self) -> StepResult:
        code = (
            "import sys; from pathlib import Path; "
            "from voxbatch_server.engines.voxcpm.random_checkpoint import TINY, VOXCPM_1_5, write_checkpoint; "
            f"write_checkpoint(Path(sys.argv[1]), {'TINY' if self.plan.shapes == 'tiny' else 'VOXCPM_1_5'})"
        )
        return self.run("checkpoint", [sys.executable, "-c", code, str(self.model_dir)], "checkpoint.log")

    def cuda_tests(self) -> None:
        result = self.run(
            "cuda-tests",
            [sys.executable, "-m", "pytest", "tests/gpu", "-m", "gpu", "-rA", "-p", "no:cacheprovider",
             f"--junitxml={self.out / 'cuda-tests.xml'}", "-o", "junit_family=xunit2"],
            "cuda-tests.log",
        )
        counts = _junit_counts(self.out / "cuda-tests.xml")
        if counts:
            result.files.append("cuda-tests.xml")
            result.detail = (f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
                             + (f"; {result.detail}" if result.detail else ""))
            if not self.dry_run and counts["skipped"] and result.status == "ok":
                result.status, result.detail = "failed", result.detail + " (on a GPU nothing may skip)"
        self.write_summary()

    def throughput(self, name: str = "throughput", shapes: str | None = None, sizes: list[int] | None = None) -> None:
        """The sweep at the 1.5 shapes on the shared checkpoint, or at other `shapes` on a random
        checkpoint the benchmark writes itself."""
        shapes = shapes or self.plan.shapes
        sizes = sizes or self.plan.sizes
        model = ["--model-dir", str(self.model_dir)] if shapes == self.plan.shapes else []
        args = [
            sys.executable, "benchmarks/voxcpm_throughput.py", "--shapes", shapes, *model,
            "--device", self.plan.device, "--compare", "compile" if self.plan.compile else "batching",
            "--sizes", *map(str, sizes), "--repeats", str(self.plan.repeats),
            "--compile-cache-dir", str(self.compile_cache), "--out", str(self.out),
        ]
        if self.plan.threads:
            args += ["--threads", str(self.plan.threads)]
        result = self.run(name, args, f"{name}.log")
        device = "gpu" if self.plan.device == "cuda" else "cpu"
        stem = f"voxcpm-{shapes}-{device}" + ("-compile" if self.plan.compile else "")
        result.files += [f"{stem}.{suffix}" for suffix in ("md", "json") if (self.out / f"{stem}.{suffix}").exists()]
        figures = self.out / f"{stem}.json"
        if figures.exists():
            measured = [r["B"] for r in json.loads(figures.read_text())["results"]]
            missing = [b for b in sizes if b not in measured]
            result.detail = (f"batch sizes measured: {measured}" + (f", not measured: {missing}" if missing else "")
                             + (f"; {result.detail}" if result.detail else ""))
        self.write_summary()

    def load(self) -> None:
        limit = self.limit("load")
        if limit < 5:
            self.record(StepResult("load", "skipped", 0.0, "no time left in the budget"))
            return
        script = [
            sys.executable, "benchmarks/gpu_load_run.py", "--model-dir", str(self.model_dir), "--device", self.plan.device,
            "--max-batch-size", str(max(self.plan.sizes)), "--clients", str(self.plan.load_clients),
            "--duration", str(self.plan.load_seconds), "--compile-cache-dir", str(self.compile_cache), "--out", str(self.out),
            "--compile", "on" if self.plan.compile else "off",
        ]
        if self.plan.threads:
            script += ["--threads", str(self.plan.threads)]
        result = self.run("load", script, "load.log")
        result.files += [n for n in ("load.json", "metrics.txt", "load-server.log") if (self.out / n).exists()]
        summary = self.out / "load.json"
        if summary.exists():
            figures = json.loads(summary.read_text())
            result.detail = (f"{figures.get('ok', 0)} of {figures.get('sent', 0)} requests ok, "
                             f"{figures.get('audio_s_per_s', 0):.1f} audio s per s" + (f"; {result.detail}" if result.detail else ""))
        self.write_summary()

    # -- the summary --------------------------------------------------------------------------

    def write_summary(self) -> None:
        mode = "dry run on the CPU at tiny shapes" if self.dry_run else "on the GPU at the full 1.5 shapes"
        if self.dry_run and not self.plan.compile:
            mode += ", eager only (--compile rehearses compiling too)"
        lines = [f"# GPU check ({mode})", "", f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
                 "| step | status | seconds | files | detail |", "|---|---|---|---|---|"]
        for r in self.results:
            detail = r.detail.replace("\n", " / ").replace("|", "\\|")[:400]
            lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {', '.join(r.files)} | {detail} |")
        cut = self.cut_short()
        lines += ["", "Cut short: " + ("; ".join(f"**{r.name}** ({r.status}: {r.detail.splitlines()[0] if r.detail else ''})" for r in cut)
                                      if cut else "none (every step that ran, ran to its end).")]
        (self.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        payload = {"dry_run": self.dry_run, "passed": self.passed(), "cut_short": [r.name for r in cut],
                   "steps": [asdict(r) for r in self.results]}
        (self.out / "summary.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")

    def cut_short(self) -> list[StepResult]:
        """Steps stopped at a time limit or never started for want of time."""
        return [r for r in self.results if r.status in ("timed out", "skipped") and ("limit" in r.detail or "budget" in r.detail)]

    def passed(self) -> bool:
        return bool(self.results) and all(r.status == "ok" for r in self.results)

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    """Stop a step's process group (a step may have started a server)."""
    import signal

    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _capture(args: list[str], env: dict | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
        return f"$ {' '.join(args[:2])}\n{done.stdout}{done.stderr}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"$ {' '.join(args[:2])}\nfailed: {error}"


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _junit_counts(path: Path) -> dict[str, int] | None:
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny shapes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--compile", action="store_true", help="dry run: compile on the CPU too (slow; a GPU run always compiles)")
    parser.add_argument("--budget-s", type=float, default=None, help="whole run's time limit (default 470 s; dry run 420 s): "
                        "the steps' own limits add up to it, so a smaller one cuts the later steps short")
    args = parser.parse_args(argv)
    plan = Plan.for_run(args.dry_run, compile_on_cpu=args.compile)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, plan, args.budget_s or plan.budget_s, args.dry_run)
    try:
        check.environment()
        have_checkpoint = check.checkpoint().status == "ok"
        check.cuda_tests()  # makes its own small models
        if have_checkpoint:
            check.throughput()
        else:
            check.record(StepResult("throughput", "skipped", 0.0, "no checkpoint (see checkpoint.log)"))
        check.throughput("throughput-v2", plan.v2_shapes, plan.v2_sizes)  # writes its own checkpoint
        if have_checkpoint:
            check.load()
        else:
            check.record(StepResult("load", "skipped", 0.0, "no checkpoint (see checkpoint.log)"))
    finally:
        check.write_summary()
        check.cleanup()
    print((out / "summary.md").read_text())
    return 0 if check.passed() else 1


if __name__ == "__main__":
    sys.exit(main())
