"""The one RGB <-> Y'CbCr conversion of vcodec's metrics (:mod:`vcodec.metrics`) and of the benchmarks, which feed
its 4:2:0 planes to every classical codec.

Definition (also in benchmarks/README.md):
- matrix: ITU-R BT.709 (Kr = 0.2126, Kb = 0.0722), limited ("TV") range: Y in [16, 235], Cb/Cr in [16, 240] at 8 bits;
- chroma 4:2:0: Cb/Cr computed at full resolution, then the mean of each 2x2 block (centre siting);
- back to RGB: chroma upsampled by the matching centre-sited bilinear filter (taps 3/4, 1/4, edges replicated),
  inverse matrix, rounded and clipped to uint8.

Arrays: RGB video is uint8 (T, H, W, 3); YUV 4:2:0 video is a `Yuv420` of uint8 planes
Y (T, H, W), U and V (T, H/2, W/2). H and W must be even for 4:2:0; `rgb_to_y` takes any size.
Higher bit depths (10-bit test sequences): the ``bit_depth`` argument; samples are then uint16, limited range
scaled by 2**(bit_depth - 8) (Y 64..940 at 10 bits) and RGB full range 0..2**bit_depth - 1. At 8 bits (the default)
every function returns exactly what it always did.

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
    """YUV 4:2:0 planes: y (T, H, W), u and v (T, H/2, W/2), all uint8 (8-bit) or all uint16 (higher bit depths)."""

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


def rgb_to_ycbcr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float R', G', B' (..., 3) -> BT.709 E'y, E'cb, E'cr (...) each, unquantised and at full resolution, on the
    scale of ``x`` (E'cb and E'cr centred on 0): the matrix :func:`rgb_to_yuv420` quantises."""
    ey = _luma(x)
    return ey, (x[..., 2] - ey) / (2.0 * (1.0 - KB)), (x[..., 0] - ey) / (2.0 * (1.0 - KR))


def ycbcr_to_rgb(ey: np.ndarray, ecb: np.ndarray, ecr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: float R', G', B' (..., 3), unclipped."""
    r = ey + 2.0 * (1.0 - KR) * ecr
    b = ey + 2.0 * (1.0 - KB) * ecb
    g = (ey - KR * r - KB * b) / KG
    return np.stack([r, g, b], axis=-1)


def _rgb_unit(rgb: np.ndarray, bit_depth: int) -> np.ndarray:
    # uint8 RGB is 8-bit; uint16 RGB holds `bit_depth`-bit samples -> float32 in [0, 1]
    if rgb.shape[-1] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 (..., 3), got {rgb.dtype} {rgb.shape}")
    depth = 8 if rgb.dtype == np.uint8 else bit_depth
    return rgb.astype(np.float32) / float((1 << depth) - 1)


def rgb_to_y(rgb: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """RGB (..., 3) -> BT.709 limited-range Y (...) at ``bit_depth`` bits (uint8 at 8, else uint16); any frame size.
    Identical to the Y plane of :func:`rgb_to_yuv420`. RGB is uint8 (8-bit) or uint16 holding ``bit_depth`` bits."""
    return _to_int(_scale(bit_depth) * (16.0 + 219.0 * _luma(_rgb_unit(rgb, bit_depth))), bit_depth)


def rgb_to_yuv420(rgb: np.ndarray, bit_depth: int = 8) -> Yuv420:
    """RGB (T, H, W, 3) -> BT.709 limited-range YUV 4:2:0 at ``bit_depth`` bits (Y 16..235 << (bit_depth - 8)).

    RGB is uint8 (8-bit samples) or uint16 holding ``bit_depth``-bit samples; planes are uint8 at 8 bits, else uint16.
    Any frame size: odd ones get chroma planes of ceil(H/2) x ceil(W/2) samples, the last row / column of pixels
    standing for two.
    """
    if rgb.ndim != 4:
        raise ValueError(f"expected (T, H, W, 3), got {rgb.dtype} {rgb.shape}")
    x = _rgb_unit(rgb, bit_depth)
    t, h, w, _ = rgb.shape
    ey, ecb, ecr = rgb_to_ycbcr(x)
    if h % 2 or w % 2:   # chroma planes of ceil(H/2) x ceil(W/2), the last row / column repeated (as yuv420p has)
        ecb, ecr = (np.pad(c, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge") for c in (ecb, ecr))
    s = _scale(bit_depth)
    y = 16.0 + 219.0 * ey
    cb = 128.0 + 224.0 * _down2(ecb)
    cr = 128.0 + 224.0 * _down2(ecr)
    return Yuv420(_to_int(s * y, bit_depth), _to_int(s * cb, bit_depth), _to_int(s * cr, bit_depth))


def yuv420_to_rgb(yuv: Yuv420, bit_depth: int = 8) -> np.ndarray:
    """BT.709 limited-range YUV 4:2:0 at ``bit_depth`` bits -> RGB (T, H, W, 3) at ``bit_depth`` bits (uint8 at 8,
    else uint16, full range 0 .. 2**bit_depth - 1)."""
    s = _scale(bit_depth)
    ey = (yuv.y.astype(np.float32) / s - 16.0) / 219.0
    h, w = ey.shape[1:]   # odd sizes: the chroma planes' last row / column covers one luma row / column
    ecb = _up2((yuv.u.astype(np.float32) / s - 128.0) / 224.0)[:, :h, :w]
    ecr = _up2((yuv.v.astype(np.float32) / s - 128.0) / 224.0)[:, :h, :w]
    return _to_int(ycbcr_to_rgb(ey, ecb, ecr) * float((1 << bit_depth) - 1), bit_depth)


def rgb_bit_depth(rgb: np.ndarray, bit_depth: int) -> np.ndarray:
    """Full-range RGB rescaled between bit depths: uint8 -> ``bit_depth`` bits (uint16) or uint16 ``bit_depth``-bit
    -> uint8, by ``round(x * (2**to - 1) / (2**from - 1))``."""
    if rgb.dtype == np.uint8:
        return _to_int(rgb.astype(np.float32) * (((1 << bit_depth) - 1) / 255.0), bit_depth)
    return _to_u8(rgb.astype(np.float32) * (255.0 / ((1 << bit_depth) - 1)))


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


def _scale(bit_depth: int) -> float:
    if not 8 <= bit_depth <= 16:
        raise ValueError(f"bit depth must be 8..16, got {bit_depth}")
    return float(1 << (bit_depth - 8))


def _to_int(x: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 8:
        return _to_u8(x)
    return np.clip(np.rint(x), 0, (1 << bit_depth) - 1).astype(np.uint16)


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
