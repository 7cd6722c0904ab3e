"""bench timbre --diagnose: the measured amplitudes, the four diagnostic renders, and the flag's rules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from nsynth_live import SAMPLE_RATE, sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config
from nsynth_live.evaluate import RunFusedBackend
from nsynth_live.excitation import midi_to_hz
from nsynth_live.host.bank import Bank, Preset
from nsynth_live.nsynth import load_examples
from nsynth_live.residual import IN_PHASE
from nsynth_live.source_diagnosis import (diagnose, format_diagnosis, measured_alone, measured_frames,
                                         measured_through_decoder, preset_note_alone, source_alone,
                                         transposed_frames)


def test_measured_frames_are_each_harmonics_amplitude_at_frame_starts():
    f0 = float(midi_to_hz(np.array([57]))[0])
    t = np.arange(16000) / SAMPLE_RATE
    x = (0.5 * np.cos(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 3 * f0 * t)).astype(np.float32)
    a = measured_frames(x[None], np.array([57]), 8, 512, 40)
    assert a.shape == (1, 8, 40)
    np.testing.assert_allclose(a[0, :4, 5:25].mean(-1), [0.5, 0, 0.2, 0], atol=5e-3)
    np.testing.assert_array_equal(a[0, :, -1], a[0, :, 31])  # past the note's frames the last one holds
    assert np.all(measured_frames(x[None], np.array([100]), 8, 512, 4)[0, 3:] == 0)  # 4 x 2637 Hz > 8 kHz


@pytest.fixture(scope="module")
def bank_and_data(nsynth_tiny):
    notes = [n for s in ("train", "valid") for n in load_examples(nsynth_tiny / f"nsynth-{s}") if n.pitch == 60]
    rng = np.random.default_rng(0)
    presets = [Preset(n.instrument_str, rng.standard_normal((125, 16)).astype(np.float32), 60,
                      tags=[n.instrument_family_str, "train-split"], provenance={"source": f"{n.note_str}.wav"})
               for n in sorted(notes, key=lambda n: n.instrument_str)]
    return Bank(path=nsynth_tiny, name="t", hop=512, sample_rate=SAMPLE_RATE, bottleneck=16, frames=125,
                presets=presets), nsynth_tiny


def _heard_source_run(config: str, voices: int):
    """A random model of ``config`` whose decoder really hears its source (random init barely
    does), its fused backend, and a plain decoding."""
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config(config)).eval()
    with torch.no_grad():
        model.decoder.excitation.weight.mul_(20)
    return model, RunFusedBackend(model, max_voices=voices, threads=1), sampling.Decoding(temperature=1.0,
                                                                                         excitation_gain=1.0)


def test_the_diagnostic_renders_run_and_the_measured_source_reaches_the_decoder(bank_and_data):
    bank, data = bank_and_data
    model, backend, dec = _heard_source_run("tiny-hn", 4)
    emb = np.stack([p.embedding[:63].T for p in bank.presets[:2]])
    pitch = np.array([60, 60])
    alone = source_alone(model)(emb, pitch, 32000, [0, 1])
    with torch.no_grad():
        ref = model.decoder.source(torch.from_numpy(emb), torch.from_numpy(pitch), 32000, raw=True)[1][:, IN_PHASE].numpy()
    np.testing.assert_allclose(alone, ref)
    notes = [np.random.default_rng(i).uniform(-0.5, 0.5, 64000).astype(np.float32) for i in range(2)]
    own = backend.generate(emb, pitch, 4000, 0, dec, [0, 1])
    heard = measured_through_decoder(backend, notes, dec, 0)(emb, pitch, 4000, [0, 1])
    assert heard.shape == own.shape and not np.array_equal(heard, own)
    result = diagnose(model, backend, bank, data, list(range(56, 65)), 2.0, None, dec, 0, 4)
    assert set(result) == {"measured_amplitudes_alone", "source_alone_own_note_embedding", "preset_note_measured_alone",
                           "source_alone", "measured_source_through_decoder"}
    for r in result.values():
        assert 0.0 <= r["identity"] <= 1.0 and 0.0 <= r["in_tune"] <= 1.0 and np.isfinite(r["timbre_error_db"])


def test_the_measured_amplitudes_alone_resynthesise_a_harmonic_note_and_own_embeddings_replace_the_presets():
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config("tiny-hn")).eval()
    f0 = float(midi_to_hz(np.array([57]))[0])
    t = np.arange(32000) / SAMPLE_RATE
    note = (0.5 * np.cos(2 * np.pi * f0 * t) + 0.2 * np.cos(2 * np.pi * 3 * f0 * t)).astype(np.float32)
    emb = np.zeros((1, 16, 63), np.float32)
    out = measured_alone(model, [note])(emb, np.array([57]), 32000, [0])[0]
    # The synthesis has the note's harmonic amplitudes (its phases are the source's own, so
    # compare spectra, not waveforms): the 1st and 3rd harmonic's DFT bins over whole periods.
    seg = slice(8000, 24000)
    spec = lambda x, k: 2 * abs(np.mean(x[seg] * np.exp(-2j * np.pi * k * f0 * t[seg])))  # noqa: E731
    np.testing.assert_allclose([spec(out, 1), spec(out, 2), spec(out, 3)], [0.5, 0.0, 0.2], atol=0.01)
    own = [np.random.default_rng(1).standard_normal((16, 80)).astype(np.float32)]
    got = source_alone(model, own)(emb, np.array([57]), 4000, [0])
    with torch.no_grad():
        ref = model.decoder.source(torch.from_numpy(own[0][None, :, :63]), torch.tensor([57]), 4000, raw=True)[1][:, IN_PHASE]
    np.testing.assert_allclose(got, ref.numpy())
    assert not np.allclose(got, source_alone(model)(emb, np.array([57]), 4000, [0]))


def test_a_residual_runs_diagnosis_reports_its_sampled_residual_against_its_source():
    """For each note rendered over a measured source, the residual-form decoder's output less that
    source (its in-phase sum), over the source: what the notes' audio says, recomputed here."""
    from nsynth_live.residual import in_phase

    model, backend, dec = _heard_source_run("tiny-hn-res", 2)
    t = np.arange(64000) / SAMPLE_RATE
    notes = [(0.3 * np.cos(2 * np.pi * f * t)).astype(np.float32) for f in (float(midi_to_hz(np.array([q]))[0])
                                                                          for q in (57, 64))]
    emb = np.zeros((2, 16, 16), np.float32)
    pitch = np.array([57, 64])
    levels: list[float] = []
    out = measured_through_decoder(backend, notes, dec, 0, levels)(emb, pitch, 8000, [0, 1])
    frames = measured_frames(np.stack(notes), pitch, 8, 512, 16)
    with torch.no_grad():
        _, raw = model.decoder.source(torch.from_numpy(emb), torch.from_numpy(pitch), 8000, raw=True,
                                      frames=torch.from_numpy(frames))
    src = in_phase(raw).numpy()[:, 4000:]
    expected = [float(np.sqrt(np.mean((o[4000:] - s) ** 2) / np.mean(s ** 2))) for o, s in zip(out, src)]
    np.testing.assert_allclose(levels, expected, rtol=1e-5)
    assert all(x > 0 for x in levels)
    row = {"identity": 0.1, "identity_train": 0.1, "identity_held_out": None, "in_tune": 0.5, "timbre_error_db": 12.0}
    table = format_diagnosis({"measured_source_through_decoder": {**row, "residual_to_source": 2.5}})
    assert "RMS over the measured source's (median): 2.50" in table
    assert "residual" not in format_diagnosis({"measured_source_through_decoder": row})


def test_the_presets_note_is_played_at_other_pitches_harmonic_by_harmonic():
    """One measured note (harmonics 1 and 2 at 0.4 / 0.3) played an octave and a half up: the same
    harmonic amplitudes at the new f0, those past Nyquist silent."""
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config("tiny-hn")).eval()  # 8 harmonics
    f0 = float(midi_to_hz(np.array([48]))[0])
    t = np.arange(32000) / SAMPLE_RATE
    note = (0.4 * np.cos(2 * np.pi * f0 * t) + 0.3 * np.cos(2 * np.pi * 2 * f0 * t)).astype(np.float32)
    emb = np.zeros((2, 16, 63), np.float32)
    out = preset_note_alone(model, [(note, 48), (note, 48)])(emb, np.array([66, 48]), 32000, [0, 1])
    f1 = float(midi_to_hz(np.array([66]))[0])
    seg = slice(8000, 24000)
    spec = lambda x, f, k: 2 * abs(np.mean(x[seg] * np.exp(-2j * np.pi * k * f * t[seg])))  # noqa: E731
    np.testing.assert_allclose([spec(out[0], f1, 1), spec(out[0], f1, 2), spec(out[0], f1, 3)], [0.4, 0.3, 0.0],
                               atol=0.01)
    np.testing.assert_allclose([spec(out[1], f0, 1), spec(out[1], f0, 2)], [0.4, 0.3], atol=0.01)
    amps = np.ones((8, 3), np.float32)
    high = transposed_frames(amps, 100, 5)  # MIDI 100: 2637 Hz, harmonics 1-3 below 8 kHz
    assert high.shape == (8, 5) and high[:3].min() == 1.0 and high[3:].max() == 0.0


def test_diagnose_needs_a_learned_source_run(tmp_path):
    res = subprocess.run([sys.executable, "-m", "nsynth_live", "bench", "timbre", "--data", str(tmp_path), "--diagnose",
                          "--json", str(tmp_path / "t.json")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--diagnose: needs --run" in res.stderr, res.stderr
    assert not (tmp_path / "t.json").exists()
