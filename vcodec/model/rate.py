"""Differentiable rate of the token bits under the coder's context model (training only).

The range coder (``bitstream.coder``, ``vcb-ctxbin``) codes every bit with a probability looked up in a
table indexed by (token plane, bit, context), where the context is built from already-coded bits:
checkerboard group, the co-located bit in the previous latent frame, a bucketed count of set 4-neighbours
(previous frame for group 0, current frame for group 1) and the same bit one plane coarser. This module
builds exactly those contexts from the (detached) bits and learns a logit per (plane, bit, context); the rate
of a bit is ``-log2 P(bit | context)``. It is the stationary version of the coder's adaptive count tables,
so training minimises (a faithful proxy of) what the coder will spend. Bits enter straight-through, so the
gradient pulls the encoder's latent towards the cheaper sign.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_CONTEXTS = 108   # 2 groups x 3 prev x 6 spatial x 3 coarse (as bitstream.coder.NUM_CONTEXTS)
PROB_MIN = 32 / 65536   # the coder clips probabilities to [PROB_MIN, 1 - PROB_MIN]
# spatial bucket for (available neighbours a, set neighbours s): round(4 s / a); 5 when a = 0 (coder's _SPATIAL_LUT)
_SPATIAL_LUT = torch.tensor([5, 5, 5, 5, 5, 0, 4, 0, 0, 0, 0, 2, 4, 0, 0, 0, 1, 3, 4, 0, 0, 1, 2, 3, 4])
_CROSS = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def bit_contexts(bits: torch.Tensor) -> torch.Tensor:
    """bits (B, P, K, T, H, W) in {0, 1} -> context index (B, P, K, T, H, W) int64 in [0, NUM_CONTEXTS)."""
    B, P, K, T, H, W = bits.shape
    b = bits.detach().float()
    dev = b.device
    flat = b.reshape(-1, 1, H, W)
    nsum = F.conv2d(flat, _CROSS.to(dev), padding=1).round().long().reshape(B, P, K, T, H, W)
    yy, xx = torch.meshgrid(torch.arange(H, device=dev), torch.arange(W, device=dev), indexing="ij")
    avail = (yy > 0).long() + (yy < H - 1).long() + (xx > 0).long() + (xx < W - 1).long()
    group = (yy + xx) & 1                                                     # (H, W)
    lut = _SPATIAL_LUT.to(dev)
    sp_cur = lut[avail * 5 + nsum]                                            # neighbours in this frame
    sp_prev = torch.full_like(sp_cur, 5)
    sp_prev[:, :, :, 1:] = sp_cur[:, :, :, :-1]                               # neighbours in the previous frame
    spatial = torch.where(group.bool(), sp_cur, sp_prev)
    bl = b.long()
    prev = torch.full_like(bl, 2)
    prev[:, :, :, 1:] = bl[:, :, :, :-1]
    coarse = torch.full_like(bl, 2)
    coarse[:, 1:] = bl[:, :-1]
    return ((group * 3 + prev) * 6 + spatial) * 3 + coarse


class ContextRateModel(nn.Module):
    """Learned stationary P(bit = 1 | plane, bit, context) and the rate it gives."""

    def __init__(self, planes: int, token_bits: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(planes, token_bits, NUM_CONTEXTS))

    def forward(self, bits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """bits (B, P, K, T, H, W) straight-through {0,1}; mask (B, P, K) of coded bits -> bits per sample (B,)."""
        B, P, K, T, H, W = bits.shape
        ctx = bit_contexts(bits)
        lim = math.log((1 - PROB_MIN) / PROB_MIN)
        table = self.logits.clamp(-lim, lim)
        logit = table.view(1, P, K, NUM_CONTEXTS).expand(B, -1, -1, -1).gather(
            3, ctx.reshape(B, P, K, -1)).reshape(B, P, K, T, H, W)
        b = bits.float()
        nats = b * F.softplus(-logit) + (1 - b) * F.softplus(logit)             # -ln P(bit)
        return (nats * mask.view(B, P, K, 1, 1, 1)).sum(dim=(1, 2, 3, 4, 5)) / math.log(2)
