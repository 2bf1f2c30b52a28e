"""Building blocks: Haar patching, causal temporal patching, causal 3D convolutions, residual blocks.

Layout everywhere: (B, C, T, H, W).
"""
from __future__ import annotations

import functools
import threading

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


def pixel_blocks(x: torch.Tensor, factor: int, first: bool = True) -> torch.Tensor:
    """Causal space-time patching. (B, C, 1 + k*f, H, W) -> (B, f*C*16, 1 + k, H/4, W/4): every 4x4 pixel block of
    ``f`` consecutive frames as channels, channel ``((t*C + c)*4 + dy)*4 + dx``.

    The first frame stands for all ``f`` frames of latent frame 0, so that latent frame 0 sees frame 0 only and latent
    frame j sees frames 4j-3..4j. With ``first=False`` the frames continue a stream: (B, C, k*f, H, W) in, no lone
    first frame. One pass over the pixels."""
    B, C, T, H, W = x.shape
    assert (T - first) % factor == 0, T
    h, w = H // 4, W // 4

    def blocks(v: torch.Tensor, group: int) -> torch.Tensor:   # (B, C, k*group, H, W) -> (B, group, C, 4, 4, k, h, w)
        return v.reshape(B, C, -1, group, h, 4, w, 4).permute(0, 3, 1, 5, 7, 2, 4, 6)

    out = x.new_empty(B, factor * C * 16, (T - first) // factor + first, h, w)
    view = out.view(B, factor, C, 4, 4, -1, h, w)
    if first:
        view[:, :, :, :, :, :1] = blocks(x[:, :, :1], 1)     # broadcast over the f frames
    view[:, :, :, :, :, int(first):] = blocks(x[:, :, int(first):], factor)
    return out


def block_pixels(y: torch.Tensor, factor: int, first: bool = True) -> torch.Tensor:
    """Inverse of :func:`pixel_blocks`. (B, f*C*16, T', h, w) -> (B, C, 1 + (T'-1)*f, 4h, 4w), or
    (B, C, T'*f, 4h, 4w) with ``first=False``."""
    B, FC, Tl, h, w = y.shape
    C = FC // (factor * 16)
    y = y.reshape(B, factor, C, 4, 4, Tl, h, w).permute(0, 2, 5, 1, 6, 3, 7, 4)  # (B, C, T', f, h, 4, w, 4)
    y = y.reshape(B, C, Tl * factor, 4 * h, 4 * w)
    return y[:, :, factor - 1:] if first else y


@functools.cache
def haar_block_matrix(channels: int = 3) -> torch.Tensor:
    """(16C, 16C) float64 orthonormal M: two levels of :func:`haar2d` of an image are M times its 4x4 pixel blocks,
    ``haar2d(haar2d(x))[:, k] == sum_m M[k, m] * blocks[:, m]`` with blocks channel ``(c*4 + dy)*4 + dx`` (as in
    :func:`pixel_blocks`); the inverse is M's transpose. A convolution next to the transform takes M into its
    weights (:func:`mix_in_channels`, :func:`mix_out_channels`), so the transform itself costs nothing. Built once
    per ``channels`` (callers must not modify it)."""
    n = 16 * channels
    with torch.inference_mode(False), torch.no_grad():   # a plain tensor, usable in training after inference
        basis = torch.eye(n, dtype=torch.float64).reshape(n, channels, 1, 4, 4)   # one image per block channel
        return haar2d(haar2d(basis)).reshape(n, n).T


def mix_in_channels(weight: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Convolution weights (O, G*K, ...) that read ``mix``-transformed input, in groups of K channels: the weights
    ``w'`` with ``conv(x, w') == conv(x mixed by mix (K, K) in every group, w)``."""
    out_ch, GK = weight.shape[:2]
    K = mix.shape[0]
    w = weight.reshape(out_ch, GK // K, K, -1)
    return torch.einsum("ogkx,km->ogmx", w, mix.to(weight.dtype)).reshape(weight.shape)


def mix_out_channels(weight: torch.Tensor, bias: torch.Tensor, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Convolution weights (G*K, I, ...) and bias whose output, in groups of K channels, is the original output
    mixed by ``mix`` (K, K)^T: output channel m of a group is ``sum_k mix[k, m] * original[k]``."""
    GK = weight.shape[0]
    K = mix.shape[0]
    m = mix.to(weight.dtype)
    w = torch.einsum("gkx,km->gmx", weight.reshape(GK // K, K, -1), m).reshape(weight.shape)
    return w, torch.einsum("gk,km->gm", bias.reshape(GK // K, K), m).reshape(bias.shape)


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
        self.strip: tuple[HaloExchange, int] | None = None   # (exchange, strip index) while run as a strip

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, cin, T, H, W) -> (B, cout, T, H, W); ``weight``/``bias`` in place of the layer's own (e.g. with a
        fixed transform taken into them)."""
        weight = self.conv.weight if weight is None else weight
        bias = self.conv.bias if bias is None else bias
        if self.kt > 1:
            if self.streaming and self.history is not None:
                x = torch.cat([self.history, x], dim=2)
            else:
                x = F.pad(x, (0, 0, 0, 0, self.kt - 1, 0))
            if self.streaming:
                self.history = x[:, :, -(self.kt - 1):].detach()
        if self.strip is None or self.kw == 1:
            return _conv3d(x, weight, bias, self.conv.padding)
        exchange, index = self.strip
        x = exchange.widen(index, x, self.kw // 2)
        return _conv3d(x, weight, bias, (0, self.kh // 2, 0))


_MKLDNN = hasattr(torch, "mkldnn_convolution") and torch.backends.mkldnn.is_available()


def _conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: tuple[int, int, int]) -> torch.Tensor:
    """``F.conv3d``, stride 1. Inference on a CPU goes to oneDNN directly: torch's own choice sends small inputs
    (batch 1 and fewer than ~20k (C, T, H) rows, e.g. one latent frame of a 720p strip, or 1x1 kernels on one
    thread) to a slower unfold-and-multiply path (measured 1.4-1.8x slower on those layers, never faster)."""
    if (_MKLDNN and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")):   # (autocast does not see the direct call)
        return torch.mkldnn_convolution(x, weight, bias, padding, (1, 1, 1), (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, padding=padding)


class HaloExchange:
    """Runs ``parts`` copies of a network, one thread each, on side-by-side column strips of the same input (left
    to right) as if they were one network on the whole input: before each spatial convolution every strip takes
    its neighbours' edge columns (zeros at the input's own edges), so each convolution computes the columns of its
    strip as the whole network would (up to float rounding: oneDNN may sum a narrower input in another order), and
    no strip recomputes another's (unlike overlapping tiles). Everything else in the
    networks is column-local. The strips must run concurrently (a barrier per convolution); a strip that fails
    must break the barrier (``barrier.abort()``) so that the others stop too. See :func:`as_strips`."""

    def __init__(self, parts: int):
        self.parts = parts
        self.barrier = threading.Barrier(parts)
        self.edges: list = [None] * parts

    def widen(self, index: int, x: torch.Tensor, reach: int) -> torch.Tensor:
        """x (B, C, T, H, w) strip ``index``'s input -> (B, C, T, H, reach + w + reach)."""
        self.edges[index] = (x[..., :reach], x[..., -reach:])
        self.barrier.wait()
        zeros = x.new_zeros(*x.shape[:-1], reach)
        left = self.edges[index - 1][1] if index > 0 else zeros
        right = self.edges[index + 1][0] if index + 1 < self.parts else zeros
        out = torch.cat([left, x, right], dim=-1)
        self.barrier.wait()   # every strip has read its neighbours' edges before any strip publishes new ones
        return out


def as_strips(nets: list[nn.Module], *, detach: bool = False) -> HaloExchange:
    """Make ``nets`` (copies of one network, strip 0 leftmost, each run by its own thread) swap edges before each
    convolution, as strips of one input; ``detach=True`` makes them whole networks again."""
    exchange = HaloExchange(len(nets))
    for index, net in enumerate(nets):
        for m in net.modules():
            if isinstance(m, CausalConv3d):
                m.strip = None if detach else (exchange, index)
    return exchange


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
