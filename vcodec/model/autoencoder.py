"""The tokenizer as one trainable module: encoder -> residual LFQ -> decoder."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import TokenizerConfig
from .lfq import ResidualLFQ
from .networks import Decoder, Encoder


class AutoencoderOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 3, T, H, W)
    indices: torch.Tensor         # (B, max_levels, T', H/8, W/8)
    aux_loss: torch.Tensor
    stats: dict


class VideoTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualLFQ(bits=cfg.token_bits, max_levels=cfg.max_levels,
                                     group_bits=cfg.entropy_group_bits)
        self.decoder = Decoder(cfg)

    def forward(self, video: torch.Tensor, levels: int | torch.Tensor | None = None) -> AutoencoderOutput:
        """video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H, W multiples of 8."""
        z = self.encoder(video)
        q = self.quantizer(z, levels)
        return AutoencoderOutput(self.decoder(q.quantized), q.indices, q.aux_loss, q.stats)

    @torch.no_grad()
    def encode_indices(self, video: torch.Tensor, levels: int) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1] -> indices (B, levels, T', H/8, W/8) int64."""
        z = self.encoder(video)
        _, signs = self.quantizer.quantize(z, levels)
        return self.quantizer.signs_to_indices(signs)

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, L, T', h, w) -> video (B, 3, T, 8h, 8w) clamped to [-1, 1]."""
        dtype = next(self.decoder.parameters()).dtype
        return self.decoder(self.quantizer.indices_to_codes(indices, dtype)).clamp(-1, 1)
