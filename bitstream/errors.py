"""Errors raised while reading or validating a VCB stream.

Every problem found in the *data* (a file, a pipe, a byte string) raises a subclass of
:class:`BitstreamError` with a one-line message. Mistakes in the *calling code* (a token
array of the wrong dtype handed to a writer, say) raise the usual ``ValueError`` /
``TypeError`` instead, so that a corrupt file and a bug are never confused.
"""

from __future__ import annotations


class BitstreamError(Exception):
    """Base class: the data is not a valid VCB stream (or not one this reader can decode)."""

    def __init__(self, message: str):
        # One line, always: callers print these straight to a terminal or a log.
        super().__init__(" ".join(str(message).split()))


class BadMagicError(BitstreamError):
    """The stream does not start with the VCB magic bytes."""


class UnsupportedVersionError(BitstreamError):
    """The format version (or the entropy coder's version) is newer than this reader."""


class UnknownCoderError(BitstreamError):
    """The header names an entropy coder this reader does not implement."""


class HeaderError(BitstreamError, ValueError):
    """The stream header is malformed or claims implausible values.

    Also a ``ValueError``: a writer raises it for a :class:`StreamHeader` it refuses to write.
    """


class ChecksumError(BitstreamError):
    """A CRC32 does not match. ``chunk`` is the chunk index when it is known."""

    def __init__(self, message: str, chunk: int | None = None, offset: int | None = None):
        super().__init__(message)
        self.chunk = chunk
        self.offset = offset


class TruncatedError(BitstreamError):
    """The stream ends before a record (or the end-of-stream record) is complete."""


class CorruptDataError(BitstreamError):
    """A record is structurally invalid (bad length, inconsistent fields, undecodable tokens)."""


class TablesMismatchError(BitstreamError):
    """The coder tables at hand are not the ones the stream was written with."""


class ModelMismatchError(BitstreamError):
    """The stream was made by a different model (name or weights hash) than the one at hand."""


__all__ = [
    "BitstreamError",
    "BadMagicError",
    "UnsupportedVersionError",
    "UnknownCoderError",
    "HeaderError",
    "ChecksumError",
    "TruncatedError",
    "CorruptDataError",
    "TablesMismatchError",
    "ModelMismatchError",
]
