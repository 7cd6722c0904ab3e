"""Where the shipped default model and preset bank live.

They are package data of ``nsynth_live.presets`` (``presets/`` in the repository), found through
:mod:`importlib.resources`, so every command that defaults to them works from a wheel install as
from a clone.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nsynth_live.errors import UserError

PRESETS = Path(str(resources.files("nsynth_live.presets")))
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
