"""Offline rendering through an engine: many voices, many blocks, from per-frame conditioning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE, mulaw, sampling
from nsynth_live.configs import N_CLASSES, ModelConfig
from nsynth_live.excitation import excitation, free_phase, upsample_frames
from nsynth_live.host.engines.block_source import amps_source, frame_span, rows_source
from nsynth_live.host.engines.interface import Engine
from nsynth_live.residual import add_source


def voice_excitation(cfg: ModelConfig, pitch: Sequence[int] | np.ndarray, start: Any, n: int,
                     gain: float = 1.0, amplitudes: np.ndarray | None = None) -> np.ndarray:
    """The excitation of voices at ``pitch`` for samples ``start .. start + n - 1`` of their notes.

    Args:
        cfg: the model's config: a fixed sine (``excitation_harmonics``) or a learned source
            (``source_harmonics``).
        pitch: [V] MIDI notes.
        start: first sample since note-on (an int, or [V] for the sine).
        n: samples.
        gain: factor on the excitation (:class:`nsynth_live.sampling.Decoding`).
        amplitudes: float32 [V, F, K], the learned source's amplitudes of the notes' frames from
            note-on (:meth:`Engine.source_amplitudes`); required exactly for a learned source.
            Between frames they are interpolated as in training.

    Returns:
        float32 [V, n, E] (the layout :meth:`Engine.render` takes).
    """
    if cfg.source_harmonics:
        if amplitudes is None:
            raise ValueError("this model has a learned source: pass its amplitudes (Engine.source_amplitudes)")
        if np.ndim(start) != 0:
            raise ValueError("a learned source's excitation takes one start sample for all voices (an int)")
        if amplitudes.ndim != 3 or amplitudes.shape[2] != cfg.source_harmonics:
            raise ValueError(f"amplitudes must be [V, F, {cfg.source_harmonics}], got {amplitudes.shape}")
        rows, ia, ib, w = frame_span(amplitudes, n, cfg.hop, int(start))
        return rows_source(rows, ia, ib, w, free_phase(np.asarray(pitch, np.int64), n, int(start), SAMPLE_RATE), gain)[0]
    e = excitation(np.asarray(pitch, np.int64), n, cfg.excitation_harmonics, start=start, sample_rate=SAMPLE_RATE)
    if gain != 1.0:
        e *= np.float32(gain)
    return np.ascontiguousarray(e.transpose(0, 2, 1))


def source_excitation(amps: np.ndarray, pitch: Sequence[int] | np.ndarray, start: Any, gain: float = 1.0,
                      with_level: bool = False, phase: np.ndarray | None = None
                      ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The learned source as the decoder hears it (:func:`nsynth_live.excitation.unit_source`)
    from per-sample amplitudes, on the free-running phase since note-on (or ``phase``).

    Args:
        amps: float32 [V, K, n] harmonic amplitudes of each sample.
        pitch: [V] MIDI notes; start: first sample since note-on (int or [V]).
        gain: factor on the excitation.
        with_level: also return the source at its own level, [V, n] float32 (no gain): what a
            residual-form model's note adds to its sampled residual (:mod:`nsynth_live.residual`).
        phase: float64 [V, n] fundamental phase instead of the free-running one (a teacher-forced
            score's locked phase, :meth:`nsynth_live.evaluate.EngineBackend.nll_and_embedding`).

    Returns:
        float32 [V, n, 2] (and the [V, n] source at its level, with ``with_level``).
    """
    if phase is None:
        phase = free_phase(np.asarray(pitch, np.int64), amps.shape[2], start, SAMPLE_RATE)
    exc, level = amps_source(amps, phase, gain, with_level)
    return (exc, level) if with_level else exc


def source_level(cfg: ModelConfig, amplitudes: np.ndarray, pitch: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """A learned source at its own level over the first ``n`` samples of whole notes (what a
    residual-form model adds to its sampled residual; :func:`nsynth_live.residual.add_source`).

    Args:
        cfg: the model's config; amplitudes: float32 [V, F, K] per frame from note-on
            (:meth:`Engine.source_amplitudes`); pitch: [V] MIDI notes; n: samples.

    Returns:
        float32 [V, n].
    """
    amps = upsample_frames(np.asarray(amplitudes, np.float32).transpose(0, 2, 1), n, cfg.hop, 0)
    return source_excitation(amps, pitch, 0, with_level=True)[1]


def note_audio(cfg: ModelConfig, classes: np.ndarray, amplitudes: np.ndarray | None,
               pitch: Sequence[int] | np.ndarray | None, noise: np.ndarray | None = None) -> np.ndarray:
    """Whole notes' audio from their rendered classes: mu-law decoded, plus the source for a
    residual-form model (:mod:`nsynth_live.residual`), the one place offline renders do this.

    Args:
        cfg: the model's config; classes: int [V, n] from note-on.
        amplitudes: float32 [V, F, K] the learned source's per frame (residual-form models only).
        pitch: [V] MIDI notes.
        noise: float32 [V, n] the notes' measured noise (:func:`nsynth_live.noise.note_noise`),
            added with the source (residual-form models only; None: none).

    Returns:
        float32 [V, n] in [-1, 1].
    """
    audio = mulaw.decode(classes)
    if not cfg.source_residual:
        return audio
    if amplitudes is None or pitch is None:
        raise ValueError("a residual-form model's notes need their source's amplitudes and pitch")
    source = source_level(cfg, amplitudes, pitch, audio.shape[-1])
    if noise is not None:
        source += np.asarray(noise, np.float32)[:, : audio.shape[-1]]
    return add_source(audio, source)


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
    excitation: np.ndarray | None = None,
    amplitudes: np.ndarray | None = None,
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
        excitation: optional float32 [V, n_samples, E], the whole excitation precomputed (gain
            included), in place of the one derived from ``pitch``.
        amplitudes: float32 [V, F, K], a learned source's amplitudes per frame
            (:meth:`Engine.source_amplitudes`; models with ``source_harmonics``).

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
        if excitation is not None:
            exc = np.ascontiguousarray(excitation[:, t0 : t0 + n])
        elif pitch is not None and engine.cfg.excitation_channels:
            exc = voice_excitation(engine.cfg, pitch, t0, n, decoding.excitation_gain, amplitudes)
        out[:, t0 : t0 + n] = engine.render(slots, padded[:, frame : frame + 2], switch, u, decoding.temperature,
                                            logits_out=lo, exc=exc)
        if lo is not None:
            logits_out[:, t0 : t0 + n] = lo
    return out
