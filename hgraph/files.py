"""Atomic file writing: a file is either absent, its old self, or complete.

Every writer in the package (run folders, taxonomy and feature files,
exported embeddings) goes through :func:`atomic_open`: the content goes to a
temporary file in the same folder, is flushed to disk and then renamed over
the target (``os.replace``, atomic on POSIX), so a crash or a signal never
leaves a half-written file behind.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional, Union

PathLike = Union[str, Path]


@contextmanager
def atomic_open(path: PathLike, mode: str = "w", newline: Optional[str] = None) -> Iterator[IO]:
    """``with atomic_open(path) as f: f.write(...)``: ``path`` appears only when
    the block finishes without an exception.

    ``mode``: ``"w"`` (UTF-8 text, ``newline`` as :func:`open` takes it) or
    ``"wb"``.  The parent folder is created; the file gets the permissions a
    plain ``open`` would give (``mkstemp`` alone makes it 0600).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kw = {} if mode == "wb" else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, mode, **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
