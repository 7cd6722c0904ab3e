"""Multi-soundfont dataset builds with real FluidSynth and real soundfonts, and their CLI.

The evaluation soundfonts TimGM6mb (timgm6mb-soundfont) and sf_GMbank (csound-soundfont) are
small; the training-mode builds use the real FluidR3_GM and OPL-3 FM soundfonts (loaded
lazily, a few presets), and MuseScore_General_Full for the SF3 check, where installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nsynth_live import gm, soundfont
from nsynth_live.errors import UserError
from nsynth_live.nsynth import SPLITS, load_examples
from nsynth_live.pitch import cents_off, note_f0
from nsynth_live.soundfont import Preset, Renderer, build_dataset, is_percussion

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
GMBANK = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
OPL3 = Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")
MUSESCORE = Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3")


def need(*paths: Path):
    missing = [p.name for p in paths if not p.is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"soundfont(s) not installed: {missing}")


def files_of(root: Path) -> dict[str, bytes]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def notes_of(root: Path) -> dict[str, list]:
    return {s: load_examples(root / f"nsynth-{s}") for s in SPLITS}


def scan_presets(path: Path) -> set[tuple[int, int, str]]:
    """Reference enumeration: ask pyfluidsynth for a name at every (bank 0..128, program)."""
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=16000.0, **{"synth.dynamic-sample-loading": 1})
    try:
        sfid = synth.sfload(str(path))
        return {
            (b, p, name.strip())
            for b in range(129)
            for p in range(128)
            if (name := synth.sfpreset_name(sfid, b, p)) is not None
        }
    finally:
        synth.delete()


# ------------------------------------------------------------------------- preset enumeration


@need(FLUIDR3, GMBANK)
@pytest.mark.parametrize("path", [FLUIDR3, GMBANK], ids=lambda p: p.name)
def test_presets_match_a_scan_of_every_bank_and_program(path: Path) -> None:
    r = Renderer(path)
    try:
        presets = r.presets()
    finally:
        r.close()
    assert presets == sorted(presets)
    assert {(p.bank, p.program, p.name) for p in presets} == scan_presets(path)


@need(FLUIDR3)
def test_fluidr3_variation_banks_found_and_drum_kits_recognised() -> None:
    r = Renderer(FLUIDR3)
    try:
        presets = r.presets()
    finally:
        r.close()
    melodic = [p for p in presets if not is_percussion(p)]
    kits = [p for p in presets if is_percussion(p)]
    assert sum(p.bank == 0 for p in melodic) == 128
    variations = [p for p in melodic if p.bank != 0]
    assert len(variations) >= 25 and {8, 16} <= {p.bank for p in variations}
    assert Preset(16, 25, "Mandolin") in variations
    assert kits and all(p.bank == 128 for p in kits)
    assert any(p.name == "Standard" for p in kits)


def test_percussion_rule() -> None:
    assert is_percussion(Preset(128, 0, "Standard"))
    assert is_percussion(Preset(5, 3, "Jazz Kit"))  # a kit outside bank 128, by its name
    assert is_percussion(Preset(0, 0, "Rock Drumset"))
    assert not is_percussion(Preset(0, 114, "Steel Drums"))  # a pitched GM program
    assert not is_percussion(Preset(8, 116, "Concert Bass Drum"))
    assert not is_percussion(Preset(0, 17, "Percussive Organ"))


@need(FLUIDR3)
def test_warm_up_makes_a_presets_first_note_like_every_later_one() -> None:
    def notes(warm_up: bool, before: tuple = ()) -> list[np.ndarray]:
        r = Renderer(FLUIDR3, warm_up=warm_up)
        try:
            for args in before:
                r.render(*args)
            return [r.render(30, 60, 100, bank=8).copy() for _ in range(2)]  # Feedback Guitar
        finally:
            r.close()

    first, later = notes(False)
    assert not np.array_equal(first, later)  # the quirk the warm-up exists for
    for before in ((), ((24, 60, 100, 0),), ((30, 72, 127, 8), (0, 40, 50, 0))):
        assert all(np.array_equal(n, later) for n in notes(True, before))


@need(MUSESCORE)
def test_sf3_vorbis_soundfont_renders_in_tune_at_a_sensible_level() -> None:
    r = Renderer(MUSESCORE)
    try:
        flute = r.render(73, 69, 100)
        celli = r.render(49, 48, 100, bank=40)  # "Celli Slow", a variation bank
    finally:
        r.close()
    for audio, pitch in ((flute, 69), (celli, 48)):
        peak = float(np.abs(audio).max())
        assert 0.05 < peak < 0.99
        f0 = note_f0(audio, 16000)
        assert f0 is not None and abs(cents_off(f0, pitch)) < 25


@need(MUSESCORE)
def test_presets_silent_under_a_plain_note_on_are_left_out(tmp_path) -> None:
    # MuseScore's "Cello Expr." (bank 17) follows CC2, not velocity: near silent on a note-on.
    report = build_dataset([MUSESCORE], tmp_path, programs=[42], banks="all", pitches=[48],
                           velocities=[100], workers=1, progress=False)  # fmt: skip
    assert report.unplayable == ["MuseScore_General_Full.sf3:17:42 Cello Expr."]
    (note,) = load_examples(tmp_path / "nsynth-train")
    assert (note.extra["bank"], note.extra["preset_name"]) == (0, "Cello")
    r = Renderer(MUSESCORE)
    try:
        expr = r.render(42, 48, 127, bank=17)
    finally:
        r.close()
    assert float(np.abs(expr).max()) < 10 ** (soundfont.PLAYABLE_DB / 20)


# ------------------------------------------------------------------------- evaluation builds


@pytest.fixture(scope="module")
def evalset(tmp_path_factory):
    """TimGM6mb + sf_GMbank, every melodic bank, programs 4 and 25, evaluation only."""
    if not (TIMGM.is_file() and GMBANK.is_file()):
        pytest.skip("timgm6mb-soundfont or csound-soundfont not installed")
    out = tmp_path_factory.mktemp("eval")
    report = build_dataset([TIMGM, GMBANK], out, programs=[4, 25], banks="all",
                           pitches=[48, 60], velocities=[100], evaluation_only=True,
                           workers=1, progress=False)  # fmt: skip
    return out, report


def test_evaluation_build_puts_everything_in_test(evalset) -> None:
    out, report = evalset
    notes = notes_of(out)
    assert notes["train"] == [] and notes["valid"] == []
    # TimGM6mb: bank 0 only; sf_GMbank: 0:4, 0:25, 8:4, 8:25, 16:25, 127:4, 127:25.
    keys = {(n.extra["soundfont"], n.extra["bank"], n.extra["program"]) for n in notes["test"]}
    assert keys == {
        ("TimGM6mb.sf2", 0, 4), ("TimGM6mb.sf2", 0, 25),
        ("sf_GMbank.sf2", 0, 4), ("sf_GMbank.sf2", 0, 25), ("sf_GMbank.sf2", 8, 4),
        ("sf_GMbank.sf2", 8, 25), ("sf_GMbank.sf2", 16, 25), ("sf_GMbank.sf2", 127, 4),
        ("sf_GMbank.sf2", 127, 25),
    }  # fmt: skip
    assert len(notes["test"]) == report.requested - len(report.silent) == 9 * 2
    build = json.loads((out / "build.json").read_text())
    assert build["evaluation_only"] is True and build["banks"] == "all"
    assert [s["name"] for s in build["soundfonts"]] == ["TimGM6mb.sf2", "sf_GMbank.sf2"]
    for s, path in zip(build["soundfonts"], (TIMGM, GMBANK)):
        assert s["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_ids_unique_across_soundfonts_and_counted_per_family_source(evalset) -> None:
    out, _ = evalset
    notes = notes_of(out)["test"]
    by_instrument: dict[str, set] = {}
    ints: dict[int, set] = {}
    for n in notes:
        key = (n.extra["soundfont"], n.extra["bank"], n.extra["program"])
        by_instrument.setdefault(n.instrument_str, set()).add(key)
        ints.setdefault(n.instrument, set()).add(key)
        fam, src = gm.program_family(n.extra["program"]), gm.program_source(n.extra["program"])
        assert (n.instrument_family, n.instrument_family_str) == fam  # variations keep it
        assert (n.instrument_source, n.instrument_source_str) == src
        assert n.instrument_str.startswith(f"{fam[1]}_{src[1]}_")
    assert all(len(v) == 1 for v in by_instrument.values())  # one preset per id ...
    assert all(len(v) == 1 for v in ints.values())
    assert len(by_instrument) == len(ints) == 9  # ... and one id per preset
    # NNN runs 000.. per (family, source) over the whole dataset, across soundfonts.
    ep = sorted(i for i in by_instrument if i.startswith("keyboard_electronic_"))
    assert ep == [f"keyboard_electronic_{k:03d}" for k in range(4)]


def test_provenance_names_the_soundfont_preset(evalset) -> None:
    out, report = evalset
    renderers = {p.name: Renderer(p) for p in (TIMGM, GMBANK)}
    try:
        for n in notes_of(out)["test"]:
            x = n.extra
            assert x["program_name"] == gm.program_name(x["program"])
            own = renderers[x["soundfont"]].preset_name(x["program"], x["bank"])
            assert x["preset_name"] == own
            assert report.instrument_soundfont[n.instrument_str] == x["soundfont"]
    finally:
        for r in renderers.values():
            r.close()
    names = {n.extra["preset_name"] for n in notes_of(out)["test"]}
    assert "Mandolin" in names and "Detuned EP 1" in names  # bank 16 and bank 8 variations


def test_percussion_left_out_and_reported(evalset) -> None:
    out, report = evalset
    assert all(n.extra["bank"] < 128 for n in notes_of(out)["test"])
    assert "TimGM6mb.sf2:128:0 Standard" in report.percussion
    assert "sf_GMbank.sf2:128:127 CM-64/32 Set" in report.percussion
    assert all(int(p.split(":")[1]) >= 128 for p in report.percussion)


@need(TIMGM, GMBANK)
def test_evaluation_soundfonts_never_enter_a_training_build(tmp_path) -> None:
    for sfs, kw in (([TIMGM, GMBANK], {}), ([GMBANK], {"banks": "all"})):
        out = tmp_path / "train"
        with pytest.raises(UserError, match="held out for evaluation.*--evaluation-only"):
            build_dataset(sfs, out, programs=[0], pitches=[60], velocities=[100],
                          workers=1, progress=False, **kw)  # fmt: skip
        assert not out.exists()  # refused before anything is written
    # A renamed copy is recognised by its content.
    copy = tmp_path / "my_gm.sf2"
    shutil.copyfile(TIMGM, copy)
    with pytest.raises(UserError, match="TimGM6mb.sf2 is held out"):
        build_dataset([copy], tmp_path / "x", banks="all", programs=[0], pitches=[60],
                      velocities=[100], workers=1, progress=False)  # fmt: skip


@need(TIMGM)
def test_same_soundfont_twice_refused(tmp_path) -> None:
    with pytest.raises(UserError, match="given twice"):
        build_dataset([TIMGM, TIMGM], tmp_path, evaluation_only=True, programs=[0],
                      pitches=[60], velocities=[100], progress=False)  # fmt: skip


# --------------------------------------------------------------------------- training builds

TRAIN_ARGS = dict(programs=[24, 25, 26, 28, 30], banks="all", pitches=[60], velocities=[100],
                  progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def trainset(tmp_path_factory):
    """FluidR3 (11 guitar presets over banks 0/8/16) + OPL-3 (5 FM guitars), two workers."""
    if not (FLUIDR3.is_file() and OPL3.is_file()):
        pytest.skip("fluid-soundfont-gm or opl3-soundfont not installed")
    out = tmp_path_factory.mktemp("train2")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(soundfont, "MIN_NOTES_PER_WORKER", 1)  # force the pool for 16 notes
        report = build_dataset([FLUIDR3, OPL3], out, workers=2, **TRAIN_ARGS)
    assert report.workers == 2
    return out, report


def test_training_build_stratified_by_soundfont(trainset) -> None:
    out, report = trainset
    notes = notes_of(out)
    seen: dict[str, str] = {}
    for split, members in notes.items():
        for n in members:
            assert seen.setdefault(n.instrument_str, split) == split  # no id in two splits
        assert {n.extra["soundfont"] for n in members} == {FLUIDR3.name, OPL3.name}
    per_sf = {FLUIDR3.name: 0, OPL3.name: 0}
    for sf in report.instrument_soundfont.values():
        per_sf[sf] += 1
    assert per_sf == {FLUIDR3.name: 11, OPL3.name: 5}
    opl = [n for m in notes.values() for n in m if n.extra["soundfont"] == OPL3.name]
    assert {n.instrument_source_str for n in opl} == {"synthetic"}
    assert {n.instrument_str for n in opl} == {f"guitar_synthetic_{k:03d}" for k in range(5)}
    fl = [n for m in notes.values() for n in m if n.extra["soundfont"] == FLUIDR3.name]
    assert "synthetic" not in {n.instrument_source_str for n in fl}


def test_training_build_identical_with_one_worker(trainset, tmp_path) -> None:
    out, _ = trainset
    report = build_dataset([FLUIDR3, OPL3], tmp_path, workers=1, **TRAIN_ARGS)
    assert report.workers == 1
    assert files_of(tmp_path) == files_of(out)


def test_training_build_resumes_and_refuses_other_settings(trainset, tmp_path) -> None:
    out, _ = trainset
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    wavs = sorted(tmp_path.rglob("*.wav"))
    fl = next(p for p in wavs if "synthetic" not in p.name)
    opl = next(p for p in wavs if "synthetic" in p.name)
    fl.unlink()  # lost: the interruption came before it was written
    with open(opl, "r+b") as f:  # cut short
        f.truncate(1000)
    for split in SPLITS:
        (tmp_path / f"nsynth-{split}" / "examples.json").unlink()
    report = build_dataset([FLUIDR3, OPL3], tmp_path, workers=1, **TRAIN_ARGS)
    assert report.rendered == 2 and report.reused == len(wavs) - 2
    assert files_of(tmp_path) == files_of(out)
    with pytest.raises(UserError, match="other settings.*banks"):
        build_dataset([FLUIDR3, OPL3], tmp_path, workers=1, **dict(TRAIN_ARGS, banks=[0]))
    with pytest.raises(UserError, match="other settings.*soundfonts"):
        build_dataset([OPL3, FLUIDR3], tmp_path, workers=1, **TRAIN_ARGS)


# ------------------------------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("nsynth-live")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nsynth_live"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([*cmd, "dataset", "build", *args], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


@need(TIMGM, GMBANK)
def test_cli_builds_an_evaluation_set_and_refuses_it_for_training(tmp_path) -> None:
    common = ["--soundfont", str(TIMGM), "--soundfont", str(GMBANK), "--programs", "25",
              "--pitches", "60", "--velocities", "100", "--no-progress"]  # fmt: skip
    bad = cli(*common, "--out", str(tmp_path / "train"))
    assert bad.returncode != 0
    assert "TimGM6mb.sf2 is held out for evaluation" in bad.stderr
    assert "--evaluation-only" in bad.stderr
    assert not (tmp_path / "train").exists()
    ok = cli(*common, "--banks", "all", "--evaluation-only", "--out", str(tmp_path / "eval"))
    assert ok.returncode == 0, ok.stderr
    assert "TimGM6mb.sf2: 1 instruments (train 0, valid 0, test 1)" in ok.stdout
    assert "sf_GMbank.sf2: 4 instruments (train 0, valid 0, test 4)" in ok.stdout
    assert len(load_examples(tmp_path / "eval" / "nsynth-test")) == 5
    bad_bank = cli(*common, "--banks", "128", "--evaluation-only", "--out", str(tmp_path / "b"))
    assert bad_bank.returncode != 0 and "--banks '128'" in bad_bank.stderr
