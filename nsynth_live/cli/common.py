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
    """``"25,50,75"`` -> [25, 50, 75]."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
