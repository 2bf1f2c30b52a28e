"""Bjøntegaard delta rate, through the maintained `bjontegaard` package (FAU Erlangen, BSD-3).

We call `bjontegaard.bd_rate(..., method="pchip")`: log10(rate) is interpolated as a piecewise cubic Hermite (PCHIP)
function of the quality metric, as in the JVET common-test-conditions spreadsheet, and the mean log-rate difference
over the overlapping quality interval becomes a percentage: (10 ** mean - 1) * 100. Negative = the test codec needs
fewer bits than the anchor for the same quality.

What we add around it:
- points are sorted by rate and only the points whose quality strictly increases with rate are kept (an interpolant of
  rate over quality needs a monotone curve; a point that costs more bits for no better quality is dominated anyway);
- curves whose quality ranges do not overlap get status "no overlap" (no number is invented); fewer than two usable
  points give "too few points".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BDResult:
    value: float | None  # percent; None unless status == "ok"
    status: str  # "ok" | "no overlap" | "too few points"
    overlap: float = 0.0  # overlap of the two quality ranges / their union, 0..1

    def text(self) -> str:
        return f"{self.value:+.1f}%" if self.status == "ok" else self.status


def monotone_points(rates, metric) -> tuple[np.ndarray, np.ndarray]:
    """Sort by rate; keep the points whose metric strictly increases with rate (finite, positive rates only)."""
    pts = sorted((float(r), float(m)) for r, m in zip(rates, metric) if r > 0 and math.isfinite(r) and math.isfinite(m))
    keep: list[tuple[float, float]] = []
    for r, m in pts:
        if not keep or m > keep[-1][1]:
            if keep and r == keep[-1][0]:
                keep[-1] = (r, m)
            else:
                keep.append((r, m))
    arr = np.asarray(keep, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def bd_rate(anchor_rates, anchor_metric, test_rates, test_metric) -> BDResult:
    """BD-rate of test vs anchor, in percent (see module docstring)."""
    import bjontegaard

    ra, ma = monotone_points(anchor_rates, anchor_metric)
    rt, mt = monotone_points(test_rates, test_metric)
    if len(ra) < 2 or len(rt) < 2:
        return BDResult(None, "too few points")
    lo, hi = max(ma[0], mt[0]), min(ma[-1], mt[-1])
    union = max(ma[-1], mt[-1]) - min(ma[0], mt[0])
    if hi <= lo:
        return BDResult(None, "no overlap")
    overlap = float((hi - lo) / union) if union > 0 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns on partial overlap; we report `overlap` instead
        value = bjontegaard.bd_rate(ra, ma, rt, mt, method="pchip", require_matching_points=False, min_overlap=0)
    value = float(value)
    if not math.isfinite(value):
        return BDResult(None, "no overlap", overlap)
    return BDResult(value, "ok", overlap)
