"""torch.compile for the parts of the VoxCPM decode step whose shapes are already static.

Each generated patch runs the LocDiT estimator once per solver step over both guidance branches
(ten calls per patch by default) and the LocEnc over the new patch. Both see only the batch's
row count as a varying shape, so padding the rows up to a bucket (1, 2, 4, ... rows) makes their
shapes static per bucket: on a GPU `mode="reduce-overhead"` captures each bucket in a CUDA graph
(one launch instead of hundreds of small kernels), on a CPU inductor fuses the small operators.
Rows are independent in both modules (attention runs within a row), so padding never changes a
real row's result. The language models' decode steps keep their growing KV caches and stay
eager: capturing them needs fixed-capacity caches, which are not part of this module.

The wrappers replace the modules' `forward` on the loaded network only; the model code is not
touched. `compile_decode_step` compiles every bucket up to the batcher's max batch size at
start-up (progress logged), so no request pays for compilation, and keeps inductor's caches in
`cache_dir` so that a restart compiles from the cache.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .model import VoxCPMNetwork

log = logging.getLogger(__name__)

COMPILE_MODES = ("auto", "on", "off")


class CompileFailed(RuntimeError):
    """`--compile on` and compiling failed: the server does not start."""


def row_buckets(max_rows: int) -> tuple[int, ...]:
    """Powers of two up to the first that holds `max_rows`."""
    buckets = [1]
    while buckets[-1] < max_rows:
        buckets.append(buckets[-1] * 2)
    return tuple(buckets)


def compile_wanted(mode: str, device: str) -> bool:
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, not {mode!r}")
    return mode == "on" or (mode == "auto" and device.startswith("cuda"))


def use_cache_dir(cache_dir: Path) -> None:
    """Keep inductor's and Triton's compiled code in `cache_dir`, which outlives the process."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)
    os.environ.setdefault("TRITON_CACHE_DIR", str(cache_dir / "triton"))


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """`x` with zero rows appended up to `rows`, in a plain contiguous layout: the compiled code
    is specialised to its inputs' strides, and callers pass transposed or expanded views."""
    extra = rows - x.shape[0]
    if extra:
        return F.pad(x, (0, 0) * (x.dim() - 1) + (0, extra))
    strides, step = [], 1
    for size in reversed(x.shape):
        strides.append(step)
        step *= size
    return x if x.stride() == tuple(reversed(strides)) else x.clone(memory_format=torch.contiguous_format)


class BucketedForward:
    """Calls a compiled `forward` with every tensor argument's rows padded to a bucket.

    `rows_per_item` is how many leading rows one batch row contributes (2 for the estimator,
    which sees both guidance branches). Calls outside the buckets, or that `static` rejects
    (the LocEnc over a whole prompt at prefill), run the eager forward.
    """

    def __init__(
        self, eager: Callable, compiled: Callable, buckets: tuple[int, ...], rows_per_item: int, cuda_graphs: bool,
        static: Callable[..., bool] = lambda *args: True,
    ) -> None:
        self.eager = eager
        self.compiled = compiled
        self.buckets = buckets
        self.rows_per_item = rows_per_item
        self.cuda_graphs = cuda_graphs
        self.static = static
        self.compiled_calls = 0

    def bucket(self, rows: int) -> int | None:
        items = -(-rows // self.rows_per_item)
        return next((b * self.rows_per_item for b in self.buckets if b >= items), None)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        rows = args[0].shape[0]
        bucket = self.bucket(rows)
        if bucket is None or not self.static(*args):
            return self.eager(*args)
        # Rows are independent, so the padding rows can simply follow the real ones.
        out = self._run(tuple(_pad_rows(a, bucket) for a in args))
        return out[:rows].clone()

    def _run(self, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.cuda_graphs:
            # A captured graph's outputs live in its pool and the next replay overwrites them:
            # every call is a new step, and callers get a copy (see __call__).
            torch.compiler.cudagraph_mark_step_begin()
        self.compiled_calls += 1
        return self.compiled(*args)


@dataclass
class CompiledDecodeStep:
    """What `compile_decode_step` set up, for logs and server info."""

    buckets: tuple[int, ...]
    mode: str
    warmup_s: float = 0.0
    parts: list[str] = field(default_factory=list)


def compile_decode_step(
    net: VoxCPMNetwork, device: str, max_rows: int, progress: Callable[[str], None] = log.info,
    buckets: tuple[int, ...] | None = None,
) -> CompiledDecodeStep:
    """Compile the LocDiT estimator and the decode-step LocEnc for every row bucket up to
    `max_rows` (or the given `buckets`), and run each bucket once (three times on a GPU, where
    the graph is captured on a later call) so that the first request finds everything ready."""
    cuda = device.startswith("cuda")
    mode = "reduce-overhead" if cuda else "default"
    buckets = buckets or row_buckets(max_rows)
    limit = len(buckets) * 2 + 8
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), limit))
    estimator = net.feat_decoder.estimator
    encoder = net.feat_encoder
    _wrap(estimator, buckets, rows_per_item=2, cuda_graphs=cuda, mode=mode)
    # Only the decode step's one-patch-per-row calls have static shapes; prefill's do not.
    _wrap(encoder, buckets, rows_per_item=1, cuda_graphs=cuda, mode=mode, static=lambda x: x.shape[1] == 1)
    result = CompiledDecodeStep(buckets, mode, parts=["LocDiT estimator", "LocEnc (decode step)"])
    param = next(estimator.parameters())
    cfg = net.config
    started = time.perf_counter()
    with torch.inference_mode():
        for i, bucket in enumerate(buckets, 1):
            t0 = time.perf_counter()
            rows = 2 * bucket
            like = {"device": param.device, "dtype": param.dtype}
            x = torch.randn(rows, cfg.feat_dim, cfg.patch_size, **like)
            cond = torch.randn(rows, cfg.feat_dim, cfg.patch_size, **like)  # not x: aliasing is guarded too
            # The DiT condition as the network builds it (its width differs between 1.5 and 2).
            hidden = torch.randn(rows, cfg.lm_config.hidden_size, **like)
            mu = net.dit_condition(hidden, hidden)
            t = torch.full((rows,), 0.5, **like)
            patch = torch.randn(bucket, 1, cfg.patch_size, cfg.feat_dim, **like)
            for _ in range(3 if cuda else 1):
                estimator(x, mu, t, cond, torch.zeros_like(t))
                encoder(patch)
            if cuda:
                torch.cuda.synchronize()
            progress(
                f"compiled the decode step for {bucket} row{'s' if bucket > 1 else ''} "
                f"(bucket {i} of {len(buckets)}, {time.perf_counter() - t0:.1f} s)"
            )
    result.warmup_s = time.perf_counter() - started
    return result


def _wrap(module: nn.Module, buckets, *, rows_per_item: int, cuda_graphs: bool, mode: str, static=None) -> None:
    eager = module.forward
    # dynamic=None: the first bucket compiles static, the second recompiles with the row count
    # symbolic, and every later bucket reuses that code, so start-up compiles twice whatever
    # the max batch size. CUDA graphs are still recorded per bucket (static shapes).
    compiled = torch.compile(eager, mode=mode, dynamic=None, fullgraph=True)
    extra = {} if static is None else {"static": static}
    # An instance attribute shadows the class's forward: nn.Module.__call__ finds the wrapper.
    module.forward = BucketedForward(eager, compiled, buckets, rows_per_item, cuda_graphs, **extra)


def restore_eager(net: VoxCPMNetwork) -> None:
    for module in (net.feat_decoder.estimator, net.feat_encoder):
        if isinstance(module.__dict__.get("forward"), BucketedForward):
            del module.forward


def prepare_decode_step(
    net: VoxCPMNetwork, device: str, mode: str, max_rows: int, cache_dir: Path | None
) -> CompiledDecodeStep | None:
    """The engine's start-up: compile when `mode` asks for it (auto: with CUDA). With `on`, a
    failure stops the start-up; with `auto` the engine logs it and serves eager."""
    if not compile_wanted(mode, device):
        return None
    if cache_dir is not None:
        use_cache_dir(cache_dir)
    log.info("compiling the VoxCPM decode step for up to %d rows (--compile %s); cache in %s", max_rows, mode,
             os.environ.get("TORCHINDUCTOR_CACHE_DIR", "torch's default"))
    try:
        compiled = compile_decode_step(net, device, max_rows)
    except Exception as error:
        restore_eager(net)
        if mode == "on":
            raise CompileFailed(f"--compile on: compiling the decode step failed: {error}") from error
        log.warning("compiling the decode step failed, serving eager instead (--compile off hides this): %s", error)
        return None
    log.info("decode step compiled (%s) for row buckets %s in %.1f s", compiled.mode, list(compiled.buckets), compiled.warmup_s)
    return compiled
