"""``nsynth-live bench timbre``: the timbre evaluation (:mod:`nsynth_live.timbre`) as a command.

It judges an export (through a host engine) or a training run (its EMA weights: PyTorch for the
conditioning and any learned source, the fused engine for the samples; for candidates not exported
yet) on a bank whose presets name their source notes in ``--data``.
Prints a table, writes JSON and a confusion-matrix PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nsynth_live.cli.common import add_decoding_args, check_decoding, parse_range
from nsynth_live.errors import UserError


def add_timbre(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "timbre", help="timbre identity and blends of a model's presets, judged by a classifier",
        description="Train an instrument-identity classifier on the source notes of a bank's presets, "
        "then judge the notes the model renders from the bank (identity for training and held-out "
        "instruments, blends between preset pairs, in-tune share).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="EXPORT", help="export directory (default: the shipped default)")
    src.add_argument("--run", metavar="RUN", help="a training run (or checkpoint file): its EMA weights, on the fused engine; "
                     "the presets are encoded anew from their source notes with the run's encoder")
    p.add_argument("--bank", metavar="DIR", help="preset bank (default: the shipped default)")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="NSynth-layout dataset holding the presets' source notes (the one the bank was encoded from)")
    p.add_argument("--pitches", type=parse_range, default=(36, 84), help="MIDI range judged (default 36-84)")
    p.add_argument("--step", type=int, default=1, help="every STEP-th pitch of the range (default 1)")
    p.add_argument("--presets", default=None, help="comma-separated preset names (default: all)")
    p.add_argument("--seconds", type=float, default=2.0, help="rendered note length (default 2)")
    p.add_argument("--pairs", type=int, default=10, help="blend pairs (0: no blend test; default 10)")
    p.add_argument("--engine", default="auto", choices=["auto", "ort", "fused"])
    p.add_argument("--batch", type=int, default=16, help="notes rendered at once (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--diagnose", action="store_true",
                   help="with --run of a learned-source model: also judge a synthesis of the amplitudes measured in "
                   "the real notes, its source alone (from each note's own embedding and from the preset's) and its "
                   "decoder fed the measured sources (where the timbre is lost)")
    p.add_argument("--source", default="auto", choices=["auto", "measured", "model"],
                   help="a learned-source model's harmonics: the presets' measured ones (as the host plays a bank that "
                   "carries them), the model's source network, or auto: measured where the presets carry them "
                   "(with --run: always, measured anew from the source notes) (default auto)")
    add_decoding_args(p)
    p.add_argument("--json", default="timbre.json", help="result file (default timbre.json)")
    p.add_argument("--png", default=None, help="confusion matrix PNG (default: beside --json)")
    p.set_defaults(func=run_timbre)


def run_timbre(args: argparse.Namespace) -> int:
    from nsynth_live import timbre
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.atomic import atomic_write_bytes

    check_decoding(args)
    for flag, value, ok, rule in (("--step", args.step, args.step >= 1, "at least 1"),
                                  ("--batch", args.batch, args.batch >= 1, "at least 1"),
                                  ("--pairs", args.pairs, args.pairs >= 0, "at least 0"),
                                  ("--seconds", args.seconds, args.seconds >= 1.0, "at least 1 (a held part to judge)")):
        if not ok:
            raise UserError(f"{flag} {value}: must be {rule}")
    if args.diagnose and not args.run:
        raise UserError("--diagnose: needs --run RUN of a model with a learned source (e.g. live-hn)")
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"--data {data}: no such dataset folder")
    bank = load_bank(bank_or_default(args.bank))
    presets = None if args.presets is None else [x for x in args.presets.split(",") if x]
    if presets is not None:
        unknown = [n for n in presets if n not in bank.names()]
        if unknown:
            raise UserError(f"--presets: the bank has no preset {', '.join(unknown)}")
    if args.run:
        import torch

        from nsynth_live.evaluate import RunFusedBackend, load_model

        backend = RunFusedBackend(load_model(args.run), max_voices=args.batch)
        what = f"run {args.run} at step {backend.model.checkpoint_step}"
        weights = {"step": backend.model.checkpoint_step}
        if args.diagnose and not backend.cfg.source_harmonics:
            raise UserError(f"--diagnose: run {args.run} (config {backend.cfg.name!r}) has no learned source")

        def encode(audio):
            with torch.no_grad():
                return backend.model.encode(torch.from_numpy(audio)).numpy()

        # The run's own embeddings of the presets' source notes, not another model's, and (unless
        # --source model) their measured harmonics, as `encode` would store them.
        k = backend.cfg.source_harmonics if args.source != "model" else 0
        bank = timbre.reencode(bank, data, encode, harmonics=k)
    else:
        from nsynth_live.evaluate import EngineBackend

        from nsynth_live.host.model_files import load_export

        model = model_or_default(args.model)
        backend = EngineBackend(model, args.engine, max_voices=args.batch)
        what = f"export {model}"
        weights = {"weights_sha256": load_export(model, verify_weights=False).weights_sha256}
    decoding = backend.decoding.override(args.temperature, args.excitation_gain)
    judged = list(bank.presets) if presets is None else [bank.get(n) for n in presets]
    carry = all(p.harmonics is not None for p in judged)
    if args.source == "measured" and not backend.cfg.source_harmonics:
        raise UserError(f"--source measured: {what} (config {backend.cfg.name!r}) has no learned source")
    if args.source == "measured" and not carry:
        raise UserError(f"--source measured: bank {bank.path} has presets without measured harmonics; re-encode it "
                        "with a learned-source model")
    measured = args.source != "model" and bool(backend.cfg.source_harmonics) and carry

    def render(emb, pitch, n, voices, harmonics=None, noise=None):
        return backend.generate(emb, pitch, n, args.seed, decoding, voices, harmonics=harmonics, noise=noise)

    lo, hi = args.pitches
    pitches = list(range(lo, hi + 1, args.step))
    t0 = time.perf_counter()
    result = timbre.evaluate_timbre(render, backend.cfg.hop, bank, data, pitches,
                                    args.seconds, presets, args.pairs, batch=args.batch,
                                    log=lambda s: print(f"  {s}", file=sys.stderr), harmonics=measured,
                                    noise=backend.cfg.source_residual)
    if args.diagnose:
        from nsynth_live.source_diagnosis import diagnose

        result["diagnosis"] = diagnose(backend.model, backend, bank, data, pitches,
                                       args.seconds, presets, decoding, args.seed, args.batch,
                                       log=lambda s: print(f"  {s}", file=sys.stderr))
    result.update(weights)  # which weights were judged: a run's step, an export's hash
    result.update(model=what, bank=str(bank.path), data=str(data),
                  decoding=decoding.to_dict(), seconds_taken=time.perf_counter() - t0)
    from nsynth_live.benchmarks.machine import machine_info

    result["machine"] = machine_info()
    played = f", the presets' {result['source']}" if measured else ""
    print(f"timbre of {what} (temperature {decoding.temperature:g}, excitation gain {decoding.excitation_gain:g}{played})")
    print(timbre.format_table(result))
    if "diagnosis" in result:
        from nsynth_live.source_diagnosis import format_diagnosis

        print(format_diagnosis(result["diagnosis"]))
    out = Path(args.json)
    png = Path(args.png) if args.png else out.with_suffix(".png")
    atomic_write_bytes(out, (json.dumps(result, indent=1) + "\n").encode())
    atomic_write_bytes(png, timbre.plot_confusion(result))
    print(f"wrote {out} and {png}")
    return 0
