"""NSynth reader and Dataset on hand-written data in the real NSynth layout.

The fixture writes examples.json and wavs directly (no FluidSynth), exactly as NSynth ships
them, so these tests pin the format itself; builder round trips are in
test_soundfont_builder.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nsynth_live.errors import UserError
from nsynth_live.nsynth import (
    NOTE_SAMPLES,
    NoteInfo,
    NSynthDataset,
    check_wav,
    count_notes,
    filter_notes,
    load_examples,
    parse_examples,
    read_note,
    resolve_split,
    write_examples,
)

SR = 16000


def entry(instrument_str: str, family: str, source: str, pitch: int, velocity: int,
          instrument: int, note: int, qualities: tuple[str, ...] = ()) -> dict:  # fmt: skip
    from nsynth_live import gm

    note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
    return {
        "note_str": note_str,
        "pitch": pitch,
        "velocity": velocity,
        "instrument": instrument,
        "instrument_str": instrument_str,
        "instrument_family": gm.FAMILY_IDS[family],
        "instrument_family_str": family,
        "instrument_source": gm.SOURCE_IDS[source],
        "instrument_source_str": source,
        "qualities": [int(q in qualities) for q in gm.QUALITIES],
        "qualities_str": list(qualities),
        "sample_rate": SR,
        "note": note,
    }


ENTRIES = [
    entry("bass_synthetic_033", "bass", "synthetic", 22, 50, 417, 201034, ("dark",)),
    entry("bass_synthetic_033", "bass", "synthetic", 60, 127, 417, 201035),
    entry("keyboard_acoustic_004", "keyboard", "acoustic", 60, 100, 12, 77, ("bright", "reverb")),
    entry("keyboard_acoustic_004", "keyboard", "acoustic", 72, 25, 12, 78),
    entry("string_acoustic_012", "string", "acoustic", 48, 75, 90, 5000),
]


def write_split(split_dir: Path, entries: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Write an NSynth split; returns each note's int16 samples."""
    (split_dir / "audio").mkdir(parents=True, exist_ok=True)
    (split_dir / "examples.json").write_text(json.dumps({e["note_str"]: e for e in entries}))
    rng = np.random.default_rng(seed)
    pcm = {}
    for e in entries:
        x = rng.integers(-20000, 20000, NOTE_SAMPLES, dtype=np.int16)
        sf.write(split_dir / "audio" / f"{e['note_str']}.wav", x, SR, subtype="PCM_16")
        pcm[e["note_str"]] = x
    return pcm


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    write_split(tmp_path / "nsynth-train", ENTRIES, seed=0)
    write_split(tmp_path / "nsynth-valid", ENTRIES[:2], seed=1)
    return tmp_path


# ------------------------------------------------------------------------- examples.json


def test_load_examples_reads_every_field(root: Path) -> None:
    notes = load_examples(root / "nsynth-train")
    assert [n.note_str for n in notes] == sorted(e["note_str"] for e in ENTRIES)
    by_name = {n.note_str: n for n in notes}
    for e in ENTRIES:
        n = by_name[e["note_str"]]
        assert isinstance(n, NoteInfo)
        assert n.to_json() == e  # every field, nothing lost or added
    n = by_name["keyboard_acoustic_004-060-100"]
    assert (n.pitch, n.velocity, n.instrument, n.note) == (60, 100, 12, 77)
    assert n.qualities == (1, 0, 0, 0, 0, 0, 0, 0, 1, 0)
    assert n.qualities_str == ("bright", "reverb")
    split = root / "nsynth-train"
    assert n.wav_path(split) == split / "audio" / "keyboard_acoustic_004-060-100.wav"


def test_unknown_fields_are_kept(root: Path) -> None:
    e = dict(ENTRIES[0], soundfont="x.sf2", program=33)
    (notes,) = parse_examples(json.dumps({e["note_str"]: e}))
    assert notes.extra == {"soundfont": "x.sf2", "program": 33}
    assert notes.to_json() == e


def test_write_examples_round_trips_and_is_deterministic(tmp_path: Path, root: Path) -> None:
    notes = load_examples(root / "nsynth-train")
    write_examples(tmp_path, notes[::-1])
    first = (tmp_path / "examples.json").read_bytes()
    write_examples(tmp_path, notes)
    assert (tmp_path / "examples.json").read_bytes() == first
    assert load_examples(tmp_path) == notes
    assert not list(tmp_path.glob(".*.tmp"))


def test_resolve_split(root: Path) -> None:
    assert resolve_split(root, "train") == root / "nsynth-train"
    assert resolve_split(root / "nsynth-valid") == root / "nsynth-valid"
    # A split folder is used as given, whatever the split name.
    assert resolve_split(root / "nsynth-valid", "train") == root / "nsynth-valid"
    with pytest.raises(UserError, match="nsynth-test"):
        resolve_split(root, "test")
    with pytest.raises(UserError, match="unknown split 'dev'"):
        resolve_split(root, "dev")
    with pytest.raises(UserError, match="no such dataset folder"):
        resolve_split(root / "nope", "train")


def test_filters(root: Path) -> None:
    split = root / "nsynth-train"

    def names(**kw) -> list[str]:
        return [n.note_str for n in load_examples(split, **kw)]

    assert names(families=["bass"]) == names(families=[0]) == [
        "bass_synthetic_033-022-050", "bass_synthetic_033-060-127"]  # fmt: skip
    assert names(families=["keyboard", "string"]) == [
        "keyboard_acoustic_004-060-100", "keyboard_acoustic_004-072-025",
        "string_acoustic_012-048-075"]  # fmt: skip
    assert names(sources=["synthetic"]) == names(sources=[2]) == names(families="bass")
    assert names(pitches=(48, 60)) == [
        "bass_synthetic_033-060-127", "keyboard_acoustic_004-060-100",
        "string_acoustic_012-048-075"]  # fmt: skip
    assert names(velocities=[25, 127]) == [
        "bass_synthetic_033-060-127", "keyboard_acoustic_004-072-025"]  # fmt: skip
    assert names(families=["keyboard"], pitches=(61, 127), velocities=[25]) == [
        "keyboard_acoustic_004-072-025"]  # fmt: skip
    with pytest.raises(UserError, match="unknown instrument family 'piano'"):
        load_examples(split, families=["piano"])
    with pytest.raises(UserError, match="empty"):
        filter_notes(load_examples(split), pitches=(70, 60))


def test_count_notes(root: Path) -> None:
    c = count_notes(load_examples(root / "nsynth-train"))
    assert c["family"] == {"bass": 2, "keyboard": 2, "string": 1}
    assert c["pitch"][60] == 2 and c["velocity"][127] == 1
    assert len(c["instrument"]) == 3


# --------------------------------------------------------------------------------- audio


def test_read_note_returns_what_was_written(root: Path) -> None:
    pcm = write_split(root / "nsynth-test", ENTRIES, seed=7)
    split = root / "nsynth-test"
    for n in load_examples(split):
        x = read_note(split, n)
        assert x.dtype == np.float32 and x.shape == (NOTE_SAMPLES,)
        np.testing.assert_array_equal(x, pcm[n.note_str] / np.float32(32768))
        # Only the asked-for frames.
        np.testing.assert_array_equal(read_note(split, n, 1000, 1005), x[1000:1005])
        assert read_note(split, n, NOTE_SAMPLES, NOTE_SAMPLES).shape == (0,)
    with pytest.raises(ValueError):
        read_note(split, n, 10, 5)


def _corrupt(split: Path, note_str: str, how: str) -> Path:
    path = split / "audio" / f"{note_str}.wav"
    if how == "missing":
        path.unlink()
    elif how == "sample rate":
        sf.write(path, np.zeros(NOTE_SAMPLES, np.int16), 22050, subtype="PCM_16")
    elif how == "stereo":
        sf.write(path, np.zeros((NOTE_SAMPLES, 2), np.int16), SR, subtype="PCM_16")
    elif how == "length":
        sf.write(path, np.zeros(NOTE_SAMPLES // 2, np.int16), SR, subtype="PCM_16")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not a wav file at all" * 10)
    return path


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing", "is missing"),
        ("sample rate", "sample rate 22050 Hz, expected 16000"),
        ("stereo", "2 channels, expected mono"),
        ("length", "32000 samples"),
        ("truncated", "samples"),
        ("garbage", "cannot read"),
    ],
)
def test_bad_wavs_are_one_clear_error(root: Path, how: str, message: str) -> None:
    split = root / "nsynth-train"
    note = load_examples(split)[2]
    path = _corrupt(split, note.note_str, how)
    for call in (lambda: read_note(split, note), lambda: check_wav(path, note.note_str)):
        with pytest.raises(UserError) as err:
            call()
        text = str(err.value)
        assert note.note_str in text and str(path) in text and message in text
        assert "\n" not in text
    # The Dataset refuses at construction, not mid-training.
    with pytest.raises(UserError, match=note.note_str):
        NSynthDataset(root, "train")


# --------------------------------------------------------------------- bad examples.json


def _with(changes: dict, drop: str | None = None, key: str | None = None) -> str:
    e = dict(ENTRIES[2], **changes)
    if drop:
        del e[drop]
    others = {x["note_str"]: x for x in ENTRIES[:2]}
    return json.dumps({**others, (key or ENTRIES[2]["note_str"]): e})


NOTE = ENTRIES[2]["note_str"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a": {"pitch": 60,}}', "malformed JSON at line 1 column"),
        ("[1, 2]", "expected a JSON object mapping note_str"),
        (_with({}, key="keyboard_acoustic_004-060-101"),
         "note 'keyboard_acoustic_004-060-101': key does not match its note_str"),
        (_with({}, drop="pitch"), f"note '{NOTE}': missing field pitch"),
        (_with({}, drop="instrument_family_str"), "missing field instrument_family_str"),
        (_with({"instrument_family": 0}),
         f"note '{NOTE}': instrument_family 0 does not match instrument_family_str 'keyboard'"),
        (_with({"instrument_family": 11}), "instrument_family 11 does not match"),
        (_with({"instrument_source_str": "synthetic"}), "instrument_source 0 does not match"),
        (_with({"pitch": "60"}), f"note '{NOTE}': field 'pitch' must be an integer, got '60'"),
        (_with({"velocity": True}), "field 'velocity' must be an integer"),
        (_with({"pitch": 130}), "pitch 130 outside the MIDI range"),
        (_with({"sample_rate": 44100}), "sample_rate 44100, expected 16000"),
        (_with({"qualities": [0, 1]}), "qualities must be a list of 10"),
        (_with({"qualities_str": ["dark"]}), "qualities_str ['dark'] does not match"),
        (_with({"velocity": 101}), "does not match instrument_str/pitch/velocity"),
        (_with({"note": "77"}), "field 'note' must be an integer"),
        (json.dumps({"x": 5}), "note 'x': expected an object"),
        (json.dumps({"x": {"foo": 1}}), "note 'x': missing fields note_str"),
    ],
)
def test_bad_json_is_one_clear_error(root: Path, text: str, message: str) -> None:
    split = root / "nsynth-train"
    (split / "examples.json").write_text(text)
    with pytest.raises(UserError) as err:
        load_examples(split)
    msg = str(err.value)
    assert msg.startswith(str(split / "examples.json") + ": ")
    assert message in msg, msg
    assert "\n" not in msg


def test_missing_examples_json(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="examples.json: no such file"):
        load_examples(tmp_path)


# ------------------------------------------------------------------------- torch Dataset


def test_dataset_items(root: Path) -> None:
    import torch

    ds = NSynthDataset(root, "train", crop=6144, random_crop=False)
    assert len(ds) == len(ENTRIES)
    item = ds[1]
    assert set(item) == {"audio", "pitch", "velocity", "index"}
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (6144,)
    for k in ("pitch", "velocity", "index"):
        assert item[k].dtype == torch.int64 and item[k].shape == ()
    notes = load_examples(root / "nsynth-train")
    assert (item["pitch"].item(), item["velocity"].item(), item["index"].item()) == (
        notes[1].pitch, notes[1].velocity, 1)  # fmt: skip
    # Centred crop over the 4 s note.
    start = (NOTE_SAMPLES - 6144) // 2
    full = read_note(root / "nsynth-train", notes[1])
    np.testing.assert_array_equal(item["audio"].numpy(), full[start : start + 6144])
    assert ds[-1]["index"].item() == len(ds) - 1
    with pytest.raises(IndexError):
        ds[len(ds)]
    whole = NSynthDataset(root, "train", crop=None, random_crop=False)[1]["audio"]
    np.testing.assert_array_equal(whole.numpy(), full)


def test_random_crops_are_a_pure_function_of_seed_epoch_index(root: Path) -> None:
    a = NSynthDataset(root, "train", crop=4096, seed=3)
    b = NSynthDataset(root, "train", crop=4096, seed=3)
    notes = load_examples(root / "nsynth-train")
    offsets = {}
    for epoch in range(3):
        a.set_epoch(epoch)
        for i in range(len(a)):
            off = a.crop_offset(i)
            rng = np.random.default_rng([3, epoch, i])
            assert off == rng.integers(0, NOTE_SAMPLES - 4096 + 1)
            full = read_note(root / "nsynth-train", notes[i])
            np.testing.assert_array_equal(a[i]["audio"].numpy(), full[off : off + 4096])
            offsets[epoch, i] = off
    # A fresh dataset jumped straight to epoch 2 (a resumed run) replays epoch 2's crops, in
    # any order.
    b.set_epoch(2)
    for i in reversed(range(len(b))):
        assert b.crop_offset(i) == offsets[2, i]
        np.testing.assert_array_equal(b[i]["audio"].numpy(), a[i]["audio"].numpy())
    assert len({offsets[e, 0] for e in range(3)}) == 3  # crops move between epochs
    c = NSynthDataset(root, "train", crop=4096, seed=4)
    assert [c.crop_offset(i) for i in range(len(c))] != [offsets[0, i] for i in range(len(c))]


def test_dataset_filters_and_errors(root: Path) -> None:
    ds = NSynthDataset(root, "train", families=["keyboard"], velocities=[25, 100])
    assert [ds.note_strs[i] for i in range(len(ds))] == [
        "keyboard_acoustic_004-060-100", "keyboard_acoustic_004-072-025"]  # fmt: skip
    assert NSynthDataset(root / "nsynth-valid", split="valid").pitches.tolist() == [22, 60]
    with pytest.raises(UserError, match="no notes match"):
        NSynthDataset(root, "train", pitches=(100, 127))
    for crop in (0, NOTE_SAMPLES + 1, 1.5):
        with pytest.raises(UserError, match="crop must be an integer"):
            NSynthDataset(root, "train", crop=crop)


def test_dataset_batches_through_a_dataloader(root: Path) -> None:
    import torch

    ds = NSynthDataset(root, "train", crop=2048)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["audio"].shape == (4, 2048) and batch["pitch"].shape == (4,)
    assert batch["index"].tolist() == [0, 1, 2, 3]
