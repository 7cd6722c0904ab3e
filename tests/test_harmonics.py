"""Presets that carry their source note's measured harmonics (:mod:`nsynth_live.harmonics`) and
noise (:mod:`nsynth_live.noise`): the numpy measurement equals training's, banks store and
validate them, ``encode`` measures them for a learned-source export, and the live host,
render-bank and the offline backends play the harmonics in the source network's place and add
the noise to a residual-form model's notes, blended as the embeddings are (real exports, real
ONNX Runtime sessions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nsynth_live import sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config
from nsynth_live.errors import UserError
from nsynth_live.excitation import measured_amplitudes
from nsynth_live.exporters.export import export_model
from nsynth_live.harmonics import at_pitch, fit_frames, measure
from nsynth_live.noise import BANDS
from nsynth_live.noise import measure as measure_noise
from nsynth_live.host import events as ev
from nsynth_live.host import render_bank as rb
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.engines import open_engine
from nsynth_live.host.synth import Synth
from nsynth_live.host.trajectory import bilinear, mix
from nsynth_live.wav import write_wav

FRAMES = 12
SR = 16000


def _note(pitch: int, amps: list[float], n: int = 8000, phase: float = 0.3) -> np.ndarray:
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    t = np.arange(n) / SR
    return sum(a * np.cos(2 * np.pi * (k + 1) * f0 * t + phase * k) for k, a in enumerate(amps)).astype(np.float32)


@pytest.fixture(scope="module")
def model_and_export(tmp_path_factory):
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config("tiny-hn-res")).eval()
    with torch.no_grad():  # a decoder that hears its source
        model.decoder.excitation.weight.mul_(20)
    return model, export_model(model, tmp_path_factory.mktemp("harm") / "model")


@pytest.fixture(scope="module")
def export(model_and_export):
    return model_and_export[1]


def _bank(tmp_path, presets, corners=None) -> Bank:
    save_bank(Bank(tmp_path / "b", "b", 512, SR, 16, FRAMES, presets, corners))
    return load_bank(tmp_path / "b")


def _preset(name: str, seed: int, harmonics: np.ndarray | None, k: int = 8, noise: np.ndarray | None = None) -> Preset:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((FRAMES, 16)).astype(np.float32)
    regions = {"sustain_start": 2, "sustain_end": 5, "release_start": 8}
    return Preset(name, e, 60, regions=regions, harmonics=harmonics, noise=noise)


def _bands(seed: int) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((FRAMES, BANDS))).astype(np.float32) * 0.01


def _harm(seed: int, k: int = 8) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((FRAMES, k))).astype(np.float32) * 0.05


# ----------------------------------------------------------------------------- the measurement


def test_measure_equals_trainings_measurement():
    rng = np.random.default_rng(1)
    audio = np.stack([_note(45, [0.3, 0.1, 0.05]), _note(72, [0.2, 0.2]), 0.1 * rng.standard_normal(8000)])
    audio = audio.astype(np.float32)
    pitch = np.array([45, 72, 100])
    ref = measured_amplitudes(torch.from_numpy(audio), torch.from_numpy(pitch), 12, 512).numpy().transpose(0, 2, 1)
    got = measure(audio, pitch, 12, 512, ref.shape[1])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_measure_reads_a_notes_harmonic_amplitudes():
    got = measure(_note(57, [0.4, 0.0, 0.1])[None], np.array([57]), 5, 512, 20)[0]  # [20, 5]
    held = got[2:-2].mean(0)  # frames whose window lies inside the note
    np.testing.assert_allclose(held, [0.4, 0.0, 0.1, 0.0, 0.0], atol=2e-3)
    assert got.shape == (20, 5)
    np.testing.assert_array_equal(got[-1], got[-5])  # past the note: its last measured frame held


def test_at_pitch_keeps_each_harmonics_amplitude_and_silences_those_above_nyquist():
    h = np.tile(np.arange(1, 7, dtype=np.float32), (3, 1))[None]  # [1, 3 frames, 6 harmonics]
    low = at_pitch(h, np.array([40]), 8)[0]
    np.testing.assert_array_equal(low[0], [1, 2, 3, 4, 5, 6, 0, 0])  # missing harmonics are 0
    high = at_pitch(h, np.array([100]), 4)[0]  # f0 2637 Hz: harmonics 1..3 below 8 kHz
    np.testing.assert_array_equal(high[0], [1, 2, 3, 0])
    assert fit_frames(h, 5).shape == (1, 5, 6) and fit_frames(h, 2).shape == (1, 2, 6)


# ----------------------------------------------------------------------------- banks


def test_a_bank_stores_harmonics_and_older_banks_load_without_them(tmp_path):
    h, z = _harm(1), _bands(1)
    bank = _bank(tmp_path, [_preset("a", 1, h, noise=z), _preset("b", 2, None)])
    np.testing.assert_array_equal(bank.get("a").harmonics, h)
    np.testing.assert_array_equal(bank.get("a").noise, z)
    assert bank.get("b").noise is None
    assert bank.get("b").harmonics is None
    meta = json.loads((tmp_path / "b" / "bank.json").read_text())
    assert meta["presets"][0]["harmonics_file"] == "a.harmonics.npy" and "harmonics_file" not in meta["presets"][1]
    assert meta["presets"][0]["noise_file"] == "a.noise.npy" and "noise_file" not in meta["presets"][1]
    # Saved again unchanged: the same files; without harmonics: their file goes.
    save_bank(bank)
    assert json.loads((tmp_path / "b" / "bank.json").read_text()) == meta
    bank.presets[0].harmonics = bank.presets[0].noise = None
    save_bank(bank)
    assert not (tmp_path / "b" / "a.harmonics.npy").exists() and load_bank(tmp_path / "b").get("a").harmonics is None
    assert not (tmp_path / "b" / "a.noise.npy").exists()


@pytest.mark.parametrize("bad, message", [
    (-np.ones((FRAMES, 8), np.float32), "negative"),
    (np.ones((FRAMES - 1, 8), np.float32), r"expected float32 \(12, K\)"),
    (np.ones((FRAMES, 8), np.float64), r"expected float32 \(12, K\)"),
])
def test_a_bad_harmonics_file_is_refused_naming_it(tmp_path, bad, message):
    _bank(tmp_path, [_preset("a", 1, _harm(1))])
    np.save(tmp_path / "b" / "a.harmonics.npy", bad)
    with pytest.raises(UserError, match=f"a.harmonics.npy.*{message}|{message}.*a.harmonics.npy|harmonics a.harmonics.npy"):
        load_bank(tmp_path / "b")


def test_a_noise_file_of_other_bands_is_refused_naming_it(tmp_path):
    _bank(tmp_path, [_preset("a", 1, _harm(1), noise=_bands(1))])
    np.save(tmp_path / "b" / "a.noise.npy", np.ones((FRAMES, BANDS - 1), np.float32))
    with pytest.raises(UserError, match=rf"noise a.noise.npy is float32 \({FRAMES}, {BANDS - 1}\), expected float32 \({FRAMES}, {BANDS}\)"):
        load_bank(tmp_path / "b")


def test_presets_of_one_bank_share_their_harmonic_count(tmp_path):
    with pytest.raises(UserError, match=r"different harmonic counts \[6, 8\]"):
        _bank(tmp_path, [_preset("a", 1, _harm(1)), _preset("b", 2, _harm(2, 6))])


# ----------------------------------------------------------------------------- encode


def test_encode_stores_the_measured_harmonics_of_a_learned_source_export(export, tmp_path):
    from nsynth_live.host.encode import encode_files, load_note

    wav = tmp_path / "flute.wav"
    write_wav(wav, _note(62, [0.3, 0.15, 0.05], n=64000))
    (p,) = encode_files([wav], export, tmp_path / "bank", pitch=62)
    note = load_note(wav)
    k = get_config("tiny-hn-res").source_harmonics
    np.testing.assert_array_equal(p.harmonics, measure(note[None], np.array([62]), k, 512, p.frames)[0])
    assert load_bank(tmp_path / "bank").get("flute").harmonics.shape == (p.frames, k)
    assert p.harmonics[20:100, 0].mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(p.noise, measure_noise(note, 62, 512, p.frames))


# ----------------------------------------------------------------------------- playing them


@pytest.mark.parametrize("with_noise", [False, True])
def test_the_host_and_render_bank_play_a_presets_measured_harmonics(export, tmp_path, with_noise):
    h = _harm(3)
    bank = _bank(tmp_path, [_preset("solo", 5, h, noise=_bands(4) * 3 if with_noise else None)])
    plain = _bank(tmp_path / "plain", [_preset("solo", 5, None)])
    quiet = _bank(tmp_path / "quiet", [_preset("solo", 5, h)])
    n, hold = rb.note_lengths(0.5)
    frames, _ = rb.note_frames(bank.presets[0].regions, FRAMES, 512, n, hold)
    same = (int(np.argmax(frames == bank.presets[0].regions["release_start"])) - 1) * 512
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        k = eng.cfg.source_harmonics
        # Key 1: render-bank's note id of (preset 0, pitch 1) is the synth's first note's noise id.
        ours = rb.render_notes(eng, [rb.Item(rb.preset_sounds(bank)[0], 1)], n, hold, 11, 1.0)[0]
        network = rb.render_notes(eng, [rb.Item(rb.preset_sounds(plain)[0], 1)], n, hold, 11, 1.0)[0]
        synth = Synth(eng, bank, voices=1, seed=11)
        synth.apply(ev.NoteOn(1, 127), strict=True)
        host = np.concatenate([synth.render(b) for b in [100, 412, 300, 212, 512] + [256] * ((hold - 1536) // 256 + 1)])
        np.testing.assert_array_equal(synth._cond.amplitudes(1, 3), at_pitch(h[None], np.array([1]), k)[0, 3])
        without = rb.render_notes(eng, [rb.Item(rb.preset_sounds(quiet)[0], 1)], n, hold, 11, 1.0)[0]
    np.testing.assert_allclose(host[:same], np.tanh(ours[:same]), rtol=0, atol=3e-7)
    assert np.abs(ours[:same] - network[:same]).max() > 0.05  # not the source network's
    if with_noise:  # the measured noise is added, at its level (the decoder's classes are the same)
        assert 0.005 < np.std(ours[:same] - without[:same]) < 0.1
    else:
        np.testing.assert_array_equal(ours, without)


def test_mixes_and_the_xy_pad_blend_the_harmonics_as_the_embeddings(export, tmp_path):
    hs = [_harm(10 + i) for i in range(4)]
    names = ["p0", "p1", "p2", "p3"]
    bank = _bank(tmp_path, [_preset(n, i, h) for i, (n, h) in enumerate(zip(names, hs))], corners=names)
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        k = eng.cfg.source_harmonics
        synth = Synth(eng, bank, voices=1)
        synth.apply(ev.Mix("p0", "p1", 0.25), strict=True)
        synth._cond.ensure([(60, 4)])
        np.testing.assert_allclose(synth._cond.amplitudes(60, 4),
                                   at_pitch(mix(hs[0], hs[1], 0.25)[None], np.array([60]), k)[0, 4], atol=1e-7)
        synth.apply(ev.XY(0.3, 0.8), strict=True)
        synth._cond.ensure([(60, 4)])
        np.testing.assert_allclose(synth._cond.amplitudes(60, 4),
                                   at_pitch(bilinear(tuple(hs), 0.3, 0.8)[None], np.array([60]), k)[0, 4], atol=1e-7)
        noisy = _bank(tmp_path / "noisy", [_preset(n, i, h, noise=_bands(20 + i)) for i, (n, h) in enumerate(zip(names, hs))],
                      corners=names)
        synth = Synth(eng, noisy, voices=1)
        synth.apply(ev.Mix("p0", "p1", 0.25), strict=True)
        np.testing.assert_allclose(synth._timbre_noise, mix(_bands(20), _bands(21), 0.25), atol=1e-7)
        synth.apply(ev.XY(0.3, 0.8), strict=True)
        np.testing.assert_allclose(synth._timbre_noise, bilinear(tuple(_bands(20 + i) for i in range(4)), 0.3, 0.8),
                                   atol=1e-7)
    grid = rb.grid_sounds(bank, 3, 512)
    np.testing.assert_allclose(grid[4].harmonics, bilinear(tuple(hs), 0.5, 0.5), atol=1e-7)  # the centre
    assert grid[0].harmonics is bank.get("p0").harmonics


def test_the_offline_backends_play_the_harmonics_they_are_given(model_and_export):
    from nsynth_live.evaluate import EngineBackend, RunFusedBackend
    from nsynth_live.host.engines import note_audio, render_frames
    from nsynth_live.noise import note_noise, note_rng

    model, export = model_and_export
    rng = np.random.default_rng(7)
    emb = rng.standard_normal((2, 16, 4)).astype(np.float32)
    pitch = np.array([48, 67])
    h = np.abs(rng.standard_normal((2, 4, 8))).astype(np.float32) * 0.05
    n, dec = 1500, sampling.Decoding(1.0, 1.0)
    ort = EngineBackend(export, "ort", max_voices=2).generate(emb, pitch, n, 3, dec, [0, 1], harmonics=h)
    run = RunFusedBackend(model, max_voices=2, threads=1).generate(emb, pitch, n, 3, dec, [0, 1], harmonics=h)
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:  # the reference: amplitudes given
        amps = at_pitch(h, pitch, eng.cfg.source_harmonics)
        slots = [eng.add_voice() for _ in range(2)]
        classes = render_frames(eng, slots, eng.condition(emb, pitch), n, sampling.NoiseStream(3, [0, 1]), 1.0,
                                pitch=pitch, excitation_gain=1.0, amplitudes=amps)
        ref = note_audio(eng.cfg, classes, amps, pitch)
        network = note_audio(eng.cfg, classes, eng.source_amplitudes(emb, pitch), pitch)
        z = np.abs(rng.standard_normal((2, 4, BANDS))).astype(np.float32) * 0.01
        added = np.stack([note_noise(z[i], n, 512, note_rng(3, i)) for i in range(2)])
        ref_noisy = note_audio(eng.cfg, classes, amps, pitch, added)
    np.testing.assert_allclose(ort, ref, rtol=0, atol=3e-6)
    np.testing.assert_allclose(run, ref, rtol=0, atol=3e-6)
    assert np.abs(ref - network).max() > 0.02  # the given harmonics, not the network's, are added
    noisy = EngineBackend(export, "ort", max_voices=2).generate(emb, pitch, n, 3, dec, [0, 1], harmonics=h, noise=z)
    noisy_run = RunFusedBackend(model, max_voices=2, threads=1).generate(emb, pitch, n, 3, dec, [0, 1], harmonics=h,
                                                                         noise=z)
    np.testing.assert_allclose(noisy, ref_noisy, rtol=0, atol=3e-6)
    assert 0.005 < np.std(ref_noisy - ref) < 0.05  # the noise is there, at its level
    np.testing.assert_allclose(noisy_run, noisy, rtol=0, atol=3e-6)


def test_timbre_jobs_hand_their_harmonics_to_the_render(tmp_path):
    from nsynth_live import timbre

    seen = []

    def render(emb, pitch, n, voices, **kw):
        seen.append(kw.get("harmonics"))
        return np.zeros((len(pitch), n), np.float32)

    e, h = np.zeros((3, 16), np.float32), _harm(1)[:3]
    timbre.render_jobs(render, [(e, 60, h, None), (e, 62, h * 2, None)], 1.0, 512, 8)
    timbre.render_jobs(render, [(e, 60, None, None)], 1.0, 512, 8)
    assert seen[0].shape == (2, 32, 8) and seen[1] is None  # 1 s: 32 frames, the last one held
    np.testing.assert_array_equal(seen[0][1, 31], h[-1] * 2)
    bank = _bank(tmp_path, [_preset("a", 1, _harm(1)), _preset("b", 2, None)])
    with pytest.raises(UserError, match="presets b carry no measured harmonics"):
        timbre.evaluate_timbre(render, 512, bank, tmp_path, [60], harmonics=True)


def test_a_note_of_a_mixed_bank_does_not_depend_on_its_batch(export, tmp_path):
    bank = _bank(tmp_path, [_preset("measured", 5, _harm(3), noise=_bands(4)), _preset("plain", 6, None)])
    n, hold = rb.note_lengths(0.5)
    sounds = rb.preset_sounds(bank)
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        together = rb.render_notes(eng, [rb.Item(sounds[0], 50), rb.Item(sounds[1], 50)], n, hold, 11, 1.0)
        alone = [rb.render_notes(eng, [rb.Item(s, 50)], n, hold, 11, 1.0)[0] for s in sounds]
    np.testing.assert_allclose(together[0], alone[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(together[1], alone[1], rtol=0, atol=1e-6)


def test_bench_timbre_refuses_measured_harmonics_a_bank_does_not_carry(export, tmp_path, capsys):
    from nsynth_live.cli import main

    _bank(tmp_path, [_preset("a", 1, None), _preset("b", 2, None)])
    args = ["bench", "timbre", "--model", str(export), "--bank", str(tmp_path / "b"), "--data", str(tmp_path),
            "--source", "measured", "--json", str(tmp_path / "t.json")]
    assert main(args) != 0
    assert "has presets without measured harmonics" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
