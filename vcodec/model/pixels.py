"""The one conversion between video at the API boundary and the model's value range.

Frames: ``uint8`` (B, T, H, W, 3) RGB. Model: float (B, 3, T, H, W) in [-1, 1].
"""
from __future__ import annotations

import torch


def frames_to_model(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float32 (B, 3, T, H, W) in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def model_to_frames(video: torch.Tensor) -> torch.Tensor:
    """float (B, 3, T, H, W), nominally [-1, 1] -> uint8 (B, T, H, W, 3), rounded and clamped."""
    return video.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1)
