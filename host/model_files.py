"""Load and validate an export directory; read the step and conditioning weights (no torch).

NOTE for the fused engine: ``step_weights_from_onnx`` and ``cond_weights_from_onnx`` are ready
and stable. Their keys are exactly the :class:`nsynth_live.decoder.StepWeights` /
``CondWeights`` field paths, because the exporter (``exporters/export.py``) builds the graphs
itself and names every initializer after its field: ``start_w`` [k, R+S], ``start_b`` [R+S],
``layers.{i}.gate_w`` [k*R, 2R], ``layers.{i}.out_w`` [R, R+S] ([R, S] for the last layer),
``layers.{i}.out_b`` [R+S] ([S] last), ``out1_w`` [S, S], ``logits_w`` [S, 256], ``logits_b``
[256]; conditioner: ``embed_w`` [bottleneck, L*2R+S], ``pitch_w`` [128, L*2R+S] (pitch-conditioned
configs only), ``bias`` [L*2R+S]. All float32, C-contiguous, matrices [in, out].

An export directory (docs/design.md, "The ONNX contract") holds ``encoder.onnx``,
``conditioner.onnx``, ``decoder_step.onnx`` and ``model.json``. :func:`load_export` refuses,
with one :class:`~nsynth_live.errors.UserError` line naming the file and the mismatch: a missing
file, an unparseable or invalid ONNX file, a model.json that is not valid JSON, missing
metadata, another format or exporter version, metadata that disagrees between files and
model.json, graph inputs/outputs other than the metadata says, and (``verify_weights``)
initializers whose hash is not the recorded one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live.model_format import (
    EXPORTER_VERSION,
    FORMAT,
    JSON_ONLY_KEYS,
    MODEL_JSON,
    REQUIRED_KEYS,
    combined_sha256,
    files_for,
    from_props,
    initializers_sha256,
)
from nsynth_live.configs import ModelConfig
from nsynth_live.errors import UserError
from nsynth_live.level import LEVEL_KEY, Level
from nsynth_live.sampling import Decoding


@dataclass(frozen=True)
class ExportInfo:
    """A validated export directory.

    Attributes:
        root: the directory.
        config: the model config.
        metadata: the model.json dict (equal to every file's metadata).
        paths: role (``encoder``, ``conditioner``, ``decoder_step``, and ``source`` for a model
            with a learned source) -> ONNX file.
    """

    root: Path
    config: ModelConfig
    metadata: dict[str, Any]
    paths: dict[str, Path]

    @property
    def encoder(self) -> Path:
        return self.paths["encoder"]

    @property
    def conditioner(self) -> Path:
        return self.paths["conditioner"]

    @property
    def decoder_step(self) -> Path:
        return self.paths["decoder_step"]

    @property
    def source(self) -> Path | None:
        """The learned source's amplitudes graph (None for models without one)."""
        return self.paths.get("source")

    @property
    def weights_sha256(self) -> str:
        return self.metadata["weights_sha256"]

    @property
    def decoding(self) -> Decoding:
        """The decoding settings the export recommends (defaults for exports without any)."""
        return Decoding.from_dict(self.metadata.get("decoding", {}))

    @property
    def level(self) -> Level | None:
        """The export's level calibration (None for exports without one: gain 1)."""
        data = self.metadata.get(LEVEL_KEY)
        return None if data is None else Level.from_dict(data)


def short_json(value: Any, width: int = 120) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first (dotted path, a's value, b's value) where two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (path, a, b)


def _check_metadata(where: Path, metadata: dict[str, Any]) -> ModelConfig:
    """Format, version, required keys and config of one metadata dict; returns the config."""
    if metadata.get("format") != FORMAT:
        raise UserError(f"{where}: not an nsynth-live export (format {metadata.get('format')!r}, expected {FORMAT!r})")
    if metadata.get("exporter_version") != EXPORTER_VERSION:
        raise UserError(
            f"{where}: exporter version {metadata.get('exporter_version')!r}, this host reads version "
            f"{EXPORTER_VERSION} (re-export the checkpoint)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise UserError(f"{where}: metadata lacks {', '.join(missing)}")
    try:
        Decoding.from_dict(metadata.get("decoding", {}))
    except ValueError as err:
        raise UserError(f"{where}: bad decoding settings ({err})") from None
    try:
        return ModelConfig.from_dict(metadata["config"])
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: bad config in metadata ({err})") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file (one-line UserError naming the file if unreadable or not JSON)."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: unreadable ({err})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def read_model_json(path: Path) -> dict[str, Any]:
    """Parse model.json (one-line UserError if missing or not a JSON object)."""
    if not path.is_file():
        raise UserError(f"{path}: missing")
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object")
    return data


def load_onnx(path: Path) -> Any:
    """``onnx.load`` + ``onnx.checker`` with one-line errors naming the file."""
    import onnx

    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf and the checker raise many types for corrupt files
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not a valid ONNX file ({msg[:200]})") from None
    return model


_DTYPES = {1: "float32", 7: "int64", 11: "float64"}  # onnx.TensorProto elem types the graphs use


def _io(value_infos: Any) -> list[dict[str, Any]]:
    """Graph inputs or outputs as metadata-style specs: name, shape (symbolic dims as strings), dtype."""
    specs = []
    for v in value_infos:
        t = v.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
        specs.append({"name": v.name, "shape": shape, "dtype": _DTYPES.get(t.elem_type, str(t.elem_type))})
    return specs


def _check_file(path: Path, role: str, model: Any, reference: dict[str, Any], verify_weights: bool) -> None:
    """One ONNX file's metadata, graph signature and (optionally) weights against model.json."""
    try:
        metadata, file_role = from_props({p.key: p.value for p in model.metadata_props})
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    if not metadata:
        raise UserError(f"{path}: no nsynth-live metadata in metadata_props (not written by `nsynth-live export`)")
    _check_metadata(path, metadata)
    if file_role != role:
        raise UserError(f"{path}: metadata says this is the {file_role!r} graph, expected {role!r}")
    diff = first_difference(metadata, {k: v for k, v in reference.items() if k not in JSON_ONLY_KEYS}, "")
    if diff:
        key, mine, theirs = diff
        raise UserError(
            f"{path}: metadata {key.lstrip('.')!r} disagrees with {MODEL_JSON} ({short_json(mine)} vs {short_json(theirs)})"
        )
    spec = reference["tensors"].get(role, {})
    for kind, actual in (("inputs", _io(model.graph.input)), ("outputs", _io(model.graph.output))):
        diff = first_difference(actual, spec.get(kind, []), kind)
        if diff:
            where, mine, theirs = diff
            raise UserError(f"{path}: graph {where} is {short_json(mine)}, metadata says {short_json(theirs)}")
    if verify_weights:
        digest = initializers_sha256(model)
        if digest != reference["initializers_sha256"].get(role):
            raise UserError(
                f"{path}: weights hash {digest[:12]}... is not the recorded "
                f"{str(reference['initializers_sha256'].get(role))[:12]}... (file changed after export?)"
            )


def load_export(root: str | Path, verify_weights: bool = True) -> ExportInfo:
    """Validate an export directory and describe it.

    Args:
        root: the directory written by ``nsynth-live export``.
        verify_weights: recompute every file's initializer hash (reads all weights once: ~0.5 s
            for the paper config).

    Returns:
        :class:`ExportInfo`.

    Raises:
        UserError: one line naming the file and what is wrong with it.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no export directory there")
    reference = read_model_json(root / MODEL_JSON)
    config = _check_metadata(root / MODEL_JSON, reference)
    if LEVEL_KEY in reference:
        try:
            Level.from_dict(reference[LEVEL_KEY])
        except (TypeError, ValueError) as err:
            raise UserError(f"{root / MODEL_JSON}: bad level calibration ({err})") from None
    files = files_for(config)
    per_file = reference["initializers_sha256"]
    if not isinstance(per_file, dict) or sorted(per_file) != sorted(files):
        raise UserError(f"{root / MODEL_JSON}: initializers_sha256 must name {', '.join(sorted(files))}")
    if combined_sha256(per_file) != reference["weights_sha256"]:
        raise UserError(f"{root / MODEL_JSON}: weights_sha256 is not the hash of initializers_sha256")
    paths = {}
    for role, name in files.items():
        path = root / name
        _check_file(path, role, load_onnx(path), reference, verify_weights)
        paths[role] = path
    return ExportInfo(root=root, config=config, metadata=reference, paths=paths)


# ----------------------------------------------------------------------------- weights


def read_initializers(path: str | Path) -> dict[str, np.ndarray]:
    """Every initializer of an ONNX file as a C-contiguous numpy array, by name."""
    from onnx import numpy_helper

    model = load_onnx(Path(path))
    return {t.name: np.ascontiguousarray(numpy_helper.to_array(t)) for t in model.graph.initializer}


def _pick(path: str | Path, inits: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    missing = [n for n in names if n not in inits]
    if missing:
        raise UserError(f"{path}: initializers {', '.join(missing[:4])} missing (not an nsynth-live export?)")
    return {n: inits[n].astype(np.float32, copy=False) for n in names}


def step_weight_names(n_layers: int) -> list[str]:
    """The StepWeights field paths of a decoder with ``n_layers`` layers, in field order."""
    names = ["start_w", "start_b"]
    for i in range(n_layers):
        names += [f"layers.{i}.gate_w", f"layers.{i}.out_w", f"layers.{i}.out_b"]
    return names + ["out1_w", "logits_w", "logits_b"]


def step_weights_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """The fused step weights stored in ``decoder_step.onnx``.

    Returns:
        {StepWeights field path: float32 array}; shapes in this module's docstring.
    """
    inits = read_initializers(path)
    n_layers = sum(1 for n in inits if n.startswith("layers.") and n.endswith(".gate_w"))
    # exc_w [2H, L*2R+S] exists only in models with a sinusoidal excitation.
    return _pick(path, inits, step_weight_names(n_layers) + (["exc_w"] if "exc_w" in inits else []))


def cond_weights_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """The stacked conditioning projections stored in ``conditioner.onnx``.

    Returns:
        {"embed_w": [bottleneck, C], "pitch_w": [128, C] (pitch-conditioned models only),
        "bias": [C]} float32, with C = L*2R + S.
    """
    inits = read_initializers(path)
    return _pick(path, inits, ["embed_w", "bias"] + (["pitch_w"] if "pitch_w" in inits else []))
