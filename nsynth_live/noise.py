"""A preset's noise: the spectrum between its note's harmonics, measured per frame in bands, and
played as filtered noise (DDSP's noise branch, from measured band levels instead of a network).

Measurement: each frame (centred on its start, the embedding's frames) is a windowed
:data:`N_FFT`-point spectrum of the note, read between the harmonics of its pitch (the bins
near a harmonic skipped) and averaged into :data:`BANDS` bands of equal width. Synthesis: one
random-phase spectrum with those levels per :data:`SEGMENT`-sample segment, sine-windowed and
overlapped by half, so white noise of standard deviation s measures as s in every band and is
synthesised back at that level (tested). The noise keeps its frequencies at every pitch (it has
no pitch to transpose).

Numpy and scipy only: the realtime host, ``encode`` and render-bank use it without torch.
"""

from __future__ import annotations

import math

import numpy as np

N_FFT = 2048
"""Measurement window (128 ms at 16 kHz, Blackman-Harris: its sidelobes 92 dB down, so a loud
harmonic does not leak into the floor between harmonics)."""
MASK_BINS = 5
"""Bins each side of a harmonic that the measurement skips (the window's main lobe is 4)."""
BANDS = 64
"""Noise bands of equal width from 0 Hz to Nyquist (125 Hz each at 16 kHz)."""
SEGMENT = 512
"""Synthesis segment; segments start every ``SEGMENT // 2`` samples from note-on."""
STEP = SEGMENT // 2


def measure(audio: np.ndarray, pitch: int, hop: int, frames: int, sample_rate: int = 16000) -> np.ndarray:
    """The noise level of each band at every frame start of a note of MIDI ``pitch``.

    Each frame's spectrum (centred on the frame start) is read between the partials of the
    pitch: bins within :data:`MASK_BINS` of a multiple of half its f0 (of its f0, for notes below
    about MIDI 56) are skipped, and the median
    of the rest gives the band's power (a band with fewer than 3 such bins, a pitch too low to
    leave gaps, takes the median of all its bins).

    Args:
        audio: float32 [T] one note; pitch: its MIDI pitch; hop: samples per frame; frames: F
            rows to return (the last measured frame held past the audio's end).

    Returns:
        float32 [F, BANDS]: the standard deviation a white noise with that band's spectrum has.
    """
    from scipy.signal.windows import blackmanharris

    x = np.asarray(audio, np.float64)
    window = blackmanharris(N_FFT, sym=False)
    pad = np.pad(x, (N_FFT // 2, N_FFT // 2))
    starts = np.arange(0, len(x), hop)
    power = np.abs(np.fft.rfft(np.stack([pad[s : s + N_FFT] * window for s in starts]), axis=1)) ** 2  # [F', bins]
    # A bin of white noise of deviation s has E|X|^2 = s^2 sum(w^2).
    power /= float(np.sum(window**2))
    n_bins = power.shape[1]
    # Skipped: every multiple of half the fundamental (the harmonics, and the sub-octave and
    # fifths an organ's stops add), within MASK_BINS; on a low note, where that grid would leave
    # no gap, the harmonics only.
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0) * N_FFT / sample_rate
    grid = f0 / 2 if f0 / 2 >= 2 * MASK_BINS + 3 else f0
    k = np.arange(n_bins)
    near = (np.abs(k - grid * np.round(k / grid)) <= MASK_BINS) & (k >= grid - MASK_BINS)
    edges = np.linspace(0, n_bins - 1, BANDS + 1).round().astype(int)
    bands = np.empty((power.shape[0], BANDS))
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        free = ~near[lo:hi]
        # The median, not the mean: a partial off that grid (a bell's, a stretched piano's) is
        # narrow and leaves it where the noise is. The median of a noise bin's power (exponential)
        # is ln 2 times its mean.
        rows = power[:, lo:hi][:, free] if free.sum() >= 3 else power[:, lo:hi]
        bands[:, b] = np.median(rows, axis=1) / math.log(2.0)
    bands = np.sqrt(bands)
    have = bands.shape[0]
    if have < frames:
        bands = np.concatenate([bands, np.repeat(bands[-1:], frames - have, 0)])
    return np.ascontiguousarray(bands[:frames], dtype=np.float32)


def _interpolation() -> tuple[np.ndarray, np.ndarray]:
    """Each synthesis bin's lower band and its weight towards the next: linear between band
    centres, flat past the outer ones (computed once)."""
    n_bins = SEGMENT // 2 + 1
    centres = (np.arange(BANDS) + 0.5) * (n_bins - 1) / BANDS
    k = np.arange(n_bins)
    idx = np.clip(np.searchsorted(centres, k) - 1, 0, BANDS - 2)
    return idx, np.clip((k - centres[idx]) / (centres[idx + 1] - centres[idx]), 0.0, 1.0)


_IDX, _W = _interpolation()


def _bin_gains(bands: np.ndarray) -> np.ndarray:
    """Band levels [..., BANDS] to the synthesis spectrum's bins [..., SEGMENT // 2 + 1], scaled
    so a random-phase segment has the bands' deviation (its variance is the bins' mean square)."""
    b = np.asarray(bands, np.float64)
    return (b[..., _IDX] * (1 - _W) + b[..., _IDX + 1] * _W) * math.sqrt(SEGMENT)


WINDOW = np.sin(np.pi * (np.arange(SEGMENT) + 0.5) / SEGMENT)
"""Sine window: its squares overlapped by half sum to 1, so the noise's variance stays even."""


def segment(bands: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Windowed noise segments from band levels and random phases.

    Args:
        bands: [S, BANDS] levels; phase: [S, SEGMENT // 2 + 1] uniform in [0, 1).

    Returns:
        float64 [S, SEGMENT].
    """
    spec = _bin_gains(bands) * np.exp(2j * np.pi * phase)
    return np.fft.irfft(spec, SEGMENT, axis=-1) * WINDOW


def synthesize(bands: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A whole note's noise from the band levels of each segment (offline; the same samples as
    :class:`NoiseVoice` given the same levels and generator).

    Args:
        bands: [S, BANDS], S >= ceil(n / STEP) (segment j starts at sample j * STEP).
        n: samples; rng: the note's generator (one uniform row per segment).

    Returns:
        float32 [n].
    """
    s = -(-n // STEP)
    seg = segment(np.asarray(bands)[:s], rng.random((s, SEGMENT // 2 + 1)))
    out = np.zeros(s * STEP + SEGMENT)
    for j in range(s):
        out[j * STEP : j * STEP + SEGMENT] += seg[j]
    return out[:n].astype(np.float32)


def note_rng(seed: int, note_id: int) -> np.random.Generator:
    """A note's noise generator: a stream of its own beside the sampling noise
    (``default_rng([seed, note_id])``, :class:`nsynth_live.sampling.NoiseStream`)."""
    return np.random.default_rng([int(seed), int(note_id), 1])


def note_noise(bands: np.ndarray, n: int, hop: int, rng: np.random.Generator) -> np.ndarray:
    """A note's noise from the band levels of the frames it plays, one row per hop from note-on
    (offline renders: render-bank, ``evaluate``'s backends, ``bench timbre``).

    Args:
        bands: [F, BANDS], F >= ceil(n / hop): row f is the frame playing from sample f * hop.
        n: samples; hop: samples per frame; rng: :func:`note_rng`.

    Returns:
        float32 [n], as :class:`NoiseVoice` renders the same note.
    """
    s = -(-n // STEP)
    rows = np.minimum(np.arange(s) * STEP // hop, len(bands) - 1)
    return synthesize(np.asarray(bands)[rows], n, rng)


class NoiseVoice:
    """One voice's noise, block by block (the live host): a segment starts every :data:`STEP`
    samples, with the band levels of the frame playing at its first sample.

    Args:
        rng: the note's generator.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.t = 0  # samples rendered
        self.next_start = 0
        self.ahead = np.zeros(SEGMENT + 2 * STEP)  # summed segments from sample t on

    def render(self, n: int, bands_at) -> np.ndarray:
        """The next ``n`` samples; ``bands_at(i)`` gives the levels [BANDS] of the frame playing at
        sample ``i`` of this block (0 <= i < n).

        Returns:
            float32 [n].
        """
        if self.ahead.size < n + SEGMENT:
            self.ahead = np.concatenate([self.ahead, np.zeros(n + SEGMENT - self.ahead.size)])
        while self.next_start < self.t + n:
            at = self.next_start - self.t
            seg = segment(np.asarray(bands_at(at))[None], self.rng.random((1, SEGMENT // 2 + 1)))[0]
            self.ahead[at : at + SEGMENT] += seg
            self.next_start += STEP
        out = self.ahead[:n].astype(np.float32)
        self.ahead[:-n] = self.ahead[n:]  # shifted in place (numpy resolves the overlap): no buffer rebuilt per block
        self.ahead[-n:] = 0.0
        self.t += n
        return out
