"""Loading the official checkpoint layout, strictly."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from voxbatch_server.engines.voxcpm.config import ConfigError
from voxbatch_server.engines.voxcpm.loader import CheckpointError, load_checkpoint
from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint
from voxbatch_server.settings import Settings, SettingsError


@pytest.fixture
def folder(tiny_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_dir, copy)
    return copy


def test_official_layout_loads_with_every_key_used(folder):
    loaded = load_checkpoint(folder)
    state = load_file(str(folder / "model.safetensors"))
    vae = torch.load(folder / "audiovae.pth", weights_only=True)["state_dict"]
    assert set(loaded.network.state_dict()) == set(state) | {f"audio_vae.{k}" for k in vae}
    assert any(k.endswith("weight_g") for k in vae)  # old weight-norm names, as upstream ships them
    assert loaded.dtype == torch.float32


def test_a_missing_key_is_named(folder):
    state = load_file(str(folder / "model.safetensors"))
    del state["base_lm.layers.0.self_attn.q_proj.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): base_lm.layers.0.self_attn.q_proj.weight"):
        load_checkpoint(folder)


def test_an_unexpected_key_is_named(folder):
    state = load_file(str(folder / "model.safetensors"))
    state["base_lm.lm_head.weight"] = torch.zeros(2, 2)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): base_lm.lm_head.weight"):
        load_checkpoint(folder)


def test_a_tensor_of_the_wrong_shape_is_named(folder):
    config = json.loads((folder / "config.json").read_text())
    config["lm_config"]["intermediate_size"] = 96
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"wrong shape.*mlp"):
        load_checkpoint(folder)


def test_pytorch_bin_and_vae_safetensors_load_too(tmp_path):
    folder = write_checkpoint(tmp_path / "alt", vae_format="safetensors")
    state = load_file(str(folder / "model.safetensors"))
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    loaded = load_checkpoint(folder)
    assert not (folder / "audiovae.pth").exists()
    assert loaded.network.base_lm.layers[0].self_attn.q_proj.weight.shape[0] == 64


def test_bfloat16_keeps_the_vae_in_float32(folder):
    loaded = load_checkpoint(folder, dtype="bfloat16")
    assert loaded.network.base_lm.norm.weight.dtype == torch.bfloat16
    assert loaded.network.audio_vae.decoder.model[0].weight_v.dtype == torch.float32


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda f: (f / "tokenizer.json").unlink(), CheckpointError, "no tokenizer.json"),
        (lambda f: (f / "audiovae.pth").unlink(), CheckpointError, "neither audiovae.safetensors nor audiovae.pth"),
        (lambda f: (f / "config.json").write_text('{"architecture": "voxcpm3", "lm_config": {}}'), ConfigError, "voxcpm3"),
        (lambda f: (f / "config.json").write_text("{not json"), ConfigError, "cannot read"),
    ],
)
def test_broken_folders_are_refused_with_the_reason(folder, damage, error, message):
    damage(folder)
    with pytest.raises(error, match=message):
        load_checkpoint(folder)


def test_voxcpm_engine_needs_a_model_folder():
    with pytest.raises(SettingsError, match="engine voxcpm needs --model-dir"):
        Settings(engine="voxcpm")


@pytest.fixture
def v2_folder(tiny_v2_dir, tmp_path):
    copy = tmp_path / "model2"
    shutil.copytree(tiny_v2_dir, copy)
    return copy


def _edit_vae(folder, edit):
    checkpoint = torch.load(folder / "audiovae.pth", weights_only=True)
    edit(checkpoint["state_dict"])
    torch.save(checkpoint, folder / "audiovae.pth")


def test_voxcpm2_loads_strictly_with_its_own_modules(v2_folder):
    loaded = load_checkpoint(v2_folder)
    net = loaded.network
    assert net.is_v2 and net.audio_vae.output_rate == 48000 and net.patch_samples == 4 * 1920
    assert net.residual_lm.rope_emb is None and net.base_lm.rope_emb is not None
    assert net.fusion_concat_proj.weight.shape == (64, 128)
    assert net.audio_vae.decoder.rate_bucket == 3  # 48 kHz is past every boundary


def test_voxcpm2_without_the_rate_boundaries_buffer_takes_them_from_the_config(v2_folder):
    """The official loader is not strict; published checkpoints may lack this buffer."""
    _edit_vae(v2_folder, lambda state: state.pop("decoder.sr_bin_boundaries"))
    config = json.loads((v2_folder / "config.json").read_text())
    del config["audio_vae_config"]["sr_bin_boundaries"]  # official default: 20, 30, 40 kHz
    (v2_folder / "config.json").write_text(json.dumps(config))
    assert load_checkpoint(v2_folder).network.audio_vae.decoder.rate_bucket == 3


def test_voxcpm2_rate_boundaries_that_disagree_with_the_config_are_refused(v2_folder):
    _edit_vae(v2_folder, lambda state: state.__setitem__("decoder.sr_bin_boundaries", torch.tensor([1, 2, 3])))
    with pytest.raises(CheckpointError, match=r"sr_bin_boundaries is \[1, 2, 3\].*\[20000, 30000, 40000\]"):
        load_checkpoint(v2_folder)


def test_voxcpm2_missing_fusion_weights_are_named(v2_folder):
    state = load_file(str(v2_folder / "model.safetensors"))
    del state["fusion_concat_proj.weight"]
    save_file(state, str(v2_folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): fusion_concat_proj.weight"):
        load_checkpoint(v2_folder)
