"""``nsynth-live render-midi``: a MIDI file to WAV through the live host's voices (no torch)."""

from __future__ import annotations

import argparse

from nsynth_live.cli.common import add_player_args


def _xy(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y like 0.25,0.75") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: X and Y must be within 0..1")
    return x, y


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render-midi",
        help="render a MIDI file to WAV with the live host's voices",
        description="Every note of every track (tempo changes, sustain pedal, program changes selecting "
        "presets, overlapping notes) through the same voice code as `nsynth-live play`, as fast as the "
        "engine allows.",
    )
    p.add_argument("midi", metavar="FILE.mid", help="standard MIDI file")
    p.add_argument("--out", required=True, metavar="FILE.wav", help="output WAV (16-bit)")
    add_player_args(p)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--preset", help="preset name or index to start with (default: the bank's first)")
    who.add_argument("--xy", type=_xy, help="start on the XY pad between the bank's corners, e.g. 0.5,0.5")
    p.add_argument("--voices", type=int, default=16, help="most notes at once (default 16)")
    p.add_argument("--rate", type=int, default=16000, help="output sample rate (default 16000; resampled with soxr)")
    p.set_defaults(func=_render_midi)


def _render_midi(args: argparse.Namespace) -> int:
    import time

    from nsynth_live.host import events as ev
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.render_midi import read_midi, render_events, write_wav
    from nsynth_live.host.synth import Synth
    from nsynth_live.cli.common import check_decoding
    from nsynth_live.errors import UserError

    check_decoding(args)
    if not 8000 <= args.rate <= 192000:
        raise UserError(f"--rate {args.rate}: must be 8000..192000 Hz")
    timeline = read_midi(args.midi)
    bank = load_bank(bank_or_default(args.bank))
    engine = open_engine(model_or_default(args.model), args.engine, max_voices=args.voices + 2, threads=args.threads)
    try:
        synth = Synth(engine, bank, voices=args.voices, seed=args.seed, temperature=args.temperature,
                      excitation_gain=args.excitation_gain)
        if args.preset is not None:
            synth.apply(ev.SelectPreset(int(args.preset) if args.preset.isdigit() else args.preset), strict=True)
        elif args.xy is not None:
            if not bank.corners:
                raise UserError(f"--xy: bank {bank.path} has no corner presets")
            synth.apply(ev.XY(*args.xy), strict=True)
        start = time.perf_counter()
        audio = render_events(synth, timeline)
        took = time.perf_counter() - start
    finally:
        engine.close()
    write_wav(args.out, audio, args.rate)
    secs = len(audio) / 16000
    print(f"{args.out}: {secs:.1f} s of audio, {synth.stats.notes} notes, rendered in {took:.1f} s "
          f"({secs / max(took, 1e-9):.2f}x real time, engine {engine.name})")
    return 0
