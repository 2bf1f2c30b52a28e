"""Context-adaptive binary range coding of LFQ token grids (coder id ``vcb-ctxbin``, versions 1, 2 and 3).

Versions 2 and 3 (3 written by default) are the learned context-mixing model of :mod:`bitstream.coder_mix`;
version 1, described here, is read (and can still be written) for streams and models that have only its tables.


A token grid is ``uint32 (L, T, H, W)``; each value holds ``token_bits`` bits and bit ``k`` is the
sign of latent channel ``k``. We code bits, not tokens: for every latent frame ``t``, level ``l``
and checkerboard group ``g`` (g = 0 where ``(y + x)`` is even, then g = 1), all bits of all
positions of the group go through *one* vectorised ``constriction`` call with a Bernoulli model
per symbol. The probability of each bit comes from an adaptive integer count table indexed by a
context built from already-decoded bits:

- ``prev``   -- the co-located bit in the previous latent frame (0, 1, or 2 = none at t = 0),
- ``spatial``-- how many of the in-bounds 4-neighbours are set, scaled to 0..4 (5 = none). For
  group 0 the neighbours are taken in the previous latent frame, for group 1 in the current one
  (they all belong to group 0, so they are decoded already),
- ``coarse`` -- the same bit at the same position one level coarser (0, 1, or 2 = none at l = 0),

separately per level and per bit ``k``. Everything the coder sees is integer arithmetic; the one
float, ``q / 65536``, is exact in float64, so every machine feeds constriction the same numbers
and gets the same bytes. ``FORMAT.md`` section 6 is the normative description.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable

import constriction
import numpy as np

from . import coder_mix
from .coder_mix import MixModel, MixTables, neighbour_sum
from .counts import ADAPT_LIMIT, PROB_BITS, PROB_MIN, PROB_ONE, adapt, probabilities  # noqa: F401 (re-exported)
from .errors import CorruptDataError, TablesMismatchError

CODER_ID = "vcb-ctxbin"
CODER_VERSION = 3  # what new streams use
CODER_VERSIONS = (1, 2, 3)  # what this package reads and writes
MIX_VERSIONS = (2, 3)  # the versions of coder_mix's learned model (bit by bit; a token in 4 blocks of bits)

NUM_CONTEXTS = 108  # per (level, bit): 2 groups x 3 prev x 6 spatial x 3 coarse
FIT_TOTAL = 256  # fit_tables scales each learned context to n0 + n1 <= FIT_TOTAL
MAX_TABLE_COUNT = 1 << 16  # a stored initial count must lie in 1..MAX_TABLE_COUNT

MAX_TOKEN_BITS = 32
MAX_LEVELS = 16
MAX_GRID_TOKENS = 1 << 27  # L*T*H*W of one grid (about 512 MiB of uint32)
MAX_BITS_PER_SYMBOL = 12  # > -log2(PROB_MIN / PROB_ONE) = 11; bounds the coded size


def max_coded_bytes(num_tokens: int, token_bits: int) -> int:
    """Upper bound on ``len(encode_tokens(...))`` for a grid of ``num_tokens`` tokens."""
    words = -(-num_tokens * token_bits * MAX_BITS_PER_SYMBOL // 32) + 4
    return 4 * words


# spatial bucket for (available neighbours a, neighbours set s): round(4 * s / a); 5 when a = 0.
_SPATIAL_LUT = np.array(
    [
        [5, 5, 5, 5, 5],
        [0, 4, 0, 0, 0],
        [0, 2, 4, 0, 0],
        [0, 1, 3, 4, 0],
        [0, 1, 2, 3, 4],
    ],
    dtype=np.int32,
).ravel()


@functools.lru_cache(maxsize=16)
def _geometry(h: int, w: int):
    """Flat positions of the two checkerboard groups and 5 * (in-bounds 4-neighbours) at each."""
    yy, xx = np.mgrid[0:h, 0:w]
    avail = ((yy > 0).astype(np.int32) + (yy < h - 1) + (xx > 0) + (xx < w - 1)).ravel()
    parity = ((yy + xx) & 1).ravel()
    out = []
    for g in (0, 1):
        idx = np.flatnonzero(parity == g)
        out.append((idx, (avail[idx] * 5)[:, None]))
    return tuple(out)


def _unpack(tok: np.ndarray, bits: int) -> np.ndarray:
    """(N,) uint32 -> (N, bits) uint8, column k = bit k."""
    by = np.ascontiguousarray(tok, dtype="<u4").view(np.uint8).reshape(-1, 4)
    return np.unpackbits(by, axis=1, bitorder="little")[:, :bits]


def _pack(plane: np.ndarray) -> np.ndarray:
    """(N, bits) uint8 of 0/1 -> (N,) uint32."""
    full = np.zeros((plane.shape[0], 32), dtype=np.uint8)
    full[:, : plane.shape[1]] = plane
    return np.packbits(full, axis=1, bitorder="little").view("<u4").reshape(-1).astype(np.uint32)


class _Model:
    """The adaptive count tables of one grid, and the context function (shared by both sides)."""

    def __init__(self, levels: int, token_bits: int, h: int, w: int, tables: np.ndarray | None):
        self.bits, self.h, self.w = token_bits, h, w
        size = token_bits * NUM_CONTEXTS
        if tables is None:
            self.counts = np.ones((levels, size, 2), dtype=np.int64)
        else:
            self.counts = tables[:levels].reshape(levels, size, 2).astype(np.int64)
        self.kbase = (np.arange(token_bits, dtype=np.int32) * NUM_CONTEXTS)[None, :]
        self.groups = _geometry(h, w)

    def contexts(self, g: int, nb_source, prev, coarse) -> np.ndarray:
        """Context index (within one level's table) of every bit of group ``g``: (n_g, bits) int32."""
        idx, avail5 = self.groups[g]
        if nb_source is None:
            sp = np.int32(5)
        else:
            s = neighbour_sum(nb_source, self.h, self.w)[idx]
            sp = _SPATIAL_LUT[avail5 + s]
        pv = np.int32(2) if prev is None else prev[idx].astype(np.int32)
        cs = np.int32(2) if coarse is None else coarse[idx].astype(np.int32)
        c = ((g * 3 + pv) * 6 + sp) * 3 + cs
        return np.broadcast_to(c, (len(idx), self.bits)) + self.kbase

    def probabilities(self, level: int, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) per symbol, float64 on the 2**-16 grid, from integer counts only."""
        return probabilities(self.counts[level], ctx.ravel())

    def update(self, level: int, ctx: np.ndarray, sym: np.ndarray) -> None:
        adapt(self.counts[level], ctx.ravel(), sym)


class CoderContext:
    """The adaptive state a continuing chunk inherits from the chunk before it (FORMAT.md 6.5): every level's
    count table and its last latent frame of bits. Empty at a keyframe (``counts is None``): the grid then starts
    from the initial tables. :func:`encode_tokens` / :func:`decode_tokens` given a context start from it and,
    once the grid is coded (decoded without error), leave in it the state after the grid's last latent frame."""

    def __init__(self):
        self.counts: np.ndarray | None = None  # the model's adaptive counts, int64 (shape by coder version)
        self.prev: list[np.ndarray] | None = None  # per level: (H * W, B) uint8 bits of the last latent frame
        self.rate_changes = False  # a grid of another rate point may continue this one (format version 3)

    @property
    def empty(self) -> bool:
        return self.counts is None

    def reset(self) -> None:
        """Start afresh (a keyframe)."""
        self.counts, self.prev = None, None

    def copy(self) -> CoderContext:
        """An independent copy (to code one grid several ways and keep one: rate control)."""
        other = CoderContext()
        other.rate_changes = self.rate_changes
        if not self.empty:
            other.counts = self.counts.copy()
            other.prev = [None if p is None else p.copy() for p in self.prev]
        return other

    def _start(self, model, levels: int, exc) -> list:
        """The ``prev`` planes to code a grid with, after loading the counts into ``model`` (either version's).
        A grid of the same rate point (levels and width) takes the counts and planes as they are; with
        ``rate_changes``, a grid of another rate point carries what the two share (FORMAT.md 6.5): the counts of
        the levels both have when the width is the same (the others stay ``model``'s initial ones), and the
        previous latent frame's planes of those levels, whole at the same width; at another width, coder version
        2 keeps the bits both widths have and marks the rest absent (2), version 1 drops the planes."""
        if self.empty:
            return [None] * levels
        n, bits = model.h * model.w, model.bits
        old_bits = next(p.shape[1] for p in self.prev if p is not None)
        if self.counts.shape == model.counts.shape and old_bits == bits and self.prev[0].shape[0] == n:
            model.counts = self.counts.copy()
            return list(self.prev)
        if not self.rate_changes or self.prev[0].shape[0] != n:
            raise exc(f"a continuing grid of {levels} levels x {bits} bits on {model.h}x{model.w} positions "
                      f"does not match the grid it continues ({len(self.prev)} levels, {old_bits} bits, "
                      f"{self.prev[0].shape[0]} positions)")
        shared = min(levels, len(self.prev))
        prev: list[np.ndarray | None] = [None] * levels
        if old_bits == bits:
            model.counts[:shared] = self.counts[:shared]
            prev[:shared] = self.prev[:shared]
        elif isinstance(model, coder_mix.MixModel):
            keep = min(old_bits, bits)
            for lv in range(shared):
                plane = np.full((n, bits), 2, np.uint8)
                plane[:, :keep] = self.prev[lv][:, :keep]
                prev[lv] = plane
        return prev

    def _keep(self, model, prev: list) -> None:
        self.counts, self.prev = model.counts, prev


def _walk(levels: int, frames: int):
    """Coding order: latent frame outer, level inner (so the coarser level is always known)."""
    for t in range(frames):
        for lv in range(levels):
            yield t, lv


# ----------------------------------------------------------------------------------------------
# tables


def tables_version(tables) -> int | None:
    """The coder version whose tables these are: 1 for a count array, 2 or 3 for :class:`MixTables` (or its
    dict); None for None (the uniform prior, valid for any)."""
    if tables is None:
        return None
    if isinstance(tables, MixTables):
        return tables.version
    return int(tables.get("version", 2)) if isinstance(tables, dict) else 1


def check_tables(tables, token_bits: int, levels: int | None = None, version: int = CODER_VERSION):
    """Validate initial tables for coder ``version``: version 1's count array is returned as int64 ``(Lt,
    token_bits, NUM_CONTEXTS, 2)``, version 2's or 3's :class:`MixTables` with int64 arrays; None stays None.

    Raises :class:`TablesMismatchError` for tables of another coder version or layout, another ``token_bits``
    or fewer than ``levels`` levels.
    """
    if tables is None:
        return None
    if tables_version(tables) != version:
        raise TablesMismatchError(f"these are coder version {tables_version(tables)} tables, the stream uses "
                                  f"{CODER_ID} version {version}")
    if version in MIX_VERSIONS:
        return coder_mix.check_mix_tables(tables, token_bits, levels, MAX_TABLE_COUNT, version)
    arr = np.asarray(tables)
    if arr.dtype.kind not in "iu":
        raise TablesMismatchError(f"coder tables must be integers, got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[2:] != (NUM_CONTEXTS, 2) or not 1 <= arr.shape[0] <= MAX_LEVELS:
        raise TablesMismatchError(
            f"coder tables have shape {arr.shape}, expected (levels<={MAX_LEVELS}, token_bits, "
            f"{NUM_CONTEXTS}, 2) for {CODER_ID} v1"
        )
    if arr.shape[1] != token_bits:
        raise TablesMismatchError(f"coder tables are for {arr.shape[1]}-bit tokens, stream has {token_bits}")
    if levels is not None and arr.shape[0] < levels:
        raise TablesMismatchError(f"coder tables cover {arr.shape[0]} levels, grid has {levels}")
    if arr.size and (arr.min() < 1 or arr.max() > MAX_TABLE_COUNT):
        raise TablesMismatchError(f"coder table counts must lie in 1..{MAX_TABLE_COUNT}")
    return arr.astype(np.int64)


def pad_tables(tables, levels: int):
    """``tables`` (either version's; None stays None) extended to ``levels`` levels with a uniform prior for the
    levels they lack (zero weights, counts of 1)."""
    def pad(a, fill):
        extra = np.full((levels - a.shape[0], *a.shape[1:]), fill, a.dtype)
        return np.concatenate([a, extra]) if len(extra) else a

    if tables is None:
        return None
    if isinstance(tables, MixTables):
        return MixTables(pad(np.asarray(tables.weights), 0), pad(np.asarray(tables.counts), 1), tables.version)
    return pad(np.asarray(tables), 1)


def cut_tables(tables, levels: int):
    """The first ``levels`` levels of ``tables`` (either version's; fewer stay as they are, None stays None): the
    tables of a model with more levels than a stream it reads was written with (see ``vcodec.coding``)."""
    if tables is None:
        return None
    if isinstance(tables, MixTables):
        return MixTables(np.asarray(tables.weights)[:levels], np.asarray(tables.counts)[:levels], tables.version)
    return np.asarray(tables)[:levels]


def narrow_tables(tables, bits: int):
    """Tables for ``bits``-bit tokens made from a wider width's (either version's; None stays None): version 1's
    first ``bits`` rows of each level; a learned coder's weights of its first ``bits`` bits over the inputs such a
    token has (lower, prev, coarse and nbcur of the bits below ``bits``, nbprev, the constant) with their counts.
    Valid for any narrower width -- the inputs a narrower token lacks are simply gone -- if less well fitted than
    tables learned for it: what rate control codes between two of a model's widths."""
    if tables is None:
        return None
    if isinstance(tables, MixTables):
        w = np.asarray(tables.weights)
        b = w.shape[2]
        inputs = np.r_[0:bits, b:b + bits, 2 * b:2 * b + bits, 3 * b:3 * b + bits, 4 * b:4 * b + 2]
        return MixTables(np.ascontiguousarray(w[:, :, :bits][..., inputs]),
                         np.ascontiguousarray(np.asarray(tables.counts)[:, :, :bits]), tables.version)
    return np.ascontiguousarray(np.asarray(tables)[:, :bits])


def table_set_hash(tables_by_bits: dict) -> str:
    """Hex sha256 identifying the tables of a stream whose chunks choose their token width (format version 3):
    over the widths in ascending order, each as u8 followed by its tables' 32-byte hash (32 zero bytes for none)."""
    h = hashlib.sha256(b"vcb-ctxbin-table-set\0")
    for bits in sorted(tables_by_bits):
        one = tables_hash(tables_by_bits[bits])
        h.update(struct.pack("<B", bits) + (bytes(32) if one is None else bytes.fromhex(one)))
    return h.hexdigest()


def tables_hash(tables) -> str | None:
    """Hex sha256 identifying tables of either version (``None`` for the uniform prior). Independent of dtype."""
    if tables is None:
        return None
    if tables_version(tables) in MIX_VERSIONS:
        return coder_mix.mix_tables_hash(MixTables.of(tables))
    arr = np.asarray(tables)
    h = hashlib.sha256(b"vcb-ctxbin-tables-v1\0")
    h.update(struct.pack("<4I", *arr.shape) if arr.ndim == 4 else repr(arr.shape).encode())
    h.update(np.ascontiguousarray(arr, dtype="<u4").tobytes())
    return h.hexdigest()


def fit_tables(grids: Iterable[np.ndarray], token_bits: int, version: int = CODER_VERSION, seed: int = 0):
    """Learn coder ``version``'s tables from example token grids ``uint32 (L, T, H, W)`` (each one stream's
    latent frames in order); store them with the model and pass them as ``tables=`` to writer and reader.

    Version 1: ``int32 (L, token_bits, NUM_CONTEXTS, 2)`` with L the largest level count seen: for each context,
    ``(n0, n1)`` = observed counts + 1, scaled down to ``n0 + n1 <= FIT_TOTAL`` (so coding still adapts to the
    chunk at hand). Versions 2 and 3: :class:`MixTables`, the logistic weights fitted to (at most
    ``coder_mix.FIT_SAMPLES`` per level and group, drawn with ``seed``) then the adaptive stage's initial counts
    counted as for version 1 with those weights.
    """
    token_bits = _check_bits(token_bits, ValueError)
    if _check_version(version, ValueError) in MIX_VERSIONS:
        return _fit_mix_tables(list(grids), token_bits, version, np.random.default_rng(seed))
    size = token_bits * NUM_CONTEXTS
    acc = np.zeros((0, size * 2), dtype=np.int64)
    for grid in grids:
        grid = _check_grid(grid, token_bits)
        levels, frames, h, w = grid.shape
        if acc.shape[0] < levels:
            acc = np.concatenate([acc, np.zeros((levels - acc.shape[0], size * 2), np.int64)])

        def count(lv, ctx, sym, acc=acc):  # acc rows are updated in place
            acc[lv] += np.bincount(ctx.ravel() * 2 + sym, minlength=size * 2)

        _encode_v1(_Model(levels, token_bits, h, w, None), grid.reshape(levels, frames, h * w), [None] * levels, count)
    if acc.shape[0] == 0:
        raise ValueError("fit_tables needs at least one token grid")
    return _initial_counts(acc.reshape(-1, token_bits, NUM_CONTEXTS, 2))


def _initial_counts(seen: np.ndarray) -> np.ndarray:
    """Observed ``(..., 2)`` counts of 0s and 1s per context -> stored initial counts, int32: + 1, then scaled down
    to ``n0 + n1 <= FIT_TOTAL`` (``n_v = max(1, n_v * FIT_TOTAL div max(N, FIT_TOTAL))``), both coder versions."""
    counts = seen + 1
    tot = counts.sum(axis=-1, keepdims=True)
    return np.maximum(counts * FIT_TOTAL // np.maximum(tot, FIT_TOTAL), 1).astype(np.int32)


def _fit_mix_tables(grids: list, token_bits: int, version: int, rng) -> MixTables:
    grids = [_check_grid(g, token_bits) for g in grids]
    if not grids:
        raise ValueError("fit_tables needs at least one token grid")
    levels = max(g.shape[0] for g in grids)
    rows: dict[tuple[int, int], list] = {}

    def keep(lv, g, model, bits_):  # the bits of a group and the inputs the logistic stage saw
        x, nbp = model.inputs
        rows.setdefault((lv, g), []).append(np.concatenate([2 * bits_.astype(np.int8) - 1, x, nbp], axis=1))

    for grid in grids:
        for _ in _mix_walk(grid, token_bits, None, version, keep):
            pass
    sampled = {}
    for key, parts in rows.items():
        a = np.concatenate(parts)
        if len(a) > coder_mix.FIT_SAMPLES:
            a = a[np.sort(rng.choice(len(a), coder_mix.FIT_SAMPLES, replace=False))]
        sampled[key] = a
    block = coder_mix.block_bits(version, token_bits)
    weights = coder_mix.fit_weights(sampled, levels, token_bits, block)
    fitted = MixTables(weights.astype(np.int64), np.ones((levels, 2, token_bits, coder_mix.NUM_SSE, 2), np.int64),
                       version)
    acc = np.zeros_like(fitted.counts)
    for grid in grids:
        for lv, ctx, bits in _mix_walk(grid, token_bits, fitted, version):  # ctx: flat over the level's tables
            acc[lv] += np.bincount((ctx * 2 + bits).ravel(), minlength=acc[lv].size).reshape(acc.shape[1:])
    return MixTables(weights, _initial_counts(acc), version)


def _mix_model(levels: int, token_bits: int, h: int, w: int, tables: MixTables | None, version: int) -> MixModel:
    return MixModel(levels, token_bits, h, w, tables, _geometry(h, w),
                    coder_mix.block_bits(version, token_bits))


def _mix_walk(grid: np.ndarray, token_bits: int, tables: MixTables | None, version: int, on_group=None):
    """:func:`coder_mix.encode_walk` over one checked grid on its own (for fitting): ``(level, contexts, bits)``
    per group."""
    levels, frames, h, w = grid.shape
    model = _mix_model(levels, token_bits, h, w, tables, version)
    for ctx, bits in coder_mix.encode_walk(model, grid.reshape(levels, frames, h * w), [None] * levels, _unpack,
                                           on_group):
        yield model.level, ctx, bits


# ----------------------------------------------------------------------------------------------
# coding


def _check_bits(token_bits, exc):
    if isinstance(token_bits, (bool, np.bool_)) or not isinstance(token_bits, (int, np.integer)):
        raise exc(f"token_bits must be an int, got {type(token_bits).__name__}")
    if not 1 <= int(token_bits) <= MAX_TOKEN_BITS:
        raise exc(f"token_bits must lie in 1..{MAX_TOKEN_BITS}, got {token_bits}")
    return int(token_bits)


def _check_grid(tokens, token_bits: int) -> np.ndarray:
    """Caller-side validation (ValueError): 4-D, non-empty, integer, values < 2**token_bits."""
    arr = np.asarray(tokens)
    if arr.ndim != 4 or 0 in arr.shape:
        raise ValueError(f"tokens must be a non-empty (L, T, H, W) array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"tokens must be an integer array, got dtype {arr.dtype}")
    if arr.shape[0] > MAX_LEVELS or arr.size > MAX_GRID_TOKENS:
        raise ValueError(f"token grid {arr.shape} exceeds the format limits")
    if arr.dtype != np.uint32:
        if arr.min() < 0 or arr.max() > 0xFFFFFFFF:
            raise ValueError("token values must lie in 0..2**32-1")
        arr = arr.astype(np.uint32)
    if token_bits < 32 and int(arr.max()) >> token_bits:
        raise ValueError(f"token value {int(arr.max())} does not fit in {token_bits} bits")
    return arr


def encode_tokens(tokens: np.ndarray, token_bits: int, tables=None, context: CoderContext | None = None,
                  version: int | None = None) -> bytes:
    """Range-code a token grid ``(L, T, H, W)`` with coder ``version`` -> bytes (little-endian uint32 words).

    ``version`` None: the version ``tables`` were fitted for (CODER_VERSION for None). Without a
    ``context`` (or with an empty one) the grid's contexts start from ``tables`` (that version's, or None: a
    uniform prior); with one, from the state the previous grid of the stream left there, and the context
    is updated.
    """
    token_bits = _check_bits(token_bits, ValueError)
    version = _check_version(_version_of(tables, version), ValueError)
    grid = _check_grid(tokens, token_bits)
    levels, frames, h, w = grid.shape
    tab = check_tables(tables, token_bits, levels, version)
    family = constriction.stream.model.Bernoulli(perfect=False)
    categorical = constriction.stream.model.Categorical(perfect=False)  # see coder_mix.coded_symbols
    enc = constriction.stream.queue.RangeEncoder()
    flat = grid.reshape(levels, frames, h * w)
    model = _model(levels, token_bits, h, w, tab, version)
    prev = (context or CoderContext())._start(model, levels, ValueError)
    if version in MIX_VERSIONS:
        with coder_mix.one_blas_thread():
            for ctx, bits in coder_mix.encode_walk(model, flat, prev, _unpack):
                for rows, sym in coder_mix.coded_symbols(model.probabilities(ctx), bits, model.block):
                    enc.encode(sym, categorical, rows)
    else:
        _encode_v1(model, flat, prev, lambda lv, ctx, sym: enc.encode(sym, family, model.probabilities(lv, ctx)))
    if context is not None:
        context._keep(model, prev)
    return enc.get_compressed().astype("<u4", copy=False).tobytes()


def _encode_v1(model: "_Model", flat: np.ndarray, prev: list, encode) -> None:
    """Version 1's coding walk over ``flat`` = ``uint32 (L, T, H*W)``: ``encode(level, contexts, bits)`` per
    group, the counts updated after each (for the encoder, and for fitting the tables)."""
    levels, frames, _ = flat.shape
    cur = None
    for t, lv in _walk(levels, frames):
        plane = _unpack(flat[lv, t], model.bits)  # (H*W, B)
        coarse = cur if lv else None
        for g, nb in ((0, prev[lv]), (1, plane)):
            ctx = model.contexts(g, nb, prev[lv], coarse)
            sym = plane[model.groups[g][0]].ravel().astype(np.int32)
            encode(lv, ctx, sym)
            model.update(lv, ctx, sym)
        prev[lv] = cur = plane


def _decode_v1(model: "_Model", out: np.ndarray, prev: list, decode) -> None:
    """Version 1's decoding walk: fill ``out`` = ``uint32 (L, T, H*W)`` with ``decode(probabilities)``'s bits."""
    levels, frames, n = out.shape
    cur = None
    for t, lv in _walk(levels, frames):
        plane = np.zeros((n, model.bits), dtype=np.uint8)
        coarse = cur if lv else None
        for g, nb in ((0, prev[lv]), (1, plane)):
            idx = model.groups[g][0]
            ctx = model.contexts(g, nb, prev[lv], coarse)
            sym = decode(model.probabilities(lv, ctx))
            plane[idx] = sym.reshape(len(idx), model.bits)
            model.update(lv, ctx, sym)
        out[lv, t] = _pack(plane)
        prev[lv] = cur = plane


def _model(levels: int, token_bits: int, h: int, w: int, tables, version: int):
    """The coding state of coder ``version`` for one grid, from checked ``tables`` (None: uniform prior)."""
    if version in MIX_VERSIONS:
        return _mix_model(levels, token_bits, h, w, tables, version)
    return _Model(levels, token_bits, h, w, tables)


def _version_of(tables, version: int | None):
    """The coder version to code with: ``version``, or when None that of ``tables`` (CODER_VERSION for None)."""
    if version is not None:
        return version
    return CODER_VERSION if tables is None else tables_version(tables)


def _check_version(version, exc) -> int:
    if isinstance(version, (bool, np.bool_)) or version not in CODER_VERSIONS:
        raise exc(f"coder version must be one of {CODER_VERSIONS}, got {version!r}")
    return int(version)


def decode_tokens(data, shape, token_bits: int, tables=None, context: CoderContext | None = None,
                  version: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_tokens`: bytes -> ``uint32 (L, T, H, W)`` (``context`` as there: it is updated
    only when the grid decodes without error).

    ``shape`` and ``token_bits`` are validated before anything is allocated; corrupt data raises
    :class:`CorruptDataError` (never another exception).
    """
    token_bits = _check_bits(token_bits, CorruptDataError)
    version = _check_version(_version_of(tables, version), CorruptDataError)
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise CorruptDataError(f"token grid shape must be 4 ints, got {shape!r}") from None
    if len(shape) != 4 or min(shape) < 1 or shape[0] > MAX_LEVELS:
        raise CorruptDataError(f"implausible token grid shape {shape}")
    levels, frames, h, w = shape
    if levels * frames * h * w > MAX_GRID_TOKENS:
        raise CorruptDataError(f"token grid {shape} exceeds {MAX_GRID_TOKENS} tokens")
    data = memoryview(data).cast("B")
    if len(data) % 4:
        raise CorruptDataError(f"coded token data is {len(data)} bytes, not a whole number of words")
    if len(data) > max_coded_bytes(levels * frames * h * w, token_bits):
        raise CorruptDataError(f"coded token data is too long ({len(data)} bytes) for grid {shape}")
    tab = check_tables(tables, token_bits, levels, version)
    family = constriction.stream.model.Bernoulli(perfect=False)
    categorical = constriction.stream.model.Categorical(perfect=False)  # see coder_mix.coded_symbols
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(words)
    out = np.empty((levels, frames, h * w), dtype=np.uint32)
    model = _model(levels, token_bits, h, w, tab, version)
    prev = (context or CoderContext())._start(model, levels, CorruptDataError)
    try:
        if version in MIX_VERSIONS:
            with coder_mix.one_blas_thread():
                coder_mix.decode_walk(model, out, prev, lambda rows: dec.decode(categorical, rows), _pack)
        else:
            _decode_v1(model, out, prev, lambda p: dec.decode(family, p))
        exhausted = dec.maybe_exhausted()
    except (AssertionError, ValueError, RuntimeError, OverflowError) as e:
        # constriction reports data that no encoder could have produced this way.
        raise CorruptDataError(f"coded token data is corrupt ({type(e).__name__}: {e})") from None
    if not exhausted:
        raise CorruptDataError("coded token data has trailing words after the last symbol")
    if context is not None:
        context._keep(model, prev)
    return out.reshape(shape)


__all__ = [
    "CODER_ID",
    "CODER_VERSION",
    "CODER_VERSIONS",
    "CoderContext",
    "MixTables",
    "NUM_CONTEXTS",
    "encode_tokens",
    "decode_tokens",
    "fit_tables",
    "check_tables",
    "tables_hash",
    "table_set_hash",
    "tables_version",
    "pad_tables",
    "cut_tables",
    "narrow_tables",
    "max_coded_bytes",
]
