"""Decode whole (short) source clips and photos to uint8 RGB arrays for corpus building, with the one video reader
(:func:`vcodec.io.read_video`: same colour rule as the demo and the benchmarks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_video


def decode_frames(path: Path) -> tuple[np.ndarray, dict]:
    """Return frames (T, H, W, 3) uint8 RGB and {width, height, fps}."""
    arr, info = read_video(path, timing_warnings=False)
    return arr, {"width": int(arr.shape[2]), "height": int(arr.shape[1]), "fps": str(info.frame_rate)}


def area_downscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, H//f, W//f, 3) uint8 by block averaging (rounded)."""
    if factor == 1:
        return frames
    T, H, W, C = frames.shape
    H2, W2 = H // factor, W // factor
    x = frames[:, :H2 * factor, :W2 * factor].reshape(T, H2, factor, W2, factor, C).astype(np.uint32)
    return ((x.sum(axis=(2, 4)) + factor * factor // 2) // (factor * factor)).astype(np.uint8)


def downscale_to_width(frames: np.ndarray, max_width: int) -> np.ndarray:
    factor = 1
    while frames.shape[2] // factor > max_width:
        factor += 1
    return area_downscale(frames, factor)


def load_image(path: Path, max_side: int) -> np.ndarray | None:
    try:
        img = read_video(path, frames=1, timing_warnings=False)[0][0]
    except InputError:
        return None
    factor = 1
    while max(img.shape[:2]) // factor > max_side:
        factor += 1
    return area_downscale(img[None], factor)[0]
