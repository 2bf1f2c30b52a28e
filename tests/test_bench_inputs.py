"""Inputs as researchers have them: raw .yuv (format from the name or given), 10-bit sources measured at 10 bits."""

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from vcodec import colour, metrics, testing
from vcodec.colour import Yuv420
from vcodec.errors import InputError
from vcodec.io import rawyuv


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Beauty_1920x1080_120fps_420_8bit_YUV.yuv", (1920, 1080, 120, "420", 8)),
        ("BasketballDrive_1920x1080_50.yuv", (1920, 1080, 50, "420", 8)),
        ("Campfire_3840x2160_30fps_10bit_420.yuv", (3840, 2160, 30, "420", 10)),
        ("videoSRC01_1920x1080_30.yuv", (1920, 1080, 30, "420", 8)),
        ("RaceHorses_416x240_30.yuv", (416, 240, 30, "420", 8)),
        ("Tango_4096x2160_59.94fps_444_12bit.yuv", (4096, 2160, 60000 / 1001, "444", 12)),
    ],
)
def test_standard_sequence_names_are_parsed(name, expected):
    r = rawyuv.raw_yuv(name)
    assert (r.width, r.height, float(r.fps), r.chroma, r.bit_depth) == pytest.approx(expected)


def test_options_override_the_name_and_a_silent_name_is_refused():
    r = rawyuv.raw_yuv("Beauty_1920x1080_120fps_420_8bit_YUV.yuv", size="832x480", fps="30000/1001",
                       pix_fmt="yuv420p10le")  # fmt: skip
    assert (r.width, r.height, r.fps, r.bit_depth, r.pix_fmt) == (832, 480, Fraction(30000, 1001), 10, "yuv420p10le")
    with pytest.raises(InputError, match="--size"):
        rawyuv.raw_yuv("clip.yuv")
    with pytest.raises(InputError, match="--fps"):
        rawyuv.raw_yuv("clip.yuv", size="64x64")
    # a chroma token right after the size is the chroma format, not a bare frame rate (was: 420 fps)
    for name in ("x_64x48_420.yuv", "x_64x48_444_8bit.yuv"):
        with pytest.raises(InputError, match="--fps"):
            rawyuv.raw_yuv(name)
    assert rawyuv.raw_yuv("x_64x48_444.yuv", fps=25).chroma == "444"


def _write_10bit(path, t=3, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(64, 941, (t, h, w)).astype(np.uint16)
    u = rng.integers(64, 961, (t, h // 2, w // 2)).astype(np.uint16)
    v = rng.integers(64, 961, (t, h // 2, w // 2)).astype(np.uint16)
    rawyuv.write_planes(path, y, u, v)
    return y, u, v


def test_read_planes_exact_segment_and_wrong_size_refused(tmp_path):
    p = tmp_path / "seq_48x32_25fps_10bit.yuv"
    y, u, v = _write_10bit(p)
    r = rawyuv.raw_yuv(p)
    assert r.num_frames() == 3
    yy, uu, vv = rawyuv.read_planes(r, start=1, frames=5)  # clipped to the file
    assert yy.dtype == np.uint16 and (yy == y[1:]).all() and (uu == u[1:]).all() and (vv == v[1:]).all()
    with pytest.raises(InputError, match="not a whole number"):
        rawyuv.raw_yuv(p, size="48x30").num_frames()


def test_vcodec_encode_reads_raw_yuv_with_and_without_options(tmp_path):
    from vcodec.cli import main

    p = tmp_path / "seq_48x32_25fps_420_10bit.yuv"
    _write_10bit(p, t=3)
    plain = tmp_path / "plain.yuv"
    plain.write_bytes(p.read_bytes())
    model = testing.save_tokenizer(testing.tiny_tokenizer(window_frames=5), tmp_path / "tiny.pt")
    runner = CliRunner()
    res = runner.invoke(main, ["encode", str(p), "-o", str(tmp_path / "a.vcb"), "--model", str(model), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["frames"], summary["width"], summary["height"], summary["frame_rate"]) == (3, 48, 32, "25/1")
    args = ["encode", str(plain), "-o", str(tmp_path / "b.vcb"), "--model", str(model), "--json"]
    assert runner.invoke(main, args).exit_code != 0  # no size in the name
    res = runner.invoke(main, args + ["--size", "48x32", "--fps", "25", "--pix-fmt", "yuv420p10le"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.vcb").read_bytes() == (tmp_path / "b.vcb").read_bytes()


def test_metrics_at_10_bits_use_peak_1023_and_8_bit_results_are_unchanged():
    rng = np.random.default_rng(1)
    ref8 = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    dist8 = np.clip(ref8.astype(int) + rng.integers(-3, 4, ref8.shape), 0, 255).astype(np.uint8)
    mse = np.mean((ref8.astype(float) - dist8) ** 2, axis=(1, 2, 3))
    assert metrics.psnr_rgb(ref8, dist8) == pytest.approx(np.mean(10 * np.log10(255**2 / mse)))
    assert metrics.psnr_rgb(ref8, dist8) == metrics.psnr_rgb(ref8, dist8, bit_depth=8)
    # the same sample errors on 10-bit samples: peak 1023
    ref10, dist10 = ref8.astype(np.uint16) * 4, dist8.astype(np.uint16) * 4
    mse10 = mse * 16
    assert metrics.psnr_rgb(ref10, dist10, bit_depth=10) == pytest.approx(np.mean(10 * np.log10(1023**2 / mse10)))
    # YUV at 10 bits: an 8-bit source shifted left by 2 gives the 8-bit PSNR + 20 log10(1023 / 1020)
    yuv8 = colour.rgb_to_yuv420(ref8)
    d8 = colour.rgb_to_yuv420(dist8)
    up = lambda q: Yuv420(*(p.astype(np.uint16) << 2 for p in q.planes()))  # noqa: E731
    p8 = metrics.psnr_yuv_611(yuv8, d8)
    p10 = metrics.psnr_yuv_611(up(yuv8), up(d8), bit_depth=10)
    assert p10["psnr_yuv"] - p8["psnr_yuv"] == pytest.approx(20 * np.log10(1023 / 1020), abs=1e-9)
    # MS-SSIM is invariant to scaling samples and data range together
    v8, k8 = metrics.ms_ssim_rgb(ref8, dist8)
    v10, k10 = metrics.ms_ssim_rgb(colour.rgb_bit_depth(ref8, 10), colour.rgb_bit_depth(dist8, 10), bit_depth=10)
    assert k8 == k10 and v10 == pytest.approx(v8, abs=2e-3) and v10 != v8


def test_colour_at_10_bits_matches_8_bits_shifted_and_round_trips():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    y8, y10 = colour.rgb_to_yuv420(rgb), colour.rgb_to_yuv420(rgb, bit_depth=10)
    assert y10.y.dtype == np.uint16 and np.abs(y10.y.astype(int) - 4 * y8.y.astype(int)).max() <= 2
    assert 64 <= y10.y.min() and y10.y.max() <= 940
    assert (colour.rgb_to_y(rgb, 10) == y10.y).all()
    back = colour.yuv420_to_rgb(y10, bit_depth=10)
    assert back.dtype == np.uint16 and back.max() <= 1023
    assert np.abs(colour.rgb_bit_depth(back, 10).astype(int) - colour.yuv420_to_rgb(y8).astype(int)).max() <= 3


def test_vmaf_reads_10_bit_planes():
    from benchmarks import metrics as bench_metrics
    from benchmarks.codecs import ffmpeg_exe

    ffmpeg = ffmpeg_exe()
    if bench_metrics.vmaf_status(ffmpeg):
        pytest.skip(bench_metrics.vmaf_status(ffmpeg))
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    ref8, ref10 = colour.rgb_to_yuv420(rgb), colour.rgb_to_yuv420(rgb, bit_depth=10)
    noisy = Yuv420(np.clip(ref10.y.astype(int) + rng.integers(-40, 41, ref10.y.shape), 0, 1023).astype(np.uint16),
                   ref10.u, ref10.v)  # fmt: skip
    same8 = bench_metrics.vmaf_frames(ref8, ref8, ffmpeg)[0]
    same10, frames, _ = bench_metrics.vmaf_frames(ref10, ref10, ffmpeg, bit_depth=10)
    assert len(frames) == 2 and same10 == pytest.approx(same8, abs=0.5)
    assert bench_metrics.vmaf_frames(ref10, noisy, ffmpeg, bit_depth=10)[0] < same10 - 1
