"""Quality metrics: the one definition used by the model card, training evaluation, the demo and the RD benchmarks.

Inputs are uint8 RGB video (T, H, W, 3), as :func:`vcodec.io.read_video` reads it, or 8-bit YUV 4:2:0 planes
(:class:`vcodec.colour.Yuv420`), as the classical codecs in ``benchmarks/`` decode to. The rules:

- **Colour.** Y'CbCr is ITU-R BT.709 in limited ("TV") range at 8 bits, chroma 4:2:0 by 2x2 means
  (:mod:`vcodec.colour`): ``Y = round(16 + 219 (0.2126 R + 0.7152 G + 0.0722 B) / 255)``, the conversion the
  classical codecs are fed. No other matrix or range is used anywhere (BT.601 full range is gone).
- **PSNR is a per-frame mean.** Each frame's PSNR is ``10 log10(255^2 / MSE)`` over all its samples, capped at
  100 dB (identical frames); for ``bit_depth``-bit samples (the ``bit_depth`` argument, default 8) the peak is
  ``2^bit_depth - 1`` (1023 at 10 bits; HM/VTM use 255 << 2 = 1020, 0.026 dB lower for every codec alike); a clip's PSNR is the *mean over frames* of those values, never the PSNR of the
  clip's global MSE. Several clips: the mean of the per-clip values.

  - :func:`psnr_y_bt709_limited`: that rule on the 8-bit BT.709 limited-range Y plane.
  - :func:`psnr_yuv_611`: PSNR-Y, -Cb, -Cr (chroma at 4:2:0), and ``(6 PSNR-Y + PSNR-Cb + PSNR-Cr) / 8`` of
    the per-frame means (the JVET 6:1:1 weighting).
  - :func:`psnr_rgb`: that rule over R, G and B together.
- **MS-SSIM** (:func:`ms_ssim_rgb`): Wang et al. 2003 on each of R, G, B separately (channels averaged), then the
  mean over frames; 11-tap Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, five scales with
  the standard weights, odd sizes padded when halving — the same numbers as ``pytorch_msssim.ms_ssim`` (the test
  oracle). That package refuses frames whose short side is <= 160 px; for those we use the largest number of scales
  k that fits (short side > 10 * 2**(k-1)) and the first k weights renormalised to sum to 1; k is returned with the
  value. :func:`ms_ssim_db` = ``-10 log10(1 - MS-SSIM)``.
- :func:`ssim_and_cs` is the one SSIM: MS-SSIM is built on it, and so is the SSIM term of the training loss
  (differentiable, any device).

VMAF and LPIPS, which need FFmpeg's libvmaf or pretrained weights, live in ``benchmarks/metrics.py``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .colour import Yuv420, rgb_to_y

PSNR_CAP_DB = 100.0
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


# ---------------------------------------------------------------- PSNR (per-frame mean)
def peak_value(bit_depth: int = 8) -> float:
    """The PSNR peak of ``bit_depth``-bit samples: 2**bit_depth - 1 (255 at 8 bits, 1023 at 10 bits)."""
    if not 8 <= bit_depth <= 16:
        raise ValueError(f"bit depth must be 8..16, got {bit_depth}")
    return float((1 << bit_depth) - 1)


def psnr_frames(ref: np.ndarray, dist: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """PSNR of each frame (peak 2**bit_depth - 1: 255 at 8 bits, 1023 at 10; capped at 100 dB) of two equal-shape
    arrays of ``bit_depth``-bit samples whose first axis is time."""
    if ref.shape != dist.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {dist.shape}")
    axes = tuple(range(1, ref.ndim))
    mse = np.mean((ref.astype(np.float64) - dist.astype(np.float64)) ** 2, axis=axes)
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(peak_value(bit_depth) ** 2 / mse)
    return np.minimum(psnr, PSNR_CAP_DB)


def psnr_y_bt709_limited(ref: np.ndarray, dist: np.ndarray, bit_depth: int = 8) -> float:
    """PSNR-Y (dB) of RGB videos (T, H, W, 3): BT.709 limited-range Y at ``bit_depth`` bits (RGB uint8, or uint16
    holding ``bit_depth`` bits), per-frame PSNR (peak 2**bit_depth - 1), mean over frames.

    Any frame size. Equal to ``psnr_yuv_611(rgb_to_yuv420(ref), rgb_to_yuv420(dist))["psnr_y"]`` (same bit depth).
    """
    return float(np.mean(psnr_frames(rgb_to_y(ref, bit_depth), rgb_to_y(dist, bit_depth), bit_depth)))


def psnr_yuv_611(ref: Yuv420, dist: Yuv420, bit_depth: int = 8) -> dict[str, float]:
    """PSNR (dB) of YUV 4:2:0 videos of ``bit_depth``-bit samples (uint8 planes at 8 bits, uint16 above), each plane a
    per-frame mean: ``{"psnr_y", "psnr_u", "psnr_v", "psnr_yuv"}`` with ``psnr_yuv = (6 psnr_y + psnr_u + psnr_v) / 8``.
    """
    y, u, v = (float(np.mean(f)) for f in psnr_yuv_frames(ref, dist, bit_depth).values())
    return {"psnr_y": y, "psnr_u": u, "psnr_v": v, "psnr_yuv": (6 * y + u + v) / 8}


def psnr_yuv_frames(ref: Yuv420, dist: Yuv420, bit_depth: int = 8) -> dict[str, np.ndarray]:
    """Per-frame PSNR-Y, -U, -V (dB) of YUV 4:2:0 videos: ``{"psnr_y", "psnr_u", "psnr_v"}``, each (T,)."""
    return {
        "psnr_y": psnr_frames(ref.y, dist.y, bit_depth),
        "psnr_u": psnr_frames(ref.u, dist.u, bit_depth),
        "psnr_v": psnr_frames(ref.v, dist.v, bit_depth),
    }


def psnr_rgb(ref: np.ndarray, dist: np.ndarray, bit_depth: int = 8) -> float:
    """PSNR (dB) over R, G, B of RGB videos (T, H, W, 3) of ``bit_depth``-bit samples: per-frame PSNR, mean."""
    return float(np.mean(psnr_frames(ref, dist, bit_depth)))


# ---------------------------------------------------------------- SSIM / MS-SSIM
def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor, *, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term of each image and channel: float (N, C, H, W) -> two (N, C).

    'Valid' filtering with the 11-tap Gaussian (pixels whose window leaves the image are not counted), as
    pytorch-msssim does. Differentiable; runs on the inputs' device.
    """
    c = x.shape[1]
    win = gaussian_window(device=x.device).to(x.dtype)
    wh = win.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    wv = win.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(z):
        return F.conv2d(F.conv2d(z, wh, groups=c), wv, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim.flatten(2).mean(-1), cs.flatten(2).mean(-1)


def ms_ssim_scales(height: int, width: int, win_size: int = SSIM_WINDOW) -> int:
    """Largest number of scales (<= 5) whose coarsest level is still larger than the window."""
    side = min(height, width)
    k = 5
    while k > 1 and not side > (win_size - 1) * 2 ** (k - 1):
        k -= 1
    return k


def ms_ssim_rgb(ref: np.ndarray, dist: np.ndarray, batch: int = 8, bit_depth: int = 8) -> tuple[float, int]:
    """MS-SSIM of RGB videos (T, H, W, 3) of ``bit_depth``-bit samples (uint8 at 8 bits; data range
    2**bit_depth - 1), R, G, B separately then averaged, mean over frames.

    Returns (value in [0, 1], number of scales used). Frames need a short side of at least 11 px.
    """
    frames, k = ms_ssim_rgb_frames(ref, dist, batch, bit_depth)
    return float(frames.mean()), k


def ms_ssim_rgb_frames(ref: np.ndarray, dist: np.ndarray, batch: int = 8, bit_depth: int = 8) -> tuple[np.ndarray, int]:
    """Per-frame MS-SSIM (float64 (T,)) of :func:`ms_ssim_rgb`, and the number of scales."""
    t, h, w, _ = ref.shape
    k = ms_ssim_scales(h, w)
    weights = torch.tensor(MS_SSIM_WEIGHTS[:k], dtype=torch.float32)
    weights = weights / weights.sum()
    values = []
    with torch.no_grad():
        for s in range(0, t, batch):
            # float32 like pytorch-msssim: float64 convolutions are ~50x slower on CPU
            x = torch.from_numpy(ref[s : s + batch].astype(np.float32)).permute(0, 3, 1, 2)  # (N, 3, H, W)
            y = torch.from_numpy(dist[s : s + batch].astype(np.float32)).permute(0, 3, 1, 2)
            mcs = []
            for level in range(k):
                ssim, cs = ssim_and_cs(x, y, data_range=peak_value(bit_depth))
                if level < k - 1:
                    mcs.append(torch.relu(cs))
                    pad = [x.shape[2] % 2, x.shape[3] % 2]  # odd sizes: padded, as pytorch-msssim does
                    x = F.avg_pool2d(x, kernel_size=2, padding=pad)
                    y = F.avg_pool2d(y, kernel_size=2, padding=pad)
            stack = torch.stack(mcs + [torch.relu(ssim)], dim=0)  # (k, N, C)
            values.append(torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean(1))  # (N,)
    return torch.cat(values).double().numpy(), k


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB: -10 log10(1 - MS-SSIM)."""
    return float("inf") if value >= 1.0 else -10.0 * math.log10(1.0 - value)
