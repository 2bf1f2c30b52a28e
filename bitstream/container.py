"""The VCB container: a file header, then self-delimiting records (see ``FORMAT.md``).

Writer and reader stream: the writer never seeks (it counts the bytes it wrote, so even a pipe
gets an index), and the reader holds at most one record in memory. Readers validate every
length and every header value against fixed limits *before* allocating anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from . import coder
from .coder import CODER_ID, CODER_VERSION, check_tables, decode_tokens, encode_tokens, tables_hash
from .errors import (
    BadMagicError,
    BitstreamError,
    ChecksumError,
    CorruptDataError,
    HeaderError,
    ModelMismatchError,
    TablesMismatchError,
    TruncatedError,
    UnknownCoderError,
    UnsupportedVersionError,
)

# ----------------------------------------------------------------------------------------------
# constants (FORMAT.md sections 2-5)

MAGIC = b"\x89VCB"
FORMAT_VERSION = 1
SYNC = b"\xd6VCR"

FILE_HEADER = struct.Struct("<4sBBHII")  # magic, version, flags, reserved, json_len, header_crc
RECORD_HEADER = struct.Struct("<4sBBHIII")  # sync, type, flags, reserved, length, payload_crc, header_crc
CHUNK_HEADER = struct.Struct("<IIQB3xIII")  # index, num_frames, first_frame, levels, t_lat, h_lat, w_lat
TRACK_HEADER = struct.Struct("<HHI")  # track_id, reserved, json_len
PACKET_HEADER = struct.Struct("<HBBqqq")  # track_id, flags, reserved, pts, dts, duration
INDEX_HEADER = struct.Struct("<II")  # count, reserved
INDEX_ENTRY = np.dtype([("offset", "<u8"), ("first_frame", "<u8"), ("num_frames", "<u4"), ("index", "<u4")])
END_PAYLOAD = struct.Struct("<QQQ")  # num_chunks, total_frames, index_offset

REC_TRACK, REC_CHUNK, REC_PACKET, REC_INDEX, REC_END = 0x01, 0x02, 0x03, 0x0E, 0x0F
REC_SKIPPABLE = 0x80  # types >= this are optional extensions a reader may skip
END_RECORD_SIZE = RECORD_HEADER.size + END_PAYLOAD.size

PKT_KEYFRAME, PKT_HAS_PTS, PKT_HAS_DTS = 1, 2, 4

# limits: a reader refuses anything beyond these before allocating for it
MAX_HEADER_JSON = 65536
MAX_DIM = 16384
MAX_FRAMES = 10**7
MAX_WINDOW_FRAMES = 1024
MAX_TEMPORAL_FACTOR = 16
MAX_SPATIAL_FACTOR = 64
MAX_RATE = 10**6  # frame-rate numerator and denominator
MAX_NAME = 256
MAX_TRACKS = 64
MAX_TRACK_PAYLOAD = 1 << 20
MAX_PACKET_PAYLOAD = 1 << 24
MAX_CHUNK_PAYLOAD = 1 << 30
MAX_SKIPPABLE_PAYLOAD = 1 << 24
MAX_INDEX_ENTRIES = MAX_FRAMES

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_READ_PIECE = 1 << 20


def _crc(*parts: bytes) -> int:
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _canonical_json(obj) -> bytes:
    # sorted keys, no whitespace, ASCII only: the same object always gives the same bytes.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _reject_constant(name):
    raise ValueError(f"non-finite number {name}")


def _parse_json(raw: bytes, what: str, exc=CorruptDataError):
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise exc(f"{what} is not valid JSON ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise exc(f"{what} is not a JSON object")
    return obj


# ----------------------------------------------------------------------------------------------
# public data types


@dataclass(frozen=True)
class StreamHeader:
    """Everything a decoder needs before the first chunk (FORMAT.md section 3).

    Video geometry is the *output* size; the latent grid covers ``ceil(height / spatial_factor)``
    x ``ceil(width / spatial_factor)`` positions (the tokenizer pads bottom/right by edge
    replication, the decoder crops back to the top-left ``width`` x ``height``).
    """

    model_name: str  # tokenizer name, e.g. "magvit2-lfq18-v1"
    weights_hash: str  # hex sha256 of the weights (64 lowercase hex digits)
    token_bits: int  # bits per LFQ token (1..32)
    levels: int  # residual levels the quality setting uses (chunks may use 1..max_levels)
    max_levels: int  # levels the model has
    width: int  # output video width in pixels
    height: int  # output video height in pixels
    frame_rate: tuple[int, int] = (30, 1)  # (num, den): frames per second = num / den
    temporal_factor: int = 4  # video frames per latent frame after the first
    spatial_factor: int = 8  # pixels per latent position, each axis
    window_frames: int = 17  # most video frames in one chunk
    num_frames: int | None = None  # total frames if known when writing; the END record has the truth
    pad_mode: str = "replicate"  # how the tokenizer padded to a multiple of spatial_factor
    coder_id: str = CODER_ID
    coder_version: int = CODER_VERSION
    tables_hash: str | None = None  # sha256 of the coder tables; the writer fills it in
    extra: dict = field(default_factory=dict)  # JSON-able, for the application

    def __post_init__(self):
        if isinstance(self.frame_rate, list):  # accept [num, den] as well
            object.__setattr__(self, "frame_rate", tuple(self.frame_rate))

    @property
    def latent_height(self) -> int:
        return -(-self.height // self.spatial_factor)

    @property
    def latent_width(self) -> int:
        return -(-self.width // self.spatial_factor)

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames of a window of ``num_frames`` video frames: 1 + ceil((n - 1) / tf)."""
        return 1 + -(-(num_frames - 1) // self.temporal_factor)

    def check_model(self, name: str, weights_hash: str) -> None:
        """Raise :class:`ModelMismatchError` unless the stream was made by this model."""
        if name != self.model_name or weights_hash != self.weights_hash:
            raise ModelMismatchError(
                f"stream was made by model {self.model_name!r} (weights {self.weights_hash[:12]}...), "
                f"not {name!r} (weights {str(weights_hash)[:12]}...)"
            )

    # -- serialisation ------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "coder": {"id": self.coder_id, "tables_sha256": self.tables_hash, "version": self.coder_version},
            "extra": self.extra,
            "model": {"name": self.model_name, "weights_sha256": self.weights_hash},
            "tokens": {
                "levels": self.levels,
                "max_levels": self.max_levels,
                "spatial_factor": self.spatial_factor,
                "temporal_factor": self.temporal_factor,
                "token_bits": self.token_bits,
                "window_frames": self.window_frames,
            },
            "video": {
                "frame_rate": list(self.frame_rate),
                "height": self.height,
                "num_frames": self.num_frames,
                "pad": self.pad_mode,
                "width": self.width,
            },
        }

    @classmethod
    def from_json(cls, obj: dict) -> "StreamHeader":
        """Build and validate a header from its JSON object; raises :class:`HeaderError`."""

        def section(name):
            v = obj.get(name)
            if not isinstance(v, dict):
                raise HeaderError(f"header field {name!r} is missing or not an object")
            return v

        def get(sec, name, key, kinds, optional=False):
            if key not in sec:
                if optional:
                    return None
                raise HeaderError(f"header field {name}.{key} is missing")
            v = sec[key]
            if v is None and optional:
                return None
            if kinds is int and not _is_int(v) or kinds is not int and not isinstance(v, kinds):
                raise HeaderError(f"header field {name}.{key} has the wrong type")
            return v

        model, tokens, video, coder_ = (section(s) for s in ("model", "tokens", "video", "coder"))
        # The coder is checked first: an unknown coder is the most useful thing to report.
        coder_id = get(coder_, "coder", "id", str)
        coder_version = get(coder_, "coder", "version", int)
        if coder_id != CODER_ID:
            raise UnknownCoderError(f"unknown entropy coder {coder_id[:64]!r} (this reader has {CODER_ID!r})")
        if coder_version != CODER_VERSION:
            raise UnsupportedVersionError(
                f"entropy coder {coder_id} version {coder_version} is not supported (this reader has {CODER_VERSION})"
            )
        rate = get(video, "video", "frame_rate", list)
        if len(rate) != 2 or not all(_is_int(x) for x in rate):
            raise HeaderError("header field video.frame_rate must be [num, den]")
        extra = obj.get("extra", {})
        if not isinstance(extra, dict):
            raise HeaderError("header field 'extra' is not an object")
        hdr = cls(
            model_name=get(model, "model", "name", str),
            weights_hash=get(model, "model", "weights_sha256", str),
            token_bits=get(tokens, "tokens", "token_bits", int),
            levels=get(tokens, "tokens", "levels", int),
            max_levels=get(tokens, "tokens", "max_levels", int),
            temporal_factor=get(tokens, "tokens", "temporal_factor", int),
            spatial_factor=get(tokens, "tokens", "spatial_factor", int),
            window_frames=get(tokens, "tokens", "window_frames", int),
            width=get(video, "video", "width", int),
            height=get(video, "video", "height", int),
            frame_rate=(rate[0], rate[1]),
            num_frames=get(video, "video", "num_frames", int, optional=True),
            pad_mode=get(video, "video", "pad", str),
            coder_id=coder_id,
            coder_version=coder_version,
            tables_hash=get(coder_, "coder", "tables_sha256", str, optional=True),
            extra=extra,
        )
        hdr.validate()
        return hdr

    def validate(self) -> None:
        """Refuse implausible values (HeaderError, one line, naming the field)."""

        def rng(name, v, lo, hi):
            if not _is_int(v) or not lo <= v <= hi:
                raise HeaderError(f"implausible header value {name}={v!r} (allowed {lo}..{hi})")

        if not isinstance(self.model_name, str) or not 1 <= len(self.model_name) <= MAX_NAME:
            raise HeaderError(f"model name must be a string of 1..{MAX_NAME} characters")
        if not isinstance(self.weights_hash, str) or not _HEX64.match(self.weights_hash):
            raise HeaderError("weights hash must be 64 lowercase hex digits (sha256)")
        rng("token_bits", self.token_bits, 1, coder.MAX_TOKEN_BITS)
        rng("max_levels", self.max_levels, 1, coder.MAX_LEVELS)
        rng("levels", self.levels, 1, self.max_levels)
        rng("width", self.width, 1, MAX_DIM)
        rng("height", self.height, 1, MAX_DIM)
        rng("temporal_factor", self.temporal_factor, 1, MAX_TEMPORAL_FACTOR)
        rng("spatial_factor", self.spatial_factor, 1, MAX_SPATIAL_FACTOR)
        rng("window_frames", self.window_frames, 1, MAX_WINDOW_FRAMES)
        if self.num_frames is not None:
            rng("num_frames", self.num_frames, 1, MAX_FRAMES)
        if not isinstance(self.frame_rate, tuple) or len(self.frame_rate) != 2:
            raise HeaderError("frame_rate must be a (num, den) tuple")
        rng("frame_rate num", self.frame_rate[0], 1, MAX_RATE)
        rng("frame_rate den", self.frame_rate[1], 1, MAX_RATE)
        if self.pad_mode != "replicate":
            raise HeaderError(f"unsupported pad mode {str(self.pad_mode)[:32]!r}")
        if self.tables_hash is not None and (not isinstance(self.tables_hash, str) or not _HEX64.match(self.tables_hash)):
            raise HeaderError("tables hash must be null or 64 lowercase hex digits")
        if not isinstance(self.extra, dict):
            raise HeaderError("extra must be a dict")
        grid = self.max_levels * self.latent_frames(self.window_frames) * self.latent_height * self.latent_width
        if grid > coder.MAX_GRID_TOKENS:
            raise HeaderError(f"implausible geometry: a full chunk would hold {grid} tokens (max {coder.MAX_GRID_TOKENS})")

    @property
    def max_chunk_payload(self) -> int:
        """Largest CHUNK payload this header allows (checked before a payload is read)."""
        grid = self.max_levels * self.latent_frames(self.window_frames) * self.latent_height * self.latent_width
        return min(MAX_CHUNK_PAYLOAD, CHUNK_HEADER.size + coder.max_coded_bytes(grid, self.token_bits))


@dataclass(frozen=True)
class TrackInfo:
    """An auxiliary track, e.g. the source's audio copied packet by packet."""

    kind: str  # "audio", "subtitle", "data", ...
    codec: str  # codec name as FFmpeg spells it: "aac", "opus", "pcm_s16le", ...
    time_base: tuple[int, int] = (1, 1000)  # pts/dts/duration unit, in seconds = num / den
    params: dict = field(default_factory=dict)  # JSON-able codec parameters (sample_rate, channels, ...)
    extradata: bytes = b""  # codec private data, copied verbatim

    def __post_init__(self):
        if isinstance(self.time_base, list):
            object.__setattr__(self, "time_base", tuple(self.time_base))

    def _validate(self, exc) -> None:
        for name in ("kind", "codec"):
            v = getattr(self, name)
            if not isinstance(v, str) or not 1 <= len(v) <= MAX_NAME:
                raise exc(f"track {name} must be a string of 1..{MAX_NAME} characters")
        tb = self.time_base
        if not isinstance(tb, tuple) or len(tb) != 2 or not all(_is_int(x) and 1 <= x <= 2**31 - 1 for x in tb):
            raise exc("track time_base must be (num, den) with 1 <= num, den < 2**31")
        if not isinstance(self.params, dict):
            raise exc("track params must be a dict")
        if not isinstance(self.extradata, (bytes, bytearray)):
            raise exc("track extradata must be bytes")


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
class Chunk:
    """One decoded temporal window: ``tokens`` is ``uint32 (L, T_lat, H_lat, W_lat)``."""

    index: int
    num_frames: int
    tokens: np.ndarray
    first_frame: int = 0


@dataclass(frozen=True)
class IndexEntry:
    offset: int  # byte offset of the CHUNK record from the start of the stream
    first_frame: int
    num_frames: int
    index: int


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
# writer


def _write_all(f, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        if n is None:  # a non-blocking raw stream that would block: nothing we can do portably
            raise OSError("output stream accepted no data")
        view = view[n:]


def _record(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<4sBBHII", SYNC, rtype, 0, 0, len(payload), _crc(payload))
    return head + struct.pack("<I", _crc(head)) + payload


class VcbWriter:
    """Write a VCB stream to a path or a binary file object (seekable or not).

    ``with VcbWriter(out, header, tables) as w: w.write_chunk(tokens, n)``; leaving the block
    normally writes the index (unless ``index=False``) and the end-of-stream record; leaving it
    by an exception writes neither, so the reader reports the stream as truncated.
    """

    def __init__(self, dst, header: StreamHeader, tables=None, *, index: bool = True):
        if not isinstance(header, StreamHeader):
            raise TypeError("header must be a StreamHeader")
        header.validate()
        if header.coder_id != CODER_ID:
            raise UnknownCoderError(f"cannot write with entropy coder {header.coder_id!r}")
        if header.coder_version != CODER_VERSION:
            raise UnsupportedVersionError(f"cannot write entropy coder version {header.coder_version}")
        self._tables = check_tables(tables, header.token_bits)
        self.header = dataclasses.replace(header, tables_hash=tables_hash(tables))
        try:
            raw = _canonical_json(self.header.to_json())
        except (TypeError, ValueError) as e:
            raise HeaderError(f"header 'extra' is not JSON-serialisable ({e})") from None
        if len(raw) > MAX_HEADER_JSON:
            raise HeaderError(f"header JSON is {len(raw)} bytes (max {MAX_HEADER_JSON}); shrink 'extra'")
        self._own = isinstance(dst, (str, os.PathLike))
        self._f: BinaryIO = open(dst, "wb") if self._own else dst
        self._pos = 0
        self._index_on = index
        self._entries: list[tuple[int, int, int, int]] = []
        self._frames = 0
        self._tracks: dict[int, TrackInfo] = {}
        self._started = False
        self._closed = False
        head = FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0, 0, len(raw), 0)[:12]
        self._emit(head + struct.pack("<I", _crc(head, raw)) + raw)

    def _emit(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("VcbWriter is closed")
        _write_all(self._f, data)
        self._pos += len(data)

    @property
    def num_chunks(self) -> int:
        return len(self._entries)

    @property
    def num_frames(self) -> int:
        return self._frames

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
        try:
            meta = _canonical_json(
                {"codec": info.codec, "kind": info.kind, "params": info.params, "time_base": list(info.time_base)}
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"track params are not JSON-serialisable ({e})") from None
        payload = TRACK_HEADER.pack(tid, 0, len(meta)) + meta + bytes(info.extradata)
        if len(payload) > MAX_TRACK_PAYLOAD:
            raise ValueError(f"track declaration is {len(payload)} bytes (max {MAX_TRACK_PAYLOAD})")
        self._emit(_record(REC_TRACK, payload))
        self._tracks[tid] = info
        return tid

    def write_chunk(self, tokens: np.ndarray, num_frames: int) -> int:
        """Code one temporal window of ``num_frames`` video frames; returns the chunk index.

        ``tokens``: uint32 ``(L, T_lat, H_lat, W_lat)`` with ``1 <= L <= max_levels``,
        ``T_lat = header.latent_frames(num_frames)`` and the header's latent height/width.
        """
        h = self.header
        if not _is_int(num_frames) or not 1 <= num_frames <= h.window_frames:
            raise ValueError(f"num_frames must lie in 1..{h.window_frames}, got {num_frames!r}")
        arr = np.asarray(tokens)
        want = (h.latent_frames(num_frames), h.latent_height, h.latent_width)
        if arr.ndim != 4 or tuple(arr.shape[1:]) != want or not 1 <= arr.shape[0] <= h.max_levels:
            raise ValueError(f"tokens of shape {arr.shape} do not fit (1..{h.max_levels}, {want[0]}, {want[1]}, {want[2]})")
        limit = MAX_FRAMES if h.num_frames is None else h.num_frames
        if self._frames + num_frames > limit:
            raise ValueError(f"stream would exceed {limit} frames")
        if len(self._entries) >= 2**32 - 1:
            raise ValueError("too many chunks")
        coded = encode_tokens(arr, h.token_bits, self._tables)
        payload = CHUNK_HEADER.pack(len(self._entries), num_frames, self._frames, arr.shape[0], *arr.shape[1:]) + coded
        if len(payload) > h.max_chunk_payload:
            raise ValueError(f"coded chunk is {len(payload)} bytes, over the format limit")
        self._started = True
        offset = self._pos
        self._emit(_record(REC_CHUNK, payload))
        self._entries.append((offset, self._frames, num_frames, len(self._entries)))
        self._frames += num_frames
        return len(self._entries) - 1

    def write_packet(
        self, track_id: int, data: bytes, pts: int | None = None, dts: int | None = None,
        duration: int = 0, keyframe: bool = False,
    ) -> None:
        """Append one packet of an auxiliary track (interleave with chunks in time order)."""
        if track_id not in self._tracks:
            raise ValueError(f"unknown track id {track_id!r}")
        for name, v in (("pts", pts), ("dts", dts)):
            if v is not None and (not _is_int(v) or not -(2**63) <= v < 2**63):
                raise ValueError(f"{name} must be None or a 64-bit int")
        if not _is_int(duration) or not 0 <= duration < 2**63:
            raise ValueError("duration must be a non-negative 64-bit int")
        if len(data) > MAX_PACKET_PAYLOAD - PACKET_HEADER.size:
            raise ValueError(f"packet of {len(data)} bytes is over the format limit")
        flags = (PKT_KEYFRAME if keyframe else 0) | (PKT_HAS_PTS if pts is not None else 0) | (PKT_HAS_DTS if dts is not None else 0)
        head = PACKET_HEADER.pack(track_id, flags, 0, pts or 0, dts or 0, duration)
        self._started = True
        self._emit(_record(REC_PACKET, head + bytes(data)))

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
                entries = np.array(self._entries, dtype=INDEX_ENTRY) if self._entries else np.zeros(0, INDEX_ENTRY)
                self._emit(_record(REC_INDEX, INDEX_HEADER.pack(len(entries), 0) + entries.tobytes()))
            self._emit(_record(REC_END, END_PAYLOAD.pack(len(self._entries), self._frames, index_offset)))
            self._f.flush()
        finally:
            self._finish()

    def _finish(self) -> None:
        self._closed = True
        if self._own:
            self._f.close()

    def __enter__(self) -> "VcbWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self._f.flush()
            finally:
                self._finish()


# ----------------------------------------------------------------------------------------------
# reader


class _Source:
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
            piece = self.f.read(min(n - len(out), _READ_PIECE))
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
            head = win[i : i + RECORD_HEADER.size]
            if zlib.crc32(head[:16]) == struct.unpack_from("<I", head, 16)[0]:
                self.unread(win[i:])
                return True
            start = i + 1


_MAX_PAYLOAD_BY_TYPE = {
    REC_TRACK: MAX_TRACK_PAYLOAD,
    REC_PACKET: MAX_PACKET_PAYLOAD,
    REC_INDEX: INDEX_HEADER.size + MAX_INDEX_ENTRIES * INDEX_ENTRY.itemsize,
    REC_END: END_PAYLOAD.size,
}


class _Record:
    __slots__ = ("type", "offset", "payload")

    def __init__(self, rtype, offset, payload):
        self.type, self.offset, self.payload = rtype, offset, payload


class _RecordHeaderError(CorruptDataError):
    """A record header is unreadable, so its length cannot be trusted (salvage resyncs)."""


class VcbReader:
    """Read a VCB stream from a path or a binary file object (seekable or a pipe).

    ``tables``: the coder tables, or a callable ``tables(header) -> tables`` that picks them once
    the header is read (so a pipe need not be opened twice); see also :meth:`set_tables`.

    ``.header`` and ``.tracks`` are read on open. ``chunks()``, ``packets()`` and ``records()``
    stream through the file holding one record at a time; on a non-seekable input only one such
    pass is possible. ``read_chunk(i)`` seeks (via the index when present).
    """

    def __init__(self, src, tables=None):
        self._own = isinstance(src, (str, os.PathLike))
        f = open(src, "rb") if self._own else src
        try:
            self._src = _Source(f)
            self.header = self._read_header()
            self.set_tables(tables(self.header) if callable(tables) else tables)
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
        self._tables = check_tables(tables, self.header.token_bits)
        self._tables_hash = tables_hash(tables)

    # -- context manager -----------------------------------------------------------------------

    def close(self) -> None:
        if self._own:
            self._src.f.close()

    def __enter__(self) -> "VcbReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- header and records --------------------------------------------------------------------

    def _read_header(self) -> StreamHeader:
        src = self._src
        head = src.read(FILE_HEADER.size)
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            if len(head) < len(MAGIC) and MAGIC.startswith(head):
                raise TruncatedError(f"stream truncated in the file header: {len(head)} bytes")
            raise BadMagicError(f"not a VCB stream: bad magic {bytes(head[:4])!r} (expected {MAGIC!r})")
        if len(head) < FILE_HEADER.size:
            raise TruncatedError(f"stream truncated in the file header: {len(head)} bytes")
        _, version, flags, reserved, json_len, crc = FILE_HEADER.unpack(head)
        if version != FORMAT_VERSION:
            raise UnsupportedVersionError(f"VCB format version {version} is not supported (this reader has {FORMAT_VERSION})")
        if flags or reserved:
            raise HeaderError(f"file header flags/reserved are nonzero ({flags}, {reserved})")
        if not 2 <= json_len <= MAX_HEADER_JSON:
            raise HeaderError(f"implausible header length {json_len} (allowed 2..{MAX_HEADER_JSON})")
        raw = src.read_exact(json_len, "the header JSON")
        if _crc(head[:12], raw) != crc:
            raise ChecksumError("stream header fails CRC32", offset=0)
        return StreamHeader.from_json(_parse_json(raw, "stream header", HeaderError))

    def _read_record(self, chunk_hint: int | None = None) -> _Record | None:
        """Next record with its CRCs checked, or None at a clean end of stream."""
        src = self._src
        off = src.pos
        head = src.read(RECORD_HEADER.size)
        if not head:
            return None
        if len(head) < RECORD_HEADER.size:
            raise TruncatedError(f"stream truncated in a record header at offset {off}")
        sync, rtype, flags, reserved, length, pcrc, hcrc = RECORD_HEADER.unpack(head)
        if sync != SYNC:
            raise _RecordHeaderError(f"no record at offset {off}: bad sync bytes {sync!r}")
        if zlib.crc32(head[:16]) != hcrc:
            raise _RecordHeaderError(f"record header at offset {off} fails CRC32")
        if flags or reserved:
            raise _RecordHeaderError(f"record at offset {off} has nonzero flags/reserved bits")
        if rtype == REC_CHUNK:
            limit = self.header.max_chunk_payload
        elif rtype in _MAX_PAYLOAD_BY_TYPE:
            limit = _MAX_PAYLOAD_BY_TYPE[rtype]
        elif rtype >= REC_SKIPPABLE:
            limit = MAX_SKIPPABLE_PAYLOAD
        else:
            raise CorruptDataError(f"unknown record type 0x{rtype:02x} at offset {off}")
        if length > limit:
            raise CorruptDataError(f"record at offset {off} claims {length} bytes (max {limit} for type 0x{rtype:02x})")
        what = f"chunk {chunk_hint}" if rtype == REC_CHUNK and chunk_hint is not None else f"record type 0x{rtype:02x}"
        payload = src.read_exact(length, f"{what} (record at offset {off})")
        if zlib.crc32(payload) != pcrc:
            if rtype == REC_CHUNK:
                raise ChecksumError(f"{what} (record at offset {off}) fails CRC32", chunk=chunk_hint, offset=off)
            raise ChecksumError(f"{what} at offset {off} fails CRC32", offset=off)
        return _Record(rtype, off, payload)

    def _read_tracks(self) -> None:
        while True:
            head = self._src.read(RECORD_HEADER.size)
            self._src.unread(head)
            if (
                len(head) < RECORD_HEADER.size
                or head[:4] != SYNC
                or head[4] != REC_TRACK
                or zlib.crc32(head[:16]) != struct.unpack_from("<I", head, 16)[0]
            ):
                return  # not a (readable) track record: the record stream proper starts here
            rec = self._read_record()
            tid, info = self._parse_track(rec)
            if tid != len(self.tracks):
                raise CorruptDataError(f"track record at offset {rec.offset} has id {tid}, expected {len(self.tracks)}")
            if len(self.tracks) >= MAX_TRACKS:
                raise CorruptDataError(f"more than {MAX_TRACKS} tracks")
            self.tracks[tid] = info

    @staticmethod
    def _parse_track(rec: _Record) -> tuple[int, TrackInfo]:
        p = rec.payload
        if len(p) < TRACK_HEADER.size:
            raise CorruptDataError(f"track record at offset {rec.offset} is too short")
        tid, reserved, jlen = TRACK_HEADER.unpack_from(p)
        if reserved or jlen > len(p) - TRACK_HEADER.size:
            raise CorruptDataError(f"track record at offset {rec.offset} is malformed")
        meta = _parse_json(p[TRACK_HEADER.size : TRACK_HEADER.size + jlen], f"track record at offset {rec.offset}")
        tb = meta.get("time_base")
        if not isinstance(tb, list) or len(tb) != 2:
            raise CorruptDataError(f"track record at offset {rec.offset} has no valid time_base")
        info = TrackInfo(
            kind=meta.get("kind"), codec=meta.get("codec"), time_base=tuple(tb),
            params=meta.get("params", {}), extradata=bytes(p[TRACK_HEADER.size + jlen :]),
        )
        info._validate(CorruptDataError)
        return tid, info

    def _parse_chunk(self, rec: _Record, decode: bool) -> Chunk:
        p, h = rec.payload, self.header
        if len(p) < CHUNK_HEADER.size:
            raise CorruptDataError(f"chunk record at offset {rec.offset} is too short")
        index, nframes, first, levels, t_lat, h_lat, w_lat = CHUNK_HEADER.unpack_from(p)
        name = f"chunk {index} (record at offset {rec.offset})"
        if not 1 <= nframes <= h.window_frames:
            raise CorruptDataError(f"{name}: implausible frame count {nframes} (window is {h.window_frames})")
        if not 1 <= levels <= h.max_levels:
            raise CorruptDataError(f"{name}: implausible level count {levels} (max {h.max_levels})")
        want = (h.latent_frames(nframes), h.latent_height, h.latent_width)
        if (t_lat, h_lat, w_lat) != want:
            raise CorruptDataError(f"{name}: latent grid {(t_lat, h_lat, w_lat)} does not match the header {want}")
        if first + nframes > MAX_FRAMES:
            raise CorruptDataError(f"{name}: frame position {first} is implausible")
        tokens = None
        if decode:
            if self._tables_hash != h.tables_hash:
                def desc(x):
                    return "no tables (uniform prior)" if x is None else f"tables sha256 {x[:12]}..."
                raise TablesMismatchError(
                    f"stream was coded with {desc(h.tables_hash)}, the reader has {desc(self._tables_hash)}"
                )
            if self._tables is not None and self._tables.shape[0] < levels:
                raise TablesMismatchError(f"{name}: coder tables cover {self._tables.shape[0]} levels, chunk has {levels}")
            try:
                tokens = decode_tokens(memoryview(p)[CHUNK_HEADER.size :], (levels, *want), h.token_bits, self._tables)
            except CorruptDataError as e:
                raise CorruptDataError(f"{name}: {e}") from None
        return Chunk(index=index, num_frames=nframes, tokens=tokens, first_frame=first)

    def _parse_packet(self, rec: _Record) -> Packet:
        p = rec.payload
        if len(p) < PACKET_HEADER.size:
            raise CorruptDataError(f"packet record at offset {rec.offset} is too short")
        tid, flags, reserved, pts, dts, duration = PACKET_HEADER.unpack_from(p)
        if flags & ~(PKT_KEYFRAME | PKT_HAS_PTS | PKT_HAS_DTS) or reserved:
            raise CorruptDataError(f"packet record at offset {rec.offset} has unknown flags")
        if tid not in self.tracks:
            raise CorruptDataError(f"packet record at offset {rec.offset} names undeclared track {tid}")
        if duration < 0:
            raise CorruptDataError(f"packet record at offset {rec.offset} has a negative duration")
        return Packet(
            track_id=tid, data=bytes(p[PACKET_HEADER.size :]),
            pts=pts if flags & PKT_HAS_PTS else None, dts=dts if flags & PKT_HAS_DTS else None,
            duration=duration, keyframe=bool(flags & PKT_KEYFRAME),
        )

    @staticmethod
    def _parse_index(rec: _Record) -> list[IndexEntry]:
        p = rec.payload
        if len(p) < INDEX_HEADER.size:
            raise CorruptDataError(f"index record at offset {rec.offset} is too short")
        count, reserved = INDEX_HEADER.unpack_from(p)
        if reserved or len(p) != INDEX_HEADER.size + count * INDEX_ENTRY.itemsize:
            raise CorruptDataError(f"index record at offset {rec.offset} has the wrong length for {count} entries")
        arr = np.frombuffer(p, dtype=INDEX_ENTRY, offset=INDEX_HEADER.size, count=count)
        out, frames = [], 0
        for i, e in enumerate(arr.tolist()):
            entry = IndexEntry(offset=e[0], first_frame=e[1], num_frames=e[2], index=e[3])
            if entry.index != i or entry.first_frame != frames or entry.num_frames < 1 or (out and entry.offset <= out[-1].offset):
                raise CorruptDataError(f"index record at offset {rec.offset} is inconsistent at entry {i}")
            frames += entry.num_frames
            out.append(entry)
        return out

    @staticmethod
    def _parse_end(rec: _Record) -> tuple[int, int, int]:
        if len(rec.payload) != END_PAYLOAD.size:
            raise CorruptDataError(f"end record at offset {rec.offset} has the wrong length")
        return END_PAYLOAD.unpack(rec.payload)

    # -- streaming -------------------------------------------------------------------------------

    def _start_pass(self) -> None:
        if self._src.seekable:
            self._src.seek(self._first_record)
        elif self._passes:
            raise ValueError("a non-seekable stream can be read only once: use records() to get chunks and packets together")
        self._passes += 1

    def records(self, salvage: bool = False, decode: bool = True) -> Iterator[Chunk | Packet]:
        """Chunks and packets in file order. See :meth:`chunks` for ``salvage``."""
        self._start_pass()
        self.damage = []
        src = self._src
        next_index, frames, seen = 0, 0, []
        index_seen: tuple[int, list[IndexEntry]] | None = None
        while True:
            off = src.pos
            if salvage:
                src.record = bytearray()
            try:
                rec = self._read_record(chunk_hint=next_index)
                if rec is None:
                    raise TruncatedError(f"stream ends at offset {off} without an end-of-stream record")
                if rec.type == REC_CHUNK:
                    chunk = self._parse_chunk(rec, decode)
                    if chunk.index != next_index or chunk.first_frame != frames:
                        if not salvage or chunk.index < next_index or chunk.first_frame < frames:
                            raise CorruptDataError(
                                f"chunk {chunk.index} at offset {off} is out of sequence "
                                f"(expected chunk {next_index} starting at frame {frames})"
                            )
                    next_index, frames = chunk.index + 1, chunk.first_frame + chunk.num_frames
                    seen.append(off)
                    yield chunk
                elif rec.type == REC_PACKET:
                    yield self._parse_packet(rec)
                elif rec.type == REC_TRACK:
                    raise CorruptDataError(f"track record at offset {off} comes after the first chunk or packet")
                elif rec.type == REC_INDEX:
                    entries = self._parse_index(rec)
                    if not salvage and [e.offset for e in entries] != seen:
                        raise CorruptDataError(f"index record at offset {off} does not match the chunks in the stream")
                    index_seen = (off, entries)
                elif rec.type == REC_END:
                    end = self._parse_end(rec)
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
                if isinstance(e, _RecordHeaderError) or (isinstance(e, CorruptDataError) and src.pos - off <= RECORD_HEADER.size):
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
                return self._parse_end(rec) if rec is not None and rec.type == REC_END else None
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
                        entries = self._parse_index(rec)
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
            sync, rtype, flags, reserved, length, _, hcrc = RECORD_HEADER.unpack(head)
            if sync != SYNC or zlib.crc32(head[:16]) != hcrc:
                raise CorruptDataError(f"no valid record at offset {off} while scanning for chunks")
            if rtype == REC_END:
                return out
            if rtype == REC_CHUNK:
                if length < CHUNK_HEADER.size:
                    raise CorruptDataError(f"chunk record at offset {off} is too short")
                ch = CHUNK_HEADER.unpack(src.read_exact(CHUNK_HEADER.size, f"chunk record at offset {off}"))
                if ch[0] != len(out) or ch[2] != frames or ch[1] < 1:
                    raise CorruptDataError(f"chunk record at offset {off} is out of sequence")
                out.append(IndexEntry(offset=off, first_frame=frames, num_frames=ch[1], index=ch[0]))
                frames += ch[1]
                length -= CHUNK_HEADER.size
            src.seek(src.pos + length)

    def read_chunk(self, i: int) -> Chunk:
        """Decode chunk ``i`` alone (seekable inputs only)."""
        entries = self.index()
        if not _is_int(i) or not 0 <= i < len(entries):
            raise IndexError(f"chunk {i} out of range (stream has {len(entries)})")
        with self._keep_position():
            self._src.seek(entries[i].offset)
            rec = self._read_record(chunk_hint=i)
        if rec is None or rec.type != REC_CHUNK:
            raise CorruptDataError(f"index points chunk {i} to offset {entries[i].offset}, where there is no chunk")
        chunk = self._parse_chunk(rec, decode=True)
        if chunk.index != i:
            raise CorruptDataError(f"index points chunk {i} to offset {entries[i].offset}, which holds chunk {chunk.index}")
        return chunk

    @property
    def num_chunks(self) -> int | None:
        end = self._end or (self._tail_end() if self._src.seekable else None)
        return None if end is None else end[0]

    @property
    def total_frames(self) -> int | None:
        """Total video frames from the end record (None on a pipe before it was reached)."""
        end = self._end or (self._tail_end() if self._src.seekable else None)
        return None if end is None else end[1]

