"""Atomic file writes: a file appears under its final name complete or not at all."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_open(path):
    """A binary file to write ``path`` through, atomically: the writer streams into a temp file in the same
    folder, which is flushed, fsynced and renamed to ``path`` when the block ends without an error, and
    removed when it raises. Large outputs (checkpoints, results) never need a whole copy in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    with atomic_open(path) as fh:
        fh.write(data)
