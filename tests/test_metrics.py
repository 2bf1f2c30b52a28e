"""vcodec.metrics and vcodec.colour: the one definition of PSNR, MS-SSIM and BT.709 limited-range Y'CbCr."""

import numpy as np
import pytest
import pytorch_msssim  # the oracle for our MS-SSIM (a test dependency)
import torch

from vcodec import colour, metrics
from vcodec.train.losses import ssim_frames


def _video(t=2, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.integers(0, 40, (t, h, w, 3)), axis=2) % 256
    return base.astype(np.uint8)


def _noisy(a, amp=25, seed=2):
    rng = np.random.default_rng(seed)
    return np.clip(a.astype(int) + rng.integers(-amp, amp + 1, a.shape), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ colour
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
    # the BT.709 (not BT.601) luma weights: pure green is 16 + 219 * 0.7152 = 172.6
    green = np.zeros((1, 1, 1, 3), np.uint8)
    green[..., 1] = 255
    assert colour.rgb_to_y(green).item() == 173


def test_luma_alone_equals_the_420_y_plane_and_takes_odd_sizes():
    a = _video(2, 64, 96)
    assert np.array_equal(colour.rgb_to_y(a), colour.rgb_to_yuv420(a).y)
    assert colour.rgb_to_y(_video(1, 17, 33)).shape == (1, 17, 33)


def test_odd_sizes_get_ceil_half_chroma_from_the_repeated_edge():
    """4:2:0 of an odd-sized video as FFmpeg's yuv420p stores it: chroma planes of ceil(H/2) x ceil(W/2), equal to
    those of the video with its last row and column repeated; Y untouched. Back to RGB at the odd size."""
    a = _video(2, 17, 33)
    yuv = colour.rgb_to_yuv420(a)
    even = colour.rgb_to_yuv420(np.pad(a, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge"))
    assert yuv.y.shape == (2, 17, 33) and yuv.u.shape == yuv.v.shape == (2, 9, 17)
    assert np.array_equal(yuv.y, colour.rgb_to_y(a))
    assert np.array_equal(yuv.u, even.u) and np.array_equal(yuv.v, even.v)
    assert colour.yuv420_to_rgb(yuv).shape == a.shape
    assert metrics.psnr_yuv_611(yuv, colour.rgb_to_yuv420(_noisy(a, 3)))["psnr_yuv"] > 35


def test_bit_depth_shift_roundtrip():
    p = np.arange(256, dtype=np.uint8)
    assert np.array_equal(colour.from_high_bit_depth(colour.to_high_bit_depth(p, 10), 10), p)
    assert colour.from_high_bit_depth(np.array([1021, 1022, 1023], np.uint16), 10).tolist() == [255, 255, 255]


# ------------------------------------------------------------------ PSNR
def test_psnr_yuv_611_weighting_and_cap():
    yuv = colour.rgb_to_yuv420(_video())
    same = metrics.psnr_yuv_611(yuv, yuv)
    assert same["psnr_yuv"] == metrics.PSNR_CAP_DB
    noisy = colour.Yuv420(np.clip(yuv.y.astype(int) + 3, 0, 255).astype(np.uint8), yuv.u, yuv.v)
    p = metrics.psnr_yuv_611(yuv, noisy)
    assert p["psnr_y"] == pytest.approx(10 * np.log10(255**2 / 9), abs=0.05)
    assert p["psnr_yuv"] == pytest.approx((6 * p["psnr_y"] + 2 * metrics.PSNR_CAP_DB) / 8)


def test_psnr_is_the_mean_of_per_frame_values_not_of_the_global_mse():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a.copy()
    b[0] += 1  # frame 0: MSE 1 (48.13 dB); frame 1 identical (capped at 100 dB)
    assert metrics.psnr_rgb(a, b) == pytest.approx((10 * np.log10(255**2) + 100) / 2)
    b[1] += 4  # frame 1: MSE 16
    expected = (10 * np.log10(255**2) + 10 * np.log10(255**2 / 16)) / 2
    assert metrics.psnr_rgb(a, b) == pytest.approx(expected)
    assert metrics.psnr_rgb(a, b) != pytest.approx(10 * np.log10(255**2 / 8.5))  # the global-MSE value


def test_psnr_y_bt709_limited_is_the_benchmarks_psnr_y():
    a = _video(3, 64, 96)
    b = _noisy(a)
    expected = metrics.psnr_yuv_611(colour.rgb_to_yuv420(a), colour.rgb_to_yuv420(b))["psnr_y"]
    assert metrics.psnr_y_bt709_limited(a, b) == expected
    c = _video(2, 17, 33)  # odd sizes are fine for Y
    assert 10 < metrics.psnr_y_bt709_limited(c, _noisy(c)) < 60


# ------------------------------------------------------------------ SSIM / MS-SSIM
def test_ms_ssim_scales_follow_frame_size():
    assert metrics.ms_ssim_scales(240, 416) == 5
    assert metrics.ms_ssim_scales(144, 176) == 4
    assert metrics.ms_ssim_scales(64, 96) == 3


@pytest.mark.parametrize("size", [(176, 200), (171, 197)])  # odd sizes are padded when halving, as the oracle does
def test_ms_ssim_rgb_matches_pytorch_msssim_where_both_apply(size):
    a = _video(2, *size, seed=1)
    b = _noisy(a)
    ours, k = metrics.ms_ssim_rgb(a, b)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).double()
    y = torch.from_numpy(b).permute(0, 3, 1, 2).double()
    ref = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=True).item()
    assert k == 5
    assert ours == pytest.approx(ref, abs=1e-5)


def test_ms_ssim_small_frames_and_identity():
    a = _video(2, 64, 96)
    value, k = metrics.ms_ssim_rgb(a, a)
    assert k == 3 and value == pytest.approx(1.0)
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)


def test_training_ssim_term_is_the_metrics_ssim():
    a = _video(2, 48, 64)
    b = _noisy(a)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).double()
    y = torch.from_numpy(b).permute(0, 3, 1, 2).double()
    ref = pytorch_msssim.ssim(x, y, data_range=255, size_average=True).item()
    # (B, 3, T, H, W) in [-1, 1], as the loss sees video
    va = torch.from_numpy(a).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    vb = torch.from_numpy(b).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    assert ssim_frames(va, vb).item() == pytest.approx(ref, abs=1e-4)
    vb.requires_grad_()
    ssim_frames(va, vb).backward()
    assert torch.isfinite(vb.grad).all()
