"""vcodec's bitstream: the VCB container and the entropy coder for LFQ token grids.

Depends on numpy, constriction and the standard library only -- never on torch or ``vcodec``
(``vcodec`` depends on us); ``threadpoolctl``, when installed, only keeps BLAS to one thread while the coder runs.
The byte layout is specified in ``FORMAT.md`` next to this file.

Layers, bottom up: ``header`` (constants, limits, :class:`StreamHeader`, the file header's bytes),
``records`` (record bytes, the one record-header check, :class:`CodedChunk`), ``writer`` / ``reader`` (the
container: bytes only), and above them ``coder`` (with ``coder_mix``, version 2's model, and ``counts``) +
``chunks`` (token grids <-> a chunk's coded bytes, with the model's coder tables). Reading a stream needs no tables until tokens are decoded.

Note: an unrelated package called ``bitstream`` exists on PyPI; ``__vcodec_format__`` tells ours
apart (tests check it).
"""

from .chunks import Chunk, CoderTables, decode_chunk, encode_chunk
from .coder import (
    CODER_ID,
    CODER_VERSION,
    CODER_VERSIONS,
    NUM_CONTEXTS,
    CoderContext,
    MixTables,
    check_tables,
    cut_tables,
    decode_tokens,
    encode_tokens,
    fit_tables,
    narrow_tables,
    pad_tables,
    tables_hash,
    tables_version,
)
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
from .header import COLOUR_TERMS, COLOUR_VERSION, FORMAT_VERSION, MAGIC, REPEAT_VERSION, StreamHeader, TrackInfo
from .reader import VcbReader
from .records import CodedChunk, Damage, IndexEntry, Packet, colour_size, packet_record_size, track_record_size
from .writer import VcbWriter

__vcodec_format__ = FORMAT_VERSION  # marker: this is vcodec's bitstream, VCB format version
__version__ = "0.1.0"

__all__ = [
    "CODER_ID", "CODER_VERSION", "CODER_VERSIONS", "NUM_CONTEXTS", "CoderContext", "MixTables", "tables_version", "pad_tables", "cut_tables", "narrow_tables", "FORMAT_VERSION", "COLOUR_VERSION", "REPEAT_VERSION", "COLOUR_TERMS", "colour_size", "MAGIC",
    "encode_tokens", "decode_tokens", "fit_tables", "check_tables", "tables_hash",
    "encode_chunk", "decode_chunk", "CoderTables",
    "StreamHeader", "TrackInfo", "Packet", "packet_record_size", "track_record_size", "Chunk", "CodedChunk", "IndexEntry", "Damage", "VcbWriter", "VcbReader",
    "BitstreamError", "BadMagicError", "UnsupportedVersionError", "UnknownCoderError", "HeaderError",
    "ChecksumError", "TruncatedError", "CorruptDataError", "TablesMismatchError", "ModelMismatchError",
]
