"""Token coding, the step above the container: a chunk's token grid <-> the bytes a CHUNK record carries.

The container (``records``, ``writer``, ``reader``) moves :class:`~bitstream.records.CodedChunk` bytes and
needs no coder tables; :func:`encode_chunk` / :func:`decode_chunk` run the entropy coder (``coder``,
FORMAT.md section 6) with the tables of the model that made the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coder import CoderContext, MixTables, check_tables, decode_tokens, encode_tokens, table_set_hash, tables_hash
from .errors import CorruptDataError, TablesMismatchError
from .header import StreamHeader, is_int
from .records import CodedChunk


@dataclass(frozen=True)
class Chunk:
    """One decoded temporal window: ``tokens`` is ``uint32 (L, T_lat, H_lat, W_lat)``; ``continues``: the window
    continues the previous chunk's stream (its decoder must carry the previous chunk's state; FORMAT.md 4.2)."""

    index: int
    num_frames: int
    tokens: np.ndarray
    first_frame: int = 0
    continues: bool = False
    bits: int | None = None  # the token width of a version-3 chunk (None: the header's token_bits)
    colour: tuple[int, ...] | None = None  # version 4: the chunk's colour correction (FORMAT.md 4.2.1)


def stream_tables_hash(tables, header: StreamHeader) -> str | None:
    """The ``coder.tables_sha256`` of a stream coded with ``tables``: their hash, or for a stream whose chunks
    choose their width (``header.chunk_bits``; ``tables`` a dict width -> tables) the hash of the set."""
    if header.chunk_bits is None:
        return tables_hash(tables)
    return table_set_hash(tables_by_width(tables, header))


def tables_by_width(tables, header: StreamHeader) -> dict:
    """``tables`` as a dict width -> tables over ``header.widths`` (TablesMismatchError when a width is missing):
    a dict as given, or one set of tables for a stream of one width."""
    by_width = isinstance(tables, dict) and bool(tables) and all(is_int(k) for k in tables)  # not a MixTables dict
    if header.chunk_bits is None:
        if by_width:
            raise TablesMismatchError("a stream of one token width takes one set of tables, not one per width")
        return {header.token_bits: tables}
    if tables is None:
        return dict.fromkeys(header.widths)
    if not by_width or sorted(tables) != list(header.widths):
        have = sorted(tables) if by_width else "one set"
        raise TablesMismatchError(f"the stream's chunks use token widths {list(header.widths)}; tables for {have}")
    return dict(tables)


class CoderTables:
    """Coder tables checked once against a stream header (for its coder version): ``arrays`` (per token width:
    version 1's count array or version 2's / 3's :class:`~bitstream.MixTables`; None = uniform prior) and their hash."""

    def __init__(self, tables, header: StreamHeader):
        self.arrays = {bits: check_tables(t, bits, version=header.coder_version)
                       for bits, t in tables_by_width(tables, header).items()}
        self.hash = stream_tables_hash(tables, header)

    def check_stream(self, header: StreamHeader) -> None:
        """Raise TablesMismatchError unless the stream was coded with these tables."""
        if self.hash != header.tables_hash:
            def desc(x):
                return "no tables (uniform prior)" if x is None else f"tables sha256 {x[:12]}..."

            raise TablesMismatchError(f"stream was coded with {desc(header.tables_hash)}, the reader has {desc(self.hash)}")


def check_chunk_tokens(header: StreamHeader, tokens, num_frames: int, continues: bool = False) -> np.ndarray:
    """``tokens`` as an array, refused (ValueError) unless it is the grid of a ``num_frames``-frame window:
    ``(L, header.latent_frames(num_frames, continues), latent_height, latent_width)`` with ``1 <= L <= max_levels``."""
    h = header
    if not is_int(num_frames) or not 1 <= num_frames <= h.window_frames:
        raise ValueError(f"num_frames must lie in 1..{h.window_frames}, got {num_frames!r}")
    arr = np.asarray(tokens)
    want = (h.latent_frames(num_frames, continues), h.latent_height, h.latent_width)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != want or not 1 <= arr.shape[0] <= h.max_levels:
        raise ValueError(f"tokens of shape {arr.shape} do not fit (1..{h.max_levels}, {want[0]}, {want[1]}, {want[2]})")
    return arr


def chunk_width(header: StreamHeader, bits: int | None) -> int:
    """A chunk's token width: ``bits``, which must be one of the header's widths (ValueError), or None for
    ``token_bits`` (the only width of a stream before version 3)."""
    if bits is None:
        return header.token_bits
    if bits not in header.widths:
        raise ValueError(f"token width {bits!r} is not one the stream header lists {list(header.widths)}")
    return bits


def start_context(header: StreamHeader, context: CoderContext | None, continues: bool) -> None:
    """Prepare ``context`` for a chunk: emptied at a keyframe chunk; in a stream whose chunks choose their rate
    point (format version 3) a continuing chunk of another rate point may code on from it (FORMAT.md 6.5)."""
    if context is None:
        return
    if not continues:
        context.reset()
    context.rate_changes = header.chunk_bits is not None


def encode_chunk(header: StreamHeader, tokens, num_frames: int, tables=None, context: CoderContext | None = None,
                 continues: bool = False, bits: int | None = None) -> bytes:
    """Entropy-code one window's token grid (checked with :func:`check_chunk_tokens`) of ``bits``-bit tokens
    (default ``header.token_bits``) with that width's ``tables``: the CHUNK payload's coded-token bytes. A
    ``continues`` chunk codes on from ``context`` (the previous chunk's, unless the rate point changed);
    ``context`` is then updated for the next chunk."""
    arr = check_chunk_tokens(header, tokens, num_frames, continues)
    width = chunk_width(header, bits)
    if continues and (context is None or context.empty):
        raise ValueError("a continuing chunk needs the coder context its previous chunk left")
    start_context(header, context, continues)
    return encode_tokens(arr, width, tables, context, header.coder_version)


def decode_chunk(header: StreamHeader, chunk: CodedChunk, tables: CoderTables, context: CoderContext | None = None) -> Chunk:
    """Decode a coded chunk's token grid with ``tables`` (which must be the stream's: TablesMismatchError);
    undecodable data is CorruptDataError naming the chunk. A continuing chunk decodes on from ``context`` (the
    state its previous chunk left: CorruptDataError without it); ``context`` is then updated for the next chunk."""
    tables.check_stream(header)
    width = chunk.bits or header.token_bits
    array = tables.arrays[width]
    covered = None if array is None else (array.levels if isinstance(array, MixTables) else len(array))
    if covered is not None and covered < chunk.levels:
        raise TablesMismatchError(f"{chunk.name}: coder tables cover {covered} levels, chunk has {chunk.levels}")
    if chunk.continues and (context is None or context.empty):
        raise CorruptDataError(f"{chunk.name}: continues a previous chunk that was not decoded")
    start_context(header, context, chunk.continues)
    try:
        tokens = decode_tokens(chunk.data, chunk.shape, width, array, context, header.coder_version)
    except CorruptDataError as e:
        raise CorruptDataError(f"{chunk.name}: {e}") from None
    return Chunk(index=chunk.index, num_frames=chunk.num_frames, tokens=tokens, first_frame=chunk.first_frame,
                 continues=chunk.continues, bits=chunk.bits, colour=chunk.colour)
