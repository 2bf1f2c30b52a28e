"""Where data comes from and goes to: the one place that tells a path, ``"-"`` and a file object apart.

:func:`resolve_input` / :func:`resolve_output` turn what a caller passed into an :class:`Endpoint` once; the API
and the readers and writers then ask it (its name for messages, what to open, how many bytes it holds).

Outputs that are paths are safe files: written to a temporary file next to the target and renamed when
complete. A failed or interrupted run leaves no partial output behind, an existing file is replaced only when
asked, and the input is never opened for writing (an output that names the input file is refused).

A symbolic link as output is followed: its target is what gets written (the link stays). A FIFO or a character
device (``/dev/null``, a terminal) is written straight into: it is not a file that could be replaced. Temporary
files are named ``.NAME.PID.XXXXXXXX.partEXT``: a run killed outright (``kill -9``, a power cut) cannot remove its
own, so each later run writing NAME removes those whose process is gone (same user, same directory, the PID no
longer running on this machine).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vcodec import stopping
from vcodec.errors import ArgumentError, InputError, OutputError, OutputExistsError
from vcodec.io.rawyuv import RawYuv

STDIO = "-"


def display_name(obj) -> str:
    """A short name for a path, ``"-"`` or a file object, for messages."""
    if obj is None:
        return "<none>"
    if isinstance(obj, (str, os.PathLike)):
        return "<stdin>" if os.fspath(obj) == STDIO else os.fspath(obj)
    return getattr(obj, "name", None) if isinstance(getattr(obj, "name", None), str) else "<file object>"


def is_path(obj) -> bool:
    """True for a filesystem path (``str``/``PathLike`` other than ``"-"``)."""
    return isinstance(obj, (str, os.PathLike)) and os.fspath(obj) != STDIO


def _stat_error(name: str, e: OSError, exc):
    if e.errno == errno.ELOOP:
        return exc(f"{name}: too many levels of symbolic links (a symlink loop?)")
    if e.errno == errno.ENOENT:
        return exc(f"{name}: no such file")
    if e.errno in (errno.EACCES, errno.EPERM):
        return exc(f"{name}: permission denied")
    return exc(f"{name}: {e.strerror or e}")


def is_stream_device(path) -> bool:
    """True when ``path`` (symlinks followed) is a FIFO or a character device: written into, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def output_target(dst) -> Path:
    """The file an output path names: a symbolic link is followed to its (final) target, which may not exist
    yet, except one to a FIFO or character device, written through the link. A symlink loop is
    :class:`OutputError`."""
    name = os.fspath(dst)
    if not os.path.islink(name) or is_stream_device(name):  # (/dev/stdout's target may be "pipe:[N]": no path)
        return Path(name)
    try:
        os.stat(name)
    except OSError as e:
        if e.errno != errno.ENOENT:  # a dangling link is fine: its target is created
            raise _stat_error(f"cannot write {name}", e, OutputError) from None
    return Path(os.path.realpath(name))


def check_output(dst, *, overwrite: bool, src=None) -> Path:
    """Validate an output path before any work: refuse an existing file without ``overwrite``, a directory,
    a missing parent directory, a block device or socket, and the input itself. Returns the path to write
    (a symlink's target). A FIFO or character device is accepted as is, ``overwrite`` or not."""
    name = os.fspath(dst)
    if name.endswith(os.sep) and not os.path.isdir(name):  # (Path() would drop the slash that names a directory)
        what = "is not a directory" if os.path.exists(name.rstrip(os.sep)) else "does not exist"
        raise OutputError(f"cannot write {name}: directory {name} {what} (and -o takes a file name)")
    path = output_target(dst)
    if path.is_dir():
        raise OutputError(f"cannot write {name}: it is a directory")
    if path.exists() and not path.is_file():
        if is_stream_device(path):
            return path
        raise OutputError(f"cannot write {name}: not a regular file, FIFO or character device")
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"cannot write {name}: directory {os.fspath(parent)} does not exist")
    if not parent.is_dir():
        raise OutputError(f"cannot write {name}: {os.fspath(parent)} is not a directory")
    if src is not None and is_path(src) and path.exists():
        with contextlib.suppress(OSError):
            if os.path.samefile(os.fspath(src), path):
                raise OutputError(f"cannot write {name}: it is the input file")
    if path.exists() and not overwrite:
        raise OutputExistsError(name)
    return path


def _temp_pattern(path: Path) -> re.Pattern:
    # mkstemp's random part is 8 characters of [a-z0-9_]
    return re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[a-z0-9_]{{8}}\.part{re.escape(path.suffix)}\Z")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a PID we wrote: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def remove_stale_temps(path: Path) -> list[str]:
    """Remove the temporary files that killed runs writing ``path`` left beside it: only this output name's,
    only regular files of this user, only those whose writer's PID is not running. Returns what was removed."""
    pat, removed = _temp_pattern(path), []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for n in names:
        m = pat.match(n)
        if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        p = os.path.join(path.parent, n)
        with contextlib.suppress(OSError):
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                os.unlink(p)
                removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_output(dst, *, overwrite: bool, src=None) -> Iterator[str]:
    """Yield a temporary path in ``dst``'s directory; on success it replaces ``dst``, on any error it is removed.

    The temporary name keeps ``dst``'s extension so that tools inferring a format from the name still work, and
    holds this process's PID so that a later run can tell a dead run's leftovers (:func:`remove_stale_temps`).
    A symlink's target is replaced (the link stays); a FIFO or character device is yielded as itself.
    """
    path = check_output(dst, overwrite=overwrite, src=src)
    if is_stream_device(path):
        yield os.fspath(path)
        return
    remove_stale_temps(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=f".part{path.suffix}",
                                   dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {os.fspath(dst)}: {e.strerror or e}") from e
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if path.exists() and not overwrite:  # appeared while we were working
            raise OutputExistsError(os.fspath(dst))
        stopping.check()  # a stop request is never followed by a finished output
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


FRAME_NUMBER = r"%0?\d*d"  # the printf-style frame number of an image sequence's name


def is_pattern(path) -> bool:
    """Whether ``path``'s file name holds one printf-style frame number (``%d``, ``%05d``), as image sequences
    (``frames_%05d.png``) need."""
    name = os.path.basename(os.fspath(path))
    return name.count("%") == 1 and re.search(FRAME_NUMBER, name) is not None


def pattern_stem(pattern) -> str:
    """An image sequence's name without its frame number and extension, for a file standing for the whole
    sequence: ``shots/img_%04d.png`` -> ``shots/img`` (``shots/frames`` for a bare ``%04d.png``)."""
    folder, name = os.path.split(os.path.splitext(os.fspath(pattern))[0])
    return os.path.join(folder, re.sub(r"[-_. ]*" + FRAME_NUMBER + r"[-_. ]*", "", name) or "frames")


def pattern_files(pattern, first: int = 1) -> Iterator[str]:
    """The files a frame pattern names, in order from number ``first``, while they exist."""
    i = first
    while os.path.lexists(os.fspath(pattern) % i):
        yield os.fspath(pattern) % i
        i += 1


def pattern_matches(pattern) -> list[str]:
    """Every file in the pattern's directory that the pattern names, whatever its number (gaps and numbers past a
    gap included), in number order: what writing the sequence may replace."""
    pattern = os.fspath(pattern)
    folder, name = os.path.split(pattern)
    head, _, tail = re.split(f"({FRAME_NUMBER})", name, maxsplit=1)
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder or "."):
            m = re.fullmatch(re.escape(head) + r"(\d+)" + re.escape(tail), entry)
            if m and name % int(m.group(1)) == entry:
                found.append((int(m.group(1)), os.path.join(folder, entry)))
    return [f for _, f in sorted(found)]


@contextlib.contextmanager
def pattern_output(pattern, *, overwrite: bool) -> Iterator[str]:
    """:func:`atomic_output` for an image sequence: yields a pattern in a temporary directory beside the target;
    on success its files replace the target's (every earlier file of that pattern removed, whatever its number),
    on any error the temporary directory goes. Existing files of the pattern (any number) are refused without
    ``overwrite``."""
    pattern = os.fspath(pattern)
    check_output(pattern, overwrite=overwrite)
    old = pattern_matches(pattern)
    if old and not overwrite:
        raise OutputExistsError(old[0], "the sequence")
    parent = os.path.dirname(pattern) or "."
    try:
        tmpdir = tempfile.mkdtemp(prefix=f".{os.path.basename(pattern).split('%')[0]}", suffix=".part", dir=parent)
    except OSError as e:
        raise OutputError(f"cannot write {pattern}: {e.strerror or e}") from e
    try:
        tmp = os.path.join(tmpdir, os.path.basename(pattern))
        yield tmp
        stopping.check()
        for f in pattern_matches(pattern):
            os.unlink(f)
        for i, f in enumerate(pattern_files(tmp), start=1):
            os.replace(f, pattern % i)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# endpoints


@dataclass(frozen=True)
class Endpoint:
    """An input or output as resolved once: ``kind`` is ``"path"``, ``"stdio"`` (``"-"``: standard input or
    output) or ``"file"`` (a binary file object, ``obj``); ``name`` is what messages call it."""

    kind: str
    name: str
    obj: object  # the path (str), the standard stream's binary buffer, or the file object
    output: bool = False
    raw: object = None  # a vcodec.io.rawyuv.RawYuv when the path is a raw .yuv with a given format

    @property
    def is_path(self) -> bool:
        return self.kind == "path"

    @property
    def path(self) -> str | None:
        return self.obj if self.kind == "path" else None

    def size(self) -> int | None:
        """Bytes in the file (paths only; None for streams)."""
        return os.path.getsize(self.obj) if self.kind == "path" else None

    # -- inputs --------------------------------------------------------------------------------

    def check_readable(self, what: str) -> None:
        """For a path: refuse a missing file, a directory and an unreadable file (:class:`InputError`)."""
        if self.kind != "path":
            return
        if is_pattern(self.obj) and not os.path.exists(self.obj):  # an image sequence, frames_%05d.png
            if next(pattern_files(self.obj), None) is None and next(pattern_files(self.obj, 0), None) is None:
                raise InputError(f"{self.name}: no such files ({os.fspath(self.obj) % 1} ...)")
            return
        try:
            os.stat(self.obj)
        except OSError as e:
            raise _stat_error(self.name, e, InputError) from None
        if os.path.isdir(self.obj):
            raise InputError(f"{self.name}: is a directory, not {what}")
        if not os.access(self.obj, os.R_OK):
            raise InputError(f"{self.name}: permission denied")

    def readable(self):
        """What a reader opens: the path, or a binary file object (standard input's buffer for ``"-"``)."""
        return self.obj

    # -- outputs -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, *, overwrite: bool, src=None, binary: bool = True, sequence: bool = False):
        """Yields what to write to: a temporary path (renamed onto the output on success; with ``sequence``, a
        frame pattern whose files replace the pattern's: :func:`pattern_output`), or for ``"-"`` and file objects
        the binary stream (wrapped to count its bytes when ``binary``). Without ``sequence`` a path is one file,
        whatever its name holds. OS errors inside become :class:`OutputError` naming the output."""
        try:
            if self.kind == "path" and sequence:
                with pattern_output(self.obj, overwrite=overwrite) as tmp:
                    yield tmp
            elif self.kind == "path" and binary and is_stream_device(self.obj):
                check_output(self.obj, overwrite=overwrite, src=src)
                with open(self.obj, "wb") as f:
                    yield CountingWriter(f)
            elif self.kind == "path":
                with atomic_output(self.obj, overwrite=overwrite, src=src) as tmp:
                    yield tmp
            else:
                yield CountingWriter(self.obj) if binary else self.obj
        except OSError as e:
            raise OutputError(f"cannot write {self.name}: {e.strerror or e}") from e

    def written(self, target) -> int:
        """Bytes written, after :meth:`writing` with ``binary`` (``target`` is what it yielded)."""
        if isinstance(target, CountingWriter):
            return target.count
        return os.path.getsize(self.obj)


def endpoint(obj, *, output: bool) -> Endpoint:
    """Tell a path, ``"-"`` (standard input or output) and a binary file object apart; checks nothing."""
    if isinstance(obj, Endpoint):
        return obj
    if not output and isinstance(obj, (bytes, bytearray, memoryview)):  # e.g. what vcodec.compress returned
        return Endpoint("file", "<bytes>", io.BytesIO(bytes(obj)))
    if is_path(obj):
        return Endpoint("path", os.fspath(obj), os.fspath(obj), output=output, raw=obj if isinstance(obj, RawYuv) else None)
    if isinstance(obj, (str, os.PathLike)):
        if output:
            return Endpoint("stdio", "<stdout>", sys.stdout.buffer, output=True)
        return Endpoint("stdio", "<stdin>", sys.stdin.buffer)
    if not hasattr(obj, "write" if output else "read"):
        kind = "a path, '-' or a writable binary file object" if output else \
            "a path, '-', bytes or a readable binary file object"
        raise ArgumentError(f"expected {kind}, got {type(obj).__name__}")
    return Endpoint("file", display_name(obj), obj, output=output)


def resolve_input(src) -> Endpoint:
    """A path, ``"-"`` (standard input), a readable binary file object, or ``bytes`` (read from memory)."""
    return endpoint(src, output=False)


def resolve_output(dst, *, overwrite: bool = False, src=None) -> Endpoint:
    """A path (checked now, before any work: see :func:`check_output`), ``"-"`` (standard output) or a
    writable binary file object."""
    out = endpoint(dst, output=True)
    if out.is_path:
        check_output(out.path, overwrite=overwrite, src=src)
    return out


@contextlib.contextmanager
def reading(src: Endpoint, what: str):
    """Open ``src`` for a reader (yields the path or file object to hand it); OS errors become
    :class:`InputError` naming the input."""
    src.check_readable(what)
    try:
        yield src.readable()
    except OSError as e:
        raise InputError(f"cannot read {src.name}: {e.strerror or e}") from e


class CountingWriter:
    """A write-only wrapper that counts the bytes written (for sizes of non-file outputs)."""

    def __init__(self, f):
        self._f, self.count = f, 0

    def write(self, data) -> int:
        n = self._f.write(data)
        n = len(data) if n is None else n
        self.count += n
        return n

    def flush(self) -> None:
        self._f.flush()
