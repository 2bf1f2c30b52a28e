"""Writing a VCB stream (FORMAT.md sections 2-4): the file header, then records, then the index and END.

The writer never seeks: it counts the bytes it wrote, so even a pipe gets an index.
"""

from __future__ import annotations

import dataclasses
import os
from typing import BinaryIO

import numpy as np

from .chunks import check_chunk_tokens, chunk_width, encode_chunk, stream_tables_hash, tables_by_width
from .coder import CODER_ID, CODER_VERSIONS, CoderContext, check_tables
from .errors import UnknownCoderError, UnsupportedVersionError
from .header import (
    CHUNK_CONTINUES,
    COLOUR_TERMS,
    END_PAYLOAD,
    MAX_FRAMES,
    MAX_TRACKS,
    REC_CHUNK,
    REC_END,
    REC_INDEX,
    REC_PACKET,
    REC_TRACK,
    StreamHeader,
    TrackInfo,
    encode_file_header,
    is_int,
)
from .records import CodedChunk, chunk_payload, index_payload, packet_payload, record, track_payload, write_all


class VcbWriter:
    """Write a VCB stream to a path or a binary file object (seekable or not).

    ``with VcbWriter(out, header, tables) as w: w.write_chunk(tokens, n)``; leaving the block
    normally writes the index (unless ``index=False``) and the end-of-stream record; leaving it
    by an exception writes neither, so the reader reports the stream as truncated.
    ``tables`` are the coder tables :meth:`write_chunk` codes with (their hash goes into the header): for a
    stream whose chunks choose their token width (``header.chunk_bits``, format version 3) a dict width ->
    tables; :meth:`write_coded_chunk` takes tokens that are coded already.
    """

    def __init__(self, dst, header: StreamHeader, tables=None, *, index: bool = True):
        if not isinstance(header, StreamHeader):
            raise TypeError("header must be a StreamHeader")
        header.validate()
        if header.coder_id != CODER_ID:
            raise UnknownCoderError(f"cannot write with entropy coder {header.coder_id!r}")
        if header.coder_version not in CODER_VERSIONS:
            raise UnsupportedVersionError(f"cannot write entropy coder version {header.coder_version}")
        self._tables = {bits: check_tables(t, bits, version=header.coder_version)
                        for bits, t in tables_by_width(tables, header).items()}
        self._context = CoderContext()  # the coder state the next continuing chunk starts from
        self.header = dataclasses.replace(header, tables_hash=stream_tables_hash(tables, header),
                                          format_version=header.written_version)
        file_header = encode_file_header(self.header)
        self._own = isinstance(dst, (str, os.PathLike))
        self._f: BinaryIO = open(dst, "wb") if self._own else dst
        self._pos = 0
        self._index_on = index
        self._entries: list[tuple[int, int, int, int, int]] = []  # (offset, first_frame, num_frames, flags, index)
        self._last: tuple[int, int, bool] | None = None  # (levels, num_frames, continues) of the last chunk
        self._frames = 0
        self._colour_chunks = 0
        self._colour_bytes = 0
        self._last_colour: tuple[int, ...] | None = None  # the last chunk's colour correction
        self._tracks: dict[int, TrackInfo] = {}
        self._started = False
        self._closed = False
        self._emit(file_header)

    def _emit(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("VcbWriter is closed")
        write_all(self._f, data)
        self._pos += len(data)

    @property
    def num_chunks(self) -> int:
        return len(self._entries)

    @property
    def num_frames(self) -> int:
        return self._frames

    @property
    def colour_chunks(self) -> int:
        """Chunks written with a colour correction."""
        return self._colour_chunks

    @property
    def colour_bytes(self) -> int:
        """Bytes the colour corrections written so far take (a repeat of the previous chunk's: 4)."""
        return self._colour_bytes

    @property
    def bytes_written(self) -> int:
        """Bytes of the stream written so far (file header and records)."""
        return self._pos

    def add_track(self, info: TrackInfo) -> int:
        """Declare an auxiliary track (before the first chunk or packet); returns its id."""
        if not isinstance(info, TrackInfo):
            raise TypeError("info must be a TrackInfo")
        info._validate(ValueError)
        if self._started:
            raise ValueError("tracks must be declared before the first chunk or packet")
        if len(self._tracks) >= MAX_TRACKS:
            raise ValueError(f"at most {MAX_TRACKS} tracks")
        tid = len(self._tracks)
        self._emit(record(REC_TRACK, track_payload(tid, info)))
        self._tracks[tid] = info
        return tid

    def _check_room(self, num_frames: int) -> None:
        limit = MAX_FRAMES if self.header.num_frames is None else self.header.num_frames
        if self._frames + num_frames > limit:
            raise ValueError(f"stream would exceed {limit} frames")
        if len(self._entries) >= 2**32 - 1:
            raise ValueError("too many chunks")

    def write_chunk(self, tokens: np.ndarray, num_frames: int, continues: bool = False, bits: int | None = None,
                    colour=None) -> int:
        """Code one temporal window of ``num_frames`` video frames; returns the chunk index.

        ``tokens``: uint32 ``(L, T_lat, H_lat, W_lat)`` with ``1 <= L <= max_levels``,
        ``T_lat = header.latent_frames(num_frames, continues)`` and the header's latent height/width.
        ``continues``: the window continues the previous chunk's stream (no keyframe): its coder contexts go on
        from where the previous chunk's ended, and a decoder needs that chunk first (FORMAT.md 4.2).
        ``bits``: the tokens' width, one of ``header.chunk_bits`` (None: ``token_bits``). ``colour``: the
        chunk's colour correction (see :meth:`write_coded_chunk`), or None.
        """
        arr = check_chunk_tokens(self.header, tokens, num_frames, continues)
        width = chunk_width(self.header, bits)
        colour = self._check_colour(colour)
        self._check_room(num_frames)
        self._check_continues(len(arr), continues)
        data = encode_chunk(self.header, arr, num_frames, self._tables[width], self._context, continues, width)
        return self._append(data, num_frames, len(arr), continues, width, colour)

    def _check_continues(self, levels: int, continues: bool) -> None:
        if not continues:
            return
        if self._last is None:
            raise ValueError("the first chunk cannot continue a previous one")
        problem = self.header.continuation_problem(levels, self._last)
        if problem is not None:
            raise ValueError(f"chunk {len(self._entries)} cannot continue chunk {len(self._entries) - 1}: {problem}")

    def write_coded_chunk(self, data: bytes, num_frames: int, levels: int, continues: bool = False,
                          bits: int | None = None, colour=None) -> int:
        """Append one window whose ``levels``-level grid of ``bits``-bit tokens (None: ``token_bits``) is
        entropy-coded already (``data``, e.g. from :func:`bitstream.encode_chunk` with this writer's tables, and a
        context of its own for ``continues`` chunks); returns the chunk index. The writer's own coder context no
        longer follows the stream, so a :meth:`write_chunk` that continues this chunk is refused. ``colour``: the
        chunk's colour correction, 3 rows of 4 or 10 ints in -32768..32767 (12 or 30; FORMAT.md 4.2.1; streams
        whose header has ``chunk_colour`` only), or None."""
        width = chunk_width(self.header, bits)
        colour = self._check_colour(colour)
        self._context.reset()
        return self._append(data, num_frames, levels, continues, width, colour)

    def _check_colour(self, colour) -> tuple[int, ...] | None:
        if colour is None:
            return None
        if not self.header.chunk_colour:
            raise ValueError("a colour correction needs a stream whose header has chunk_colour (format version 4)")
        values = tuple(int(v) if isinstance(v, np.integer) else v for v in colour)   # numpy ints welcome
        if len(values) not in [3 * t for t in COLOUR_TERMS] or not all(is_int(v) and -(2**15) <= v < 2**15
                                                                        for v in values):
            raise ValueError("a colour correction is 12 or 30 ints in -32768..32767")
        return values

    def _append(self, data: bytes, num_frames: int, levels: int, continues: bool, bits: int,
                colour: tuple[int, ...] | None = None) -> int:
        h = self.header
        if not is_int(num_frames) or not 1 <= num_frames <= h.window_frames:
            raise ValueError(f"num_frames must lie in 1..{h.window_frames}, got {num_frames!r}")
        if not is_int(levels) or not 1 <= levels <= h.max_levels:
            raise ValueError(f"levels must lie in 1..{h.max_levels}, got {levels!r}")
        self._check_room(num_frames)
        self._check_continues(levels, continues)
        repeated = continues and colour is not None and colour == self._last_colour    # 4 bytes, FORMAT.md 4.2.1
        chunk = CodedChunk(index=len(self._entries), num_frames=num_frames, first_frame=self._frames, levels=levels,
                           grid=(h.latent_frames(num_frames, continues), h.latent_height, h.latent_width),
                           data=bytes(data), continues=continues, bits=bits if h.chunk_bits is not None else None,
                           colour=colour, colour_repeated=repeated)
        payload = chunk_payload(chunk)
        if len(payload) > h.max_chunk_payload:
            raise ValueError(f"coded chunk is {len(payload)} bytes, over the format limit")
        self._started = True
        offset = self._pos
        self._emit(record(REC_CHUNK, payload))
        self._entries.append((offset, self._frames, num_frames, CHUNK_CONTINUES if continues else 0, chunk.index))
        self._last = (levels, num_frames, continues)
        self._frames += num_frames
        self._colour_chunks += colour is not None
        self._colour_bytes += chunk.colour_bytes
        self._last_colour = colour
        return chunk.index

    def write_packet(
        self, track_id: int, data: bytes, pts: int | None = None, dts: int | None = None,
        duration: int = 0, keyframe: bool = False,
    ) -> None:
        """Append one packet of an auxiliary track (interleave with chunks in time order)."""
        if track_id not in self._tracks:
            raise ValueError(f"unknown track id {track_id!r}")
        payload = packet_payload(track_id, data, pts, dts, duration, keyframe)
        self._started = True
        self._emit(record(REC_PACKET, payload))

    def close(self) -> None:
        """Write the index (if enabled) and the end-of-stream record; close an owned file."""
        if self._closed:
            return
        try:
            h = self.header
            if h.num_frames is not None and self._frames != h.num_frames:
                raise ValueError(f"header promised {h.num_frames} frames, {self._frames} were written")
            index_offset = 0
            if self._index_on:
                index_offset = self._pos
                self._emit(record(REC_INDEX, index_payload(self._entries)))
            self._emit(record(REC_END, END_PAYLOAD.pack(len(self._entries), self._frames, index_offset)))
            self._f.flush()
        finally:
            self._finish()

    def _finish(self) -> None:
        self._closed = True
        if self._own:
            self._f.close()

    def __enter__(self) -> VcbWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self._f.flush()
            finally:
                self._finish()
