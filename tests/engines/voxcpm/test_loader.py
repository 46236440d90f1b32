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
        (lambda f: (f / "config.json").write_text('{"architecture": "voxcpm2", "lm_config": {}}'), ConfigError, "voxcpm2"),
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
