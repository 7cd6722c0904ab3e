"""Offline rendering through an engine: many voices, many blocks, from per-frame conditioning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE, sampling
from nsynth_live.configs import N_CLASSES, ModelConfig
from nsynth_live.host.engines.interface import Engine


def voice_excitation(cfg: ModelConfig, pitch: Sequence[int] | np.ndarray, start: Any, n: int,
                     gain: float = 1.0) -> np.ndarray:
    """The excitation of voices at ``pitch`` for samples ``start .. start + n - 1`` of their notes.

    Args:
        gain: factor on the excitation (:class:`nsynth_live.sampling.Decoding`).

    Returns:
        float32 [V, n, 2H] (the layout :meth:`Engine.render` takes).
    """
    from nsynth_live.excitation import excitation

    e = excitation(np.asarray(pitch, np.int64), n, cfg.excitation_harmonics, start=start, sample_rate=SAMPLE_RATE)
    if gain != 1.0:
        e *= np.float32(gain)
    return np.ascontiguousarray(e.transpose(0, 2, 1))


def render_frames(
    engine: Engine,
    slots: Sequence[int],
    cond: np.ndarray,
    n_samples: int,
    noise: sampling.NoiseStream | np.ndarray,
    temperature: float | None = None,
    block: int | None = None,
    logits_out: np.ndarray | None = None,
    pitch: Sequence[int] | np.ndarray | None = None,
    excitation_gain: float | None = None,
) -> np.ndarray:
    """Render ``n_samples`` per voice from per-frame conditioning, in blocks (offline use).

    Sample t uses frame t // hop, as :func:`nsynth_live.generate.generate_classes` does; blocks of
    ``block`` samples (default hop) may straddle frame boundaries.

    Args:
        engine: an engine; ``slots`` must be active voices starting at position 0 for the result to
            equal the PyTorch generator's.
        slots: [V] slots.
        cond: float32 [V, F, C] from :meth:`Engine.condition`; F * hop >= n_samples.
        n_samples: samples per voice.
        noise: a NoiseStream over the V voices, or float64 [V, n_samples].
        temperature: > 0; None: the export's recommended one (:attr:`Engine.decoding`).
        block: samples per render call (1 .. hop).
        logits_out: optional float32 [V, n_samples, 256].
        pitch: [V] MIDI notes, for models with an excitation (its f0).
        excitation_gain: >= 0; None: the export's recommended one.

    Returns:
        int64 [V, n_samples].
    """
    decoding = engine.decoding.override(temperature, excitation_gain)
    hop = engine.cfg.hop
    block = block or hop
    if not 1 <= block <= hop:
        raise ValueError(f"block must be 1..{hop}, got {block}")
    if cond.shape[1] * hop < n_samples:
        raise ValueError(f"{cond.shape[1]} frames do not cover {n_samples} samples")
    out = np.empty((len(slots), n_samples), np.int64)
    padded = np.concatenate([cond, cond[:, -1:]], 1)  # row 1 of the last frame is never used
    for t0 in range(0, n_samples, block):
        n = min(block, n_samples - t0)
        frame = t0 // hop
        u = noise.draw(n) if isinstance(noise, sampling.NoiseStream) else noise[:, t0 : t0 + n]
        switch = np.full(len(slots), hop - t0 % hop, np.int64)
        lo = None if logits_out is None else np.empty((len(slots), n, N_CLASSES), np.float32)
        exc = None
        if pitch is not None and engine.cfg.excitation_harmonics:
            exc = voice_excitation(engine.cfg, pitch, t0, n, decoding.excitation_gain)
        out[:, t0 : t0 + n] = engine.render(slots, padded[:, frame : frame + 2], switch, u, decoding.temperature,
                                            logits_out=lo, exc=exc)
        if lo is not None:
            logits_out[:, t0 : t0 + n] = lo
    return out
