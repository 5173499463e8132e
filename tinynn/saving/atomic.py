"""Atomic file replacement: a reader sees the old file or the complete new one, never a part.

The new content goes to a temporary file in the target's directory (so the final rename never
crosses file systems), is flushed and fsynced, then ``os.replace`` puts it under the final name
and the directory is fsynced so the rename survives a power cut. Any exception, including
``KeyboardInterrupt``, before the rename removes the temporary file and leaves the old one as it
was, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file object whose content replaces ``path`` when the block succeeds.

    The temporary file is ``.<name>.<random>.tmp`` next to ``path``, created with the usual
    permissions (umask applied), exclusively: an existing file is never truncated.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with open(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # already renamed if the error came late
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
