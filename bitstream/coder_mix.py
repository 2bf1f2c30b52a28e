"""The learned context-mixing model of coder ``vcb-ctxbin`` version 2 (FORMAT.md section 7).

Version 2 codes the same bits as version 1 (bit ``k`` of a token = the sign of latent channel ``k``), but one
channel at a time: for every latent frame ``t``, level ``l``, checkerboard group ``g`` and bit ``k``, the bits of
all positions of the group go through one vectorised ``constriction`` call. A bit's probability comes in two
integer stages:

1. **Logistic stage.** A learned integer weight vector ``W[l, g, k]`` (units of 2^-8 in the logit) over integer
   inputs the decoder already has, every bit entering as -1 / +1 (0 where absent):

   - ``lower``  -- bits ``j < k`` of the same token (bits ``j >= k`` enter as 0),
   - ``prev``   -- all bits of the co-located token in the previous latent frame,
   - ``coarse`` -- all bits of the same token one level coarser,
   - ``nbcur``  -- for each bit ``j``, its sum over the in-bounds 4-neighbours in the current latent frame (group 1
     only: those neighbours are group 0, decoded already; group 0 gets 0),
   - ``nbprev`` -- bit ``k``'s sum over the in-bounds 4-neighbours in the previous latent frame,
   - a constant 1.

   The logit (an exact integer) is cut into one of :data:`NUM_BUCKETS` buckets of half a logit unit.
2. **Adaptive stage.** An integer count table per (level, group, bit), indexed by (bucket, the co-located bit
   ``k`` of the previous latent frame: 0, 1 or 2 = none), starting from learned counts and updated after every
   call exactly as version 1's tables are. The counts give the probability ``q / 2^16``.

Every quantity is an integer; the logistic stage's sums are formed in float64, exact because every partial sum
is an integer far below 2^53 (:data:`MAX_WEIGHT` bounds them), so every machine computes the same contexts. The
parameters (:class:`MixTables`) are stored with the model and learned by ``bitstream.fit_tables(..., version=2)``
(the weights by :func:`fit_weights`).
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .counts import adapt, probabilities
from .errors import TablesMismatchError

NUM_BUCKETS = 24  # logit buckets of 1/2 unit, centred on 0: logits beyond +-6 share the end buckets
NUM_SSE = NUM_BUCKETS * 3  # adaptive contexts per (level, group, bit): bucket x previous-frame bit (0, 1, none)
WEIGHT_SHIFT = 8  # weights are integers in units of 2^-8 logit
MAX_WEIGHT = 1 << 15  # |weight| < MAX_WEIGHT: a logit's sum stays below 2^31 (inputs are at most 4 in size)
FIT_ITERATIONS = 8  # Newton steps of the logistic fit
FIT_L2 = 1.0  # ridge penalty of the logistic fit (on the summed log-likelihood)
FIT_SAMPLES = 60_000  # positions per (level, group) the logistic fit uses at most


def num_inputs(token_bits: int) -> int:
    """Inputs of the logistic stage for ``token_bits``-bit tokens: lower, prev, coarse, nbcur, nbprev_k, 1."""
    return 4 * token_bits + 2


@dataclass(frozen=True)
class MixTables:
    """The parameters of coder version 2 for one token width ``B``: ``weights`` int32 ``(L, 2, B, 4B + 2)``
    (level, group, bit, input; FORMAT.md 7.2 gives the input order) and the initial adaptive ``counts`` int32
    ``(L, 2, B, NUM_SSE, 2)`` (``(n0, n1)`` per context, each in 1..65536)."""

    weights: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, tables) -> "MixTables":
        """``tables`` as MixTables: itself, or built from its :meth:`as_dict` form (as a checkpoint stores it)."""
        return tables if isinstance(tables, cls) else cls(tables["weights"], tables["counts"])

    @property
    def levels(self) -> int:
        return self.weights.shape[0]

    def as_dict(self) -> dict:
        """Plain arrays, for a checkpoint."""
        return {"weights": np.asarray(self.weights, np.int32), "counts": np.asarray(self.counts, np.int32)}


def check_mix_tables(tables, token_bits: int, levels: int | None, max_count: int) -> MixTables | None:
    """``tables`` (a :class:`MixTables` or its :meth:`~MixTables.as_dict`) validated for ``token_bits``-bit tokens
    and at least ``levels`` levels, as int64 arrays; None stays None (zero weights, uniform counts).
    TablesMismatchError otherwise."""
    if tables is None:
        return None
    if isinstance(tables, dict):
        if set(tables) != {"weights", "counts"}:
            raise TablesMismatchError(f"coder v2 tables need 'weights' and 'counts', got {sorted(tables)}")
        tables = MixTables.of(tables)
    if not isinstance(tables, MixTables):
        raise TablesMismatchError(f"coder v2 needs MixTables, got {type(tables).__name__}")
    w, c = np.asarray(tables.weights), np.asarray(tables.counts)
    if w.dtype.kind not in "iu" or c.dtype.kind not in "iu":
        raise TablesMismatchError("coder v2 tables must be integers")
    lv = w.shape[0] if w.ndim == 4 else -1
    if (w.ndim != 4 or w.shape[1:] != (2, token_bits, num_inputs(token_bits)) or not 1 <= lv <= 16
            or c.shape != (lv, 2, token_bits, NUM_SSE, 2)):
        raise TablesMismatchError(
            f"coder v2 tables have shapes {w.shape} / {c.shape}, expected (L, 2, {token_bits}, "
            f"{num_inputs(token_bits)}) / (L, 2, {token_bits}, {NUM_SSE}, 2) for {token_bits}-bit tokens")
    if levels is not None and lv < levels:
        raise TablesMismatchError(f"coder tables cover {lv} levels, grid has {levels}")
    if w.size and np.abs(w.astype(np.int64)).max() >= MAX_WEIGHT:
        raise TablesMismatchError(f"coder v2 weights must lie in -{MAX_WEIGHT - 1}..{MAX_WEIGHT - 1}")
    if c.size and (c.min() < 1 or c.max() > max_count):
        raise TablesMismatchError(f"coder table counts must lie in 1..{max_count}")
    return MixTables(w.astype(np.int64), c.astype(np.int64))


def mix_tables_hash(tables: MixTables) -> str:
    """Hex sha256 of version 2 tables (independent of dtype)."""
    h = hashlib.sha256(b"vcb-ctxbin-tables-v2\0")
    for a in (tables.weights, tables.counts):
        a = np.asarray(a)
        h.update(struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape))
        h.update(np.ascontiguousarray(a, dtype="<i4").tobytes())
    return h.hexdigest()


def one_blas_thread():
    """A context in which BLAS runs on one thread: the logistic stage's products are small (a group's positions x
    3B x B), and BLAS threads started for them only wait on each other (2-3x slower beside torch's own threads).
    Results do not depend on it (module docstring). Without ``threadpoolctl`` installed: no limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def neighbour_sum(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H*W, B) small integers (bits 0/1, or signs -1/0/+1) -> (H*W, B) of the same dtype: the sum over each
    position's in-bounds 4-neighbours (at most 4 terms, so int8 and uint8 cannot overflow). Both coder versions."""
    p = plane.reshape(h, w, -1)
    out = np.zeros_like(p)
    out[1:] += p[:-1]
    out[:-1] += p[1:]
    out[:, 1:] += p[:, :-1]
    out[:, :-1] += p[:, 1:]
    return out.reshape(h * w, -1)


def _signs(bits: np.ndarray) -> np.ndarray:
    """uint8 bits 0/1, or 2 for an absent bit -> int8 signs -1/+1, 0 where absent."""
    s = 2 * bits.astype(np.int8) - 1
    s[bits > 1] = 0
    return s


class MixModel:
    """Coder version 2's state for one grid: the weights, the adaptive counts, and the logits of the group being
    coded. Shared by encoder, decoder and :func:`fit_mix_tables`, so that all three compute the same contexts.

    Per (latent frame, level): :meth:`start` with the previous latent frame's and the coarser level's bit planes;
    then per group ``g`` in (0, 1): :meth:`group` (with the current plane, whose group 0 is known when g = 1), and
    per bit ``k``: :meth:`contexts`, :meth:`probabilities`, code, :meth:`coded`."""

    def __init__(self, levels: int, token_bits: int, h: int, w: int, tables: MixTables | None, groups):
        self.bits, self.h, self.w, self.groups = token_bits, h, w, groups
        if tables is None:
            self.weights = np.zeros((levels, 2, token_bits, num_inputs(token_bits)), np.int64)
            self.counts = np.ones((levels, 2, token_bits, NUM_SSE, 2), np.int64)
        else:
            self.weights = tables.weights[:levels]
            self.counts = tables.counts[:levels].copy()
        b = token_bits
        wf = self.weights.astype(np.float64)  # integers, exact in float64 (so are all sums below: module docstring)
        self._lower = np.ascontiguousarray(np.tril(wf[..., :b], -1))  # (L, 2, B, B): row k = weights of bits j < k
        self._rest = np.ascontiguousarray(wf[..., b:4 * b].transpose(0, 1, 3, 2))  # (L, 2, 3B, B): prev, coarse, nbcur
        self._nbprev = wf[..., 4 * b]  # (L, 2, B)
        self._bias = wf[..., 4 * b + 1]  # (L, 2, B)

    def start(self, level: int, prev: np.ndarray | None, coarse: np.ndarray | None) -> None:
        """Begin a latent frame's level; ``prev`` / ``coarse``: (H*W, B) uint8 bits, or None (absent). ``prev`` may
        also hold 2 for single absent bits (bits its chunk did not code: a rate change, FORMAT.md 6.5)."""
        n, b = self.h * self.w, self.bits
        self.level = level
        self._sprev = np.zeros((n, b), np.int8) if prev is None else _signs(prev)
        self._scoarse = np.zeros((n, b), np.int8) if coarse is None else 2 * coarse.astype(np.int8) - 1
        self._nbp = np.zeros((n, b), np.int8) if prev is None else neighbour_sum(self._sprev, self.h, self.w)
        self._prevk = np.full((n, b), 2, np.int64) if prev is None else prev.astype(np.int64)

    def group(self, g: int, plane: np.ndarray) -> None:
        """Begin group ``g``; ``plane`` (H*W, B) uint8 holds group 0's bits when g = 1 (other entries unused)."""
        idx = self.groups[g][0]
        lv = self.level
        self.inputs = self._inputs(g, idx, plane)
        x, nbp = self.inputs
        # (n_g, B) logits without the lower bits' terms, which contexts() adds as the bits become known
        self._base = x.astype(np.float64) @ self._rest[lv, g] + nbp * self._nbprev[lv, g] + self._bias[lv, g]
        self._signs = np.zeros((len(idx), self.bits))  # s(bit) of the bits coded so far in this group, float64
        self._g, self._pk = g, self._prevk[idx]

    def _inputs(self, g: int, idx: np.ndarray, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prev | coarse | nbcur as int8 (n_g, 3B), nbprev int8 (n_g, B)) of group ``g``'s positions."""
        if g == 1:
            known = np.zeros(plane.shape, np.int8)
            g0 = self.groups[0][0]
            known[g0] = 2 * plane[g0].astype(np.int8) - 1
            nbc = neighbour_sum(known, self.h, self.w)[idx]
        else:
            nbc = np.zeros((len(idx), self.bits), np.int8)
        return np.concatenate([self._sprev[idx], self._scoarse[idx], nbc], axis=1), self._nbp[idx]

    def contexts(self, k: int) -> np.ndarray:
        """Adaptive-context index (0 .. NUM_SSE - 1) of bit ``k`` at every position of the current group: the logit
        (an exact integer held in float64) cut into half-unit buckets, then the previous frame's bit k."""
        z = self._base[:, k]
        if k:
            z = z + self._signs[:, :k] @ self._lower[self.level, self._g, k, :k]
        u = np.floor(z * (1.0 / (1 << (WEIGHT_SHIFT - 1)))) + NUM_BUCKETS // 2
        np.maximum(u, 0, out=u)
        np.minimum(u, NUM_BUCKETS - 1, out=u)
        return u.astype(np.int64) * 3 + self._pk[:, k]

    def probabilities(self, k: int, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) per position, float64 on the 2^-16 grid, from the integer counts (as version 1)."""
        return probabilities(self.counts[self.level, self._g, k], ctx)

    def coded(self, k: int, ctx: np.ndarray, sym: np.ndarray) -> None:
        """Bit ``k`` of the group is known (``sym`` 0/1 per position): adapt its counts, and keep it for the logits
        of the bits above it."""
        adapt(self.counts[self.level, self._g, k], ctx, sym)
        self._signs[:, k] = 2 * sym - 1


def encode_walk(model: MixModel, flat: np.ndarray, prev: list, unpack,
                on_group=None) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
    """The coding order over ``flat`` = ``uint32 (L, T, H*W)`` tokens: ``(level, group, bit, contexts, bits)``
    per coding call -- latent frame, level, group, bit -- with ``model`` updated after each (the caller codes the
    bits). ``prev`` (per level: the last latent frame's (H*W, B) bits, or None) is updated in place.
    ``on_group(level, group, model, bits)``, if given, sees each group's inputs (``model.inputs``) and bits."""
    levels, frames, _ = flat.shape
    for t in range(frames):
        cur = None
        for lv in range(levels):
            plane = unpack(flat[lv, t], model.bits)
            model.start(lv, prev[lv], cur)
            for g in (0, 1):
                model.group(g, plane)
                idx = model.groups[g][0]
                if on_group is not None:
                    on_group(lv, g, model, plane[idx])
                for k in range(model.bits):
                    ctx = model.contexts(k)
                    sym = plane[idx, k].astype(np.int64)
                    yield lv, g, k, ctx, sym
                    model.coded(k, ctx, sym)
            prev[lv] = cur = plane


def decode_walk(model: MixModel, out: np.ndarray, prev: list, decode, pack) -> None:
    """Inverse of :func:`encode_walk`: fill ``out`` = ``uint32 (L, T, H*W)`` with ``decode(probabilities)``'s
    bits, call by call."""
    levels, frames, n = out.shape
    for t in range(frames):
        cur = None
        for lv in range(levels):
            plane = np.zeros((n, model.bits), np.uint8)
            model.start(lv, prev[lv], cur)
            for g in (0, 1):
                model.group(g, plane)
                idx = model.groups[g][0]
                for k in range(model.bits):
                    ctx = model.contexts(k)
                    sym = np.asarray(decode(model.probabilities(k, ctx)), dtype=np.int64)
                    plane[idx, k] = sym
                    model.coded(k, ctx, sym)
            out[lv, t] = pack(plane)
            prev[lv] = cur = plane


# ----------------------------------------------------------------------------------------------
# fitting


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge logistic regression by Newton's method: float64 weights of ``x`` (n, F) for labels ``y`` (n,) 0/1;
    the last column is the constant (not penalised)."""
    wt = np.zeros(x.shape[1])
    reg = FIT_L2 * np.eye(x.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(FIT_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ wt, -30, 30)))
        grad = x.T @ (p - y) + reg @ wt
        hess = (x * (p * (1 - p))[:, None]).T @ x + reg + 1e-6 * np.eye(x.shape[1])
        wt -= np.linalg.solve(hess, grad)
    return wt


def fit_weights(rows: dict, levels: int, token_bits: int) -> np.ndarray:
    """int32 ``(levels, 2, B, 4B + 2)`` logistic weights from sampled rows: per (level, group), int8 ``(n, 5B)``
    = the bits, then prev | coarse | nbcur | nbprev as :meth:`MixModel._inputs` gives them."""
    b = token_bits
    out = np.zeros((levels, 2, b, num_inputs(b)), np.int32)
    for (lv, g), a in rows.items():
        bits_, rest, nbp = a[:, :b].astype(np.float64), a[:, b:4 * b].astype(np.float64), a[:, 4 * b:].astype(np.float64)
        one = np.ones((len(a), 1))
        for k in range(b):
            lower = bits_.copy()
            lower[:, k:] = 0
            x = np.concatenate([lower, rest, nbp[:, k:k + 1], one], axis=1)
            wt = _logistic(x, (bits_[:, k] > 0).astype(np.float64))
            out[lv, g, k] = np.clip(np.round(wt * (1 << WEIGHT_SHIFT)), -(MAX_WEIGHT - 1), MAX_WEIGHT - 1)
    return out
