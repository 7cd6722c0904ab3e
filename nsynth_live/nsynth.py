"""Reader for the NSynth dataset layout, and a torch Dataset over it.

NSynth (Engel et al. 2017) is distributed as one folder per split::

    nsynth-train/            (also nsynth-valid/, nsynth-test/, side by side under a root)
        examples.json        {note_str: {note_str, pitch, velocity, instrument, ...}, ...}
        audio/<note_str>.wav 16 kHz mono, 4 s = 64000 samples

Each note was recorded with the key held for 3 s and released, cut at 4 s. The soundfont builder
(:mod:`nsynth_live.soundfont`) writes the same layout, so everything downstream reads real
NSynth and home-made datasets alike.

Bad data fails early and once, with a :class:`~nsynth_live.errors.UserError` naming the file and
the note: the json is validated in full when loaded, and :class:`NSynthDataset` checks every wav
header at construction (``soundfile.info``-cheap), so a broken file stops a run at startup
instead of hours into training.

This module imports torch only inside :class:`NSynthDataset` methods, so the json and audio
helpers work in the torch-free host.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from nsynth_live import SAMPLE_RATE, gm
from nsynth_live.atomic import atomic_write_bytes
from nsynth_live.errors import UserError

NOTE_SECONDS = 4
NOTE_SAMPLES = SAMPLE_RATE * NOTE_SECONDS  # 64000
SPLITS = ("train", "valid", "test")
EXAMPLES_JSON = "examples.json"
AUDIO_DIR = "audio"

# examples.json fields every note must carry, with their JSON types.
_INT_FIELDS = (
    "pitch",
    "velocity",
    "instrument",
    "instrument_family",
    "instrument_source",
    "sample_rate",
)
_STR_FIELDS = ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str")
REQUIRED_FIELDS: tuple[str, ...] = (
    "note_str",
    "pitch",
    "velocity",
    "instrument",
    "instrument_str",
    "instrument_family",
    "instrument_family_str",
    "instrument_source",
    "instrument_source_str",
    "qualities",
    "qualities_str",
    "sample_rate",
)


@dataclass(frozen=True, slots=True)
class NoteInfo:
    """One note's examples.json entry, validated.

    ``note`` is NSynth's optional global note id; ``extra`` holds any other fields (the
    soundfont builder's provenance: soundfont, program, program_name) so a round trip through
    :meth:`to_json` loses nothing.
    """

    note_str: str
    pitch: int
    velocity: int
    instrument: int
    instrument_str: str
    instrument_family: int
    instrument_family_str: str
    instrument_source: int
    instrument_source_str: str
    qualities: tuple[int, ...]
    qualities_str: tuple[str, ...]
    sample_rate: int = SAMPLE_RATE
    note: int | None = None
    extra: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The examples.json entry: NSynth's fields, then ``note`` and the extra fields."""
        out: dict[str, Any] = {name: getattr(self, name) for name in REQUIRED_FIELDS}
        out["qualities"] = list(self.qualities)
        out["qualities_str"] = list(self.qualities_str)
        if self.note is not None:
            out["note"] = self.note
        if self.extra:
            out.update(self.extra)
        return out

    def wav_path(self, split_dir: str | os.PathLike[str]) -> Path:
        """Where this note's audio lives in ``split_dir``."""
        return Path(split_dir) / AUDIO_DIR / f"{self.note_str}.wav"


def note_str_of(instrument_str: str, pitch: int, velocity: int) -> str:
    """NSynth's note name: ``<instrument_str>-<pitch:03d>-<velocity:03d>``."""
    return f"{instrument_str}-{pitch:03d}-{velocity:03d}"


# ----------------------------------------------------------------------------- examples.json


class _Invalid:
    """Marker for an entry that failed validation; the caller adds file and note to the text."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_entry(d: dict[str, Any], cache: dict[Any, Any]) -> NoteInfo | _Invalid:
    """Validate one examples.json entry (without its key) into a NoteInfo."""
    missing = [k for k in REQUIRED_FIELDS if k not in d]
    if missing:
        return _Invalid(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for k in _INT_FIELDS:
        if not _is_int(d[k]):
            return _Invalid(f"field {k!r} must be an integer, got {d[k]!r}")
    for k in _STR_FIELDS:
        if not isinstance(d[k], str):
            return _Invalid(f"field {k!r} must be a string, got {d[k]!r}")
    for k in ("pitch", "velocity"):
        if not 0 <= d[k] <= 127:
            return _Invalid(f"{k} {d[k]} outside the MIDI range 0..127")
    if d["sample_rate"] != SAMPLE_RATE:
        return _Invalid(f"sample_rate {d['sample_rate']}, expected {SAMPLE_RATE}")
    fam, fam_str = d["instrument_family"], d["instrument_family_str"]
    if not 0 <= fam < len(gm.FAMILIES) or gm.FAMILIES[fam] != fam_str:
        expected = gm.FAMILIES[fam] if 0 <= fam < len(gm.FAMILIES) else "an id 0..10"
        return _Invalid(
            f"instrument_family {fam} does not match instrument_family_str {fam_str!r} "
            f"(id {fam} is {expected!r})"
        )
    src, src_str = d["instrument_source"], d["instrument_source_str"]
    if not 0 <= src < len(gm.SOURCES) or gm.SOURCES[src] != src_str:
        expected = gm.SOURCES[src] if 0 <= src < len(gm.SOURCES) else "an id 0..2"
        return _Invalid(
            f"instrument_source {src} does not match instrument_source_str {src_str!r} "
            f"(id {src} is {expected!r})"
        )
    q, q_str = d["qualities"], d["qualities_str"]
    if (
        not isinstance(q, list)
        or len(q) != len(gm.QUALITIES)
        or not all(_is_int(b) and b in (0, 1) for b in q)
    ):
        return _Invalid(f"qualities must be a list of {len(gm.QUALITIES)} 0/1 flags, got {q!r}")
    if not isinstance(q_str, list) or not all(isinstance(s, str) for s in q_str):
        return _Invalid(f"qualities_str must be a list of strings, got {q_str!r}")
    named = {gm.QUALITIES[i] for i, b in enumerate(q) if b}
    if set(q_str) != named:
        return _Invalid(f"qualities_str {q_str!r} does not match the qualities flags {q!r}")
    expected_name = note_str_of(d["instrument_str"], d["pitch"], d["velocity"])
    if d["note_str"] != expected_name:
        return _Invalid(
            f"note_str {d['note_str']!r} does not match instrument_str/pitch/velocity "
            f"({expected_name!r})"
        )
    note = d.get("note")
    if note is not None and not _is_int(note):
        return _Invalid(f"field 'note' must be an integer, got {note!r}")

    def shared(v: Any) -> Any:
        # ~300k notes share a few hundred instrument names and quality vectors: keep one copy.
        return cache.setdefault(v, v)

    extra = {k: v for k, v in d.items() if k not in _KNOWN_FIELDS}
    return NoteInfo(
        note_str=d["note_str"],
        pitch=d["pitch"],
        velocity=d["velocity"],
        instrument=d["instrument"],
        instrument_str=shared(d["instrument_str"]),
        instrument_family=fam,
        instrument_family_str=shared(fam_str),
        instrument_source=src,
        instrument_source_str=shared(src_str),
        qualities=shared(tuple(q)),
        qualities_str=shared(tuple(q_str)),
        sample_rate=d["sample_rate"],
        note=note,
        extra=extra or None,
    )


_KNOWN_FIELDS = frozenset(REQUIRED_FIELDS) | {"note"}
_NOTE_KEYS = frozenset(REQUIRED_FIELDS)


def parse_examples(text: str, source: str = EXAMPLES_JSON) -> list[NoteInfo]:
    """Parse and validate examples.json text. Notes come back sorted by note_str.

    Args:
        text: the file's content.
        source: the file name used in error messages.

    Raises:
        UserError: malformed json or an invalid note, naming ``source`` and the note.
    """
    cache: dict[Any, Any] = {}

    def hook(d: dict[str, Any]) -> Any:
        # Convert note entries as the decoder builds them, so the whole file never exists as
        # ~300k plain dicts at once (real NSynth train holds 289,205 notes).
        if _NOTE_KEYS.intersection(d):
            return _parse_entry(d, cache)
        return d

    try:
        top = json.loads(text, object_hook=hook)
    except json.JSONDecodeError as err:
        raise UserError(
            f"{source}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(top, dict):
        raise UserError(f"{source}: expected a JSON object mapping note_str to note fields")
    notes: list[NoteInfo] = []
    for key, value in top.items():
        if isinstance(value, dict):  # an object with none of the note fields
            value = _parse_entry(value, cache)
        if isinstance(value, _Invalid):
            raise UserError(f"{source}: note {key!r}: {value.reason}")
        if not isinstance(value, NoteInfo):
            raise UserError(f"{source}: note {key!r}: expected an object, got {value!r}")
        if value.note_str != key:
            raise UserError(
                f"{source}: note {key!r}: key does not match its note_str {value.note_str!r}"
            )
        notes.append(value)
    notes.sort(key=lambda n: n.note_str)
    return notes


def resolve_split(path: str | os.PathLike[str], split: str | None = None) -> Path:
    """The split folder for ``path``: a split folder itself, or a root holding nsynth-<split>/.

    Args:
        path: a folder with examples.json, or a dataset root.
        split: 'train', 'valid' or 'test'; needed when ``path`` is a root.

    Raises:
        UserError: no examples.json where expected, or an unknown split name.
    """
    p = Path(path)
    if split is not None and split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if (p / EXAMPLES_JSON).is_file():
        return p
    if split is not None and (p / f"nsynth-{split}" / EXAMPLES_JSON).is_file():
        return p / f"nsynth-{split}"
    if not p.exists():
        raise UserError(f"{p}: no such dataset folder")
    where = f"{p / EXAMPLES_JSON}" + (
        f" or {p / f'nsynth-{split}' / EXAMPLES_JSON}" if split is not None else ""
    )
    raise UserError(f"{p}: not an NSynth split folder or root (no {where})")


def load_examples(
    split_dir: str | os.PathLike[str],
    families: Iterable[int | str] | None = None,
    sources: Iterable[int | str] | None = None,
    pitches: tuple[int, int] | None = None,
    velocities: Iterable[int] | None = None,
) -> list[NoteInfo]:
    """Read and validate ``split_dir/examples.json``, optionally filtered.

    Args:
        split_dir: a split folder (holding examples.json and audio/).
        families: keep these instrument families (names like 'bass' or ids 0..10).
        sources: keep these sources ('acoustic', 'electronic', 'synthetic' or ids 0..2).
        pitches: (lo, hi) MIDI pitch range to keep, inclusive.
        velocities: keep these velocities.

    Returns:
        The notes, sorted by note_str.

    Raises:
        UserError: unreadable or invalid json (naming the file and the note), bad filters.
    """
    path = Path(split_dir) / EXAMPLES_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from None
    notes = parse_examples(text, source=str(path))
    return filter_notes(notes, families, sources, pitches, velocities)


def filter_notes(
    notes: Sequence[NoteInfo],
    families: Iterable[int | str] | None = None,
    sources: Iterable[int | str] | None = None,
    pitches: tuple[int, int] | None = None,
    velocities: Iterable[int] | None = None,
) -> list[NoteInfo]:
    """Notes matching every given filter (None means no filter); see :func:`load_examples`."""
    try:
        fams = None if families is None else {gm.family_id(f) for f in _as_list(families)}
        srcs = None if sources is None else {gm.source_id(s) for s in _as_list(sources)}
    except ValueError as err:
        raise UserError(str(err)) from None
    lo, hi = 0, 127
    if pitches is not None:
        try:
            lo, hi = (int(v) for v in pitches)
        except (TypeError, ValueError):
            raise UserError(f"pitches must be a (lo, hi) pair, got {pitches!r}") from None
        if lo > hi:
            raise UserError(f"pitch range ({lo}, {hi}) is empty: lo > hi")
    vels = None if velocities is None else {int(v) for v in _as_list(velocities)}
    return [
        n
        for n in notes
        if (fams is None or n.instrument_family in fams)
        and (srcs is None or n.instrument_source in srcs)
        and lo <= n.pitch <= hi
        and (vels is None or n.velocity in vels)
    ]


def _as_list(values: Any) -> list[Any]:
    # A bare string or int means one value, not an iterable of characters.
    return [values] if isinstance(values, (str, int)) else list(values)


def write_examples(split_dir: str | os.PathLike[str], notes: Iterable[NoteInfo]) -> Path:
    """Write ``split_dir/examples.json`` atomically (temp file, fsync, rename).

    Entries are sorted by note_str and the text is deterministic: the same notes give the same
    bytes.
    """
    entries = {n.note_str: n.to_json() for n in sorted(notes, key=lambda n: n.note_str)}
    path = Path(split_dir) / EXAMPLES_JSON
    atomic_write_bytes(path, json_lines_object(entries).encode("utf-8"))
    return path


def json_lines_object(obj: Mapping[str, Any]) -> str:
    """A JSON object with one member per line (values compact): readable, diffable, small."""
    if not obj:
        return "{}\n"
    members = (
        f"  {json.dumps(k, ensure_ascii=False)}: "
        f"{json.dumps(v, ensure_ascii=False, separators=(', ', ': '))}"
        for k, v in obj.items()
    )
    return "{\n" + ",\n".join(members) + "\n}\n"


def count_notes(notes: Iterable[NoteInfo]) -> dict[str, Counter]:
    """Counts per family name, source name, pitch, velocity and instrument (for reports)."""
    counts: dict[str, Counter] = {
        k: Counter() for k in ("family", "source", "pitch", "velocity", "instrument")
    }
    for n in notes:
        counts["family"][n.instrument_family_str] += 1
        counts["source"][n.instrument_source_str] += 1
        counts["pitch"][n.pitch] += 1
        counts["velocity"][n.velocity] += 1
        counts["instrument"][n.instrument_str] += 1
    return counts


# ------------------------------------------------------------------------------------ audio


def check_wav(path: Path, note_str: str) -> None:
    """Raise UserError unless ``path`` is a 16 kHz mono wav of exactly 4 s (64000 frames)."""
    try:
        info = sf.info(str(path))
    except FileNotFoundError:
        raise UserError(f"note {note_str!r}: audio file {path} is missing") from None
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        if not path.exists():
            raise UserError(f"note {note_str!r}: audio file {path} is missing") from None
        raise UserError(f"note {note_str!r}: cannot read {path}: {_why(err)}") from None
    _check_info(path, note_str, info.samplerate, info.channels, info.frames)


def _why(err: Exception) -> str:
    # libsndfile's message without the path soundfile prepends (the caller names the file).
    return str(getattr(err, "error_string", None) or err).strip().rstrip(".")


def _check_info(path: Path, note_str: str, samplerate: int, channels: int, frames: int) -> None:
    if samplerate != SAMPLE_RATE:
        raise UserError(
            f"note {note_str!r}: {path} has sample rate {samplerate} Hz, expected {SAMPLE_RATE}"
        )
    if channels != 1:
        raise UserError(f"note {note_str!r}: {path} has {channels} channels, expected mono")
    if frames != NOTE_SAMPLES:
        raise UserError(
            f"note {note_str!r}: {path} has {frames} samples "
            f"({frames / SAMPLE_RATE:.3f} s), expected {NOTE_SAMPLES} (4 s)"
        )


def read_note(
    split_dir: str | os.PathLike[str], info: NoteInfo, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Read samples ``[start, stop)`` of one note, reading only those frames from disk.

    Args:
        split_dir: the split folder holding audio/.
        info: the note.
        start, stop: sample range within the 64000-sample note (stop None = the end).

    Returns:
        [stop - start] float32 in [-1, 1).

    Raises:
        UserError: missing or unreadable wav, wrong sample rate, channels or length, naming the
            note and the file.
    """
    return _read_range(info.wav_path(split_dir), info.note_str, start, stop)


def _read_range(path: Path, note_str: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    stop = NOTE_SAMPLES if stop is None else stop
    if not 0 <= start <= stop <= NOTE_SAMPLES:
        raise ValueError(f"need 0 <= start <= stop <= {NOTE_SAMPLES}, got {start}, {stop}")
    try:
        with sf.SoundFile(str(path)) as f:
            _check_info(path, note_str, f.samplerate, f.channels, f.frames)
            f.seek(start)
            audio = f.read(stop - start, dtype="float32", always_2d=False)
    except FileNotFoundError:
        raise UserError(f"note {note_str!r}: audio file {path} is missing") from None
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        if not path.exists():
            raise UserError(f"note {note_str!r}: audio file {path} is missing") from None
        raise UserError(f"note {note_str!r}: cannot read {path}: {_why(err)}") from None
    if audio.shape[0] != stop - start:  # header says 64000 frames but the data is cut short
        raise UserError(
            f"note {note_str!r}: {path} is truncated: read {audio.shape[0]} of "
            f"{stop - start} samples from {start}"
        )
    return audio


# ---------------------------------------------------------------------------- torch Dataset


def _torch() -> Any:
    import torch  # deferred: the rest of this module is used by the torch-free host

    return torch


class NSynthDataset:
    """Map-style torch Dataset of NSynth notes (real NSynth or soundfont-built).

    Items are dicts ``{"audio": float32 [crop], "pitch": int64 [], "velocity": int64 [],
    "index": int64 []}`` where ``index`` is the item's position in this (filtered) dataset.

    Crops: with ``random_crop`` (training) the offset is drawn uniformly over the whole 4 s
    note from ``np.random.default_rng([seed, epoch, index])``: a pure function of those three,
    so a resumed run replays exactly the crops it would have seen (call :meth:`set_epoch` at the
    start of every epoch, in the main process before the DataLoader iterates: workers receive a
    copy of the dataset with the epoch set). Without it (evaluation) the crop is centred on the
    4 s note, i.e. samples ``[(64000 - crop) // 2, ...)``: for the default 6144 that is
    1.81-2.19 s, inside the held part (note-off at 3 s).

    Memory: the notes are kept as numpy arrays, not Python objects, so ~300k notes take a few
    tens of MB and forked DataLoader workers do not copy them page by page through refcounts.

    Args:
        root: a dataset root holding nsynth-<split>/, or a split folder.
        split: 'train', 'valid' or 'test'.
        crop: samples per item (1..64000); None = the whole note.
        random_crop: random (training) or centred (evaluation) crops.
        seed: seed of the random crops.
        families, sources, pitches, velocities: filters, see :func:`load_examples`.
        validate_audio: check every wav header now (about 30 µs a note).

    Raises:
        UserError: bad json, missing/invalid wav, bad crop length, or no note left after
            filtering.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        crop: int | None = 6144,
        random_crop: bool = True,
        seed: int = 0,
        families: Iterable[int | str] | None = None,
        sources: Iterable[int | str] | None = None,
        pitches: tuple[int, int] | None = None,
        velocities: Iterable[int] | None = None,
        validate_audio: bool = True,
    ) -> None:
        self.split_dir = resolve_split(root, split)
        crop = NOTE_SAMPLES if crop is None else crop
        if not _is_int(crop) or not 1 <= crop <= NOTE_SAMPLES:
            raise UserError(f"crop must be an integer 1..{NOTE_SAMPLES} samples, got {crop!r}")
        self.crop = crop
        self.random_crop = bool(random_crop)
        self.seed = int(seed)
        self.epoch = 0
        notes = load_examples(self.split_dir, families, sources, pitches, velocities)
        if not notes:
            raise UserError(f"{self.split_dir}: no notes match the filters")
        if validate_audio:
            for n in notes:
                check_wav(n.wav_path(self.split_dir), n.note_str)
        self.note_strs = np.array([n.note_str for n in notes])
        self.pitches = np.array([n.pitch for n in notes], dtype=np.int16)
        self.velocities = np.array([n.velocity for n in notes], dtype=np.int16)

    def __len__(self) -> int:
        return int(self.note_strs.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of ``epoch`` (see the class docstring)."""
        self.epoch = int(epoch)

    def crop_offset(self, index: int) -> int:
        """First sample of item ``index``'s crop for the current epoch."""
        span = NOTE_SAMPLES - self.crop
        if not self.random_crop:
            return span // 2
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return int(rng.integers(0, span + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        torch = _torch()
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} notes")
        index = int(index) % n
        note_str = str(self.note_strs[index])
        start = self.crop_offset(index)
        audio = _read_range(
            self.split_dir / AUDIO_DIR / f"{note_str}.wav", note_str, start, start + self.crop
        )
        return {
            "audio": torch.from_numpy(audio),
            "pitch": torch.tensor(int(self.pitches[index]), dtype=torch.int64),
            "velocity": torch.tensor(int(self.velocities[index]), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        mode = "random" if self.random_crop else "centred"
        return (
            f"NSynthDataset({str(self.split_dir)!r}, notes={len(self)}, crop={self.crop} "
            f"({mode}), seed={self.seed}, epoch={self.epoch})"
        )


__all__ = [
    "AUDIO_DIR",
    "EXAMPLES_JSON",
    "NOTE_SAMPLES",
    "NOTE_SECONDS",
    "REQUIRED_FIELDS",
    "SPLITS",
    "NSynthDataset",
    "NoteInfo",
    "check_wav",
    "count_notes",
    "json_lines_object",
    "filter_notes",
    "load_examples",
    "note_str_of",
    "parse_examples",
    "read_note",
    "resolve_split",
    "write_examples",
]
