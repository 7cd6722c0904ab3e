"""Argument types shared by subcommands (argparse turns their errors into one usage line)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def parse_range(text: str) -> tuple[int, int]:
    """``"21-108"`` -> (21, 108), inclusive; a single ``"60"`` -> (60, 60)."""
    try:
        lo, _, hi = text.partition("-")
        lo_i = int(lo)
        hi_i = int(hi) if hi else lo_i
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 21-108") from None
    if lo_i > hi_i:
        raise argparse.ArgumentTypeError(f"{text!r}: the range is empty (low > high)")
    return lo_i, hi_i


def parse_int_list(text: str) -> list[int]:
    """argparse type: ``"25,50,75"`` or ``"1-4,8"`` -> sorted distinct ints
    (:func:`nsynth_live.int_list.parse_int_list`; argparse names the flag)."""
    from nsynth_live.errors import UserError
    from nsynth_live.int_list import parse_int_list as parse

    try:
        return parse(text, "list")
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_decoding_args(p: argparse.ArgumentParser) -> None:
    """``--temperature`` and ``--excitation-gain``: default None, i.e. the export's recommended ones."""
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature > 0 (default: the model's recommended one, model.json 'decoding')")
    p.add_argument("--excitation-gain", type=float, default=None,
                   help="gain on the sinusoidal excitation of models with one, >= 0; above 1 the pitch is "
                   "steadier and the timbre plainer (default: the model's recommended one)")


def check_decoding(args: argparse.Namespace) -> None:
    """One clear error for a bad ``--temperature`` or ``--excitation-gain`` before anything opens.

    Raises:
        UserError: naming the flag and the value.
    """
    from nsynth_live.errors import UserError
    from nsynth_live.sampling import check_excitation_gain, check_temperature

    for flag, value, check in (("--temperature", args.temperature, check_temperature),
                               ("--excitation-gain", args.excitation_gain, check_excitation_gain)):
        if value is not None:
            try:
                check(value)
            except ValueError as err:
                raise UserError(f"{flag} {value}: {err}") from None


LEVEL_OFF = "off"


def parse_level(text: str) -> float | str:
    """``--level``: a peak in dBFS (``-3``, ``-3dBFS``) or ``off``."""
    from nsynth_live.level import parse_dbfs

    if text.strip().lower() == LEVEL_OFF:
        return LEVEL_OFF
    try:
        return parse_dbfs(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (or off)") from None


def resolve_output_gain(args: argparse.Namespace, info: Any, sounds: Sequence[tuple[str, str]] | None = None) -> Any:
    """The :class:`nsynth_live.level.OutputGain` of ``--level`` for an export and what it will play.

    Args:
        info: the :class:`~nsynth_live.host.model_files.ExportInfo`.
        sounds: (preset name, trajectory hash) of everything the render may play; None: anything.

    Raises:
        UserError: ``--level DBFS`` for an export without a level calibration.
    """
    from nsynth_live.errors import UserError
    from nsynth_live.level import output_gain

    off = args.level == LEVEL_OFF
    try:
        return output_gain(info.level, None if off else args.level, off=off, sounds=sounds,
                           where=f"--level: export {info.root}")
    except ValueError as err:
        raise UserError(str(err)) from None


def add_player_args(p: argparse.ArgumentParser) -> None:
    """The model, bank, engine, noise and decoding flags that ``play``, ``render-midi`` and
    ``render-bank`` share (one definition, one set of defaults)."""
    p.add_argument("--model", metavar="EXPORT", help="export directory (default: the shipped default)")
    p.add_argument("--bank", metavar="DIR", help="preset bank (default: the shipped default)")
    p.add_argument("--engine", default="auto", choices=["auto", "ort", "fused"],
                   help="auto: ort on a GPU, else the fused CPU engine for small models (default auto)")
    p.add_argument("--threads", type=int, help="engine threads (default: the engine's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--level", type=parse_level, default=None, metavar="DBFS|off",
                   help="one output gain bringing the loudest of the presets played to this peak in dBFS, e.g. -3 "
                   "or --level=-3dBFS "
                   "(default: the model's recommended level, model.json 'level'; exports without one play at "
                   "gain 1); off: the model's own level")
    add_decoding_args(p)
