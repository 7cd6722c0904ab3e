"""Preset banks: round trip, validation of every bad bank, and failed writes changing nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.trajectory import default_regions
from nsynth_live.errors import UserError

FRAMES, WIDTH, HOP = 125, 16, 512


def make_bank(path: Path, n: int = 4, seed: int = 0) -> Bank:
    rng = np.random.default_rng(seed)
    presets = []
    for i in range(n):
        emb = rng.standard_normal((FRAMES, WIDTH)).astype(np.float32)
        presets.append(Preset(f"preset {i}", emb, 48 + i, tags=["test"], regions=default_regions(emb, HOP),
                              provenance={"source": f"note{i}.wav"}))
    bank = Bank(path, "test bank", HOP, 16000, WIDTH, FRAMES, presets, corners=[p.name for p in presets[:4]])
    save_bank(bank)
    return bank


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_round_trip(tmp_path):
    bank = make_bank(tmp_path / "b")
    loaded = load_bank(tmp_path / "b")
    assert loaded.names() == bank.names() and loaded.corners == bank.corners
    for a, b in zip(bank.presets, loaded.presets):
        assert np.array_equal(a.embedding, b.embedding) and a.regions == b.regions
        assert b.source_pitch == a.source_pitch and b.provenance == a.provenance
    assert loaded.get(1).name == "preset 1" and loaded.get("preset 2").source_pitch == 50
    with pytest.raises(UserError, match="no preset named 'nope'"):
        loaded.get("nope")
    with pytest.raises(UserError, match="no preset at index 9"):
        loaded.get(9)


def test_update_replaces_only_what_changed(tmp_path):
    path = tmp_path / "b"
    bank = make_bank(path)
    before = snapshot(path)
    bank.presets[1].embedding = bank.presets[1].embedding + 1.0
    bank.presets.pop(3)
    bank.corners = None
    save_bank(bank)
    after = snapshot(path)
    loaded = load_bank(path)
    assert loaded.names() == ["preset 0", "preset 1", "preset 2"]
    np.testing.assert_array_equal(loaded.presets[1].embedding, bank.presets[1].embedding)
    assert after["preset_0.npy"] == before["preset_0.npy"]
    assert "preset_3.npy" not in after  # no longer used: removed


def corrupt(path: Path, how: str) -> None:
    meta = json.loads((path / "bank.json").read_text())
    if how == "missing npy":
        (path / meta["presets"][0]["file"]).unlink()
    elif how == "wrong shape":
        np.save(path / meta["presets"][0]["file"], np.zeros((FRAMES, WIDTH + 1), np.float32))
    elif how == "nan":
        a = np.zeros((FRAMES, WIDTH), np.float32)
        a[3, 4] = np.nan
        np.save(path / meta["presets"][0]["file"], a)
    elif how == "pickled object array":
        np.save(path / meta["presets"][0]["file"], np.array([{"x": 1}] * FRAMES, dtype=object), allow_pickle=True)
    elif how == "float64":
        np.save(path / meta["presets"][0]["file"], np.zeros((FRAMES, WIDTH), np.float64))
    elif how == "duplicate names":
        meta["presets"][1]["name"] = meta["presets"][0]["name"]
    elif how == "wrong version":
        meta["version"] = 99
    elif how == "bad json":
        (path / "bank.json").write_text("{not json")
        return
    elif how == "path escape":
        meta["presets"][0]["file"] = "../elsewhere.npy"
    elif how == "bad regions":
        meta["presets"][0]["regions"]["sustain_end"] = 500
    elif how == "bad corners":
        meta["corners"] = ["preset 0", "ghost", "preset 1", "preset 2"]
    (path / "bank.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("how,message", [
    ("missing npy", "missing preset file preset_0.npy"),
    ("wrong shape", r"shape \(125, 17\), expected \(125, 16\)"),
    ("nan", "NaN or infinite"),
    ("pickled object array", "not a plain numeric array"),
    ("float64", "dtype float64, expected float32"),
    ("duplicate names", "duplicate preset name 'preset 0'"),
    ("wrong version", "bank version 99"),
    ("bad json", "not valid JSON"),
    ("path escape", "plain .npy file name inside the bank"),
    ("bad regions", "not ordered"),
    ("bad corners", "corners must name 4 presets"),
])
def test_bad_banks_are_refused_with_one_line(tmp_path, how, message):
    path = tmp_path / "b"
    make_bank(path)
    corrupt(path, how)
    with pytest.raises(UserError, match=message) as err:
        load_bank(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_hop_mismatch_with_the_model_is_refused(tmp_path):
    bank = make_bank(tmp_path / "b")
    bank.check_model(HOP, WIDTH)
    with pytest.raises(UserError, match="encoded with hop 512, the model's hop is 256"):
        bank.check_model(256, WIDTH)


def test_a_failed_save_changes_nothing(tmp_path):
    path = tmp_path / "b"
    bank = make_bank(path)
    before = snapshot(path)
    bad = load_bank(path)
    bad.presets.append(Preset("preset 0", bad.presets[0].embedding, 60, regions=bad.presets[0].regions))
    with pytest.raises(UserError, match="duplicate preset name"):
        save_bank(bad)
    bad.presets[-1] = Preset("new", np.full((FRAMES, WIDTH), np.inf, np.float32), 60, regions=bad.presets[0].regions)
    with pytest.raises(UserError, match="finite"):
        save_bank(bad)
    assert snapshot(path) == before
    assert load_bank(path).names() == bank.names()
