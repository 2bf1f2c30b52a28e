"""The one RGB <-> Y'CbCr conversion of vcodec's metrics (:mod:`vcodec.metrics`) and of the benchmarks, which feed
its 4:2:0 planes to every classical codec.

Definition (also in benchmarks/README.md):
- matrix: ITU-R BT.709 (Kr = 0.2126, Kb = 0.0722), limited ("TV") range: Y in [16, 235], Cb/Cr in [16, 240] at 8 bits;
- chroma 4:2:0: Cb/Cr computed at full resolution, then the mean of each 2x2 block (centre siting);
- back to RGB: chroma upsampled by the matching centre-sited bilinear filter (taps 3/4, 1/4, edges replicated),
  inverse matrix, rounded and clipped to uint8.

Arrays: RGB video is uint8 (T, H, W, 3); YUV 4:2:0 video is a `Yuv420` of uint8 planes
Y (T, H, W), U and V (T, H/2, W/2). H and W must be even for 4:2:0; `rgb_to_y` takes any size.

(The .y4m/.mp4 writers in vcodec/io/sink.py and grayscale sources use BT.601: those are file-format choices that
FFmpeg inverts exactly, not metrics.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB
MATRIX_NAME = "BT.709 limited range, 4:2:0 2x2 mean (centre sited), bilinear upsampling"


@dataclass(frozen=True)
class Yuv420:
    """8-bit YUV 4:2:0 planes: y (T, H, W), u and v (T, H/2, W/2), all uint8."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.y.shape  # (T, H, W)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.y, self.u, self.v


def _luma(x: np.ndarray) -> np.ndarray:
    # x: float32 R', G', B' in [0, 1] (..., 3) -> E'y in [0, 1]
    return KR * x[..., 0] + KG * x[..., 1] + KB * x[..., 2]


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> 8-bit BT.709 limited-range Y (...), uint8; any frame size. Identical to the Y plane of
    :func:`rgb_to_yuv420`."""
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 (..., 3), got {rgb.dtype} {rgb.shape}")
    return _to_u8(16.0 + 219.0 * _luma(rgb.astype(np.float32) / 255.0))


def rgb_to_yuv420(rgb: np.ndarray) -> Yuv420:
    """uint8 RGB (T, H, W, 3) -> 8-bit BT.709 limited-range YUV 4:2:0."""
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 (T, H, W, 3), got {rgb.dtype} {rgb.shape}")
    t, h, w, _ = rgb.shape
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs even height and width, got {h}x{w}")
    x = rgb.astype(np.float32) / 255.0
    r, b = x[..., 0], x[..., 2]
    ey = _luma(x)
    ecb = (b - ey) / (2.0 * (1.0 - KB))
    ecr = (r - ey) / (2.0 * (1.0 - KR))
    y = 16.0 + 219.0 * ey
    cb = 128.0 + 224.0 * _down2(ecb)
    cr = 128.0 + 224.0 * _down2(ecr)
    return Yuv420(_to_u8(y), _to_u8(cb), _to_u8(cr))


def yuv420_to_rgb(yuv: Yuv420) -> np.ndarray:
    """8-bit BT.709 limited-range YUV 4:2:0 -> uint8 RGB (T, H, W, 3)."""
    ey = (yuv.y.astype(np.float32) - 16.0) / 219.0
    ecb = _up2((yuv.u.astype(np.float32) - 128.0) / 224.0)
    ecr = _up2((yuv.v.astype(np.float32) - 128.0) / 224.0)
    r = ey + 2.0 * (1.0 - KR) * ecr
    b = ey + 2.0 * (1.0 - KB) * ecb
    g = (ey - KR * r - KB * b) / KG
    return _to_u8(np.stack([r, g, b], axis=-1) * 255.0)


def to_high_bit_depth(plane: np.ndarray, bit_depth: int) -> np.ndarray:
    """8-bit plane -> `bit_depth` bits by left shift (the usual way to code an 8-bit source at 10 bits)."""
    return plane.astype(np.uint16) << (bit_depth - 8)


def from_high_bit_depth(plane: np.ndarray, bit_depth: int) -> np.ndarray:
    """`bit_depth`-bit plane -> 8 bits, rounding half up."""
    shift = bit_depth - 8
    if shift == 0:
        return plane.astype(np.uint8)
    return np.minimum((plane.astype(np.uint32) + (1 << (shift - 1))) >> shift, 255).astype(np.uint8)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _down2(c: np.ndarray) -> np.ndarray:
    # (T, H, W) -> (T, H/2, W/2): mean of each 2x2 block
    return 0.25 * (c[:, 0::2, 0::2] + c[:, 1::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 1::2])


def _up2_axis(c: np.ndarray, axis: int) -> np.ndarray:
    # centre-sited 2x bilinear along one axis: out[2i] = 3/4 c[i] + 1/4 c[i-1], out[2i+1] = 3/4 c[i] + 1/4 c[i+1]
    n = c.shape[axis]
    prev = np.take(c, np.clip(np.arange(n) - 1, 0, n - 1), axis=axis)
    nxt = np.take(c, np.clip(np.arange(n) + 1, 0, n - 1), axis=axis)
    even = 0.75 * c + 0.25 * prev
    odd = 0.75 * c + 0.25 * nxt
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(c.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def _up2(c: np.ndarray) -> np.ndarray:
    return _up2_axis(_up2_axis(c, 1), 2)
