"""YIN f0 estimator: accuracy on synthetic tones, octave-error traps, and the torch-free rule."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from nsynth_live.pitch import (
    cents_off,
    default_frame,
    estimate_f0,
    frame_times,
    hz_to_midi,
    midi_to_hz,
    note_f0,
)

SR = 16000
T = np.arange(4 * SR) / SR


def tone(midi: float, amps: list[float], seed: int = 0, sr: int = SR) -> np.ndarray:
    """4 s harmonic tone: amplitude ``amps[k]`` at harmonic k + 1, random phases, band-limited
    below 0.47 * sr (harmonics above Nyquist would alias into non-harmonic partials)."""
    f0 = midi_to_hz(midi)
    rng = np.random.default_rng(seed)
    t = np.arange(4 * sr) / sr
    x = np.zeros_like(t)
    for k, a in enumerate(amps):
        phase = rng.uniform(0, 2 * np.pi)
        if a and f0 * (k + 1) < 0.47 * sr:
            x += a * np.sin(2 * np.pi * f0 * (k + 1) * t + phase)
    return 0.3 * x / max(np.abs(x).max(), 1e-9)


def test_midi_hz_conversions() -> None:
    assert midi_to_hz(69) == 440.0
    assert midi_to_hz(21) == pytest.approx(27.5)
    assert midi_to_hz(108) == pytest.approx(4186.009, rel=1e-6)
    assert hz_to_midi(261.6255653) == pytest.approx(60.0, abs=1e-6)
    np.testing.assert_allclose(hz_to_midi(midi_to_hz(np.arange(128.0))), np.arange(128.0))
    assert math.isnan(hz_to_midi(0.0))
    assert cents_off(440.0 * 2 ** (10 / 1200), 69) == pytest.approx(10.0)
    assert cents_off(220.0, 69) == pytest.approx(-1200.0)


def test_frame_is_chosen_from_fmin() -> None:
    assert default_frame(16000, 25.0) == 2048  # 3 periods of 25 Hz = 1920 samples
    assert default_frame(16000, 50.0) == 1024
    assert default_frame(44100, 25.0) == 8192


def test_frames_and_shapes() -> None:
    x = tone(60, [1.0])
    f0, voiced = estimate_f0(x, SR, hop=256)
    frame = default_frame(SR, 25.0)
    assert f0.shape == voiced.shape == (1 + (x.size - frame) // 256,)
    assert voiced.dtype == bool and voiced.all()
    assert frame_times(f0.size, SR, frame, 256)[0] == pytest.approx(frame / 2 / SR)
    # Audio shorter than a frame is padded to one frame, not an error.
    f0, voiced = estimate_f0(x[:500], SR)
    assert f0.shape == (1,)


@pytest.mark.parametrize("midi", [21, 28, 36, 45, 52, 60, 67, 72, 79, 84, 91, 96, 100, 108])
def test_sine_within_a_cent_across_the_piano(midi: int) -> None:
    # From 27.5 Hz (needs the long frame) to 4186 Hz (a 3.8-sample period: needs sub-sample
    # resolution far beyond a parabola through integer lags).
    f0 = note_f0(tone(midi, [1.0]), SR)
    assert f0 is not None
    assert abs(cents_off(f0, midi)) < 1.0


@pytest.mark.parametrize("midi", [33, 45, 57, 64, 69, 76, 84, 96])
@pytest.mark.parametrize(
    "name, amps",
    [
        ("sawtooth", [1 / k for k in range(1, 30)]),
        ("weak fundamental", [0.05] + [1 / k for k in range(2, 30)]),
        ("missing fundamental", [0.0, 1.0, 0.8, 0.6, 0.5, 0.4]),
        ("odd harmonics (clarinet-like)", [1.0, 0, 0.6, 0, 0.4, 0, 0.3, 0, 0.2]),
    ],
)
def test_harmonic_tones_at_their_fundamental(midi: int, name: str, amps: list[float]) -> None:
    f0 = note_f0(tone(midi, amps), SR)
    assert f0 is not None, name
    assert abs(cents_off(f0, midi)) < 5.0, (name, f0)


@pytest.mark.parametrize("midi", [40, 52, 60, 69, 81, 93])
def test_strong_second_harmonic_is_not_an_octave_up(midi: int) -> None:
    # The 2nd harmonic at 5x the fundamental's amplitude: d'(T/2) dips below YIN's threshold,
    # and plain YIN (first dip wins) reports the octave above. The octave guard must catch it.
    x = tone(midi, [0.2, 1.0])
    assert abs(cents_off(note_f0(x, SR), midi)) < 5.0
    plain = note_f0(x, SR, octave_ratio=0.0)  # guard off: the error the guard exists for
    assert cents_off(plain, midi) == pytest.approx(1200.0, abs=5.0)


@pytest.mark.parametrize("midi", [43, 55, 67, 79, 96])
def test_strong_third_harmonic_is_not_a_twelfth_up(midi: int) -> None:
    x = tone(midi, [0.2, 0.0, 1.0])
    assert abs(cents_off(note_f0(x, SR), midi)) < 5.0


@pytest.mark.parametrize("midi", [36, 60, 72, 84])
def test_clean_tones_are_not_pushed_an_octave_down(midi: int) -> None:
    # A periodic signal is also periodic at 2T and 3T with an equally perfect dip: the guard
    # must not move to them (integer lags near 2T can look deeper than at T without the exact
    # sub-sample evaluation).
    for amps in ([1.0], [1 / k for k in range(1, 12)]):
        f0, voiced = estimate_f0(tone(midi, amps), SR)
        cents = np.array([cents_off(f, midi) for f in f0[voiced]])
        assert np.all(np.abs(cents) < 5.0), (midi, cents.min(), cents.max())


def test_vibrato_tracks_frame_by_frame() -> None:
    f_c, depth, rate = 330.0, 0.02, 5.0  # +-2 % (about 35 cents) at 5 Hz
    inst = f_c * (1 + depth * np.sin(2 * np.pi * rate * T))  # instantaneous frequency [T]
    phase = 2 * np.pi * np.cumsum(inst) / SR
    x = 0.3 * (np.sin(phase) + 0.5 * np.sin(2 * phase))
    hop = 128
    f0, voiced = estimate_f0(x, SR, hop=hop)
    assert voiced.all()
    # Each frame measures the mean period over its window W, shifted by half a period.
    window = default_frame(SR, 25.0) - int(math.ceil(SR / 25.0))
    lag = int(SR / f_c / 2)
    truth = np.array([inst[i * hop + lag : i * hop + lag + window].mean() for i in range(f0.size)])
    cents = 1200 * np.log2(f0 / truth)
    assert np.abs(cents).max() < 3.0
    swing = 1200 * np.log2(f0.max() / f0.min())
    assert swing > 40.0  # the vibrato is followed, not averaged away


def test_unpitched_and_silent_input() -> None:
    noise = np.random.default_rng(0).normal(size=4 * SR) * 0.1
    _, voiced = estimate_f0(noise, SR)
    assert voiced.mean() < 0.05
    assert note_f0(noise, SR) is None
    assert note_f0(np.zeros(4 * SR), SR) is None
    quiet = tone(60, [1.0]) * 10 ** (-80 / 20)  # below the -60 dBFS silence floor
    assert note_f0(quiet, SR) is None
    assert note_f0(quiet, SR, silence_db=-120.0) is not None
    assert note_f0(tone(60, [1.0])[:100], SR) is None  # nothing in the held region


def test_other_sample_rates() -> None:
    x = tone(57, [1 / k for k in range(1, 20)], sr=44100)
    assert abs(cents_off(note_f0(x, 44100), 57)) < 2.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="1-D"):
        estimate_f0(np.zeros((2, 100)), SR)
    with pytest.raises(ValueError, match="fmin"):
        estimate_f0(np.zeros(4000), SR, fmin=500.0, fmax=100.0)
    with pytest.raises(ValueError, match="too short"):
        estimate_f0(np.zeros(4000), SR, frame=8)


def test_pitch_module_never_imports_torch() -> None:
    # The torch-free realtime host reuses pitch.py and gm.py (and the json/wav helpers).
    code = (
        "import sys; import nsynth_live.pitch, nsynth_live.gm, nsynth_live.nsynth; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_harmonic_fraction_separates_tones_at_the_pitch_from_noise_and_wrong_pitches():
    from nsynth_live.pitch import harmonic_fraction

    sr, t = 16000, np.arange(32000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 261.63 * t) + 0.2 * np.sin(2 * np.pi * 523.25 * t)
    assert harmonic_fraction(tone, sr, 60) > 0.95
    assert harmonic_fraction(tone, sr, 67) < 0.05  # the same tone judged against G4
    noise = np.random.default_rng(0).standard_normal(32000) * 0.1
    assert harmonic_fraction(noise, sr, 60) < 0.02
    assert 0.3 < harmonic_fraction(tone + noise * 3, sr, 60) < 0.95
    assert harmonic_fraction(np.zeros(32000), sr, 60) == 0.0


def test_harmonic_profile_reads_each_harmonics_level_and_spread_tells_timbres_apart():
    from nsynth_live.pitch import harmonic_profile, midi_to_hz, profile_spread

    sr, t = 16000, np.arange(32000) / 16000
    f0 = midi_to_hz(57)  # A3, 220 Hz
    saw = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 30) if h * f0 < sr / 2)
    sine = np.sin(2 * np.pi * f0 * t)
    p_saw = harmonic_profile(saw, sr, 57)
    np.testing.assert_allclose(p_saw, -20 * np.log10(np.arange(1, 9)), atol=0.2)  # 1/h amplitudes
    p_sine = harmonic_profile(sine, sr, 57)
    assert p_sine[0] == 0 and np.all(p_sine[1:] == -60.0)  # nothing above the floor
    assert np.all(harmonic_profile(np.zeros(32000), sr, 57) == -60.0)
    # Harmonics at or above Nyquist read the floor: MIDI 108 (4186 Hz) has only its first.
    top = harmonic_profile(np.sin(2 * np.pi * midi_to_hz(108) * t), sr, 108)
    assert top[0] == 0 and np.all(top[1:] == -60.0)
    assert profile_spread(np.array([p_saw, p_saw])) == 0.0
    far = profile_spread(np.array([p_saw, p_sine]))
    near = profile_spread(np.array([p_saw, harmonic_profile(saw + 0.05 * sine, sr, 57)]))
    assert far > 20 and near < 1.0


def test_spread_over_pitches_averages_each_pitchs_spread_and_skips_lone_sounds():
    from nsynth_live.pitch import profile_spread, spread_over_pitches

    a, b, c = np.zeros(4), np.full(4, -6.0), np.array([0.0, -3.0, -6.0, -9.0])
    profiles = {("x", 60): a, ("y", 60): b, ("x", 62): a, ("y", 62): c, ("z", 62): b, ("x", 64): a}
    want = np.mean([profile_spread(np.array([a, b])), profile_spread(np.array([a, c, b]))])
    assert spread_over_pitches(profiles, [60, 62, 64]) == pytest.approx(want)
    assert spread_over_pitches(profiles, [64]) is None
