"""Builds the engine a Settings object names."""

from __future__ import annotations

from ..settings import Settings
from .base import Engine


def create_engine(settings: Settings) -> Engine:
    if settings.engine == "piper":
        from .piper_engine import PiperEngine

        model = settings.model_dir / "model.onnx" if settings.model_dir else None
        return PiperEngine(model_path=model, use_cuda=settings.device == "cuda", batch_mode=settings.piper_batch_mode)
    if settings.engine == "voxcpm":
        from .voxcpm.engine import VoxCPMEngine

        return VoxCPMEngine(settings.model_dir, device=settings.device, dtype=None if settings.dtype == "auto" else settings.dtype)
    raise ValueError(f"unknown engine {settings.engine!r}")
