"""Argument types shared by subcommands (argparse turns their errors into one usage line)."""

from __future__ import annotations

import argparse


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


def add_player_args(p: argparse.ArgumentParser) -> None:
    """The model, bank, engine, noise and decoding flags that ``play``, ``render-midi`` and
    ``render-bank`` share (one definition, one set of defaults)."""
    p.add_argument("--model", metavar="EXPORT", help="export directory (default: the shipped default)")
    p.add_argument("--bank", metavar="DIR", help="preset bank (default: the shipped default)")
    p.add_argument("--engine", default="auto", choices=["auto", "ort", "fused"],
                   help="auto: ort on a GPU, else the fused CPU engine for small models (default auto)")
    p.add_argument("--threads", type=int, help="engine threads (default: the engine's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    add_decoding_args(p)
