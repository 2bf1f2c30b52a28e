"""Differentiable rate of the token bits under the coder's context model (training only).

Two proxies, one per coder family: :class:`ContextRateModel` (coder version 1's context tables, below) and
:class:`MixRateModel` (versions 2-3's logistic mixing, ``bitstream.coder_mix``); ``TrainConfig.rate_model``
picks one (:func:`rate_model`).

Coder version 1 (``bitstream.coder``, ``vcb-ctxbin``) codes every bit with a probability looked up in a
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

from bitstream.coder_mix import block_bits, lower_mask

NUM_CONTEXTS = 108   # 2 groups x 3 prev x 6 spatial x 3 coarse (as bitstream.coder.NUM_CONTEXTS)
PROB_MIN = 32 / 65536   # the coder clips probabilities to [PROB_MIN, 1 - PROB_MIN]
# spatial bucket for (available neighbours a, set neighbours s): round(4 s / a); 5 when a = 0 (coder's _SPATIAL_LUT)
_SPATIAL_LUT = torch.tensor([5, 5, 5, 5, 5, 0, 4, 0, 0, 0, 0, 2, 4, 0, 0, 0, 1, 3, 4, 0, 0, 1, 2, 3, 4])
_CROSS = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def coded_bits(logit: torch.Tensor, bits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bits per sample (B,): -log2 P(bit) summed over the coded bits, P = sigmoid(logit) clipped as the coder clips
    it. logit and bits (B, P, K, T, H, W) (bits straight-through {0, 1}); mask (B, P, K) of coded bits."""
    B, P, K = bits.shape[:3]
    lim = math.log((1 - PROB_MIN) / PROB_MIN)
    logit = logit.clamp(-lim, lim)
    b = bits.float()
    nats = b * F.softplus(-logit) + (1 - b) * F.softplus(logit)                 # -ln P(bit)
    return (nats * mask.view(B, P, K, 1, 1, 1)).sum(dim=(1, 2, 3, 4, 5)) / math.log(2)


def neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> the sum of each position's 4-neighbours (zero outside the frame), same shape."""
    H, W = x.shape[-2:]
    return F.conv2d(x.reshape(-1, 1, H, W), _CROSS.to(x), padding=1).reshape(x.shape)


def bit_contexts(bits: torch.Tensor) -> torch.Tensor:
    """bits (B, P, K, T, H, W) in {0, 1} -> context index (B, P, K, T, H, W) int64 in [0, NUM_CONTEXTS)."""
    B, P, K, T, H, W = bits.shape
    b = bits.detach().float()
    dev = b.device
    nsum = neighbour_sum(b).round().long()
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
        logit = self.logits.view(1, P, K, NUM_CONTEXTS).expand(B, -1, -1, -1).gather(
            3, ctx.reshape(B, P, K, -1)).reshape(B, P, K, T, H, W)
        return coded_bits(logit, bits, mask)


class MixRateModel(nn.Module):
    """Coder versions 2-3's bit model (``bitstream.coder_mix``, FORMAT.md 7), differentiable: the logit of bit k
    of a token in plane p, checkerboard group g, is a learned weighted sum of s(bit) = 2 bit - 1 (0 where a bit is
    absent or not coded at the sample's rate point) of the same token's bits in the blocks below k's
    (``lower_mask``, version 3's blocks), every bit of the co-located token in the previous latent frame and one
    plane coarser, the sums over the 4 neighbours in the current frame (group 1, whose neighbours are all in group
    0) per bit, the previous frame's neighbour sum of bit k, and a bias; the rate of a bit is ``-log2 P(bit)``.
    The coder then refines the logistic with adaptive counts per logit bucket, which this stationary proxy
    leaves out. Inputs are detached; the coded bit enters straight-through, so the gradient pulls each sign
    towards the cheaper one."""

    def __init__(self, planes: int, token_bits: int, version: int = 3):
        super().__init__()
        K = token_bits
        for name in ("lower", "prev", "coarse", "nbcur"):
            self.register_parameter(name, nn.Parameter(torch.zeros(planes, 2, K, K)))
        self.nbprev = nn.Parameter(torch.zeros(planes, 2, K))
        self.bias = nn.Parameter(torch.zeros(planes, 2, K))
        self.register_buffer("lower_mask", torch.from_numpy(lower_mask(K, block_bits(version, K))).float(),
                             persistent=False)

    def logits(self, bits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """bits (B, P, K, T, H, W) in {0, 1}, mask (B, P, K) of coded bits -> each bit's logit, same shape."""
        B, P, K, T, H, W = bits.shape
        s = (2 * bits.detach().float() - 1) * mask.view(B, P, K, 1, 1, 1).float()
        prev = F.pad(s, (0, 0, 0, 0, 1, 0))[:, :, :, :T]                        # t - 1 (absent at t = 0)
        coarse = torch.cat([torch.zeros_like(s[:, :1]), s[:, :-1]], dim=1)    # plane p - 1 (absent for p = 0)
        yy, xx = torch.meshgrid(torch.arange(H, device=s.device), torch.arange(W, device=s.device), indexing="ij")
        group1 = ((yy + xx) & 1).to(s)                                          # (H, W)
        nbcur = neighbour_sum(s * (1 - group1))                                 # group 0's bits around group 1
        nbprev = neighbour_sum(prev)

        def mix(w, x):  # w (P, K, K) of one group, x (B, P, K, T, H, W): sum over the input bits j
            return torch.einsum("pkj,bpjthw->bpkthw", w, x)

        z = []
        for g in (0, 1):
            zg = mix(self.lower[:, g] * self.lower_mask, s) + mix(self.prev[:, g], prev) \
                + mix(self.coarse[:, g], coarse) + nbprev * self.nbprev[:, g].view(1, P, K, 1, 1, 1) \
                + self.bias[:, g].view(1, P, K, 1, 1, 1)
            if g:
                zg = zg + mix(self.nbcur[:, g], nbcur)
            z.append(zg)
        return torch.where(group1.bool(), z[1], z[0])

    def forward(self, bits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """bits (B, P, K, T, H, W) straight-through {0,1}; mask (B, P, K) of coded bits -> bits per sample (B,)."""
        return coded_bits(self.logits(bits, mask), bits, mask)

    @classmethod
    def from_tables(cls, weights, version: int = 3) -> "MixRateModel":
        """The logistic stage of a coder's learned tables (``bitstream.MixTables.weights``, integers (P, 2, K, 4K + 2)
        in units of 2^-8 logit: lower, prev, coarse, nbcur bits, then nbprev and the bias), as this proxy: what the
        coder will spend before its counts adapt."""
        w = torch.as_tensor(weights, dtype=torch.float32) / (1 << 8)
        planes, _, k, _ = w.shape
        model = cls(planes, k, version)
        with torch.no_grad():
            for i, name in enumerate(("lower", "prev", "coarse", "nbcur")):
                getattr(model, name).copy_(w[..., i * k:(i + 1) * k])
            model.nbprev.copy_(w[..., 4 * k])
            model.bias.copy_(w[..., 4 * k + 1])
        return model.requires_grad_(False)


RATE_MODELS = {"contexts": ContextRateModel, "mix": MixRateModel}


def rate_model(kind: str, planes: int, token_bits: int) -> nn.Module:
    """The training rate proxy ``kind`` ("contexts": coder version 1's; "mix": versions 2-3's)."""
    if kind not in RATE_MODELS:
        raise ValueError(f"rate model must be one of {sorted(RATE_MODELS)}, got {kind!r}")
    return RATE_MODELS[kind](planes, token_bits)
