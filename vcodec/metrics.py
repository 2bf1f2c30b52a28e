"""Quality metrics on uint8 RGB video (T, H, W, 3): PSNR (Y, YUV 6:1:1, RGB) and MS-SSIM.

Colour conversion: BT.601 full-range RGB -> YCbCr (the same function for every codec), chroma
4:2:0 by 2x2 averaging for PSNR-YUV. MS-SSIM (Wang et al. 2003) on luma with the standard five scale
weights, Gaussian window 11 / sigma 1.5; frames too small for five scales (< 161 px on a side) use
as many scales as fit, with the weights renormalised — stated in the results where it applies.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def rgb_to_ycbcr(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> float64 (..., 3) Y, Cb, Cr in [0, 255] (BT.601 full range)."""
    x = frames.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 + (-0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = 128 + (0.5 * r - 0.418688 * g - 0.081312 * b)
    return np.stack([y, cb, cr], axis=-1)


def _psnr(mse: float, peak: float = 255.0) -> float:
    return float("inf") if mse <= 0 else 10 * math.log10(peak * peak / mse)


def psnr_rgb(ref: np.ndarray, dist: np.ndarray) -> float:
    return _psnr(float(np.mean((ref.astype(np.float64) - dist.astype(np.float64)) ** 2)))


def psnr_y(ref: np.ndarray, dist: np.ndarray) -> float:
    return _psnr(float(np.mean((rgb_to_ycbcr(ref)[..., 0] - rgb_to_ycbcr(dist)[..., 0]) ** 2)))


def _subsample_420(c: np.ndarray) -> np.ndarray:
    T, H, W = c.shape
    c = c[:, : H // 2 * 2, : W // 2 * 2]
    if c.shape[1] == 0 or c.shape[2] == 0:
        return c
    return c.reshape(T, H // 2, 2, W // 2, 2).mean(axis=(2, 4))


def psnr_yuv(ref: np.ndarray, dist: np.ndarray) -> float:
    """(6 * PSNR-Y + PSNR-Cb + PSNR-Cr) / 8, chroma at 4:2:0."""
    a, b = rgb_to_ycbcr(ref), rgb_to_ycbcr(dist)
    py = _psnr(float(np.mean((a[..., 0] - b[..., 0]) ** 2)))
    pc = []
    for k in (1, 2):
        ca, cb = _subsample_420(a[..., k]), _subsample_420(b[..., k])
        pc.append(_psnr(float(np.mean((ca - cb) ** 2))) if ca.size else py)
    return (6 * py + pc[0] + pc[1]) / 8


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def _ssim_cs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean SSIM and contrast-structure term of float32 (N, H, W) luma in [0, 255]
    ('valid' Gaussian filtering: border pixels whose window leaves the frame are not counted)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = min(11, x.shape[-1], x.shape[-2])
    g = _gauss(win, 1.5)
    r = win // 2

    def blur(z):
        z = correlate1d(correlate1d(z, g, axis=1, mode="nearest"), g, axis=2, mode="nearest")
        return z[:, r:z.shape[1] - (win - 1 - r), r:z.shape[2] - (win - 1 - r)]

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = ((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)) * cs
    return ssim.mean(axis=(1, 2)), cs.mean(axis=(1, 2))


def _halve(z: np.ndarray) -> np.ndarray:
    N, H, W = z.shape
    return z[:, : H // 2 * 2, : W // 2 * 2].reshape(N, H // 2, 2, W // 2, 2).mean(axis=(2, 4))


def ms_ssim_scales(height: int, width: int) -> int:
    """How many of the 5 scales fit: the coarsest scale must still be >= 11 pixels."""
    s = 1
    while s < 5 and min(height, width) // (2 ** s) >= 11:
        s += 1
    return s


def ms_ssim(ref: np.ndarray, dist: np.ndarray, frame_batch: int = 8) -> float:
    """Mean MS-SSIM of the luma of uint8 (T, H, W, 3) videos, in [0, 1]."""
    T, H, W, _ = ref.shape
    scales = ms_ssim_scales(H, W)
    w = np.array(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    w = w / w.sum()
    vals = []
    for s in range(0, T, frame_batch):
        x = rgb_to_ycbcr(ref[s:s + frame_batch])[..., 0].astype(np.float32)
        y = rgb_to_ycbcr(dist[s:s + frame_batch])[..., 0].astype(np.float32)
        terms = []
        for level in range(scales):
            ssim, cs = _ssim_cs(x, y)
            if level < scales - 1:
                terms.append(np.maximum(cs, 0))
                x, y = _halve(x), _halve(y)
        terms.append(np.maximum(ssim, 0))
        vals.append(np.prod(np.stack(terms).astype(np.float64) ** w[:, None], axis=0))
    return float(np.concatenate(vals).mean())
