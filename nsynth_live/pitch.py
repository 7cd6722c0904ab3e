"""Fundamental-frequency (f0) estimation with YIN, vectorised with numpy.

Used to check that rendered and generated notes sound at their MIDI pitch, and by the torch-free
realtime host, so this module imports only numpy.

The estimator is YIN (de Cheveigné & Kawahara, JASA 2002): the difference function
``d(tau) = sum_{j<W} (x_j - x_{j+tau})^2`` over an integration window W, its cumulative-mean
normalisation ``d'(tau)``, the first dip below an absolute threshold (taking the smallest period
avoids the classic "octave too low" error), and interpolation for sub-sample periods. Additions:

- the difference function of every frame is computed at once from FFT cross-correlations and
  cumulative energy sums (no per-lag Python loop), so thousands of notes are cheap (~15 ms for
  a 4 s note on one core);
- the threshold search runs on a lag grid of 1/4 sample (zero-padded spectrum): a high note's
  period is a few samples, and its dip can fall between two integer lags and be missed;
- the chosen period is polished by Newton steps on the exactly evaluated (band-limited)
  difference function: well under a cent for clean tones, at any pitch;
- an octave-up guard: when the dip at 2T or 3T of the chosen period T is much deeper, the real
  period is the multiple (a strong 2nd or 3rd harmonic let a shallow dip at a fraction of the
  period pass the threshold).

Known behaviour on real instruments: sounds whose waveform really repeats at a longer period
than the played note (organ registrations with a 16' stop, "fifths" leads, detuned pads) report
that longer period, an octave or more below the MIDI pitch; sounds that decay within the held
region (xylophone, timpani) have no voiced frames and give None from :func:`note_f0`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

A4_HZ = 440.0
A4_MIDI = 69


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    """MIDI note number (may be fractional) to Hz, equal temperament with A4 = 440 Hz."""
    if isinstance(midi, np.ndarray):
        return A4_HZ * 2.0 ** ((midi.astype(np.float64) - A4_MIDI) / 12.0)
    return A4_HZ * 2.0 ** ((float(midi) - A4_MIDI) / 12.0)


def hz_to_midi(hz: float | np.ndarray) -> float | np.ndarray:
    """Hz to a fractional MIDI note number (69 = A4 = 440 Hz). Non-positive Hz give NaN."""
    if isinstance(hz, np.ndarray):
        hz = hz.astype(np.float64)
        out = np.full(hz.shape, np.nan)
        pos = hz > 0
        out[pos] = A4_MIDI + 12.0 * np.log2(hz[pos] / A4_HZ)
        return out
    hz = float(hz)
    return A4_MIDI + 12.0 * math.log2(hz / A4_HZ) if hz > 0 else math.nan


def cents_off(f0_hz: float, midi: float) -> float:
    """Signed distance in cents from the pitch of MIDI note ``midi`` to ``f0_hz``.

    Positive means ``f0_hz`` is sharp. NaN if ``f0_hz`` is not positive.
    """
    return 100.0 * (hz_to_midi(f0_hz) - float(midi))


def default_frame(sr: int, fmin: float) -> int:
    """Frame length (a power of two) holding the integration window plus the longest lag.

    YIN needs ``frame = W + tau_max`` samples, and the window ``W`` should span at least two
    periods of the lowest pitch for a stable dip, so ``frame >= 3 * sr / fmin``: 2048 at 16 kHz
    with fmin = 25 Hz, i.e. down to MIDI 21 (27.5 Hz).
    """
    need = int(math.ceil(3.0 * sr / fmin))
    return 1 << max(need - 1, 1).bit_length()


def frame_times(n_frames: int, sr: int, frame: int, hop: int) -> np.ndarray:
    """Centre time in seconds of each frame of :func:`estimate_f0`. Returns [n_frames]."""
    return (np.arange(n_frames) * hop + frame / 2.0) / sr


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """[T] -> [F, frame] strided view; audio shorter than a frame is zero-padded to one frame."""
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    return np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]


def _difference(
    frames: np.ndarray, window: int, tau_max: int, up: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """YIN difference function of every frame on a lag grid of ``1 / up`` samples.

    ``d(tau) = e(0) + e(tau) - 2 r(tau)`` with ``r(tau) = sum_{j<W} x_j x_{j+tau}`` (an FFT
    cross-correlation, band-limited-interpolated to fractional lags by zero-padding its
    spectrum) and ``e(tau) = sum_{j<W} x_{j+tau}^2`` (cumulative sums, interpolated linearly:
    it varies slowly). A fine grid matters for short periods: at 2 kHz (7.6 samples at 16 kHz)
    the dip at T can fall between two integer lags and be missed entirely.

    Args:
        frames: [F, N] float64 with N >= window + tau_max.
        window: integration window W.
        tau_max: largest lag, in samples.
        up: lag-grid oversampling factor.

    Returns:
        (cross, e, d, cum, cmnd): the cross spectrum [F, N // 2 + 1] of window and frame; the
        shifted-window energy [F, tau_max + 1] on the integer grid; and on the fine grid
        (index i is lag i / up), each [F, up * tau_max + 1]: the difference, its integral from 0
        (``sum d / up``) and the cumulative-mean-normalised difference
        ``d'(tau) = d(tau) * tau / integral``, with d'(0) = 1.
    """
    n_fft = frames.shape[1]
    # With the window zero beyond W and n_fft >= W + tau_max, the circular correlation never
    # wraps for 0 <= tau <= tau_max.
    spec = np.fft.rfft(frames, n=n_fft, axis=1)
    spec_w = np.fft.rfft(frames[:, :window], n=n_fft, axis=1)
    cross = spec * np.conj(spec_w)
    padded = cross.copy()
    if n_fft % 2 == 0:
        padded[:, -1] *= 0.5  # the Nyquist bin splits between +/- frequencies when padded
    n_fine = up * tau_max + 1
    r = np.fft.irfft(padded, n=n_fft * up, axis=1)[:, :n_fine] * up

    sq = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e = sq[:, taus + window] - sq[:, taus]
    fine = np.arange(n_fine) / up
    lo = np.minimum(np.floor(fine).astype(np.int64), tau_max - 1)
    frac = fine - lo
    e_fine = e[:, lo] * (1.0 - frac) + e[:, lo + 1] * frac

    d = np.maximum(e[:, :1] + e_fine - 2.0 * r, 0.0)  # round-off can go slightly negative
    d[:, 0] = 0.0
    cum = np.cumsum(d, axis=1) / up
    cmnd = np.ones_like(d)
    safe = cum[:, 1:] > 1e-12 * np.maximum(e[:, :1], 1e-30)
    cmnd[:, 1:] = np.where(safe, d[:, 1:] * fine[1:] / np.where(safe, cum[:, 1:], 1.0), 1.0)
    return cross, e, d, cum, cmnd


def _parabolic_shift(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Abscissa (relative to t, in [-1, 1]) of the parabola's vertex through y[i, t-1 : t+2].

    Args:
        y: [F, L]; t: [F] integer positions with 1 <= t <= L - 2.
    """
    rows = np.arange(y.shape[0])
    a, b, c = y[rows, t - 1], y[rows, t], y[rows, t + 1]
    denom = a - 2.0 * b + c
    ok = denom > 1e-12
    return np.clip(np.where(ok, 0.5 * (a - c) / np.where(ok, denom, 1.0), 0.0), -1.0, 1.0)


def _lerp(y: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``y[i, pos[i]]`` at fractional positions ([F, L] x [F] -> [F])."""
    rows = np.arange(y.shape[0])
    i = np.clip(np.floor(pos).astype(np.int64), 0, y.shape[1] - 2)
    f = pos - i
    return y[rows, i] * (1.0 - f) + y[rows, i + 1] * f


def _refine(
    cross: np.ndarray,
    e: np.ndarray,
    cum: np.ndarray,
    up: int,
    n_fft: int,
    lags: np.ndarray,
    iters: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Polish one fractional lag per frame to the nearby minimum of d; return d' there.

    Newton steps on d, with the cross-correlation and its first two derivatives evaluated
    exactly as the band-limited inverse DFT of the cross spectrum at the non-integer lag; the
    energies and the integral of d vary slowly and are interpolated linearly. This brings the
    period to a small fraction of a cent, and gives dips at T, 2T and 3T comparable depths for
    the octave guard.

    Args:
        cross: [F, K] cross spectrum from :func:`_difference`.
        e: [F, L + 1] integer-grid energies from :func:`_difference`.
        cum: [F, up * L + 1] fine-grid integral of d from :func:`_difference`.
        up: the fine grid's oversampling factor.
        n_fft: FFT size behind ``cross``.
        lags: [F] starting lags in samples (near the minimum).
        iters: Newton steps (each costs one evaluation).

    Returns:
        (lags [F] at the minimum of d, d'(lags) [F] clipped at 0).
    """
    k = np.arange(cross.shape[1])
    theta = 2.0 * np.pi * k / n_fft
    weight = np.full(k.shape, 2.0 / n_fft)  # hermitian symmetry: bins 1..n/2-1 count twice
    weight[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        weight[-1] = 1.0 / n_fft
    wc = cross * weight
    rows = np.arange(lags.shape[0])
    lags = lags.astype(np.float64).copy()
    tau_max = e.shape[1] - 1
    n_k = k.shape[0]
    block = int(math.ceil(math.sqrt(n_k)))
    for _ in range(iters):
        # exp(i lag theta_k) for all k from two short tables (k = block * a + b): a complex
        # multiply per bin instead of a complex exp per bin.
        fine = np.exp(1j * lags[:, None] * theta[None, :block])
        coarse = np.exp(1j * lags[:, None] * theta[None, : -(-n_k // block)] * block)
        phase = (coarse[:, :, None] * fine[:, None, :]).reshape(lags.shape[0], -1)[:, :n_k]
        z = wc * phase
        r0 = z.real.sum(axis=1)
        r1 = -(z.imag * theta).sum(axis=1)
        r2 = -(z.real * theta**2).sum(axis=1)
        i = np.clip(np.floor(lags).astype(np.int64), 0, tau_max - 1)
        d0 = e[:, 0] + _lerp(e, lags) - 2.0 * r0
        d1 = (e[rows, i + 1] - e[rows, i]) - 2.0 * r1
        d2 = -2.0 * r2
        step = np.clip(np.where(d2 > 0, -d1 / np.where(d2 > 0, d2, 1.0), 0.0), -0.5, 0.5)
        step = np.clip(lags + step, 1.0, tau_max - 1.0) - lags
        lags = lags + step
    # d at the final lag from the last evaluation's quadratic model.
    d = np.maximum(d0 + d1 * step + 0.5 * d2 * step**2, 0.0)
    integral = _lerp(cum, lags * up)
    return lags, np.where(integral > 0, d * lags / np.where(integral > 0, integral, 1.0), 1.0)


def estimate_f0(
    audio: np.ndarray,
    sr: int,
    fmin: float = 25.0,
    fmax: float = 4200.0,
    frame: int | None = None,
    hop: int = 256,
    threshold: float = 0.15,
    silence_db: float = -60.0,
    octave_ratio: float = 0.5,
    min_gain: float = 0.02,
    oversample: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-wise f0 with YIN.

    Frame ``i`` covers samples ``[i * hop, i * hop + frame)`` (see :func:`frame_times`); its
    integration window is the first ``frame - tau_max`` samples of it.

    Args:
        audio: [T] mono float audio.
        sr: sample rate in Hz.
        fmin: lowest f0 searched, Hz. Sets the longest lag, and the frame when ``frame`` is None.
        fmax: highest f0 searched, Hz.
        frame: frame length in samples; None chooses :func:`default_frame` from ``fmin``. The
            longest lag is capped at ``frame // 2`` so the window always spans it.
        hop: hop between frames in samples.
        threshold: absolute threshold on the normalised difference (YIN's aperiodicity); 0.1 in
            the paper, a little higher suits real notes with vibrato and decay.
        silence_db: frames whose RMS (dBFS) is below this are unvoiced.
        octave_ratio: the dip at 2T or 3T replaces the chosen period T when it is lower than
            ``octave_ratio`` times the dip at T and lower by at least ``min_gain``.
        min_gain: see ``octave_ratio``; keeps two near-perfect dips (a clean periodic signal is
            periodic at T and 2T alike) from switching on round-off.
        oversample: lag-grid points per sample for the threshold search.

    Returns:
        (f0_hz [F] float64, voiced [F] bool). Unvoiced frames still carry the best guess (the
        global minimum of the normalised difference) so callers can inspect them.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"audio must be 1-D [T], got shape {x.shape}")
    if not 0 < fmin < fmax:
        raise ValueError(f"need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    frame = default_frame(sr, fmin) if frame is None else int(frame)
    tau_max = min(int(math.ceil(sr / fmin)), frame // 2)
    tau_min = max(1.0, sr / fmax)
    if 3 * tau_min > tau_max:
        raise ValueError(f"frame {frame} too short for fmin={fmin} Hz at {sr} Hz")
    window = frame - tau_max
    up = int(oversample)

    frames = np.ascontiguousarray(_frames(x, frame, hop))
    n_fft = frames.shape[1]
    cross, e, d, cum, cmnd = _difference(frames, window, tau_max, up)

    # 1. YIN on the fine grid: the first dip below the threshold, walked down to that dip's
    #    local minimum; frames without such a dip take the global minimum and are unvoiced.
    lo = int(math.floor(tau_min * up))
    search = cmnd[:, lo:]
    below = search < threshold
    has_dip = below.any(axis=1)
    first = np.argmax(below, axis=1)
    steps = np.arange(search.shape[1])
    rising = np.ones_like(below)
    rising[:, :-1] = search[:, 1:] >= search[:, :-1]
    local = np.argmax(rising & (steps[None, :] >= first[:, None]), axis=1)
    best = np.argmin(search, axis=1)
    i_fine = np.clip(np.where(has_dip, local, best) + lo, 1, d.shape[1] - 2)
    tau = (i_fine + _parabolic_shift(d, i_fine)) / up

    # 2. Frames with a dip: polish the period exactly, then the octave-up guard (see the module
    #    docstring) against the dips near 2T and 3T.
    chosen = tau.copy()
    idx = np.flatnonzero(has_dip)
    if idx.size:
        sub = (cross[idx], e[idx], cum[idx], up, n_fft)
        tau0, dip0 = _refine(*sub, tau[idx])
        best_dip = octave_ratio * dip0
        pick = tau0
        rows = np.arange(idx.size)
        half = up // 2
        for k in (2, 3):
            ok = k * tau0 + 1.0 <= tau_max
            if not ok.any():
                continue
            # Deepest fine-grid point within half a sample of k*T, then polish.
            centre = np.clip(np.rint(k * tau0 * up).astype(np.int64), half, d.shape[1] - 1 - half)
            cand = centre[:, None] + np.arange(-half, half + 1)[None, :]
            lag0 = cand[rows, np.argmin(d[idx[:, None], cand], axis=1)] / up
            lag, dip_k = _refine(*sub, lag0)
            better = ok & (dip_k < best_dip) & (dip0 - dip_k > min_gain)
            pick = np.where(better, lag, pick)
            best_dip = np.where(better, dip_k, best_dip)
        # A deep dip at L = 3T' from a wrong start T' = 2T/3 (strong 3rd harmonic, weak
        # fundamental) is really the real period's 2T: prefer the shortest lag L/m beyond T'
        # whose dip is as deep (within min_gain).
        moved = np.flatnonzero(pick != tau0)
        for m in (3, 2):
            if not moved.size:
                break
            sub_m = tuple(a[moved] for a in sub[:3]) + sub[3:]
            lag_m, dip_m = _refine(*sub_m, pick[moved] / m)
            ok = (lag_m > tau0[moved] + 0.5) & (dip_m < best_dip[moved] + min_gain)
            ok &= np.abs(lag_m * m - pick[moved]) < 0.5
            pick[moved[ok]] = lag_m[ok]
        chosen[idx] = pick

    f0 = sr / chosen
    rms_db = 10.0 * np.log10(np.maximum(e[:, 0] / window, 1e-20))
    voiced = has_dip & (rms_db > silence_db)
    return f0, voiced


def note_f0(
    audio: np.ndarray,
    sr: int,
    start_s: float = 0.25,
    end_s: float = 2.75,
    fmin: float = 25.0,
    fmax: float = 4200.0,
    hop: int = 512,
    min_voiced: float = 0.25,
    **kwargs: float,
) -> float | None:
    """f0 of a held note: the median f0 over the voiced frames of ``[start_s, end_s)``.

    The defaults skip the attack (first 250 ms) and stop before the release (note-off at 3 s in
    NSynth notes). A median over frames shrugs off the odd octave-jumping frame.

    Args:
        audio: [T] mono float audio of one note.
        sr: sample rate in Hz.
        start_s, end_s: the held region in seconds.
        fmin, fmax: f0 search range in Hz.
        hop: hop between analysed frames (coarser than :func:`estimate_f0`'s default: a median
            over ~80 frames is plenty and halves the cost).
        min_voiced: fraction of frames in the region that must be voiced.
        **kwargs: passed to :func:`estimate_f0` (threshold, silence_db, ...).

    Returns:
        f0 in Hz, or None when the region is empty, silent or not periodic enough.
    """
    x = np.asarray(audio, dtype=np.float64)
    seg = x[int(round(start_s * sr)) : int(round(end_s * sr))]
    if seg.shape[0] < 2:
        return None
    f0, voiced = estimate_f0(seg, sr, fmin=fmin, fmax=fmax, hop=hop, **kwargs)
    if voiced.sum() < max(1, min_voiced * voiced.shape[0]):
        return None
    return float(np.median(f0[voiced]))


def harmonic_fraction(
    audio: np.ndarray, sr: int, midi: float, start_s: float = 0.25, end_s: float = 2.75,
    harmonics: int = 8, width_hz: float = 4.0,
) -> float:
    """Share of a held note's energy within ``width_hz`` of the first harmonics of ``midi``.

    A progress gauge for models not yet in tune: it rises as generated notes turn from noise
    into tones at the requested pitch, well before :func:`note_f0` finds a stable f0. A clean
    tone at the pitch gives ~1, white noise ~``harmonics * 2 * width_hz / (sr / 2)``.

    Args:
        audio: [T] mono float audio of one note.
        sr: sample rate in Hz.
        midi: the requested pitch (MIDI note).
        start_s, end_s: the held region in seconds.
        harmonics: how many harmonics count.
        width_hz: half-width of the band around each harmonic.

    Returns:
        energy fraction in [0, 1] (0 for a silent region).
    """
    seg = np.asarray(audio, dtype=np.float64)[int(round(start_s * sr)) : int(round(end_s * sr))]
    if seg.shape[0] < 2:
        return 0.0
    power = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0]))) ** 2
    freqs = np.fft.rfftfreq(seg.shape[0], 1.0 / sr)
    total = power.sum()
    if total <= 0:
        return 0.0
    f0 = float(midi_to_hz(midi))
    near = np.zeros(freqs.shape, dtype=bool)
    for h in range(1, harmonics + 1):
        near |= np.abs(freqs - h * f0) < width_hz
    return float(power[near].sum() / total)


def harmonic_profile(
    audio: np.ndarray, sr: int, midi: float, start_s: float = 0.25, end_s: float = 2.75,
    harmonics: int = 8, width_hz: float = 4.0, floor_db: float = -60.0,
) -> np.ndarray:
    """Level of each of the first harmonics of ``midi`` in a held note, in dB below the strongest.

    A coarse timbre fingerprint: comparing the profiles of two sounds at the same pitch says how
    differently their energy spreads over the harmonics (a flute's falls fast, a sawtooth's
    slowly). Harmonics at or above Nyquist, and levels below ``floor_db``, read ``floor_db``.

    Args:
        audio: [T] mono float audio of one note.
        sr: sample rate in Hz.
        midi: the pitch whose harmonics are measured (MIDI note).
        start_s, end_s: the held region in seconds.
        harmonics: how many harmonics.
        width_hz: half-width of the band summed around each harmonic.
        floor_db: the lowest level reported.

    Returns:
        float64 [harmonics] in [floor_db, 0] (all ``floor_db`` for a silent region).
    """
    seg = np.asarray(audio, dtype=np.float64)[int(round(start_s * sr)) : int(round(end_s * sr))]
    out = np.full(harmonics, floor_db)
    if seg.shape[0] < 2:
        return out
    power = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0]))) ** 2
    freqs = np.fft.rfftfreq(seg.shape[0], 1.0 / sr)
    f0 = float(midi_to_hz(midi))
    energy = np.zeros(harmonics)
    for h in range(1, harmonics + 1):
        if h * f0 < sr / 2:
            energy[h - 1] = power[np.abs(freqs - h * f0) < width_hz].sum()
    if energy.max() <= 0:
        return out
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(energy / energy.max())
    return np.maximum(db, floor_db)


def profile_spread(profiles: np.ndarray) -> float:
    """Mean RMS distance in dB between every pair of harmonic profiles (how distinct sounds are).

    Args:
        profiles: [N, harmonics] from :func:`harmonic_profile`, N >= 2.
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.shape[0] < 2:
        raise ValueError("profile_spread needs at least two profiles")
    d = np.sqrt(((p[:, None] - p[None]) ** 2).mean(-1))
    return float(d[np.triu_indices(p.shape[0], 1)].mean())


def spread_over_pitches(profiles: dict[tuple[str, int], Any], pitches: Sequence[int]) -> float | None:
    """Mean over pitches of :func:`profile_spread` between the sounds at that pitch.

    Args:
        profiles: {(sound name, pitch): harmonic profile [harmonics]}.
        pitches: the pitches to average over (those with fewer than two sounds are skipped).

    Returns:
        dB, or None when no pitch has two sounds.
    """
    per_pitch = []
    for q in pitches:
        rows = [np.asarray(v, dtype=np.float64) for k, v in profiles.items() if k[1] == q]
        if len(rows) >= 2:
            per_pitch.append(profile_spread(np.array(rows)))
    return float(np.mean(per_pitch)) if per_pitch else None
