"""Soundfont dataset builder with real FluidSynth and real soundfonts, and its CLI.

TimGM6mb (the timgm6mb-soundfont package) is what CI installs; FluidR3_GM is used where present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nsynth_live import gm, soundfont
from nsynth_live.errors import UserError
from nsynth_live.int_list import parse_int_list
from nsynth_live.nsynth import NOTE_SAMPLES, SPLITS, load_examples, read_note
from nsynth_live.pitch import cents_off, note_f0
from nsynth_live.soundfont import (
    DEFAULT_GAIN,
    Renderer,
    build_dataset,
    split_instruments,
    to_pcm16,
    wav_bytes,
)

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

pytestmark = pytest.mark.skipif(not TIMGM.is_file(), reason="timgm6mb-soundfont not installed")


def files_of(root: Path) -> dict[str, bytes]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def build(out: Path, **kw):
    args = dict(programs=[0, 73], pitches=range(48, 73, 4), velocities=[100], workers=1,
                progress=False)  # fmt: skip
    args.update(kw)
    return build_dataset(TIMGM, out, **args)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, object]:
    """Acoustic grand piano (0) and flute (73), pitches 48..72 every 4, velocity 100."""
    out = tmp_path_factory.mktemp("small")
    return out, build(out)


@pytest.fixture(scope="module")
def six(tmp_path_factory) -> tuple[Path, object]:
    """Six instruments (so valid and test get one each) rendered by two worker processes."""
    out = tmp_path_factory.mktemp("six")
    with pytest.MonkeyPatch.context() as mp:
        # Real builds only start workers for hundreds of notes; force the pool for 24.
        mp.setattr(soundfont, "MIN_NOTES_PER_WORKER", 1)
        report = build(out, programs=[0, 24, 33, 40, 56, 73], pitches=[60, 64],
                       velocities=[50, 127], workers=2)  # fmt: skip
    return out, report


def all_notes(root: Path) -> dict[str, list]:
    return {s: load_examples(root / f"nsynth-{s}") for s in SPLITS}


# ------------------------------------------------------------------------ acceptance (a), (b)


def test_rendered_notes_sound_at_their_midi_pitch(small) -> None:
    root, report = small
    notes = [n for s in SPLITS for n in load_examples(root / f"nsynth-{s}")]
    assert len(notes) == report.requested == 2 * 7 and not report.silent
    cents = {}
    for n in notes:
        split_dir = next(
            root / f"nsynth-{s}" for s in SPLITS if n.wav_path(root / f"nsynth-{s}").exists()
        )
        f0 = note_f0(read_note(split_dir, n), 16000)
        cents[n.note_str] = None if f0 is None else cents_off(f0, n.pitch)
    good = [c is not None and abs(c) <= 50 for c in cents.values()]
    assert sum(good) >= 0.9 * len(good), cents


def test_reader_round_trips_builder_output(small) -> None:
    root, report = small
    raw = {s: json.loads((root / f"nsynth-{s}" / "examples.json").read_text()) for s in SPLITS}
    renderer = Renderer(TIMGM, DEFAULT_GAIN)
    try:
        for split, notes in all_notes(root).items():
            assert [n.note_str for n in notes] == sorted(raw[split])
            for n in notes:
                assert n.to_json() == raw[split][n.note_str]  # every field
                program = n.extra["program"]
                assert n.note_str == f"{n.instrument_str}-{n.pitch:03d}-{n.velocity:03d}"
                assert (n.instrument_family, n.instrument_family_str) == gm.program_family(program)
                assert (n.instrument_source, n.instrument_source_str) == gm.program_source(program)
                prefix = f"{n.instrument_family_str}_{n.instrument_source_str}_"
                assert n.instrument_str.startswith(prefix)
                assert n.qualities == (0,) * 10 and n.qualities_str == () and n.sample_rate == 16000
                assert n.extra["soundfont"] == "TimGM6mb.sf2"
                assert n.extra["program_name"] == gm.program_name(program)
                assert n.extra["preset_name"]
                # The audio read back is exactly the audio rendered.
                pcm, clipped = to_pcm16(renderer.render(program, n.pitch, n.velocity))
                audio = read_note(root / f"nsynth-{split}", n)
                np.testing.assert_array_equal(audio, pcm / np.float32(32768))
                wav = root / f"nsynth-{split}" / "audio" / f"{n.note_str}.wav"
                assert wav.read_bytes() == wav_bytes(pcm)
                assert not clipped and 0.01 < np.abs(audio).max() < 1.0
    finally:
        renderer.close()
    assert {n.extra["program"]: n.instrument_str for s in all_notes(root).values() for n in s} == {
        0: "keyboard_acoustic_000", 73: "flute_acoustic_000"}  # fmt: skip
    assert report.rendered == report.requested and report.reused == 0


def test_notes_are_dry_and_released(small) -> None:
    root, _ = small
    n = next(x for x in load_examples(root / "nsynth-train") if x.extra["program"] == 73)
    x = read_note(root / "nsynth-train", n)
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    held, released = rms(x[16000:47000]), rms(x[60000:])
    assert held > 0.01
    # The flute stops after note-off at 3 s; reverb would leave a tail.
    assert released < 0.01 * held
    assert np.abs(x[:32]).max() < np.abs(x[:4000]).max()  # note-on at 0: the attack starts there


# -------------------------------------------------------------------------------- (d) builds


def test_two_builds_are_byte_identical_whatever_the_workers(six, tmp_path) -> None:
    root, report = six
    assert report.workers == 2
    again = build(tmp_path / "again", programs=[0, 24, 33, 40, 56, 73], pitches=[60, 64],
                  velocities=[50, 127], workers=1)  # fmt: skip
    first, second = files_of(root), files_of(tmp_path / "again")
    assert first.keys() == second.keys()
    assert len([k for k in first if k.endswith(".wav")]) == report.requested == 24
    differing = [k for k in first if first[k] != second[k]]
    assert not differing
    assert again.requested == report.requested


def test_renderer_is_history_independent() -> None:
    # FluidSynth voices keep state from their previous note; the builder primes each note so
    # any order of notes, in any process, renders the same samples.
    notes = [(0, 60, 127), (40, 55, 50), (73, 72, 100), (24, 40, 75), (0, 84, 25)]
    fonts = [p for p in (TIMGM, FLUIDR3) if p.is_file()]
    for font in fonts:
        a, b = Renderer(font), Renderer(font)
        try:
            ref = [a.render(*n).copy() for n in notes]
            for n, r in reversed(list(zip(notes, ref))):
                np.testing.assert_array_equal(b.render(*n), r)
        finally:
            a.close()
            b.close()


def test_splits_are_disjoint_by_instrument(six) -> None:
    root, report = six
    per_split = {s: {n.instrument_str for n in notes} for s, notes in all_notes(root).items()}
    assert [len(per_split[s]) for s in SPLITS] == [4, 1, 1]
    assert not (per_split["train"] & per_split["valid"] or per_split["train"] & per_split["test"]
                or per_split["valid"] & per_split["test"])  # fmt: skip
    assert {s: sorted(v) for s, v in per_split.items()} == {
        s: sorted(report.instruments[s]) for s in SPLITS}  # fmt: skip
    for s in SPLITS:  # each instrument's wavs live in its own split only
        wavs = {p.name.rsplit("-", 2)[0] for p in (root / f"nsynth-{s}" / "audio").glob("*.wav")}
        assert wavs == per_split[s]


def test_split_assignment() -> None:
    assert split_instruments(1, (0.8, 0.1, 0.1), 0) == ([0], [], [])
    assert split_instruments(2, (0.8, 0.1, 0.1), 0) == ([0, 1], [], [])
    assert split_instruments(2, (0.2, 0.4, 0.4), 0)[0]  # train is never empty
    tr, va, te = split_instruments(10, (0.8, 0.1, 0.1), 0)
    assert (len(tr), len(va), len(te)) == (8, 1, 1)
    assert sorted(tr + va + te) == list(range(10))
    assert split_instruments(10, (0.8, 0.1, 0.1), 0) == (tr, va, te)  # seeded
    assert any(split_instruments(10, (0.8, 0.1, 0.1), s) != (tr, va, te) for s in range(1, 5))
    assert [len(x) for x in split_instruments(5, (0.8, 0.1, 0.1), 0)] == [3, 1, 1]


def test_resume_renders_only_missing_or_broken_notes(tmp_path) -> None:
    out = tmp_path / "ds"
    first = build(out, programs=[0, 40], pitches=[60, 62, 64])
    before = files_of(out)
    wavs = sorted(out.rglob("*.wav"))
    assert len(wavs) == 6
    gone, cut = wavs[0], wavs[3]
    gone.unlink()
    cut.write_bytes(cut.read_bytes()[:5000])  # a half-written file from a crash
    for s in SPLITS:
        (out / f"nsynth-{s}" / "examples.json").unlink()
    stale = cut.parent / f".{cut.name}.abc123.tmp"
    stale.write_bytes(b"partial")
    mtimes = {p: p.stat().st_mtime_ns for p in wavs if p not in (gone, cut)}

    again = build(out, programs=[0, 40], pitches=[60, 62, 64])
    assert (again.rendered, again.reused) == (2, 4)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # the others were not touched
    assert files_of(out) == before  # restored bit for bit, examples.json included
    assert not stale.exists()
    assert first.requested == again.requested == 6


def test_rerun_with_other_settings_is_refused(tmp_path) -> None:
    out = tmp_path / "ds"
    build(out, programs=[0], pitches=[60])
    with pytest.raises(UserError, match="gain.*differ|differ.*gain"):
        build(out, programs=[0], pitches=[60], gain=0.3)
    with pytest.raises(UserError, match="pitches"):
        build(out, programs=[0], pitches=[61])
    # An NSynth dataset not made by the builder is never written into.
    real = tmp_path / "real"
    (real / "nsynth-train").mkdir(parents=True)
    (real / "nsynth-train" / "examples.json").write_text("{}")
    with pytest.raises(UserError, match="not made by this builder"):
        build(real, programs=[0], pitches=[60])
    assert (real / "nsynth-train" / "examples.json").read_text() == "{}"


def test_silent_notes_are_skipped_and_reported(tmp_path) -> None:
    # TimGM6mb's piano has no sample that reaches above MIDI 108.
    report = build(tmp_path, programs=[0], pitches=[107, 108, 109, 110])
    assert report.silent == ["keyboard_acoustic_000-109-100", "keyboard_acoustic_000-110-100"]
    notes = [n.note_str for s in SPLITS for n in load_examples(tmp_path / f"nsynth-{s}")]
    assert notes == ["keyboard_acoustic_000-107-100", "keyboard_acoustic_000-108-100"]
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == [n + ".wav" for n in notes]
    assert "skipped 2 silent notes" in report.summary()


def test_clipping_is_reported(tmp_path) -> None:
    report = build(tmp_path, programs=[0], pitches=[60], velocities=[127], gain=10.0)
    assert report.clipped == ["keyboard_acoustic_000-060-127"] and report.max_peak > 1.0
    assert "clipped" in report.summary()
    x = read_note(tmp_path / "nsynth-train", load_examples(tmp_path / "nsynth-train")[0])
    assert x.max() == pytest.approx(32767 / 32768) or x.min() == -1.0
    pcm, clipped = to_pcm16(np.array([0.5, -1.0, 1.0], np.float32))
    assert pcm.tolist() == [16384, -32768, 32767] and clipped


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"soundfont": "missing.sf2"}, "missing.sf2: no such file"),
        ({"soundfont": "text.sf2"}, "text.sf2: not an SF2 soundfont"),
        ({"soundfont": "."}, "not a file"),
        ({"programs": [0, 128]}, "programs: 128 is not an integer in 0..127"),
        ({"programs": "0,x"}, "programs '0,x': 'x' is not a number"),
        ({"pitches": [60, 130]}, "pitches: 130"),
        ({"velocities": [0]}, "velocities: 0 is not an integer in 1..127"),
        ({"velocities": [128]}, "velocities: 128"),
        ({"splits": (0.5, 0.5, 0.5)}, "sum to 1"),
        ({"splits": (0.0, 0.5, 0.5)}, "train fraction"),
        ({"splits": "0.8,0.2"}, "three"),
        ({"out": "file.txt/sub"}, "output folder"),
        ({"workers": 0}, "workers"),
        ({"gain": -1.0}, "gain"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, kwargs, message) -> None:
    (tmp_path / "text.sf2").write_text("not a soundfont")
    (tmp_path / "file.txt").write_text("a file, not a folder")
    args = {"soundfont": TIMGM, "out_dir": tmp_path / "out", "programs": [0], "pitches": [60],
            "velocities": [100], "workers": 1, "progress": False}  # fmt: skip
    args.update({("out_dir" if k == "out" else k): v for k, v in kwargs.items()})
    for key in ("soundfont", "out_dir"):
        if isinstance(args[key], str):
            args[key] = tmp_path / args[key]
    with pytest.raises(UserError) as err:
        build_dataset(**args)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "spec, message",
    [("21-", "'21-' is not a number or a range"), ("a-b", "is not a number"),
     ("100-200", "'100-200' is outside 0..127"), ("60-50", "reversed"), ("", "empty"),
     ("1-2-3", "not a number")],
)  # fmt: skip
def test_pitch_specs(spec, message) -> None:
    with pytest.raises(UserError, match=message):
        parse_int_list(spec, "--pitches", 0, 127)
    assert parse_int_list("21-24, 60,22", "--pitches", 0, 127) == [21, 22, 23, 24, 60]


# --------------------------------------------------------------------------------- (e) CLI


def cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("nsynth-live")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nsynth_live"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, env=env)


def test_cli_build_and_info(tmp_path) -> None:
    out = tmp_path / "ds"
    r = cli("dataset", "build", "--soundfont", str(TIMGM), "--out", str(out),
            "--programs", "0,40,73", "--pitches", "60-62", "--velocities", "50,100",
            "--workers", "1", "--seed", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "built" in r.stdout and "18 notes" in r.stdout
    counts = {s: len(load_examples(out / f"nsynth-{s}")) for s in SPLITS}
    assert sum(counts.values()) == 18 and counts["train"] > 0

    r = cli("dataset", "info", str(out))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    for word in ("train", "valid", "test", "keyboard", "string", "flute", "acoustic"):
        assert word in text
    lines = text.splitlines()
    assert any(line.split()[:1] == ["60"] and line.split()[-1] == "6" for line in lines)
    assert any(line.split()[:1] == ["100"] and line.split()[-1] == "9" for line in lines)
    assert cli("dataset", "info", str(out / "nsynth-train")).returncode == 0


@pytest.mark.parametrize(
    "flag, value",
    [("--pitches", "21-200"), ("--pitches", "abc"), ("--velocities", "0,50"),
     ("--programs", "0,200"), ("--workers", "0"), ("--splits", "0.5,0.5"),
     ("--soundfont", "/nonexistent/x.sf2")],
)  # fmt: skip
def test_cli_bad_value_is_one_line(tmp_path, flag, value) -> None:
    args = {"--soundfont": str(TIMGM), "--out": str(tmp_path / "ds"), "--programs": "0",
            "--pitches": "60", "--velocities": "100", "--workers": "1"}  # fmt: skip
    args[flag] = value
    r = cli("dataset", "build", *[x for kv in args.items() for x in kv])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert value in lines[0] and (flag.lstrip("-") in lines[0] or "no such file" in lines[0])
    assert not (tmp_path / "ds").exists() or not list((tmp_path / "ds").rglob("*.wav"))


def test_cli_info_on_a_non_dataset(tmp_path) -> None:
    r = cli("dataset", "info", str(tmp_path))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert str(tmp_path) in r.stderr


def test_cli_help_explains_every_flag() -> None:
    r = cli("dataset", "build", "--help")
    assert r.returncode == 0
    for flag in ("--soundfont", "--out", "--programs", "--pitches", "--velocities", "--seed",
                 "--workers", "--splits", "--gain", "--no-progress"):  # fmt: skip
        assert flag in r.stdout
    assert "DIR" in cli("dataset", "info", "--help").stdout


@pytest.mark.skipif(not FLUIDR3.is_file(), reason="FluidR3_GM.sf2 not installed")
def test_fluidr3_notes_are_in_tune(tmp_path) -> None:
    report = build_dataset(FLUIDR3, tmp_path, programs=[0, 40], pitches=range(50, 71, 5),
                           velocities=[100], workers=1, progress=False)  # fmt: skip
    assert report.rendered == 10 and not report.silent and not report.clipped
    cents = []
    for s in SPLITS:
        for n in load_examples(tmp_path / f"nsynth-{s}"):
            f0 = note_f0(read_note(tmp_path / f"nsynth-{s}", n), 16000)
            cents.append(None if f0 is None else cents_off(f0, n.pitch))
    assert sum(c is not None and abs(c) <= 50 for c in cents) >= 0.9 * len(cents), cents
    assert NOTE_SAMPLES == 64000
