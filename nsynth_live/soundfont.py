"""Build an NSynth-layout dataset from SF2/SF3 soundfonts, the way NSynth was made.

Each note is rendered through FluidSynth at 16 kHz: note-on at 0 s, note-off at 3 s, cut at 4 s,
dry (reverb and chorus off), stereo mixed to mono, stored as 16-bit PCM. An instrument is one
(soundfont, GM program) in bank 0, or, in a multi-soundfont build, one melodic (soundfont, bank,
program) preset of one or several soundfonts (see :func:`build_dataset`); its NSynth family and
source come from the General MIDI program groups (:mod:`nsynth_live.gm`), its qualities are left
all zero (unknown). Instruments are split into train/valid/test by a seeded shuffle, so no
instrument is in two splits.

Output (``out_dir``)::

    build.json                 the build's settings (a rerun must match them)
    nsynth-train/examples.json + audio/<note_str>.wav
    nsynth-valid/...
    nsynth-test/...

Properties:

- deterministic: the same arguments give byte-identical files, whatever the worker count. Every
  note starts from the same synth state: FluidSynth voices carry a little state from their
  previous note (a gain ramp in the first 64-sample block), so each note is preceded by a short
  priming of the same note, which leaves the voices it will use exactly as they will be;
- atomic and resumable: every wav goes to a temp file in its folder, is fsync'ed and renamed
  into place; the examples.json files are written last. A rerun after an interruption keeps
  every wav that is complete and valid and renders only the rest;
- silent notes (peak below ``silence_db``, e.g. a pitch outside every sample's key range) are
  skipped and reported, as are notes that reach full scale (lower ``gain``);
- parallel: a process pool renders chunks of notes, each worker loading a soundfont once,
  when its first note of that soundfont comes.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import multiprocessing
import os
import re
import sys
import time
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE, gm
from nsynth_live.atomic import atomic_write_bytes, atomic_write_many
from nsynth_live.errors import UserError
from nsynth_live.int_list import parse_int_list
from nsynth_live.wav import to_pcm16, wav_bytes
from nsynth_live.nsynth import (
    AUDIO_DIR,
    EXAMPLES_JSON,
    NOTE_SAMPLES,
    SPLITS,
    NoteInfo,
    json_lines_object,
    note_str_of,
    write_examples,
)

NOTE_OFF_SAMPLES = 3 * SAMPLE_RATE  # key held 3 s, as in NSynth
DEFAULT_PITCHES = range(21, 109)  # the 88 piano keys
DEFAULT_VELOCITIES = (25, 50, 75, 100, 127)  # NSynth's velocities
# FluidSynth's master gain. Measured at velocity 127 over all 128 programs and every other
# pitch 21..108 at gain 1.0: peak 0.90 (FluidR3_GM; program 27, clean electric guitar) and
# 0.74 (TimGM6mb), median 0.40 / 0.31. 0.8 keeps ~2 dB of headroom on both and quiet notes
# well above 16-bit noise; louder soundfonts show up as clipped notes in the report.
DEFAULT_GAIN = 0.8
DEFAULT_SILENCE_DB = -60.0
# A worker's start-up (~0.3 s: interpreter, imports, soundfont) is worth ~250 notes of
# rendering on one core; below ~500 notes per worker the pool does not pay off.
MIN_NOTES_PER_WORKER = 500
BUILD_JSON = "build.json"
BUILDER_VERSION = 1

# FluidSynth renders in blocks of 64 samples and applies note events at block boundaries; all
# the lengths below are multiples of it, so note-on and note-off land on exact samples.
_BLOCK = 64
_PRIME_SAMPLES = 2 * _BLOCK
_WAV_BYTES = 44 + 2 * NOTE_SAMPLES  # canonical PCM header + 16-bit mono samples

# Soundfonts held out for evaluation: they never enter a training build (matched by file name
# or by content, so a renamed copy is caught too).
EVALUATION_SOUNDFONTS: dict[str, str] = {
    "TimGM6mb.sf2": "c5378b62028c920cb11e4803327983fee2f2cdff5dc89c708e39da417e51c854",
    "sf_GMbank.sf2": "9f39fc53bd3a1a69f13cb486838944eded358b3b6e8afbd6c1c2c33675b2034b",
}
# Soundfonts whose every preset is a synthesizer patch (NSynth's "synthetic" source), whatever
# its GM program: OPL-3_FM_128M.sf2 holds recordings of a Yamaha OPL3 FM chip.
SYNTHETIC_SOUNDFONTS: frozenset[str] = frozenset({"OPL-3_FM_128M.sf2"})
# SF2 2.04 section 7.2: bank 128 holds the percussion presets (drum kits, one sound per key);
# FluidSynth plays it on drum channels. Kits stored elsewhere are caught by their name.
PERCUSSION_BANK = 128
_KIT_NAME = re.compile(r"\b(kit|drum ?set|drumkit|drum ?kit)\b", re.IGNORECASE)
# A multi-soundfont build keeps a preset only if a plain note-on plays it: its loudest probe
# note (velocity 127 at these pitches) must peak above PLAYABLE_DB. Presets whose level follows
# a controller instead (MuseScore_General's 92 "Expr." presets, driven by CC2, peak at -62 to
# -113 dBFS without it; every other preset of the three training soundfonts is above -40) are
# left out and reported, like drum kits.
PLAYABLE_DB = -40.0
_PROBE_PITCHES = (48, 60, 72)
# Multi-soundfont builds (several soundfonts, banks other than 0, or evaluation sets) record
# more settings and provenance than version 1, the single-soundfont bank-0 layout.
MULTI_BUILDER_VERSION = 2


@dataclass(frozen=True, order=True)
class Preset:
    """One preset of a soundfont: its bank, program and the soundfont's name for it."""

    bank: int
    program: int
    name: str


def is_percussion(preset: Preset) -> bool:
    """Whether ``preset`` is a drum kit: in the percussion bank (128 and up) or named a kit."""
    return preset.bank >= PERCUSSION_BANK or bool(_KIT_NAME.search(preset.name))


@dataclass
class BuildReport:
    """What :func:`build_dataset` did."""

    out_dir: Path
    soundfont: str
    requested: int = 0
    """Notes asked for: instruments x pitches x velocities."""
    rendered: int = 0
    """Notes rendered in this run (written or found silent)."""
    reused: int = 0
    """Valid wavs kept from an earlier, interrupted run."""
    written: dict[str, int] = field(default_factory=dict)
    """Notes in each split's examples.json."""
    instruments: dict[str, list[str]] = field(default_factory=dict)
    """instrument_str per split."""
    silent: list[str] = field(default_factory=list)
    """Notes skipped because their peak was below the silence threshold."""
    clipped: list[str] = field(default_factory=list)
    """Notes rendered in this run whose peak reached full scale (clipped to 16 bits)."""
    missing_programs: list[int] = field(default_factory=list)
    """Programs the soundfont has no preset for (skipped; only with programs='all')."""
    instrument_soundfont: dict[str, str] = field(default_factory=dict)
    """instrument_str -> the file name of its soundfont."""
    percussion: list[str] = field(default_factory=list)
    """Drum-kit presets left out of a multi-soundfont build (``file:bank:program name``)."""
    unplayable: list[str] = field(default_factory=list)
    """Presets left out of a multi-soundfont build because a plain note-on leaves them
    (nearly) silent (``file:bank:program name``; see ``PLAYABLE_DB``)."""
    max_peak: float = 0.0
    """Largest peak (full scale = 1.0) among notes rendered in this run."""
    seconds: float = 0.0
    """Wall-clock time of the whole build."""
    render_seconds: float = 0.0
    """Wall-clock time of the rendering phase (worker start-up included)."""
    workers: int = 1
    """Rendering processes used (1: rendered in the calling process)."""

    @property
    def notes_per_second(self) -> float:
        """Rendering throughput of this run (rendered notes per wall-clock second)."""
        return self.rendered / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few human-readable lines."""
        splits = ", ".join(
            f"{s} {self.written.get(s, 0)} notes / {len(self.instruments.get(s, []))} instr."
            for s in SPLITS
        )
        lines = [
            f"built {self.out_dir} from {self.soundfont}: {splits}",
            f"rendered {self.rendered} notes in {self.seconds:.1f} s "
            f"({self.notes_per_second:.0f} notes/s, {self.workers} worker(s)), "
            f"kept {self.reused} from an earlier run; loudest peak {self.max_peak:.3f}",
        ]
        if self.silent:
            lines.append(
                f"skipped {len(self.silent)} silent notes (no sound at that pitch/velocity), "
                f"e.g. {', '.join(self.silent[:3])}"
            )
        if self.clipped:
            lines.append(
                f"warning: {len(self.clipped)} notes clipped at full scale (lower the gain), "
                f"e.g. {', '.join(self.clipped[:3])}"
            )
        names = list(dict.fromkeys(self.instrument_soundfont.values()))  # in build order
        if len(names) > 1:
            for name in names:
                per = [
                    sum(self.instrument_soundfont[i] == name for i in self.instruments.get(s, ()))
                    for s in SPLITS
                ]
                lines.append(
                    f"  {name}: {sum(per)} instruments ("
                    + ", ".join(f"{s} {n}" for s, n in zip(SPLITS, per)) + ")"
                )
        if self.percussion:
            lines.append(f"left out {len(self.percussion)} drum-kit presets (percussion)")
        if self.unplayable:
            lines.append(
                f"left out {len(self.unplayable)} presets silent under a plain note-on "
                f"(below {PLAYABLE_DB:g} dBFS at velocity 127), e.g. "
                + ", ".join(self.unplayable[:3])
            )
        if self.missing_programs:
            lines.append(
                "the soundfont has no preset for programs "
                + ",".join(str(p) for p in self.missing_programs)
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------------ input parsing


def parse_programs(spec: str, what: str = "programs") -> list[int] | str:
    """``'all'`` or a program list like ``'0,24,40'`` / ``'0-7'`` (GM programs 0..127)."""
    if str(spec).strip().lower() == "all":
        return "all"
    return parse_int_list(spec, what, 0, 127)


def parse_banks(spec: str, what: str = "banks") -> list[int] | str:
    """``'all'`` (every melodic bank) or a bank list like ``'0'`` / ``'0,8,16'`` (0..127)."""
    if str(spec).strip().lower() == "all":
        return "all"
    return parse_int_list(spec, what, 0, PERCUSSION_BANK - 1)


def parse_splits(
    spec: str | Sequence[float], what: str = "splits"
) -> tuple[float, float, float]:
    """Validate train/valid/test fractions (``'0.8,0.1,0.1'`` or a 3-sequence)."""
    if isinstance(spec, str):
        try:
            parts = [float(s) for s in spec.split(",")]
        except ValueError:
            raise UserError(f"{what} {spec!r}: expected three numbers like 0.8,0.1,0.1") from None
    else:
        parts = [float(s) for s in spec]
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        raise UserError(f"{what} {spec!r}: expected three non-negative numbers (train,valid,test)")
    if abs(sum(parts) - 1.0) > 1e-6:
        raise UserError(f"{what} {spec!r}: fractions must sum to 1, got {sum(parts):g}")
    if parts[0] <= 0:
        raise UserError(f"{what} {spec!r}: the train fraction must be above 0")
    return parts[0], parts[1], parts[2]


def _check_ints(values: Iterable[Any], what: str, lo: int, hi: int) -> list[int]:
    out: set[int] = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise UserError(f"{what}: {v!r} is not an integer in {lo}..{hi}")
        out.add(int(v))
    if not out:
        raise UserError(f"{what}: empty")
    return sorted(out)


def check_soundfont(path: str | os.PathLike[str]) -> Path:
    """The soundfont's path if it exists and starts like an SF2 file (RIFF ... sfbk)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"soundfont {p}: no such file")
    if not p.is_file():
        raise UserError(f"soundfont {p}: not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError as err:
        raise UserError(f"soundfont {p}: cannot read: {err.strerror}") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise UserError(f"soundfont {p}: not an SF2 soundfont (no RIFF 'sfbk' header)")
    return p


def split_instruments(
    n: int, splits: tuple[float, float, float], seed: int | Sequence[int]
) -> tuple[list[int], list[int], list[int]]:
    """Assign instruments 0..n-1 to (train, valid, test) by a seeded shuffle.

    valid and test get ``round(n * fraction)`` instruments each (halves round up) and train the
    rest; train never ends up empty: with the default 0.8/0.1/0.1, valid and test get an
    instrument only from 5 instruments on, so 1 to 4 instruments all go to train (valid and
    test are written with empty examples.json).

    Args:
        seed: an int, or a sequence of ints (a stratum's own shuffle: ``(seed, stratum)``).

    Returns:
        Sorted instrument indices per split.
    """
    if n <= 0:
        return [], [], []
    n_valid = int(math.floor(n * splits[1] + 0.5))
    n_test = int(math.floor(n * splits[2] + 0.5))
    while n_valid + n_test > n - 1:  # keep at least one training instrument
        if n_test >= n_valid and n_test > 0:
            n_test -= 1
        else:
            n_valid -= 1
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_train = n - n_valid - n_test
    return (
        sorted(order[:n_train]),
        sorted(order[n_train : n_train + n_valid]),
        sorted(order[n_train + n_valid :]),
    )


# -------------------------------------------------------------------------------- rendering


class Renderer:
    """One FluidSynth synthesizer with one soundfont loaded, rendering single dry notes.

    Args:
        soundfont: path of an SF2 file.
        gain: FluidSynth's master gain (``synth.gain``).
        warm_up: play one throwaway note of each preset the first time it is rendered. A few
            presets sound slightly different (1-2 LSB from ~50 ms on; FluidR3's bank-8
            "Feedback Guitar") on their very first note in a synth than on every later one,
            which the per-note priming does not cover; with the warm-up, every note renders as
            a later one, whatever this synth played before. Multi-soundfont builds use it; the
            single-soundfont build keeps its version-1 output byte for byte without it.
    """

    def __init__(
        self, soundfont: str | os.PathLike[str], gain: float = DEFAULT_GAIN, warm_up: bool = False
    ) -> None:
        try:
            import fluidsynth
        except (ImportError, OSError) as err:
            raise UserError(
                f"FluidSynth is not available ({err}); install the system library "
                "(Debian/Ubuntu: apt install libfluidsynth3) and pyfluidsynth (pip install 'nsynth-live[train]')"
            ) from None
        settings = {
            "synth.reverb.active": 0,  # dry notes, like NSynth's
            "synth.chorus.active": 0,
            "synth.cpu-cores": 1,  # parallelism comes from the process pool
            # Load a preset's samples when it is first selected, not the whole file up front:
            # a worker rendering a few programs of a 150 MB soundfont starts in milliseconds.
            "synth.dynamic-sample-loading": 1,
        }
        self.synth = fluidsynth.Synth(
            gain=float(gain), samplerate=float(SAMPLE_RATE), channels=16, **settings
        )
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            self.synth.delete()
            raise UserError(f"soundfont {soundfont}: FluidSynth could not load it")
        self._write = fluidsynth._fl.fluid_synth_write_float
        self._write.restype = ctypes.c_int
        # fluid_synth_write_float(synth, len, lout, loff, lincr, rout, roff, rincr)
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int] + 2 * [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int
        ]
        self._buf = np.zeros((NOTE_SAMPLES, 2), dtype=np.float32)
        self._scratch = np.zeros((_PRIME_SAMPLES, 2), dtype=np.float32)
        self._preset: tuple[int, int] | None = None  # (bank, program) selected on channel 0
        self._warm_up = warm_up
        self._warm: set[tuple[int, int]] = set()  # presets that have played a note

    def select(self, bank: int, program: int) -> bool:
        """Select preset (bank, program) on the rendering channel; False if there is none."""
        ok = self.synth.program_select(0, self.sfid, bank, program) == 0
        self._preset = (bank, program) if ok else None
        return ok

    def has_program(self, program: int) -> bool:
        """Whether the soundfont has a bank-0 preset for GM ``program``."""
        return self.select(0, program)

    def preset_name(self, program: int, bank: int = 0) -> str | None:
        """The soundfont's own name for its preset (bank, program)."""
        return self.synth.sfpreset_name(self.sfid, bank, program)

    def presets(self) -> list[Preset]:
        """Every preset of the soundfont, any bank (percussion included), by (bank, program).

        Walks FluidSynth's own preset list (``fluid_sfont_iteration_*``), so banks beyond
        0..128 and presets pyfluidsynth has no wrapper for are seen too.
        """
        import fluidsynth

        fl = fluidsynth._fl
        get_sfont = fl.fluid_synth_get_sfont_by_id
        get_sfont.restype, get_sfont.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]
        start = fl.fluid_sfont_iteration_start
        start.restype, start.argtypes = None, [ctypes.c_void_p]
        step = fl.fluid_sfont_iteration_next
        step.restype, step.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        bank_of, num_of, name_of = (
            fl.fluid_preset_get_banknum, fl.fluid_preset_get_num, fl.fluid_preset_get_name
        )
        for fn, res in ((bank_of, ctypes.c_int), (num_of, ctypes.c_int),
                        (name_of, ctypes.c_char_p)):  # fmt: skip
            fn.restype, fn.argtypes = res, [ctypes.c_void_p]
        sfont = get_sfont(self.synth.synth, self.sfid)
        out: list[Preset] = []
        start(sfont)
        while preset := step(sfont):
            raw = name_of(preset) or b""
            out.append(Preset(int(bank_of(preset)), int(num_of(preset)),
                              raw.decode("latin-1").strip()))  # fmt: skip
        return sorted(out)

    def _run(self, buf: np.ndarray, start: int, n: int) -> None:
        """Render n frames of float stereo into rows [start, start + n) of ``buf`` [N, 2]."""
        # Interleaved L/R straight into the numpy buffer: float output has no dither (the
        # 16-bit path adds a running dither sequence, which would make notes history-dependent).
        ptr = buf.ctypes.data + start * 8
        self._write(self.synth.synth, n, ptr, 0, 2, ptr, 1, 2)

    def _silence_voices(self) -> None:
        self.synth.all_sounds_off(0)
        self._run(self._scratch, 0, _BLOCK)  # lets FluidSynth free the voices

    def render(self, program: int, pitch: int, velocity: int, bank: int = 0) -> np.ndarray:
        """One note of preset (bank, program): on at 0 s, off at 3 s, cut at 4 s.

        Returns:
            [64000] float32 mono (the mean of left and right), not clipped.
        """
        if self._preset != (bank, program) and not self.select(bank, program):
            raise UserError(f"soundfont has no preset for bank {bank} program {program}")
        if self._warm_up and (bank, program) not in self._warm:
            self._note(60, 127)
        self._warm.add((bank, program))
        return self._note(pitch, velocity)

    def _note(self, pitch: int, velocity: int) -> np.ndarray:
        """One note of the selected preset (see :meth:`render`)."""
        # Prime: play the same note briefly so every voice slot it will use holds this note's
        # end state (see the module docstring), then silence it.
        self.synth.noteon(0, pitch, velocity)
        self._run(self._scratch, 0, _PRIME_SAMPLES)
        self._silence_voices()

        self.synth.noteon(0, pitch, velocity)
        self._run(self._buf, 0, NOTE_OFF_SAMPLES)
        self.synth.noteoff(0, pitch)
        self._run(self._buf, NOTE_OFF_SAMPLES, NOTE_SAMPLES - NOTE_OFF_SAMPLES)
        self._silence_voices()  # cut at 4 s: nothing rings into the next note
        return (self._buf[:, 0] + self._buf[:, 1]) * np.float32(0.5)

    def close(self) -> None:
        self.synth.delete()


def wav_is_complete(path: Path) -> bool:
    """Whether ``path`` is a finished wav of this builder: right size and header."""
    try:
        if path.stat().st_size != _WAV_BYTES:
            return False
        with wave.open(str(path), "rb") as w:
            return (
                w.getnchannels() == 1
                and w.getsampwidth() == 2
                and w.getframerate() == SAMPLE_RATE
                and w.getnframes() == NOTE_SAMPLES
            )
    except (OSError, EOFError, wave.Error):
        return False


# A job: (note_str, soundfont index, bank, program, pitch, velocity, wav path). A result:
# (note_str, status, peak, clipped) with status "ok" (written) or "silent" (skipped).
_Job = tuple[str, int, int, int, int, int, str]
_Result = tuple[str, str, float, bool]

_WORKER: dict[str, Any] = {}


def _render_jobs(
    renderer_of: Callable[[int], Renderer], jobs: Sequence[_Job], silence: float
) -> list[_Result]:
    """Render a chunk of notes and write the audible ones (atomically, fsync'ed together).

    Args:
        renderer_of: the Renderer of soundfont index k.
    """
    results: list[_Result] = []
    files: list[tuple[Path, bytes]] = []
    for note_str, sf, bank, program, pitch, velocity, path in jobs:
        audio = renderer_of(sf).render(program, pitch, velocity, bank)
        peak = float(np.abs(audio).max())
        if peak < silence:
            results.append((note_str, "silent", peak, False))
            continue
        pcm, clipped = to_pcm16(audio)
        files.append((Path(path), wav_bytes(pcm)))
        results.append((note_str, "ok", peak, clipped))
    try:
        atomic_write_many(files)
    except OSError as err:
        where = err.filename or (files[0][0].parent if files else "")
        raise UserError(f"cannot write {where}: {err.strerror or err}") from None
    return results


def _worker_init(soundfonts: list[str], gain: float, silence: float, warm_up: bool) -> None:
    _WORKER.update(soundfonts=soundfonts, gain=gain, silence=silence, warm_up=warm_up,
                   renderers={})  # fmt: skip


def _worker_renderer(k: int) -> Renderer:
    """This worker's Renderer of soundfont k, loaded when its first note comes."""
    renderers: dict[int, Renderer] = _WORKER["renderers"]
    if k not in renderers:
        renderers[k] = Renderer(_WORKER["soundfonts"][k], _WORKER["gain"], _WORKER["warm_up"])
    return renderers[k]


def _worker_run(jobs: list[_Job]) -> list[_Result]:
    return _render_jobs(_worker_renderer, jobs, _WORKER["silence"])


# ------------------------------------------------------------------------------ the builder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fluidsynth_version() -> str:
    import fluidsynth

    fn = fluidsynth._fl.fluid_version_str
    fn.restype = ctypes.c_char_p
    return fn().decode()


def _prepare_out_dir(out_dir: Path, settings: dict[str, Any]) -> None:
    """Create the output folders; refuse a folder holding another build or a real dataset."""
    build_json = out_dir / BUILD_JSON
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if build_json.exists():
            try:
                old = json.loads(build_json.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if not isinstance(old, dict):
                raise UserError(f"{build_json}: unreadable; delete it or use another output folder")
            keys = settings.keys() | old.keys()
            changed = sorted(k for k in keys if old.get(k) != settings.get(k))
            if changed:
                raise UserError(
                    f"{out_dir} holds a build with other settings ({', '.join(changed)} differ); "
                    "use another output folder or delete it"
                )
        else:
            for split in SPLITS:
                if (out_dir / f"nsynth-{split}" / EXAMPLES_JSON).exists():
                    raise UserError(
                        f"{out_dir} already holds an NSynth dataset not made by this builder "
                        f"(nsynth-{split}/{EXAMPLES_JSON} without {BUILD_JSON}); "
                        "use another output folder"
                    )
        for split in SPLITS:
            audio = out_dir / f"nsynth-{split}" / AUDIO_DIR
            audio.mkdir(parents=True, exist_ok=True)
            for stale in audio.glob(".*.tmp"):  # temp files of an interrupted run
                stale.unlink()
        if not os.access(out_dir, os.W_OK):
            raise PermissionError(13, "Permission denied")
        # build.json goes first: a rerun of an interrupted build checks it matches.
        text = json_lines_object(dict(sorted(settings.items())))
        if not build_json.exists() or build_json.read_text(encoding="utf-8") != text:
            atomic_write_bytes(build_json, text.encode("utf-8"))
    except OSError as err:
        raise UserError(f"output folder {out_dir}: {err.strerror or err}") from None


@dataclass
class _Instrument:
    """One instrument of a build: a (soundfont, bank, program) preset and its NSynth labels."""

    sf: int
    """Index of its soundfont in the build's list."""
    bank: int
    program: int
    family: int
    family_str: str
    source: int
    source_str: str
    instrument_str: str
    extra: dict[str, Any]
    split: str = "train"


SoundfontPath = str | os.PathLike[str]


def build_dataset(
    soundfont: SoundfontPath | Sequence[SoundfontPath],
    out_dir: str | os.PathLike[str],
    programs: Iterable[int] | str = "all",
    pitches: Iterable[int] = DEFAULT_PITCHES,
    velocities: Iterable[int] = DEFAULT_VELOCITIES,
    seed: int = 0,
    splits: Sequence[float] | str = (0.8, 0.1, 0.1),
    workers: int | None = None,
    progress: bool = True,
    gain: float = DEFAULT_GAIN,
    silence_db: float = DEFAULT_SILENCE_DB,
    banks: Iterable[int] | str = (0,),
    evaluation_only: bool = False,
    synthetic: Iterable[str] = SYNTHETIC_SOUNDFONTS,
) -> BuildReport:
    """Render one or several soundfonts into an NSynth-layout dataset (see the module docstring).

    One soundfont with bank 0 only (the default) is the original single-soundfont build, its
    files byte for byte as before (builder version 1). Anything else (several soundfonts, other
    banks, an evaluation set) is a multi-soundfont build (version 2):

    - an instrument is one melodic (soundfont, bank, program) preset; drum kits (bank 128 and
      up, or a preset named a kit) and presets a plain note-on leaves silent (``PLAYABLE_DB``)
      are left out and reported;
    - family from the GM program (a variation keeps its program's family); source from the GM
      program, or "synthetic" for every preset of a soundfont named in ``synthetic``;
      instrument_str ``<family>_<source>_<NNN>`` counted per (family, source) over the whole
      dataset in (soundfont, bank, program) order, so ids are unique across soundfonts;
    - each note's extra fields name its provenance: soundfont (file name), bank, program,
      program_name (GM), preset_name (the soundfont's);
    - the split is stratified by soundfont: each soundfont's instruments get their own seeded
      shuffle (seed, soundfont index), so every split holds instruments of every soundfont
      that has enough of them (5 with the default fractions);
    - soundfonts in :data:`EVALUATION_SOUNDFONTS` are refused unless ``evaluation_only``, which
      puts every instrument in nsynth-test (train and valid are written empty).

    Args:
        soundfont: SF2/SF3 file, or a sequence of them (order fixes instrument numbering).
        out_dir: output root; nsynth-train/, nsynth-valid/, nsynth-test/ go inside.
        programs: GM programs to render, or 'all'. In the single-soundfont bank-0 build,
            listed programs must exist and missing ones are skipped and reported with 'all';
            in a multi-soundfont build the list filters the presets found.
        pitches: MIDI pitches 0..127.
        velocities: MIDI velocities 1..127.
        seed: seed of the instrument split.
        splits: train/valid/test fractions of the instruments (ignored with evaluation_only).
        workers: at most this many rendering processes (default: CPU count); one per
            ``MIN_NOTES_PER_WORKER`` notes to render, and 1 renders in this process.
        progress: show a progress bar (only when stderr is a terminal).
        gain: FluidSynth master gain. The default leaves headroom on common GM soundfonts;
            the report lists any clipped notes.
        silence_db: notes whose peak is below this (dBFS) are skipped as silent.
        banks: melodic banks 0..127 to take presets from, or 'all'.
        evaluation_only: the dataset is for evaluation only (every instrument in nsynth-test);
            required to use an evaluation soundfont.
        synthetic: soundfont file names whose presets are all NSynth's "synthetic" source.

    Returns:
        A :class:`BuildReport`.

    Raises:
        UserError: bad soundfont, bank, program, pitch, velocity, split or output folder,
            or an evaluation soundfont in a training build, naming it.
    """
    t0 = time.perf_counter()
    raw = [soundfont] if isinstance(soundfont, (str, os.PathLike)) else list(soundfont)
    if not raw:
        raise UserError("soundfont: none given")
    sf_paths = [check_soundfont(p) for p in raw]
    for i, p in enumerate(sf_paths):
        for q in sf_paths[:i]:
            if p.name == q.name:
                raise UserError(
                    f"soundfont {p}: given twice, or two soundfonts named {p.name} "
                    "(provenance names soundfonts by file name)"
                )
    if isinstance(programs, str):
        programs = parse_programs(programs)
    program_list = (
        list(range(128)) if programs == "all" else _check_ints(programs, "programs", 0, 127)
    )
    if isinstance(banks, str):
        banks = parse_banks(banks)
    bank_list = banks if banks == "all" else _check_ints(banks, "banks", 0, PERCUSSION_BANK - 1)
    pitch_list = _check_ints(pitches, "pitches", 0, 127)
    velocity_list = _check_ints(velocities, "velocities", 1, 127)
    split_fracs = parse_splits(splits)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise UserError(f"workers: {workers} is not a positive count")
    if not (math.isfinite(gain) and gain > 0):
        raise UserError(f"gain: {gain!r} must be a positive number")
    out = Path(out_dir)
    single = len(sf_paths) == 1 and bank_list == [0] and not evaluation_only
    shas = [_sha256(p) for p in sf_paths]
    if not single and not evaluation_only:
        for p, sha in zip(sf_paths, shas):
            held = p.name if p.name in EVALUATION_SOUNDFONTS else next(
                (n for n, h in EVALUATION_SOUNDFONTS.items() if h == sha), None
            )
            if held is not None:
                raise UserError(
                    f"soundfont {p}: {held} is held out for evaluation and never enters "
                    "training; build it as an evaluation set (--evaluation-only: every "
                    "instrument in nsynth-test)"
                )

    # Probe the soundfonts here: which presets exist, and their names. With one worker the
    # probes render too.
    probes: list[Renderer] | None = []
    try:
        for p in sf_paths:
            probes.append(Renderer(p, gain, warm_up=not single))
        common = {
            "fluidsynth": _fluidsynth_version(),
            "gain": float(gain),
            "note_off_s": NOTE_OFF_SAMPLES / SAMPLE_RATE,
            "note_s": NOTE_SAMPLES / SAMPLE_RATE,
            "pitches": pitch_list,
            "sample_rate": SAMPLE_RATE,
            "seed": int(seed),
            "silence_db": float(silence_db),
            "splits": list(split_fracs),
            "velocities": velocity_list,
        }
        report = BuildReport(out_dir=out, soundfont=", ".join(p.name for p in sf_paths),
                             workers=workers)  # fmt: skip
        if single:
            instruments, settings = _plan_single(
                probes[0], sf_paths[0], shas[0], programs, program_list, split_fracs, seed,
                common, report,
            )  # fmt: skip
        else:
            instruments, settings = _plan_multi(
                probes, sf_paths, shas, programs, program_list, bank_list, split_fracs, seed,
                evaluation_only, frozenset(synthetic), common, report,
            )  # fmt: skip
        _prepare_out_dir(out, settings)

        notes: dict[str, NoteInfo] = {}
        note_split: dict[str, str] = {}
        jobs: list[_Job] = []
        for i, ins in enumerate(instruments):
            report.instruments.setdefault(ins.split, []).append(ins.instrument_str)
            report.instrument_soundfont[ins.instrument_str] = sf_paths[ins.sf].name
            for pitch in pitch_list:
                for velocity in velocity_list:
                    name = note_str_of(ins.instrument_str, pitch, velocity)
                    notes[name] = NoteInfo(
                        note_str=name, pitch=pitch, velocity=velocity, instrument=i,
                        instrument_str=ins.instrument_str, instrument_family=ins.family,
                        instrument_family_str=ins.family_str, instrument_source=ins.source,
                        instrument_source_str=ins.source_str,
                        qualities=(0,) * len(gm.QUALITIES), qualities_str=(),
                        sample_rate=SAMPLE_RATE, note=len(notes), extra=ins.extra,
                    )  # fmt: skip
                    note_split[name] = ins.split
                    path = out / f"nsynth-{ins.split}" / AUDIO_DIR / f"{name}.wav"
                    if wav_is_complete(path):
                        report.reused += 1
                    else:
                        jobs.append(
                            (name, ins.sf, ins.bank, ins.program, pitch, velocity, str(path))
                        )
        report.requested = len(notes)

        # A worker process costs a few hundred ms to start (interpreter, imports, soundfont):
        # small jobs render faster here in this process with the probes' synths.
        report.workers = min(workers, max(1, len(jobs) // MIN_NOTES_PER_WORKER))
        if report.workers > 1:
            for r in probes:
                r.close()
            probes = None
        silence = 10.0 ** (silence_db / 20.0)
        t_render = time.perf_counter()
        results = _run_jobs(probes, jobs, sf_paths, gain, silence, report.workers, progress,
                            len(notes), report.reused, warm_up=not single)  # fmt: skip
        report.render_seconds = time.perf_counter() - t_render
    finally:
        for r in probes or ():
            r.close()

    silent = set()
    for name, status, peak, clipped in results:
        report.rendered += 1
        report.max_peak = max(report.max_peak, peak)
        if status == "silent":
            silent.add(name)
            stale = out / f"nsynth-{note_split[name]}" / AUDIO_DIR / f"{name}.wav"
            stale.unlink(missing_ok=True)  # a partial file from an interrupted run
        elif clipped:
            report.clipped.append(name)
    report.silent = sorted(silent)
    report.clipped.sort()

    # examples.json last, so a folder with examples.json is a finished split.
    for split in SPLITS:
        members = [n for k, n in notes.items() if note_split[k] == split and k not in silent]
        try:
            write_examples(out / f"nsynth-{split}", members)
        except OSError as err:
            where = out / f"nsynth-{split}" / EXAMPLES_JSON
            raise UserError(f"cannot write {where}: {err.strerror or err}") from None
        report.written[split] = len(members)
        report.instruments.setdefault(split, [])
    report.seconds = time.perf_counter() - t0
    return report


def _labelled(
    sf: int, bank: int, program: int, source: tuple[int, str] | None,
    per_class: dict[tuple[int, int], int], extra: dict[str, Any],
) -> _Instrument:  # fmt: skip
    """An instrument with its NSynth family/source and the next free <family>_<source>_<NNN>."""
    fam, fam_str = gm.program_family(program)
    src, src_str = source or gm.program_source(program)
    k = per_class.get((fam, src), 0)
    per_class[(fam, src)] = k + 1
    return _Instrument(sf=sf, bank=bank, program=program, family=fam, family_str=fam_str,
                       source=src, source_str=src_str,
                       instrument_str=f"{fam_str}_{src_str}_{k:03d}", extra=extra)  # fmt: skip


def _plan_single(
    probe: Renderer,
    sf_path: Path,
    sha: str,
    programs: Iterable[int] | str,
    program_list: list[int],
    split_fracs: tuple[float, float, float],
    seed: int,
    common: dict[str, Any],
    report: BuildReport,
) -> tuple[list[_Instrument], dict[str, Any]]:
    """Instruments and build.json settings of the single-soundfont bank-0 build (version 1)."""
    available = [p for p in program_list if probe.has_program(p)]
    missing = sorted(set(program_list) - set(available))
    if missing and programs != "all":
        raise UserError(
            f"soundfont {sf_path}: no bank-0 preset for program(s) "
            + ",".join(str(p) for p in missing)
        )
    report.missing_programs = missing
    settings = dict(common, builder_version=BUILDER_VERSION, programs=available,
                    soundfont=sf_path.name, soundfont_sha256=sha)  # fmt: skip
    # Instruments: index per (family, source) in program order, like NSynth's
    # <family>_<source>_<NNN>.
    per_class: dict[tuple[int, int], int] = {}
    instruments = [
        _labelled(0, 0, program, None, per_class, {
            "soundfont": sf_path.name,
            "program": program,
            "program_name": gm.program_name(program),
            "preset_name": probe.preset_name(program),
        })
        for program in available
    ]  # fmt: skip
    for split, members in zip(SPLITS, split_instruments(len(instruments), split_fracs, seed)):
        for i in members:
            instruments[i].split = split
    return instruments, settings


def _playable(renderer: Renderer, preset: Preset) -> bool:
    """Whether a plain note-on plays ``preset`` (see ``PLAYABLE_DB``)."""
    floor = 10.0 ** (PLAYABLE_DB / 20.0)
    for pitch in _PROBE_PITCHES:
        audio = renderer.render(preset.program, pitch, 127, preset.bank)
        if float(np.abs(audio).max()) >= floor:
            return True
    return False


def _plan_multi(
    probes: list[Renderer],
    sf_paths: list[Path],
    shas: list[str],
    programs: Iterable[int] | str,
    program_list: list[int],
    bank_list: list[int] | str,
    split_fracs: tuple[float, float, float],
    seed: int,
    evaluation_only: bool,
    synthetic: frozenset[str],
    common: dict[str, Any],
    report: BuildReport,
) -> tuple[list[_Instrument], dict[str, Any]]:
    """Instruments and build.json settings of a multi-soundfont build (version 2)."""
    wanted = set(program_list)
    instruments: list[_Instrument] = []
    per_class: dict[tuple[int, int], int] = {}
    recorded = []
    for k, (probe, path) in enumerate(zip(probes, sf_paths)):
        chosen = []
        for preset in probe.presets():
            label = f"{path.name}:{preset.bank}:{preset.program} {preset.name}"
            if is_percussion(preset):
                report.percussion.append(label)
            elif (bank_list == "all" or preset.bank in bank_list) and preset.program in wanted:
                if _playable(probe, preset):
                    chosen.append(preset)
                else:
                    report.unplayable.append(label)
        if not chosen:
            raise UserError(
                f"soundfont {path}: no melodic preset in bank(s) "
                f"{bank_list if bank_list == 'all' else ','.join(map(str, bank_list))} "
                f"with program(s) {programs if programs == 'all' else ','.join(map(str, wanted))}"
            )
        source = None
        if path.name in synthetic:
            source = (gm.source_id("synthetic"), "synthetic")
        first = len(instruments)
        for preset in chosen:
            instruments.append(_labelled(k, preset.bank, preset.program, source, per_class, {
                "soundfont": path.name,
                "bank": preset.bank,
                "program": preset.program,
                "program_name": gm.program_name(preset.program),
                "preset_name": preset.name,
            }))  # fmt: skip
        members = list(range(first, len(instruments)))
        if evaluation_only:
            for i in members:
                instruments[i].split = "test"
        else:
            parts = split_instruments(len(members), split_fracs, (int(seed), k))
            for split, part in zip(SPLITS, parts):
                for j in part:
                    instruments[members[j]].split = split
        recorded.append({"name": path.name, "sha256": shas[k], "instruments": len(chosen),
                         "source": "synthetic" if source else "gm"})  # fmt: skip
    settings = dict(
        common,
        banks=bank_list,
        builder_version=MULTI_BUILDER_VERSION,
        evaluation_only=bool(evaluation_only),
        programs=programs if programs == "all" else program_list,
        soundfonts=recorded,
        split_strata="soundfont",
    )
    return instruments, settings


def _run_jobs(
    renderers: Sequence[Renderer] | None,
    jobs: list[_Job],
    soundfonts: Sequence[Path],
    gain: float,
    silence: float,
    workers: int,
    progress: bool,
    total: int,
    done: int,
    warm_up: bool = False,
) -> list[_Result]:
    """Render ``jobs`` in this process (renderers given, one per soundfont) or in a pool."""
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=done,
        unit="note",
        desc="render",
        disable=not progress or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    results: list[_Result] = []
    try:
        # Chunks amortise inter-process traffic and fsyncs; their order does not matter
        # because every note renders from the same synth state and results are keyed by name.
        size = max(1, min(32, math.ceil(len(jobs) / (workers * 8))))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        if renderers is not None:
            for chunk in chunks:
                results.extend(_render_jobs(renderers.__getitem__, chunk, silence))
                bar.update(len(chunk))
        elif chunks:
            # spawn: FluidSynth and the caller (maybe holding torch threads) are not fork-safe.
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(
                processes=min(workers, len(chunks)),
                initializer=_worker_init,
                initargs=([str(p) for p in soundfonts], gain, silence, warm_up),
            ) as pool:
                for chunk_results in pool.imap_unordered(_worker_run, chunks):
                    results.extend(chunk_results)
                    bar.update(len(chunk_results))
    finally:
        bar.close()
    return results
