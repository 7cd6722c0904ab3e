"""``nsynth-live calibrate-level``: measure an export's loudest notes, record the output gain (no torch)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate-level",
        help="measure a model's level with a bank and record the output gain in model.json",
        description="Render every preset of BANK at a spread of pitches as render-bank does (velocity 127, the "
        "export's recommended decoding), and record each preset's loudest peak in the export's model.json "
        "('level'). Every render then scales its output by one gain that brings the loudest of the presets it "
        "plays to the recommended peak level. Only model.json changes (the ONNX files and their weights "
        "hashes stay as exported).",
    )
    p.add_argument("--model", metavar="EXPORT", help="export directory to calibrate (default: the shipped default)")
    p.add_argument("--bank", metavar="DIR", help="preset bank (default: the shipped default)")
    p.add_argument("--target", default="-3", metavar="DBFS",
                   help="the peak level the export recommends, in dBFS: -3 or --target=-3dBFS (default -3)")
    p.add_argument("--pitches", default="36,48,60,72,84", help="calibration pitches (default 36,48,60,72,84)")
    p.add_argument("--seconds", type=float, default=2.0, help="note length (default 2)")
    p.add_argument("--engine", default="auto", choices=["auto", "ort", "fused"], help="engine (default auto)")
    p.add_argument("--threads", type=int, help="engine threads (default: the engine's)")
    p.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from nsynth_live.errors import UserError
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.calibrate import calibrate_level, write_level
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.model_files import load_export
    from nsynth_live.int_list import parse_int_list
    from nsynth_live.level import parse_dbfs, to_dbfs

    try:
        target = parse_dbfs(args.target)
    except ValueError as err:
        raise UserError(f"--target: {err}") from None
    pitches = parse_int_list(args.pitches, "--pitches", 0, 127)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be at least 1")
    export = model_or_default(args.model)
    info = load_export(export)
    bank = load_bank(bank_or_default(args.bank))
    bank.check_model(info.config.hop, info.config.bottleneck)
    batch = min(32, len(bank.presets) * len(pitches))
    engine = open_engine(info, args.engine, max_voices=batch, threads=args.threads)
    try:
        level = calibrate_level(engine, info, bank, pitches, seconds=args.seconds, target_dbfs=target, batch=batch)
    finally:
        engine.close()
    write_level(export, level)
    print(f"{export}/model.json: level of {level.calibration['notes']} notes, loudest {to_dbfs(level.reference_peak):.1f} "
          f"dBFS ({level.calibration['loudest']}), median {level.calibration['median_peak_dbfs']:.1f} dBFS; "
          f"recommends {target:g} dBFS: output gain {level.gain():.2f} for the whole bank")
    return 0
