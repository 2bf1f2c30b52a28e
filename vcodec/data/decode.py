"""Decode whole (short) source clips and photos to uint8 RGB arrays with PyAV, for corpus building."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def decode_frames(path: Path) -> tuple[np.ndarray, dict]:
    """Return frames (T, H, W, 3) uint8 RGB and {width, height, fps}."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = [f.to_ndarray(format="rgb24", threads=1) for f in container.decode(stream)]  # threaded swscale is flaky
    arr = np.stack(frames)
    return arr, {"width": int(arr.shape[2]), "height": int(arr.shape[1]), "fps": str(Fraction(rate))}


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
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0), None)
        if frame is None:
            return None
        img = frame.to_ndarray(format="rgb24", threads=1)
    factor = 1
    while max(img.shape[:2]) // factor > max_side:
        factor += 1
    return area_downscale(img[None], factor)[0]
