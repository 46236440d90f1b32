"""One decode step of VoxCPM, written once for the eager path and the compiled (captured) one.

A step turns each row's LM states into its next patch (LocDiT solver with guidance), reads its
stop head, encodes the patch (LocEnc) and runs both LMs one position further. `patch_rows` and
`advance` never read a tensor back to the host and never allocate by data-dependent shapes, so
`whole_step` over a bucket's slot tensors has static shapes and can be compiled or captured as
one graph. The eager path runs the same two functions on just the rows that step.
"""

from __future__ import annotations

import torch

from .model import VoxCPMNetwork


def patch_rows(net: VoxCPMNetwork, lm_hidden, res_hidden, condition, noise, temperature, cfg, steps: int):
    """Rows' next patches (n, P, D), their LocEnc encodings (n, H) and stop decisions (n,).
    noise (n, D, P) is standard normal (each row's own generator); temperature, cfg (n,) float32."""
    dtype = noise.dtype
    # Scaled in float32 and rounded once: what scaling by a Python float computes in any dtype.
    noise = (noise.float() * temperature.view(-1, 1, 1)).to(dtype)
    mu = net.dit_condition(lm_hidden, res_hidden)
    new = net.feat_decoder(mu, condition.transpose(1, 2).contiguous(), noise, steps, cfg).transpose(1, 2)
    current = net.encode_patches(new.unsqueeze(1))[:, 0]
    stop = net.stop_logits(lm_hidden).argmax(dim=-1)
    return new, current, stop


def advance(net: VoxCPMNetwork, current, lm_k, lm_v, res_k, res_v, lengths):
    """Both LMs one position further for every slot of the given caches (each slot at its own
    length: the base LM's and the residual LM's lengths are always equal). Returns the new LM and
    residual states; the caller advances the lengths of the slots that really stepped."""
    lm_hidden = net.fsq_layer(net.base_lm.step(current, lm_k, lm_v, lengths))
    res_hidden = net.residual_lm.step(net.residual_input(lm_hidden, current), res_k, res_v, lengths)
    return lm_hidden, res_hidden


def whole_step(net: VoxCPMNetwork, steps: int, live, lm_k, lm_v, res_k, res_v, lengths, lm_hidden, res_hidden,
               condition, noise, temperature, cfg):
    """The step of every slot of a bucket, in place: slots where `live` (bool, (S,)) is false
    compute on whatever they hold and change nothing. Returns the patches (S, P, D) and stop
    decisions (S,); the states, condition and lengths are updated in their buffers."""
    new, current, stop = patch_rows(net, lm_hidden, res_hidden, condition, noise, temperature, cfg, steps)
    next_lm, next_res = advance(net, current, lm_k, lm_v, res_k, res_v, lengths)
    keep = live.view(-1, 1)
    lm_hidden.copy_(torch.where(keep, next_lm, lm_hidden))
    res_hidden.copy_(torch.where(keep, next_res, res_hidden))
    condition.copy_(torch.where(keep.view(-1, 1, 1), new, condition))
    lengths.add_(live.long())
    return new, stop


def eager_step(net: VoxCPMNetwork, batch, slots: list[int], noise, temperature, cfg, steps: int):
    """The step of the rows in `slots` only (the others, paused or free, are not computed):
    the DiT and LocEnc see just these rows; the LMs run over the slots up to the highest one and
    the positions up to the longest, since a slot cache is read in place and a gather would copy
    every row's keys and values.
    Returns the patches (n, P, D) and stop decisions (n,) in the order of `slots`."""
    index = torch.tensor(slots, device=batch.lm_hidden.device, dtype=torch.long)
    new, current, stop = patch_rows(
        net, batch.lm_hidden[index], batch.res_hidden[index], batch.condition[index], noise, temperature, cfg, steps
    )
    top = max(slots) + 1
    inputs = torch.zeros(top, current.shape[1], device=current.device, dtype=current.dtype)
    inputs[index] = current
    lm, res = batch.lm, batch.res
    # Attention reads only the positions some slot has filled, not the whole capacity.
    span = int(lm.lengths[:top].max()) + 1
    next_lm, next_res = advance(
        net, inputs, lm.k[:, :top, :, :span], lm.v[:, :top, :, :span], res.k[:, :top, :, :span], res.v[:, :top, :, :span],
        lm.lengths[:top],
    )
    batch.lm_hidden[index] = next_lm[index]
    batch.res_hidden[index] = next_res[index]
    batch.condition[index] = new
    lm.lengths[index] += 1
    return new, stop
