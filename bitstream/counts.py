"""Adaptive binary counts, shared by both coder versions (FORMAT.md 6.4): integer counts -> probabilities on the
2^-16 grid, and the update after each coding call."""

from __future__ import annotations

import numpy as np

PROB_BITS = 16  # probabilities are q / 2**16 with integer q
PROB_ONE = 1 << PROB_BITS
PROB_MIN = 32  # q is clipped to [PROB_MIN, PROB_ONE - PROB_MIN]: at most 11 bits per binary symbol
ADAPT_LIMIT = 1024  # a context's n0 + n1 is rescaled to this once it grows past it


def probabilities(counts: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """P(bit = 1) of each context index in ``ctx``, float64 on the 2^-16 grid, from ``counts`` int64 (C, 2) of
    positive integers: ``q = (n1 * 2^16 + floor(N / 2)) div N`` clipped to PROB_MIN..PROB_ONE - PROB_MIN."""
    n = counts[:, 0] + counts[:, 1]
    q = (counts[:, 1] * PROB_ONE + (n >> 1)) // n
    np.maximum(q, PROB_MIN, out=q)
    np.minimum(q, PROB_ONE - PROB_MIN, out=q)
    return (q * (1.0 / PROB_ONE))[ctx]


def adapt(counts: np.ndarray, ctx: np.ndarray, sym: np.ndarray) -> None:
    """Count each (context, bit) pair of a coding call into ``counts`` (C, 2) in place, then rescale every context
    whose total passed ADAPT_LIMIT: ``n_v = max(1, n_v * ADAPT_LIMIT div N)``."""
    adapt_keys(counts, ctx * 2 + sym)


def adapt_keys(counts: np.ndarray, keys: np.ndarray) -> None:
    """:func:`adapt` with the pairs given as keys ``context * 2 + bit``."""
    counts += np.bincount(keys, minlength=counts.size).reshape(-1, 2)
    tot = counts[:, 0] + counts[:, 1]
    over = tot > ADAPT_LIMIT
    if over.any():
        counts[over] = np.maximum(counts[over] * ADAPT_LIMIT // tot[over, None], 1)
