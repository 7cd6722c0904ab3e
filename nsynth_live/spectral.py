"""Spectral measures and pictures of notes (numpy only: the host and evaluation share them).

- :func:`multires_spectral_distance`: the multi-scale STFT magnitude distance (linear + log),
  the usual perceptual-ish yardstick for neural audio reconstructions.
- :func:`cqt`: a constant-Q transform (Brown & Puckette's spectral-kernel method).
- :func:`rainbowgram`: constant-Q magnitude as brightness and instantaneous frequency as colour,
  the picture the NSynth paper uses to compare notes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nsynth_live.atomic import atomic_open

DEFAULT_FFTS = (2048, 1024, 512, 256, 128, 64)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int | None = None) -> np.ndarray:
    """|STFT| with a Hann window, frames centred by reflect-free zero padding.

    Args:
        audio: [T] waveform.
        n_fft: frame and FFT length.
        hop: frame step (default n_fft // 4).

    Returns:
        [F, n_fft // 2 + 1] magnitudes.
    """
    hop = hop or n_fft // 4
    x = np.pad(np.asarray(audio, dtype=np.float64), (n_fft // 2, n_fft // 2))
    n_frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    return np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft + 1)[:-1], axis=-1))


def multires_spectral_distance(
    a: np.ndarray, b: np.ndarray, ffts: tuple[int, ...] = DEFAULT_FFTS, floor_db: float = 80.0
) -> float:
    """Mean over scales of ``mean|A - B| / n_fft + mean|log max(A, f) - log max(B, f)|``.

    The log term is floored ``floor_db`` below the louder signal's peak so that inaudible noise
    under a decayed note does not dominate; the linear term is scaled by the FFT size so each
    scale weighs alike. Lower is closer; 0 for identical signals.

    Args:
        a: [T] waveform.
        b: [T] waveform (the shorter is zero-padded to the longer).
        ffts: FFT sizes of the scales.
        floor_db: dynamic range of the log term.
    """
    n = max(len(a), len(b))
    a = np.pad(np.asarray(a, np.float64), (0, n - len(a)))
    b = np.pad(np.asarray(b, np.float64), (0, n - len(b)))
    total = 0.0
    for n_fft in ffts:
        A, B = stft_magnitude(a, n_fft), stft_magnitude(b, n_fft)
        floor = max(A.max(), B.max(), 1e-12) * 10.0 ** (-floor_db / 20.0)
        lin = np.mean(np.abs(A - B)) / n_fft
        log = np.mean(np.abs(np.log(np.maximum(A, floor)) - np.log(np.maximum(B, floor))))
        total += lin + log
    return float(total / len(ffts))


@lru_cache(maxsize=8)
def _cqt_kernel(
    sr: int, fmin: float, n_bins: int, bins_per_octave: int, filter_scale: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Spectral kernel [n_bins, n_fft] (conjugated, normalised), centre freqs, FFT length."""
    freqs = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    if freqs[-1] >= sr / 2:
        raise ValueError(f"top CQT bin {freqs[-1]:.0f} Hz is above Nyquist ({sr / 2:.0f} Hz)")
    q = filter_scale / (2.0 ** (1.0 / bins_per_octave) - 1.0)
    lengths = np.ceil(q * sr / freqs).astype(int)
    n_fft = int(2 ** np.ceil(np.log2(lengths[0])))
    kernel = np.zeros((n_bins, n_fft), dtype=np.complex128)
    for k, (f, n) in enumerate(zip(freqs, lengths)):
        t = np.arange(n) - (n - 1) / 2.0
        atom = np.hanning(n) * np.exp(2j * np.pi * f * t / sr) / n
        start = (n_fft - n) // 2
        kernel[k, start : start + n] = atom
    spec = np.conj(np.fft.fft(kernel, axis=-1)) / n_fft
    return spec, freqs, n_fft


def cqt(
    audio: np.ndarray,
    sr: int = 16000,
    hop: int = 256,
    fmin: float = 32.70,
    n_bins: int = 216,
    bins_per_octave: int = 36,
    filter_scale: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-Q transform.

    Args:
        audio: [T] waveform.
        sr: sample rate.
        hop: frame step in samples.
        fmin: centre of the lowest bin (C1 by default).
        n_bins: number of bins (default 6 octaves).
        bins_per_octave: frequency resolution.
        filter_scale: < 1 shortens the filters (better time resolution), as in the paper's plots.

    Returns:
        (C [n_bins, F] complex, freqs [n_bins]) with frame f centred on sample ``f * hop``.
    """
    spec, freqs, n_fft = _cqt_kernel(sr, float(fmin), n_bins, bins_per_octave, filter_scale)
    x = np.pad(np.asarray(audio, dtype=np.float64), (n_fft // 2, n_fft // 2))
    n_frames = 1 + (len(x) - n_fft) // hop
    out = np.empty((n_bins, n_frames), dtype=np.complex128)
    # Chunks bound memory: one chunk is [chunk, n_fft] complex.
    chunk = max(1, 2**22 // n_fft)
    for s in range(0, n_frames, chunk):
        idx = np.arange(n_fft)[None, :] + hop * np.arange(s, min(n_frames, s + chunk))[:, None]
        out[:, s : s + idx.shape[0]] = spec @ np.fft.fft(x[idx], axis=-1).T
    return out, freqs


def rainbowgram(
    audio: np.ndarray, sr: int = 16000, hop: int = 256, top_db: float = 70.0, **cqt_kw
) -> tuple[np.ndarray, np.ndarray]:
    """Brightness and colour planes of a rainbowgram.

    Returns:
        (alpha [n_bins, F] in [0, 1]: log magnitude over the top ``top_db`` dB,
         hue [n_bins, F] in [-1, 1]: frame-to-frame phase advance (instantaneous frequency)
         divided by pi).
    """
    C, _ = cqt(audio, sr=sr, hop=hop, **cqt_kw)
    power_db = 10.0 * np.log10(np.maximum(np.abs(C) ** 2, 1e-20))
    alpha = np.clip((power_db - power_db.max()) / top_db + 1.0, 0.0, 1.0)
    phase = np.unwrap(np.angle(C), axis=1)
    dphase = np.diff(phase, axis=1, prepend=phase[:, :1])
    hue = (np.mod(dphase + np.pi, 2 * np.pi) - np.pi) / np.pi
    return alpha, hue


def plot_rainbowgrams(
    panels: list[tuple[str, np.ndarray]], png: str, sr: int = 16000, hop: int = 256
) -> str:
    """Draw rainbowgrams side by side (e.g. original | reconstruction) into one PNG.

    Args:
        panels: (title, waveform [T]) pairs.
        png: output path (written atomically).
    """

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), dpi=100, squeeze=False)
    for ax, (title, audio) in zip(axes[0], panels):
        alpha, hue = rainbowgram(audio, sr=sr, hop=hop)
        rgba = plt.get_cmap("rainbow")((hue + 1.0) / 2.0)
        rgba[..., :3] *= alpha[..., None]  # dark where quiet, coloured by IF where loud
        rgba[..., 3] = 1.0
        ax.imshow(rgba, origin="lower", aspect="auto", extent=(0, audio.shape[-1] / sr, 0, alpha.shape[0]))
        ax.set_title(title, fontsize=9, color="white")
        ax.set_xlabel("seconds", color="white")
        ax.tick_params(colors="white")
        ax.set_yticks([])
    fig.tight_layout()
    try:
        with atomic_open(png) as f:
            fig.savefig(f, format="png", facecolor="black")
    finally:
        plt.close(fig)
    return png
