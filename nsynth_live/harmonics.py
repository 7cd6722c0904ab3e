"""A preset's harmonic envelope: measured once from its source note, played at any pitch.

A model with a learned source (``source_harmonics``) takes, per frame, the amplitudes of
harmonics 1..K of the note it plays. Its source network predicts them from the embedding and
pitch; a preset may instead carry the amplitudes measured from its own source note (a bank's
``harmonics_file``), which the engines play in the network's place: harmonic k keeps its
measured amplitude at every pitch, as a sampler transposes a note, and those at or above Nyquist
are silent. Measured in session 8 on the 216-note evaluation (docs/evaluation.md): the source
network's amplitudes alone name the instrument 11-12% of the time, the preset's measured ones
35%, and played through the residual-form decoder 37.5% at 98.6% in tune.

Numpy only: the realtime host, ``encode`` and render-bank use it without torch.
"""

from __future__ import annotations

import math

import numpy as np

from nsynth_live.excitation import audible, midi_to_hz

PERIODS = 4.0
"""Measurement window in periods of f0, as :func:`nsynth_live.excitation.measured_amplitudes`."""


def measure(audio: np.ndarray, pitch: np.ndarray, harmonics: int, hop: int, frames: int,
            sample_rate: int = 16000) -> np.ndarray:
    """Each harmonic's amplitude at every frame start of notes, over a window of whole periods
    centred there: :func:`nsynth_live.excitation.measured_amplitudes` without torch (tested equal).

    Args:
        audio: float32 [B, T] notes; pitch: [B] their MIDI pitches; harmonics: K; hop: samples
            per frame.
        frames: F rows to return (the last measured frame is held past the audio's end).

    Returns:
        float32 [B, F, K], zero at and above Nyquist.
    """
    x = np.asarray(audio, np.float64)
    b, n = x.shape
    f0 = midi_to_hz(np.asarray(pitch, np.int64))  # [B]
    width = np.clip(np.round(PERIODS * sample_rate / f0), 64, 2048).astype(np.int64)
    starts = np.arange(0, n, hop)
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    out = np.zeros((b, len(starts), harmonics))
    for i in range(b):
        w = int(width[i])
        lo = np.clip(starts - w // 2, 0, n)
        hi = np.minimum(lo + w, n)
        j = np.arange(w)
        idx = lo[:, None] + j  # [F', W]
        windows = np.where(idx < hi[:, None], x[i, np.minimum(idx, n - 1)], 0.0)
        turns = np.remainder(k[None, :] * (f0[i] * j[:, None] / sample_rate), 1.0) * (2 * math.pi)  # [W, K]
        re, im = windows @ np.cos(turns), windows @ np.sin(turns)
        count = np.maximum(hi - lo, 1).astype(np.float64)[:, None]
        out[i] = 2 * np.sqrt(re * re + im * im) / count
    out *= audible(np.asarray(pitch, np.int64), harmonics, sample_rate)[:, None, :]
    return fit_frames(out.astype(np.float32), frames)


def fit_frames(amplitudes: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` rows of [..., F', K], the last row held when there are fewer."""
    have = amplitudes.shape[-2]
    if have >= frames:
        return np.ascontiguousarray(amplitudes[..., :frames, :])
    pad = np.repeat(amplitudes[..., -1:, :], frames - have, axis=-2)
    return np.ascontiguousarray(np.concatenate([amplitudes, pad], axis=-2))


def at_pitch(harmonics: np.ndarray, pitch: np.ndarray, k: int, sample_rate: int = 16000) -> np.ndarray:
    """Voices' measured envelopes as the amplitudes a model with K source harmonics plays.

    Harmonic i keeps its amplitude whatever the pitch (a sampler's transposition); the first K
    are taken, missing ones are 0, and those at or above Nyquist at the voice's pitch are 0.

    Args:
        harmonics: float32 [V, F, K'] measured envelopes (a preset's, or a blend of them).
        pitch: [V] MIDI notes played; k: the model's K.

    Returns:
        float32 [V, F, K] (:meth:`nsynth_live.host.engines.Engine.source_amplitudes`' layout).
    """
    h = np.asarray(harmonics, np.float32)
    have = h.shape[-1]
    if have >= k:
        h = h[..., :k]
    else:
        h = np.concatenate([h, np.zeros(h.shape[:-1] + (k - have,), np.float32)], -1)
    live = audible(np.asarray(pitch, np.int64), k, sample_rate).astype(np.float32)  # [V, K]
    return np.ascontiguousarray(h * live[:, None, :])
