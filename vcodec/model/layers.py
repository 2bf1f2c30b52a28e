"""Building blocks: Haar patching, causal temporal patching, causal 3D convolutions, residual blocks.

Layout everywhere: (B, C, T, H, W).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def haar2d(x: torch.Tensor) -> torch.Tensor:
    """One level of the orthonormal 2D Haar transform. (B, C, T, H, W) -> (B, 4C, T, H/2, W/2)."""
    a = x[..., 0::2, 0::2]
    b = x[..., 0::2, 1::2]
    c = x[..., 1::2, 0::2]
    d = x[..., 1::2, 1::2]
    ll = (a + b + c + d) * 0.5
    lh = (a - b + c - d) * 0.5
    hl = (a + b - c - d) * 0.5
    hh = (a - b - c + d) * 0.5
    return torch.cat([ll, lh, hl, hh], dim=1)


def ihaar2d(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar2d`. (B, 4C, T, H, W) -> (B, C, T, 2H, 2W)."""
    ll, lh, hl, hh = y.chunk(4, dim=1)
    a = (ll + lh + hl + hh) * 0.5
    b = (ll - lh + hl - hh) * 0.5
    c = (ll + lh - hl - hh) * 0.5
    d = (ll - lh - hl + hh) * 0.5
    B, C, T, H, W = a.shape
    out = torch.stack([torch.stack([a, b], dim=-1), torch.stack([c, d], dim=-1)], dim=-3)  # (B,C,T,H,2,W,2)
    return out.reshape(B, C, T, 2 * H, 2 * W)


def time_to_channels(x: torch.Tensor, factor: int, first: bool = True) -> torch.Tensor:
    """Causal temporal patching. (B, C, 1 + k*f, H, W) -> (B, f*C, 1 + k, H, W).

    The first frame is repeated ``f - 1`` times in front so that latent frame 0 sees frame 0 only
    and latent frame j sees frames 4j-3..4j. With ``first=False`` the frames continue a stream:
    (B, C, k*f, H, W) -> (B, f*C, k, H, W), no repetition.
    """
    B, C, T, H, W = x.shape
    assert (T - first) % factor == 0, T
    if first:
        x = torch.cat([x[:, :, :1].expand(B, C, factor - 1, H, W), x], dim=2)
    x = x.reshape(B, C, -1, factor, H, W).permute(0, 3, 1, 2, 4, 5)  # (B, f, C, T', H, W)
    return x.reshape(B, factor * C, -1, H, W)


def channels_to_time(y: torch.Tensor, factor: int, first: bool = True) -> torch.Tensor:
    """Inverse of :func:`time_to_channels`. (B, f*C, T', H, W) -> (B, C, 1 + (T'-1)*f, H, W), or
    (B, C, T'*f, H, W) with ``first=False``."""
    B, FC, Tl, H, W = y.shape
    C = FC // factor
    y = y.reshape(B, factor, C, Tl, H, W).permute(0, 2, 3, 1, 4, 5).reshape(B, C, Tl * factor, H, W)
    return y[:, :, factor - 1:] if first else y


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, 4C, T, H/2, W/2)."""
    B, C, T, H, W = x.shape
    x = x.reshape(B, C, T, H // 2, 2, W // 2, 2).permute(0, 1, 4, 6, 2, 3, 5)
    return x.reshape(B, C * 4, T, H // 2, W // 2)


def depth_to_space(x: torch.Tensor) -> torch.Tensor:
    """(B, 4C, T, H, W) -> (B, C, T, 2H, 2W)."""
    B, C4, T, H, W = x.shape
    C = C4 // 4
    x = x.reshape(B, C, 2, 2, T, H, W).permute(0, 1, 4, 5, 2, 6, 3)
    return x.reshape(B, C, T, H * 2, W * 2)


class CausalConv3d(nn.Module):
    """3D convolution that is causal in time (zero history before the first frame), 'same' in space.

    Streaming: while ``streaming`` is on, the history is the last ``kt - 1`` input frames of the previous
    call instead of zeros (``history`` holds them; None = the start of a stream), so a sequence fed in
    pieces gives the outputs of the whole sequence at once. See :func:`streaming`.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int]):
        super().__init__()
        self.kt, self.kh, self.kw = kernel
        self.conv = nn.Conv3d(cin, cout, kernel, padding=(0, self.kh // 2, self.kw // 2))
        self.streaming = False
        self.history: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kt > 1:
            if self.streaming and self.history is not None:
                x = torch.cat([self.history, x], dim=2)
            else:
                x = F.pad(x, (0, 0, 0, 0, self.kt - 1, 0))
            if self.streaming:
                self.history = x[:, :, -(self.kt - 1):].detach()
        return self.conv(x)


class streaming:  # noqa: N801  (a context manager used like a function)
    """``with streaming(module):`` feed a stream in pieces; every causal convolution inside keeps its history
    between calls. Entering starts a new stream (a keyframe); leaving drops the history."""

    def __init__(self, module: nn.Module):
        self.convs = [m for m in module.modules() if isinstance(m, CausalConv3d)]

    def reset(self) -> None:
        """Start a new stream (a keyframe): forget every history."""
        for c in self.convs:
            c.history = None

    def state(self) -> list:
        """The stream's state (every convolution's history), to :meth:`load` later: one network can then carry
        several streams in turn (e.g. one per spatial tile)."""
        return [c.history for c in self.convs]

    def load(self, state: list | None) -> None:
        """Continue the stream whose :meth:`state` this is (None: start a new one)."""
        for c, h in zip(self.convs, state or [None] * len(self.convs)):
            c.history = h

    def __enter__(self) -> "streaming":
        self.reset()
        for c in self.convs:
            c.streaming = True
        return self

    def __exit__(self, *exc) -> None:
        for c in self.convs:
            c.streaming, c.history = False, None


class ChannelNorm(nn.Module):
    """RMS normalisation over channels at each (t, y, x): no statistics across time or space,
    so it is exactly causal and independent of frame size (unlike GroupNorm)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps) * self.weight


class ResBlock(nn.Module):
    """norm -> SiLU -> conv -> norm -> SiLU -> conv, plus identity. Causal in time."""

    def __init__(self, channels: int, temporal_kernel: int):
        super().__init__()
        k = (temporal_kernel, 3, 3)
        self.norm1 = ChannelNorm(channels)
        self.conv1 = CausalConv3d(channels, channels, k)
        self.norm2 = ChannelNorm(channels)
        self.conv2 = CausalConv3d(channels, channels, k)
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h
