"""``calibrate-level``: measure an export's loudest notes and record the output gain in model.json.

The calibration renders every preset of a bank at a spread of pitches exactly as ``render-bank``
renders its notes (:func:`host.render_bank.render_notes`: velocity 127, the export's recommended
decoding, the same seed rule), records each preset's loudest peak and the loudest of all, and
writes :class:`nsynth_live.level.Level` into ``model.json`` (its ``level`` key). A render then
scales its output by ``10 ** (target / 20) / reference``, the reference being the loudest peak
of the presets it plays: one gain per render, so a bank's velocity layers, shards and resumed
runs all carry the same one.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nsynth_live.atomic import atomic_write_bytes
from nsynth_live.errors import UserError
from nsynth_live.model_format import MODEL_JSON
from nsynth_live.host.bank import Bank
from nsynth_live.host.engines import Engine
from nsynth_live.host.model_files import ExportInfo, load_export, read_model_json
from nsynth_live.host.render_bank import items_of, note_lengths, preset_sounds, render_notes
from nsynth_live.level import DEFAULT_TARGET_DBFS, LEVEL_KEY, Level, sound_key, to_dbfs

PITCHES = (36, 48, 60, 72, 84)
"""Calibration pitches: C2..C6, the range the presets play in tune."""


def calibrate_level(engine: Engine, info: ExportInfo, bank: Bank, pitches: Sequence[int] = PITCHES,
                    seconds: float = 2.0, seed: int = 0, target_dbfs: float = DEFAULT_TARGET_DBFS,
                    batch: int = 32) -> Level:
    """Render the calibration notes and describe their level.

    Args:
        engine: an open engine of ``info``'s model with at least ``batch`` voice slots.
        info: the export; its recommended decoding is used.
        bank: presets to render (all of them).
        pitches: MIDI notes; seconds: note length (the key goes up as in render-bank).
        seed: noise seed (render-bank's note-id rule).
        target_dbfs: the peak level the export will recommend.
        batch: notes rendered together.

    Returns:
        the :class:`Level` (reference = the loudest note's peak at gain 1).

    Raises:
        UserError: every calibration note is silent.
    """
    n_samples, hold = note_lengths(seconds)
    dec = info.decoding
    items = items_of(preset_sounds(bank), list(pitches))
    peaks: list[float] = []
    for c0 in range(0, len(items), batch):
        audio = render_notes(engine, items[c0 : c0 + batch], n_samples, hold, seed, dec.temperature,
                             dec.excitation_gain)  # [B, n_samples]
        peaks += [float(p) for p in np.abs(audio).max(axis=1)]
    reference = max(peaks)
    if reference <= 0:
        raise UserError(f"bank {bank.path}: every calibration note is silent")
    loudest = items[peaks.index(reference)]
    presets: dict[str, dict[str, object]] = {}
    for it, peak in zip(items, peaks):
        name, sha = sound_key(it.sound.name, it.sound.embedding)
        entry = presets.setdefault(name, {"peak": 0.0, "sha256": sha})
        entry["peak"] = max(float(entry["peak"]), peak)  # type: ignore[arg-type]
    presets = {k: v for k, v in presets.items() if float(v["peak"]) > 0}  # type: ignore[arg-type]
    return Level(reference_peak=reference, target_dbfs=target_dbfs, presets=presets, calibration={
        "bank": bank.name, "presets": len(bank.presets), "pitches": list(pitches), "seconds": seconds,
        "seed": seed, "velocity": 127, "temperature": dec.temperature, "excitation_gain": dec.excitation_gain,
        "engine": engine.name, "notes": len(items), "loudest": f"{loudest.sound.name} pitch {loudest.pitch}",
        "median_peak_dbfs": round(to_dbfs(statistics.median(peaks)), 2),
    })


def write_level(export_dir: str | Path, level: Level) -> ExportInfo:
    """Record ``level`` in the export's model.json (atomically) and load the export back.

    Only model.json changes: ``level`` is not part of the ONNX files' metadata, so the graphs and
    their weights hashes stay as exported.
    """
    root = Path(export_dir)
    path = root / MODEL_JSON
    metadata = read_model_json(path)
    metadata[LEVEL_KEY] = level.to_dict()
    try:
        atomic_write_bytes(path, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    return load_export(root)
