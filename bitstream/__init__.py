"""vcodec's bitstream: the VCB container and the entropy coder for LFQ token grids.

Depends on numpy, constriction and the standard library only -- never on torch or ``vcodec``
(``vcodec`` depends on us). The byte layout is specified in ``FORMAT.md`` next to this file.

Note: an unrelated package called ``bitstream`` exists on PyPI; ``__vcodec_format__`` tells ours
apart (tests check it).
"""

from .coder import (
    CODER_ID,
    CODER_VERSION,
    NUM_CONTEXTS,
    check_tables,
    decode_tokens,
    encode_tokens,
    fit_tables,
    tables_hash,
)
from .container import (
    FORMAT_VERSION,
    MAGIC,
    Chunk,
    Damage,
    IndexEntry,
    Packet,
    StreamHeader,
    TrackInfo,
    VcbReader,
    VcbWriter,
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

__vcodec_format__ = FORMAT_VERSION  # marker: this is vcodec's bitstream, VCB format version
__version__ = "0.1.0"

__all__ = [
    "CODER_ID", "CODER_VERSION", "NUM_CONTEXTS", "FORMAT_VERSION", "MAGIC",
    "encode_tokens", "decode_tokens", "fit_tables", "check_tables", "tables_hash",
    "StreamHeader", "TrackInfo", "Packet", "Chunk", "IndexEntry", "Damage", "VcbWriter", "VcbReader",
    "BitstreamError", "BadMagicError", "UnsupportedVersionError", "UnknownCoderError", "HeaderError",
    "ChecksumError", "TruncatedError", "CorruptDataError", "TablesMismatchError", "ModelMismatchError",
]
