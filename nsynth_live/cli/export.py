"""``nsynth-live export``: a training checkpoint -> an ONNX export directory (docs/design.md: the ONNX contract)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to encoder.onnx, conditioner.onnx, decoder_step.onnx and model.json",
        description="Write the three ONNX graphs and model.json of a training run's weights (EMA by "
        "default) into DIR, atomically: DIR appears complete or not at all.",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUN", help="run folder (holding checkpoint.pt) or checkpoint file")
    p.add_argument("--out", required=True, metavar="DIR", help="export directory to create")
    p.add_argument("--weights", choices=["ema", "model"], default="ema",
                   help="ema: the weight average the paper exports (default); model: the raw weights")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17, at least 13)")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists and is not empty")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature the export recommends (model.json 'decoding'; default 1.0)")
    p.add_argument("--excitation-gain", type=float, default=1.0,
                   help="excitation gain the export recommends, for models with an excitation (default 1.0)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from nsynth_live.exporters.export import DEFAULT_OPSET, export_model, load_model_from_checkpoint
    from nsynth_live.host.model_files import load_export
    from nsynth_live.errors import UserError
    from nsynth_live.sampling import Decoding

    try:
        decoding = Decoding(args.temperature, args.excitation_gain)
    except ValueError as err:
        raise UserError(f"--temperature/--excitation-gain: {err}") from None
    model, source = load_model_from_checkpoint(args.checkpoint, args.weights)
    out = export_model(model, args.out, source=source, opset=args.opset or DEFAULT_OPSET, force=args.force,
                       decoding=decoding)
    info = load_export(out)  # read back through the host's loader: what we wrote must load
    print(f"{out}: config {info.config.name}, step {source['step']} ({args.weights} weights), "
          f"weights sha256 {info.weights_sha256[:16]}, decoding temperature {info.decoding.temperature:g}, "
          f"excitation gain {info.decoding.excitation_gain:g}")
    return 0
