"""PyTorch model -> export directory (encoder.onnx, conditioner.onnx, decoder_step.onnx, model.json;
source.onnx too for a model with a learned source).

The directory is written atomically: everything goes to a temporary sibling directory, which is
renamed into place only once every file is complete and fsynced. An existing non-empty target
is refused unless ``force``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from nsynth_live.exporters import graphs
from nsynth_live.model_format import (
    EXPORTER_VERSION,
    FORMAT,
    MODEL_JSON,
    combined_sha256,
    files_for,
    initializers_sha256,
    to_props,
)
from nsynth_live import SAMPLE_RATE, mulaw
from nsynth_live.atomic import atomic_write_many, fsync_dir
from nsynth_live.configs import N_CLASSES, ModelConfig, history_length, receptive_field
from nsynth_live.errors import BadValue, UserError
from nsynth_live.sampling import Decoding

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Split/Unsqueeze/Reshape take their sizes as inputs from 13 on


def _model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="nsynth-live")
    # The oldest IR version that carries this opset: readable by any ONNX Runtime that knows the
    # opset (make_model stamps the newest IR version, which older runtimes refuse).
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


def _float32_cpu(module: Any) -> Any:
    """``module`` itself if it is float32 on the CPU, else a float32 CPU copy (the caller's model
    is never converted in place; fused products like start_w @ skip_w are formed in float32)."""
    import copy

    import torch

    tensors = list(module.parameters()) + list(module.buffers())
    if all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors):
        return module
    return copy.deepcopy(module).float().cpu()


def build_models(model: Any, opset: int = DEFAULT_OPSET) -> dict[str, onnx.ModelProto]:
    """The ONNX models of an autoencoder (no metadata yet): encoder, conditioner, decoder step,
    and for a learned source its amplitudes graph.

    Args:
        model: :class:`nsynth_live.autoencoder.WaveNetAutoencoder` (float weights, any device).
        opset: ONNX opset.

    Returns:
        role -> ``onnx.ModelProto``.
    """
    cfg = model.cfg
    decoder, encoder = _float32_cpu(model.decoder), _float32_cpu(model.encoder)
    models = {
        "encoder": _model(graphs.encoder_graph(cfg, encoder.state_dict()), opset),
        "conditioner": _model(graphs.conditioner_graph(cfg, decoder.cond_weights()), opset),
        "decoder_step": _model(graphs.step_graph(cfg, decoder.step_weights()), opset),
    }
    if cfg.source_harmonics:
        models["source"] = _model(graphs.source_graph(cfg, decoder.source_net), opset)
    return models


def build_metadata(cfg: ModelConfig, models: dict[str, onnx.ModelProto], source: dict[str, Any], opset: int,
                   decoding: Decoding | None = None) -> dict[str, Any]:
    """The metadata dict of model.json and every file's metadata_props."""
    per_file = {role: initializers_sha256(m) for role, m in models.items()}
    k = cfg.decoder_kernel
    return {
        "format": FORMAT,
        "exporter_version": EXPORTER_VERSION,
        "opset": opset,
        "config": cfg.to_dict(),
        "sample_rate": SAMPLE_RATE,
        "hop": cfg.hop,
        "mu": mulaw.MU,
        "n_classes": N_CLASSES,
        "dilations": list(cfg.decoder_dilations),
        "kernel": k,
        "receptive_field": receptive_field(cfg),
        "history_per_layer": [(k - 1) * d for d in cfg.decoder_dilations],
        "history_length": history_length(cfg),
        "cond_width": cfg.cond_width,
        "tensors": graphs.tensor_specs(cfg),
        "initializers_sha256": per_file,
        "weights_sha256": combined_sha256(per_file),
        "source": source,
        "decoding": (decoding or Decoding()).to_dict(),
    }


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out}: exists and is not empty (pass --force to replace it)")


def export_model(
    model: Any,
    out_dir: str | Path,
    source: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    check: bool = True,
    decoding: Decoding | None = None,
) -> Path:
    """Export an autoencoder to ``out_dir`` atomically.

    Args:
        model: :class:`nsynth_live.autoencoder.WaveNetAutoencoder`.
        out_dir: target directory (created; must be absent or empty unless ``force``).
        source: provenance for model.json, e.g. ``{"checkpoint": path, "step": 1200,
            "weights": "ema"}`` (default: unknown).
        opset: ONNX opset (>= 13).
        force: replace an existing non-empty directory.
        check: run ``onnx.checker`` on every file.
        decoding: the decoding settings the export recommends (``model.json``'s ``decoding``;
            default temperature 1, excitation gain 1): every command uses them unless told otherwise.

    Returns:
        the export directory.
    """
    out = Path(out_dir)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise BadValue("opset", opset, f"must be {MIN_OPSET} (the graphs' oldest) to {newest} (this onnx's newest)")
    _check_target(out, force)
    models = build_models(model, opset)
    metadata = build_metadata(model.cfg, models, source or {"checkpoint": None, "step": None, "weights": None}, opset,
                              decoding)
    for role, m in models.items():
        helper.set_model_props(m, to_props(metadata, role))
        if check:
            onnx.checker.check_model(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
        atomic_write_many([(tmp / files_for(model.cfg)[role], m.SerializeToString()) for role, m in models.items()]
                          + [(tmp / MODEL_JSON, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())])
        _check_target(out, force)  # again: something may have appeared meanwhile
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_random(config: str | ModelConfig, out_dir: str | Path, seed: int = 0, **kwargs: Any) -> Path:
    """Export a randomly initialised model (tests, benchmarks).

    Args:
        config: config name or :class:`ModelConfig`.
        out_dir: target directory.
        seed: ``torch.manual_seed`` before building the model.
        kwargs: passed to :func:`export_model`.
    """
    import torch

    from nsynth_live.autoencoder import WaveNetAutoencoder
    from nsynth_live.configs import get_config

    cfg = get_config(config) if isinstance(config, str) else config
    torch.manual_seed(seed)
    model = WaveNetAutoencoder(cfg).eval()
    kwargs.setdefault("source", {"checkpoint": None, "step": None, "weights": f"random (seed {seed})"})
    return export_model(model, out_dir, **kwargs)


def load_model_from_checkpoint(checkpoint: str | Path, weights: str = "ema") -> tuple[Any, dict[str, Any]]:
    """The autoencoder of a training checkpoint with its EMA (default) or raw weights.

    Returns:
        (WaveNetAutoencoder in eval mode, source dict for model.json).
    """
    from nsynth_live.autoencoder import WaveNetAutoencoder
    from nsynth_live.checkpoint import load_checkpoint

    if weights not in ("ema", "model"):
        raise BadValue("weights", weights, "must be ema or model")
    ckpt = load_checkpoint(checkpoint)
    try:
        cfg = ModelConfig.from_dict(ckpt["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{checkpoint}: bad model config ({err})") from None
    ema = ckpt.get("ema")
    state = (ema.get("shadow") if isinstance(ema, dict) else None) if weights == "ema" else ckpt.get("model")
    if not isinstance(state, dict):
        raise UserError(f"{checkpoint}: no {weights} weights in the checkpoint")
    model = WaveNetAutoencoder(cfg)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise UserError(f"{checkpoint}: {weights} weights do not fit config {cfg.name!r} ({str(err).splitlines()[0]})") from None
    # Relative to the working directory where it lies inside it (a shipped export names
    # training/RUN, not the machine it was made on).
    where = Path(checkpoint).resolve()
    try:
        where = where.relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    source = {"checkpoint": str(where), "step": int(ckpt.get("step", 0)), "weights": weights}
    return model.eval(), source
