"""A sinusoidal excitation at the note's f0, as neural source-filter vocoders use (optional).

The paper conditions the decoder on a one-hot pitch only; a small WaveNet trained for a few CPU
hours learns that mapping slowly (measured in this project: 1 of 12 notes in tune after 2.8k
steps; docs/training.md). A config with ``excitation_harmonics = H > 0`` also conditions every layer, sample by
sample, on ``[sin(2 pi h f0 t / sr), cos(...)]`` for h = 1..H (harmonics at or above Nyquist are
zero): the period is given, the network shapes it. The phase starts at 0 at the note's first
sample. The paper's configs keep H = 0.

Works on numpy arrays and torch tensors alike, so the torch-free host computes exactly what
training saw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def midi_to_hz(pitch: Any) -> Any:
    """MIDI note -> Hz (A4 = 69 = 440 Hz), float64, numpy or torch."""
    if type(pitch).__module__.startswith("torch"):
        import torch

        return 440.0 * torch.pow(2.0, (pitch.to(torch.float64) - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def excitation(pitch: Any, n: int, harmonics: int, start: Any = 0, sample_rate: int = 16000) -> Any:
    """Sine and cosine of each harmonic of each voice's f0 over samples ``start .. start + n - 1``.

    Args:
        pitch: [B] MIDI notes (numpy or torch integers).
        n: samples.
        harmonics: H.
        start: first sample index since the note's start (int or [B]).
        sample_rate: Hz.

    Returns:
        float32 [B, 2H, n]: channels sin h=1..H, then cos h=1..H.
    """
    torch_in = type(pitch).__module__.startswith("torch")
    if torch_in:
        import torch

        f0 = midi_to_hz(pitch)
        h = torch.arange(1, harmonics + 1, dtype=torch.float64, device=f0.device)
        st = torch.as_tensor(start, dtype=torch.float64, device=f0.device).reshape(-1, 1, 1)
        t = st + torch.arange(n, dtype=torch.float64, device=f0.device)
        freq = f0[:, None] * h[None, :]  # [B, H]
        # Phase in float64 wrapped to [0, 2 pi) before the float32 cast: exact for hours of audio.
        phase = torch.remainder(freq[:, :, None] * t / sample_rate, 1.0) * (2 * math.pi)
        live = (freq < sample_rate / 2).to(torch.float64)[:, :, None]
        return torch.cat([torch.sin(phase) * live, torch.cos(phase) * live], 1).to(torch.float32)
    f0 = midi_to_hz(pitch)
    h = np.arange(1, harmonics + 1, dtype=np.float64)
    t = np.asarray(start, dtype=np.float64).reshape(-1, 1, 1) + np.arange(n, dtype=np.float64)
    freq = f0[:, None] * h[None, :]
    phase = np.remainder(freq[:, :, None] * t / sample_rate, 1.0) * (2 * math.pi)
    live = (freq < sample_rate / 2).astype(np.float64)[:, :, None]
    return np.concatenate([np.sin(phase) * live, np.cos(phase) * live], 1).astype(np.float32)


def locked_excitation(
    audio: Any, pitch: Any, harmonics: int, sample_rate: int = 16000, periods: float = 4.0, floor: float = 1e-3
) -> Any:
    """Training-time excitation whose phase follows the note's own fundamental (torch only).

    The free-running excitation of :func:`excitation` has an arbitrary phase against each crop's
    waveform, so additively it is noise and the decoder learns to shrink it away (measured: pitch
    had no effect on a live-sine model's NLL after 4.5k steps). Here the phase is the nominal
    ``2 pi f0 t`` plus the angle of the audio's baseband at f0, averaged over the ``periods``
    periods *before* t (samples t - W .. t - 1: never t itself, so nothing of the predicted sample
    leaks in). The waveform's fundamental is then ~``a cos(phase)`` with a > 0 in every crop, a
    relation the decoder picks up quickly; at generation the free-running sine takes its place and
    the decoder follows it, which holds the pitch. Where the past is silent the angle is 0 and
    this equals :func:`excitation` from the crop's first sample.

    Args:
        audio: [B, T] waveform (torch), the crop the decoder is trained on.
        pitch: [B] MIDI notes (torch integers).
        harmonics: H.
        sample_rate: Hz.
        periods: averaging window in periods of f0 (clamped to 64..2048 samples).
        floor: a real offset added to the baseband average, so silence reads as angle 0.

    Returns:
        float32 [B, 2H, T]: channels sin h=1..H, then cos h=1..H of h times the locked phase.
    """
    import torch

    b, n = audio.shape
    f0 = midi_to_hz(pitch).to(audio.device)  # [B] float64
    t = torch.arange(n, dtype=torch.float64, device=audio.device)
    # Nominal phase, wrapped in float64 before it multiplies anything (exact for long notes).
    nominal = torch.remainder(f0[:, None] * t / sample_rate, 1.0) * (2 * math.pi)  # [B, T]
    base = audio.to(torch.float64) * torch.exp(torch.complex(torch.zeros_like(nominal), -nominal))
    csum = torch.cat([torch.zeros(b, 1, dtype=base.dtype, device=base.device), torch.cumsum(base, 1)], 1)
    width = torch.clamp(torch.round(periods * sample_rate / f0), 64, 2048).to(torch.int64)  # [B]
    ti = torch.arange(n, device=audio.device)
    lo = torch.clamp(ti[None, :] - width[:, None], min=0)  # [B, T]
    c = (csum[:, :n] - torch.gather(csum, 1, lo)) / width[:, None].to(torch.float64) + floor
    phase = nominal + torch.angle(c)  # [B, T]
    h = torch.arange(1, harmonics + 1, dtype=torch.float64, device=audio.device)
    hp = h[None, :, None] * phase[:, None, :]  # [B, H, T]
    live = ((f0[:, None] * h[None, :]) < sample_rate / 2).to(torch.float64)[:, :, None]
    return torch.cat([torch.sin(hp) * live, torch.cos(hp) * live], 1).to(torch.float32)
