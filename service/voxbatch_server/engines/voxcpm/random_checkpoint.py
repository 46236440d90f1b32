"""Writes a randomly initialised VoxCPM checkpoint in the official on-disk layout.

Used by the tests (a tiny model) and the benchmarks (mid-size or full 1.5 shapes: random
weights cost the same compute as trained ones). Values come from one seeded generator walking
the sorted keys, so the same shapes always give the same weights.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from .config import VoxCPMConfig
from .model import VoxCPMNetwork

TINY: dict[str, Any] = {
    "architecture": "voxcpm",
    "lm_config": {
        "bos_token_id": 1, "eos_token_id": 2, "hidden_size": 64, "intermediate_size": 128,
        "max_position_embeddings": 2048, "num_attention_heads": 4, "num_hidden_layers": 2,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_scaling": {"type": "longrope", "long_factor": [1.0] * 8, "short_factor": [1.0] * 8,
                         "original_max_position_embeddings": 2048},
        "vocab_size": 512, "use_mup": False, "scale_emb": 12, "dim_model_base": 256, "scale_depth": 1.4,
    },
    "patch_size": 4,
    "feat_dim": 16,
    "residual_lm_num_layers": 1,
    "scalar_quantization_latent_dim": 32,
    "scalar_quantization_scale": 9,
    "encoder_config": {"hidden_dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 1},
    "dit_config": {"hidden_dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 1,
                   "cfm_config": {"sigma_min": 1e-6, "solver": "euler", "t_scheduler": "log-norm", "inference_cfg_rate": 2.0}},
    "audio_vae_config": {"encoder_dim": 4, "encoder_rates": [2, 3, 6, 7, 7], "latent_dim": 16, "decoder_dim": 64,
                         "decoder_rates": [7, 7, 6, 3, 2], "depthwise": True, "sample_rate": 44100, "use_noise_block": False},
    "max_length": 4096,
    "dtype": "float32",
}

# The VoxCPM-1.5 shapes (about 800 M parameters), for benchmarks on a GPU.
VOXCPM_1_5: dict[str, Any] = copy.deepcopy(TINY)
VOXCPM_1_5["lm_config"].update(
    hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, num_key_value_heads=2,
    vocab_size=73448, max_position_embeddings=32768,
    rope_scaling={"type": "longrope", "long_factor": [1.0] * 32, "short_factor": [1.0] * 32,
                  "original_max_position_embeddings": 32768},
)
VOXCPM_1_5.update(feat_dim=64, residual_lm_num_layers=8, scalar_quantization_latent_dim=256, dtype="bfloat16")
VOXCPM_1_5["encoder_config"] = {"hidden_dim": 1024, "ffn_dim": 4096, "num_heads": 16, "num_layers": 8}
VOXCPM_1_5["dit_config"].update(hidden_dim=1024, ffn_dim=4096, num_heads=16, num_layers=8)
VOXCPM_1_5["audio_vae_config"].update(encoder_dim=128, latent_dim=64, decoder_dim=2048)


# A tiny VoxCPM2: 16 kHz in, 48 kHz out (encoder hop 640, decoder hop 1920, as the real one),
# rate-conditioned decoder, residual LM without rotary embedding, concatenating fusion.
TINY_V2: dict[str, Any] = copy.deepcopy(TINY)
TINY_V2.update(architecture="voxcpm2", residual_lm_no_rope=True, max_length=8192)
TINY_V2["dit_config"]["dit_mean_mode"] = False
TINY_V2["audio_vae_config"] = {
    "encoder_dim": 4, "encoder_rates": [2, 5, 8, 8], "latent_dim": 16, "decoder_dim": 64,
    "decoder_rates": [8, 6, 5, 2, 2, 2], "depthwise": True, "sample_rate": 16000, "out_sample_rate": 48000,
    "use_noise_block": False, "sr_bin_boundaries": [20000, 30000, 40000], "cond_type": "scale_bias",
    "cond_dim": 128, "cond_out_layer": False,
}

# The VoxCPM2 shapes (about 2 B parameters), for benchmarks on a GPU (`--shapes 2`).
VOXCPM_2: dict[str, Any] = copy.deepcopy(TINY_V2)
VOXCPM_2["lm_config"].update(
    hidden_size=2048, intermediate_size=6144, num_attention_heads=16, num_hidden_layers=28, num_key_value_heads=2,
    kv_channels=128, vocab_size=73448, max_position_embeddings=32768,
    rope_scaling={"type": "longrope", "long_factor": [1.0] * 64, "short_factor": [1.0] * 64,
                  "original_max_position_embeddings": 32768},
)
VOXCPM_2.update(feat_dim=64, patch_size=4, residual_lm_num_layers=8, scalar_quantization_latent_dim=512, dtype="bfloat16")
# The local modules share the base LM's rotary tables, so their heads are 128 wide too.
VOXCPM_2["encoder_config"] = {"hidden_dim": 1024, "ffn_dim": 4096, "num_heads": 16, "num_layers": 12, "kv_channels": 128}
VOXCPM_2["dit_config"].update(hidden_dim=1024, ffn_dim=4096, num_heads=16, num_layers=12, kv_channels=128)
VOXCPM_2["audio_vae_config"].update(encoder_dim=128, latent_dim=64, decoder_dim=2048)


def scaled(base: dict[str, Any], *, hidden: int, layers: int, local_layers: int, vae_dim: int) -> dict[str, Any]:
    """A config between TINY and 1.5, for CPU benchmarks."""
    config = copy.deepcopy(base)
    heads = max(2, hidden // 64)
    config["lm_config"].update(hidden_size=hidden, intermediate_size=hidden * 4, num_attention_heads=heads,
                               num_hidden_layers=layers, num_key_value_heads=2)
    half_head = hidden // heads // 2
    config["lm_config"]["rope_scaling"].update(long_factor=[1.0] * half_head, short_factor=[1.0] * half_head)
    for section in ("encoder_config", "dit_config"):
        config[section].update(hidden_dim=hidden, ffn_dim=hidden * 4, num_heads=heads, num_layers=local_layers)
    config["residual_lm_num_layers"] = max(1, layers // 3)
    config["audio_vae_config"]["decoder_dim"] = vae_dim
    return config


def write_checkpoint(
    folder: Path, config: dict[str, Any] = TINY, *, stop: str = "never", seed: int = 0, vae_format: str = "pth",
    with_rate_boundaries: bool = True,
) -> Path:
    """Write config.json, model.safetensors, audiovae.pth (or .safetensors) and tokenizer.json.

    stop="never" zeroes the stop head, so every row runs to its length cap (lengths then follow
    the text); stop="early" makes every row stop at the first step it may.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parsed = VoxCPMConfig.from_dict(config)
    with torch.device("meta"):
        network = VoxCPMNetwork(parsed)
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith(("norm.weight", ".alpha")):
            value = torch.ones(shape)
        elif key.endswith(".bias"):
            value = torch.zeros(shape)
        else:
            value = torch.randn(shape, generator=generator) * (0.5 if key.startswith("audio_vae") else 0.05)
        state[key] = value
    for key in list(state):
        if key.endswith(("scale_embed.weight", "bias_embed.weight")):
            # Rate conditioning near identity, as the official initialisation (ones, zeros).
            state[key] = (1.0 if "scale" in key else 0.0) + 0.1 * torch.randn(shapes[key], generator=generator)
        if key.endswith("weight_g"):
            # Filters of norm 0.5 keep the random VAE out of tanh saturation.
            state[key] = torch.full(shapes[key], 0.5)
    if stop == "never":
        state["stop_head.weight"] = torch.zeros(shapes["stop_head.weight"])
    elif stop == "early":
        weight = torch.zeros(shapes["stop_head.weight"])
        state["stop_proj.weight"] = torch.zeros(shapes["stop_proj.weight"])
        state["stop_proj.bias"] = torch.ones(shapes["stop_proj.bias"])
        weight[1] = 1.0
        state["stop_head.weight"] = weight
    model = {k: v.contiguous() for k, v in state.items() if not k.startswith("audio_vae.")}
    vae = {k[len("audio_vae.") :]: v.contiguous() for k, v in state.items() if k.startswith("audio_vae.")}
    boundaries = parsed.audio_vae_config.sr_bin_boundaries
    if boundaries is not None and with_rate_boundaries:
        # The official model saves this buffer; published checkpoints may lack it.
        vae["decoder.sr_bin_boundaries"] = torch.tensor(boundaries, dtype=torch.int32)
    save_file(model, str(folder / "model.safetensors"))
    if vae_format == "safetensors":
        save_file(vae, str(folder / "audiovae.safetensors"))
    else:
        torch.save({"state_dict": vae}, folder / "audiovae.pth")
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    write_tokenizer(folder, config["lm_config"]["vocab_size"])
    return folder


_CORPUS = [
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'\"()-",
    "The quick brown fox jumps over the lazy dog.",
    "Hello there, how are you today? I am fine, thank you.",
    "Batching many requests together makes speech synthesis faster.",
    "你好世界，今天天气很好。我们一起去公园吧。",
    "Numbers like 42 and 2026 are read aloud, too!",
]


def write_tokenizer(folder: Path, vocab_size: int) -> None:
    """A small tokenizer.json in the sentencepiece-converted Llama style of the real checkpoint
    (spaces become U+2581 in the normalizer, no pre-tokenizer), plus the files HF reads."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, 400), special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    tokenizer.train_from_iterator(_CORPUS * 20, trainer)
    if tokenizer.get_vocab_size() > vocab_size:
        raise ValueError(f"tokenizer needs {tokenizer.get_vocab_size()} ids, vocab_size is {vocab_size}")
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                    "unk_token": "<unk>", "add_bos_token": False, "add_eos_token": False}),
        encoding="utf-8",
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}), encoding="utf-8"
    )
