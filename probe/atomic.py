"""Replace a file atomically and durably: old content or new, never half of it.

The new bytes go to a temporary file beside the target, are fsynced and renamed over it,
and the directory is fsynced so the rename itself survives a crash. Used for LEARNING.md
appends and for discovery's remembered listing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class Changed(Exception):
    """The target changed since the caller read it (someone edited it meanwhile)."""


def write_atomic(target: Path, content: bytes, mode: int | None = None,
                 unchanged_since: os.stat_result | None = None) -> None:
    """Write ``content`` to ``target``. With ``unchanged_since``, refuse (``Changed``) when
    the target's size or mtime differ from that stat, checked just before the rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if unchanged_since is not None:
            now = target.stat()
            if (now.st_size, now.st_mtime_ns) != (unchanged_since.st_size,
                                                   unchanged_since.st_mtime_ns):
                raise Changed(str(target))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
