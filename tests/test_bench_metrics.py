"""Metrics and the one colour conversion."""

import numpy as np
import pytest

from benchmarks import colour, metrics


def _video(t=2, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.integers(0, 40, (t, h, w, 3)), axis=2) % 256
    return base.astype(np.uint8)


def test_yuv_roundtrip_of_flat_colours_is_close():
    rgb = np.zeros((1, 8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    yuv = colour.rgb_to_yuv420(rgb)
    assert yuv.y.shape == (1, 8, 8) and yuv.u.shape == (1, 4, 4)
    back = colour.yuv420_to_rgb(yuv)
    assert np.abs(back.astype(int) - rgb).max() <= 2


def test_bt709_limited_range_anchors():
    white = np.full((1, 2, 2, 3), 255, np.uint8)
    black = np.zeros((1, 2, 2, 3), np.uint8)
    assert colour.rgb_to_yuv420(white).y.max() == 235 and colour.rgb_to_yuv420(black).y.min() == 16
    assert colour.rgb_to_yuv420(white).u.max() == 128 and colour.rgb_to_yuv420(white).v.max() == 128


def test_bit_depth_shift_roundtrip():
    p = np.arange(256, dtype=np.uint8)
    assert np.array_equal(colour.from_high_bit_depth(colour.to_high_bit_depth(p, 10), 10), p)
    assert colour.from_high_bit_depth(np.array([1021, 1022, 1023], np.uint16), 10).tolist() == [255, 255, 255]


def test_psnr_yuv_weighting_and_cap():
    v = _video()
    yuv = colour.rgb_to_yuv420(v)
    same = metrics.psnr_yuv(yuv, yuv)
    assert same["psnr_yuv"] == metrics.PSNR_CAP_DB
    noisy = colour.Yuv420(np.clip(yuv.y.astype(int) + 3, 0, 255).astype(np.uint8), yuv.u, yuv.v)
    p = metrics.psnr_yuv(yuv, noisy)
    assert p["psnr_y"] == pytest.approx(10 * np.log10(255**2 / 9), abs=0.05)
    assert p["psnr_yuv"] == pytest.approx((6 * p["psnr_y"] + 2 * metrics.PSNR_CAP_DB) / 8)


def test_ms_ssim_scales_follow_frame_size():
    assert metrics.ms_ssim_scales(240, 416) == 5
    assert metrics.ms_ssim_scales(144, 176) == 4
    assert metrics.ms_ssim_scales(64, 96) == 3


def test_ms_ssim_matches_pytorch_msssim_where_both_apply():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    torch = pytest.importorskip("torch")
    a = _video(2, 176, 200, seed=1)
    rng = np.random.default_rng(2)
    b = np.clip(a.astype(int) + rng.integers(-25, 26, a.shape), 0, 255).astype(np.uint8)
    ours, k = metrics.ms_ssim(a, b)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).double()
    y = torch.from_numpy(b).permute(0, 3, 1, 2).double()
    ref = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=True).item()
    assert k == 5
    assert ours == pytest.approx(ref, abs=1e-5)


def test_ms_ssim_small_frames_and_identity():
    a = _video(2, 64, 96)
    value, k = metrics.ms_ssim(a, a)
    assert k == 3 and value == pytest.approx(1.0)
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)


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


def test_lpips_never_downloads_and_says_why(monkeypatch, tmp_path):
    pytest.importorskip("lpips")
    torch = pytest.importorskip("torch")

    def no_network(*a, **k):
        raise AssertionError("LPIPS availability check tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    metrics.lpips_status.cache_clear()
    try:
        reason = metrics.lpips_status()
        assert reason and "not in the torch hub cache" in reason
        with pytest.raises(RuntimeError):
            metrics.lpips_video(_video(1), _video(1))
    finally:
        metrics.lpips_status.cache_clear()
