"""Output level: one gain per render from model.json's 'level', the calibration that writes it,
and the shipped default's bank landing near full scale without clipping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nsynth_live.cli import main
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.defaults import DEFAULT_BANK, DEFAULT_MODEL
from nsynth_live.host.model_files import load_export
from nsynth_live.host.synth import velocity_gain
from nsynth_live.host.trajectory import default_regions
from nsynth_live.level import Level, output_gain, parse_dbfs, sound_key, to_dbfs

DEMO = ["--presets", "acoustic-grand-piano,flute", "--pitches", "48,52,55,60,64,67,72", "--seconds", "2"]
"""scripts/demo.sh's bank (its velocities are 64,127)."""


def pcm(path: Path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0].astype(np.int64)


def render_bank(*args: str) -> int:
    return main(["render-bank", "--no-progress", *args])


# ----------------------------------------------------------------------------- the rule


def test_levels_parse_as_dbfs_and_bad_ones_are_named():
    assert parse_dbfs("-3") == -3.0 and parse_dbfs("-3dBFS") == -3.0 and parse_dbfs(" -1.5 dB") == -1.5
    for bad in ("3", "loud", "-3 dBV", "-100", "nan"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_dbfs(bad)


def test_the_reference_is_the_loudest_calibrated_preset_played_else_the_loudest_of_all():
    lv = Level(0.5, -6.0, {"a": {"peak": 0.1, "sha256": "aa"}, "b": {"peak": 0.25, "sha256": "bb"}})
    assert lv.reference([("a", "aa")]) == 0.1 and lv.reference([("a", "aa"), ("b", "bb")]) == 0.25
    assert lv.reference([("a", "aa"), ("c", "cc")]) == 0.5  # an uncalibrated sound: the loudest of all
    assert lv.reference([("a", "another bank's a")]) == 0.5 and lv.reference(None) == 0.5
    assert math.isclose(to_dbfs(lv.gain(sounds=[("b", "bb")]) * 0.25), -6.0)
    assert math.isclose(to_dbfs(output_gain(lv, -1.0, sounds=[("a", "aa")]).gain * 0.1), -1.0)
    assert output_gain(lv, off=True).gain == 1.0 and output_gain(None).gain == 1.0
    with pytest.raises(ValueError, match="no level calibration"):
        output_gain(None, -3.0)
    assert Level.from_dict(lv.to_dict()) == lv
    for bad, msg in (({"target_dbfs": -3}, "lacks reference_peak"), ({"reference_peak": 2.0}, "reference_peak"),
                     ({"reference_peak": 0.5, "gain": 2}, "unknown"),
                     ({"reference_peak": 0.5, "presets": {"a": {"peak": 0.9, "sha256": "x"}}}, "'a'")):
        with pytest.raises(ValueError, match=msg):
            Level.from_dict(bad)


# ----------------------------------------------------------------------------- exports with and without


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A random-weight tiny export (no 'level', as every export before calibration) and a bank."""
    from nsynth_live.exporters.export import export_random

    root = tmp_path_factory.mktemp("level")
    export = export_random("tiny", root / "model", seed=0)
    rng = np.random.default_rng(1)
    presets = []
    for i in range(3):
        e = (0.3 * (i + 1) * rng.standard_normal((12, 16))).astype(np.float32)
        presets.append(Preset(f"p{i}", e, 60, regions=default_regions(e, 512)))
    save_bank(Bank(root / "bank", "t", 512, 16000, 16, 12, presets))
    return export, root / "bank"


def test_an_export_without_level_plays_at_gain_1_and_refuses_a_target(tiny, tmp_path, capsys):
    export, bank = tiny
    assert "level" not in json.loads((export / "model.json").read_text())
    common = ["--model", str(export), "--bank", str(bank), "--presets", "p0", "--pitches", "60",
              "--velocities", "127", "--seconds", "0.5"]
    assert render_bank(*common, "--out", str(tmp_path / "a")) == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["settings"]["output_gain"] == 1.0 and manifest["level"]["source"] == "uncalibrated export"
    assert render_bank(*common, "--level", "off", "--out", str(tmp_path / "b")) == 0
    assert np.array_equal(pcm(tmp_path / "a/samples/p0-060-127.wav"), pcm(tmp_path / "b/samples/p0-060-127.wav"))
    capsys.readouterr()
    assert render_bank(*common, "--level", "-3", "--out", str(tmp_path / "c")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no level calibration" in err[0] and "calibrate-level" in err[0]
    assert not (tmp_path / "c").exists()


def test_calibration_records_the_level_and_a_render_of_those_notes_peaks_at_the_target(tiny, tmp_path, capsys):
    src, bank = tiny
    export = tmp_path / "model"
    import shutil

    shutil.copytree(src, export)
    onnx_before = {p.name: p.read_bytes() for p in export.glob("*.onnx")}
    assert main(["calibrate-level", "--model", str(export), "--bank", str(bank), "--pitches", "48,60",
                 "--seconds", "0.5", "--target=-4dBFS"]) == 0
    info = load_export(export)  # model.json changed, the ONNX files did not, and it still validates
    assert {p.name: p.read_bytes() for p in export.glob("*.onnx")} == onnx_before
    lv = info.level
    assert lv is not None and lv.target_dbfs == -4.0
    assert sorted(lv.presets) == ["p0", "p1", "p2"]
    assert lv.reference_peak == max(e["peak"] for e in lv.presets.values())
    for p in load_bank(bank).presets:
        assert lv.presets[p.name]["sha256"] == sound_key(p.name, p.embedding)[1]

    # The calibration's own notes (same seed, length and pitches), rendered: the loudest of them
    # lands on the target; a render of one preset scales by that preset's own peak.
    common = ["--model", str(export), "--bank", str(bank), "--pitches", "48,60", "--velocities", "127",
              "--seconds", "0.5"]
    assert render_bank(*common, "--out", str(tmp_path / "all")) == 0
    peak = max(np.abs(pcm(f)).max() for f in (tmp_path / "all" / "samples").glob("*.wav")) / 32768
    assert abs(to_dbfs(peak) - -4.0) < 0.01
    assert render_bank(*common, "--presets", "p0", "--level=-6dBFS", "--out", str(tmp_path / "p0")) == 0
    peak = max(np.abs(pcm(f)).max() for f in (tmp_path / "p0" / "samples").glob("*.wav")) / 32768
    assert abs(to_dbfs(peak) - -6.0) < 0.01
    manifest = json.loads((tmp_path / "p0" / "manifest.json").read_text())
    assert manifest["level"]["reference_peak"] == lv.presets["p0"]["peak"]

    # A resume with another gain is refused: the files already there carry the first one.
    capsys.readouterr()
    assert render_bank(*common, "--presets", "p0", "--out", str(tmp_path / "p0")) == 2
    assert "output_gain" in capsys.readouterr().err


def test_a_bad_level_in_model_json_is_one_error_naming_it(tiny, tmp_path):
    from nsynth_live.errors import UserError
    import shutil

    export = tmp_path / "model"
    shutil.copytree(tiny[0], export)
    meta = json.loads((export / "model.json").read_text())
    meta["level"] = {"reference_peak": -1}
    (export / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="model.json: bad level calibration .*reference_peak"):
        load_export(export)


# ----------------------------------------------------------------------------- the shipped default


def test_the_shipped_default_is_calibrated_for_its_bank():
    lv = load_export(DEFAULT_MODEL).level
    assert lv is not None and -6 <= lv.target_dbfs <= -1
    bank = load_bank(DEFAULT_BANK)
    for p in bank.presets:
        assert lv.presets[p.name]["sha256"] == sound_key(p.name, p.embedding)[1], p.name


@pytest.mark.slow
def test_the_demo_bank_peaks_near_full_scale_with_one_gain_and_no_clipping(tmp_path):
    assert render_bank(*DEMO, "--velocities", "64,127", "--out", str(tmp_path / "demo")) == 0
    assert render_bank(*DEMO, "--velocities", "127", "--level", "off", "--out", str(tmp_path / "raw")) == 0
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    gain = manifest["settings"]["output_gain"]
    assert manifest["level"]["source"] == "model.json level" and gain > 1
    files = sorted((tmp_path / "demo" / "samples").glob("*.wav"))
    assert len(files) == 28
    peaks = {f.name: np.abs(pcm(f)).max() for f in files}
    assert -6.0 <= to_dbfs(max(peaks.values()) / 32768) <= -1.0, peaks
    assert max(peaks.values()) < 32767  # nothing clips
    g64 = velocity_gain(64)
    for f in files:
        if not f.name.endswith("-127.wav"):
            continue
        loud, raw = pcm(f), pcm(tmp_path / "raw" / "samples" / f.name)
        # Every note carries the same gain: each file is its gain-1 render times the one gain ...
        assert np.abs(loud - gain * raw).max() <= 0.5 + 0.5 * gain, f.name
        # ... and its velocity layers keep their relation.
        soft = pcm(f.with_name(f.name.replace("-127.wav", "-064.wav")))
        assert np.abs(soft - g64 * loud).max() <= 1.0, f.name


@pytest.mark.slow
def test_render_midi_with_the_shipped_default_lands_near_full_scale(tmp_path, capsys):
    phrase = str(Path(__file__).resolve().parents[1] / "presets" / "phrase.mid")
    assert main(["render-midi", phrase, "--preset", "flute", "--out", str(tmp_path / "loud.wav")]) == 0
    assert "model.json level" in capsys.readouterr().out
    assert main(["render-midi", phrase, "--preset", "flute", "--level", "off", "--out", str(tmp_path / "raw.wav")]) == 0
    loud, raw = (np.abs(pcm(tmp_path / f)).max() / 32768 for f in ("loud.wav", "raw.wav"))
    assert -6.0 <= to_dbfs(loud) <= -1.0 and loud < 32767 / 32768
    # Without it, the model's own level: lower by the one gain that brings the flute's calibrated
    # peak to the target (less what the output's soft limiter takes off the loud render's peaks).
    level = json.loads((Path(__file__).resolve().parents[1] / "presets" / "default" / "model" / "model.json").read_text())["level"]
    gain_db = level["target_dbfs"] - to_dbfs(level["presets"]["flute"]["peak"])
    assert gain_db > 3 and gain_db - 2.5 <= to_dbfs(loud) - to_dbfs(raw) <= gain_db + 0.5
