"""Synthetic test clips: deterministic moving patterns (and a sine tone) written with PyAV.

Used by the tests and the memory benchmark, so neither needs media files beyond the one shipped sample.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def pattern_frames(num_frames: int, height: int, width: int, *, start: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): smooth colour gradients drifting a few pixels per frame, plus a moving square."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        t = float(start + i)
        r = 128 + 100 * np.sin((xx + 3 * t) / max(width, 8) * 2 * np.pi)
        g = 128 + 100 * np.cos((yy - 2 * t) / max(height, 8) * 2 * np.pi)
        b = (xx + yy + 5 * t) * (255.0 / max(width + height, 1)) % 256
        f = np.stack([r, g, b], -1)
        s = max(1, min(height, width) // 4)
        y0 = int(t * 2) % max(height - s + 1, 1)
        x0 = int(t * 3) % max(width - s + 1, 1)
        f[y0 : y0 + s, x0 : x0 + s] = (240, 40, 40)
        out[i] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def write_clip(
    path,
    *,
    width: int,
    height: int,
    num_frames: int,
    rate: Fraction | int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: str | None = None,
    audio_rate: int = 48000,
    rotation: int | None = None,
    fmt: str | None = None,
    options: dict | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    sample_aspect_ratio: Fraction | None = None,
    transparent: bool = False,
) -> np.ndarray:
    """Write a synthetic clip and return the RGB frames that went in. ``audio`` names an audio encoder
    (``"aac"``, ``"flac"``, ``"pcm_s16le"``, ``"ac3"``...) for a 440 Hz stereo tone as long as the video.
    ``pts``/``time_base`` give explicit (e.g. irregular) timestamps; ``rotation`` sets a display matrix;
    ``sample_aspect_ratio`` is set on the codec (kept by MP4, not by Matroska); ``transparent``: frames go in as
    RGBA with an alpha ramp (0 at the left edge to 255 at the right; for ``pix_fmt`` with alpha), else opaque."""
    rate = Fraction(rate)
    frames = pattern_frames(num_frames, height, width)
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=None if pts else rate)
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            v.codec_context.time_base = time_base
        opts = {"threads": "1"}
        if codec == "libx264":
            opts.update(crf="18", preset="ultrafast")
        opts.update(options or {})
        v.options = opts
        if rotation is not None:
            v.set_display_rotation(rotation)
        if sample_aspect_ratio is not None:
            v.codec_context.sample_aspect_ratio = sample_aspect_ratio
        a = None
        if audio:
            a = c.add_stream(audio, rate=audio_rate)
            a.layout = "stereo"
        tb = time_base or 1 / rate
        for i, f in enumerate(frames):
            if transparent:
                ramp = np.linspace(0, 255, width).round().astype(np.uint8)
                f = np.concatenate([f, np.broadcast_to(ramp[None, :, None], (height, width, 1))], axis=-1)
            vf = av.VideoFrame.from_ndarray(f, format="rgba" if transparent else "rgb24")
            vf.pts = pts[i] if pts else i
            vf.time_base = tb
            c.mux(v.encode(vf))
        c.mux(v.encode())
        if a is not None:
            _write_tone(c, a, float(num_frames / rate), audio_rate)
    return frames


def _write_tone(c, a, seconds: float, sr: int) -> None:
    cc = a.codec_context
    fs = cc.frame_size or 1024
    fmt = cc.format.name
    total = int(round(seconds * sr))
    t0 = 0
    while t0 < total:
        n = min(fs, total - t0) if not cc.frame_size else fs
        x = 0.3 * np.sin(2 * np.pi * 440 * (np.arange(t0, t0 + n) / sr))
        planar = np.stack([x, x])  # (channels, samples) in [-1, 1]
        base = fmt.rstrip("p")
        if base in ("flt", "dbl"):
            arr = planar.astype(np.float32 if base == "flt" else np.float64)
        elif base == "u8":
            arr = (128 + planar * 127).astype(np.uint8)
        else:
            bits = {"s16": 16, "s32": 32, "s64": 64}[base]
            arr = (planar * (2 ** (bits - 1) - 1)).astype(f"int{bits}")
        if not fmt.endswith("p"):
            arr = arr.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout="stereo")
        frame.sample_rate = sr
        frame.pts = t0
        frame.time_base = Fraction(1, sr)
        c.mux(a.encode(frame))
        t0 += n
    c.mux(a.encode())


def write_y4m_header_only(path, width: int = 16, height: int = 16) -> None:
    """A y4m stream header with no frames: a valid container holding zero video frames."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode())
