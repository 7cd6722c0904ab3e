"""Decoding settings (temperature, excitation gain): checked, recommended by an export, applied
alike by the PyTorch generator and both engines, and overridden per command."""

from __future__ import annotations

import copy
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import torch

from nsynth_live.exporters.export import export_model
from nsynth_live.host.bank import Bank, Preset, save_bank
from nsynth_live.host.engines import open_engine, render_frames
from nsynth_live.host.model_files import load_export
from nsynth_live.host.trajectory import default_regions
from nsynth_live import sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config
from nsynth_live.generate import generate_classes
from nsynth_live.sampling import Decoding

sys.path.insert(0, str(Path(__file__).parent))
from sine_model import sine_model  # noqa: E402
from test_engine_fused import first_difference_is_a_near_tie  # noqa: E402

NSYNTH_LIVE = str(Path(sys.executable).parent / "nsynth-live")
EXC_CONFIG = dataclasses.replace(get_config("tiny"), name="tiny-exc", excitation_harmonics=2)


@pytest.mark.parametrize("kwargs, named", [
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": math.nan}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"excitation_gain": -0.5}, "excitation gain"),
    ({"excitation_gain": math.inf}, "excitation gain"),
    ({"excitation_gain": "2"}, "excitation gain"),
])
def test_bad_settings_are_refused_naming_the_setting(kwargs, named):
    with pytest.raises(ValueError, match=named):
        Decoding(**kwargs)


def test_settings_parse_from_json_and_override():
    d = Decoding.from_dict({"excitation_gain": 3})
    assert d == Decoding(1.0, 3.0) and d.to_dict() == {"temperature": 1.0, "excitation_gain": 3.0}
    assert d.override(temperature=0.5) == Decoding(0.5, 3.0)
    assert d.override(excitation_gain=0.0) == Decoding(1.0, 0.0)  # 0 is a value, not "unset"
    assert d.override() == d
    with pytest.raises(ValueError, match="unknown key"):
        Decoding.from_dict({"temp": 0.5})
    with pytest.raises(ValueError, match="object"):
        Decoding.from_dict([0.5])


def exc_model(seed: int = 6) -> WaveNetAutoencoder:
    torch.manual_seed(seed)
    return WaveNetAutoencoder(EXC_CONFIG).eval()


def scaled(model: WaveNetAutoencoder, gain: float) -> WaveNetAutoencoder:
    """The model with its excitation projection scaled: what a gain on the excitation means."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.decoder.excitation.weight.mul_(gain)
    return out


def test_a_gain_on_the_excitation_is_the_model_with_its_projection_scaled():
    m, gain, n = exc_model(), 2.5, 1500
    emb, pitch = torch.randn(2, 16, 3), torch.tensor([45, 76])
    ours = generate_classes(m, emb, pitch, n, seed=2, excitation_gain=gain).numpy()
    ref = generate_classes(scaled(m, gain), emb, pitch, n, seed=2).numpy()
    plain = generate_classes(m, emb, pitch, n, seed=2).numpy()
    assert (ours != plain).mean() > 0.3  # the gain changes what is played
    noise = sampling.NoiseStream(2, [0, 1]).draw(n)
    x = torch.from_numpy(ours)
    # Our stream's own logits, from the scaled model teacher-forced: the near-tie test's reference.
    from nsynth_live import mulaw

    with torch.no_grad():
        logits = scaled(m, gain).decoder(mulaw.to_input(x).float(), emb, pitch).permute(0, 2, 1).numpy()
    first_difference_is_a_near_tie(scaled(m, gain).decoder, emb, pitch, ours, ref, noise, logits)


@pytest.mark.parametrize("kind", ["ort", "fused"])
def test_engines_play_the_exports_recommended_gain_and_take_an_override(kind, tmp_path):
    m, gain, n = exc_model(), 2.5, 1200
    export = export_model(m, tmp_path / "exp", decoding=Decoding(1.0, gain))
    assert load_export(export).decoding == Decoding(1.0, gain)
    emb, pitch = torch.randn(2, 16, 3), np.array([50, 71])
    noise = sampling.NoiseStream(3, [0, 1]).draw(n)
    with open_engine(export, kind, max_voices=2) as eng:
        def play(**kw):
            slots = [eng.add_voice(), eng.add_voice()]
            logits = np.empty((2, n, 256), np.float32)
            out = render_frames(eng, slots, eng.condition(emb.numpy(), pitch), n, noise, block=200,
                                logits_out=logits, pitch=pitch, **kw)
            for s in slots:
                eng.remove_voice(s)
            return out, logits

        recommended, lo_rec = play()
        overridden, lo_one = play(excitation_gain=1.0)
    p = torch.from_numpy(pitch)
    ref = generate_classes(m, emb, p, n, seed=3, excitation_gain=gain).numpy()
    first_difference_is_a_near_tie(scaled(m, gain).decoder, emb, p, recommended, ref, noise, lo_rec)
    ref_one = generate_classes(m, emb, p, n, seed=3).numpy()
    first_difference_is_a_near_tie(m.decoder, emb, p, overridden, ref_one, noise, lo_one)
    assert (recommended != overridden).mean() > 0.3


def test_render_frames_samples_at_the_exports_recommended_temperature(tmp_path):
    export = export_model(exc_model(), tmp_path / "exp", decoding=Decoding(0.6, 1.0))
    emb, pitch, n = np.random.default_rng(0).standard_normal((2, 16, 3)).astype(np.float32), np.array([55, 67]), 900
    noise = sampling.NoiseStream(4, [0, 1]).draw(n)
    outs = {}
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        for label, t in (("default", None), ("0.6", 0.6), ("1.0", 1.0)):
            slots = [eng.add_voice(), eng.add_voice()]
            outs[label] = render_frames(eng, slots, eng.condition(emb, pitch), n, noise, t, pitch=pitch)
            for s in slots:
                eng.remove_voice(s)
    np.testing.assert_array_equal(outs["default"], outs["0.6"])
    assert (outs["default"] != outs["1.0"]).mean() > 0.3


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def sine_exports(tmp_path_factory):
    """The sine model (its output amplitude is linear in the excitation) exported with gain 1
    and with a recommended gain of 0.5; a one-preset bank; a one-note MIDI file."""
    root = tmp_path_factory.mktemp("decoding")
    model = sine_model(amplitude=0.4)
    one = export_model(model, root / "one")
    half = export_model(model, root / "half", decoding=Decoding(1.0, 0.5))
    e = np.random.default_rng(0).standard_normal((60, 16)).astype(np.float32)
    save_bank(Bank(root / "bank", "b", 512, 16000, 16, 60, [Preset("p", e, 60, regions=default_regions(e, 512))]))
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track += [mido.Message("note_on", note=69, velocity=127, time=0), mido.Message("note_off", note=69, time=960)]
    mid.tracks.append(track)
    mid.save(root / "a4.mid")
    return root, one, half


def render_midi(root: Path, model: Path, out: Path, *extra: str) -> np.ndarray:
    res = subprocess.run([NSYNTH_LIVE, "render-midi", str(root / "a4.mid"), "--out", str(out), "--model", str(model),
                          "--bank", str(root / "bank"), "--engine", "fused", *extra],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return sf.read(out, dtype="float32")[0]


def test_render_midi_plays_the_recommended_gain_unless_told_otherwise(sine_exports, tmp_path):
    root, one, half = sine_exports
    full = render_midi(root, one, tmp_path / "one.wav")
    quiet = render_midi(root, half, tmp_path / "half.wav")
    asked = render_midi(root, one, tmp_path / "asked.wav", "--excitation-gain", "0.5")
    restored = render_midi(root, half, tmp_path / "restored.wav", "--excitation-gain", "1")
    held = slice(1600, 14000)  # the held note (1 s at 120 bpm), past the onset

    def rms(a):
        return float(np.sqrt(np.mean(a[held] ** 2)))

    assert 0.45 < rms(quiet) / rms(full) < 0.55  # the sine model's level follows its excitation
    np.testing.assert_array_equal(quiet, asked)
    np.testing.assert_array_equal(full, restored)


def test_a_bad_gain_is_one_line_naming_it(sine_exports, tmp_path):
    root, one, _ = sine_exports
    out = tmp_path / "x.wav"
    res = subprocess.run([NSYNTH_LIVE, "render-midi", str(root / "a4.mid"), "--out", str(out), "--model", str(one),
                          "--bank", str(root / "bank"), "--excitation-gain", "-1"], capture_output=True, text=True)
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "--excitation-gain -1" in res.stderr, res.stderr
    assert not out.exists()


def test_render_bank_renders_and_records_the_gain_and_refuses_another_on_resume(sine_exports, tmp_path):
    import json

    root, one, half = sine_exports

    def bank(model, out, *extra):
        return subprocess.run([NSYNTH_LIVE, "render-bank", "--model", str(model), "--bank", str(root / "bank"),
                               "--out", str(out), "--pitches", "69", "--velocities", "127", "--seconds", "1",
                               "--no-progress", *extra], capture_output=True, text=True, timeout=600)

    for model, out in ((one, tmp_path / "one"), (half, tmp_path / "half")):
        assert bank(model, out).returncode == 0
    settings = json.loads((tmp_path / "half" / "manifest.json").read_text())["settings"]
    assert settings["excitation_gain"] == 0.5 and settings["temperature"] == 1.0
    a = sf.read(tmp_path / "one" / "samples" / "p-069-127.wav", dtype="float32")[0][1600:8000]
    b = sf.read(tmp_path / "half" / "samples" / "p-069-127.wav", dtype="float32")[0][1600:8000]
    assert 0.45 < np.sqrt(np.mean(b**2) / np.mean(a**2)) < 0.55
    res = bank(half, tmp_path / "half", "--excitation-gain", "1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "settings.excitation_gain is 0.5 there but 1.0" in res.stderr



def test_a_live_gain_change_takes_effect_at_the_next_block(sine_exports):
    from nsynth_live.host import events as ev
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.synth import Synth

    root, one, half = sine_exports
    with open_engine(half, "fused", max_voices=2, threads=1) as eng:
        synth = Synth(eng, load_bank(root / "bank"))
        assert (synth.temperature, synth.excitation_gain) == (1.0, 0.5)  # the export's recommendation
        synth.note_on(69, 127)
        before = np.concatenate([synth.render(256) for _ in range(24)])[2048:]
        synth.apply(ev.ExcitationGain(1.0), strict=True)  # what /nsynth/excitation_gain 1 sends
        synth.apply(ev.Temperature(0.5), strict=True)
        after = np.concatenate([synth.render(256) for _ in range(16)])
    assert (synth.temperature, synth.excitation_gain) == (0.5, 1.0)
    ratio = np.sqrt(np.mean(after**2) / np.mean(before**2))
    assert 1.8 < ratio < 2.2, ratio
