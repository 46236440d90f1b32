"""Builds the engine a Settings object names, refusing with a clear StartupError a model folder
of the wrong kind or a device that is not there."""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings, StartupError
from .base import Engine

VOXCPM_FILES = "config.json, model.safetensors, audiovae.safetensors, tokenizer.json"


def create_engine(settings: Settings) -> Engine:
    _check_device(settings)
    if settings.engine == "piper":
        from .piper_engine import PiperEngine

        model = _piper_model(settings.model_dir) if settings.model_dir else None
        return PiperEngine(
            model_path=model, use_cuda=settings.device == "cuda", batch_mode=settings.piper_batch_mode, workers=settings.workers,
        )
    if settings.engine == "voxcpm":
        folder = settings.model_dir
        if not (folder / "config.json").is_file():
            hint = "; it holds a Piper voice: serve it with --engine piper" if (folder / "model.onnx").is_file() else ""
            raise StartupError(
                f"--model-dir {folder} has no config.json, so it is not a VoxCPM checkpoint (expected {VOXCPM_FILES}); "
                f"fetch one with `voxbatch download-model --dir DIR`{hint}"
            )
        from .voxcpm.engine import VoxCPMEngine

        from .voxcpm.compiled import CompileFailed

        try:
            return VoxCPMEngine(
                folder, device=settings.device, dtype=None if settings.dtype == "auto" else settings.dtype,
                compile=settings.compile, compile_max_rows=settings.max_batch_size,
                compile_cache_dir=Path(settings.compile_cache_dir).expanduser(),
            )
        except CompileFailed as exc:
            raise StartupError(f"{exc}; serve with --compile auto or off to run eager") from exc
        except (OSError, KeyError, ValueError) as exc:
            raise StartupError(f"cannot load the VoxCPM checkpoint in {folder}: {exc}") from exc
    raise ValueError(f"unknown engine {settings.engine!r}")


def _piper_model(folder: Path) -> Path:
    model = folder / "model.onnx"
    if model.is_file() and Path(f"{model}.json").is_file():
        return model
    hint = "; it holds a VoxCPM checkpoint: serve it with --engine voxcpm" if (folder / "config.json").is_file() else ""
    raise StartupError(f"--model-dir {folder} has no model.onnx and model.onnx.json, which --engine piper needs{hint}")


def _check_device(settings: Settings) -> None:
    if settings.device != "cuda":
        return
    if settings.engine == "voxcpm":
        import torch

        available = torch.cuda.is_available()
    else:
        import onnxruntime

        available = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if not available:
        raise StartupError(
            f"--device cuda, but the {settings.engine} engine finds no CUDA device here "
            "(no GPU, or a CPU-only build installed); use --device cpu, or auto to pick what is there"
        )
