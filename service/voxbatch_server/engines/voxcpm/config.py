"""The VoxCPM checkpoint's config.json, read with the official field names and defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """config.json is missing a field or holds a wrong one."""


@dataclass
class RopeScaling:
    type: str = "longrope"
    long_factor: list[float] = field(default_factory=lambda: [1.0] * 32)
    short_factor: list[float] = field(default_factory=lambda: [1.0] * 32)
    original_max_position_embeddings: int = 32768


@dataclass
class LMConfig:
    """A MiniCPM-4 transformer (base LM; copies configure the residual LM, LocEnc and LocDiT)."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_attention_heads: int = 16
    num_hidden_layers: int = 24
    num_key_value_heads: int = 2
    vocab_size: int = 73448
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling = field(default_factory=RopeScaling)
    use_mup: bool = False
    scale_emb: float = 1.0
    dim_model_base: int = 256
    scale_depth: float = 1.0
    kv_channels: int | None = None
    no_rope: bool = False
    bos_token_id: int = 1
    eos_token_id: int = 2

    @property
    def head_dim(self) -> int:
        return self.kv_channels or self.hidden_size // self.num_attention_heads


@dataclass
class LocalConfig:
    """LocEnc or LocDiT width and depth."""

    hidden_dim: int = 1024
    ffn_dim: int = 4096
    num_heads: int = 16
    num_layers: int = 4
    kv_channels: int | None = None


@dataclass
class CfmConfig:
    sigma_min: float = 1e-6
    solver: str = "euler"
    t_scheduler: str = "log-norm"
    inference_cfg_rate: float = 1.0


@dataclass
class AudioVAEConfig:
    encoder_dim: int = 128
    encoder_rates: list[int] = field(default_factory=lambda: [2, 5, 8, 8])
    latent_dim: int = 64
    decoder_dim: int = 1536
    decoder_rates: list[int] = field(default_factory=lambda: [8, 8, 5, 2])
    depthwise: bool = True
    sample_rate: int = 16000
    use_noise_block: bool = False
    # AudioVAE V2 (VoxCPM2): the decoder runs at its own rate and scales each block by a
    # learned per-rate-bucket scale and bias. None (VoxCPM 1 / 1.5): decoder rate = sample_rate.
    out_sample_rate: int | None = None
    sr_bin_boundaries: list[int] | None = None
    cond_type: str = "scale_bias"
    cond_dim: int = 128
    cond_out_layer: bool = False
    v2: bool = False  # AudioVAE V2's encoder trims odd-stride convolutions; set from `architecture`

    @property
    def output_rate(self) -> int:
        return self.out_sample_rate or self.sample_rate


@dataclass
class VoxCPMConfig:
    lm_config: LMConfig = field(default_factory=LMConfig)
    patch_size: int = 2
    feat_dim: int = 64
    residual_lm_num_layers: int = 6
    scalar_quantization_latent_dim: int = 256
    scalar_quantization_scale: int = 9
    encoder_config: LocalConfig = field(default_factory=LocalConfig)
    dit_config: LocalConfig = field(default_factory=LocalConfig)
    cfm_config: CfmConfig = field(default_factory=CfmConfig)
    audio_vae_config: AudioVAEConfig = field(default_factory=AudioVAEConfig)
    max_length: int = 4096
    dtype: str = "bfloat16"
    dit_mean_mode: bool = False
    architecture: str = "voxcpm"
    residual_lm_no_rope: bool = False

    @property
    def is_v2(self) -> bool:
        return self.architecture == "voxcpm2"

    def local_lm(self, local: LocalConfig) -> LMConfig:
        """LocEnc and LocDiT are MiniCPM models: the base LM config with their own shape."""
        return replace(
            self.lm_config,
            hidden_size=local.hidden_dim,
            intermediate_size=local.ffn_dim,
            num_attention_heads=local.num_heads,
            num_hidden_layers=local.num_layers,
            kv_channels=local.kv_channels,
            vocab_size=0,
        )

    def residual_lm(self) -> LMConfig:
        return replace(
            self.lm_config, num_hidden_layers=self.residual_lm_num_layers, vocab_size=0,
            no_rope=self.residual_lm_no_rope,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoxCPMConfig:
        data = dict(data)
        architecture = str(data.get("architecture", "voxcpm")).lower()
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"config.json architecture is {architecture!r}; this engine runs 'voxcpm' (VoxCPM 1 and 1.5) "
                "and 'voxcpm2'"
            )
        data["architecture"] = architecture
        if architecture == "voxcpm2":
            # The official VoxCPM2 config classes have their own defaults: a published config.json
            # may leave any of them out.
            data = {**V2_DEFAULTS, **data}
            data["audio_vae_config"] = {**V2_VAE_DEFAULTS, **(data.get("audio_vae_config") or {}), "v2": True}
        dit = dict(data.pop("dit_config", {}) or {})
        cfm = dit.pop("cfm_config", {}) or {}
        dit.pop("mean_mode", None)
        if "dit_mean_mode" in dit:  # VoxCPM2 keeps it inside dit_config
            data["dit_mean_mode"] = dit.pop("dit_mean_mode")
        if "lm_config" not in data:
            raise ConfigError("config.json has no lm_config section")
        return cls(
            **_known(cls, data, skip={"lm_config", "encoder_config", "audio_vae_config", "cfm_config"}),
            lm_config=_build(LMConfig, data["lm_config"], "lm_config"),
            encoder_config=_build(LocalConfig, data.get("encoder_config", {}), "encoder_config"),
            dit_config=_build(LocalConfig, dit, "dit_config"),
            cfm_config=_build(CfmConfig, cfm, "dit_config.cfm_config"),
            audio_vae_config=_build(AudioVAEConfig, data.get("audio_vae_config") or {}, "audio_vae_config"),
        )

    @classmethod
    def from_file(cls, path: Path) -> VoxCPMConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if is_dataclass(value):
                return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
            return value

        out = plain(self)
        out["dit_config"]["cfm_config"] = out.pop("cfm_config")
        if self.is_v2:
            out["dit_config"]["dit_mean_mode"] = out.pop("dit_mean_mode")
        return out


ARCHITECTURES = ("voxcpm", "voxcpm2")
# Defaults of the official VoxCPM2 config classes (model/voxcpm2.py, audiovae/audio_vae_v2.py).
V2_DEFAULTS: dict[str, Any] = {
    "patch_size": 4, "residual_lm_num_layers": 8, "scalar_quantization_latent_dim": 512, "max_length": 8192,
}
V2_VAE_DEFAULTS: dict[str, Any] = {
    "encoder_dim": 128, "encoder_rates": [2, 5, 8, 8], "latent_dim": 64, "decoder_dim": 2048,
    "decoder_rates": [8, 6, 5, 2, 2, 2], "depthwise": True, "sample_rate": 16000, "out_sample_rate": 48000,
    "use_noise_block": False, "sr_bin_boundaries": [20000, 30000, 40000], "cond_type": "scale_bias",
    "cond_dim": 128, "cond_out_layer": False,
}


def _known(kind, data: dict[str, Any], skip=frozenset()) -> dict[str, Any]:
    names = {f.name for f in fields(kind)} - set(skip)
    return {k: v for k, v in data.items() if k in names}


def _build(kind, data: dict[str, Any], where: str):
    values = _known(kind, data)
    if kind is LMConfig and "rope_scaling" in values and isinstance(values["rope_scaling"], dict):
        values["rope_scaling"] = _build(RopeScaling, values["rope_scaling"], f"{where}.rope_scaling")
    try:
        return kind(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
