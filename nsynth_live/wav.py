"""The project's one WAV writer: 16-bit mono PCM, canonical 44-byte header, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from nsynth_live import SAMPLE_RATE
from nsynth_live.atomic import atomic_write_bytes


def to_pcm16(audio: np.ndarray) -> tuple[np.ndarray, bool]:
    """Float [-1, 1) audio to int16 (x * 32768, rounded half to even, clipped); True if any clipped."""
    q = np.rint(np.asarray(audio, dtype=np.float64) * 32768.0)
    clipped = bool((q > 32767).any() or (q < -32768).any())
    return np.clip(q, -32768, 32767).astype(np.int16), clipped


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit mono WAV file's bytes (44-byte header).

    Args:
        audio: float [n], converted by :func:`to_pcm16` (so out-of-range samples clip), or
            int16 [n] written as is.
        rate: sample rate of the header, Hz.
    """
    import soundfile as sf

    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        audio = to_pcm16(audio)[0]
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: str | Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """:func:`wav_bytes` written atomically to ``path`` (its folder is created).

    Args:
        audio: float [n] in [-1, 1] or int16 [n], already at ``rate``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, wav_bytes(audio, rate))
    return path
