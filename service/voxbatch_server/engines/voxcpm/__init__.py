"""VoxCPM-1.5 (and 1) as a batched engine: our own PyTorch implementation of the official
checkpoint layout, with left-padded batched prefill, per-row KV caches, batched LocEnc/LocDiT
over both guidance branches, rows leaving as they finish, and windowed batched VAE decoding."""
