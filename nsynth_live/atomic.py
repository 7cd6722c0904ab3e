"""The project's one way to write a file: atomically, durably, with an ordinary file's mode.

Every file is written to a temp file in the target's folder (same file system, so the rename is
atomic), flushed and fsynced, renamed over the target, and the folder is fsynced so the rename
survives a power cut. Readers see the old file or the new one, never a part; a process killed
between write and rename leaves the old file (and a ``.{name}.*.tmp`` that a rerun may remove);
an exception removes the temp file.

The temp file is created with ``os.open(..., 0o666)``, so the kernel applies the umask exactly
as for a plain ``open(path, "w")`` (0644 under umask 022), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def temp_name(path: Path) -> Path:
    """A fresh temp path beside ``path``: ``.{name}.{random}.tmp`` (the pattern reruns clean up)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create and open an empty temp file beside ``path`` (mode 0o666 & ~umask)."""
    while True:
        tmp = temp_name(path)
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:  # 32 random bits collided: draw again
            continue


def fsync_dir(path: Path) -> None:
    """Make renames inside the folder ``path`` durable (no-op where folders can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows: folders cannot be opened; the rename is already durable there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    atomic_write_many([(Path(path), data)])


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_many([(Path(path), text.encode("utf-8"))])


def atomic_write_many(items: Sequence[tuple[Path, bytes]]) -> None:
    """Write several files atomically: each to a temp file in its folder, fsync, rename.

    All temp files are written before any is fsynced: on ext4 the first fsync commits the others'
    data too, several times cheaper than write-fsync-rename one file at a time, with the same
    guarantee (a file appears under its name only once its data is on disk). Each folder is
    fsynced once after its renames. On failure the temp files are removed; files already renamed
    are complete.

    Args:
        items: (target path, bytes) pairs; the targets' folders must exist.
    """
    pending: list[tuple[int | None, Path, Path]] = []
    try:
        for path, data in items:
            path = Path(path)
            fd, tmp = _create_temp(path)
            pending.append((fd, tmp, path))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        for i, (fd, tmp, path) in enumerate(pending):
            assert fd is not None
            os.fsync(fd)
            os.close(fd)
            pending[i] = (None, tmp, path)
            os.replace(tmp, path)
    except BaseException:
        for fd, tmp, _ in pending:
            if fd is not None:
                os.close(fd)
            tmp.unlink(missing_ok=True)  # gone already if it was renamed into place
        raise
    for folder in dict.fromkeys(p.parent for _, _, p in pending):
        fsync_dir(folder)


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to stream into; on a clean exit it replaces ``path`` atomically.

    For writers that want a file object (``torch.save``, ``savefig``); an exception inside the
    block removes the temp file and leaves ``path`` as it was.

    Example::

        with atomic_open(run / "checkpoint.pt") as f:
            torch.save(state, f)
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
