"""Exceptions and warnings that vcodec raises.

Every error the public API raises is a :class:`VcodecError` (or a ``bitstream.BitstreamError`` for a damaged
``.vcb``). ``str(error)`` is one line meant for a user: it names the file and says what is wrong, so the CLI can
print it as is. Library errors (PyAV/FFmpeg, ``OSError``) are wrapped at the API boundary, with the original
kept as ``__cause__``.
"""

from __future__ import annotations


class VcodecError(Exception):
    """Base class of vcodec's errors; the message is one line fit for a user."""


class InputError(VcodecError):
    """The input cannot be used: missing, not a video, no video frames, or an unsupported kind of video."""


class OutputError(VcodecError):
    """The output cannot be written: unwritable destination, unknown container, or it would overwrite the input."""


class OutputExistsError(OutputError):
    """The output exists and overwriting was not asked for."""


class ModelError(VcodecError):
    """A model cannot be loaded or used as asked (unreadable checkpoint, quality not offered, no CUDA...)."""


class ModelNotFoundError(ModelError):
    """The model (weights) named, or the one a ``.vcb`` was made with, is not available here."""


class VcodecWarning(UserWarning):
    """Something was handled in a documented but lossy or unusual way (alpha dropped, 10-bit downconverted, ...)."""


class ModelError(VcodecError):
    """A model file cannot be loaded, or it does not offer what was asked (e.g. a quality it lacks)."""
