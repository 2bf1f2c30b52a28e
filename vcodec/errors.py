"""Exceptions and warnings that vcodec raises: one tree, rooted at :class:`VcodecError`.

Every error the public API raises on purpose is a :class:`VcodecError`, so ``except vcodec.VcodecError``
catches them all. ``str(error)`` is one line meant for a user: it names the file and says what is wrong, so the
CLI can print it as is. Library errors (PyAV/FFmpeg, ``OSError``) are wrapped at the API boundary, with the
original kept as ``__cause__``.

A damaged or foreign ``.vcb`` raises :class:`StreamError`: the ``bitstream`` package (which must not import
vcodec) raises its own ``bitstream.BitstreamError`` subclasses, and the API re-raises each as a class that is
*both* a :class:`StreamError` and that bitstream class, with the same message and attributes. So
``except bitstream.ChecksumError`` and ``except vcodec.VcodecError`` both catch a bad CRC.

::

    VcodecError
    ├── InputError
    ├── OutputError
    │   └── OutputExistsError
    ├── ModelError
    │   ├── ModelNotFoundError
    │   └── QualityError  (also an ArgumentError)
    ├── ArgumentError  (also ValueError; the CLI exits with status 2 for these, as for usage errors)
    ├── ResourceError
    └── StreamError  (also bitstream.BitstreamError; one subclass per bitstream error class)
"""

from __future__ import annotations

import contextlib
import functools


class VcodecError(Exception):
    """Base class of vcodec's errors; the message is one line fit for a user."""


class InputError(VcodecError):
    """The input cannot be used: missing, not a video, no video frames, or an unsupported kind of video."""


class OutputError(VcodecError):
    """The output cannot be written: unwritable destination, unknown container, or it would overwrite the input."""


class OutputExistsError(OutputError):
    """The output exists and overwriting was not asked for. ``str()`` gives the library's remedy
    (``overwrite=True``); :meth:`cli_message` the command line's (``-y``)."""

    def __init__(self, path: str, what: str = "it"):
        self.path, self.what = path, what
        super().__init__(f"{path} already exists (pass overwrite=True to replace {what})")

    def cli_message(self) -> str:
        return f"{self.path} already exists (use -y to replace {self.what})"

    def __reduce__(self):  # pickles (across processes) with its own arguments, not the message
        return type(self), (self.path, self.what)


class ModelError(VcodecError):
    """A model cannot be loaded or used as asked (unreadable checkpoint, quality not offered, no CUDA...)."""


class ModelNotFoundError(ModelError):
    """The model (weights) named, or the one a ``.vcb`` was made with, is not available here."""


class ArgumentError(VcodecError, ValueError):
    """An argument's value is not one the call accepts (the command line treats it as a usage error)."""


class QualityError(ModelError, ArgumentError):
    """The quality asked for is not one of the model's rate points."""


class ResourceError(VcodecError):
    """The work would need more memory than this machine has available (refused before allocating it)."""


class VcodecWarning(UserWarning):
    """Something was handled in a documented but lossy or unusual way (alpha dropped, 10-bit downconverted, ...)."""


class StreamError(VcodecError):
    """The ``.vcb`` data is damaged or foreign. Raised as :func:`stream_error` builds it: also an instance of the
    ``bitstream`` error class that was found (``ChecksumError``, ``TruncatedError``, ...)."""


_STREAM_CLASSES: dict[type, type] = {}


def _stream_class(base: type) -> type:
    """``StreamError`` + ``base`` (a ``bitstream.BitstreamError`` subclass), made once and kept as a module
    attribute named after ``base`` so that pickling (process pools) finds it again."""
    cls = _STREAM_CLASSES.get(base)
    if cls is None:
        name = f"Stream{base.__name__}"
        cls = type(name, (StreamError, base), {"__module__": __name__, "__doc__": base.__doc__})
        _STREAM_CLASSES[base] = cls
        globals()[name] = cls
    return cls


def stream_error(e: BaseException) -> StreamError:
    """The same error (message, attributes, traceback) as a :class:`StreamError` that is still an instance of
    its bitstream class. ``e`` must be a ``bitstream.BitstreamError``; a StreamError is returned as is."""
    if isinstance(e, StreamError):
        return e
    out = _stream_class(type(e)).__new__(_stream_class(type(e)))
    out.args = e.args
    out.__dict__.update(e.__dict__)
    return out.with_traceback(e.__traceback__)


@contextlib.contextmanager
def stream_errors():
    """Re-raise any ``bitstream.BitstreamError`` from the block as its :class:`StreamError` form."""
    from bitstream import BitstreamError

    try:
        yield
    except BitstreamError as e:
        raise stream_error(e) from e.__cause__


@contextlib.contextmanager
def out_of_memory_errors():
    """An allocation that fails anyway (the estimates before big allocations are estimates) is a
    :class:`ResourceError`, not an internal error."""
    try:
        yield
    except MemoryError as e:
        raise ResourceError("out of memory") from e
    except RuntimeError as e:
        if "can't allocate memory" not in str(e) and "out of memory" not in str(e):
            raise
        raise ResourceError(f"out of memory ({' '.join(str(e).split())[:120]})") from e


def raises_stream_errors(fn):
    """Decorator form of :func:`stream_errors`, for the public API functions."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with stream_errors(), out_of_memory_errors():
            return fn(*args, **kwargs)

    return wrapper


def __getattr__(name: str):
    # unpickling a Stream<BitstreamErrorClass> in a fresh process: build the class on first use
    if name.startswith("Stream") and name != "StreamError":
        import bitstream.errors

        base = getattr(bitstream.errors, name[len("Stream"):], None)
        if isinstance(base, type) and issubclass(base, bitstream.errors.BitstreamError):
            return _stream_class(base)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
