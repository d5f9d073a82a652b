"""Opening what the run's code may have written, without following what it planted.

An experiment or `plot.py` can leave a symlink where the orchestrator expects a file (its
`stderr.txt` pointing at a credential file the sandbox hid from it, but the orchestrator can
read), a hard link, or a FIFO that blocks whoever opens it. Reads of such files go through
`open_file`: the last component is opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO does
not block), it must be a regular file with one link, and with `root` every folder on the way
must resolve inside `root`. Anything else is `UnsafeFile`, which callers treat as unreadable
and say so.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(OSError):
    """A path that is not a plain file of the run: a link, a FIFO, a device, a hard link."""


def open_file(path: Path, root: Path | None = None) -> BinaryIO:
    """`path` opened for reading in binary mode, or UnsafeFile (FileNotFoundError if absent)."""
    if root is not None:
        inside, parent = os.path.realpath(root), os.path.realpath(path.parent)
        if parent != inside and not parent.startswith(inside + os.sep):
            raise UnsafeFile(f"{path}: its folder leads outside {root}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnsafeFile(f"{path}: not opened ({exc.strerror}; a symbolic link?)") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise UnsafeFile(f"{path}: {kind}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, root: Path | None = None) -> bytes:
    with open_file(path, root) as f:
        return f.read()


def read_text(path: Path, root: Path | None = None) -> str:
    """The file as UTF-8 (undecodable bytes replaced)."""
    return read_bytes(path, root).decode("utf-8", errors="replace")


def sha256(path: Path, root: Path | None = None) -> str:
    """The file's sha256 (hex), or "" when it is absent or not a plain file of the run."""
    digest = hashlib.sha256()
    try:
        with open_file(path, root) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()
