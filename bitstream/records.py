"""VCB records (FORMAT.md section 4): their data types, their bytes, and the one record-header check.

A record is a 20-byte record header and a payload. This module builds records, parses and checks payloads
against the stream header, and reads bytes from a file or a pipe (:class:`Source`). It never codes tokens:
a CHUNK record's payload is carried as :class:`CodedChunk` bytes; ``bitstream.chunks`` turns them into tokens.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import BitstreamError, ChecksumError, CorruptDataError, TruncatedError
from .header import (
    CHUNK_COLOUR,
    CHUNK_CONTINUES,
    CHUNK_HEADER,
    COLOUR_HEAD,
    COLOUR_TERMS,
    END_PAYLOAD,
    INDEX_ENTRY,
    INDEX_HEADER,
    MAX_FRAMES,
    MAX_INDEX_ENTRIES,
    MAX_PACKET_PAYLOAD,
    MAX_SKIPPABLE_PAYLOAD,
    MAX_TRACK_PAYLOAD,
    PACKET_HEADER,
    PKT_HAS_DTS,
    PKT_HAS_PTS,
    PKT_KEYFRAME,
    READ_PIECE,
    REC_CHUNK,
    REC_END,
    REC_INDEX,
    REC_PACKET,
    REC_SKIPPABLE,
    REC_TRACK,
    RECORD_HEADER,
    REPEAT_TERMS,
    REPEAT_VERSION,
    SYNC,
    TRACK_HEADER,
    StreamHeader,
    TrackInfo,
    canonical_json,
    crc,
    is_int,
    parse_json,
)

# ----------------------------------------------------------------------------------------------
# data types

@dataclass(frozen=True)
class Packet:
    """One packet of an auxiliary track. ``pts``/``dts`` are ``None`` when unknown."""

    track_id: int
    data: bytes
    pts: int | None = None
    dts: int | None = None
    duration: int = 0
    keyframe: bool = False



@dataclass(frozen=True)
class CodedChunk:
    """One CHUNK record as bytes: where its window lies and its coded token grid, not yet decoded.

    ``data`` is the entropy-coded grid ``(levels, *grid)`` (FORMAT.md section 6); ``len(data)`` is the payload
    size a benchmark counts. ``offset`` is the record's byte offset (None when not read from a stream).
    """

    index: int
    num_frames: int
    first_frame: int
    levels: int
    grid: tuple[int, int, int]  # (t_lat, h_lat, w_lat)
    data: bytes
    offset: int | None = None
    continues: bool = False  # decodes only after the previous chunk (no keyframe); FORMAT.md 4.2
    bits: int | None = None  # the token width of a version-3 chunk (None: the header's token_bits)
    colour: tuple[int, ...] | None = None  # version 4: the chunk's colour correction, 12 or 30 ints (FORMAT.md 4.2.1)
    colour_repeated: bool = False  # version 5: sent as "the previous chunk's" (4 bytes; the reader fills ``colour`` in)

    @property
    def colour_bytes(self) -> int:
        """What the colour correction takes of the payload (0 without one)."""
        if self.colour_repeated:
            return COLOUR_HEAD.size
        return 0 if self.colour is None else colour_size(self.colour)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of the decoded token grid: ``(L, T_lat, H_lat, W_lat)``."""
        return (self.levels, *self.grid)

    @property
    def name(self) -> str:
        where = f" (record at offset {self.offset})" if self.offset is not None else ""
        return f"chunk {self.index}{where}"


@dataclass(frozen=True)
class IndexEntry:
    offset: int  # byte offset of the CHUNK record from the start of the stream
    first_frame: int
    num_frames: int
    index: int
    continues: bool = False  # the chunk continues the previous one: decoding starts at a chunk that does not


@dataclass(frozen=True)
class Damage:
    """What salvage mode skipped: where, which chunk if known, and why."""

    offset: int
    chunk: int | None
    error: BitstreamError

    @property
    def message(self) -> str:
        return str(self.error)



# ----------------------------------------------------------------------------------------------
# records: bytes out


def write_all(f, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        if n is None:  # a non-blocking raw stream that would block: nothing we can do portably
            raise OSError("output stream accepted no data")
        view = view[n:]


def record(rtype: int, payload: bytes) -> bytes:
    """A whole record: its 20-byte header (sync, type, length, CRCs) and ``payload``."""
    head = struct.pack("<4sBBHII", SYNC, rtype, 0, 0, len(payload), crc(payload))
    return head + struct.pack("<I", crc(head)) + payload


def packet_record_size(data_len: int) -> int:
    """Bytes an auxiliary-track packet of ``data_len`` bytes of data takes in a stream: record and packet headers
    included."""
    return RECORD_HEADER.size + PACKET_HEADER.size + data_len


def track_record_size(track_id: int, info: TrackInfo) -> int:
    """Bytes the declaration of auxiliary track ``track_id`` takes in a stream."""
    return RECORD_HEADER.size + len(track_payload(track_id, info))


def track_payload(track_id: int, info: TrackInfo) -> bytes:
    try:
        meta = canonical_json(
            {"codec": info.codec, "kind": info.kind, "params": info.params, "time_base": list(info.time_base)}
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"track params are not JSON-serialisable ({e})") from None
    payload = TRACK_HEADER.pack(track_id, 0, len(meta)) + meta + bytes(info.extradata)
    if len(payload) > MAX_TRACK_PAYLOAD:
        raise ValueError(f"track declaration is {len(payload)} bytes (max {MAX_TRACK_PAYLOAD})")
    return payload


def chunk_payload(chunk: CodedChunk) -> bytes:
    flags = (CHUNK_CONTINUES if chunk.continues else 0) | (CHUNK_COLOUR if chunk.colour is not None else 0)
    if chunk.colour is None:
        colour = b""
    else:
        colour = COLOUR_HEAD.pack(REPEAT_TERMS, 0) if chunk.colour_repeated else colour_payload(chunk.colour)
    return CHUNK_HEADER.pack(chunk.index, chunk.num_frames, chunk.first_frame, chunk.levels, flags, chunk.bits or 0,
                             *chunk.grid) + colour + chunk.data


def colour_size(colour) -> int:
    """The bytes a colour correction of ``len(colour)`` coefficients takes in a CHUNK payload (FORMAT.md 4.2.1)."""
    return COLOUR_HEAD.size + 2 * len(colour)


def colour_payload(colour: tuple[int, ...]) -> bytes:
    """A colour correction's bytes in a CHUNK payload (FORMAT.md 4.2.1): its terms per row, 0, the coefficients."""
    terms = len(colour) // 3
    return COLOUR_HEAD.pack(terms, 0) + struct.pack(f"<{3 * terms}h", *colour)


def packet_payload(track_id: int, data: bytes, pts: int | None, dts: int | None, duration: int,
                   keyframe: bool) -> bytes:
    for name, v in (("pts", pts), ("dts", dts)):
        if v is not None and (not is_int(v) or not -(2**63) <= v < 2**63):
            raise ValueError(f"{name} must be None or a 64-bit int")
    if not is_int(duration) or not 0 <= duration < 2**63:
        raise ValueError("duration must be a non-negative 64-bit int")
    if len(data) > MAX_PACKET_PAYLOAD - PACKET_HEADER.size:
        raise ValueError(f"packet of {len(data)} bytes is over the format limit")
    flags = (PKT_KEYFRAME if keyframe else 0) | (PKT_HAS_PTS if pts is not None else 0) | (PKT_HAS_DTS if dts is not None else 0)
    return PACKET_HEADER.pack(track_id, flags, 0, pts or 0, dts or 0, duration) + bytes(data)


def index_payload(entries: list[tuple[int, int, int, int, int]]) -> bytes:
    """INDEX payload from (offset, first_frame, num_frames, flags, index) per chunk."""
    arr = np.array(entries, dtype=INDEX_ENTRY) if entries else np.zeros(0, INDEX_ENTRY)
    return INDEX_HEADER.pack(len(arr), 0) + arr.tobytes()


# ----------------------------------------------------------------------------------------------
# records: bytes in


class RecordHeaderError(CorruptDataError):
    """A record header is unreadable, so its length cannot be trusted (salvage resyncs)."""


@dataclass(frozen=True)
class RecordHeader:
    type: int
    length: int
    payload_crc: int


def header_crc_ok(head: bytes) -> bool:
    """Whether a 20-byte record header's own CRC checks (the resync test)."""
    return zlib.crc32(head[:16]) == struct.unpack_from("<I", head, 16)[0]


_MAX_PAYLOAD_BY_TYPE = {
    REC_TRACK: MAX_TRACK_PAYLOAD,
    REC_PACKET: MAX_PACKET_PAYLOAD,
    REC_INDEX: INDEX_HEADER.size + MAX_INDEX_ENTRIES * INDEX_ENTRY.itemsize,
    REC_END: END_PAYLOAD.size,
}


def parse_record_header(head: bytes, offset: int, header: StreamHeader) -> RecordHeader:
    """The one record-header check (FORMAT.md section 4), in the normative order: sync, header CRC,
    flags/reserved (:class:`RecordHeaderError`: the length cannot be trusted), then the type and the length
    against the type's maximum (:class:`CorruptDataError`). ``head`` is 20 bytes."""
    sync, rtype, flags, reserved, length, payload_crc, _ = RECORD_HEADER.unpack(head)
    if sync != SYNC:
        raise RecordHeaderError(f"no record at offset {offset}: bad sync bytes {sync!r}")
    if not header_crc_ok(head):
        raise RecordHeaderError(f"record header at offset {offset} fails CRC32")
    if flags or reserved:
        raise RecordHeaderError(f"record at offset {offset} has nonzero flags/reserved bits")
    if rtype == REC_CHUNK:
        limit = header.max_chunk_payload
    elif rtype in _MAX_PAYLOAD_BY_TYPE:
        limit = _MAX_PAYLOAD_BY_TYPE[rtype]
    elif rtype >= REC_SKIPPABLE:
        limit = MAX_SKIPPABLE_PAYLOAD
    else:
        raise CorruptDataError(f"unknown record type 0x{rtype:02x} at offset {offset}")
    if length > limit:
        raise CorruptDataError(f"record at offset {offset} claims {length} bytes (max {limit} for type 0x{rtype:02x})")
    return RecordHeader(rtype, length, payload_crc)


class Record:
    __slots__ = ("type", "offset", "payload")

    def __init__(self, rtype, offset, payload):
        self.type, self.offset, self.payload = rtype, offset, payload


# what a damaged record is called in messages (FORMAT.md section 4)
RECORD_NAMES = {REC_TRACK: "an audio track record", REC_CHUNK: "a video chunk", REC_PACKET: "an audio packet",
                REC_INDEX: "the index", REC_END: "the end-of-stream record"}


def read_record(src: Source, header: StreamHeader, chunk_hint: int | None = None) -> Record | None:
    """Next record from ``src`` with its header and payload checked, or None at a clean end of stream."""
    off = src.pos
    head = src.read(RECORD_HEADER.size)
    if not head:
        return None
    if len(head) < RECORD_HEADER.size:
        raise TruncatedError(f"stream truncated in a record header at offset {off}")
    rh = parse_record_header(head, off, header)
    what = (f"chunk {chunk_hint}" if rh.type == REC_CHUNK and chunk_hint is not None
            else RECORD_NAMES.get(rh.type, f"record type 0x{rh.type:02x}"))
    payload = src.read_exact(rh.length, f"{what} (record at offset {off})")
    if zlib.crc32(payload) != rh.payload_crc:
        if rh.type == REC_CHUNK:
            raise ChecksumError(f"{what} (record at offset {off}) fails CRC32", chunk=chunk_hint, offset=off)
        raise ChecksumError(f"{what} at offset {off} fails CRC32", offset=off)
    return Record(rh.type, off, payload)


def peek_record_type(src: Source) -> int | None:
    """The type of the next record if its sync and header CRC check, else None; consumes nothing."""
    head = src.read(RECORD_HEADER.size)
    src.unread(head)
    if len(head) < RECORD_HEADER.size or head[:4] != SYNC or not header_crc_ok(head):
        return None
    return head[4]


def parse_track(rec: Record) -> tuple[int, TrackInfo]:
    p = rec.payload
    if len(p) < TRACK_HEADER.size:
        raise CorruptDataError(f"track record at offset {rec.offset} is too short")
    tid, reserved, jlen = TRACK_HEADER.unpack_from(p)
    if reserved or jlen > len(p) - TRACK_HEADER.size:
        raise CorruptDataError(f"track record at offset {rec.offset} is malformed")
    meta = parse_json(p[TRACK_HEADER.size : TRACK_HEADER.size + jlen], f"track record at offset {rec.offset}")
    tb = meta.get("time_base")
    if not isinstance(tb, list) or len(tb) != 2:
        raise CorruptDataError(f"track record at offset {rec.offset} has no valid time_base")
    info = TrackInfo(
        kind=meta.get("kind"), codec=meta.get("codec"), time_base=tuple(tb),
        params=meta.get("params", {}), extradata=bytes(p[TRACK_HEADER.size + jlen :]),
    )
    info._validate(CorruptDataError)
    return tid, info


def parse_chunk(rec: Record, header: StreamHeader) -> CodedChunk:
    """A CHUNK record's fields, checked against the stream header; the tokens stay coded."""
    p, h = rec.payload, header
    if len(p) < CHUNK_HEADER.size:
        raise CorruptDataError(f"chunk record at offset {rec.offset} is too short")
    index, nframes, first, levels, flags, bits, t_lat, h_lat, w_lat = CHUNK_HEADER.unpack_from(p)
    name = f"chunk {index} (record at offset {rec.offset})"
    check_chunk_flags(flags, bits, index, h, name)
    continues = bool(flags & CHUNK_CONTINUES)
    if not 1 <= nframes <= h.window_frames:
        raise CorruptDataError(f"{name}: implausible frame count {nframes} (window is {h.window_frames})")
    if not 1 <= levels <= h.max_levels:
        raise CorruptDataError(f"{name}: implausible level count {levels} (max {h.max_levels})")
    want = (h.latent_frames(nframes, continues), h.latent_height, h.latent_width)
    if (t_lat, h_lat, w_lat) != want:
        raise CorruptDataError(f"{name}: latent grid {(t_lat, h_lat, w_lat)} does not match the header {want}")
    if first + nframes > MAX_FRAMES:
        raise CorruptDataError(f"{name}: frame position {first} is implausible")
    start, colour, repeated = CHUNK_HEADER.size, None, False
    if flags & CHUNK_COLOUR:
        if len(p) < start + COLOUR_HEAD.size:
            raise CorruptDataError(f"{name}: too short for its colour correction")
        terms, reserved = COLOUR_HEAD.unpack_from(p, start)
        start += COLOUR_HEAD.size
        repeated = terms == REPEAT_TERMS and not reserved and h.format_version >= REPEAT_VERSION
        if repeated and not continues:
            raise CorruptDataError(f"{name}: a keyframe chunk cannot repeat the colour correction of the chunk "
                                   "before it")
        if not repeated:
            if terms not in COLOUR_TERMS or reserved:
                raise CorruptDataError(f"{name}: colour correction of {terms} terms a row (reserved {reserved}); "
                                       f"readers know {' or '.join(map(str, COLOUR_TERMS))} (reserved 0)")
            if len(p) < start + 6 * terms:
                raise CorruptDataError(f"{name}: too short for its colour correction")
            colour, start = struct.unpack_from(f"<{3 * terms}h", p, start), start + 6 * terms
    return CodedChunk(index=index, num_frames=nframes, first_frame=first, levels=levels, grid=want,
                      data=bytes(memoryview(p)[start:]), offset=rec.offset, continues=continues,
                      bits=bits or None, colour=colour, colour_repeated=repeated)


def check_chunk_flags(flags: int, bits: int, index: int, header: StreamHeader, name: str) -> None:
    """CorruptDataError unless a CHUNK's flags are possible (bit 0, continues, never on chunk 0 nor in a
    version-1 stream; bit 1, colour correction, from version 4 only) and its bits field too: one of ``chunk_bits``
    from version 3, 0 (reserved) before."""
    known = CHUNK_CONTINUES | (CHUNK_COLOUR if header.chunk_colour else 0)
    if flags & ~known:
        raise CorruptDataError(f"{name}: unknown flags {flags:#x}")
    if header.chunk_bits is None and bits:
        raise CorruptDataError(f"{name}: reserved field is {bits:#x}, not 0")
    if header.chunk_bits is not None and bits not in header.chunk_bits:
        raise CorruptDataError(f"{name}: token width {bits} is not one the header lists {list(header.chunk_bits)}")
    if flags & CHUNK_CONTINUES and (index == 0 or header.format_version < 2):
        why = "the first chunk" if index == 0 else f"format version {header.format_version}"
        raise CorruptDataError(f"{name}: marked as continuing a previous chunk, impossible in {why}")


def parse_packet(rec: Record, tracks: dict) -> Packet:
    p = rec.payload
    if len(p) < PACKET_HEADER.size:
        raise CorruptDataError(f"packet record at offset {rec.offset} is too short")
    tid, flags, reserved, pts, dts, duration = PACKET_HEADER.unpack_from(p)
    if flags & ~(PKT_KEYFRAME | PKT_HAS_PTS | PKT_HAS_DTS) or reserved:
        raise CorruptDataError(f"packet record at offset {rec.offset} has unknown flags")
    if tid not in tracks:
        raise CorruptDataError(f"packet record at offset {rec.offset} names undeclared track {tid}")
    if duration < 0:
        raise CorruptDataError(f"packet record at offset {rec.offset} has a negative duration")
    return Packet(
        track_id=tid, data=bytes(p[PACKET_HEADER.size :]),
        pts=pts if flags & PKT_HAS_PTS else None, dts=dts if flags & PKT_HAS_DTS else None,
        duration=duration, keyframe=bool(flags & PKT_KEYFRAME),
    )



def parse_index(rec: Record) -> list[IndexEntry]:
    p = rec.payload
    if len(p) < INDEX_HEADER.size:
        raise CorruptDataError(f"index record at offset {rec.offset} is too short")
    count, reserved = INDEX_HEADER.unpack_from(p)
    if reserved or len(p) != INDEX_HEADER.size + count * INDEX_ENTRY.itemsize:
        raise CorruptDataError(f"index record at offset {rec.offset} has the wrong length for {count} entries")
    arr = np.frombuffer(p, dtype=INDEX_ENTRY, offset=INDEX_HEADER.size, count=count)
    out, frames = [], 0
    for i, e in enumerate(arr.tolist()):
        entry = IndexEntry(offset=e[0], first_frame=e[1], num_frames=e[2], index=e[4],
                           continues=bool(e[3] & CHUNK_CONTINUES))
        if e[3] & ~CHUNK_CONTINUES or (i == 0 and entry.continues) or entry.index != i or entry.first_frame != frames or entry.num_frames < 1 or (out and entry.offset <= out[-1].offset):
            raise CorruptDataError(f"index record at offset {rec.offset} is inconsistent at entry {i}")
        frames += entry.num_frames
        out.append(entry)
    return out



def parse_end(rec: Record) -> tuple[int, int, int]:
    if len(rec.payload) != END_PAYLOAD.size:
        raise CorruptDataError(f"end record at offset {rec.offset} has the wrong length")
    return END_PAYLOAD.unpack(rec.payload)


# ----------------------------------------------------------------------------------------------
# a byte source


class Source:
    """A byte source with an absolute position, push-back and (when possible) seeking."""

    def __init__(self, f):
        self.f = f
        self.buf = bytearray()  # pushed-back bytes, they come before f's current position
        self.pos = 0
        self.record: bytearray | None = None  # when not None, every byte read is appended here
        try:
            self.seekable = bool(f.seekable())
            self.base = f.tell() if self.seekable else 0
        except (AttributeError, OSError, ValueError):
            self.seekable, self.base = False, 0

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at end of stream. Reads in bounded pieces."""
        out = bytearray()
        if self.buf:
            out += self.buf[:n]
            del self.buf[:n]
        while len(out) < n:
            piece = self.f.read(min(n - len(out), READ_PIECE))
            if not piece:
                break
            out += piece
        self.pos += len(out)
        if self.record is not None:
            self.record += out
        return bytes(out)

    def read_exact(self, n: int, what: str) -> bytes:
        start = self.pos
        data = self.read(n)
        if len(data) < n:
            raise TruncatedError(f"stream truncated in {what} at offset {start}: needed {n} bytes, got {len(data)}")
        return data

    def unread(self, data: bytes) -> None:
        self.buf[0:0] = data
        self.pos -= len(data)

    def seek(self, pos: int) -> None:
        self.f.seek(self.base + pos)
        self.buf.clear()
        self.pos = pos

    def size(self) -> int:
        end = self.f.seek(0, os.SEEK_END)
        self.f.seek(self.base + self.pos + len(self.buf))  # restore the underlying position
        return end - self.base

    def find_record(self) -> bool:
        """Scan forward to the next record header whose CRC checks; False at end of stream."""
        win = b""
        start = 0
        while True:
            i = win.find(SYNC, start)
            if i == -1:
                keep = win[-(len(SYNC) - 1):] if len(win) >= len(SYNC) - 1 else win
                more = self.read(65536)
                if not more:
                    return False
                win, start = keep + more, 0
                continue
            if len(win) - i < RECORD_HEADER.size:
                more = self.read(65536)
                if not more:
                    return False
                win, start = win[i:] + more, 0
                continue
            if header_crc_ok(win[i : i + RECORD_HEADER.size]):
                self.unread(win[i:])
                return True
            start = i + 1
