"""Residual lookup-free quantization (LFQ) with nested rate levels.

Each of ``bits`` latent channels is quantized to a sign per level; level ``l`` (0-based) refines the
residual of the previous levels with step ``2**-(l+1)``. With ``L`` levels the reconstruction of a
channel is ``sum_l s_l * 2**-(l+1)`` with signs ``s_l in {-1, +1}``: a nested uniform grid, so a
stream that keeps only its first levels still decodes (coarser). The bit of channel ``k`` at level
``l`` is 1 when ``s_l = +1``; the token index of a level is ``sum_k bit_k << k`` (LSB = channel 0).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class LFQOutput(NamedTuple):
    quantized: torch.Tensor   # (B, bits, T, H, W), straight-through in training
    indices: torch.Tensor     # (B, levels, T, H, W) int64
    aux_loss: torch.Tensor    # scalar: entropy penalty + commitment
    stats: dict


def _entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-8))).sum(dim)


class ResidualLFQ(nn.Module):
    def __init__(self, *, bits: int, max_levels: int, group_bits: int,
                 entropy_weight: float = 0.02,     # weight of MAGVIT-v2's entropy penalty
                 commit_weight: float = 0.05,      # weight of the commitment loss ||z - sg(q)||^2
                 temperature: float = 0.1):        # softmax temperature for the entropy penalty
        super().__init__()
        self.bits, self.max_levels, self.group_bits = bits, max_levels, group_bits
        self.entropy_weight, self.commit_weight, self.temperature = entropy_weight, commit_weight, temperature
        codes = torch.tensor([[1.0 if (c >> k) & 1 else -1.0 for k in range(group_bits)]
                              for c in range(2 ** group_bits)])  # (2^g, g)
        self.register_buffer("group_codes", codes, persistent=False)
        self.register_buffer("bit_weights", 2 ** torch.arange(bits, dtype=torch.int64), persistent=False)

    def quantize(self, z: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (B, bits, T, H, W) in (-1, 1). Returns (q, signs) with signs (B, levels, bits, T, H, W) in {-1,+1}."""
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

    def signs_to_indices(self, signs: torch.Tensor) -> torch.Tensor:
        """(B, L, bits, T, H, W) in {-1,+1} -> (B, L, T, H, W) int64."""
        bitsv = (signs > 0).to(torch.int64)
        return (bitsv * self.bit_weights.view(1, 1, -1, 1, 1, 1)).sum(dim=2)

    def indices_to_codes(self, indices: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """(B, L, T, H, W) integer -> quantized latent (B, bits, T, H, W)."""
        B, L, T, H, W = indices.shape
        bitsv = (indices.to(torch.int64).unsqueeze(2) >> torch.arange(self.bits, device=indices.device)
                 .view(1, 1, -1, 1, 1, 1)) & 1
        signs = bitsv.to(dtype) * 2 - 1                          # (B, L, bits, T, H, W)
        steps = (2.0 ** -(torch.arange(L, device=indices.device, dtype=dtype) + 1)).view(1, L, 1, 1, 1, 1)
        return (signs * steps).sum(dim=1)

    def entropy_penalty(self, z: torch.Tensor, levels: int) -> tuple[torch.Tensor, dict]:
        """MAGVIT-v2 entropy penalty per level, over the joint codebook of each group of bits:
        mean per-token entropy (make codes confident) minus entropy of the mean distribution
        (use the whole codebook)."""
        g = self.group_bits
        total = z.new_zeros(())
        r = z
        q = torch.zeros_like(z)
        codebook_entropy = []
        for level in range(levels):
            step = 2.0 ** -(level + 1)
            u = (r / (2 * step)).movedim(1, -1).reshape(-1, self.bits // g, g)   # (N, groups, g), ~(-1,1)
            logits = 2 * (u @ self.group_codes.t()) / self.temperature            # (N, groups, 2^g)
            p = torch.softmax(logits.float(), dim=-1)
            per_token = _entropy(p).mean()
            avg = _entropy(p.mean(dim=0)).mean()
            total = total + per_token - avg
            codebook_entropy.append(avg.detach())
            s = torch.where(r >= 0, 1.0, -1.0).to(z.dtype)
            q = q + s * step
            r = z - q
        return total / levels, {"codebook_entropy_bits": [float(e) / 0.6931 for e in codebook_entropy]}

    def forward(self, z: torch.Tensor, levels: int | torch.Tensor | None = None) -> LFQOutput:
        """z: (B, bits, T, H, W) pre-quantization latent, already squashed to (-1, 1).

        ``levels``: int for all samples, or a (B,) tensor of per-sample level counts (level dropout).
        """
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z.float(), levels)

    def _forward(self, z: torch.Tensor, levels) -> LFQOutput:
        L = self.max_levels
        q_full, signs = self.quantize(z, L)
        indices = self.signs_to_indices(signs)
        if levels is None:
            levels = L
        if isinstance(levels, int):
            steps = 2.0 ** -(torch.arange(L, device=z.device, dtype=z.dtype) + 1)
            keep = (torch.arange(L, device=z.device) < levels).to(z.dtype)
            q = (signs * (steps * keep).view(1, L, 1, 1, 1, 1)).sum(dim=1)
        else:
            steps = 2.0 ** -(torch.arange(L, device=z.device, dtype=z.dtype) + 1)
            keep = (torch.arange(L, device=z.device).view(1, L) < levels.view(-1, 1)).to(z.dtype)  # (B, L)
            q = (signs * (steps.view(1, L) * keep).view(-1, L, 1, 1, 1, 1)).sum(dim=1)
        aux = z.new_zeros(())
        stats: dict = {}
        if self.training:
            ent, stats = self.entropy_penalty(z, L)
            commit = (z - q_full.detach()).pow(2).mean()
            aux = self.entropy_weight * ent + self.commit_weight * commit
        q = z + (q - z).detach()   # straight-through estimator
        return LFQOutput(q, indices, aux, stats)
