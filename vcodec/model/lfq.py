"""Residual lookup-free quantization (LFQ) with nested rate points.

Each of ``channels`` latent channels is quantized to a sign per level; level ``l`` (0-based) refines the
residual of the previous levels with step ``2**-(l+1)``. With ``L`` levels the reconstruction of a
channel is ``sum_l s_l * 2**-(l+1)`` with signs ``s_l in {-1, +1}``: a nested uniform grid.

Coding unit: a *token plane* holds ``token_bits`` signs of one level: plane ``l * G + g`` (``G =
channels / token_bits`` groups) holds level ``l`` of channels ``g*token_bits .. (g+1)*token_bits - 1``,
bit ``k`` = channel ``g*token_bits + k`` (LSB first), bit = 1 when the sign is +1. With ``G = 1`` this is
the v1 layout (plane = level).

A rate point ``(bits, planes)`` codes the first ``planes`` planes with the first ``bits`` bits of each;
everything not coded contributes 0 to the reconstruction ("absent"), so every prefix still decodes.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class LFQOutput(NamedTuple):
    quantized: torch.Tensor   # (B, C, T, H, W), straight-through in training; absent channels are 0
    indices: torch.Tensor     # (B, planes, T, H, W) int64, all planes and bits
    bits: torch.Tensor        # (B, planes, token_bits, T, H, W) in {0, 1}, straight-through in training
    aux_loss: torch.Tensor    # scalar: entropy penalty + commitment
    stats: dict


def _entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-8))).sum(dim)


def plane_mask(bits: int | torch.Tensor, planes: int | torch.Tensor, total_planes: int, token_bits: int,
               batch: int, device=None) -> torch.Tensor:
    """(B, total_planes, token_bits) float: 1 where a rate point (bits, planes) codes the bit.

    ``bits`` and ``planes`` are ints or (B,) tensors (one rate point per sample)."""
    b = torch.as_tensor(bits, device=device).reshape(-1, 1, 1)
    p = torch.as_tensor(planes, device=device).reshape(-1, 1, 1)
    pi = torch.arange(total_planes, device=device).view(1, -1, 1)
    ki = torch.arange(token_bits, device=device).view(1, 1, -1)
    return ((pi < p) & (ki < b)).float().expand(batch, total_planes, token_bits)


class ResidualLFQ(nn.Module):
    def __init__(self, *, channels: int, token_bits: int, max_levels: int, group_bits: int,
                 entropy_weight: float = 0.02,     # weight of MAGVIT-v2's entropy penalty (0 = off)
                 commit_weight: float = 0.05,      # weight of the commitment loss ||z - sg(q)||^2
                 temperature: float = 0.1):        # softmax temperature for the entropy penalty
        super().__init__()
        if channels % token_bits or channels % group_bits:
            raise ValueError("channels must be a multiple of token_bits and of group_bits")
        self.channels, self.token_bits, self.max_levels, self.group_bits = channels, token_bits, max_levels, group_bits
        self.groups = channels // token_bits
        self.planes = self.groups * max_levels
        self.entropy_weight, self.commit_weight, self.temperature = entropy_weight, commit_weight, temperature
        codes = torch.tensor([[1.0 if (c >> k) & 1 else -1.0 for k in range(group_bits)]
                              for c in range(2 ** group_bits)])  # (2^g, g)
        self.register_buffer("group_codes", codes, persistent=False)
        self.register_buffer("bit_weights", 2 ** torch.arange(token_bits, dtype=torch.int64), persistent=False)

    def quantize(self, z: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (B, C, T, H, W) in (-1, 1). Returns (q, signs) with signs (B, levels, C, T, H, W) in {-1,+1}."""
        r = z
        q = torch.zeros_like(z)
        signs = []
        for level in range(levels):
            step = 2.0 ** -(level + 1)
            s = torch.where(r >= 0, 1.0, -1.0).to(z.dtype)
            q = q + s * step
            r = z - q
            signs.append(s)
        return q, torch.stack(signs, dim=1)

    def _to_planes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C, T, H, W) -> (B, L*G, token_bits, T, H, W) in plane order."""
        B, L, C, T, H, W = x.shape
        return x.reshape(B, L * self.groups, self.token_bits, T, H, W)

    def signs_to_indices(self, signs: torch.Tensor) -> torch.Tensor:
        """(B, L, C, T, H, W) in {-1,+1} -> token planes (B, L*G, T, H, W) int64."""
        bitsv = self._to_planes((signs > 0).to(torch.int64))
        return (bitsv * self.bit_weights.view(1, 1, -1, 1, 1, 1)).sum(dim=2)

    def indices_to_codes(self, indices: torch.Tensor, dtype=torch.float32, bits: int | None = None) -> torch.Tensor:
        """Token planes (B, P, T, H, W), P <= planes, of which the low ``bits`` bits are coded
        -> quantized latent (B, C, T, H, W); absent planes and bits contribute 0."""
        B, P, T, H, W = indices.shape
        bits = self.token_bits if bits is None else bits
        k = torch.arange(self.token_bits, device=indices.device)
        bitsv = (indices.to(torch.int64).unsqueeze(2) >> k.view(1, 1, -1, 1, 1, 1)) & 1   # (B, P, tb, T, H, W)
        signs = bitsv.to(dtype) * 2 - 1
        present = (k < bits).to(dtype).view(1, 1, -1, 1, 1, 1)
        plane_level = torch.arange(P, device=indices.device) // self.groups
        steps = (2.0 ** -(plane_level.to(dtype) + 1)).view(1, P, 1, 1, 1, 1)
        vals = signs * present * steps                                                   # (B, P, tb, T, H, W)
        full = vals.new_zeros(B, self.planes, self.token_bits, T, H, W)
        full[:, :P] = vals
        full = full.reshape(B, self.max_levels, self.channels, T, H, W)
        return full.sum(dim=1)

    def entropy_penalty(self, z: torch.Tensor, levels: int) -> tuple[torch.Tensor, dict]:
        """MAGVIT-v2 entropy penalty per level over the joint codebook of each group of bits: mean per-token
        entropy (make codes confident) minus the entropy of the mean distribution (use the whole codebook).
        The second term maximises the tokens' order-0 rate, so rate-trained models switch the penalty off."""
        g = self.group_bits
        total = z.new_zeros(())
        r = z
        q = torch.zeros_like(z)
        codebook_entropy = []
        for level in range(levels):
            step = 2.0 ** -(level + 1)
            u = (r / (2 * step)).movedim(1, -1).reshape(-1, self.channels // g, g)   # (N, groups, g), ~(-1,1)
            logits = 2 * (u @ self.group_codes.t()) / self.temperature                 # (N, groups, 2^g)
            p = torch.softmax(logits.float(), dim=-1)
            per_token = _entropy(p).mean()
            avg = _entropy(p.mean(dim=0)).mean()
            total = total + per_token - avg
            codebook_entropy.append(avg.detach())
            s = torch.where(r >= 0, 1.0, -1.0).to(z.dtype)
            q = q + s * step
            r = z - q
        return total / levels, {"codebook_entropy_bits": [float(e) / 0.6931 for e in codebook_entropy]}

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> LFQOutput:
        """z: (B, C, T, H, W) pre-quantization latent, already squashed to (-1, 1).

        ``mask``: (B, planes, token_bits) of coded bits (see :func:`plane_mask`); None = everything."""
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z.float(), mask)

    def _forward(self, z: torch.Tensor, mask) -> LFQOutput:
        L = self.max_levels
        B, C, T, H, W = z.shape
        q_full, signs = self.quantize(z, L)
        indices = self.signs_to_indices(signs)
        steps = (2.0 ** -(torch.arange(L, device=z.device, dtype=z.dtype) + 1)).view(1, L, 1, 1, 1, 1)
        keep = torch.ones(B, L, C, device=z.device, dtype=z.dtype) if mask is None else \
            mask.to(z.dtype).reshape(B, L, C)
        q_hard = (signs * steps * keep.view(B, L, C, 1, 1, 1)).sum(dim=1)
        coded = keep.amax(dim=1).view(B, C, 1, 1, 1)                    # channel coded at any level
        q = q_hard + (z - z.detach()) * coded                           # straight-through where coded
        # straight-through bits for the rate term: the value is the hard bit, the gradient is that of the
        # residual the level quantizes (scaled to its step), so the rate can pull z towards cheaper signs
        before = torch.cumsum(signs * steps, dim=1) - signs * steps     # reconstruction of the coarser levels
        soft = ((z.unsqueeze(1) - before) / steps).clamp(-1, 1)
        bits = self._to_planes((signs + (soft - soft.detach()) + 1) * 0.5)   # (B, P, tb, T, H, W)
        aux = z.new_zeros(())
        stats: dict = {}
        if self.training:
            commit = (z - q_full.detach()).pow(2).mean()
            aux = self.commit_weight * commit
            if self.entropy_weight:
                ent, stats = self.entropy_penalty(z, L)
                aux = aux + self.entropy_weight * ent
        return LFQOutput(q, indices, bits, aux, stats)
