"""``nsynth-live render-bank`` and ``render-bank-merge``: preset banks to WAV notes + SFZ (no torch)."""

from __future__ import annotations

import argparse
import sys

from nsynth_live.cli.common import add_player_args, check_decoding

DEFAULT_PITCHES = "21-108"  # NSynth's range and velocities
DEFAULT_VELOCITIES = "25,50,75,100,127"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render-bank",
        help="render presets (or an XY grid) x pitches x velocities to WAV notes + SFZ",
        description="Every sound (a preset, or a point of an N x N grid between the bank's corner presets) "
        "at every pitch, as a key held for SECONDS-1 s then released (NSynth: 4 s notes held 3 s), batched "
        "through one engine. Writes OUT/samples/SOUND-PITCH-VELOCITY.wav (16-bit, 16 kHz), one OUT/SOUND.sfz "
        "per sound and OUT/manifest.json. Velocity layers are copies of one render scaled by velocity/127 "
        "(the model has no velocity input). Rerun the same command to resume: finished files are kept.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    add_player_args(p)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--presets", metavar="A,B", help="comma-separated preset names or indices (default: all)")
    who.add_argument("--grid", type=int, metavar="N", help="N x N points between the bank's four corner presets")
    p.add_argument("--pitches", default=DEFAULT_PITCHES,
                   help=f"MIDI notes: ranges and lists, e.g. 36,48-60 (default {DEFAULT_PITCHES})")
    p.add_argument("--velocities", default=DEFAULT_VELOCITIES, help=f"velocity layers (default {DEFAULT_VELOCITIES})")
    p.add_argument("--seconds", type=float, default=4.0,
                   help="note length; the key goes up 1 s before the end, half-way under 2 s (default 4)")
    p.add_argument("--batch", type=int, default=64, help="notes rendered together (default 64)")
    p.add_argument("--shard", metavar="I/N",
                   help="render only shard I of N (0-based); join them with render-bank-merge")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_render_bank)

    m = sub.add_parser(
        "render-bank-merge",
        help="join render-bank shards into manifest.json and write the SFZs",
        description="Checks that every manifest-shard-I-of-N.json in DIR comes from the same model, bank and "
        "settings, writes DIR/manifest.json from the files on disk and one .sfz per complete sound; lists "
        "missing notes (exit status 1) when a shard is unfinished.",
    )
    m.add_argument("dir", metavar="DIR", help="the --out folder of the shards")
    m.set_defaults(func=_merge)


def _render_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nsynth_live.host import render_bank as rb
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.model_files import load_export
    from nsynth_live.errors import UserError
    from nsynth_live.int_list import parse_int_list

    # Every check that can fail runs before anything is written.
    check_decoding(args)
    pitches = parse_int_list(args.pitches, "--pitches", 0, 127)
    velocities = parse_int_list(args.velocities, "--velocities", 1, 127)
    shard = rb.parse_shard(args.shard) if args.shard is not None else None
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be at least 1")
    bank = load_bank(bank_or_default(args.bank))
    info = load_export(model_or_default(args.model))
    bank.check_model(info.config.hop, info.config.bottleneck)
    sounds, selection = rb.select_sounds(bank, info.config.hop, args.presets, args.grid)
    decoding = info.decoding.override(args.temperature, args.excitation_gain)
    job = rb.Job(Path(args.out), sounds, pitches, velocities, seconds=args.seconds, seed=args.seed,
                 temperature=decoding.temperature, excitation_gain=decoding.excitation_gain, shard=shard,
                 batch=args.batch, selection=selection,
                 bank_name=bank.name, bank_path=str(Path(bank.path).resolve()))
    todo = len(rb.items_of(sounds, pitches, shard))
    engine = open_engine(info, args.engine, max_voices=max(1, min(args.batch, todo)), threads=args.threads)
    try:
        report = rb.render_bank(job, engine, info, progress=not args.no_progress and sys.stderr.isatty())
    finally:
        engine.close()
    rate = report.rendered / report.seconds if report.seconds > 0 else 0.0
    where = f"shard {shard[0]}/{shard[1]}: " if shard else ""
    print(f"{job.out}: {where}{report.items} notes x {len(velocities)} velocities, {report.skipped} already there, "
          f"rendered {report.rendered} in {report.seconds:.1f} s ({rate:.2f} notes/s, engine {engine.name}); "
          f"{len(report.instruments)} .sfz; {report.manifest.name}")
    if shard:
        print(f"when every shard is done: nsynth-live render-bank-merge {job.out}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nsynth_live.host.render_output import merge

    report = merge(Path(args.dir))
    print(f"{report.manifest}: {len(report.shards)} shard manifests, {report.files} files, "
          f"{len(report.instruments)} .sfz")
    if report.missing:
        never = ", ".join(map(str, report.missing_shards))
        shards = f" (shards never started: {never})" if never else ""
        print(f"nsynth-live render-bank-merge: {len(report.missing)} notes missing{shards}, e.g. "
              f"{'; '.join(report.missing[:3])}: finish every shard and merge again", file=sys.stderr)
        return 1
    return 0
