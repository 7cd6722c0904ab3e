"""The shipped default (presets/default): its measured figures belong to the files shipped."""

from __future__ import annotations

import json
from pathlib import Path

from nsynth_live.host.bank import load_bank
from nsynth_live.host.model_files import load_export

DEFAULT = Path(__file__).resolve().parents[1] / "presets" / "default"


def test_the_quoted_pitch_accuracy_was_measured_on_the_shipped_model_with_its_decoding():
    info = load_export(DEFAULT / "model")
    bank = load_bank(DEFAULT / "bank")
    measured = json.loads((DEFAULT / "pitch_accuracy.json").read_text())
    assert measured["weights_sha256"] == info.weights_sha256
    assert measured["decoding"] == info.decoding.to_dict()
    # Every preset of the bank at every pitch 36..84: the acceptance measurement, not a sample.
    assert {(n["preset"], n["pitch"]) for n in measured["notes"]} == {
        (p.name, q) for p in bank.presets for q in range(36, 85)}
    assert measured["in_tune"] == sum(n["in_tune"] for n in measured["notes"]) / len(measured["notes"])
    neutral = json.loads((DEFAULT / "pitch_accuracy_neutral.json").read_text())
    assert neutral["weights_sha256"] == info.weights_sha256
    assert neutral["decoding"] == {"temperature": 1.0, "excitation_gain": 1.0}
    assert "temperature" in (DEFAULT / "HOW_IT_WAS_MADE.md").read_text()


def test_the_quoted_timbre_was_measured_on_the_shipped_model_and_bank():
    info = load_export(DEFAULT / "model")
    bank = load_bank(DEFAULT / "bank")
    measured = json.loads((DEFAULT / "timbre.json").read_text())
    assert measured["weights_sha256"] == info.weights_sha256
    assert measured["decoding"] == info.decoding.to_dict()
    assert measured["presets"] == bank.names() and measured["pitches"] == list(range(36, 85))
    # A learned-source default plays its presets' measured harmonics (and a residual-form one adds their noise).
    expected = "model" if not info.config.source_harmonics else \
        "measured harmonics and noise" if info.config.source_residual else "measured harmonics"
    assert measured["source"] == expected
    quoted = f"{100 * measured['identity']:.1f}%"
    assert f"**{quoted}**" in (DEFAULT / "HOW_IT_WAS_MADE.md").read_text()
    assert quoted in (DEFAULT.parents[1] / "README.md").read_text()


def test_a_learned_source_default_ships_each_presets_measured_harmonics():
    info = load_export(DEFAULT / "model")
    bank = load_bank(DEFAULT / "bank")
    if not info.config.source_harmonics:
        assert all(p.harmonics is None for p in bank.presets)
        return
    for p in bank.presets:
        assert p.harmonics is not None and p.harmonics.shape == (bank.frames, info.config.source_harmonics), p.name
        assert p.harmonics[8:63].max() > 1e-3, p.name  # the held part of a real note, not silence
        if info.config.source_residual:
            assert p.noise is not None and p.noise.shape == (bank.frames, 64), p.name
