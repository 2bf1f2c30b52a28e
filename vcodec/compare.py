"""Quality of one video against another: PSNR-Y, PSNR-YUV, MS-SSIM per frame and overall (``vcodec compare``,
``vcodec encode --psnr``), and VMAF where the imageio-ffmpeg binary has libvmaf.

Video here is ``numpy.uint8`` ``(T, H, W, 3)`` RGB, as everywhere at vcodec's boundary. Two kinds of PSNR are
reported, and every label says which:

- **per-frame mean**: the mean over frames of each frame's PSNR (what most codec papers and x264's ``--psnr``
  "Mean" call PSNR);
- **global**: the PSNR of the mean squared error over the whole video (x264's "Global"; FFmpeg's ``psnr``
  filter "average"). It is never above the per-frame mean.

A frame identical to its reference has infinite PSNR; the per-frame mean is then infinite too (JSON: ``null``).
The metric functions are those of :mod:`vcodec.metrics`; :func:`frame_metrics` is the one place that calls them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np

from vcodec import metrics
from vcodec.colour import rgb_to_yuv420
from vcodec.errors import ArgumentError, InputError, VcodecWarning
from vcodec.io.source import VideoSource

METRICS = ("psnr_y", "psnr_yuv", "ms_ssim")
_PEAK2 = 255.0 ** 2


def frame_metrics(ref: np.ndarray, dist: np.ndarray) -> dict[str, list[float]]:
    """Each metric of :data:`METRICS` for each frame of ``ref``/``dist`` ``uint8 (T, H, W, 3)``; MS-SSIM is NaN
    (reported as not available) for frames whose short side is below its window (11 px). Also ``chroma_exact``: per
    frame, whether both chroma planes are identical (their PSNR at the cap: a gray source decoded gray)."""
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for a, b in zip(ref, dist):
        a, b = a[None], b[None]
        out["psnr_y"].append(metrics.psnr_y_bt709_limited(a, b))
        yuv = metrics.psnr_yuv_611(rgb_to_yuv420(a), rgb_to_yuv420(b))
        out["psnr_yuv"].append(yuv["psnr_yuv"])
        out.setdefault("chroma_exact", []).append(min(yuv["psnr_u"], yuv["psnr_v"]) >= metrics.PSNR_CAP_DB)
        small = min(a.shape[1:3]) < metrics.SSIM_WINDOW
        out["ms_ssim"].append(float("nan") if small else metrics.ms_ssim_rgb(a, b)[0])
    return out


def _mse(psnr: float) -> float:
    return _PEAK2 / 10 ** (psnr / 10)


@dataclass
class Quality:
    """Per-frame metrics of a video against its reference, accumulated a few frames at a time."""

    per_frame: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    chroma_exact: bool = True    # every frame's chroma identical so far (PSNR-U and -V at the cap)

    def add(self, ref: np.ndarray, dist: np.ndarray) -> None:
        m = frame_metrics(ref, dist)
        self.chroma_exact &= all(m.pop("chroma_exact"))
        for k, v in m.items():
            self.per_frame[k].extend(v)

    @property
    def frames(self) -> int:
        return len(self.per_frame["psnr_y"])

    def summary(self) -> dict:
        """``psnr_y`` / ``psnr_yuv`` (per-frame means, dB), ``psnr_y_global`` (dB, from the pooled MSE),
        ``ms_ssim`` (mean); PSNRs are capped at ``metrics.PSNR_CAP_DB`` (an identical frame: 100 dB), and values
        that are not numbers (MS-SSIM of frames under its window) are ``None`` in :meth:`to_json`."""
        pf = self.per_frame
        mse = float(np.mean([_mse(p) for p in pf["psnr_y"]])) if pf["psnr_y"] else float("nan")
        return {
            "frames": self.frames,
            "psnr_y": float(np.mean(pf["psnr_y"])),
            "psnr_y_global": 10 * math.log10(_PEAK2 / mse),
            "psnr_yuv": float(np.mean(pf["psnr_yuv"])),
            "ms_ssim": float(np.mean(pf["ms_ssim"])),
            "chroma_exact": bool(self.frames and self.chroma_exact),
        }

    def to_json(self) -> dict:
        return _finite(self.summary())


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def describe(s: dict) -> str:
    """One line: ``PSNR-Y 34.12 dB (per-frame mean; global 33.80 dB), PSNR-YUV 35.01 dB (per-frame mean),
    MS-SSIM 0.9712``."""

    def db(x):
        return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"

    ms = s["ms_ssim"]
    ms = f"n/a (frames under {metrics.SSIM_WINDOW} px)" if ms is None or math.isnan(ms) else f"{ms:.4f}"
    exact = (" (chroma identical to the reference, e.g. a gray source: PSNR-U and -V count at the 100 dB cap, so "
             "judge by PSNR-Y)") if s.get("chroma_exact") else ""
    return (f"PSNR-Y {db(s['psnr_y'])} dB (per-frame mean; global {db(s['psnr_y_global'])} dB), "
            f"PSNR-YUV {db(s['psnr_yuv'])} dB (per-frame mean){exact}, MS-SSIM {ms}")


def compare_videos(ref, dist, *, batch: int = 8, vmaf: bool = False, start=None, frames: int | None = None,
                   duration=None) -> dict:
    """Compare two videos PyAV opens (paths or file objects), frame by frame. They must have the same size
    and frame count (:class:`InputError` otherwise). Returns ``{"ref", "dist", "width", "height", "frames",
    "mean": {...}, "per_frame": {metric: [...]}, "vmaf": {...}}`` (see :class:`Quality` for the means).

    A range (``start`` in seconds, ``frames`` or ``duration``; frames as ``vcodec encode``/``decode`` count them
    at REF's frame rate) picks the part of REF that DIST holds, e.g. DIST decoded with the same ``--start``:
    REF's frames from ``start`` on against DIST's from its first, both cut to ``frames`` when given."""
    from vcodec.coding import check_range, frame_range, plan_chunks

    check_range(start, frames, duration)
    if vmaf and (start or frames is not None or duration is not None):
        raise ArgumentError("--vmaf compares whole files: not with --start, --frames or --duration")
    q = Quality()
    with VideoSource(ref, audio=False) as a, VideoSource(dist, audio=False) as b:
        ia, ib = a.info, b.info
        if (ia.width, ia.height) != (ib.width, ib.height):
            raise InputError(f"{b.name} is {ib.width}x{ib.height} but {a.name} is {ia.width}x{ia.height}: "
                             f"compare needs videos of the same size")
        first, count = frame_range(ia.frame_rate, start, frames, duration)
        hint = ib.frame_count_hint
        if first and count is not None and hint is not None and hint > count:
            warnings.warn(f"{b.name} has about {hint} frames, more than the {count} of the range: its first {count} "
                          f"are compared with {a.name}'s from frame {first} (DIST should hold just the range, as "
                          f"decode --start makes it; for a whole video leave out --start)", VcodecWarning,
                          stacklevel=2)
        groups = itertools.repeat((batch, None))
        wa = (w for w, _ in plan_chunks(a.windows(batch), groups, first, count))
        wb = (w for w, _ in plan_chunks(b.windows(batch), groups, 0, count))
        while True:
            x, y = next(wa, None), next(wb, None)
            if x is None and y is None:
                break
            if x is None or y is None or len(x) != len(y):  # count the rest, for the message
                na = q.frames + (0 if x is None else len(x)) + sum(len(w) for w in wa)
                nb = q.frames + (0 if y is None else len(y)) + sum(len(w) for w in wb)
                part = f" from frame {first}" if first else ""
                raise InputError(f"{a.name} has {na} frames{part} but {b.name} has {nb}: compare needs the same "
                                 f"frame count")
            q.add(x, y)
        names = (a.name, b.name)
    out = {
        "ref": names[0],
        "dist": names[1],
        "width": ia.width,
        "height": ia.height,
        "frames": q.frames,
        "ref_start_frame": first,
        "mean": q.to_json(),
        "per_frame": {k: [None if not math.isfinite(v) else v for v in vs] for k, vs in q.per_frame.items()},
        "psnr_note": "psnr_y/psnr_yuv: mean over frames of each frame's PSNR; psnr_y_global: PSNR of the MSE "
                     "over all frames",
    }
    if vmaf:
        out["vmaf"] = vmaf_score(ref, dist)
    return out


def write_csv(path, result: dict, *, overwrite: bool = False) -> None:
    """Per-frame metrics, one row per frame: ``frame,psnr_y,psnr_yuv,ms_ssim`` (identical frames: the 100 dB cap);
    an existing file is replaced only with ``overwrite`` (written whole or not at all)."""
    import csv

    from vcodec.io.files import atomic_output

    pf = result["per_frame"]
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", *METRICS])
        for i in range(result["frames"]):
            w.writerow([i, *("" if pf[m][i] is None else f"{pf[m][i]:.6f}" for m in METRICS)])


def _ffmpeg_with_libvmaf() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        filters = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return None
    return exe if " libvmaf " in filters.stdout else None


def vmaf_score(ref, dist) -> dict:
    """VMAF (the libvmaf default model) of ``dist`` against ``ref``, both paths: ``{"available": True, "mean":
    ..., "per_frame": [...]}``, or ``{"available": False, "reason": ...}`` when this installation has no FFmpeg
    binary with libvmaf (it comes with imageio-ffmpeg, the ``[bench]`` extra)."""
    if not all(isinstance(p, (str, os.PathLike)) and os.fspath(p) != "-" for p in (ref, dist)):
        return {"available": False, "reason": "VMAF needs both videos as files"}
    exe = _ffmpeg_with_libvmaf()
    if exe is None:
        return {"available": False, "reason": "no FFmpeg with libvmaf here (install imageio-ffmpeg: the [bench] extra)"}
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "vmaf.json")
        cmd = [exe, "-hide_banner", "-nostdin", "-v", "error", "-i", os.fspath(dist), "-i", os.fspath(ref),
               "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}:n_threads=1", "-f", "null", "-"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode or not os.path.exists(log):
            why = " ".join(r.stderr.split())[-200:] or f"exit status {r.returncode}; frames too small?"
            return {"available": False, "reason": f"libvmaf failed ({why})"}
        with open(log) as f:
            data = json.load(f)
    frames = [fr["metrics"]["vmaf"] for fr in data.get("frames", [])]
    return {"available": True, "mean": float(np.mean(frames)) if frames else None, "per_frame": frames}
