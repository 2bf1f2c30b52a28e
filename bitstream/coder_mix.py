"""The learned context-mixing model of coder ``vcb-ctxbin`` versions 2 and 3 (FORMAT.md sections 7 and 7.5).

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

Every quantity is an integer; the logistic stage's sums are formed in float32 or float64, exact because every
partial sum is an integer small enough for that type (:class:`MixModel` checks the bound), so every machine
computes the same contexts. The parameters (:class:`MixTables`) are stored with the model and learned by
``bitstream.fit_tables(..., version=2)`` (the weights by :func:`fit_weights`).

**Version 3** codes a token's bits in (at most) :data:`BLOCKS` blocks: the ``lower`` inputs of a bit are only the
bits of the blocks below its own, so a whole block of a group is one coding call, its bits coded in pairs as
4-symbol alphabets (:func:`coded_symbols`); its adaptive contexts are numbered previous-bit-major. Version 2 is
the same model with blocks of one bit. The encoder, knowing every bit, computes a group's contexts at once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .counts import adapt_keys, probabilities
from .errors import TablesMismatchError

NUM_BUCKETS = 24  # logit buckets of 1/2 unit, centred on 0: logits beyond +-6 share the end buckets
NUM_SSE = NUM_BUCKETS * 3  # adaptive contexts per (level, group, bit): bucket x previous-frame bit (0, 1, none)
WEIGHT_SHIFT = 8  # weights are integers in units of 2^-8 logit
MAX_WEIGHT = 1 << 15  # |weight| < MAX_WEIGHT: a logit's sum stays below 2^31 (inputs are at most 4 in size)
FIT_ITERATIONS = 8  # Newton steps of the logistic fit
FIT_L2 = 1.0  # ridge penalty of the logistic fit (on the summed log-likelihood)
FIT_SAMPLES = 60_000  # positions per (level, group) the logistic fit uses at most
BLOCKS = 4  # version 3 codes a token's bits in (at most) this many blocks, one coding call per group and block


def block_bits(version: int, token_bits: int) -> int:
    """Bits of a token coded together (in one coding call per group): version 2 one, version 3 ceil(B / 4)."""
    return 1 if version == 2 else -(-token_bits // BLOCKS)


def num_inputs(token_bits: int) -> int:
    """Inputs of the logistic stage for ``token_bits``-bit tokens: lower, prev, coarse, nbcur, nbprev_k, 1."""
    return 4 * token_bits + 2


@dataclass(frozen=True)
class MixTables:
    """The parameters of coder version 2 or 3 for one token width ``B``: ``weights`` int32 ``(L, 2, B, 4B + 2)``
    (level, group, bit, input; FORMAT.md 7.2 gives the input order) and the initial adaptive ``counts`` int32
    ``(L, 2, B, NUM_SSE, 2)`` (``(n0, n1)`` per context, each in 1..65536). ``version`` is the coder version they
    were fitted for (the same layout; version 3's bits see only the blocks below their own)."""

    weights: np.ndarray
    counts: np.ndarray
    version: int = 2

    @classmethod
    def of(cls, tables) -> "MixTables":
        """``tables`` as MixTables: itself, or built from its :meth:`as_dict` form (as a checkpoint stores it)."""
        if isinstance(tables, cls):
            return tables
        return cls(tables["weights"], tables["counts"], int(tables.get("version", 2)))

    @property
    def levels(self) -> int:
        return self.weights.shape[0]

    def as_dict(self) -> dict:
        """Plain arrays, for a checkpoint (and ``version`` unless it is 2, so version 2's dicts are as before)."""
        d = {"weights": np.asarray(self.weights, np.int32), "counts": np.asarray(self.counts, np.int32)}
        return d if self.version == 2 else {**d, "version": self.version}


def check_mix_tables(tables, token_bits: int, levels: int | None, max_count: int, version: int) -> MixTables | None:
    """``tables`` (a :class:`MixTables` or its :meth:`~MixTables.as_dict`) validated for coder ``version`` (2 or
    3), ``token_bits``-bit tokens and at least ``levels`` levels, as int64 arrays; None stays None (zero weights,
    uniform counts). TablesMismatchError otherwise."""
    if tables is None:
        return None
    if isinstance(tables, dict):
        if not {"weights", "counts"} <= set(tables) <= {"weights", "counts", "version"}:
            raise TablesMismatchError(f"coder v{version} tables need 'weights' and 'counts', got {sorted(tables)}")
        tables = MixTables.of(tables)
    if not isinstance(tables, MixTables):
        raise TablesMismatchError(f"coder v{version} needs MixTables, got {type(tables).__name__}")
    if tables.version != version:
        raise TablesMismatchError(f"these are coder version {tables.version} tables, the stream uses version {version}")
    w, c = np.asarray(tables.weights), np.asarray(tables.counts)
    if w.dtype.kind not in "iu" or c.dtype.kind not in "iu":
        raise TablesMismatchError(f"coder v{version} tables must be integers")
    lv = w.shape[0] if w.ndim == 4 else -1
    if (w.ndim != 4 or w.shape[1:] != (2, token_bits, num_inputs(token_bits)) or not 1 <= lv <= 16
            or c.shape != (lv, 2, token_bits, NUM_SSE, 2)):
        raise TablesMismatchError(
            f"coder v{version} tables have shapes {w.shape} / {c.shape}, expected (L, 2, {token_bits}, "
            f"{num_inputs(token_bits)}) / (L, 2, {token_bits}, {NUM_SSE}, 2) for {token_bits}-bit tokens")
    if levels is not None and lv < levels:
        raise TablesMismatchError(f"coder tables cover {lv} levels, grid has {levels}")
    if w.size and np.abs(w.astype(np.int64)).max() >= MAX_WEIGHT:
        raise TablesMismatchError(f"coder v{version} weights must lie in -{MAX_WEIGHT - 1}..{MAX_WEIGHT - 1}")
    if c.size and (c.min() < 1 or c.max() > max_count):
        raise TablesMismatchError(f"coder table counts must lie in 1..{max_count}")
    return MixTables(w.astype(np.int64), c.astype(np.int64), version)


def mix_tables_hash(tables: MixTables) -> str:
    """Hex sha256 of version 2 or 3 tables (independent of dtype; the version is part of the hash)."""
    h = hashlib.sha256(f"vcb-ctxbin-tables-v{tables.version}\0".encode())
    for a in (tables.weights, tables.counts):
        a = np.asarray(a)
        h.update(struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape))
        h.update(np.ascontiguousarray(a, dtype="<i4").tobytes())
    return h.hexdigest()


def one_blas_thread():
    """A context in which BLAS runs on one thread: the logistic stage's products are small (a group's positions x
    3B x B), and BLAS threads started for them only wait on each other (2-3x slower beside torch's own threads).
    Results do not depend on it (module docstring). Without ``threadpoolctl`` installed: no limit. (The controller
    that finds the BLAS libraries is made once: finding them costs 0.25 ms, a tenth of a small grid's decode.)"""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


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
    """Coder version 2's or 3's state for one grid: the weights, the adaptive counts, and the logits of the group
    being coded. Shared by encoder, decoder and the fitting of the tables, so that all three compute the same
    contexts.

    Per (latent frame, level): :meth:`start` with the previous latent frame's and the coarser level's bit planes
    (which fixes the level's probabilities); then per group ``g`` in (0, 1): :meth:`group` (with the current
    plane, whose group 0 is known when g = 1), whose bits are coded in blocks of ``block`` bits (:meth:`contexts`
    of a block, :meth:`probabilities`, code, :meth:`keep_block`), then :meth:`coded` adapts the group's counts
    (every (level, group, bit) has its own table, used once per latent frame, so this equals adapting after each
    coding call, as FORMAT.md 7.3 states it). The encoder, knowing every bit, takes a group's blocks at once
    (:meth:`all_contexts`).

    Context indices are flat over a level's tables: ``(g * B + k) * NUM_SSE + context``. (Every array a step
    allocates is of one group's size at most, which keeps the allocator from returning memory to the system and
    faulting it back in between steps.)"""

    def __init__(self, levels: int, token_bits: int, h: int, w: int, tables: MixTables | None, groups,
                 block: int = 1):
        self.bits, self.h, self.w, self.groups, self.block = token_bits, h, w, groups, block
        if tables is None:
            weights = np.zeros((levels, 2, token_bits, num_inputs(token_bits)), np.int64)
            self.counts = np.ones((levels, 2, token_bits, NUM_SSE, 2), np.int64)
        else:
            weights = tables.weights[:levels]
            self.counts = tables.counts[:levels].copy()
        b = token_bits
        lower = weights[..., :b] * lower_mask(b, block)  # (L, 2, B, B): row k = weights of bits in blocks below k's
        rest = weights[..., b:].copy()
        # The logit z (in weight units) gives the bucket clip(floor(z / 2^7) + 12, 0, 23). Rewritten for speed into
        # the same integers: the lower bits enter as bits v (s(v) = 2v - 1), so their weights are doubled and
        # their sum subtracted from the bias; the bias gets 12 * 2^7; all weights are divided by 2^7, so that the
        # sum is floor's argument. Every partial sum is an integer of magnitude at most weight_bound() of these
        # weights, divided by a power of two: below 2^24 an exact float32 (in any order of summation), else it is
        # formed in float64 (exact below 2^53).
        rest[..., 3 * b + 1] += ((NUM_BUCKETS // 2) << (WEIGHT_SHIFT - 1)) - lower.sum(-1)
        lower = 2 * lower
        exact32 = weight_bound(np.concatenate([lower, rest], -1)) < 1 << 24
        self.dtype = np.float32 if exact32 else np.float64
        scale = 1.0 / (1 << (WEIGHT_SHIFT - 1))

        def scaled(a):
            return np.ascontiguousarray(a * scale, self.dtype)

        self._lower = scaled(lower.transpose(0, 1, 3, 2))  # (L, 2, B_j, B_k)
        self._rest = scaled(rest[..., :3 * b].transpose(0, 1, 3, 2)).reshape(levels, 2, 3, b, b)  # prev, coarse, nbcur
        self._nbprev = scaled(rest[..., 3 * b])  # (L, 2, B)
        self._bias = scaled(rest[..., 3 * b + 1])  # (L, 2, B)
        # a context is bucket * 3 + previous frame's bit in version 2, previous frame's bit * 24 + bucket in 3
        self._bucket_step, self._prev_step = (3, 1) if block == 1 else (1, NUM_BUCKETS)
        self._koff = np.arange(2 * b, dtype=np.int32).reshape(2, b) * NUM_SSE  # (g, k) -> its table's offset

    def coded(self, keys: np.ndarray) -> None:
        """The current group is coded: adapt its counts with the keys ``context * 2 + bit`` of all its bits."""
        adapt_keys(self.counts[self.level].reshape(-1, 2), keys.ravel())

    def start(self, level: int, prev: np.ndarray | None, coarse: np.ndarray | None) -> None:
        """Begin a latent frame's level; ``prev`` / ``coarse``: (H*W, B) uint8 bits, or None (absent). ``prev`` may
        also hold 2 for single absent bits (bits its chunk did not code: a rate change, FORMAT.md 6.5)."""
        n, b = self.h * self.w, self.bits
        self.level = level
        self._sprev = np.zeros((n, b), np.int8) if prev is None else _signs(prev)
        self._scoarse = np.zeros((n, b), np.int8) if coarse is None else 2 * coarse.astype(np.int8) - 1
        self._nbp = np.zeros((n, b), np.int8) if prev is None else neighbour_sum(self._sprev, self.h, self.w)
        self._prev_coarse = np.empty((n, 2 * b), self.dtype)  # (n, 2B): prev | coarse
        self._prev_coarse[:, :b] = self._sprev
        self._prev_coarse[:, b:] = self._scoarse
        pk = np.full((n, b), 2, np.int32) if prev is None else prev.astype(np.int32)
        if self._prev_step != 1:
            pk *= self._prev_step
        self._prevk = pk
        # P(bit = 1) of every context of the level, float64 on the 2^-16 grid (6.4)
        self._q = probability_table(self.counts[level].reshape(-1, 2))

    def group(self, g: int, plane: np.ndarray) -> None:
        """Begin group ``g``; ``plane`` (H*W, B) uint8 holds group 0's bits when g = 1 (other entries unused)."""
        idx = self.groups[g][0]
        lv, b = self.level, self.bits
        self._g, self._idx, self._nbc = g, idx, self._neighbours_coded(plane) if g == 1 else None
        # (n_g, B) logits without the lower bits' terms, which the contexts add as the bits become known: prev,
        # coarse (and nbcur for group 1; group 0's are all 0), nbprev, bias
        w = self._rest[lv, g]
        base = self._prev_coarse[idx] @ w[:2].reshape(2 * b, b)  # prev and coarse in one product
        if g:
            base += self._nbc.astype(self.dtype) @ w[2]
        base += self._nbp[idx] * self._nbprev[lv, g]
        base += self._bias[lv, g]
        self._base = base
        self._known = np.zeros((len(idx), b), self.dtype)  # the bits coded so far in this group
        self._pk = self._prevk[idx]
        self._pk += self._koff[g]  # the previous frame's bit, offset to each bit's own table
        self._pkf = self._pk.astype(self.dtype) if self._bucket_step == 1 else None

    def _neighbours_coded(self, plane: np.ndarray) -> np.ndarray:
        """nbcur of group 1 (n_1, B) int8: the sums of s(bit) over each position's 4-neighbours, all in group 0."""
        known = np.zeros(plane.shape, np.int8)
        g0 = self.groups[0][0]
        known[g0] = 2 * plane[g0].astype(np.int8) - 1
        return neighbour_sum(known, self.h, self.w)[self.groups[1][0]]

    @property
    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The current group's logistic inputs: (prev | coarse | nbcur as int8 (n_g, 3B), nbprev int8 (n_g, B))."""
        idx = self._idx
        nbc = self._nbc if self._nbc is not None else np.zeros((len(idx), self.bits), np.int8)
        return np.concatenate([self._sprev[idx], self._scoarse[idx], nbc], axis=1), self._nbp[idx]

    def _bucket(self, z: np.ndarray, bits: slice, out: np.ndarray) -> np.ndarray:
        """Flat context indices of scaled logits ``z`` (n_g, bits) (see __init__; changed in place), written into
        ``out`` (int32, returned): the half-unit bucket, with the previous frame's bit. (Truncating after the clip to
        0..23 is the floor: the values are non-negative. In version 3 the previous frame's bit and the table offset,
        an integer, are added before truncating, which changes nothing: z is a multiple of 2^-7 and every sum stays
        below 2^17, so it is exact in float32.)"""
        np.maximum(z, 0, out=z)  # np.clip's wrapper costs more than the clipping on small groups
        np.minimum(z, NUM_BUCKETS - 1, out=z)
        if self._bucket_step == 1:
            z += self._pkf[:, bits]
            out[...] = z
            return out
        out[...] = z
        out *= self._bucket_step
        out += self._pk[:, bits]
        return out

    def contexts(self, first: int, out: np.ndarray) -> np.ndarray:
        """Flat context indices (n_g, block) of the block of bits starting at bit ``first``, for every position of
        the current group, written into ``out`` (int32, returned): the logit (an exact integer) cut into half-unit
        buckets, then the previous frame's bit."""
        bits = slice(first, min(first + self.block, self.bits))
        if first:
            z = self._known[:, :first] @ self._lower[self.level, self._g, :first, bits]
            z += self._base[:, bits]
        else:
            z = self._base[:, bits].copy()
        return self._bucket(z, bits, out)

    def all_contexts(self, plane_bits: np.ndarray) -> np.ndarray:
        """Flat context indices (n_g, B) of every bit of the current group, given its bits ``plane_bits`` (n_g, B)
        uint8 (the encoder: the same values as :meth:`contexts` block by block, since a bit's logit only sees the
        blocks below its own)."""
        z = plane_bits.astype(self.dtype) @ self._lower[self.level, self._g]
        z += self._base
        return self._bucket(z, slice(None), np.empty(z.shape, np.int32))

    def probabilities(self, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) per flat context index, float64 on the 2^-16 grid (the counts as at the level's start)."""
        return self._q.take(ctx)

    def keep_block(self, first: int, sym: np.ndarray) -> None:
        """Bits ``first`` .. of the group are known (``sym`` 0/1 (n_g, block)): keep them for the blocks above."""
        self._known[:, first:first + sym.shape[1]] = sym


def lower_mask(token_bits: int, block: int) -> np.ndarray:
    """int64 (B, B): 1 where bit ``k`` (row) may see bit ``j`` (column) of its own token -- the bits of the
    blocks of ``block`` bits below its own (version 2: block 1, every lower bit)."""
    k = np.arange(token_bits)
    return (k[None, :] < (k[:, None] // block) * block).astype(np.int64)


def weight_bound(weights: np.ndarray) -> int:
    """Largest sum of |weight| x the largest |input| over one bit's inputs (signs 1, neighbour sums 4, the
    constant 1), for weights (..., 4B + 2): no partial sum of a logit can exceed it."""
    if not weights.size:
        return 0
    b = (weights.shape[-1] - 2) // 4
    size = np.ones(weights.shape[-1], np.int64)
    size[3 * b:4 * b + 1] = 4
    return int((np.abs(weights.astype(np.int64)) * size).sum(-1).max())


def probability_table(counts: np.ndarray) -> np.ndarray:
    """P(bit = 1) of every context of ``counts`` (C, 2), float64 on the 2^-16 grid (FORMAT.md 6.4)."""
    return probabilities(counts, slice(None))


def binary_rows(p: np.ndarray) -> np.ndarray:
    """P(bit = 1) (m,) -> probability rows (m, 2) of the symbols 0 and 1, as constriction's Categorical takes them."""
    rows = np.empty((p.size, 2))
    rows[:, 1] = p.reshape(-1)
    np.subtract(1.0, rows[:, 1], out=rows[:, 0])
    return rows


def pair_rows(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """P(bit = 1) of the first (``lo``) and second (``hi``) bit of pairs (m,) each -> probability rows (m, 4) of
    the symbol ``lo + 2 * hi``: the products of the two bits' probabilities (exact: both lie on the 2^-16 grid)."""
    lo, hi = lo.ravel(), hi.ravel()
    rows = np.empty((lo.size, 4))
    np.multiply(lo, hi, out=rows[:, 3])
    np.subtract(lo, rows[:, 3], out=rows[:, 1])  # lo (1 - hi)
    np.subtract(hi, rows[:, 3], out=rows[:, 2])  # (1 - lo) hi
    np.subtract(1.0, lo, out=rows[:, 0])
    rows[:, 0] -= rows[:, 2]  # (1 - lo) - (1 - lo) hi
    return rows


def coded_symbols(p: np.ndarray, bits: np.ndarray, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A group's symbols in coding order, as ``(probability rows (m, A), symbols (m,))`` runs of one alphabet
    size ``A``: block by block; in a block, the bits in pairs (A = 4, symbol ``lo + 2 * hi``) position by position,
    then a block's odd last bit alone (A = 2) position by position. ``p`` (n_g, B): P(bit = 1) of each bit,
    ``bits`` (n_g, B) 0/1."""
    n, b = bits.shape
    if block == 1:  # version 2: bit by bit
        return [(binary_rows(p.T), bits.T.ravel().astype(np.int32))]
    if b % block == 0 and block % 2 == 0:  # whole blocks of whole pairs: all pairs in one run, block-major

        def order(a):
            return a.reshape(n, b // block, block // 2).transpose(1, 0, 2)

        sym = bits[:, 1::2].astype(np.int32)
        sym *= 2
        sym += bits[:, 0::2]
        return [(pair_rows(order(p[:, 0::2]), order(p[:, 1::2])), order(sym).ravel())]
    return symbols_by_block(p, bits, block)


def symbols_by_block(p: np.ndarray, bits: np.ndarray, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`coded_symbols` one block at a time (any widths; the reference for its faster paths)."""
    n, b = bits.shape
    runs: list[tuple[list, list]] = []

    def add(rows, sym):
        if runs and runs[-1][0][0].shape[1] == rows.shape[1]:
            runs[-1][0].append(rows)
            runs[-1][1].append(sym)
        else:
            runs.append(([rows], [sym]))

    for first in range(0, b, block):
        w = min(block, b - first)
        even = first + w // 2 * 2
        if w >= 2:
            add(pair_rows(p[:, first:even:2], p[:, first + 1:even:2]),
                (bits[:, first:even:2] + 2 * bits[:, first + 1:even:2]).ravel())
        if w % 2:
            add(binary_rows(p[:, even]), bits[:, even])
    return [(np.concatenate(r), np.concatenate(sym).astype(np.int32)) for r, sym in runs]


def decode_block(decode, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Decode the bits of one block of a group into ``out`` (n_g, w) (returned), given their P(bit = 1) (n_g, w):
    pairs of bits as 4-symbol alphabets, an odd last bit alone (the order of :func:`coded_symbols`);
    ``decode(rows)`` decodes one symbol per probability row."""
    n, w = p.shape
    even = w // 2 * 2
    if w >= 2:
        sym = np.asarray(decode(pair_rows(p[:, 0:even:2], p[:, 1:even:2])), np.int32).reshape(n, even // 2)
        np.bitwise_and(sym, 1, out=out[:, 0:even:2])
        np.right_shift(sym, 1, out=out[:, 1:even:2])
    if w % 2:
        out[:, even] = decode(binary_rows(p[:, even]))
    return out


def encode_walk(model: MixModel, flat: np.ndarray, prev: list, unpack,
                on_group=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The coding order over ``flat`` = ``uint32 (L, T, H*W)`` tokens: per (latent frame, level) and group, the
    group's flat contexts and bits ((n_g, B) each; the contexts valid until the next step), with ``model``
    adapted after each group (the caller codes each group's bits with :meth:`MixModel.probabilities` of
    the contexts, in the order of :func:`coded_symbols`). ``prev`` (per level: the last latent frame's (H*W, B)
    bits, or None) is updated in place. ``on_group(level, group, model, bits)``, if given, sees each group's
    inputs (``model.inputs``)."""
    levels, frames, _ = flat.shape
    for t in range(frames):
        cur = None
        for lv in range(levels):
            plane = unpack(flat[lv, t], model.bits)
            model.start(lv, prev[lv], cur)
            for g in (0, 1):
                model.group(g, plane)
                bits = plane[model.groups[g][0]]
                if on_group is not None:
                    on_group(lv, g, model, bits)
                ctx = model.all_contexts(bits)
                yield ctx, bits
                ctx *= 2
                ctx += bits
                model.coded(ctx)
            prev[lv] = cur = plane


def decode_walk(model: MixModel, out: np.ndarray, prev: list, decode, pack) -> None:
    """Inverse of :func:`encode_walk`: fill ``out`` = ``uint32 (L, T, H*W)`` with the symbols ``decode(rows)``
    gives for probability rows, block by block (:func:`decode_block`)."""
    levels, frames, n = out.shape
    b, block = model.bits, model.block
    for t in range(frames):
        cur = None
        for lv in range(levels):
            plane = np.empty((n, b), np.uint8)
            model.start(lv, prev[lv], cur)
            for g in (0, 1):
                model.group(g, plane)
                idx = model.groups[g][0]
                ctx = np.empty((len(idx), b), np.int32)
                bits = np.empty((len(idx), b), np.int32)
                for first in range(0, b, block):
                    c = model.contexts(first, ctx[:, first:first + block])
                    model.keep_block(first, decode_block(decode, model.probabilities(c), bits[:, first:first + block]))
                plane[idx] = bits
                ctx *= 2
                ctx += bits
                model.coded(ctx)
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


def fit_weights(rows: dict, levels: int, token_bits: int, block: int = 1) -> np.ndarray:
    """int32 ``(levels, 2, B, 4B + 2)`` logistic weights from sampled rows: per (level, group), int8 ``(n, 5B)``
    = the bits, then prev | coarse | nbcur | nbprev as :attr:`MixModel.inputs` gives them. Bit ``k`` sees the
    bits of its token in the blocks of ``block`` bits below its own (:func:`lower_mask`)."""
    b = token_bits
    out = np.zeros((levels, 2, b, num_inputs(b)), np.int32)
    for (lv, g), a in rows.items():
        bits_, rest, nbp = a[:, :b].astype(np.float64), a[:, b:4 * b].astype(np.float64), a[:, 4 * b:].astype(np.float64)
        one = np.ones((len(a), 1))
        for k in range(b):
            lower = bits_.copy()
            lower[:, (k // block) * block:] = 0
            x = np.concatenate([lower, rest, nbp[:, k:k + 1], one], axis=1)
            wt = _logistic(x, (bits_[:, k] > 0).astype(np.float64))
            out[lv, g, k] = np.clip(np.round(wt * (1 << WEIGHT_SHIFT)), -(MAX_WEIGHT - 1), MAX_WEIGHT - 1)
    return out
