"""`nsynth-live evaluate`: figures, baseline, files, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nsynth_live.evaluate import loudness_envelope_noise, summarise, NoteResult
from nsynth_live.train import TrainSettings, train

VENV_BIN = Path(sys.executable).parent


def test_baseline_follows_the_loudness_envelope():
    t = np.arange(64000) / 16000
    note = (np.sin(2 * np.pi * 220 * t) * np.where(t < 3, np.exp(-t), 0.0)).astype(np.float32)
    base = loudness_envelope_noise(note, seed=0)
    rms = lambda x: np.sqrt(np.mean(x.reshape(-1, 1600) ** 2, axis=1))
    r_note, r_base = rms(note), rms(base)
    loud = r_note > 1e-3
    np.testing.assert_allclose(r_base[loud], r_note[loud], rtol=0.25)
    quiet = ~loud & ~np.roll(loud, 1)  # skip the window where the envelope ramps down
    assert r_base[quiet].max() < 1e-3  # silent after the release
    assert not np.array_equal(base, loudness_envelope_noise(note, seed=1))


def test_summary_counts_in_tune_notes():
    rs = [NoteResult("a", 60, 5.0, 10.0, None, 1.0, 3.0), NoteResult("b", 62, 6.0, 80.0, 400.0, 2.0, 4.0)]
    s = summarise(rs)
    assert s["model"]["in_tune"] == 0.5 and s["baseline"]["in_tune"] == 0.0
    assert s["model"]["nll_bits"] == 5.5 and s["baseline"]["spectral_distance"] == 3.5


@pytest.fixture(scope="module")
def tiny_run(nsynth_tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evalrun") / "run"
    train(TrainSettings(config="tiny", data=str(nsynth_tiny), out=str(out), steps=5, batch_size=2, crop=1024,
                        lr=1e-3, checkpoint_every=5, valid_every=5, progress=False, threads=1))
    return out


def test_evaluate_cli_writes_table_json_audio_and_rainbowgrams(tiny_run, nsynth_tiny, tmp_path):
    out = tmp_path / "eval"
    res = subprocess.run(
        [str(VENV_BIN / "nsynth-live"), "evaluate", "--model", str(tiny_run), "--data", str(nsynth_tiny),
         "--split", "test", "--limit", "3", "--seconds", "0.5", "--batch", "2", "--plots", "1",
         "--threads", "1", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "baseline" in res.stdout and "spectral distance" in res.stdout
    summary = json.loads((out / "results.json").read_text())
    assert summary["n_notes"] == 3 and len(summary["notes"]) == 3
    # An untrained-ish model: NLL near but below uniform, finite figures everywhere.
    assert 5.0 < summary["model"]["nll_bits"] < 8.5
    assert summary["baseline"]["nll_bits"] == 8.0
    for note in summary["notes"]:
        assert np.isfinite(note["recon_spectral"]) and np.isfinite(note["baseline_spectral"])
    assert len(list(out.glob("rainbowgram_*.png"))) == 1
    assert len(list((out / "audio").glob("*.reconstruction.wav"))) == 3


def test_evaluate_rejects_a_missing_model(nsynth_tiny, tmp_path):
    res = subprocess.run(
        [str(VENV_BIN / "nsynth-live"), "evaluate", "--model", str(tmp_path / "nope"), "--data", str(nsynth_tiny),
         "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "nope" in res.stderr


def test_an_export_evaluates_like_its_training_run(tiny_run, nsynth_tiny, tmp_path):
    """The same EMA weights through ONNX and a host engine: the same NLL (teacher-forced logits of
    the step graph) and the same reconstructions (one sampling rule, one noise stream)."""
    from nsynth_live.exporters.export import export_model, load_model_from_checkpoint
    from nsynth_live.evaluate import evaluate

    model, source = load_model_from_checkpoint(tiny_run)
    export = export_model(model, tmp_path / "export", source=source)
    kw = dict(split="test", limit=2, seconds=0.25, batch=2, plots=0, progress=False)
    a = evaluate(tiny_run, nsynth_tiny, tmp_path / "a", **kw)
    b = evaluate(export, nsynth_tiny, tmp_path / "b", **kw)
    for na, nb in zip(a["notes"], b["notes"]):
        assert na["note_str"] == nb["note_str"]
        assert na["nll_bits"] == pytest.approx(nb["nll_bits"], rel=1e-4)
        assert na["recon_spectral"] == pytest.approx(nb["recon_spectral"], rel=1e-6)


def test_evaluate_generates_with_the_exports_settings_and_records_them(tiny_run, nsynth_tiny, tmp_path):
    from nsynth_live.exporters.export import export_model, load_model_from_checkpoint
    from nsynth_live.evaluate import evaluate
    from nsynth_live.sampling import Decoding

    model, source = load_model_from_checkpoint(tiny_run)
    plain = export_model(model, tmp_path / "plain", source=source)
    cool = export_model(model, tmp_path / "cool", source=source, decoding=Decoding(0.5, 1.0))
    kw = dict(split="test", limit=2, seconds=0.25, batch=2, plots=0, progress=False)
    a = evaluate(plain, nsynth_tiny, tmp_path / "a", **kw)
    b = evaluate(cool, nsynth_tiny, tmp_path / "b", **kw)
    c = evaluate(plain, nsynth_tiny, tmp_path / "c", temperature=0.5, **kw)
    assert (a["temperature"], b["temperature"], b["excitation_gain"]) == (1.0, 0.5, 1.0)
    for na, nb, nc in zip(a["notes"], b["notes"], c["notes"]):
        assert na["nll_bits"] == nb["nll_bits"]  # the model's own likelihood: decoding plays no part
        assert nb["recon_spectral"] == nc["recon_spectral"]  # the same samples as asking for T = 0.5
        assert na["recon_spectral"] != nb["recon_spectral"]
