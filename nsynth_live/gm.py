"""General MIDI and NSynth vocabularies as data.

The soundfont builder labels each (soundfont, program) instrument the way NSynth labels its
instruments: an ``instrument_family`` (what kind of instrument) and an ``instrument_source`` (how
it makes sound: acoustic, electronic, synthetic). NSynth's definitions of the sources:
acoustic = recorded from an acoustic instrument; electronic = an instrument with electronic
components (electric pickups, tonewheels, electric pianos); synthetic = a synthesizer.

The mapping below follows the General MIDI program groups, with a comment wherever the choice is
not obvious. NSynth has no family for pads, sound effects or percussion, so those go to the
family that sounds closest; ``synth_lead`` is the catch-all for synthesizer timbres.

Pure data and lookups: no numpy, no torch (the realtime host may import it).
"""

from __future__ import annotations

import operator

# NSynth's instrument families, ids 0..10 in this order (as in NSynth's examples.json).
FAMILIES: tuple[str, ...] = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
FAMILY_IDS: dict[str, int] = {name: i for i, name in enumerate(FAMILIES)}

# NSynth's instrument sources, ids 0..2.
SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")
SOURCE_IDS: dict[str, int] = {name: i for i, name in enumerate(SOURCES)}

# NSynth's note qualities, in the order of the ``qualities`` bit vector.
QUALITIES: tuple[str, ...] = (
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
)

# The 128 General MIDI Level 1 melodic program names (program numbers 0..127).
PROGRAM_NAMES: tuple[str, ...] = (
    # 0-7 piano
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    # 8-15 chromatic percussion
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    # 16-23 organ
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    # 24-31 guitar
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics",
    # 32-39 bass
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    # 40-47 strings
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    # 48-55 ensemble
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    # 56-63 brass
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    # 64-71 reed
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    # 72-79 pipe
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    # 80-87 synth lead
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    # 88-95 synth pad
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    # 96-103 synth effects
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    # 104-111 ethnic
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    # 112-119 percussive
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    # 120-127 sound effects
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip

_A, _E, _S = 0, 1, 2  # source ids, for the table below

# program -> (family name, source id). One row per GM group.
_PROGRAM_CLASS: tuple[tuple[str, int], ...] = (
    # 0-7 piano. Electric grand (CP-70) and electric pianos (Rhodes, DX-style) have pickups or
    # electronics; the clavinet is an electro-mechanical instrument with pickups.
    ("keyboard", _A), ("keyboard", _A), ("keyboard", _E), ("keyboard", _A),
    ("keyboard", _E), ("keyboard", _E), ("keyboard", _A), ("keyboard", _E),
    # 8-15 chromatic percussion -> mallet: struck bars, plates, tines or tubes. The celesta is
    # played from a keyboard but sounds like struck metal plates; the music box's plucked comb
    # and the hammered dulcimer's struck strings decay like mallet instruments.
    ("mallet", _A), ("mallet", _A), ("mallet", _A), ("mallet", _A),
    ("mallet", _A), ("mallet", _A), ("mallet", _A), ("mallet", _A),
    # 16-23 organ. Drawbar, percussive and rock organs are tonewheel (Hammond-type) organs:
    # electronic. Church and reed organs are pipe/reed organs: acoustic. Accordions and the
    # harmonica are free-reed instruments: NSynth's reed family.
    ("organ", _E), ("organ", _E), ("organ", _E), ("organ", _A),
    ("organ", _A), ("reed", _A), ("reed", _A), ("reed", _A),
    # 24-31 guitar. Nylon and steel acoustic guitars; the rest are electric (pickups).
    ("guitar", _A), ("guitar", _A), ("guitar", _E), ("guitar", _E),
    ("guitar", _E), ("guitar", _E), ("guitar", _E), ("guitar", _E),
    # 32-39 bass. Acoustic (upright) bass; electric basses have pickups; synth basses are
    # synthetic.
    ("bass", _A), ("bass", _E), ("bass", _E), ("bass", _E),
    ("bass", _E), ("bass", _E), ("bass", _S), ("bass", _S),
    # 40-47 strings. The bowed contrabass is an orchestral string, not NSynth's (mostly
    # electric/synth) bass family; the harp is a concert string instrument; timpani are
    # pitched drums played with mallets.
    ("string", _A), ("string", _A), ("string", _A), ("string", _A),
    ("string", _A), ("string", _A), ("string", _A), ("mallet", _A),
    # 48-55 ensemble. Synth strings and synth voice are synthetic. The orchestra hit is a
    # sampled orchestral stab (strings + brass), labelled by its string body.
    ("string", _A), ("string", _A), ("string", _S), ("string", _S),
    ("vocal", _A), ("vocal", _A), ("vocal", _S), ("string", _A),
    # 56-63 brass; synth brass is synthetic.
    ("brass", _A), ("brass", _A), ("brass", _A), ("brass", _A),
    ("brass", _A), ("brass", _A), ("brass", _S), ("brass", _S),
    # 64-71 reed: saxophones and double/single-reed woodwinds.
    ("reed", _A), ("reed", _A), ("reed", _A), ("reed", _A),
    ("reed", _A), ("reed", _A), ("reed", _A), ("reed", _A),
    # 72-79 pipe -> flute: edge-blown instruments (blown bottle, shakuhachi, whistle, ocarina
    # included).
    ("flute", _A), ("flute", _A), ("flute", _A), ("flute", _A),
    ("flute", _A), ("flute", _A), ("flute", _A), ("flute", _A),
    # 80-87 synth lead. "Lead 6 (voice)" is a synth timbre, not a recorded voice.
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
    # 88-95 synth pad. NSynth has no pad family: pads are synthesizer timbres, so synth_lead,
    # except the choir pad, whose timbre is vocal (source still synthetic).
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("vocal", _S),
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
    # 96-103 synth effects: synthesizer textures, the catch-all synth_lead.
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
    # 104-111 ethnic. Sitar, banjo, shamisen and koto are plucked strings: guitar (NSynth's
    # plucked-string family). The kalimba's plucked tines decay like a mallet instrument. The
    # bagpipe and shanai are reed instruments; the fiddle is a violin.
    ("guitar", _A), ("guitar", _A), ("guitar", _A), ("guitar", _A),
    ("mallet", _A), ("reed", _A), ("string", _A), ("reed", _A),
    # 112-119 percussive: struck instruments -> mallet. The melodic tom is the electronic
    # (Simmons-style) tom of 1980s drum machines; the synth drum is synthetic; the reverse
    # cymbal is a sample played backwards, an effect rather than an acoustic sound.
    ("mallet", _A), ("mallet", _A), ("mallet", _A), ("mallet", _A),
    ("mallet", _A), ("mallet", _E), ("mallet", _S), ("mallet", _S),
    # 120-127 sound effects. Fret noise comes from a guitar and breath noise from a wind
    # player (flute). The rest (seashore, bird, telephone, helicopter, applause, gunshot) have
    # no NSynth family; they are labelled synth_lead/synthetic, the catch-all, and are not
    # pitched (see UNPITCHED_PROGRAMS).
    ("guitar", _A), ("flute", _A), ("synth_lead", _S), ("synth_lead", _S),
    ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S), ("synth_lead", _S),
)  # fmt: skip

PROGRAM_FAMILY: tuple[int, ...] = tuple(FAMILY_IDS[fam] for fam, _ in _PROGRAM_CLASS)
"""program -> NSynth instrument_family id."""
PROGRAM_SOURCE: tuple[int, ...] = tuple(src for _, src in _PROGRAM_CLASS)
"""program -> NSynth instrument_source id."""

# Programs whose notes have no stable pitch in typical GM soundfonts (noises, drums, effects).
# Pitch checks (the f0 acceptance test, dataset QA) should skip them.
UNPITCHED_PROGRAMS: frozenset[int] = frozenset({115, 116, 117, 118, 119, *range(120, 128)})


def check_program(program: int) -> int:
    """``program`` as an int if it is a GM program number 0..127 (numpy ints welcome), else
    raise ValueError."""
    try:
        value = operator.index(program)
    except TypeError:
        value = None
    if isinstance(program, bool) or value is None or not 0 <= value <= 127:
        raise ValueError(f"GM program must be an integer 0..127, got {program!r}")
    return value


def program_name(program: int) -> str:
    """GM name of ``program`` (0..127)."""
    return PROGRAM_NAMES[check_program(program)]


def program_family(program: int) -> tuple[int, str]:
    """(NSynth family id, family name) of GM ``program``."""
    fam = PROGRAM_FAMILY[check_program(program)]
    return fam, FAMILIES[fam]


def program_source(program: int) -> tuple[int, str]:
    """(NSynth source id, source name) of GM ``program``."""
    src = PROGRAM_SOURCE[check_program(program)]
    return src, SOURCES[src]


def family_id(family: int | str) -> int:
    """NSynth family id from an id or a name (``'bass'``, ``'synth_lead'``, ...).

    Raises:
        ValueError: unknown name or id out of range, naming the valid ones.
    """
    return _vocab_id(family, FAMILIES, FAMILY_IDS, "instrument family")


def source_id(source: int | str) -> int:
    """NSynth source id from an id or a name (``'acoustic'``, ``'electronic'``, ...)."""
    return _vocab_id(source, SOURCES, SOURCE_IDS, "instrument source")


def _vocab_id(value: int | str, names: tuple[str, ...], ids: dict[str, int], what: str) -> int:
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ids:
            return ids[key]
        if key.isdigit():
            value = int(key)
        else:
            raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(names)}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        raise ValueError(f"{what} id must be 0..{len(names) - 1}, got {value!r}")
    return value
