"""Token coding, the step above the container: a chunk's token grid <-> the bytes a CHUNK record carries.

The container (``records``, ``writer``, ``reader``) moves :class:`~bitstream.records.CodedChunk` bytes and
needs no coder tables; :func:`encode_chunk` / :func:`decode_chunk` run the entropy coder (``coder``,
FORMAT.md section 6) with the tables of the model that made the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coder import CoderContext, check_tables, decode_tokens, encode_tokens, tables_hash
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


class CoderTables:
    """Coder tables checked once against a stream header (for its coder version): ``array`` (version 1's count
    array or version 2's :class:`~bitstream.MixTables`; None = uniform prior) and its hash."""

    def __init__(self, tables, header: StreamHeader):
        self.array = check_tables(tables, header.token_bits, version=header.coder_version)
        self.hash = tables_hash(tables)

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


def encode_chunk(header: StreamHeader, tokens, num_frames: int, tables=None, context: CoderContext | None = None,
                 continues: bool = False) -> bytes:
    """Entropy-code one window's token grid (checked with :func:`check_chunk_tokens`): the CHUNK payload's
    coded-token bytes. A ``continues`` chunk codes on from ``context`` (the previous chunk's); ``context`` is then
    updated for the next chunk."""
    arr = check_chunk_tokens(header, tokens, num_frames, continues)
    if context is not None and not continues:
        context.reset()
    if continues and (context is None or context.empty):
        raise ValueError("a continuing chunk needs the coder context its previous chunk left")
    return encode_tokens(arr, header.token_bits, tables, context, header.coder_version)


def decode_chunk(header: StreamHeader, chunk: CodedChunk, tables: CoderTables, context: CoderContext | None = None) -> Chunk:
    """Decode a coded chunk's token grid with ``tables`` (which must be the stream's: TablesMismatchError);
    undecodable data is CorruptDataError naming the chunk. A continuing chunk decodes on from ``context`` (the
    state its previous chunk left: CorruptDataError without it); ``context`` is then updated for the next chunk."""
    tables.check_stream(header)
    covered = None if tables.array is None else (tables.array.levels if header.coder_version == 2 else len(tables.array))
    if covered is not None and covered < chunk.levels:
        raise TablesMismatchError(f"{chunk.name}: coder tables cover {covered} levels, chunk has {chunk.levels}")
    if context is not None and not chunk.continues:
        context.reset()
    if chunk.continues and (context is None or context.empty):
        raise CorruptDataError(f"{chunk.name}: continues a previous chunk that was not decoded")
    try:
        tokens = decode_tokens(chunk.data, chunk.shape, header.token_bits, tables.array, context, header.coder_version)
    except CorruptDataError as e:
        raise CorruptDataError(f"{chunk.name}: {e}") from None
    return Chunk(index=chunk.index, num_frames=chunk.num_frames, tokens=tokens, first_frame=chunk.first_frame,
                 continues=chunk.continues)
