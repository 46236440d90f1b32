"""Loads an official VoxCPM checkpoint folder with strict key matching."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import VoxCPMConfig
from .minicpm import LongRoPE
from .model import VoxCPMNetwork
from .tokenizer import TextTokenizer

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CheckpointError(RuntimeError):
    """The folder is not a loadable VoxCPM checkpoint; the message says what is wrong."""


@dataclass
class LoadedModel:
    network: VoxCPMNetwork
    tokenizer: TextTokenizer
    config: VoxCPMConfig
    device: torch.device
    dtype: torch.dtype


def _read_weights(folder: Path, names: tuple[str, str]) -> dict[str, torch.Tensor]:
    safetensors_path, torch_path = folder / names[0], folder / names[1]
    if safetensors_path.exists():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path), device="cpu")
    if torch_path.exists():
        checkpoint = torch.load(torch_path, map_location="cpu", weights_only=True)
        return checkpoint.get("state_dict", checkpoint)
    raise CheckpointError(f"{folder} has neither {names[0]} nor {names[1]}")


def _names(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_checkpoint(folder: Path, device: str = "cpu", dtype: str | None = None) -> LoadedModel:
    """Build the network from config.json and load model + VAE weights into it.

    Every key of the network must be in the checkpoint and every checkpoint key must be used;
    otherwise CheckpointError names the keys. The VAE stays in float32, as upstream keeps it.
    """
    folder = Path(folder)
    config = VoxCPMConfig.from_file(folder / "config.json")
    if not (folder / "tokenizer.json").exists():
        raise CheckpointError(f"{folder} has no tokenizer.json")
    tokenizer = TextTokenizer(folder / "tokenizer.json")
    state = dict(_read_weights(folder, ("model.safetensors", "pytorch_model.bin")))
    for key, value in _read_weights(folder, ("audiovae.safetensors", "audiovae.pth")).items():
        state[f"audio_vae.{key}"] = value
    _check_rate_boundaries(folder, config, state.pop(RATE_BOUNDARIES_KEY, None))

    with torch.device("meta"):
        network = VoxCPMNetwork(config)
    expected = set(network.state_dict().keys())
    missing, unexpected = expected - state.keys(), state.keys() - expected
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys ({len(missing)}): {_names(missing)}")
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {_names(unexpected)}")
        raise CheckpointError(f"{folder} does not match the VoxCPM layout: " + "; ".join(problems))
    shapes = {k: v.shape for k, v in network.state_dict().items()}
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(s)}" for k, s in shapes.items() if state[k].shape != s]
    if wrong:
        raise CheckpointError(f"{folder}: tensors with the wrong shape for config.json: {_names(wrong, 6)}")
    network.load_state_dict(state, strict=True, assign=True)
    _rebuild_buffers(network)

    torch_dtype = DTYPES[dtype or ("bfloat16" if device.startswith("cuda") else "float32")]
    network = network.to(device=device, dtype=torch_dtype)
    network.audio_vae.float()
    network.eval()
    log.info("loaded %s from %s: %s on %s", config.architecture, folder, torch_dtype, device)
    return LoadedModel(network, tokenizer, config, torch.device(device), torch_dtype)


# AudioVAE V2's decoder saves its rate-bucket boundaries as a buffer; the official loader is not
# strict, so published checkpoints may lack it. We take them from the config and only check a
# saved copy against it.
RATE_BOUNDARIES_KEY = "audio_vae.decoder.sr_bin_boundaries"


def _check_rate_boundaries(folder: Path, config: VoxCPMConfig, saved: torch.Tensor | None) -> None:
    if saved is None:
        return
    expected = config.audio_vae_config.sr_bin_boundaries
    if expected is None:
        raise CheckpointError(f"{folder}: unexpected key {RATE_BOUNDARIES_KEY} (config.json's audio VAE has no rate buckets)")
    if [int(v) for v in saved.flatten().tolist()] != [int(v) for v in expected]:
        raise CheckpointError(
            f"{folder}: {RATE_BOUNDARIES_KEY} is {saved.tolist()}, config.json says sr_bin_boundaries {expected}"
        )


def _rebuild_buffers(network: VoxCPMNetwork) -> None:
    """Non-persistent buffers (rotary tables) were made on the meta device; compute them."""
    for module in network.modules():
        if isinstance(module, LongRoPE):
            fresh = LongRoPE(module.config)
            module.cos_cached, module.sin_cached = fresh.cos_cached, fresh.sin_cached
