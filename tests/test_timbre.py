"""The timbre evaluation (nsynth_live.timbre): features, classifier ceiling, identity, blends.

The evaluation is checked against references it must reproduce: a "model" that returns each
source note itself is judged right about as often as the ceiling, one that plays the same plain
sine for every preset is judged near chance, and a blend that crossfades the two sources' audio
rises where one that always plays ``a`` stays flat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nsynth_live import SAMPLE_RATE, timbre
from nsynth_live.host.bank import Bank, Preset
from nsynth_live.nsynth import load_examples

pytestmark = pytest.mark.slow

PITCHES = list(range(56, 65))


def _tone(pitch: int, weights: list[float], n: int = 2 * SAMPLE_RATE) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    return sum(w * np.sin(2 * np.pi * (h + 1) * f0 * t) for h, w in enumerate(weights) if (h + 1) * f0 < 8000)


def test_features_ignore_the_level_and_tell_timbres_apart():
    saw = _tone(60, [1 / h for h in range(1, 20)])
    flute = _tone(60, [1.0, 0.5, 0.05])
    a, b = timbre.note_features(0.3 * saw, 60), timbre.note_features(0.03 * saw, 60)
    assert np.allclose(a, b, atol=1e-3)
    assert np.linalg.norm(a - timbre.note_features(0.3 * flute, 60)) > 10 * np.linalg.norm(a - b) + 0.5
    assert np.all(np.isfinite(timbre.note_features(np.zeros(2 * SAMPLE_RATE), 60)))


def test_ceiling_of_distinct_synthetic_instruments_is_perfect_and_of_identical_ones_is_chance():
    kinds = {"saw": [1 / h for h in range(1, 20)], "square": [1 / h if h % 2 else 0 for h in range(1, 20)],
             "sine": [1.0]}
    x, y, p = [], [], []
    for name, w in kinds.items():
        for q in range(48, 73, 2):
            x.append(timbre.note_features(_tone(q, w), q))
            y.append(name)
            p.append(q)
    acc, pred = timbre.ceiling(np.array(x), y, p)
    assert acc == 1.0 and pred.shape == (len(y),)
    rng = np.random.default_rng(0)
    same = [timbre.note_features(_tone(q, kinds["saw"]) + 0.01 * rng.standard_normal(2 * SAMPLE_RATE), q) for q in p]
    acc_same, _ = timbre.ceiling(np.array(same), y, p)
    assert acc_same < 0.6


def test_blend_pairs_are_deterministic_distinct_and_cross_families():
    presets = [Preset(f"p{i}", np.zeros((4, 16), np.float32), 60, tags=[f"fam{i % 4}"]) for i in range(12)]
    pairs = timbre.blend_pairs(presets, 5)
    assert pairs == timbre.blend_pairs(presets, 5) and len(pairs) == 5
    fam = {p.name: p.tags[0] for p in presets}
    assert all(fam[a] != fam[b] for a, b in pairs)
    assert len({x for pair in pairs for x in pair}) == 10


@pytest.fixture(scope="module")
def bank_and_data(nsynth_tiny) -> tuple[Bank, Path]:
    """A bank of one preset per instrument of the tiny dataset, each naming its C4 source note;
    the embedding's first value is the preset's index (the fake models below read it)."""
    notes = [n for split in ("train", "valid", "test") for n in load_examples(nsynth_tiny / f"nsynth-{split}")
             if n.pitch == 60]
    presets = []
    for i, n in enumerate(sorted(notes, key=lambda n: n.instrument_str)):
        emb = np.zeros((125, 16), np.float32)
        emb[:, 0] = i
        split_tag = "train-split" if (nsynth_tiny / "nsynth-train" / "audio" / f"{n.note_str}.wav").exists() else "test-split"
        presets.append(Preset(n.instrument_str, emb, 60, tags=[n.instrument_family_str, split_tag],
                              provenance={"source": f"{n.note_str}.wav"}))
    bank = Bank(path=nsynth_tiny, name="t", hop=512, sample_rate=SAMPLE_RATE, bottleneck=16, frames=125, presets=presets)
    return bank, nsynth_tiny


def _source_model(bank: Bank, data: Path):
    """A perfect model: each preset renders its source instrument's own note at the pitch."""
    src = timbre.load_source_notes(data, bank.presets, PITCHES)

    def render(emb, pitch, n, voices):
        out = []
        for e, q in zip(emb, pitch):
            t = float(e[0, 0])
            i, frac = int(np.floor(t)), t - np.floor(t)  # a blend between presets i and i + 1
            a = src[(bank.presets[i].name, int(q))][:n]
            b = src[(bank.presets[min(i + 1, len(bank.presets) - 1)].name, int(q))][:n]
            out.append((1 - frac) * a + frac * b)
        return np.stack(out)

    return render


def test_a_perfect_model_is_judged_near_the_ceiling_and_a_plain_sine_near_chance(bank_and_data):
    bank, data = bank_and_data
    good = timbre.evaluate_timbre(_source_model(bank, data), 512, bank, data, PITCHES, pairs=0)
    assert good["identity"] >= good["ceiling"] - 0.1 and good["identity"] >= 0.75
    assert good["in_tune"] > 0.5 and good["timbre_error_db"] < 1.0
    assert set(good["held_out_presets"]) < set(good["presets"])
    assert good["identity_train"] is not None and good["identity_held_out"] is not None
    assert np.array(good["confusion"]).sum() == good["notes"]

    def sine(emb, pitch, n, voices):
        return np.stack([_tone(int(q), [1.0], n) * 0.1 for q in pitch])

    bad = timbre.evaluate_timbre(sine, 512, bank, data, PITCHES, pairs=0)
    assert bad["ceiling"] == good["ceiling"]  # the classifier does not depend on the model
    assert bad["identity"] <= 0.5 and bad["identity"] < good["identity"] - 0.3
    assert bad["timbre_spread_db"] < 1.0 < good["timbre_spread_db"]
    text = timbre.format_table(good)
    assert "identity, held-out instr." in text and bank.presets[0].name in text
    assert timbre.plot_confusion(good)[:8] == b"\x89PNG\r\n\x1a\n"


def test_blends_that_travel_pass_and_blends_that_stay_put_do_not(bank_and_data):
    bank, data = bank_and_data

    pitches = [58, 60, 62]
    src = timbre.load_source_notes(data, bank.presets, PITCHES)
    crossfade = _source_model(bank, data)  # the fixture's embeddings mix like the audio does
    # Blends of neighbouring indices only, so the fixture's embedding -> audio map is exact.
    pairs = [(bank.presets[i].name, bank.presets[i + 1].name) for i in range(len(bank.presets) - 1)]
    keys = sorted(src)
    clf = timbre.IdentityClassifier.fit(np.stack([timbre.note_features(src[k], k[1]) for k in keys]),
                                        [k[0] for k in keys])
    got = timbre.blend_curves(crossfade, 512, bank, clf, pairs, pitches, 2.0, 16, 0)
    assert all(b["monotonic"] for b in got), [(b["a"], b["b"], [round(p, 3) for p in b["p_b"]]) for b in got]
    assert all(b["p_b"][0] < 0.5 < b["p_b"][-1] for b in got)

    def stuck(emb, pitch, n, voices):  # ignores the blend: always the pair's first preset
        first = [max(0, int(np.floor(e[0, 0] - 1e-6))) for e in emb]
        return np.stack([src[(bank.presets[i].name, int(q))][:n] for i, q in zip(first, pitch)])

    flat = timbre.blend_curves(stuck, 512, bank, clf, pairs, pitches, 2.0, 16, 0)
    assert not any(b["monotonic"] for b in flat), flat


def test_reencoding_gives_each_preset_its_source_notes_embedding(bank_and_data):
    bank, data = bank_and_data
    seen = []

    def encode(audio):
        seen.append(audio.shape)
        return np.full((1, 16, 125), float(audio[0].std()), np.float32)

    again = timbre.reencode(bank, data, encode)
    assert [p.name for p in again.presets] == [p.name for p in bank.presets] and seen == [(1, 64000)] * len(bank.presets)
    src = timbre.load_source_notes(data, bank.presets, [60])
    for p in again.presets:
        assert p.embedding.shape == (125, 16) and np.allclose(p.embedding, src[(p.name, 60)].std())
    assert bank.presets[0].embedding[0, 0] == 0  # the original is untouched


def test_the_command_names_a_bad_flag_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "t.json"
    for flags, msg in ((["--step", "0"], "--step 0: must be at least 1"),
                       (["--seconds", "0.5"], "--seconds 0.5: must be at least 1"),
                       (["--presets", "nope"], "the bank has no preset nope")):
        res = subprocess.run([sys.executable, "-m", "nsynth_live", "bench", "timbre", "--data", str(tmp_path),
                              "--json", str(out), *flags], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and msg in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not out.exists()
