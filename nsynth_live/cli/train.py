"""``nsynth-live train`` and ``nsynth-live curve``."""

from __future__ import annotations

import argparse

from nsynth_live.cli.common import parse_int_list, parse_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the WaveNet autoencoder on NSynth-format data",
        description="Train on an NSynth-layout dataset (nsynth-train/ and nsynth-valid/ under --data). "
        "Run under `torchrun --nproc_per_node N --no-python nsynth-live train ...` for "
        "DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 writes RUN.",
    )
    p.add_argument("--config", default="live", help="model config name: paper, live or tiny (default live)")
    p.add_argument("--data", required=True, help="dataset root (holding nsynth-train/, nsynth-valid/)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoint.pt, metrics.jsonl, curve.png")
    p.add_argument("--steps", type=int, default=200_000, help="train until this step (default 200000)")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step per process (default 8)")
    p.add_argument("--crop", type=int, default=6144, help="crop length in samples (default 6144, as the paper)")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate of the paper schedule (default 2e-4)")
    p.add_argument("--schedule-steps", type=int, default=None,
                   help="stretch the paper's 200k-step schedule to this many steps (default: --steps)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (default 1.0)")
    p.add_argument("--ema-decay", type=float, default=0.9999, help="weight-averaging decay used for export (default 0.9999)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order, crops and init (default 0)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16/fp16 autocast on a GPU, fp32 on the CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--valid-every", type=int, default=500, help="steps between validations (default 500)")
    p.add_argument("--valid-notes", type=int, default=64, help="notes in the fixed validation subset (default 64)")
    p.add_argument("--log-every", type=int, default=10, help="steps between metric records (default 10)")
    p.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default auto")
    p.add_argument("--families", default=None, help="train only these families, e.g. keyboard,string")
    p.add_argument("--sources", default=None, help="train only these sources, e.g. acoustic,electronic")
    p.add_argument("--pitches", type=parse_range, default=None, help="MIDI pitch range, e.g. 36-84")
    p.add_argument("--velocities", type=parse_int_list, default=None, help="velocities, e.g. 100,127")
    p.add_argument("--resume", action="store_true", help="continue RUN's checkpoint exactly (may raise --steps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    c = sub.add_parser("curve", help="draw a run's training curve as a PNG",
                       description="Plot train and validation bits/sample from RUN/metrics.jsonl.")
    c.add_argument("run", metavar="RUN", help="run folder")
    c.add_argument("--out", default=None, help="PNG path (default RUN/curve.png)")
    c.set_defaults(func=_curve)


def _train(args: argparse.Namespace) -> int:
    from nsynth_live.train import TrainSettings, train

    s = TrainSettings(
        config=args.config, data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size,
        crop=args.crop, lr=args.lr, schedule_steps=args.schedule_steps, clip=args.clip,
        ema_decay=args.ema_decay, seed=args.seed, precision=args.precision, compile=args.compile,
        checkpoint_every=args.checkpoint_every, valid_every=args.valid_every,
        valid_notes=args.valid_notes, log_every=args.log_every, workers=args.workers,
        threads=args.threads, device=args.device,
        families=args.families.split(",") if args.families else None,
        sources=args.sources.split(",") if args.sources else None,
        pitches=list(args.pitches) if args.pitches else None, velocities=args.velocities,
        progress=not args.no_progress,
    )
    last = train(s, resume=args.resume)
    if last:
        print(f"step {last['step']}: {last['loss_bits']:.3f} bits/sample, {last['steps_per_s']:.2f} steps/s")
    return 0


def _curve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nsynth_live.errors import UserError
    from nsynth_live.plots import plot_training_curve

    metrics = Path(args.run) / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"{metrics}: no metrics there")
    print(plot_training_curve(metrics, args.out or Path(args.run) / "curve.png"))
    return 0
