"""Crash-safe checkpoint files.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, then
renamed over the old one (rename is atomic on POSIX and Windows), and the folder is fsynced so
the rename survives a power cut. A process killed at any point leaves either the previous
checkpoint or the new one, never a torn file. Loading uses ``weights_only=True``: a checkpoint
holds tensors, numbers, strings, lists and dicts only, so a hostile file cannot run code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nsynth_live.errors import UserError

FORMAT = "nsynth-live-checkpoint"
VERSION = 1


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` so that readers only ever see a complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it private; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint written by the trainer.

    Args:
        path: a checkpoint file, or a run folder holding ``checkpoint.pt``.

    Returns:
        the checkpoint dict (``config``, ``model``, ``ema``, ``optimizer``, ``step``, ...).

    Raises:
        UserError: missing, unreadable, or not an nsynth-live checkpoint of this version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint there")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise UserError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an nsynth-live checkpoint")
    if ckpt.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')!r}, expected {VERSION}")
    return ckpt
