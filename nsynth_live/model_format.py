"""The export format's contract: file names, metadata keys, weight hashes (torch-free).

Both sides use this module: :mod:`nsynth_live.exporters.export` writes the metadata,
:mod:`nsynth_live.host.model_files` checks it. It lives outside both packages and imports only
numpy, onnx and :mod:`nsynth_live.configs`, so the torch-free host depends on the contract, not on
the exporter (an import contract in pyproject.toml keeps it so).

Metadata is one JSON-able dict. ``model.json`` holds it as is; every ONNX file holds the same
dict in its ``metadata_props``, one entry per top-level key (``nsynth_live.<key>`` -> the key's
value as a JSON string), plus ``nsynth_live.role`` naming the file's role. The weights hash of a
file is a sha256 over its initializers in a canonical order (sorted by name; name, dtype, shape
and little-endian bytes of each), so it does not depend on protobuf serialisation details.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

FORMAT = "nsynth-live-onnx"
"""Value of the ``format`` key."""

EXPORTER_VERSION = 1
"""Bumped whenever the graphs' contract (names, shapes, semantics) or the metadata changes."""

MODEL_JSON = "model.json"

FILES: dict[str, str] = {
    "encoder": "encoder.onnx",
    "conditioner": "conditioner.onnx",
    "decoder_step": "decoder_step.onnx",
}
"""Role -> file name inside every export directory."""

SOURCE_FILES: dict[str, str] = {"source": "source.onnx"}
"""The extra graph of models with a learned harmonic source (``source_harmonics`` > 0):
``embedding [B, bottleneck, F]`` + ``pitch [B]`` -> ``amplitudes [B, F, K]``, the per-frame
amplitudes of harmonics 1..K from which the host synthesises the decoder's excitation
(:func:`nsynth_live.excitation.unit_source`). Exports of other models have no such file, so
older exports stay valid as they are."""


def files_for(config: Any) -> dict[str, str]:
    """Role -> file name of the export of a model with ``config`` (a :class:`ModelConfig`)."""
    return {**FILES, **SOURCE_FILES} if getattr(config, "source_harmonics", 0) else dict(FILES)

PROP_PREFIX = "nsynth_live."
ROLE_PROP = PROP_PREFIX + "role"

REQUIRED_KEYS = (
    "format", "exporter_version", "config", "sample_rate", "hop", "mu", "n_classes", "dilations",
    "kernel", "receptive_field", "history_per_layer", "history_length", "cond_width", "tensors",
    "initializers_sha256", "weights_sha256", "source",
)
"""Keys every export has. ``decoding`` (:class:`nsynth_live.sampling.Decoding` as a dict: the
temperature and excitation gain the export recommends) is optional: an export without it
decodes with temperature 1 and excitation gain 1."""

JSON_ONLY_KEYS = ("level",)
"""Optional keys that ``model.json`` holds and the ONNX files need not: measured after the export
and changing no graph. ``level`` (:class:`nsynth_live.level.Level` as a dict: the loudest peak of
a calibration render and the peak level the export recommends, written by ``nsynth-live
calibrate-level``) sets the output gain of every player; an export without it plays at gain 1."""


def array_digest(h: "hashlib._Hash", name: str, array: np.ndarray) -> None:
    """Feed one named tensor into a running sha256 (name, dtype, shape, little-endian bytes)."""
    a = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    h.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
    h.update(a.tobytes())


def initializers_sha256(model: Any) -> str:
    """sha256 of an ONNX model's initializers in canonical order (sorted by name).

    Args:
        model: an ``onnx.ModelProto``.
    """
    from onnx import numpy_helper

    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda t: t.name):
        array_digest(h, init.name, numpy_helper.to_array(init))
    return h.hexdigest()


def combined_sha256(per_file: dict[str, str]) -> str:
    """The export's weights hash: sha256 over the per-file hashes, by role name."""
    text = "".join(f"{role}:{per_file[role]}\n" for role in sorted(per_file))
    return hashlib.sha256(text.encode()).hexdigest()


def to_props(metadata: dict[str, Any], role: str) -> dict[str, str]:
    """The ``metadata_props`` entries of one file: each top-level key JSON-encoded."""
    props = {PROP_PREFIX + k: json.dumps(v, sort_keys=True) for k, v in metadata.items()}
    props[ROLE_PROP] = json.dumps(role)
    return props


def from_props(props: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """Inverse of :func:`to_props`: (metadata dict, role or None).

    Raises:
        ValueError: a value is not valid JSON (the message names the key).
    """
    metadata: dict[str, Any] = {}
    role = None
    for key, value in props.items():
        if not key.startswith(PROP_PREFIX):
            continue
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"metadata {key!r} is not valid JSON ({err.msg})") from None
        if key == ROLE_PROP:
            role = decoded
        else:
            metadata[key[len(PROP_PREFIX):]] = decoded
    return metadata, role
