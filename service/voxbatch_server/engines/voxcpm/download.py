"""Downloads the official checkpoint into a folder, for users with internet access.

    voxbatch download-model --dir models/VoxCPM1.5 [--repo openbmb/VoxCPM1.5]

This is the only code that reaches a model hub; the server itself only loads local folders.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_REPO = "openbmb/VoxCPM1.5"
NEEDED = ("config.json", "model.safetensors", "pytorch_model.bin", "audiovae.safetensors", "audiovae.pth", "tokenizer*", "special_tokens_map.json")


def download(folder: Path, repo: str = DEFAULT_REPO, revision: str | None = None) -> Path:
    from huggingface_hub import snapshot_download

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    snapshot_download(repo_id=repo, revision=revision, local_dir=str(folder), allow_patterns=list(NEEDED))
    return folder
