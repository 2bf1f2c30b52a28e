"""vcodec: a neural video codec (MAGVIT-v2-style tokenizer + range-coded LFQ tokens).

Python API (frames are ``numpy.uint8`` arrays ``(T, H, W, 3)``, RGB)::

    vcodec.encode_video(src, dst, quality=None, model="default")    # file/stream -> .vcb
    vcodec.decode_video(src, dst)                                    # .vcb -> .y4m / .mkv / .mp4 / "-"
    data = vcodec.compress(frames, frame_rate=25)                    # frames -> bytes
    frames = vcodec.decompress(data)                                 # bytes -> frames

Every error raised on purpose is a :class:`vcodec.VcodecError`; damaged ``.vcb`` data raises a
:class:`vcodec.StreamError`, which is also the ``bitstream.BitstreamError`` subclass that was found.
The API is imported lazily, so ``import vcodec`` stays cheap (no torch until a model is needed).
"""

from __future__ import annotations

from vcodec.errors import (
    InputError,
    ModelError,
    ModelNotFoundError,
    OutputError,
    OutputExistsError,
    ResourceError,
    StreamError,
    VcodecError,
    VcodecWarning,
)

__version__ = "0.1.0"

_API = (
    "encode_video",
    "decode_video",
    "compress",
    "decompress",
    "info",
    "list_models",
    "EncodeResult",
    "DecodeResult",
)

__all__ = [
    *_API,
    "InputError",
    "ModelError",
    "ModelNotFoundError",
    "OutputError",
    "OutputExistsError",
    "ResourceError",
    "StreamError",
    "VcodecError",
    "VcodecWarning",
    "__version__",
]


def __getattr__(name: str):
    if name in _API:
        from vcodec import api

        return getattr(api, name)
    raise AttributeError(f"module 'vcodec' has no attribute {name!r}")
