"""``nsynth-live dataset``: build an NSynth-layout dataset from a soundfont, and inspect one.

Flag values are parsed in the handlers (not by argparse ``type=``) so a bad value is one
:class:`~nsynth_live.errors.UserError` line naming the flag and the value.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``dataset build`` and ``dataset info`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "dataset",
        help="build an NSynth-layout dataset from a soundfont, or summarise one",
        description="Build an NSynth-layout dataset (examples.json + audio/*.wav per split) "
        "from an SF2 soundfont, or summarise an existing dataset.",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build",
        help="render a soundfont into nsynth-train/, nsynth-valid/, nsynth-test/",
        description="Render every (program, pitch, velocity) of an SF2 soundfont the way NSynth "
        "was made: 4 s at 16 kHz mono, key held 3 s then released, dry. Instruments are split "
        "into train/valid/test (no instrument in two splits). Silent notes are skipped and "
        "reported. Rerunning an interrupted build resumes it.",
    )
    build.add_argument("--soundfont", required=True, metavar="SF2", help="the SF2 soundfont file")
    build.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created if missing)"
    )
    build.add_argument(
        "--programs",
        default="all",
        metavar="LIST",
        help="General MIDI programs 0..127 to render, e.g. '0,24,40' or '0-7,40', or 'all' "
        "(default: all; programs the soundfont lacks are then skipped)",
    )
    build.add_argument(
        "--pitches",
        default="21-108",
        metavar="RANGE",
        help="MIDI pitches 0..127, e.g. '21-108' or '48,60,72' (default: 21-108, the piano)",
    )
    build.add_argument(
        "--velocities",
        default="25,50,75,100,127",
        metavar="LIST",
        help="MIDI velocities 1..127 (default: NSynth's 25,50,75,100,127)",
    )
    build.add_argument(
        "--seed", default="0", metavar="N", help="seed of the instrument split (default: 0)"
    )
    build.add_argument(
        "--splits",
        default="0.8,0.1,0.1",
        metavar="TR,VA,TE",
        help="train,valid,test fractions of the instruments, summing to 1 (default: 0.8,0.1,0.1)",
    )
    build.add_argument(
        "--workers",
        default=None,
        metavar="N",
        help="rendering processes (default: the number of CPUs)",
    )
    build.add_argument(
        "--gain",
        default=None,
        metavar="G",
        help="FluidSynth master gain (default: 0.8); lower it if the report lists clipped notes",
    )
    build.add_argument(
        "--no-progress", action="store_true", help="do not show the progress bar"
    )
    build.set_defaults(func=_build)

    info = sub.add_parser(
        "info",
        help="count notes per split, family, pitch and velocity",
        description="Summarise an NSynth-layout dataset (a root holding nsynth-*/ folders, or "
        "one split folder): notes and instruments per split, family, source, pitch and velocity.",
    )
    info.add_argument("dir", metavar="DIR", help="dataset root or split folder")
    info.set_defaults(func=_info)


def _int_flag(value: str | None, flag: str, lo: int | None = None) -> int | None:
    from nsynth_live.errors import UserError

    if value is None:
        return None
    try:
        out = int(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: not an integer") from None
    if lo is not None and out < lo:
        raise UserError(f"{flag} {value!r}: must be at least {lo}")
    return out


def _build(args: argparse.Namespace) -> int:
    from nsynth_live.errors import UserError
    from nsynth_live.soundfont import (
        DEFAULT_GAIN,
        build_dataset,
        parse_programs,
        parse_splits,
    )

    from nsynth_live.int_list import parse_int_list

    programs = parse_programs(args.programs, "--programs")
    pitches = parse_int_list(args.pitches, "--pitches", 0, 127)
    velocities = parse_int_list(args.velocities, "--velocities", 1, 127)
    seed = _int_flag(args.seed, "--seed")
    workers = _int_flag(args.workers, "--workers", lo=1)
    splits = parse_splits(args.splits, "--splits")
    gain = DEFAULT_GAIN
    if args.gain is not None:
        try:
            gain = float(args.gain)
        except ValueError:
            raise UserError(f"--gain {args.gain!r}: not a number") from None
        if not gain > 0 or gain != gain or gain == float("inf"):
            raise UserError(f"--gain {args.gain!r}: must be a positive number")
    report = build_dataset(
        args.soundfont,
        args.out,
        programs=programs,
        pitches=pitches,
        velocities=velocities,
        seed=seed or 0,
        splits=splits,
        workers=workers,
        progress=not args.no_progress,
        gain=gain,
    )
    print(report.summary())
    return 0


def _table(title: str, rows: Iterable[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [title, fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nsynth_live import gm
    from nsynth_live.errors import UserError
    from nsynth_live.nsynth import EXAMPLES_JSON, SPLITS, count_notes, load_examples

    root = Path(args.dir)
    if (root / EXAMPLES_JSON).is_file():
        split_dirs = {root.name.removeprefix("nsynth-"): root}
    else:
        split_dirs = {s: root / f"nsynth-{s}" for s in SPLITS if (root / f"nsynth-{s}").is_dir()}
        if not split_dirs:
            if not root.exists():
                raise UserError(f"{root}: no such folder")
            raise UserError(
                f"{root}: not an NSynth dataset (no {EXAMPLES_JSON} and no nsynth-train/, "
                "nsynth-valid/ or nsynth-test/ folders)"
            )
    counts: dict[str, Mapping[str, Any]] = {
        name: count_notes(load_examples(d)) for name, d in split_dirs.items()
    }
    names = list(counts)
    out = [f"dataset {root}"]
    out.append(
        _table(
            "\nsplits",
            [
                (n, sum(counts[n]["family"].values()), len(counts[n]["instrument"]))
                for n in names
            ],
            ("split", "notes", "instruments"),
        )
    )

    def per_key(key: str, order: Iterable[Any], title: str, label: str) -> str:
        rows = []
        for k in order:
            vals = [counts[n][key].get(k, 0) for n in names]
            if any(vals):
                rows.append((k, *vals, sum(vals)))
        return _table(title, rows, (label, *names, "total"))

    out.append(per_key("family", gm.FAMILIES, "\nnotes per instrument family", "family"))
    out.append(per_key("source", gm.SOURCES, "\nnotes per instrument source", "source"))
    pitches = sorted(set().union(*(counts[n]["pitch"] for n in names)))
    out.append(per_key("pitch", pitches, "\nnotes per MIDI pitch", "pitch"))
    vels = sorted(set().union(*(counts[n]["velocity"] for n in names)))
    out.append(per_key("velocity", vels, "\nnotes per velocity", "velocity"))
    print("\n".join(out))
    return 0
