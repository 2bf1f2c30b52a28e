"""The benchmark-only quality metrics, identical for every codec: VMAF and LPIPS, which need FFmpeg's libvmaf or
pretrained weights. PSNR-Y/U/V/YUV, RGB PSNR and MS-SSIM come from `vcodec.metrics`, the one definition the model card
and training evaluation use too (BT.709 limited range, per-frame means; see that module).

Inputs: the reference and decoded video as uint8 RGB (T, H, W, 3) or 8-bit YUV 4:2:0 (`vcodec.colour.Yuv420`).
- VMAF: libvmaf inside the imageio-ffmpeg FFmpeg binary, built-in model vmaf_v0.6.1, on the 8-bit YUV 4:2:0 planes,
  mean over frames.
- LPIPS (AlexNet, v0.1), from `vcodec.lpips_net`: only when the `[lpips]` extra is installed and the AlexNet ImageNet
  weights are already in the torch hub cache; otherwise `lpips_status()` says why and the metric is left out. Nothing
  is ever downloaded and random weights are never used.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile

import numpy as np

from benchmarks.measure import run_process
from vcodec.colour import Yuv420
from vcodec.lpips_net import lpips_model, lpips_status  # noqa: F401  (lpips_status: the runner asks through here)

VMAF_MODEL = "version=vmaf_v0.6.1"


# ---------------------------------------------------------------- VMAF
def write_y4m(path: str, yuv: Yuv420, fps: float = 25.0, bit_depth: int = 8) -> None:
    t, h, w = yuv.shape
    num, den = _fps_fraction(fps)
    cs = "C420jpeg" if bit_depth == 8 else f"C420p{bit_depth} XYSCSS=420P{bit_depth}"
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{num}:{den} Ip A1:1 {cs} XCOLORRANGE=LIMITED\n".encode())
        for i in range(t):
            f.write(b"FRAME\n")
            for p in (yuv.y[i], yuv.u[i], yuv.v[i]):
                f.write(p.tobytes() if bit_depth == 8 else p.astype("<u2").tobytes())


def _fps_fraction(fps: float) -> tuple[int, int]:
    from fractions import Fraction

    fr = Fraction(fps).limit_denominator(1001)
    return fr.numerator, fr.denominator


@functools.lru_cache(maxsize=4)
def vmaf_status(ffmpeg: str) -> str | None:
    """None when this FFmpeg binary has libvmaf, else the reason it cannot be used."""
    try:
        rc, out, _ = run_process([ffmpeg, "-hide_banner", "-filters"])
    except OSError as e:
        return f"ffmpeg not runnable: {e}"
    if rc != 0 or b" libvmaf " not in out:
        return f"libvmaf filter not in this FFmpeg build ({ffmpeg})"
    return None


def _filter_escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def vmaf(ref: Yuv420, dist: Yuv420, ffmpeg: str, threads: int = 1, bit_depth: int = 8) -> tuple[float, str]:
    """Mean VMAF (model vmaf_v0.6.1) of dist against ref; returns (score, libvmaf version)."""
    mean, _, version = vmaf_frames(ref, dist, ffmpeg, threads, bit_depth)
    return mean, version


def vmaf_frames(
    ref: Yuv420, dist: Yuv420, ffmpeg: str, threads: int = 1, bit_depth: int = 8
) -> tuple[float, list[float], str]:
    """VMAF (model vmaf_v0.6.1) of dist against ref at `bit_depth` bits: (mean, per-frame scores, libvmaf version)."""
    with tempfile.TemporaryDirectory(prefix="vmaf-") as tmp:
        rp, dp, log = (os.path.join(tmp, n) for n in ("ref.y4m", "dist.y4m", "vmaf.json"))
        write_y4m(rp, ref, bit_depth=bit_depth)
        write_y4m(dp, dist, bit_depth=bit_depth)
        graph = f"[0:v][1:v]libvmaf=model={VMAF_MODEL}:log_fmt=json:log_path={_filter_escape(log)}:n_threads={threads}"
        cmd = [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            dp,
            "-i",
            rp,
            "-lavfi",
            graph,
            "-f",
            "null",
            "-",
        ]
        rc, _, err = run_process(cmd)
        if rc != 0:
            raise RuntimeError(f"libvmaf failed: {err.decode(errors='replace').strip()[-500:]}")
        with open(log) as f:
            data = json.load(f)
    frames = [float(f["metrics"]["vmaf"]) for f in data.get("frames", [])]
    return float(data["pooled_metrics"]["vmaf"]["mean"]), frames, str(data.get("version", "unknown"))


# ---------------------------------------------------------------- LPIPS
def lpips_video(ref: np.ndarray, dist: np.ndarray, batch: int = 4) -> float:
    """Mean LPIPS (AlexNet, v0.1) over frames. Call only when lpips_status() is None."""
    import torch

    model = lpips_model()  # RuntimeError with lpips_status()'s reason when unavailable
    vals = []
    with torch.no_grad():
        for s in range(0, ref.shape[0], batch):
            x = torch.from_numpy(ref[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            y = torch.from_numpy(dist[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            vals.append(model(x, y).flatten())
    return float(torch.cat(vals).mean())
