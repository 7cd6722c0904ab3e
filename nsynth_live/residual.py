"""LPCNet's residual form for a learned source (configs with ``source_residual``).

The decoder of such a model never sees the note itself: it models the part of the note its
source misses, ``r = x - s``, where ``s`` is the source's harmonic sum at the audio's own level
(:meth:`nsynth_live.decoder.Decoder.source` with ``raw``), its channel in phase with the note
(:data:`IN_PHASE`). In training its input is the mu-law past of ``r`` and its softmax target
``r``'s class, with ``s`` the learned source of the crop's own embedding on the locked phase
(which lines up the fundamental only), or, for the crops ``--source-forcing`` picks, the source
measured from the crop's own past (every harmonic's amplitude and phase), detached either way:
the target is a class, nothing flows back through it. At generation the engines sample ``r``
exactly as any other model's samples, on the free-running phase, and the note is ``s + r``: the
source is meant to be the floor of the sound, where the plain form's decoder could shrink its
source away (measured in session 6: 14-18% identity from a source that alone names 51%).
Measured in session 8 (docs/evaluation.md): generating at pitch lock 1 with a measured source,
the sampled residual is 3-5% of the source's RMS (teacher-forced the true residual is about a
quarter of it), so the note keeps its source; at pitch lock 3.5 the decoder hears its source
louder than in training and its residual grows to the source's own level. (Session 7's "1.4-3
times the source" compared the note with the quadrature channel, a scratch script's mistake.)

The one place where the residual is formed (:func:`residual`) and where a note is put back
together (:func:`add_source`); numpy or torch alike, as :mod:`nsynth_live.mulaw`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


IN_PHASE = 1
"""Which of a source's two channels (:func:`nsynth_live.excitation.harmonic_source`: the sine sum,
then the cosine sum) is in phase with the note. The locked phase follows the fundamental's cosine
(the note is ``~a cos(phase)``; :func:`nsynth_live.excitation.locked_excitation`), and the measured
source each harmonic's, so the note lines up with the cosine sum. Measured on 18 FluidR3 notes:
the note less the measured source's cosine sum is 11-24 dB below the note, less its sine sum 3 dB
above it (the quadrature adds instead of cancelling)."""


def in_phase(sums: Any) -> Any:
    """The channel of a source [B, 2, T] in phase with the note, [B, T] (numpy or torch)."""
    return sums[:, IN_PHASE]


def residual(audio: Any, source: Any) -> Any:
    """What the decoder of a residual-form model models: ``audio - source`` within [-1, 1].

    Args:
        audio: [B, T] waveform; source: [B, T] the source at the audio's level, its channel in
            phase with the note (:func:`in_phase`; torch or numpy).

    Returns:
        [B, T], as ``audio``.
    """
    if type(audio).__module__.startswith("torch"):
        return (audio - source.to(audio.dtype)).clamp(-1.0, 1.0)
    return np.clip(np.asarray(audio) - np.asarray(source, dtype=np.asarray(audio).dtype), -1.0, 1.0)


def add_source(sampled: Any, source: Any) -> Any:
    """A residual-form note from the decoder's sampled residual: ``sampled + source`` within [-1, 1].

    Args:
        sampled: [..., n] the decoded samples (float32); source: [..., n] the source at its own
            level, on the phase the decoder heard.

    Returns:
        float32 [..., n] (numpy), or the tensor's dtype (torch).
    """
    if type(sampled).__module__.startswith("torch"):
        return (sampled + source.to(sampled.dtype)).clamp(-1.0, 1.0)
    return np.clip(np.asarray(sampled, np.float32) + np.asarray(source, np.float32), -1.0, 1.0).astype(np.float32)
