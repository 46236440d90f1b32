"""The whole VoxCPM decode step made fast per row bucket: the captured path.

A step (step.whole_step) runs the LocDiT solver with guidance, the stop head, the LocEnc over
the new patch and both LMs one position further, for every slot of a running batch's bucket, on
the batch's slot tensors (fixed-capacity caches, per-slot lengths, a mask of live slots) and a
noise buffer each row's own generator fills outside. Nothing in it reads back to the host, so:

- on a GPU it is captured in a CUDA graph per bucket and cache capacity (graphs.py): one launch
  per patch instead of hundreds of kernels from Python. Capture records the eager kernels, so
  start-up takes seconds and needs no compiler;
- on a CPU inductor compiles it (fused small operators). Rows and capacity are dynamic
  dimensions, so one compile (two: a bucket of one row is specialised) serves every bucket.

The slot tensors are updated in place. Finished batches hand them to the step's pool and the
next batch of the same bucket and capacity takes them, so a graph keeps reading and writing
the same memory. The solver's step count is fixed per graph or program: start-up prepares the
default (10); a batch with another count runs the eager step rather than making a request wait.
The VAE decode stays outside (eager).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch._inductor.runtime.cache_dir_utils import default_cache_dir

from .graphs import CapturedGraphs
from .model import VoxCPMNetwork
from .running import RunningBatch, SlotPool
from .slots import MIN_CAPACITY, row_buckets
from .step import whole_step

log = logging.getLogger(__name__)

COMPILE_MODES = ("auto", "on", "off")
DEFAULT_STEPS = 10  # the engine's default inference_steps


class CompileFailed(RuntimeError):
    """`--compile on` and compiling failed: the server does not start."""


def compile_wanted(mode: str, device: str) -> bool:
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, not {mode!r}")
    return mode == "on" or (mode == "auto" and device.startswith("cuda"))


def decode_step_mode(step: CompiledStep | None, mode: str, device: str) -> str:
    """What server info and metrics report: the compiled kind, or eager, or eager because
    compiling was wanted and failed (a slower server than the operator expects)."""
    if step is not None:
        return step.mode
    return "eager-fallback" if compile_wanted(mode, device) else "eager"


def use_cache_dir(cache_dir: Path, fresh: bool = False) -> None:
    """Keep inductor's and Triton's compiled code in `cache_dir`, which outlives the process.
    A TRITON_CACHE_DIR set by the operator is kept, except when moving to a `fresh` folder
    (the old Triton cache may be as broken as inductor's)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)
    if fresh:
        os.environ["TRITON_CACHE_DIR"] = str(cache_dir / "triton")
    else:
        os.environ.setdefault("TRITON_CACHE_DIR", str(cache_dir / "triton"))


# Names the subfolder of the cache dir that start-up compiles into after a broken cache was
# left behind, so that later restarts reuse it instead of failing on the broken one again.
ACTIVE_FILE = "ACTIVE"


def active_cache_dir(cache_dir: Path) -> Path:
    """The folder start-up compiles into: `cache_dir`, or the fresh subfolder a retry made."""
    try:
        name = (cache_dir / ACTIVE_FILE).read_text().strip()
    except OSError:
        return cache_dir
    folder = cache_dir / name
    return folder if name and "/" not in name and folder.is_dir() else cache_dir


def fresh_cache_dir(cache_dir: Path) -> Path:
    """A new, empty subfolder of `cache_dir` (unique per attempt, so two servers sharing the
    cache never write into one another's half-finished files)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = cache_dir / f"fresh-{stamp}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def _mark_active(cache_dir: Path, folder: Path) -> None:
    temporary = cache_dir / f".{ACTIVE_FILE}.{os.getpid()}"
    temporary.write_text(folder.name + "\n")
    temporary.replace(cache_dir / ACTIVE_FILE)  # atomic: a concurrent start reads old or new, never half


def _forget_compiled_code() -> None:
    """Drop what this process compiled or loaded, so a retry starts clean in its new folder."""
    from torch._inductor.utils import clear_caches

    torch._dynamo.reset()
    clear_caches()


class _WholeStep(nn.Module):
    """step.whole_step as a module, so the network's parameters are the graph's parameters."""

    def __init__(self, net: VoxCPMNetwork, steps: int) -> None:
        super().__init__()
        self.net = net
        self.steps = steps

    def forward(self, *tensors: torch.Tensor):
        return whole_step(self.net, self.steps, *tensors)


class CompiledStep:
    """The whole step of one network made fast, for batches in `buckets` running `steps` solver
    steps: CUDA graphs on a GPU, inductor on a CPU. `calls` counts the steps it ran (tests
    check the path was taken)."""

    def __init__(self, net: VoxCPMNetwork, buckets: tuple[int, ...], steps: tuple[int, ...], cuda: bool) -> None:
        self.buckets = buckets
        self.steps = steps
        self.mode = "cuda-graphs" if cuda else "inductor"
        self.calls = 0
        self.warmup_s = 0.0
        self.pool = SlotPool()  # the slot tensors of finished batches, for the next ones
        self.graphs = CapturedGraphs(net) if cuda else None
        self._compiled = {} if cuda else {
            # Rows and capacity are dynamic: one program serves every bucket (a bucket of one row
            # is specialised) and every capacity.
            n: torch.compile(_WholeStep(net, n), dynamic=True, fullgraph=True) for n in steps
        }

    def covers(self, slots: int, steps: int) -> bool:
        """Whether a batch of `slots` slots running `steps` solver steps finds its code ready
        (any other slot count or step count would compile while a request waits)."""
        return steps in self.steps and slots in self.buckets

    def batch_buckets(self, max_rows: int) -> tuple[int, ...]:
        """The buckets a batch of up to `max_rows` rows moves between: the compiled ones, and
        `max_rows` itself past them (that bucket runs eager)."""
        return self.buckets if max_rows <= self.buckets[-1] else (*self.buckets, max_rows)

    def __call__(self, batch, live: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor, cfg: torch.Tensor, steps: int):
        """One step of every slot of `batch` (a RunningBatch); returns (patches, stop) per slot."""
        self.calls += 1
        if self.graphs is not None:
            return self.graphs(batch.tensors, live, noise, temperature, cfg, steps)
        lm, res = batch.lm, batch.res
        return self._compiled[steps](
            live, lm.k, lm.v, res.k, res.v, lm.lengths, batch.lm_hidden, batch.res_hidden, batch.condition,
            noise, temperature, cfg,
        )


def compile_decode_step(
    net: VoxCPMNetwork, device: str, max_rows: int, progress: Callable[[str], None] = log.info,
    buckets: tuple[int, ...] | None = None, steps: tuple[int, ...] = (DEFAULT_STEPS,),
) -> CompiledStep:
    """Compile (CPU) or capture (GPU) the whole step for every row bucket up to `max_rows` (or
    the given `buckets`) by running each once, so that the first request finds everything
    ready; installs it on `net`. A GPU captures the largest bucket first: the graphs share one
    memory pool, which the largest sizes."""
    cuda = device.startswith("cuda")
    buckets = buckets or row_buckets(max_rows)
    limit = len(buckets) * len(steps) * 2 + 8
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), limit))
    step = CompiledStep(net, buckets, steps, cuda)
    cfg = net.config
    started = time.perf_counter()
    with torch.inference_mode():
        for i, bucket in enumerate(sorted(buckets, reverse=cuda), 1):
            t0 = time.perf_counter()
            batch = RunningBatch(net, buckets, step.pool)
            batch.fit(bucket, MIN_CAPACITY)
            like = {"device": batch.device}
            live = torch.ones(bucket, dtype=torch.bool, **like)
            noise = torch.randn(bucket, cfg.feat_dim, cfg.patch_size, dtype=batch.dtype, **like)
            ones = torch.ones(bucket, dtype=torch.float32, **like)
            for n in steps:
                step(batch, live, noise, ones, 2 * ones, n)
            batch.close()  # its tensors, and on a GPU their graph, wait in the pool for the first batch
            if cuda:
                torch.cuda.synchronize()
            progress(
                f"{'captured' if cuda else 'compiled'} the decode step for {bucket} row{'s' if bucket > 1 else ''} "
                f"(bucket {i} of {len(buckets)}, {time.perf_counter() - t0:.1f} s)"
            )
    step.warmup_s = time.perf_counter() - started
    step.calls = 0
    net.compiled_step = step
    return step


def prepare_decode_step(
    net: VoxCPMNetwork, device: str, mode: str, max_rows: int, cache_dir: Path | None,
    steps: tuple[int, ...] = (DEFAULT_STEPS,),
) -> CompiledStep | None:
    """The engine's start-up: compile when `mode` asks for it (auto: with CUDA). A failure is
    retried once in a fresh cache folder: a process killed mid-compile leaves truncated files in
    the cache (`main.so: file too short`) that would otherwise fail every later start. Then, with
    `on`, a failure stops the start-up; with `auto` the engine logs it and serves eager."""
    if not compile_wanted(mode, device):
        return None
    if cache_dir is not None:
        use_cache_dir(active_cache_dir(cache_dir))
    in_use = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_cache_dir())
    log.info("compiling the VoxCPM decode step for up to %d rows (--compile %s); cache in %s", max_rows, mode, in_use)
    try:
        try:
            compiled = compile_decode_step(net, device, max_rows, steps=steps)
        except Exception as error:
            net.compiled_step = None
            fresh = fresh_cache_dir(cache_dir if cache_dir is not None else in_use)
            log.warning(
                "compiling the decode step failed with the compile cache in %s (%s: %s); it may hold files "
                "half-written by a process stopped mid-compile: retrying once in a fresh cache folder %s "
                "(to reclaim the space, stop the servers sharing the cache and delete it)", in_use, type(error).__name__, error, fresh,
            )
            _forget_compiled_code()
            use_cache_dir(fresh, fresh=True)
            try:
                compiled = compile_decode_step(net, device, max_rows, steps=steps)
            except Exception:
                shutil.rmtree(fresh, ignore_errors=True)  # no one else writes there; failed starts leave no litter
                raise
            if cache_dir is not None:
                _mark_active(cache_dir, fresh)
    except Exception as error:
        net.compiled_step = None
        if mode == "on":
            raise CompileFailed(f"--compile on: compiling the decode step failed: {error}") from error
        log.warning("compiling the decode step failed, serving eager instead (--compile off hides this): %s", error)
        return None
    log.info("decode step compiled (%s) for row buckets %s in %.1f s", compiled.mode, list(compiled.buckets), compiled.warmup_s)
    return compiled
