"""``nsynth-live encode``: audio notes -> presets of a bank (encoder.onnx, no torch)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode",
        help="encode audio notes into presets of a bank",
        description="Mix each AUDIO file to mono, resample it to 16 kHz, trim or pad it to 4 s, estimate "
        "its pitch (unless --pitch) and encode it with the model's encoder.onnx into a preset "
        "(an embedding trajectory) of BANK, created if missing. All files or none are added.",
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (WAV, FLAC, OGG, AIFF, MP3, ...)")
    p.add_argument("--model", metavar="EXPORT", help="export directory (default: the shipped default)")
    p.add_argument("--bank", required=True, metavar="DIR", help="bank folder (created if missing)")
    p.add_argument("--name", help="preset name (one AUDIO only; default: the file name without extension)")
    p.add_argument("--pitch", type=int, help="MIDI pitch of the note(s) (default: estimated)")
    p.add_argument("--tags", default="", help="comma-separated labels, e.g. keyboard,acoustic")
    p.add_argument("--bank-name", help="display name of a new bank (default: the folder name)")
    p.add_argument("--replace", action="store_true", help="replace presets of the same name")
    p.set_defaults(func=_encode)


def _encode(args: argparse.Namespace) -> int:
    from nsynth_live.host.defaults import model_or_default
    from nsynth_live.host.encode import encode_files

    presets = encode_files(
        args.audio, model_or_default(args.model), args.bank, name=args.name, pitch=args.pitch,
        tags=[t for t in args.tags.split(",") if t], bank_name=args.bank_name, replace=args.replace,
    )
    for p in presets:
        print(f"{args.bank}: {p.name} (pitch {p.source_pitch}, {p.frames} frames, "
              f"sustain {p.regions['sustain_start']}-{p.regions['sustain_end']})")
    return 0
