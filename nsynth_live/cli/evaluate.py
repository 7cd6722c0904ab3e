"""``nsynth-live evaluate``."""

from __future__ import annotations

import argparse

from nsynth_live.cli.common import add_decoding_args, check_decoding


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="reconstruct held-out notes and score them against a trivial baseline",
        description="Encode each held-out note, decode it sample by sample (pitch conditioning from "
        "the metadata) and report NLL, f0 accuracy and multi-resolution spectral distance beside "
        "the same figures for mu-law noise shaped by the note's loudness envelope. Writes "
        "results.json, WAVs and rainbowgram PNGs to --out.",
    )
    p.add_argument("--model", required=True, metavar="RUN_or_EXPORT",
                   help="training run folder or checkpoint file (EMA weights, PyTorch), or an export directory (ONNX engines)")
    p.add_argument("--data", required=True, help="dataset root (or a split folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="split to reconstruct (default test)")
    p.add_argument("--limit", type=int, default=16, help="notes, spread over the split (default 16; 0 = all)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each reconstruction (default 4)")
    p.add_argument("--batch", type=int, default=8, help="notes generated together (default 8)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    add_decoding_args(p)
    p.add_argument("--plots", type=int, default=4, help="rainbowgram PNGs to draw (default 4)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from nsynth_live.evaluate import evaluate, format_table

    check_decoding(args)

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = evaluate(
        args.model, args.data, args.out, split=args.split, limit=args.limit or None, seconds=args.seconds,
        batch=args.batch, seed=args.seed, temperature=args.temperature, plots=args.plots,
        progress=not args.no_progress, excitation_gain=args.excitation_gain,
    )
    print(format_table(summary))
    print(f"results: {args.out}/results.json")
    return 0
