"""VoxCPM (0.5B, 1.5) and VoxCPM2 as one batched engine: our own PyTorch implementation of the
official checkpoint layouts, with left-padded batched prefill, per-row KV caches, batched
LocEnc/LocDiT over both guidance branches, rows leaving as they finish, and each patch decoded
once by the causal VAE with its state carried from step to step. `config.json`'s `architecture`
picks the generation; model.py lists where the two differ."""
