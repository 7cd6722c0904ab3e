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

    phase = locked_phase(audio, pitch, sample_rate, periods, floor)  # [B, T]
    f0 = midi_to_hz(pitch).to(audio.device)
    h = torch_arange(harmonics, audio.device)
    hp = h[None, :, None] * phase[:, None, :]  # [B, H, T]
    live = ((f0[:, None] * h[None, :]) < sample_rate / 2).to(hp.dtype)[:, :, None]
    return torch.cat([torch.sin(hp) * live, torch.cos(hp) * live], 1).to(torch.float32)


def window_width(f0: Any, periods: float, sample_rate: int = 16000) -> Any:
    """Samples in a measurement window of ``periods`` fundamental periods, 64..2048 (torch only).

    Args:
        f0: [B] fundamentals in Hz (float64 tensor).

    Returns:
        int64 [B].
    """
    import torch

    return torch.clamp(torch.round(periods * sample_rate / f0), 64, 2048).to(torch.int64)


def torch_arange(harmonics: int, device: Any) -> Any:
    """float64 [1 .. harmonics] on ``device`` (torch)."""
    import torch

    return torch.arange(1, harmonics + 1, dtype=torch.float64, device=device)


def locked_phase(
    audio: Any, pitch: Any, sample_rate: int = 16000, periods: float = 4.0, floor: float = 1e-3
) -> Any:
    """The phase of :func:`locked_excitation`'s fundamental (torch only).

    Args:
        audio: [B, T] waveform; pitch: [B] MIDI notes (torch).
        sample_rate, periods, floor: as :func:`locked_excitation`.

    Returns:
        float64 [B, T]: the nominal ``2 pi f0 t`` plus the angle of the past ``periods`` periods'
        baseband at f0 (samples before t only).
    """
    import torch

    b, n = audio.shape
    f0 = midi_to_hz(pitch).to(audio.device)  # [B] float64
    t = torch.arange(n, dtype=torch.float64, device=audio.device)
    # Nominal phase, wrapped in float64 before it multiplies anything (exact for long notes).
    nominal = torch.remainder(f0[:, None] * t / sample_rate, 1.0) * (2 * math.pi)  # [B, T]
    base = audio.to(torch.float64) * torch.exp(torch.complex(torch.zeros_like(nominal), -nominal))
    csum = torch.cat([torch.zeros(b, 1, dtype=base.dtype, device=base.device), torch.cumsum(base, 1)], 1)
    width = window_width(f0, periods, sample_rate)  # [B]
    ti = torch.arange(n, device=audio.device)
    lo = torch.clamp(ti[None, :] - width[:, None], min=0)  # [B, T]
    c = (csum[:, :n] - torch.gather(csum, 1, lo)) / width[:, None].to(torch.float64) + floor
    return nominal + torch.angle(c)


def free_phase(pitch: Any, n: int, start: Any = 0, sample_rate: int = 16000) -> Any:
    """The free-running phase ``2 pi f0 t / sr`` of samples ``start .. start + n - 1`` since
    note-on, wrapped to [0, 2 pi) in float64 (numpy or torch, as ``pitch``).

    Args:
        pitch: [B] MIDI notes; n: samples; start: int or [B] first sample index.

    Returns:
        float64 [B, n].
    """
    f0 = midi_to_hz(pitch)
    if type(pitch).__module__.startswith("torch"):
        import torch

        st = torch.as_tensor(start, dtype=torch.float64, device=f0.device).reshape(-1, 1)
        t = st + torch.arange(n, dtype=torch.float64, device=f0.device)
        return torch.remainder(f0[:, None] * t / sample_rate, 1.0) * (2 * math.pi)
    t = np.asarray(start, dtype=np.float64).reshape(-1, 1) + np.arange(n, dtype=np.float64)
    return np.remainder(f0[:, None] * t / sample_rate, 1.0) * (2 * math.pi)


def frame_weights(n: int, hop: int, start: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where samples ``start .. start + n - 1`` lie between frame starts (:func:`upsample_frames`'
    rule, also the live host's block source, :mod:`nsynth_live.host.engines.block_source`).

    Args:
        n: samples; hop: samples per frame; start: first sample since note-on; frames: F.

    Returns:
        (f, g int [n]: the frames each sample lies between, the last one held; w float32 [n]:
        the weight of ``g``, 0 from the last frame on).
    """
    t = np.arange(start, start + n)
    f = np.minimum(t // hop, frames - 1)
    g = np.minimum(f + 1, frames - 1)
    w = ((t % hop) / hop).astype(np.float32)
    w[t // hop >= frames - 1] = 0.0
    return f, g, w


def upsample_frames(frames: Any, n: int, hop: int, start: Any = 0) -> Any:
    """Frame-rate controls to sample rate by linear interpolation between frame starts.

    Sample ``t`` (since note-on) lies between frame ``f = t // hop`` and ``f + 1``:
    ``(1 - w) * frames[f] + w * frames[f + 1]`` with ``w = (t % hop) / hop``; past the last frame
    the last one holds. Smooth where a held (nearest) control would step every hop.

    Args:
        frames: [B, K, F] controls (numpy or torch).
        n: samples; hop: samples per frame.
        start: first sample index (an int, the same for every voice).

    Returns:
        [B, K, n] in ``frames``' dtype.
    """
    f, g, w = frame_weights(n, hop, start, frames.shape[-1])
    if type(frames).__module__.startswith("torch"):
        import torch

        fi, gi = torch.from_numpy(f).to(frames.device), torch.from_numpy(g).to(frames.device)
        wt = torch.from_numpy(w).to(device=frames.device, dtype=frames.dtype)
        return frames[..., fi] * (1 - wt) + frames[..., gi] * wt
    return (frames[..., f] * (1 - w) + frames[..., g] * w).astype(frames.dtype)


def audible(pitch: Any, harmonics: int, sample_rate: int = 16000) -> Any:
    """Which harmonics 1..K of each pitch lie below Nyquist (f0 in float64; numpy or torch).

    Args:
        pitch: [B] MIDI notes; harmonics: K.

    Returns:
        bool [B, K].
    """
    f0 = midi_to_hz(pitch)
    if type(pitch).__module__.startswith("torch"):
        return f0[:, None] * torch_arange(harmonics, f0.device)[None, :] < sample_rate / 2
    return f0[:, None] * np.arange(1, harmonics + 1, dtype=np.float64)[None, :] < sample_rate / 2


def harmonic_source(amplitudes: Any, phase: Any) -> Any:
    """A learned harmonic source: the sum of each harmonic at its own amplitude, and its
    quadrature, the excitation of configs with ``source_harmonics``.

    Args:
        amplitudes: [B, K, n] per-sample amplitude of harmonics 1..K (already zero at and above
            Nyquist; numpy or torch).
        phase: [B, n] float64 fundamental phase (:func:`free_phase` or :func:`locked_phase`).

    Returns:
        [B, 2, n] in ``amplitudes``' dtype: ``sum_k a_k sin(k phase)``, ``sum_k a_k cos(k phase)``.
    """
    k = amplitudes.shape[1]
    if type(amplitudes).__module__.startswith("torch"):
        import torch

        hp = torch_arange(k, phase.device)[None, :, None] * phase[:, None, :]  # [B, K, n] float64
        hp = torch.remainder(hp, 2 * math.pi).to(amplitudes.dtype)
        return torch.stack([(amplitudes * torch.sin(hp)).sum(1), (amplitudes * torch.cos(hp)).sum(1)], 1)
    # The host's path, once per block: Clenshaw's recurrence, b_k = a_k + 2 cos(phase) b_{k+1} -
    # b_{k+2} from k = K down to 1, gives sum a_k sin(k phase) = b_1 sin(phase) and
    # sum a_k cos(k phase) = b_1 cos(phase) - b_2 from one sine and one cosine per sample instead
    # of 2K (float64: its rounding error, ~K^2 ulp, is far below the float32 result's resolution).
    ph = np.asarray(phase, np.float64)
    cos, sin = np.cos(ph), np.sin(ph)
    two_cos = 2.0 * cos
    b1 = np.zeros_like(ph)
    b2 = np.zeros_like(ph)
    for j in range(k - 1, -1, -1):
        b0 = two_cos * b1
        b0 -= b2
        b0 += amplitudes[:, j]
        b1, b2 = b0, b1
    return np.stack([b1 * sin, b1 * cos - b2], 1).astype(amplitudes.dtype)


def unit_source(amplitudes: Any, phase: Any) -> tuple[Any, Any]:
    """The learned source as the decoder hears it: :func:`harmonic_source` divided, sample by
    sample, by the norm of its amplitudes (a unit sine's RMS whatever the note's level; silent
    where every amplitude is 0). The one definition training (:meth:`nsynth_live.decoder.Decoder.source`)
    and the host (:func:`nsynth_live.host.engines.offline.source_excitation`) share.

    Args:
        amplitudes: [B, K, n] per-sample harmonic amplitudes (numpy or torch).
        phase: [B, n] float64 fundamental phase.

    Returns:
        ([B, 2, n] unit-level sum and quadrature, [B, 2, n] the same at the amplitudes' level),
        in ``amplitudes``' dtype.
    """
    sums = harmonic_source(amplitudes, phase)
    if type(amplitudes).__module__.startswith("torch"):
        import torch

        return sums / torch.sqrt((amplitudes * amplitudes).sum(1, keepdim=True) + 1e-12), sums
    norm = np.sqrt((amplitudes * amplitudes).sum(1, keepdims=True, dtype=np.float64) + 1e-12)
    return (sums / norm).astype(amplitudes.dtype), sums


def harmonic_baseband(audio: Any, pitch: Any, harmonics: int, sample_rate: int = 16000, periods: float = 4.0,
                      centered: bool = False) -> tuple[Any, Any]:
    """Each harmonic's complex amplitude in a sliding window of the audio (torch only).

    Harmonic k of ``A cos(2 pi k f0 t / sr + phi)`` averages, times ``exp(-i k nominal)``, to
    ``(A / 2) exp(i phi)`` over a window of whole periods (the ``periods`` of
    :func:`locked_phase`), so twice its magnitude is the harmonic's amplitude and its angle the
    harmonic's phase against ``k`` times the nominal phase.

    Args:
        audio: [B, T] waveform; pitch: [B] MIDI notes; harmonics: K.
        sample_rate, periods: as :func:`locked_phase`.
        centered: a window centred on t (a target to learn from) rather than the samples before t
            only (what a causal decoder may hear).

    Returns:
        (complex128 [B, K, T] window means, float64 [B, T] nominal phase ``2 pi f0 t``).
    """
    import torch

    b, n = audio.shape
    f0 = midi_to_hz(pitch).to(audio.device)
    t = torch.arange(n, dtype=torch.float64, device=audio.device)
    nominal = torch.remainder(f0[:, None] * t / sample_rate, 1.0) * (2 * math.pi)  # [B, T]
    k = torch_arange(harmonics, audio.device)
    turns = torch.remainder(k[None, :, None] * (f0[:, None, None] * t / sample_rate), 1.0) * (2 * math.pi)
    base = audio.to(torch.float64)[:, None, :] * torch.exp(torch.complex(torch.zeros_like(turns), -turns))
    csum = torch.cat([torch.zeros(b, harmonics, 1, dtype=base.dtype, device=base.device), torch.cumsum(base, -1)], -1)
    width = window_width(f0, periods, sample_rate)  # [B]
    ti = torch.arange(n, device=audio.device)[None, :]
    if centered:
        lo = torch.clamp(ti - width[:, None] // 2, 0, n)
        hi = torch.clamp(lo + width[:, None], max=n)
    else:
        lo, hi = torch.clamp(ti - width[:, None], min=0), ti.expand(b, -1)
    count = torch.clamp(hi - lo, min=1).to(torch.float64)[:, None, :]
    idx = lambda j: j[:, None, :].expand(-1, harmonics, -1)  # noqa: E731
    return (torch.gather(csum, 2, idx(hi)) - torch.gather(csum, 2, idx(lo))) / count, nominal


def measured_amplitudes(audio: Any, pitch: Any, harmonics: int, hop: int, sample_rate: int = 16000) -> Any:
    """Each harmonic's amplitude at every frame start, over a window of whole periods centred
    there (torch only): the target a learned source is pulled towards (the harmonic loss,
    ``training/fit_source.py``) and what ``bench timbre --diagnose`` feeds the decoder.

    Args:
        audio: [B, T] waveform; pitch: [B] MIDI notes; harmonics: K; hop: samples per frame.

    Returns:
        float32 [B, K, ceil(T / hop)], zero at and above Nyquist.
    """
    import torch

    # harmonic_baseband(centered=True) sampled at the frame starts, computed there only: a
    # harmonic's magnitude over a window does not depend on where its phase is counted from, so
    # every window shares one basis that starts at its first sample, exp(-i k w j) for
    # j = 0..width-1 (samples past the window zeroed). The saving is the complex exponentials:
    # width x K per note instead of K x T (and no [B, K, T] complex cumulative sum).
    b, n = audio.shape
    dev = audio.device
    f0 = midi_to_hz(pitch).to(dev).to(torch.float64)
    width = window_width(f0, 4.0, sample_rate)  # as harmonic_baseband's default
    starts = torch.arange(0, n, hop, device=dev)  # [F]
    lo = torch.clamp(starts[None, :] - width[:, None] // 2, 0, n)  # [B, F]
    hi = torch.clamp(lo + width[:, None], max=n)
    w = int(width.max())
    j = torch.arange(w, device=dev)
    idx = lo[:, :, None] + j  # [B, F, W]
    inside = idx < hi[:, :, None]
    x = audio.to(torch.float64)
    windows = torch.gather(x, 1, idx.clamp(max=n - 1).reshape(b, -1)).reshape(idx.shape) * inside
    k = torch_arange(harmonics, dev).to(torch.float64)
    turns = torch.remainder(k[None, None, :] * (f0[:, None, None] * j[None, :, None].to(torch.float64) / sample_rate),
                            1.0) * (2 * math.pi)  # [B, W, K]
    re, im = windows @ torch.cos(turns), windows @ torch.sin(turns)  # [B, F, K]
    count = torch.clamp(hi - lo, min=1).to(torch.float64)[:, :, None]
    mag = 2 * torch.sqrt(re * re + im * im) / count
    live = audible(pitch.to(dev), harmonics, sample_rate)[:, :, None]
    return (mag.transpose(1, 2) * live).float()


def measured_source(audio: Any, pitch: Any, harmonics: int, sample_rate: int = 16000, raw: bool = False) -> Any:
    """The learned source's excitation measured from a crop's own past (torch only): what a
    perfect source network would give the decoder, for training it to follow its source.

    Each harmonic below Nyquist at its amplitude and phase over the past window
    (:func:`harmonic_baseband`, never sample t itself), as :func:`unit_source` shapes the learned
    one: ``sum_k a_k sin(phase_k)``, ``sum_k a_k cos(phase_k)`` over the norm of the ``a_k``.

    Args:
        audio: [B, T] waveform; pitch: [B] MIDI notes; harmonics: K.
        raw: also return the same sums at the amplitudes' own level (what a residual-form model's
            forced crops subtract, :mod:`nsynth_live.residual`).

    Returns:
        float32 [B, 2, T] (and, with ``raw``, float32 [B, 2, T] at the audio's level).
    """
    import torch

    c, nominal = harmonic_baseband(audio, pitch, harmonics, sample_rate)
    live = audible(pitch.to(audio.device), harmonics, sample_rate)[:, :, None]
    amps = 2 * c.abs() * live
    phase = torch_arange(harmonics, audio.device)[None, :, None] * nominal[:, None, :] + torch.angle(c)
    sums = torch.stack([(amps * torch.sin(phase)).sum(1), (amps * torch.cos(phase)).sum(1)], 1)
    unit = (sums / torch.sqrt((amps * amps).sum(1, keepdim=True) + 1e-12)).to(torch.float32)
    return (unit, sums.to(torch.float32)) if raw else unit
