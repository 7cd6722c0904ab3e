"""Output level: the one gain that brings a model's notes near full scale (no torch).

A model reproduces its training notes' level (FluidSynth renders quietly: the shipped default's
loudest notes peak near -19 dBFS), so every player scales its output by one gain. An export
may carry a calibration (``model.json``'s ``level``, written by ``nsynth-live calibrate-level``):

``{"reference_peak": P, "target_dbfs": T, "presets": {name: {"peak": p, "sha256": h}}, "calibration": {...}}``

A calibration renders every preset of a bank at a spread of pitches at gain 1 (velocity 127, the
export's recommended decoding); ``p`` is a preset's loudest peak (``h``: a hash of its
trajectory, so a same-named preset of another bank does not match) and ``P`` the loudest of all.
A render whose sounds are all calibrated presets takes the loudest of their peaks as its
reference, any other sound (another bank's preset, a blend) the overall ``P``; the gain that
brings the reference to ``L`` dBFS is ``10 ** (L / 20) / reference``, and ``T`` is the level the
export recommends. One gain per render: velocity layers keep their relation, and a bank's notes
all carry the same gain, so resumed and sharded renders agree. An export without ``level``
plays at gain 1.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVEL_KEY = "level"
"""The optional key of ``model.json`` (not in the ONNX files' metadata: it is measured after the
export, from a bank, and changes no graph)."""

DEFAULT_TARGET_DBFS = -3.0
"""The peak a calibration recommends: near full scale with headroom for louder pitches."""

_DBFS = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(?:dBFS|dbfs|dB|db)?\s*$")


def parse_dbfs(text: str) -> float:
    """``"-3"``, ``"-3dBFS"`` or ``"-1.5 dB"`` -> -3.0 etc.; must be a finite level <= 0 dBFS.

    Raises:
        ValueError: anything else (the message names the text).
    """
    m = _DBFS.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a level in dBFS like -3 or -3dBFS")
    value = float(m.group(1))
    if not (math.isfinite(value) and -60.0 <= value <= 0.0):
        raise ValueError(f"{text!r}: a peak level must be -60..0 dBFS")
    return value


def sound_key(name: str, embedding: np.ndarray) -> tuple[str, str]:
    """(name, hash of the trajectory float32 [frames, bottleneck]): how a calibration knows a preset."""
    return name, hashlib.sha256(np.ascontiguousarray(embedding, np.float32).tobytes()).hexdigest()[:16]


def to_dbfs(peak: float) -> float:
    """A linear peak (0..1 is full scale) in dBFS (-inf for silence)."""
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


@dataclass(frozen=True)
class Level:
    """An export's level calibration (``model.json``'s ``level``).

    Attributes:
        reference_peak: the loudest peak of the calibration render at gain 1, in (0, 1].
        target_dbfs: the peak level the export recommends, -60..0 dBFS.
        presets: calibrated preset name -> {"peak": its loudest peak, "sha256": its trajectory's hash}.
        calibration: how the peaks were measured (bank, pitches, seconds, seed, decoding).
    """

    reference_peak: float
    target_dbfs: float = DEFAULT_TARGET_DBFS
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.reference_peak
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (math.isfinite(p) and 0 < p <= 1):
            raise ValueError(f"level reference_peak must be a number in (0, 1], got {p!r}")
        t = self.target_dbfs
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(t) and -60 <= t <= 0):
            raise ValueError(f"level target_dbfs must be -60..0, got {t!r}")
        if not isinstance(self.calibration, Mapping):
            raise ValueError("level calibration must be an object")
        if not isinstance(self.presets, Mapping):
            raise ValueError("level presets must be an object")
        for name, entry in self.presets.items():
            peak = entry.get("peak") if isinstance(entry, Mapping) else None
            if (isinstance(peak, bool) or not isinstance(peak, numbers.Real) or not 0 < peak <= self.reference_peak
                    or not isinstance(entry.get("sha256"), str)):
                raise ValueError(f"level presets {name!r} must be {{\"peak\": 0 < peak <= reference_peak, "
                                 f"\"sha256\": hash}}, got {entry!r}")

    def reference(self, sounds: Sequence[tuple[str, str]] | None = None) -> float:
        """The peak a render of ``sounds`` is scaled by.

        Args:
            sounds: (preset name, trajectory hash) of everything the render may play; None: anything.

        Returns:
            the loudest calibrated peak among them, or :attr:`reference_peak` if any of them is
            not a calibrated preset (or ``sounds`` is None).
        """
        if not sounds:
            return self.reference_peak
        peaks = []
        for name, sha in sounds:
            entry = self.presets.get(name)
            if entry is None or entry["sha256"] != sha:
                return self.reference_peak
            peaks.append(float(entry["peak"]))
        return max(peaks)

    def gain(self, target_dbfs: float | None = None, sounds: Sequence[tuple[str, str]] | None = None) -> float:
        """The output gain that brings the reference peak of ``sounds`` to ``target_dbfs``.

        Args:
            target_dbfs: default: the recommended :attr:`target_dbfs`.
            sounds: as :meth:`reference`.
        """
        t = self.target_dbfs if target_dbfs is None else target_dbfs
        return 10.0 ** (t / 20.0) / self.reference(sounds)

    def to_dict(self) -> dict[str, Any]:
        return {"reference_peak": float(self.reference_peak), "target_dbfs": float(self.target_dbfs),
                "presets": {k: dict(v) for k, v in self.presets.items()}, "calibration": dict(self.calibration)}

    @classmethod
    def from_dict(cls, data: Any) -> "Level":
        """Parse ``model.json``'s ``level``.

        Raises:
            ValueError: not an object, a missing or unknown key, or a bad value (named).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"level must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"reference_peak", "target_dbfs", "presets", "calibration"})
        if unknown:
            raise ValueError(f"level has unknown key(s) {', '.join(map(repr, unknown))}")
        if "reference_peak" not in data:
            raise ValueError("level lacks reference_peak")
        return cls(**data)


@dataclass(frozen=True)
class OutputGain:
    """The gain a render or the live host applies, and where it came from (for manifests and logs).

    Attributes:
        gain: factor on every sample (velocity scaling stays relative to it).
        target_dbfs: the peak level asked for, or None (off, or an uncalibrated export).
        reference_peak: the calibrated peak the gain brings to the target, or None.
        source: ``model.json level``, ``--level``, ``off`` or ``uncalibrated export``.
    """

    gain: float
    target_dbfs: float | None
    reference_peak: float | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"gain": self.gain, "target_dbfs": self.target_dbfs, "reference_peak": self.reference_peak,
                "source": self.source}


def output_gain(level: Level | None, target_dbfs: float | None = None, off: bool = False,
                sounds: Sequence[tuple[str, str]] | None = None, where: str = "the model") -> OutputGain:
    """The output gain of a render.

    Args:
        level: the export's calibration, or None (an export without ``level``).
        target_dbfs: a peak level asked for (``--level``); None: the export's recommended one.
        off: no gain at all (``--level off``): the model's own level.
        sounds: (preset name, trajectory hash) of what the render may play (:meth:`Level.reference`).
        where: names the export in the error.

    Raises:
        ValueError: a target asked of an export that has no calibration.
    """
    if off:
        return OutputGain(1.0, None, None, "off")
    if level is None:
        if target_dbfs is not None:
            raise ValueError(f"{where} has no level calibration (model.json 'level'); add one with "
                             "`nsynth-live calibrate-level --model EXPORT`, or pass --level off")
        return OutputGain(1.0, None, None, "uncalibrated export")
    ref = level.reference(sounds)
    target = level.target_dbfs if target_dbfs is None else target_dbfs
    return OutputGain(10.0 ** (target / 20.0) / ref, target, ref, "model.json level" if target_dbfs is None else "--level")
