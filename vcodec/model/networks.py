"""Encoder and decoder networks of the causal video tokenizer.

Encoder: video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H and W multiples of 8
  -> 2-level Haar (B, 48, T, H/4, W/4) -> causal time patching (B, 192, 1+k, H/4, W/4)
  -> stem + residual blocks at 1/4 -> space-to-depth -> residual blocks at 1/8 (causal in time)
  -> tanh latent (B, bits, 1+k, H/8, W/8) in (-1, 1).
Decoder: the mirror image, upsampling by depth-to-space, ending with inverse patching and inverse Haar.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TokenizerConfig
from .layers import (
    CausalConv3d,
    ChannelNorm,
    ResBlock,
    channels_to_time,
    depth_to_space,
    haar2d,
    ihaar2d,
    space_to_depth,
    time_to_channels,
)

HAAR_CHANNELS = 3 * 16  # two Haar levels on RGB


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        tf, ch, cl = cfg.temporal_factor, cfg.hi_channels, cfg.lo_channels
        self.stem = CausalConv3d(HAAR_CHANNELS * tf, ch, (1, 3, 3))
        self.hi_blocks = nn.Sequential(*[ResBlock(ch, 1) for _ in range(cfg.enc_hi_blocks)])
        self.down = CausalConv3d(4 * ch, cl, (1, 1, 1))
        self.lo_blocks = nn.Sequential(*[ResBlock(cl, cfg.temporal_kernel) for _ in range(cfg.enc_lo_blocks)])
        self.norm_out = ChannelNorm(cl)
        self.to_latent = CausalConv3d(cl, cfg.channels, (1, 1, 1))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1] -> latent (B, bits, T', H/8, W/8) in (-1, 1)."""
        x = haar2d(haar2d(video))                                # (B, 48, T, H/4, W/4)
        x = time_to_channels(x, self.cfg.temporal_factor)        # (B, 192, T', H/4, W/4)
        x = self.hi_blocks(self.stem(x))                          # (B, ch, T', H/4, W/4)
        x = self.down(space_to_depth(x))                          # (B, cl, T', H/8, W/8)
        x = self.lo_blocks(x)
        return torch.tanh(self.to_latent(F.silu(self.norm_out(x))).float())   # fp32 even under autocast


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        tf, ch, cl = cfg.temporal_factor, cfg.hi_channels, cfg.lo_channels
        self.from_latent = CausalConv3d(cfg.channels, cl, (1, 3, 3))
        self.lo_blocks = nn.Sequential(*[ResBlock(cl, cfg.temporal_kernel) for _ in range(cfg.dec_lo_blocks)])
        self.up = CausalConv3d(cl, 4 * ch, (1, 1, 1))
        self.hi_blocks = nn.Sequential(*[ResBlock(ch, 1) for _ in range(cfg.dec_hi_blocks)])
        self.norm_out = ChannelNorm(ch)
        self.to_pixels = CausalConv3d(ch, HAAR_CHANNELS * tf, (1, 3, 3))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, bits, T', h, w) -> video (B, 3, 1 + 4(T'-1), 8h, 8w), roughly in [-1, 1]."""
        x = self.lo_blocks(self.from_latent(latent))              # (B, cl, T', h, w)
        x = depth_to_space(self.up(x))                            # (B, ch, T', 2h, 2w)
        x = self.hi_blocks(x)
        x = self.to_pixels(F.silu(self.norm_out(x)))              # (B, 192, T', 2h, 2w)
        x = channels_to_time(x, self.cfg.temporal_factor)         # (B, 48, T, 2h, 2w)
        return ihaar2d(ihaar2d(x))                                # (B, 3, T, 8h, 8w)
