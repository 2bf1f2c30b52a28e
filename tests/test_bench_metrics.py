"""The benchmark-only metrics: VMAF and LPIPS (PSNR and MS-SSIM are vcodec.metrics: tests/test_metrics.py)."""

import numpy as np
import pytest
import torch

from benchmarks import metrics
from vcodec import colour


def _video(t=2, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.integers(0, 40, (t, h, w, 3)), axis=2) % 256
    return base.astype(np.uint8)


def test_vmaf_identical_is_high_and_degraded_is_lower():
    from benchmarks.codecs import ffmpeg_exe

    ff = ffmpeg_exe()
    if metrics.vmaf_status(ff):
        pytest.skip(metrics.vmaf_status(ff))
    yuv = colour.rgb_to_yuv420(_video(3, 64, 96))
    same, version = metrics.vmaf(yuv, yuv, ff)
    blurred_y = ((yuv.y.astype(int) + np.roll(yuv.y, 1, 2) + np.roll(yuv.y, 1, 1)) // 3).astype(np.uint8)
    worse, _ = metrics.vmaf(yuv, colour.Yuv420(blurred_y, yuv.u, yuv.v), ff)
    assert same > 90 and worse < same and version


@pytest.mark.slow
def test_lpips_never_downloads_and_says_why(monkeypatch, tmp_path):
    def no_network(*a, **k):
        raise AssertionError("LPIPS availability check tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    metrics.lpips_status.cache_clear()
    try:
        reason = metrics.lpips_status()
        try:  # with the [lpips] extra the empty cache is the reason, without it the missing packages
            import lpips  # noqa: F401
            import torchvision  # noqa: F401
            expected = "not in the torch hub cache"
        except Exception:
            expected = "[lpips] extra"
        assert reason and expected in reason
        with pytest.raises(RuntimeError):
            metrics.lpips_video(_video(1), _video(1))
    finally:
        metrics.lpips_status.cache_clear()
