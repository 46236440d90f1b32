"""Batched, windowed VAE decoding of latent sequences of different lengths."""

from __future__ import annotations

import torch

from .audio_vae import AudioVAE

# The decoder is causal with a finite receptive field (about 20 latent frames for the 1.5
# shapes), so a window that starts this many frames early reproduces the whole decode.
CONTEXT_FRAMES = 48
WINDOW_FRAMES = 128  # about 5 s of 1.5 audio per window: bounds the decoder's peak memory per row


@torch.inference_mode()
def decode_latents(vae: AudioVAE, latents: list[torch.Tensor], window: int = WINDOW_FRAMES) -> list[torch.Tensor]:
    """Decode (D, T_i) latents into (T_i * hop,) audio each.

    Rows are right-padded into one batch (a causal decoder never looks ahead, so padding does
    not leak into real samples) and decoded in windows so memory stays bounded for long audio.
    """
    hop = vae.hop_length
    longest = max(z.shape[1] for z in latents)
    batch = torch.zeros(len(latents), latents[0].shape[0], longest, device=latents[0].device, dtype=torch.float32)
    for i, z in enumerate(latents):
        batch[i, :, : z.shape[1]] = z.float()
    pieces = []
    for start in range(0, longest, window):
        lo = max(0, start - CONTEXT_FRAMES)
        out = vae.decode(batch[:, :, lo : start + window])[:, 0]
        pieces.append(out[:, (start - lo) * hop :])
    audio = torch.cat(pieces, dim=1)
    return [audio[i, : z.shape[1] * hop] for i, z in enumerate(latents)]
