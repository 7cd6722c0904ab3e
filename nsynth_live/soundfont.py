"""Build an NSynth-layout dataset from any SF2 soundfont, the way NSynth was made.

Each note is rendered through FluidSynth at 16 kHz: note-on at 0 s, note-off at 3 s, cut at 4 s,
dry (reverb and chorus off), stereo mixed to mono, stored as 16-bit PCM. An instrument is one
(soundfont, GM program); its NSynth family and source come from the General MIDI program groups
(:mod:`nsynth_live.gm`), its qualities are left all zero (unknown). Instruments are split into
train/valid/test by a seeded shuffle, so no instrument is in two splits.

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
- parallel: a process pool renders chunks of notes, each worker loading the soundfont once.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import math
import multiprocessing
import os
import sys
import time
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE, gm
from nsynth_live.errors import UserError
from nsynth_live.int_list import parse_int_list
from nsynth_live.nsynth import (
    AUDIO_DIR,
    EXAMPLES_JSON,
    NOTE_SAMPLES,
    SPLITS,
    NoteInfo,
    atomic_write_bytes,
    atomic_write_many,
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
    n: int, splits: tuple[float, float, float], seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Assign instruments 0..n-1 to (train, valid, test) by a seeded shuffle.

    valid and test get ``round(n * fraction)`` instruments each (halves round up) and train the
    rest; train never ends up empty: with the default 0.8/0.1/0.1, valid and test get an
    instrument only from 5 instruments on, so 1 to 4 instruments all go to train (valid and
    test are written with empty examples.json).

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
    """

    def __init__(self, soundfont: str | os.PathLike[str], gain: float = DEFAULT_GAIN) -> None:
        try:
            import fluidsynth
        except (ImportError, OSError) as err:
            raise UserError(
                f"FluidSynth is not available ({err}); install the system library "
                "(Debian/Ubuntu: apt install libfluidsynth3) and pyfluidsynth"
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
        self._program: int | None = None

    def has_program(self, program: int) -> bool:
        """Whether the soundfont has a bank-0 preset for GM ``program``."""
        ok = self.synth.program_select(0, self.sfid, 0, program) == 0
        self._program = program if ok else None
        return ok

    def preset_name(self, program: int) -> str | None:
        """The soundfont's own name for its bank-0 preset ``program``."""
        return self.synth.sfpreset_name(self.sfid, 0, program)

    def _run(self, buf: np.ndarray, start: int, n: int) -> None:
        """Render n frames of float stereo into rows [start, start + n) of ``buf`` [N, 2]."""
        # Interleaved L/R straight into the numpy buffer: float output has no dither (the
        # 16-bit path adds a running dither sequence, which would make notes history-dependent).
        ptr = buf.ctypes.data + start * 8
        self._write(self.synth.synth, n, ptr, 0, 2, ptr, 1, 2)

    def _silence_voices(self) -> None:
        self.synth.all_sounds_off(0)
        self._run(self._scratch, 0, _BLOCK)  # lets FluidSynth free the voices

    def render(self, program: int, pitch: int, velocity: int) -> np.ndarray:
        """One note: on at 0 s, off at 3 s, cut at 4 s.

        Returns:
            [64000] float32 mono (the mean of left and right), not clipped.
        """
        if self._program != program:
            if self.synth.program_select(0, self.sfid, 0, program) != 0:
                raise UserError(f"soundfont has no preset for program {program}")
            self._program = program
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


def to_pcm16(audio: np.ndarray) -> tuple[np.ndarray, bool]:
    """Float [-1, 1) audio to int16 (x * 32768, rounded); True if any sample clipped."""
    q = np.rint(audio.astype(np.float64) * 32768.0)
    clipped = bool((q > 32767).any() or (q < -32768).any())
    return np.clip(q, -32768, 32767).astype(np.int16), clipped


def wav_bytes(pcm: np.ndarray) -> bytes:
    """A canonical 16 kHz mono 16-bit PCM wav (44-byte header) holding ``pcm`` [T] int16."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


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


# A job: (note_str, program, pitch, velocity, wav path). A result: (note_str, status, peak,
# clipped) with status "ok" (written) or "silent" (skipped).
_Job = tuple[str, int, int, int, str]
_Result = tuple[str, str, float, bool]

_WORKER: dict[str, Any] = {}


def _render_jobs(renderer: Renderer, jobs: Sequence[_Job], silence: float) -> list[_Result]:
    """Render a chunk of notes and write the audible ones (atomically, fsync'ed together)."""
    results: list[_Result] = []
    files: list[tuple[Path, bytes]] = []
    for note_str, program, pitch, velocity, path in jobs:
        audio = renderer.render(program, pitch, velocity)
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


def _worker_init(soundfont: str, gain: float, silence: float) -> None:
    _WORKER["renderer"] = Renderer(soundfont, gain)
    _WORKER["silence"] = silence


def _worker_run(jobs: list[_Job]) -> list[_Result]:
    return _render_jobs(_WORKER["renderer"], jobs, _WORKER["silence"])


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


def build_dataset(
    soundfont: str | os.PathLike[str],
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
) -> BuildReport:
    """Render a soundfont into an NSynth-layout dataset (see the module docstring).

    Args:
        soundfont: SF2 file.
        out_dir: output root; nsynth-train/, nsynth-valid/, nsynth-test/ go inside.
        programs: GM programs (bank 0) to render, or 'all' (programs the soundfont lacks are
            then skipped and reported; listed programs must exist).
        pitches: MIDI pitches 0..127.
        velocities: MIDI velocities 1..127.
        seed: seed of the instrument split.
        splits: train/valid/test fractions of the instruments.
        workers: at most this many rendering processes (default: CPU count); one per
            ``MIN_NOTES_PER_WORKER`` notes to render, and 1 renders in this process.
        progress: show a progress bar (only when stderr is a terminal).
        gain: FluidSynth master gain. The default leaves headroom on common GM soundfonts;
            the report lists any clipped notes.
        silence_db: notes whose peak is below this (dBFS) are skipped as silent.

    Returns:
        A :class:`BuildReport`.

    Raises:
        UserError: bad soundfont, program, pitch, velocity, split or output folder, naming it.
    """
    t0 = time.perf_counter()
    sf_path = check_soundfont(soundfont)
    if isinstance(programs, str):
        programs = parse_programs(programs)
    program_list = (
        list(range(128)) if programs == "all" else _check_ints(programs, "programs", 0, 127)
    )
    pitch_list = _check_ints(pitches, "pitches", 0, 127)
    velocity_list = _check_ints(velocities, "velocities", 1, 127)
    split_fracs = parse_splits(splits)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise UserError(f"workers: {workers} is not a positive count")
    if not (math.isfinite(gain) and gain > 0):
        raise UserError(f"gain: {gain!r} must be a positive number")
    out = Path(out_dir)

    # Probe the soundfont once here: which programs exist, and their preset names. With one
    # worker the probe renders too.
    probe: Renderer | None = Renderer(sf_path, gain)
    try:
        available = [p for p in program_list if probe.has_program(p)]
        missing = sorted(set(program_list) - set(available))
        if missing and programs != "all":
            raise UserError(
                f"soundfont {sf_path}: no bank-0 preset for program(s) "
                + ",".join(str(p) for p in missing)
            )
        preset_names = {p: probe.preset_name(p) for p in available}

        settings = {
            "builder_version": BUILDER_VERSION,
            "fluidsynth": _fluidsynth_version(),
            "gain": float(gain),
            "note_off_s": NOTE_OFF_SAMPLES / SAMPLE_RATE,
            "note_s": NOTE_SAMPLES / SAMPLE_RATE,
            "pitches": pitch_list,
            "programs": available,
            "sample_rate": SAMPLE_RATE,
            "seed": int(seed),
            "silence_db": float(silence_db),
            "soundfont": sf_path.name,
            "soundfont_sha256": _sha256(sf_path),
            "splits": list(split_fracs),
            "velocities": velocity_list,
        }
        _prepare_out_dir(out, settings)

        # Instruments: index per (family, source) in program order, like NSynth's
        # <family>_<source>_<NNN>.
        instruments: list[dict[str, Any]] = []
        per_class: dict[tuple[int, int], int] = {}
        for program in available:
            fam, fam_str = gm.program_family(program)
            src, src_str = gm.program_source(program)
            k = per_class.get((fam, src), 0)
            per_class[(fam, src)] = k + 1
            instruments.append(
                dict(program=program, family=fam, family_str=fam_str, source=src,
                     source_str=src_str, instrument_str=f"{fam_str}_{src_str}_{k:03d}")
            )  # fmt: skip
        split_of: dict[int, str] = {}
        for split, members in zip(SPLITS, split_instruments(len(instruments), split_fracs, seed)):
            for i in members:
                split_of[i] = split

        report = BuildReport(out_dir=out, soundfont=sf_path.name, workers=workers)
        notes: dict[str, NoteInfo] = {}
        note_split: dict[str, str] = {}
        jobs: list[_Job] = []
        for i, ins in enumerate(instruments):
            split = split_of[i]
            report.instruments.setdefault(split, []).append(ins["instrument_str"])
            extra = {
                "soundfont": sf_path.name,
                "program": ins["program"],
                "program_name": gm.program_name(ins["program"]),
                "preset_name": preset_names[ins["program"]],
            }
            for pitch in pitch_list:
                for velocity in velocity_list:
                    name = note_str_of(ins["instrument_str"], pitch, velocity)
                    notes[name] = NoteInfo(
                        note_str=name, pitch=pitch, velocity=velocity, instrument=i,
                        instrument_str=ins["instrument_str"], instrument_family=ins["family"],
                        instrument_family_str=ins["family_str"], instrument_source=ins["source"],
                        instrument_source_str=ins["source_str"],
                        qualities=(0,) * len(gm.QUALITIES), qualities_str=(),
                        sample_rate=SAMPLE_RATE, note=len(notes), extra=extra,
                    )  # fmt: skip
                    note_split[name] = split
                    path = out / f"nsynth-{split}" / AUDIO_DIR / f"{name}.wav"
                    if wav_is_complete(path):
                        report.reused += 1
                    else:
                        jobs.append((name, ins["program"], pitch, velocity, str(path)))
        report.requested = len(notes)

        # A worker process costs a few hundred ms to start (interpreter, imports, soundfont):
        # small jobs render faster here in this process with the probe's synth.
        report.workers = min(workers, max(1, len(jobs) // MIN_NOTES_PER_WORKER))
        if report.workers > 1:
            probe.close()
            probe = None
        silence = 10.0 ** (silence_db / 20.0)
        t_render = time.perf_counter()
        results = _run_jobs(probe, jobs, sf_path, gain, silence, report.workers, progress,
                            len(notes), report.reused)  # fmt: skip
        report.render_seconds = time.perf_counter() - t_render
    finally:
        if probe is not None:
            probe.close()

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
    report.missing_programs = missing

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


def _run_jobs(
    renderer: Renderer | None,
    jobs: list[_Job],
    soundfont: Path,
    gain: float,
    silence: float,
    workers: int,
    progress: bool,
    total: int,
    done: int,
) -> list[_Result]:
    """Render ``jobs`` in this process (renderer given) or in a pool of ``workers``."""
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
        if renderer is not None:
            for chunk in chunks:
                results.extend(_render_jobs(renderer, chunk, silence))
                bar.update(len(chunk))
        elif chunks:
            # spawn: FluidSynth and the caller (maybe holding torch threads) are not fork-safe.
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(
                processes=min(workers, len(chunks)),
                initializer=_worker_init,
                initargs=(str(soundfont), gain, silence),
            ) as pool:
                for chunk_results in pool.imap_unordered(_worker_run, chunks):
                    results.extend(chunk_results)
                    bar.update(len(chunk_results))
    finally:
        bar.close()
    return results
