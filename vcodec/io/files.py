"""Safe output files: write to a temporary file next to the target, rename when complete.

A failed or interrupted run leaves no partial output behind, an existing file is replaced only when asked, and
the input is never opened for writing (an output that names the input file is refused).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vcodec.errors import OutputError, OutputExistsError

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


def check_output(dst, *, overwrite: bool, src=None) -> Path:
    """Validate an output path before any work: refuse an existing file without ``overwrite``, a directory,
    a missing parent directory, and the input itself. Returns the path."""
    path = Path(os.fspath(dst))
    name = os.fspath(dst)
    if path.is_dir():
        raise OutputError(f"cannot write {name}: it is a directory")
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
        raise OutputExistsError(f"{name} already exists (use -y / overwrite=True to replace it)")
    return path


@contextlib.contextmanager
def atomic_output(dst, *, overwrite: bool, src=None) -> Iterator[str]:
    """Yield a temporary path in ``dst``'s directory; on success it replaces ``dst``, on any error it is removed.

    The temporary name keeps ``dst``'s extension so that tools inferring a format from the name still work.
    """
    path = check_output(dst, overwrite=overwrite, src=src)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
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
            raise OutputExistsError(f"{os.fspath(dst)} already exists (use -y / overwrite=True to replace it)")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
