"""Revive latent channels that carry no information.

A latent channel whose sign is (nearly) constant on real clips costs bits and buys nothing. It can get stuck
there: the decoder's weights for it shrink, so its gradient vanishes, and the quantizer's commitment term pins
it to its one code. (Seen in model v2: the 32 channels added when v1's 32-channel latent was widened to 64
stayed silent through 15k steps.) :func:`revive_silent_channels` finds such channels and gives them a fresh
start: encoder projection rows drawn at the scale of the live rows (so their signs vary with the content),
decoder input columns small (so the reconstruction barely changes at first).
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.autoencoder import VideoTokenizer
from ..model.pixels import frames_to_model


@torch.no_grad()
def sign_entropy(model: VideoTokenizer, clips: list[np.ndarray]) -> torch.Tensor:
    """(C,) binary entropy in bits of each latent channel's level-0 sign over ``clips`` ((T, H, W, 3) uint8,
    T = 1 + 4k, H and W multiples of 8)."""
    device = next(model.parameters()).device
    ones = total = 0
    for clip in clips:
        z = model.encoder(frames_to_model(torch.from_numpy(clip[None]).to(device)))     # (1, C, T', h, w)
        ones = ones + (z >= 0).float().sum(dim=(0, 2, 3, 4))
        total += z[0, 0].numel()
    p = (ones / total).clamp(1e-6, 1 - 1e-6)
    return -(p * p.log2() + (1 - p) * (1 - p).log2())


@torch.no_grad()
def revive_silent_channels(model: VideoTokenizer, clips: list[np.ndarray], min_bits: float = 0.2,
                           decoder_scale: float = 0.1, seed: int = 0) -> list[int]:
    """Re-draw the encoder output rows and decoder input columns of every channel whose sign entropy is below
    ``min_bits``; returns those channels. Live channels are untouched."""
    h = sign_entropy(model, clips)
    silent = [int(c) for c in torch.nonzero(h < min_bits).flatten()]
    live = [c for c in range(len(h)) if c not in silent]
    if not silent or not live:
        return silent
    g = torch.Generator().manual_seed(seed)
    enc_w, enc_b = model.encoder.to_latent.conv.weight, model.encoder.to_latent.conv.bias
    dec_w = model.decoder.from_latent.conv.weight                                        # (out, C, kt, kh, kw)
    enc_std, dec_std = enc_w[live].std().item(), dec_w[:, live].std().item()
    for c in silent:
        enc_w[c] = (torch.randn(enc_w[c].shape, generator=g) * enc_std).to(enc_w)
        if enc_b is not None:
            enc_b[c] = 0
        dec_w[:, c] = (torch.randn(dec_w[:, c].shape, generator=g) * dec_std * decoder_scale).to(dec_w)
    return silent
