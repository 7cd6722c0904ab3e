"""Crash-safe checkpoint files.

A checkpoint is written by :func:`nsynth_live.atomic.atomic_open`: a temporary file in the same
folder, flushed and fsynced, renamed over the old one, and the folder fsynced. A process killed at any point leaves either the previous
checkpoint or the new one, never a torn file. Loading uses ``weights_only=True``: a checkpoint
holds tensors, numbers, strings, lists and dicts only, so a hostile file cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nsynth_live.atomic import atomic_open
from nsynth_live.errors import UserError

FORMAT = "nsynth-live-checkpoint"
VERSION = 1


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` so that readers only ever see a complete file (mode as ``open``'s)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        torch.save(obj, f)


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
