"""The tokenizer as one trainable module: encoder -> residual LFQ -> decoder."""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import nn

from .config import TokenizerConfig
from .lfq import ResidualLFQ
from .networks import Decoder, Encoder


class AutoencoderOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 3, T, H, W)
    indices: torch.Tensor         # (B, planes, T', H/8, W/8)
    bits: torch.Tensor            # (B, planes, token_bits, T', H/8, W/8) straight-through {0, 1}
    aux_loss: torch.Tensor
    stats: dict


class VideoTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig, *, rate_trained: bool = False):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualLFQ(channels=cfg.channels, token_bits=cfg.token_bits, max_levels=cfg.max_levels,
                                     group_bits=cfg.entropy_group_bits,
                                     # with a rate term the rate shapes the bits; MAGVIT-v2's entropy penalty
                                     # (which rewards a high order-0 rate) would fight it
                                     entropy_weight=0.0 if rate_trained else 0.02)
        self.decoder = Decoder(cfg)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None, *,
                encoder_grad: bool = True) -> AutoencoderOutput:
        """video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H, W multiples of 8; ``mask`` (B, planes, token_bits)
        of the bits each sample's rate point codes (:func:`vcodec.model.lfq.plane_mask`), None = all.
        ``encoder_grad=False`` runs the encoder and quantizer without autograd (training the decoder alone)."""
        with contextlib.nullcontext() if encoder_grad else torch.no_grad():
            q = self.quantizer(self.encoder(video), mask)
        return AutoencoderOutput(self.decoder(q.quantized), q.indices, q.bits, q.aux_loss, q.stats)

    @torch.no_grad()
    def encode_indices(self, video: torch.Tensor, planes: int, bits: int | None = None, *, first: bool = True,
                       encoder: nn.Module | None = None) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1] -> token planes (B, planes, T', H/8, W/8) int64 holding the low
        ``bits`` bits (default all). ``first=False`` continues a stream (see :func:`vcodec.model.layers.streaming`);
        ``encoder``: a copy of :attr:`encoder` holding another stream's state (default: this one's)."""
        return self.latent_indices((encoder or self.encoder)(video, first=first), planes, bits)

    def latent_indices(self, z: torch.Tensor, planes: int, bits: int | None = None) -> torch.Tensor:
        """The encoder's latent z (B, C, T', h, w) in (-1, 1) -> its token planes (B, planes, T', h, w) int64
        holding the low ``bits`` bits (default all): each channel's signs, level by level (nearest in the latent)."""
        _, signs = self.quantizer.quantize(z, self.cfg.max_levels)
        idx = self.quantizer.signs_to_indices(signs)[:, :planes]
        bits = self.cfg.token_bits if bits is None else bits
        return idx & ((1 << bits) - 1)

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor, bits: int | None = None, *, first: bool = True,
                       decoder: nn.Module | None = None) -> torch.Tensor:
        """token planes (B, P, T', h, w) with ``bits`` coded bits each -> video (B, 3, T, 8h, 8w) in [-1, 1].
        ``first`` and ``decoder`` as for :meth:`encode_indices`."""
        decoder = decoder or self.decoder
        dtype = next(decoder.parameters()).dtype
        return decoder(self.quantizer.indices_to_codes(indices, dtype, bits), first=first).clamp(-1, 1)
