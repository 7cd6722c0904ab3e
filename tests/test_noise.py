"""A preset's measured noise (:mod:`nsynth_live.noise`): the level of the spectrum between a
note's harmonics, per band, measured and synthesised back at that level, alike block by block
and offline."""

from __future__ import annotations

import numpy as np
import pytest

from nsynth_live import noise

SR = 16000


def _tone(pitch: int, n: int = 64000) -> np.ndarray:
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    t = np.arange(n) / SR
    return sum(0.3 / k * np.cos(2 * np.pi * k * f0 * t + k) for k in range(1, int(7900 / f0)))


@pytest.mark.parametrize("pitch", [48, 60, 72])
def test_measure_reads_the_noise_between_a_notes_harmonics(pitch):
    white = 0.01 * np.random.default_rng(pitch).standard_normal(64000)
    alone = noise.measure(white.astype(np.float32), pitch, 512, 125)
    with_tone = noise.measure((white + _tone(pitch)).astype(np.float32), pitch, 512, 125)
    assert alone.shape == with_tone.shape == (125, noise.BANDS)
    held = slice(8, 110)
    assert np.median(alone[held]) == pytest.approx(0.01, rel=0.1)
    # Harmonics 30 dB above the noise leave the floor between them where it was.
    assert np.median(with_tone[held]) == pytest.approx(np.median(alone[held]), rel=0.1)


def test_synthesis_plays_the_bands_at_their_level_and_where_they_are():
    flat = np.full((300, noise.BANDS), 0.02)
    y = noise.synthesize(flat, 64000, np.random.default_rng(0))
    assert y.std() == pytest.approx(0.02, rel=0.05)
    one = np.zeros((300, noise.BANDS))
    one[:, 20] = 0.02  # 2500-2625 Hz
    z = noise.synthesize(one, 64000, np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(z)) ** 2
    f = np.fft.rfftfreq(len(z), 1 / SR)
    assert spec[(f > 2375) & (f < 2750)].sum() > 0.9 * spec.sum()
    # Measured back: the band, not its neighbours far off.
    back = noise.measure(z, 60, 512, 125)[10:110].mean(0)
    assert np.argmax(back) == 20 and back[:15].max() < 0.1 * back[20]


def test_a_voice_renders_block_by_block_what_the_offline_note_renders():
    rng = np.random.default_rng(3)
    bands = np.abs(rng.standard_normal((8, noise.BANDS))).astype(np.float32) * 0.01  # a frame per hop of 512
    n, hop = 8 * 512, 512
    offline = noise.note_noise(bands, n, hop, noise.note_rng(7, 2))
    voice = noise.NoiseVoice(noise.note_rng(7, 2))
    out, t = [], 0
    for size in [100, 412, 300, 212, 512, 256, 256, 512, 37, 475, 512, 512, 512]:
        size = min(size, n - t)
        if size <= 0:
            break
        out.append(voice.render(size, lambda i, t=t: bands[(t + i) // hop]))
        t += size
    np.testing.assert_allclose(np.concatenate(out), offline, rtol=0, atol=1e-7)
    assert not np.allclose(offline, noise.note_noise(bands, n, hop, noise.note_rng(7, 3)))  # its own stream


def test_an_organs_sub_octave_and_fifth_are_not_read_as_noise():
    f0 = 440.0 * 2 ** ((60 - 69) / 12)
    t = np.arange(64000) / SR
    organ = _tone(60) + 0.3 * np.cos(2 * np.pi * 0.5 * f0 * t) + 0.2 * np.cos(2 * np.pi * 1.5 * f0 * t)
    white = 0.01 * np.random.default_rng(1).standard_normal(64000)
    got = noise.measure((white + organ).astype(np.float32), 60, 512, 125)[8:110]
    assert np.median(got) == pytest.approx(0.01, rel=0.1) and got[:, :4].max() < 0.03
