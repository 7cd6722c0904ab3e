"""``nsynth-live train`` and ``nsynth-live curve``."""

from __future__ import annotations

import argparse

from nsynth_live.cli.common import parse_int_list, parse_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        argument_default=argparse.SUPPRESS,  # unset flags keep TrainSettings' (or the resumed run's) values
        help="train the WaveNet autoencoder on NSynth-format data",
        description="Train on an NSynth-layout dataset (nsynth-train/ and nsynth-valid/ under --data). "
        "Run under `torchrun --nproc_per_node N --no-python nsynth-live train ...` for "
        "DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 writes RUN.",
    )
    p.add_argument("--config", help="model config name: paper, live or tiny (default live)")
    p.add_argument("--data", help="dataset root (holding nsynth-train/, nsynth-valid/); "
                   "with --resume, default: the run's")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoint.pt, metrics.jsonl, curve.png")
    p.add_argument("--steps", type=int, help="train until this step (default 200000)")
    p.add_argument("--batch-size", type=int, help="crops per step per process (default 8)")
    p.add_argument("--crop", type=int, help="crop length in samples (default 6144, as the paper)")
    p.add_argument("--lr", type=float, help="peak learning rate of the paper schedule (default 2e-4)")
    p.add_argument("--schedule-steps", type=int,
                   help="stretch the paper's 200k-step schedule to this many steps (default: --steps); "
                   "may change on --resume (anneal sooner), recorded in metrics.jsonl")
    p.add_argument("--clip", type=float, help="gradient-norm clip (default 1.0)")
    p.add_argument("--input-noise", type=float,
                   help="std (at most; drawn per crop) of Gaussian noise on the decoder's past samples, "
                   "a regulariser against teacher forcing's exposure bias (default 0, as the paper); "
                   "may change on --resume, recorded in metrics.jsonl")
    p.add_argument("--excitation-lock", action=argparse.BooleanOptionalAction,
                   help="configs with an excitation: train on one whose phase follows the crop's own "
                   "fundamental (past samples only), so the decoder learns to follow it; generation "
                   "keeps the free-running sine (default off; may change on --resume)")
    p.add_argument("--source-weight", type=float,
                   help="configs with a learned source (live-hn): weight of its multi-resolution spectral "
                   "loss beside the cross-entropy (default 1; may change on --resume)")
    p.add_argument("--source-forcing", type=float,
                   help="configs with a learned source: share of crops (0..1) whose decoder hears the source "
                   "measured from the crop's own past (every harmonic's amplitude and phase) instead of the "
                   "source network's, so it learns to follow a source's spectrum (default 0; may change on --resume)")
    p.add_argument("--harmonic-weight", type=float,
                   help="configs with a learned source: weight of a loss pulling the source network's per-frame "
                   "harmonic amplitudes towards the ones measured in the crop (log-amplitude L1; default 0; "
                   "may change on --resume)")
    p.add_argument("--init-from", metavar="RUN",
                   help="a new run starts from this run's EMA weights (same-named, same-shaped tensors; "
                   "a sine excitation's fundamental seeds a learned source's projection)")
    p.add_argument("--ema-decay", type=float, help="weight-averaging decay used for export (default 0.9999)")
    p.add_argument("--seed", type=int, help="seed of data order, crops and init (default 0)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto (default): bf16 autocast on GPUs and on CPUs with native bf16 (fp16 on older GPUs, fp32 on older CPUs)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction,
                   help="torch.compile the model (default: off; with bf16 it was only 4%% faster for live on a 2-core CPU)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500)")
    p.add_argument("--valid-every", type=int, help="steps between validations (default 500)")
    p.add_argument("--valid-notes", type=int, help="notes in the fixed validation subset (default 64)")
    p.add_argument("--log-every", type=int, help="steps between metric records (default 10)")
    p.add_argument("--workers", type=int, help="data-loading worker processes (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto")
    p.add_argument("--families", help="train only these families, e.g. keyboard,string")
    p.add_argument("--sources", help="train only these sources, e.g. acoustic,electronic")
    p.add_argument("--pitches", type=parse_range, help="MIDI pitch range, e.g. 36-84")
    p.add_argument("--velocities", type=parse_int_list, help="velocities, e.g. 100,127")
    p.add_argument("--resume", action="store_true", help="continue RUN's checkpoint exactly (may raise --steps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    c = sub.add_parser("curve", help="draw a run's training curve as a PNG",
                       description="Plot train and validation bits/sample from RUN/metrics.jsonl.")
    c.add_argument("run", metavar="RUN", help="run folder")
    c.add_argument("--out", default=None, help="PNG path (default RUN/curve.png)")
    c.set_defaults(func=_curve)


def _train(args: argparse.Namespace) -> int:
    from nsynth_live.train import train

    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume", "no_progress")}
    for key in ("families", "sources"):
        if key in given:
            given[key] = given[key].split(",")
    if "pitches" in given:
        given["pitches"] = list(given["pitches"])
    if getattr(args, "no_progress", False):
        given["progress"] = False
    last = train(given, resume=getattr(args, "resume", False))
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
