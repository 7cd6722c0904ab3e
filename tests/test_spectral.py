"""CQT, rainbowgram and spectral distance on signals whose answer is known."""

import numpy as np
import pytest

from nsynth_live.spectral import cqt, multires_spectral_distance, plot_rainbowgrams, rainbowgram

SR = 16000
T = np.arange(2 * SR) / SR


@pytest.mark.parametrize("f0", [55.0, 261.63, 1760.0])
def test_cqt_peaks_at_the_tone(f0):
    C, freqs = cqt(np.sin(2 * np.pi * f0 * T))
    k = int(np.argmax(np.abs(C[:, C.shape[1] // 2])))
    assert abs(1200 * np.log2(freqs[k] / f0)) < 1200 / 36  # within one bin


def test_instantaneous_frequency_of_a_steady_tone_is_its_phase_advance():
    f0 = 440.0
    alpha, hue = rainbowgram(np.sin(2 * np.pi * f0 * T), hop=256)
    C, freqs = cqt(np.sin(2 * np.pi * f0 * T))
    k = int(np.argmax(np.abs(C[:, 40])))
    expected = ((2 * np.pi * f0 * 256 / SR + np.pi) % (2 * np.pi) - np.pi) / np.pi
    np.testing.assert_allclose(hue[k, 10:-10], expected, atol=1e-3)
    assert alpha[k, 40] == pytest.approx(1.0, abs=0.05)
    assert alpha[0, 40] < 0.3  # far below the tone: dark


def test_spectral_distance_orders_reconstructions():
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 330 * T) * np.exp(-T)
    assert multires_spectral_distance(x, x) == 0.0
    near = multires_spectral_distance(x, x + 1e-3 * rng.standard_normal(len(x)))
    far = multires_spectral_distance(x, x + 1e-1 * rng.standard_normal(len(x)))
    octave = multires_spectral_distance(x, np.sin(2 * np.pi * 660 * T) * np.exp(-T))
    assert 0 < near < far and near < octave


def test_rainbowgram_png(tmp_path):
    png = tmp_path / "r.png"
    plot_rainbowgrams([("a", np.sin(2 * np.pi * 220 * T)), ("b", np.zeros_like(T))], str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
