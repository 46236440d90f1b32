"""Writes official_reference_v2.npz: what the OFFICIAL VoxCPM2 code produces on our tiny checkpoint.

NEEDS AN OFFICIAL CHECKOUT (never committed here) and, next to the project's environment, the two
packages the official code imports that the project does not ship (einops, transformers):

    git clone https://github.com/OpenBMB/VoxCPM /tmp/voxoff            # read-only copy
    .venv/bin/python -m pip install --target /tmp/offlibs einops transformers
    .venv/bin/python tests/engines/voxcpm/make_official_reference_v2.py /tmp/voxoff /tmp/offlibs

CI never runs this: tests/engines/voxcpm/test_official_reference_v2.py compares our engine with the
committed numbers. The official code reads clips with librosa and imports torchaudio (both
unusable here); the shims below stand in with soundfile, and the clips are written at the
encoder's 16 kHz so no resampling happens on either side.

Every case runs alone through `VoxCPM2Model._generate_with_prompt_cache` (what `VoxCPM.generate`
calls), float32 on the CPU, seeded, retry_badcase off. The temperature-0 case passes temperature=0
to the official flow sampler (its `forward` takes one; `_inference` leaves it at 1).
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import soundfile
import torch

REPO = Path(__file__).resolve().parents[3]
OUT = Path(__file__).with_name("official_reference_v2.npz")

# Each case: text (instructions already in front, as the official API takes them), clips, seed...
CASES = [
    {"text": "Hello there, how are you today?", "seed": 0},
    {"text": "Numbers like 42 are read aloud, too!", "instructions": "A warm, slow voice", "seed": 1, "cfg": 1.5},
    {"text": "The quick brown fox jumps.", "reference": True, "seed": 2},
    {"text": "Fine, thank you.", "prompt_text": "A tone sweeps. ", "seed": 3, "cfg": 2.5},
    {"text": "Batching makes speech faster.", "reference": True, "prompt_text": "A tone sweeps. ", "seed": 4,
     "instructions": "cheerful"},
    {"text": "Hello there, how are you today?", "seed": 5, "stream": True},
    {"text": "Numbers like 42 are read aloud, too!", "instructions": "A warm, slow voice", "seed": 6, "stream": True},
    {"text": "The quick brown fox jumps.", "reference": True, "seed": 7, "stream": True},
    {"text": "Fine, thank you.", "prompt_text": "A tone sweeps. ", "seed": 8, "stream": True},
    {"text": "Batching makes speech faster.", "reference": True, "prompt_text": "A tone sweeps. ", "seed": 9,
     "stream": True},
    {"text": "Hello there, how are you today?", "seed": 10, "temperature": 0.0},
]
TOKENIZER_TEXTS = ["Hello there, how are you today?", "(A warm, slow voice)Numbers like 42!", "你好世界，今天天气很好。"]


def clip(kind: str) -> np.ndarray:
    """16 kHz test clips: the reference warbles at 220 Hz for 1.3 s, the prompt at 330 Hz for 0.9 s
    (lengths that are not multiples of a patch, so both paddings matter)."""
    rate, seconds, freq = 16000, (1.3 if kind == "reference" else 0.9), (220 if kind == "reference" else 330)
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


def full_text(case: dict) -> str:
    return f"({case['instructions']}){case['text']}" if case.get("instructions") else case["text"]


def _install_shims() -> None:
    def load(path, sr=None, mono=True):
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        if sr is not None and rate != sr:
            raise ValueError(f"shim: clips must already be at {sr} Hz, got {rate}")
        return (audio.mean(axis=1) if mono else audio.T), rate

    sys.modules["librosa"] = types.SimpleNamespace(load=load, effects=None)
    sys.modules["torchaudio"] = types.SimpleNamespace(load=None, functional=None)


def main(official: Path, extra_libs: Path) -> None:
    sys.path.append(str(extra_libs))  # after the project's packages, which keep precedence
    sys.path.insert(0, str(official / "src"))
    sys.path.insert(0, str(REPO / "service"))
    import transformers  # noqa: F401  (before the shims: it probes for a real torchaudio)

    _install_shims()
    torch.set_num_threads(1)
    from voxcpm.model.voxcpm2 import VoxCPM2Model

    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY_V2, write_checkpoint

    work = Path(tempfile.mkdtemp(prefix="voxcpm2-official-"))
    folder = write_checkpoint(work / "tiny", TINY_V2)
    model = VoxCPM2Model.from_local(str(folder), optimize=False, device="cpu")
    paths = {}
    for kind in ("reference", "prompt"):
        paths[kind] = work / f"{kind}.wav"
        soundfile.write(paths[kind], clip(kind), 16000, subtype="FLOAT")

    data: dict[str, np.ndarray] = {
        "cases": np.array(json.dumps(CASES)),
        "tok_texts": np.array(json.dumps(TOKENIZER_TEXTS)),
        "tokens": np.array(json.dumps([list(map(int, model.text_tokenizer(t))) for t in TOKENIZER_TEXTS])),
    }
    original_decoder = model.feat_decoder.forward
    for i, case in enumerate(CASES):
        model.feat_decoder.forward = functools.partial(original_decoder, temperature=case.get("temperature", 1.0))
        cache = None
        if case.get("reference") or case.get("prompt_text"):
            cache = model.build_prompt_cache(
                prompt_text=case.get("prompt_text"),
                prompt_wav_path=str(paths["prompt"]) if case.get("prompt_text") else None,
                reference_wav_path=str(paths["reference"]) if case.get("reference") else None,
            )
        kwargs = dict(
            target_text=full_text(case), prompt_cache=cache, inference_timesteps=case.get("steps", 10),
            cfg_value=case.get("cfg", 2.0), retry_badcase=False, seed=case["seed"],
        )
        if case.get("stream"):
            pieces = []
            for audio, _tokens, _feats in model._generate_with_prompt_cache(streaming=True, **kwargs):
                pieces.append(audio.squeeze(0).numpy())
            stream = np.concatenate(pieces)
            data[f"stream_len{i}"] = np.array(len(stream))
            data[f"stream_head{i}"] = stream[:4096]
            data[f"stream_tail{i}"] = stream[-4096:]
            data[f"stream_rms{i}"] = np.array(np.sqrt(np.mean(stream.astype(np.float64) ** 2)))
        else:
            audio, _tokens, feats = next(model._generate_with_prompt_cache(streaming=False, **kwargs))
            audio = audio.squeeze(0).numpy()
            data[f"patches{i}"] = feats.numpy()
            data[f"audio_len{i}"] = np.array(len(audio))
            data[f"audio_head{i}"] = audio[:4096]
            data[f"audio_rms{i}"] = np.array(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        print(f"case {i}: {case}", file=sys.stderr)
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
