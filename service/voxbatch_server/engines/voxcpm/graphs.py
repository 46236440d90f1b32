"""The whole decode step captured in CUDA graphs, one per row bucket and cache capacity.

On a GPU a decode step launches hundreds of small kernels from Python (nine LocDiT calls over
every layer, the LocEnc, both LMs); replaying a captured graph launches them in one call.
`step.whole_step` reads and writes only tensors at fixed addresses: a batch's slot tensors,
which the slot pool hands from batch to batch (so a graph captured for one batch serves every
later batch of its bucket and capacity), and the graph's own input buffers for the live mask,
the noise, the temperatures and the guidance values, into which each step copies its values.

Capture needs no compiler: the eager kernels are recorded, which takes a fraction of a second
per bucket (nano-vllm-voxcpm captures its decode step the same way). A graph is captured with
every slot masked, so the warm-up runs it needs before capture change nothing in the batch (a
masked slot neither advances nor keeps its outputs); this lets a running batch that moves to a
capacity not seen before capture its graph between two steps. All graphs share one memory pool:
they never run at the same time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import torch

from .model import VoxCPMNetwork
from .running import SlotTensors
from .step import whole_step

WARMUP_RUNS = 2  # eager runs on a side stream before capture (cuBLAS and allocator set-up)
log = logging.getLogger(__name__)


class CaptureFailed(RuntimeError):
    """Capturing the step for a new set of slot tensors failed while serving. The warm-up and
    capture runs see every slot masked, so the batch is unchanged: its step runs eager."""


@dataclass
class _Graph:
    tensors: SlotTensors  # the slot tensors it reads and writes
    graph: torch.cuda.CUDAGraph
    live: torch.Tensor
    noise: torch.Tensor
    temperature: torch.Tensor
    cfg: torch.Tensor
    new: torch.Tensor  # outputs, overwritten by each replay
    stop: torch.Tensor


class CapturedGraphs:
    """CUDA graphs of the whole step for one network, captured on first use per set of slot
    tensors (which the slot pool keeps for good) and solver step count; `captures` counts them.
    Batches running at once (several workers) each have their own set, hence their own graph;
    the lock keeps one thread's capture apart from another's replay."""

    def __init__(self, net: VoxCPMNetwork) -> None:
        self.net = net
        self.memory = torch.cuda.graph_pool_handle()
        self.captures = 0
        self._graphs: dict[tuple[int, int], _Graph] = {}
        self._failed: set[tuple[int, int]] = set()  # captured once and failed: eager from then on
        self._lock = threading.Lock()

    def __call__(self, tensors: SlotTensors, live, noise, temperature, cfg, steps: int):
        """Replay the graph of `tensors` (capturing it first if need be); returns copies of the
        patches (S, P, D) and stop decisions (S,)."""
        with self._lock:
            key = (id(tensors), steps)  # the entry holds `tensors`, so the id stays theirs
            if key in self._failed:
                raise CaptureFailed("this batch's step could not be captured earlier")
            entry = self._graphs.get(key)
            if entry is None:
                try:
                    entry = self._graphs[key] = self._capture(tensors, steps)
                except Exception as exc:  # e.g. out of memory for a larger capacity's graph
                    self._failed.add(key)
                    log.warning(
                        "capturing the decode step for %d slots x %d positions failed (%s: %s); "
                        "batches of that shape run eager", tensors.lm.slots, tensors.lm.capacity,
                        type(exc).__name__, exc,
                    )
                    raise CaptureFailed(str(exc)) from exc
            entry.live.copy_(live)
            entry.noise.copy_(noise)
            entry.temperature.copy_(temperature)
            entry.cfg.copy_(cfg)
            entry.graph.replay()
            return entry.new.clone(), entry.stop.clone()

    def _capture(self, tensors: SlotTensors, steps: int) -> _Graph:
        slots = tensors.lm.slots
        condition = tensors.condition
        live = torch.zeros(slots, dtype=torch.bool, device=condition.device)  # every slot masked
        noise = torch.zeros(slots, condition.shape[2], condition.shape[1], dtype=condition.dtype, device=condition.device)
        temperature = torch.ones(slots, dtype=torch.float32, device=condition.device)
        cfg = torch.ones_like(temperature)

        def run():
            return whole_step(
                self.net, steps, live, tensors.lm.k, tensors.lm.v, tensors.res.k, tensors.res.v, tensors.lm.lengths,
                tensors.lm_hidden, tensors.res_hidden, condition, noise, temperature, cfg,
            )

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: another worker's eager kernels meanwhile do not break this capture.
        with torch.cuda.graph(graph, pool=self.memory, capture_error_mode="thread_local"):
            new, stop = run()
        self.captures += 1
        return _Graph(tensors, graph, live, noise, temperature, cfg, new, stop)
