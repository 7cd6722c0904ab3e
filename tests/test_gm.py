"""General MIDI / NSynth tables: complete, consistent, and right where it is unambiguous."""

from __future__ import annotations

import pytest

from nsynth_live import gm


def test_nsynth_vocabularies_match_the_dataset() -> None:
    # NSynth's ids are positions in these tuples: the order is part of the format.
    assert gm.FAMILIES == (
        "bass", "brass", "flute", "guitar", "keyboard", "mallet",
        "organ", "reed", "string", "synth_lead", "vocal",
    )  # fmt: skip
    assert gm.SOURCES == ("acoustic", "electronic", "synthetic")
    assert gm.QUALITIES == (
        "bright", "dark", "distortion", "fast_decay", "long_release",
        "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
    )  # fmt: skip
    assert all(gm.FAMILY_IDS[name] == i for i, name in enumerate(gm.FAMILIES))
    assert all(gm.SOURCE_IDS[name] == i for i, name in enumerate(gm.SOURCES))


def test_tables_cover_all_128_programs() -> None:
    assert len(gm.PROGRAM_NAMES) == len(gm.PROGRAM_FAMILY) == len(gm.PROGRAM_SOURCE) == 128
    assert len(set(gm.PROGRAM_NAMES)) == 128 and all(n.strip() for n in gm.PROGRAM_NAMES)
    assert all(0 <= f < len(gm.FAMILIES) for f in gm.PROGRAM_FAMILY)
    assert all(0 <= s < len(gm.SOURCES) for s in gm.PROGRAM_SOURCE)
    # Every NSynth family and source is reachable from some program.
    assert set(gm.PROGRAM_FAMILY) == set(range(len(gm.FAMILIES)))
    assert set(gm.PROGRAM_SOURCE) == set(range(len(gm.SOURCES)))


@pytest.mark.parametrize(
    "program, name, family, source",
    [
        (0, "Acoustic Grand Piano", "keyboard", "acoustic"),
        (4, "Electric Piano 1", "keyboard", "electronic"),
        (12, "Marimba", "mallet", "acoustic"),
        (16, "Drawbar Organ", "organ", "electronic"),
        (19, "Church Organ", "organ", "acoustic"),
        (24, "Acoustic Guitar (nylon)", "guitar", "acoustic"),
        (30, "Distortion Guitar", "guitar", "electronic"),
        (32, "Acoustic Bass", "bass", "acoustic"),
        (33, "Electric Bass (finger)", "bass", "electronic"),
        (38, "Synth Bass 1", "bass", "synthetic"),
        (40, "Violin", "string", "acoustic"),
        (52, "Choir Aahs", "vocal", "acoustic"),
        (56, "Trumpet", "brass", "acoustic"),
        (62, "Synth Brass 1", "brass", "synthetic"),
        (65, "Alto Sax", "reed", "acoustic"),
        (73, "Flute", "flute", "acoustic"),
        (81, "Lead 2 (sawtooth)", "synth_lead", "synthetic"),
        (127, "Gunshot", "synth_lead", "synthetic"),
    ],
)
def test_unambiguous_programs(program: int, name: str, family: str, source: str) -> None:
    assert gm.program_name(program) == name
    assert gm.program_family(program) == (gm.FAMILY_IDS[family], family)
    assert gm.program_source(program) == (gm.SOURCE_IDS[source], source)


@pytest.mark.parametrize(
    "first, family",
    [(24, "guitar"), (32, "bass"), (56, "brass"), (64, "reed"), (72, "flute"), (80, "synth_lead")],
)
def test_whole_gm_groups_map_to_their_family(first: int, family: str) -> None:
    assert {gm.program_family(p)[1] for p in range(first, first + 8)} == {family}


def test_synthesizer_groups_are_synthetic() -> None:
    for p in range(80, 104):  # synth lead, pad and effects
        assert gm.program_source(p)[1] == "synthetic", gm.program_name(p)


def test_vocabulary_lookups() -> None:
    assert gm.family_id("bass") == 0 and gm.family_id("Synth_Lead") == 9
    assert gm.family_id(10) == 10 and gm.family_id("4") == 4
    assert gm.source_id("electronic") == 1 and gm.source_id(2) == 2
    with pytest.raises(ValueError, match="unknown instrument family 'piano'.*bass"):
        gm.family_id("piano")
    with pytest.raises(ValueError, match="0..10"):
        gm.family_id(11)
    with pytest.raises(ValueError, match="0..2"):
        gm.source_id(-1)
    with pytest.raises(ValueError, match="0..127"):
        gm.program_name(128)
    with pytest.raises(ValueError):
        gm.check_program(True)
    assert gm.UNPITCHED_PROGRAMS <= set(range(128))
