"""Quality metrics, identical for every codec.

Inputs: the reference and decoded video both as uint8 RGB (T, H, W, 3) and as 8-bit YUV 4:2:0 (`colour.Yuv420`).
- PSNR-Y/U/V: per frame with peak 255 (a frame's PSNR is capped at 100 dB), then the mean over frames;
  PSNR-YUV = (6 PSNR-Y + PSNR-U + PSNR-V) / 8 of those means (the JVET 6:1:1 weighting).
- RGB PSNR: per frame over all three channels, mean over frames.
- MS-SSIM: Wang et al. 2003 on RGB (each channel separately, channels averaged), 11-tap Gaussian window sigma 1.5,
  five scales with the standard weights, mean over frames. Our own ~40 lines, because pytorch-msssim (which the test
  suite uses as the oracle) refuses frames whose short side is <= 160 px; for such frames we use the largest number of
  scales k that fits (short side > 10 * 2**(k-1)) and the first k standard weights renormalised to sum to 1. The
  number of scales is recorded with every result. Also reported as dB: -10 log10(1 - MS-SSIM).
- VMAF: libvmaf inside the imageio-ffmpeg FFmpeg binary, built-in model vmaf_v0.6.1, on the 8-bit YUV 4:2:0 planes,
  mean over frames.
- LPIPS (AlexNet, v0.1): only when the AlexNet ImageNet weights are already in the torch hub cache; otherwise
  `lpips_status()` says why and the metric is left out. Nothing is ever downloaded and random weights are never used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile

import numpy as np

from benchmarks.colour import Yuv420
from benchmarks.measure import run_process

PSNR_CAP_DB = 100.0
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
VMAF_MODEL = "version=vmaf_v0.6.1"


# ---------------------------------------------------------------- PSNR
def _psnr_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, a.ndim))
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=axes)
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(psnr, PSNR_CAP_DB)


def psnr_yuv(ref: Yuv420, dist: Yuv420) -> dict[str, float]:
    y = float(np.mean(_psnr_per_frame(ref.y, dist.y)))
    u = float(np.mean(_psnr_per_frame(ref.u, dist.u)))
    v = float(np.mean(_psnr_per_frame(ref.v, dist.v)))
    return {"psnr_y": y, "psnr_u": u, "psnr_v": v, "psnr_yuv": (6 * y + u + v) / 8}


def psnr_rgb(ref: np.ndarray, dist: np.ndarray) -> float:
    return float(np.mean(_psnr_per_frame(ref, dist)))


# ---------------------------------------------------------------- MS-SSIM
def ms_ssim_scales(height: int, width: int, win_size: int = 11) -> int:
    """Largest number of scales (<= 5) whose coarsest level is still >= the window."""
    side = min(height, width)
    k = 5
    while k > 1 and not side > (win_size - 1) * 2 ** (k - 1):
        k -= 1
    return k


def _gauss_1d(size: int, sigma: float):
    import torch

    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_maps(x, y, win, data_range: float):
    import torch.nn.functional as F

    c = x.shape[1]
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
    return ssim.flatten(2).mean(-1), cs.flatten(2).mean(-1)  # (N, C) each


def ms_ssim(ref: np.ndarray, dist: np.ndarray, batch: int = 8) -> tuple[float, int]:
    """MS-SSIM of uint8 RGB video (T, H, W, 3): (mean over frames, number of scales used)."""
    import torch
    import torch.nn.functional as F

    t, h, w, _ = ref.shape
    k = ms_ssim_scales(h, w)
    weights = torch.tensor(MS_SSIM_WEIGHTS[:k], dtype=torch.float32)
    weights = weights / weights.sum()
    win = _gauss_1d(11, 1.5)
    values = []
    with torch.no_grad():
        for s in range(0, t, batch):
            # float32 like pytorch-msssim: float64 convolutions are ~50x slower on CPU
            x = torch.from_numpy(ref[s : s + batch]).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
            y = torch.from_numpy(dist[s : s + batch]).permute(0, 3, 1, 2).float()
            mcs = []
            for level in range(k):
                ssim, cs = _ssim_maps(x, y, win, 255.0)
                if level < k - 1:
                    mcs.append(torch.relu(cs))
                    pad = [x.shape[2] % 2, x.shape[3] % 2]  # odd sizes: as pytorch-msssim does
                    x = F.avg_pool2d(x, kernel_size=2, padding=pad)
                    y = F.avg_pool2d(y, kernel_size=2, padding=pad)
            stack = torch.stack(mcs + [torch.relu(ssim)], dim=0)  # (k, N, C)
            val = torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean(1)  # (N,)
            values.append(val)
    return float(torch.cat(values).double().mean()), k


def ms_ssim_db(value: float) -> float:
    return float("inf") if value >= 1.0 else -10.0 * math.log10(1.0 - value)


# ---------------------------------------------------------------- VMAF
def write_y4m(path: str, yuv: Yuv420, fps: float = 25.0) -> None:
    t, h, w = yuv.shape
    num, den = _fps_fraction(fps)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{num}:{den} Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n".encode())
        for i in range(t):
            f.write(b"FRAME\n")
            f.write(yuv.y[i].tobytes())
            f.write(yuv.u[i].tobytes())
            f.write(yuv.v[i].tobytes())


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


def vmaf(ref: Yuv420, dist: Yuv420, ffmpeg: str, threads: int = 1) -> tuple[float, str]:
    """Mean VMAF (model vmaf_v0.6.1) of dist against ref; returns (score, libvmaf version)."""
    with tempfile.TemporaryDirectory(prefix="vmaf-") as tmp:
        rp, dp, log = (os.path.join(tmp, n) for n in ("ref.y4m", "dist.y4m", "vmaf.json"))
        write_y4m(rp, ref)
        write_y4m(dp, dist)
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
    return float(data["pooled_metrics"]["vmaf"]["mean"]), str(data.get("version", "unknown"))


# ---------------------------------------------------------------- LPIPS
def _alexnet_cache_file() -> tuple[str, str]:
    """(path where torchvision would cache the AlexNet ImageNet weights, expected sha256 prefix)."""
    import torch
    from torchvision.models import AlexNet_Weights

    name = os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)  # alexnet-owt-7be5be79.pth
    prefix = name.rsplit("-", 1)[-1].split(".")[0]
    return os.path.join(torch.hub.get_dir(), "checkpoints", name), prefix


@functools.lru_cache(maxsize=1)
def lpips_status() -> str | None:
    """None when LPIPS can be computed from real pretrained weights, else why not. Never downloads."""
    try:
        import lpips  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        return f"lpips/torchvision not installed ({e})"
    path, prefix = _alexnet_cache_file()
    if not os.path.isfile(path):
        return f"AlexNet ImageNet weights not in the torch hub cache ({path}); LPIPS would need a download"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if not h.hexdigest().startswith(prefix):
        return f"cached AlexNet weights {path} fail their sha256 check"
    return None


@functools.lru_cache(maxsize=1)
def _lpips_model():
    import warnings

    import lpips
    import torch
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # pnet_rand=True builds the backbone without asking torchvision to download; real weights are loaded below.
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    path, _ = _alexnet_cache_file()
    tv = torchvision.models.alexnet()
    tv.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    for i in range(1, 6):
        for name, module in getattr(model.net, f"slice{i}").named_children():
            module.load_state_dict(tv.features[int(name)].state_dict())
    return model.eval()


def lpips_video(ref: np.ndarray, dist: np.ndarray, batch: int = 4) -> float:
    """Mean LPIPS (AlexNet, v0.1) over frames. Call only when lpips_status() is None."""
    import torch

    reason = lpips_status()
    if reason is not None:
        raise RuntimeError(reason)
    model = _lpips_model()
    vals = []
    with torch.no_grad():
        for s in range(0, ref.shape[0], batch):
            x = torch.from_numpy(ref[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            y = torch.from_numpy(dist[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            vals.append(model(x, y).flatten())
    return float(torch.cat(vals).mean())
