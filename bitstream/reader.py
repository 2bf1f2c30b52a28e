"""Reading a VCB stream (FORMAT.md sections 2-5): streaming, random access and salvage.

The reader holds at most one record in memory and validates every length and every header value against
fixed limits *before* allocating anything. Opening a stream reads its header and track declarations only:
no coder tables are needed until tokens are decoded (``records(decode=False)`` and :meth:`VcbReader.coded_chunks`
never need them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

from .chunks import Chunk, CoderTables, decode_chunk
from .coder import CoderContext
from .errors import (
    BitstreamError,
    ChecksumError,
    CorruptDataError,
    TablesMismatchError,
    TruncatedError,
)
from .header import (
    CHUNK_CONTINUES,
    CHUNK_HEADER,
    END_RECORD_SIZE,
    MAX_TRACKS,
    REC_CHUNK,
    REC_END,
    REC_INDEX,
    REC_PACKET,
    REC_TRACK,
    RECORD_HEADER,
    StreamHeader,
    TrackInfo,
    is_int,
    read_file_header,
)
from .records import (
    CodedChunk,
    Damage,
    IndexEntry,
    Packet,
    RecordHeaderError,
    Source,
    check_chunk_flags,
    parse_chunk,
    parse_end,
    parse_index,
    parse_packet,
    parse_record_header,
    parse_track,
    peek_record_type,
    read_record,
)


class VcbReader:
    """Read a VCB stream from a path or a binary file object (seekable or a pipe).

    ``tables``: the coder tables, or a callable ``tables(header) -> tables`` called when the first chunk is
    decoded (so the model that made the stream need be found only then, and a pipe is read once); see also
    :meth:`set_tables`. Without tables, chunks decode with the uniform prior.

    ``.header`` and ``.tracks`` are read on open. ``chunks()``, ``packets()`` and ``records()``
    stream through the file holding one record at a time; on a non-seekable input only one such
    pass is possible. ``read_chunk(i)`` seeks (via the index when present).
    """

    def __init__(self, src, tables=None):
        self._own = isinstance(src, (str, os.PathLike))
        f = open(src, "rb") if self._own else src
        try:
            self._src = Source(f)
            self.header: StreamHeader = read_file_header(self._src)
            self._tables: CoderTables | None = None
            self._tables_from = None
            if callable(tables):
                self._tables_from = tables
            else:
                self.set_tables(tables)
            self.tracks: dict[int, TrackInfo] = {}
            self._read_tracks()
        except BaseException:
            if self._own:
                f.close()
            raise
        self._first_record = self._src.pos
        self._passes = 0
        self._index: list[IndexEntry] | None = None
        self._end: tuple[int, int, int] | None = None
        self.damage: list[Damage] = []

    def set_tables(self, tables) -> None:
        """Use these coder tables for the chunks decoded from now on (e.g. after reading
        ``.header`` to find out which model made the stream). Raises TablesMismatchError for
        tables of the wrong layout; a hash mismatch is reported when a chunk is decoded."""
        self._tables = CoderTables(tables, self.header)
        self._tables_from = None

    def decode(self, chunk: CodedChunk, context: CoderContext | None = None) -> Chunk:
        """Decode one coded chunk's tokens with this reader's tables; a continuing chunk needs the ``context`` that
        decoding its previous chunk left (see :func:`bitstream.decode_chunk`)."""
        if self._tables is None:
            self.set_tables(self._tables_from(self.header) if self._tables_from is not None else None)
        return decode_chunk(self.header, chunk, self._tables, context)

    def _continued(self, chunk: CodedChunk, last: CodedChunk | None) -> CodedChunk:
        """``chunk``, with the colour correction it repeats filled in (FORMAT.md 4.2.1); CorruptDataError unless a
        continuing chunk follows, intact, a chunk it can continue (4.2). ``last``: the last intact chunk before it,
        None after damage."""
        if not chunk.continues:
            return chunk
        if last is None or last.index != chunk.index - 1:
            raise CorruptDataError(f"{chunk.name}: continues chunk {chunk.index - 1}, which was lost: skipped up to "
                                   "the next keyframe chunk")
        problem = self.header.continuation_problem(chunk.levels, (last.levels, last.num_frames, last.continues))
        if problem is not None:
            raise CorruptDataError(f"{chunk.name}: cannot continue chunk {chunk.index - 1}: {problem}")
        if not chunk.colour_repeated:
            return chunk
        if last.colour is None:
            raise CorruptDataError(f"{chunk.name}: repeats the colour correction of chunk {last.index}, which has none")
        return dataclasses.replace(chunk, colour=last.colour)

    # -- context manager -----------------------------------------------------------------------

    def close(self) -> None:
        if self._own:
            self._src.f.close()

    def __enter__(self) -> VcbReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- header and records --------------------------------------------------------------------

    def _read_record(self, chunk_hint: int | None = None):
        return read_record(self._src, self.header, chunk_hint)

    def _read_tracks(self) -> None:
        while peek_record_type(self._src) == REC_TRACK:
            rec = self._read_record()
            tid, info = parse_track(rec)
            if tid != len(self.tracks):
                raise CorruptDataError(f"track record at offset {rec.offset} has id {tid}, expected {len(self.tracks)}")
            if len(self.tracks) >= MAX_TRACKS:
                raise CorruptDataError(f"more than {MAX_TRACKS} tracks")
            self.tracks[tid] = info

    # -- streaming -------------------------------------------------------------------------------

    def _start_pass(self) -> None:
        if self._src.seekable:
            self._src.seek(self._first_record)
        elif self._passes:
            raise ValueError("a non-seekable stream can be read only once: use records() to get chunks and packets together")
        self._passes += 1

    def records(self, salvage: bool = False, decode: bool = True) -> Iterator[Chunk | CodedChunk | Packet]:
        """Chunks and packets in file order. See :meth:`chunks` for ``salvage``. With ``decode=False`` chunks
        come as :class:`CodedChunk` (CRC-checked bytes, no tokens decoded, no tables needed)."""
        self._start_pass()
        self.damage = []
        src = self._src
        next_index, frames, seen = 0, 0, []
        index_seen: tuple[int, list[IndexEntry]] | None = None
        context, last = CoderContext(), None  # coder state and the last intact chunk (coded)
        while True:
            off = src.pos
            if salvage:
                src.record = bytearray()
            try:
                rec = self._read_record(chunk_hint=next_index)
                if rec is None:
                    raise TruncatedError(f"stream ends at offset {off} without an end-of-stream record")
                if rec.type == REC_CHUNK:
                    prev, last = last, None  # None until this chunk proves intact: what continues it is lost
                    coded = self._continued(parse_chunk(rec, self.header), prev)
                    chunk = self.decode(coded, context) if decode else coded
                    if chunk.index != next_index or chunk.first_frame != frames:
                        if not salvage or chunk.index < next_index or chunk.first_frame < frames:
                            raise CorruptDataError(
                                f"chunk {chunk.index} at offset {off} is out of sequence "
                                f"(expected chunk {next_index} starting at frame {frames})"
                            )
                    next_index, frames = chunk.index + 1, chunk.first_frame + chunk.num_frames
                    last = coded
                    seen.append((off, coded.continues))
                    yield chunk
                elif rec.type == REC_PACKET:
                    yield parse_packet(rec, self.tracks)
                elif rec.type == REC_TRACK:
                    raise CorruptDataError(f"track record at offset {off} comes after the first chunk or packet")
                elif rec.type == REC_INDEX:
                    entries = parse_index(rec)
                    if not salvage and [(e.offset, e.continues) for e in entries] != seen:
                        raise CorruptDataError(f"index record at offset {off} does not match the chunks in the stream")
                    index_seen = (off, entries)
                elif rec.type == REC_END:
                    end = parse_end(rec)
                    nchunks, total, index_offset = end
                    if not salvage:
                        if nchunks != len(seen) or total != frames:
                            raise CorruptDataError(
                                f"end record says {nchunks} chunks / {total} frames, stream has {len(seen)} / {frames}"
                            )
                        if index_offset != (index_seen[0] if index_seen else 0):
                            raise CorruptDataError(f"end record points to an index at offset {index_offset} that is not there")
                        if self.header.num_frames is not None and total != self.header.num_frames:
                            raise CorruptDataError(f"header promised {self.header.num_frames} frames, stream has {total}")
                    self._end = end
                    return
                # types >= REC_SKIPPABLE: read, checked and ignored
            except BitstreamError as e:
                if not salvage or isinstance(e, TablesMismatchError):
                    raise
                chunk_no = e.chunk if isinstance(e, ChecksumError) else None
                self.damage.append(Damage(offset=off, chunk=chunk_no, error=e))
                if isinstance(e, TruncatedError):
                    return
                if isinstance(e, RecordHeaderError) or (isinstance(e, CorruptDataError) and src.pos - off <= RECORD_HEADER.size):
                    # the record's length cannot be trusted: look for the next record from off + 1
                    consumed = bytes(src.record)
                    src.record = None
                    src.unread(consumed[1:])
                    if not src.find_record():
                        self.damage.append(Damage(offset=src.pos, chunk=None, error=TruncatedError(
                            f"no further records after offset {off}")))
                        return
                elif isinstance(e, ChecksumError) and e.chunk is not None:
                    next_index += 1  # that was (most likely) the chunk we expected
            finally:
                src.record = None

    def chunks(self, salvage: bool = False) -> Iterator[Chunk]:
        """Decoded chunks in order, one at a time.

        ``salvage=False``: any problem raises a :class:`BitstreamError` (after the good chunks
        before it were yielded). ``salvage=True``: damaged records are skipped and listed in
        ``self.damage`` (offset, chunk index when known, error), the reader resynchronises on
        the next valid record header and goes on; the stream's end stops it quietly.
        """
        for item in self.records(salvage=salvage):
            if isinstance(item, Chunk):
                yield item

    def coded_chunks(self, salvage: bool = False) -> Iterator[CodedChunk]:
        """Chunks in order as CRC-checked bytes, tokens not decoded (no coder tables needed):
        ``len(c.data)`` is each chunk's coded-token payload."""
        for item in self.records(salvage=salvage, decode=False):
            if isinstance(item, CodedChunk):
                yield item

    def packets(self) -> Iterator[Packet]:
        """Auxiliary-track packets in order (chunks are CRC-checked but not decoded)."""
        for item in self.records(decode=False):
            if isinstance(item, Packet):
                yield item

    def __iter__(self) -> Iterator[Chunk]:
        return self.chunks()

    # -- random access -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _keep_position(self):
        """Random access in the middle of a streaming pass must not move that pass."""
        pos, rec = self._src.pos, self._src.record
        self._src.record = None
        try:
            yield
        finally:
            self._src.seek(pos)
            self._src.record = rec

    def _tail_end(self) -> tuple[int, int, int] | None:
        """The END record read from the last bytes of a seekable stream, if it is valid there."""
        src = self._src
        with self._keep_position():
            size = src.size()
            if size - END_RECORD_SIZE < self._first_record:
                return None
            src.seek(size - END_RECORD_SIZE)
            try:
                rec = self._read_record()
                return parse_end(rec) if rec is not None and rec.type == REC_END else None
            except BitstreamError:
                return None

    def index(self) -> list[IndexEntry]:
        """Where each chunk is: from the index record when valid, else by scanning record headers."""
        if self._index is not None:
            return self._index
        if not self._src.seekable:
            raise ValueError("random access needs a seekable input")
        entries = None
        end = self._tail_end()
        with self._keep_position():
            size = self._src.size()
            if end is not None and self._first_record <= end[2] <= size - END_RECORD_SIZE - RECORD_HEADER.size:
                try:
                    self._src.seek(end[2])
                    rec = self._read_record()
                    if rec is not None and rec.type == REC_INDEX:
                        entries = parse_index(rec)
                        # chunks lie between the tracks and the index
                        if len(entries) != end[0] or (
                            entries and (entries[0].offset < self._first_record or entries[-1].offset >= end[2])
                        ):
                            entries = None
                except BitstreamError:
                    entries = None
            if entries is None:
                entries = self._scan_index()
        self._index = entries
        return entries

    def _scan_index(self) -> list[IndexEntry]:
        src = self._src
        src.seek(self._first_record)
        out, frames = [], 0
        while True:
            off = src.pos
            head = src.read(RECORD_HEADER.size)
            if len(head) < RECORD_HEADER.size:
                if head:
                    raise TruncatedError(f"stream truncated in a record header at offset {off}")
                return out
            try:
                rh = parse_record_header(head, off, self.header)
            except RecordHeaderError:
                raise CorruptDataError(f"no valid record at offset {off} while scanning for chunks") from None
            rtype, length = rh.type, rh.length
            if rtype == REC_END:
                return out
            if rtype == REC_CHUNK:
                if length < CHUNK_HEADER.size:
                    raise CorruptDataError(f"chunk record at offset {off} is too short")
                ch = CHUNK_HEADER.unpack(src.read_exact(CHUNK_HEADER.size, f"chunk record at offset {off}"))
                if ch[0] != len(out) or ch[2] != frames or ch[1] < 1:
                    raise CorruptDataError(f"chunk record at offset {off} is out of sequence")
                check_chunk_flags(ch[4], ch[5], ch[0], self.header, f"chunk {ch[0]} (record at offset {off})")
                out.append(IndexEntry(offset=off, first_frame=frames, num_frames=ch[1], index=ch[0],
                                      continues=bool(ch[4] & CHUNK_CONTINUES)))
                frames += ch[1]
                length -= CHUNK_HEADER.size
            src.seek(src.pos + length)

    def read_chunk(self, i: int, decode: bool = True) -> Chunk | CodedChunk:
        """Chunk ``i`` alone, decoded (or as bytes with ``decode=False``); seekable inputs only. A continuing
        chunk's tokens decode only after the chunks before it from the last keyframe chunk: those are decoded
        too (see :meth:`read_chunks`)."""
        if not decode:
            coded = self._read_coded(i)
            return self._continued(coded, self.read_chunk(i - 1, decode=False)) if coded.colour_repeated else coded
        *_, chunk = self.read_chunks(i, i + 1)
        return chunk

    def keyframe_chunk(self, i: int) -> int:
        """The keyframe chunk that decoding chunk ``i`` starts from: ``i`` itself, or the last chunk before it that
        does not continue its previous one (from the index)."""
        entries = self.index()
        if not is_int(i) or not 0 <= i < len(entries):
            raise IndexError(f"chunk {i} out of range (stream has {len(entries)})")
        while i > 0 and entries[i].continues:
            i -= 1
        return i

    def read_chunks(self, first: int, stop: int | None = None) -> Iterator[Chunk]:
        """The chunks that decoding chunks ``first .. stop - 1`` (``stop`` None: to the end) takes, decoded in
        order; seekable inputs only. They start at :meth:`keyframe_chunk` of ``first``: a tokenizer decoding a
        continuing chunk needs the state of the chunks before it too (``chunk.index < first``: for that only)."""
        entries = self.index()
        stop = len(entries) if stop is None else min(stop, len(entries))
        context, last = CoderContext(), None
        for i in range(self.keyframe_chunk(first), stop):
            coded = self._read_coded(i)
            if coded.continues != entries[i].continues:
                raise CorruptDataError(f"{coded.name}: its continues flag ({coded.continues}) is not the index's "
                                       f"({entries[i].continues})")
            coded = self._continued(coded, last)
            chunk = self.decode(coded, context)
            last = coded
            yield chunk

    def _read_coded(self, i: int) -> CodedChunk:
        entries = self.index()
        if not is_int(i) or not 0 <= i < len(entries):
            raise IndexError(f"chunk {i} out of range (stream has {len(entries)})")
        with self._keep_position():
            self._src.seek(entries[i].offset)
            rec = self._read_record(chunk_hint=i)
        if rec is None or rec.type != REC_CHUNK:
            raise CorruptDataError(f"index points chunk {i} to offset {entries[i].offset}, where there is no chunk")
        chunk = parse_chunk(rec, self.header)
        if chunk.index != i:
            raise CorruptDataError(f"index points chunk {i} to offset {entries[i].offset}, which holds chunk {chunk.index}")
        return chunk

    @property
    def bytes_read(self) -> int:
        """Bytes of the stream read so far (after a whole pass: the stream's length up to its END record)."""
        return self._src.pos

    @property
    def num_chunks(self) -> int | None:
        end = self._end or (self._tail_end() if self._src.seekable else None)
        return None if end is None else end[0]

    @property
    def total_frames(self) -> int | None:
        """Total video frames from the end record (None on a pipe before it was reached)."""
        end = self._end or (self._tail_end() if self._src.seekable else None)
        return None if end is None else end[1]
