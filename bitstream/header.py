"""The VCB format's constants and its file header: limits, byte layouts, :class:`StreamHeader` (FORMAT.md 1-3).

Everything here is bytes and plain values: no token coding (``coder`` / ``chunks``), no records (``records``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import coder
from .coder import CODER_ID, CODER_VERSION, CODER_VERSIONS
from .errors import (
    BadMagicError,
    ChecksumError,
    CorruptDataError,
    HeaderError,
    ModelMismatchError,
    TruncatedError,
    UnknownCoderError,
    UnsupportedVersionError,
)

# ----------------------------------------------------------------------------------------------
# constants (FORMAT.md sections 2-5)

MAGIC = b"\x89VCB"
FORMAT_VERSION = 2  # what the writer writes, but for streams whose chunks choose their token width (version 3)
RATE_VERSION = 3  # version 2 + a token width per chunk (``chunk_bits``; FORMAT.md 4.2, section 8)
COLOUR_VERSION = 4  # version 3 + a colour correction a chunk may carry (CHUNK flags bit 1; FORMAT.md 4.2.1)
REPEAT_VERSION = 5  # version 4 + a continuing chunk may carry its previous chunk's correction in 4 bytes (4.2.1)
READABLE_VERSIONS = (1, 2, 3, 4, 5)  # version 1 = version 2 without continuing chunks (FORMAT.md section 8)
SYNC = b"\xd6VCR"

FILE_HEADER = struct.Struct("<4sBBHII")  # magic, version, flags, reserved, json_len, header_crc
RECORD_HEADER = struct.Struct("<4sBBHIII")  # sync, type, flags, reserved, length, payload_crc, header_crc
CHUNK_HEADER = struct.Struct("<IIQBBHIII")  # index, num_frames, first_frame, levels, flags, bits, t_lat, h_lat, w_lat
# (bits: the chunk's token width in version 3, reserved (0) before)
CHUNK_CONTINUES = 1  # CHUNK flags bit 0: the chunk continues the previous one (no keyframe; FORMAT.md 4.2)
CHUNK_COLOUR = 2  # CHUNK flags bit 1 (version 4): a colour correction follows the chunk header (FORMAT.md 4.2.1)
REPEAT_TERMS = 0  # (version 5) a correction of 0 terms a row: the previous chunk's, which a continuing chunk carries on
COLOUR_HEAD = struct.Struct("<HH")  # the colour correction's terms per row (COLOUR_TERMS), reserved; then 3 x terms i16
COLOUR_TERMS = (4, 10)  # affine, quadratic (FORMAT.md 4.2.1)
TRACK_HEADER = struct.Struct("<HHI")  # track_id, reserved, json_len
PACKET_HEADER = struct.Struct("<HBBqqq")  # track_id, flags, reserved, pts, dts, duration
INDEX_HEADER = struct.Struct("<II")  # count, reserved
INDEX_ENTRY = np.dtype([("offset", "<u8"), ("first_frame", "<u8"), ("num_frames", "<u2"), ("flags", "<u2"),
                        ("index", "<u4")])  # version 1 wrote num_frames as u32: the same bytes, flags 0
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
READ_PIECE = 1 << 20  # payloads are read in pieces of at most this many bytes


def crc(*parts: bytes) -> int:
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def canonical_json(obj) -> bytes:
    # sorted keys, no whitespace, ASCII only: the same object always gives the same bytes.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _reject_constant(name):
    raise ValueError(f"non-finite number {name}")


def parse_json(raw: bytes, what: str, exc=CorruptDataError):
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

    # temporal_factor / spatial_factor / window_frames default to the values of format version 1's only
    # tokenizer geometry; vcodec always fills them in from the model's TokenizerConfig.
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
    chunk_bits: tuple[int, ...] | None = None  # version 3: the token widths chunks may use (ascending, last = token_bits)
    extra: dict = field(default_factory=dict)  # JSON-able, for the application
    chunk_colour: bool = False  # version 4: chunks may carry a colour correction (needs chunk_bits; not in the JSON)
    format_version: int = FORMAT_VERSION  # of the stream read (not in the JSON); version 1 has no continuing chunks

    def __post_init__(self):
        if isinstance(self.frame_rate, list):  # accept [num, den] as well
            object.__setattr__(self, "frame_rate", tuple(self.frame_rate))
        if isinstance(self.chunk_bits, list):
            object.__setattr__(self, "chunk_bits", tuple(self.chunk_bits))

    @property
    def widths(self) -> tuple[int, ...]:
        """The token widths this stream's chunks may have: ``chunk_bits``, or ``(token_bits,)``."""
        return self.chunk_bits if self.chunk_bits is not None else (self.token_bits,)

    @property
    def written_version(self) -> int:
        """The format version a writer gives this header: 5 when chunks may carry a colour correction (version 4
        without the 4-byte repeat of the previous chunk's, FORMAT.md 4.2.1), 3 when they choose their width, else 2."""
        if self.chunk_colour:
            return REPEAT_VERSION
        return RATE_VERSION if self.chunk_bits is not None else FORMAT_VERSION

    @property
    def latent_height(self) -> int:
        return -(-self.height // self.spatial_factor)

    @property
    def latent_width(self) -> int:
        return -(-self.width // self.spatial_factor)

    def latent_frames(self, num_frames: int, continues: bool = False) -> int:
        """Latent frames of a chunk of ``num_frames`` video frames: 1 + ceil((n - 1) / tf) for a chunk that starts
        a stream (its first frame alone makes a latent frame), ceil(n / tf) for one that continues the previous."""
        tf = self.temporal_factor
        return -(-num_frames // tf) if continues else 1 + -(-(num_frames - 1) // tf)

    def continuable(self, num_frames: int, continues: bool) -> bool:
        """Whether a chunk of ``num_frames`` frames (itself continuing or not) can be continued: only when it
        ends on a whole latent frame, with no padding frames (FORMAT.md 4.2)."""
        return (num_frames if continues else num_frames - 1) % self.temporal_factor == 0

    def continuation_problem(self, levels: int, previous: tuple[int, int, bool]) -> str | None:
        """Why a chunk of ``levels`` planes cannot continue the chunk before it, ``previous`` = (levels,
        num_frames, continues) of that chunk; None when it can (FORMAT.md 4.2: same levels, and the previous chunk
        ends on a whole latent frame; from version 3 the levels may differ, FORMAT.md 6.5)."""
        last_levels, last_frames, last_continues = previous
        if self.format_version < RATE_VERSION and last_levels != levels:
            return f"the chunk before has {last_levels} levels, this one {levels} (they must be the same)"
        if not self.continuable(last_frames, last_continues):
            return (f"the chunk before has {last_frames} frames (a continued chunk must end on a whole latent "
                    "frame)")
        return None

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
                **({} if self.chunk_bits is None else {"chunk_bits": list(self.chunk_bits)}),
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
            if kinds is int and not is_int(v) or kinds is not int and not isinstance(v, kinds):
                raise HeaderError(f"header field {name}.{key} has the wrong type")
            return v

        model, tokens, video, coder_ = (section(s) for s in ("model", "tokens", "video", "coder"))
        # The coder is checked first: an unknown coder is the most useful thing to report.
        coder_id = get(coder_, "coder", "id", str)
        coder_version = get(coder_, "coder", "version", int)
        if coder_id != CODER_ID:
            raise UnknownCoderError(f"unknown entropy coder {coder_id[:64]!r} (this reader has {CODER_ID!r})")
        if coder_version not in CODER_VERSIONS:
            raise UnsupportedVersionError(
                f"entropy coder {coder_id} version {coder_version} is not supported (this reader has versions "
                f"{', '.join(map(str, CODER_VERSIONS))})"
            )
        rate = get(video, "video", "frame_rate", list)
        if len(rate) != 2 or not all(is_int(x) for x in rate):
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
            chunk_bits=get(tokens, "tokens", "chunk_bits", list, optional=True),
            extra=extra,
        )
        hdr.validate()
        return hdr

    def validate(self) -> None:
        """Refuse implausible values (HeaderError, one line, naming the field)."""

        def rng(name, v, lo, hi):
            if not is_int(v) or not lo <= v <= hi:
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
        if self.chunk_bits is not None:
            cb = self.chunk_bits
            if (not isinstance(cb, tuple) or not 1 <= len(cb) <= coder.MAX_TOKEN_BITS or not all(is_int(b) for b in cb)
                    or list(cb) != sorted(set(cb)) or cb[0] < 1 or cb[-1] != self.token_bits):
                raise HeaderError("header field tokens.chunk_bits must list ascending token widths ending with "
                                  "token_bits")
        if self.chunk_colour is not False and (self.chunk_colour is not True or self.chunk_bits is None):
            raise HeaderError("chunk_colour (format version 4 and 5) must be a bool, true only with tokens.chunk_bits")
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
        colour = COLOUR_HEAD.size + 2 * 3 * max(COLOUR_TERMS) if self.chunk_colour else 0
        return min(MAX_CHUNK_PAYLOAD, CHUNK_HEADER.size + colour + coder.max_coded_bytes(grid, self.token_bits))


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
        if not isinstance(tb, tuple) or len(tb) != 2 or not all(is_int(x) and 1 <= x <= 2**31 - 1 for x in tb):
            raise exc("track time_base must be (num, den) with 1 <= num, den < 2**31")
        if not isinstance(self.params, dict):
            raise exc("track params must be a dict")
        if not isinstance(self.extradata, (bytes, bytearray)):
            raise exc("track extradata must be bytes")


# ----------------------------------------------------------------------------------------------
# the file header's bytes


def encode_file_header(header: StreamHeader) -> bytes:
    """The file header (magic, version, JSON length, CRC) followed by ``header``'s canonical JSON."""
    try:
        raw = canonical_json(header.to_json())
    except (TypeError, ValueError) as e:
        raise HeaderError(f"header 'extra' is not JSON-serialisable ({e})") from None
    if len(raw) > MAX_HEADER_JSON:
        raise HeaderError(f"header JSON is {len(raw)} bytes (max {MAX_HEADER_JSON}); shrink 'extra'")
    head = FILE_HEADER.pack(MAGIC, header.written_version, 0, 0, len(raw), 0)[:12]
    return head + struct.pack("<I", crc(head, raw)) + raw


def read_file_header(src) -> StreamHeader:
    """Read and check the file header from ``src`` (anything with ``read(n)`` and ``read_exact(n, what)``)."""
    head = src.read(FILE_HEADER.size)
    if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
        if len(head) < len(MAGIC) and MAGIC.startswith(head):
            raise TruncatedError(f"stream truncated in the file header: {len(head)} bytes")
        raise BadMagicError(f"not a VCB stream: bad magic {bytes(head[:4])!r} (expected {MAGIC!r})")
    if len(head) < FILE_HEADER.size:
        raise TruncatedError(f"stream truncated in the file header: {len(head)} bytes")
    _, version, flags, reserved, json_len, header_crc = FILE_HEADER.unpack(head)
    if version not in READABLE_VERSIONS:
        raise UnsupportedVersionError(f"VCB format version {version} is not supported (this reader reads "
                                      f"{', '.join(map(str, READABLE_VERSIONS))})")
    if flags or reserved:
        raise HeaderError(f"file header flags/reserved are nonzero ({flags}, {reserved})")
    if not 2 <= json_len <= MAX_HEADER_JSON:
        raise HeaderError(f"implausible header length {json_len} (allowed 2..{MAX_HEADER_JSON})")
    raw = src.read_exact(json_len, "the header JSON")
    if crc(head[:12], raw) != header_crc:
        raise ChecksumError("stream header fails CRC32", offset=0)
    header = StreamHeader.from_json(parse_json(raw, "stream header", HeaderError))
    widths = version >= RATE_VERSION
    if widths != (header.chunk_bits is not None):
        raise HeaderError(f"format version {version} stream {'without' if widths else 'with'} tokens.chunk_bits "
                          "(streams of version 3 and later, and only they, list their chunks' token widths)")
    return dataclasses.replace(header, format_version=version, chunk_colour=version >= COLOUR_VERSION)
