"""Reconstruction losses and quality metrics. Video tensors are (B, 3, T, H, W) in [-1, 1]."""
from __future__ import annotations

import torch

from ..metrics import ssim_and_cs


def ssim_frames(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over frames and channels of (B, 3, T, H, W) in [-1, 1] (computed on [0, 1] with the one SSIM,
    :func:`vcodec.metrics.ssim_and_cs`)."""
    B, C, T, H, W = a.shape
    x = ((a + 1) / 2).transpose(1, 2).reshape(B * T, C, H, W).float()
    y = ((b + 1) / 2).transpose(1, 2).reshape(B * T, C, H, W).float()
    return ssim_and_cs(x, y, data_range=1.0)[0].mean()


def reconstruction_loss(x: torch.Tensor, y: torch.Tensor, *, ssim_weight: float) -> tuple[torch.Tensor, dict]:
    l1 = (x - y).abs().mean()
    mse = (x - y).pow(2).mean()
    loss = l1 + 2.0 * mse
    stats = {"l1": l1.item(), "mse": mse.item()}
    if ssim_weight > 0:
        s = ssim_frames(x[:, :, ::4], y[:, :, ::4])   # every 4th frame: a third of the cost, same signal
        loss = loss + ssim_weight * (1 - s)
        stats["ssim"] = s.item()
    return loss, stats


# BT.709 RGB -> Y'CbCr (full range; limited-range scaling only shifts PSNR by a constant, not the gradient)
_RGB_TO_YCBCR_709 = torch.tensor([[0.2126, 0.7152, 0.0722],
                                  [-0.1146, -0.3854, 0.5],
                                  [0.5, -0.4542, -0.0458]])


def frame_psnr_yuv_loss(x: torch.Tensor, y: torch.Tensor, *, flicker_weight: float = 0.0,
                        flicker_margin: float = 0.5, chroma_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Per sample, the mean over frames of -PSNR-YUV (6:1:1 weighted BT.709 Y'CbCr MSE; 6:c:c with
    ``chroma_weight`` c, normalised to sum 1), in dB, plus ``flicker_weight`` x the mean over frames of how far
    (dB) each frame lies more than ``flicker_margin`` dB below the sample's mean PSNR (a hinge: only dips cost,
    and only beyond the margin).

    x, y: (B, 3, T, H, W) in [-1, 1]. Averaging per-frame log-MSE (not the MSE) is what the benchmarks' mean
    per-frame PSNR measures, and it gives the worst frames the most weight (against periodic flicker)."""
    d = ((x.float() - y.float()) * 0.5)                                  # [0, 1] scale
    m = _RGB_TO_YCBCR_709.to(d.device)
    e = torch.einsum("ij,bjthw->bitwh", m, d).pow(2).mean(dim=(3, 4))   # (B, 3, T) per-channel MSE
    weights = torch.tensor([6.0, chroma_weight, chroma_weight], device=d.device) / (6 + 2 * chroma_weight)
    mse = (e * weights.view(1, 3, 1)).sum(dim=1)                        # (B, T)
    neg_psnr = 10 * torch.log10(mse + 1e-8)                             # (B, T)
    dist = neg_psnr.mean(dim=1)                                         # (B,) = -PSNR
    if flicker_weight:
        dip = (neg_psnr - dist[:, None] - flicker_margin).clamp(min=0)  # dB below the mean beyond the margin
        dist = dist + flicker_weight * dip.mean(dim=1)
    # logged as "loss_psnr": the training distortion, not the benchmarks' PSNR-YUV (vcodec.metrics.psnr_yuv_611 uses
    # limited range and 4:2:0 chroma; this full-range, full-resolution version reads ~1.2 dB higher)
    return dist, {"mse": mse.mean().item(), "loss_psnr": -dist.mean().item()}
