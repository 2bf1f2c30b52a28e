"""Bounded, seeded mutation fuzzing: every mutated stream decodes or raises BitstreamError.

The long run (>= 10^6 cases, in a memory-limited worker process) is ``python -m tests.fuzz_long``.
"""

from __future__ import annotations

import resource
import time

import pytest

from tests.fuzz_long import make_corpus, run_cases

CASES = 20000
BUDGET_S = 40.0


@pytest.mark.slow
def test_fuzz_reader_bounded():
    corpus = make_corpus()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    stats = run_cases(0, CASES, seed=20261125, corpus=corpus, stop_at=t0 + BUDGET_S)
    elapsed = time.monotonic() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    failures = stats["failures"]
    assert not failures, "\n".join(f"seed={s} case={c}: {m}\n{tb}" for s, c, m, tb in failures[:5])
    # a slow machine may stop early, but thousands of cases must have run
    assert stats["cases"] >= min(CASES, 2000), (stats["cases"], elapsed)
    assert stats["outcomes"].get("ok", 0) > 0 and len(stats["outcomes"]) >= 4  # both outcomes are reached
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB"
