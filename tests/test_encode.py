"""`nsynth-live encode`: ONNX encodings equal PyTorch's, any audio file in, all-or-nothing banks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nsynth_live.host.bank import load_bank
from nsynth_live.host.encode import encode_files, load_note
from nsynth_live.errors import UserError

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def live_export(tmp_path_factory):
    """A random-weight `live` model, in PyTorch and exported."""
    from nsynth_live.exporters.export import export_model
    from nsynth_live.autoencoder import WaveNetAutoencoder
    from nsynth_live.configs import get_config

    torch.manual_seed(3)
    model = WaveNetAutoencoder(get_config("live")).eval()
    out = export_model(model, tmp_path_factory.mktemp("exp") / "live")
    return model, out


@pytest.fixture(scope="module")
def notes(nsynth_tiny) -> list[Path]:
    audio = sorted((nsynth_tiny / "nsynth-train" / "audio").glob("*-06[04]-100.wav"))
    assert len(audio) >= 2
    return audio[:2]


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.exists() else {}


def test_onnx_and_pytorch_encodings_of_the_same_note_agree(live_export, notes, tmp_path):
    model, export = live_export
    presets = encode_files(notes, export, tmp_path / "bank")
    for path, preset in zip(notes, presets):
        audio = torch.from_numpy(sf.read(path, dtype="float32")[0])[None]
        with torch.no_grad():
            ref = model.encode(audio)[0].T.numpy()  # [frames, 16]
        np.testing.assert_allclose(preset.embedding, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        assert preset.embedding.shape == (125, 16)
        pitch = int(path.stem.split("-")[1])
        assert preset.source_pitch == pitch  # estimated from the audio


def test_any_rate_and_channel_count_is_resampled_to_a_4s_mono_note(tmp_path):
    rate = 44100
    t = np.arange(int(2.5 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / "a440.flac"
    sf.write(path, np.stack([tone, 0.5 * tone], 1), rate)
    note = load_note(path)
    assert note.shape == (64000,) and note.dtype == np.float32
    assert np.abs(note[41000:]).max() == 0.0  # 2.5 s of audio, then zero padding
    spectrum = np.abs(np.fft.rfft(note[:32000]))
    assert abs(np.argmax(spectrum) * 16000 / 32000 - 440.0) < 1.0
    assert np.abs(note).max() == pytest.approx(0.225, rel=0.02)  # mono = mean of channels


def test_a_failed_encode_changes_nothing(live_export, notes, tmp_path):
    _, export = live_export
    bank = tmp_path / "bank"
    encode_files(notes[:1], export, bank)
    before = snapshot(bank)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not audio")
    with pytest.raises(UserError, match="broken.wav: cannot read audio"):
        encode_files([notes[1], bad], export, bank)
    with pytest.raises(UserError, match="already has a preset named"):
        encode_files(notes[:1], export, bank)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(UserError, match="silent"):
        encode_files([silent], export, bank)
    assert snapshot(bank) == before
    encode_files(notes[:1], export, bank, replace=True, tags=["again"])
    assert load_bank(bank).presets[0].tags == ["again"]


def test_a_preset_keeps_where_its_note_came_from(live_export, notes, tmp_path):
    _, export = live_export
    where = {"soundfont": "FluidR3_GM.sf2", "bank": 8, "program": 24, "pitch": 60, "velocity": 100}
    encode_files(notes[:1], export, tmp_path / "bank", provenance=where)
    got = load_bank(tmp_path / "bank").presets[0].provenance
    assert {k: got[k] for k in where} == where and got["source"] == Path(notes[0]).name and "model_sha256" in got


def test_cli(live_export, notes, tmp_path):
    _, export = live_export
    bank = tmp_path / "bank"
    res = subprocess.run([str(VENV_BIN / "nsynth-live"), "encode", str(notes[0]), "--model", str(export),
                          "--bank", str(bank), "--name", "lead", "--pitch", "61", "--tags", "a,b"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    p = load_bank(bank).get("lead")
    assert p.source_pitch == 61 and p.tags == ["a", "b"]
    res = subprocess.run([str(VENV_BIN / "nsynth-live"), "presets", "show", str(bank), "lead"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "sustain" in res.stdout
    res = subprocess.run([str(VENV_BIN / "nsynth-live"), "encode", str(notes[0]), str(notes[1]), "--model",
                          str(export), "--bank", str(bank), "--name", "x"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--name needs exactly one audio file" in res.stderr
