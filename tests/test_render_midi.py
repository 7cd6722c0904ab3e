"""render-midi: every note of a multi-track file lands on time, through the live host's voices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from nsynth_live.host.bank import Bank, Preset, save_bank
from nsynth_live.host.trajectory import default_regions

sys.path.insert(0, str(Path(__file__).parent))
from sine_model import sine_model  # noqa: E402

VENV_BIN = Path(sys.executable).parent
TPB = 480


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from nsynth_live.exporters.export import export_model

    root = tmp_path_factory.mktemp("rmidi")
    export = export_model(sine_model(amplitude=0.1), root / "model")  # chords stay below the limiter
    rng = np.random.default_rng(0)
    presets = [Preset(f"p{i}", (e := rng.standard_normal((125, 16)).astype(np.float32)), 60,
                      regions=default_regions(e, 512)) for i in range(3)]
    save_bank(Bank(root / "bank", "r", 512, 16000, 16, 125, presets))
    return export, root / "bank", root


def song(path: Path) -> list[tuple[float, int]]:
    """Two tracks, a tempo change, overlapping notes, the sustain pedal and program changes.
    Returns the expected (onset seconds, pitch), computed here from ticks and tempi."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo = mido.MidiTrack()
    tempo.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))  # 120 bpm
    tempo.append(mido.MetaMessage("set_tempo", tempo=750_000, time=4 * TPB))  # 80 bpm from beat 4
    a = mido.MidiTrack()
    b = mido.MidiTrack()
    mid.tracks += [tempo, a, b]
    # Track a (absolute ticks): notes every beat, each held 1.5 beats (overlapping the next).
    events_a = [(0, mido.Message("program_change", program=1))]
    for i, p in enumerate([60, 64, 67, 72, 76, 79]):
        events_a += [(i * TPB, mido.Message("note_on", note=p, velocity=100)),
                     (i * TPB + 3 * TPB // 2, mido.Message("note_off", note=p))]
    # Track b: the pedal down over a short note, a program change, a late note.
    events_b = [(TPB // 2, mido.Message("control_change", control=64, value=127)),
                (TPB // 2, mido.Message("note_on", note=48, velocity=90)),
                (TPB, mido.Message("note_off", note=48)),
                (5 * TPB, mido.Message("control_change", control=64, value=0)),
                (5 * TPB, mido.Message("program_change", program=2)),
                (7 * TPB, mido.Message("note_on", note=55, velocity=110)),
                (8 * TPB, mido.Message("note_off", note=55))]
    for track, evs in ((a, events_a), (b, events_b)):
        last = 0
        for tick, msg in sorted(evs, key=lambda e: e[0]):
            track.append(msg.copy(time=tick - last))
            last = tick
    mid.save(path)

    def seconds(tick: int) -> float:  # 0.5 s per beat for 4 beats, then 0.75 s per beat
        beats = tick / TPB
        return 0.5 * min(beats, 4) + 0.75 * max(0.0, beats - 4)

    notes = [(i * TPB, p) for i, p in enumerate([60, 64, 67, 72, 76, 79])] + [(TPB // 2, 48), (7 * TPB, 55)]
    return sorted((seconds(t), p) for t, p in notes)


def onsets(audio: np.ndarray, rate: int = 16000, hop: int = 32, win: int = 1024) -> np.ndarray:
    """Spectral-flux onset detector (independent of the project's code): times of flux peaks.

    Long windows resolve the partials of simultaneous notes, so steady chords give no flux; a
    new note's partial grows while it enters the window and its flux peaks when the onset is
    at the window's centre.
    """
    x = np.concatenate([np.zeros(win), audio, np.zeros(win)])
    n = 1 + (len(x) - win) // hop
    frames = np.stack([x[i * hop : i * hop + win] for i in range(n)]) * np.hanning(win)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)  # flux[i]: frame i -> i + 1
    thr = 0.35 * flux.max()  # above the flux of steady notes (mu-law and sampling noise)
    peaks = [i for i in range(1, len(flux) - 1) if flux[i] > thr and flux[i] >= flux[i - 1] and flux[i] > flux[i + 1]]
    times, last = [], -1.0
    for i in peaks:  # one onset per 80 ms
        t = ((i + 1) * hop + win / 2 - win) / rate  # centre of frame i + 1, minus the padding
        if t - last > 0.08:
            times.append(t)
            last = t
    return np.array(times)


def test_onsets_land_within_20ms_of_the_midi_times(setup, tmp_path):
    export, bank, _ = setup
    expected = song(tmp_path / "song.mid")
    out = tmp_path / "song.wav"
    res = subprocess.run([str(VENV_BIN / "nsynth-live"), "render-midi", str(tmp_path / "song.mid"), "--out", str(out),
                          "--model", str(export), "--bank", str(bank), "--engine", "fused"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 16000
    found = onsets(audio)
    for t, pitch in expected:
        err = np.min(np.abs(found - t))
        assert err <= 0.020, f"note {pitch} at {t:.3f} s: nearest onset {err * 1000:.1f} ms away ({found.round(3)})"
    # The sustain pedal holds the short note 48 (released at 0.5 s) until the pedal lifts (2.75 s).
    t = np.arange(len(audio)) / rate
    f48 = 440 * 2 ** ((48 - 69) / 12)
    def level(lo, hi):
        seg = audio[(t >= lo) & (t < hi)]
        ref = np.exp(-2j * np.pi * f48 * np.arange(len(seg)) / rate)
        return np.abs(np.dot(seg, ref)) / len(seg)
    playing = 0.1 * 90 / 127 / 2  # the sine model's amplitude x velocity, as a DFT magnitude
    assert level(0.3, 0.45) > 0.7 * playing  # key down
    assert level(1.5, 2.0) > 0.7 * playing  # key up at 0.5 s, still sounding under the pedal
    assert level(4.5, 5.0) < 0.05 * playing  # after the pedal's release and the release frames


def test_bad_midi_is_one_clear_error(setup, tmp_path):
    export, bank, _ = setup
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really")
    res = subprocess.run([str(VENV_BIN / "nsynth-live"), "render-midi", str(bad), "--out", str(tmp_path / "x.wav"),
                          "--model", str(export), "--bank", str(bank)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "bad.mid: not a readable MIDI file" in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "x.wav").exists()
