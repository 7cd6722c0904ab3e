"""Where the shipped default model and preset bank live (``presets/`` in the repository)."""

from __future__ import annotations

from pathlib import Path

from nsynth_live.errors import UserError

PRESETS = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_MODEL = PRESETS / "default" / "model"
DEFAULT_BANK = PRESETS / "default" / "bank"


def model_or_default(path: str | None) -> Path:
    if path:
        return Path(path)
    if not (DEFAULT_MODEL / "model.json").is_file():
        raise UserError(f"no --model given and no shipped default model at {DEFAULT_MODEL}")
    return DEFAULT_MODEL


def bank_or_default(path: str | None) -> Path:
    if path:
        return Path(path)
    if not (DEFAULT_BANK / "bank.json").is_file():
        raise UserError(f"no --bank given and no shipped default bank at {DEFAULT_BANK}")
    return DEFAULT_BANK
