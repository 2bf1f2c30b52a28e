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
    block_pixels,
    depth_to_space,
    haar_block_matrix,
    mix_in_channels,
    mix_out_channels,
    pixel_blocks,
    space_to_depth,
)

HAAR_CHANNELS = 3 * 16  # two Haar levels on RGB
# Both networks see the pixels through two levels of the orthonormal Haar transform (per 4x4 block, 48 channels
# per frame), taken into the weights of the first (stem) and last (to_pixels) convolution: the networks compute
# pixel_blocks -> conv with the stem's weights times the Haar matrix, which equals 2-level Haar -> stem conv.


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

    def forward(self, video: torch.Tensor, first: bool = True) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1] -> latent (B, channels, T', H/8, W/8) in (-1, 1); T = 1 + 4(T'-1).

        ``first=False`` continues a stream (inside :func:`~vcodec.model.layers.streaming`): T = 4 T'."""
        x = pixel_blocks(video, self.cfg.temporal_factor, first)  # (B, 192, T', H/4, W/4): 4x4 blocks of 4 frames
        haar = haar_block_matrix().to(x.device)
        x = self.stem(x, mix_in_channels(self.stem.conv.weight, haar))   # = stem(Haar coefficients)
        x = self.hi_blocks(x)                                     # (B, ch, T', H/4, W/4)
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

    def forward(self, latent: torch.Tensor, first: bool = True) -> torch.Tensor:
        """latent (B, channels, T', h, w) -> video (B, 3, 1 + 4(T'-1), 8h, 8w), roughly in [-1, 1].

        ``first=False`` continues a stream (inside :func:`~vcodec.model.layers.streaming`): 4 T' frames."""
        x = self.lo_blocks(self.from_latent(latent))              # (B, cl, T', h, w)
        x = depth_to_space(self.up(x))                            # (B, ch, T', 2h, 2w)
        x = self.hi_blocks(x)
        haar = haar_block_matrix().to(x.device)
        x = self.to_pixels(F.silu(self.norm_out(x)),             # (B, 192, T', 2h, 2w): 4x4 pixel blocks of 4
                           *mix_out_channels(self.to_pixels.conv.weight, self.to_pixels.conv.bias, haar))  # frames
        return block_pixels(x, self.cfg.temporal_factor, first)  # (B, 3, T, 8h, 8w)
