"""BD-rate: hand-checked cases through the `bjontegaard` package wrapper."""

import math

import numpy as np
import pytest

from benchmarks.bdrate import bd_rate, monotone_points


def test_same_quality_at_80_percent_rate_is_minus_20():
    r = np.array([0.1, 0.2, 0.4, 0.8])
    d = 10 * np.log10(r) + 30
    res = bd_rate(r, d, 0.8 * r, d)
    assert res.status == "ok"
    assert res.value == pytest.approx(-20.0, abs=1e-9)
    assert res.overlap == pytest.approx(1.0)


def test_one_db_shift_on_a_10db_per_decade_line():
    # anchor: D = 10 log10(R) + 30; test is 1 dB better everywhere, i.e. log10 R_test(D) = log10 R_anchor(D) - 0.1.
    # By hand: BD-rate = 10**-0.1 - 1 = -20.567 %, over the overlapping quality range only.
    r = np.array([0.1, 0.2, 0.4, 0.8])
    d = 10 * np.log10(r) + 30
    res = bd_rate(r, d, r, d + 1)
    assert res.value == pytest.approx((10**-0.1 - 1) * 100, abs=1e-9)
    assert 0.5 < res.overlap < 1.0


def test_different_slopes_integrates_the_log_rate_difference():
    # anchor: log10 R = (D - 30) / 10, test: log10 R = (D - 30) / 20, D in [30, 40].
    # mean difference = mean over D of -(D - 30) / 20 = -5 / 20 = -0.25 -> 10**-0.25 - 1 = -43.77 %
    d = np.linspace(30, 40, 6)
    res = bd_rate(10 ** ((d - 30) / 10), d, 10 ** ((d - 30) / 20), d)
    assert res.value == pytest.approx((10**-0.25 - 1) * 100, abs=1e-6)


def test_no_overlap_is_reported_not_invented():
    r = np.array([0.1, 0.2, 0.4])
    res = bd_rate(r, [30, 32, 34], r, [40, 42, 44])
    assert res.status == "no overlap" and res.value is None
    assert res.text() == "no overlap"


def test_too_few_points():
    assert bd_rate([0.1], [30], [0.1, 0.2], [30, 31]).status == "too few points"


def test_dominated_points_are_dropped_and_order_does_not_matter():
    r, m = monotone_points([0.4, 0.1, 0.2, 0.3], [34, 30, 32, 31.5])
    assert list(r) == [0.1, 0.2, 0.4] and list(m) == [30, 32, 34]
    a = bd_rate([0.4, 0.1, 0.2, 0.8], [34, 30, 32, 36], [0.08, 0.16, 0.32, 0.64], [30, 32, 34, 36])
    assert a.value == pytest.approx(-20.0, abs=1e-9)
    assert math.isfinite(a.value)


def test_model_bdrate_compares_one_codec_across_two_results_files():
    from benchmarks.model_bdrate import table

    def results(scale):
        rows = [{"clip": c, "bpp": b * scale, "psnr_yuv": q, "psnr_y": q + 1, "ms_ssim_db": q / 2, "vmaf": None}
                for c in ("a", "b") for b, q in ((0.01, 30.0), (0.02, 33.0), (0.04, 35.0), (0.08, 36.5))]
        return {"codecs": [{"name": "vcodec", "results": rows}]}

    text, summary = table(results(1.0), results(0.5), "vcodec")
    assert summary["psnr_yuv"]["mean"] == pytest.approx(-50.0, abs=0.01) and summary["psnr_yuv"]["clips"] == 2
    assert summary["vmaf"]["mean"] is None and "n/a" in text
    assert table(results(1.0), results(1.0), "vcodec")[1]["psnr_y"]["mean"] == pytest.approx(0.0, abs=1e-9)


def test_rate_range_checks_and_report():
    from benchmarks.rate_range import markdown, range_checks
    rows = [{"quality": q, "bpp": b, "psnr_y": y, "psnr_yuv": y + 1, "vmaf": v}
            for q, b, y, v in ((1, 0.005, 25.0, 4.0), (2, 0.05, 28.0, 20.0), (3, 0.35, 31.0, 50.0))]
    assert range_checks(rows) == {"lowest_ok": True, "highest_ok": True, "monotone": True}
    flat = [*rows[:2], {**rows[2], "vmaf": 20.0}]                  # the top point buys no VMAF
    assert range_checks(flat)["monotone"] is False
    assert range_checks(rows[1:2] + rows[1:2]) == {"lowest_ok": False, "highest_ok": False, "monotone": False}
    report = {"model": "m", "weights_hash": "0" * 64, "clip": {"name": "c", "start": 20, "frames": 33},
              "width": 1280, "height": 720, "rows": rows, **range_checks(rows)}
    text = markdown(report, "python -m benchmarks.rate_range")
    assert "| 3 | 0.3500 | 31.00 | 32.00 | 50.00 |" in text and "frames 20-52 at 1280x720" in text
    assert text.count("yes") == 3
