"""``render-bank``: a preset bank (or an XY grid of blends) to NSynth-style WAV notes and SFZs.

Work items are (sound, pitch). A sound is a preset of the bank or a point (i, j) of an N x N grid
between the bank's four corner presets (bilinear blend in latent space at x = i/(N-1),
y = j/(N-1), as the XY pad plays it; a grid point on a corner *is* that corner's preset). Every
note is played as the live host plays a key held for ``seconds - 1`` s (NSynth: 4 s notes, key up
at 3 s; notes under 2 s are released half-way): the trajectory's attack, its sustain region held while the key is down, then its release
frames (:class:`host.trajectory.Cursor`); conditioning comes from :meth:`Engine.condition` and
samples from :meth:`Engine.render`, exactly as :func:`nsynth_live.host.engines.render_frames` does.

The model has no velocity input: each (sound, pitch) is rendered once and its velocity layers
are copies scaled by the host's velocity gain (:func:`host.synth.velocity_gain`).

Reproducibility: a note's noise is ``NoiseStream(seed, [note_id])`` with ``note_id = sound_id *
128 + pitch`` (``sound_id``: the preset's index in the bank; grid points off the corners get ids
past :data:`GRID_ID_BASE`). Engines give every voice the same arithmetic whatever the batch, so
a note's file does not depend on batching, sharding or resuming.

Files: ``OUT/samples/{sound}-{pitch:03d}-{velocity:03d}.wav`` (16-bit, 16 kHz, mono), each
written atomically; ``OUT/{sound}.sfz`` (:mod:`host.sfz`) once all of a sound's files exist;
``OUT/manifest*.json`` (:mod:`host.render_manifest`); the folder's layout and the shard merge are
:mod:`host.render_output`'s. A rerun renders only items with a missing file and never rewrites
a finished one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live.host import render_manifest as rm
from nsynth_live.host.render_output import SAMPLES, note_file, write_instruments
from nsynth_live.host.bank import Bank, slug
from nsynth_live.host.engines import Engine, note_audio, voice_excitation
from nsynth_live.host.model_files import ExportInfo
from nsynth_live.host.synth import FADE_SAMPLES, velocity_gain
from nsynth_live.host.trajectory import Cursor, bilinear_presets, default_regions
from nsynth_live import SAMPLE_RATE, __version__
from nsynth_live.errors import BadValue, UserError
from nsynth_live.harmonics import at_pitch
from nsynth_live.noise import note_noise, note_rng
from nsynth_live.atomic import atomic_write_many
from nsynth_live.level import OutputGain
from nsynth_live.sampling import NoiseStream, check_excitation_gain
from nsynth_live.wav import wav_bytes

GRID_ID_BASE = 1 << 20
"""Sound ids of grid points off the corners start here (preset ids are bank indices)."""

COND_WINDOW = 8
"""Frames conditioned per engine call: bounds memory (the paper's conditioning is 31k floats per
frame and voice, ~1 GB for 64 whole 4 s notes)."""

MAX_GRID = 64
"""Most grid points per side: 4096 sounds, ~1.8 M files at NSynth's pitches and velocities."""

RELEASE_SECONDS = 1.0
"""NSynth releases the key 1 s before the end of its 4 s notes."""


# ----------------------------------------------------------------------------- arguments


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard i/N`` -> (i, N) with 0 <= i < N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise BadValue("shard", text, "expected i/N like 0/4 (shard i of N, counted from 0)")
    i, n = int(m.group(1)), int(m.group(2))
    if not 0 <= i < n:
        raise BadValue("shard", text, f"i must be 0..N-1 (shards of {n} are 0/{n}..{n - 1}/{n})")
    return i, n


def note_lengths(seconds: float) -> tuple[int, int]:
    """(note samples, samples the key is held) for a note of ``seconds``.

    The key goes up :data:`RELEASE_SECONDS` before the end (NSynth: held 3 s of 4), leaving the
    trajectory's release frames (1 s of an NSynth preset) time to play; notes shorter than 2 s
    are released half-way.
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise BadValue("seconds", seconds, "must be a positive number")
    n = int(round(seconds * SAMPLE_RATE))
    if n < 1:
        raise BadValue("seconds", seconds, "shorter than one sample")
    hold = seconds - min(RELEASE_SECONDS, seconds / 2)
    return n, int(round(hold * SAMPLE_RATE))


# ----------------------------------------------------------------------------- sounds and items


@dataclass(frozen=True)
class Sound:
    """One timbre to render at every pitch.

    Attributes:
        name: the preset's name, or ``grid i,j``.
        file: file-name stem (:func:`host.bank.slug` of the preset's name, or ``grid-{i}-{j}``).
        sound_id: part of every note id (the preset's bank index, or past :data:`GRID_ID_BASE`).
        embedding: float32 [frames, bottleneck] trajectory.
        regions: sustain / release frame boundaries (:mod:`host.trajectory`).
        grid: (i, j, x, y) of a grid point, None for a preset.
        harmonics: float32 [frames, K'] measured harmonic amplitudes (the preset's, or the
            corners' blend), which a model with a learned source plays in its source network's
            place (:mod:`nsynth_live.harmonics`); None: the network's.
        noise: float32 [frames, BANDS] measured noise bands, which a residual-form model adds to
            its notes (:mod:`nsynth_live.noise`); None: none.
    """

    name: str
    file: str
    sound_id: int
    embedding: np.ndarray = field(repr=False)
    regions: dict[str, int]
    grid: tuple[int, int, float, float] | None = None
    harmonics: np.ndarray | None = field(default=None, repr=False)
    noise: np.ndarray | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """The sound as manifest JSON (no embedding)."""
        d: dict[str, Any] = {"name": self.name, "file": self.file, "id": self.sound_id, "regions": self.regions}
        if self.harmonics is not None:  # absent otherwise: older renders' manifests and hashes stand
            d["measured_harmonics"] = True
        if self.noise is not None:
            d["measured_noise"] = True
        if self.grid:
            d["grid"] = {"i": self.grid[0], "j": self.grid[1], "x": self.grid[2], "y": self.grid[3]}
        return d


def preset_sounds(bank: Bank, names: Sequence[str] | None = None) -> list[Sound]:
    """Sounds for presets of ``bank`` (all, in bank order, when ``names`` is None).

    Args:
        names: preset names, or 0-based indices as digit strings.

    Raises:
        UserError: an unknown or repeated preset, or two presets whose names give one file name.
    """
    keys: Sequence[str | int] = bank.names() if names is None else [int(n) if n.isdigit() else n for n in names]
    index = {p.name: i for i, p in enumerate(bank.presets)}
    sounds, files = [], {}
    for key in keys:
        p = bank.get(key)  # UserError naming the bank and the preset
        if p.name in {s.name for s in sounds}:
            raise BadValue("presets", ",".join(map(str, keys)), f"preset {p.name!r} is named twice")
        stem = slug(p.name)
        if stem in files:
            raise UserError(f"bank {bank.path}: presets {files[stem]!r} and {p.name!r} would share the file "
                            f"name {stem!r}; rename one")
        files[stem] = p.name
        sounds.append(Sound(p.name, stem, index[p.name], p.embedding, dict(p.regions), harmonics=p.harmonics,
                            noise=p.noise))
    return sounds


def grid_sounds(bank: Bank, n: int, hop: int) -> list[Sound]:
    """The N x N grid between the bank's corner presets, i (x) outer, j (y) inner.

    A point on a corner is that corner's preset: its trajectory, regions and id, so its notes
    are the preset's notes. Other points blend the corners bilinearly and take their sustain and
    release regions from the blend, as the host's XY pad does.

    Raises:
        UserError: the bank has no corners, or N is not 2..MAX_GRID.
    """
    if not 2 <= n <= MAX_GRID:
        raise BadValue("grid", n, f"must be 2..{MAX_GRID} points per side (2: just the corners)")
    if not bank.corners:
        raise BadValue("grid", n, f"bank {bank.path} has no corner presets (set them with `presets corners`)")
    corners = [bank.get(c) for c in bank.corners]  # (0,0), (1,0), (0,1), (1,1)
    index = {p.name: i for i, p in enumerate(bank.presets)}
    sounds = []
    for i in range(n):
        for j in range(n):
            x, y = i / (n - 1), j / (n - 1)
            grid = (i, j, x, y)
            corner = {(0, 0): 0, (n - 1, 0): 1, (0, n - 1): 2, (n - 1, n - 1): 3}.get((i, j))
            if corner is not None:
                p = corners[corner]
                sounds.append(Sound(f"grid {i},{j}", f"grid-{i}-{j}", index[p.name], p.embedding,
                                    dict(p.regions), grid, p.harmonics, p.noise))
            else:
                traj, harmonics, noise = bilinear_presets(corners, x, y)
                sounds.append(Sound(f"grid {i},{j}", f"grid-{i}-{j}", GRID_ID_BASE + i * n + j, traj,
                                    default_regions(traj, hop), grid, harmonics, noise))
    return sounds


def select_sounds(bank: Bank, hop: int, presets: str | None = None,
                  grid: int | None = None) -> tuple[list[Sound], dict[str, Any]]:
    """The sounds of ``--presets A,B`` or ``--grid N`` (neither: every preset of the bank).

    Returns:
        (sounds, the selection as manifest JSON: {"presets": [names]} or {"grid": N, "corners": [names]}).
    """
    if presets is not None and grid is not None:
        raise BadValue("presets", presets, "presets and grid exclude each other")
    if grid is not None:
        return grid_sounds(bank, grid, hop), {"grid": grid, "corners": list(bank.corners or [])}
    names = None
    if presets is not None:
        names = [n.strip() for n in presets.split(",") if n.strip()]
        if not names:
            raise BadValue("presets", presets, "names no preset")
    sounds = preset_sounds(bank, names)
    return sounds, {"presets": [s.name for s in sounds]}


@dataclass(frozen=True)
class Item:
    """One (sound, pitch): rendered once, written at every velocity."""

    sound: Sound
    pitch: int

    @property
    def note_id(self) -> int:
        """The noise stream's id: a function of the sound and pitch only."""
        return self.sound.sound_id * 128 + self.pitch


def items_of(sounds: Sequence[Sound], pitches: Sequence[int], shard: tuple[int, int] | None = None) -> list[Item]:
    """Every (sound, pitch), sound-major; with shard (i, N) only items k with k % N == i."""
    items = [Item(s, p) for s in sounds for p in pitches]
    return items if shard is None else items[shard[0] :: shard[1]]


# ----------------------------------------------------------------------------- rendering


def note_frames(regions: dict[str, int], frames: int, hop: int, n_samples: int, hold: int) -> tuple[np.ndarray, int]:
    """The trajectory frame played in each hop of a note, and where the note ends.

    The live host's voice rule: frame f starts at sample f * hop and is chosen by the cursor
    then; the key goes up at sample ``hold`` and takes effect at the next frame that starts
    after it; when the release frames are over the voice fades out over ``FADE_SAMPLES``.

    Args:
        regions: sustain / release frames; frames: trajectory length; hop: samples per frame.
        n_samples: note length; hold: samples the key is down.

    Returns:
        (int64 [ceil(n_samples / hop)] trajectory frames, sample where the fade-out starts or
        ``n_samples`` when the note lasts to its end).
    """
    cursor = Cursor(regions, frames)
    out = np.empty(-(-n_samples // hop), np.int64)
    end = n_samples
    for f in range(len(out)):
        if cursor.held and f * hop > hold:
            cursor.release()
        out[f] = cursor.next_frame()
        if cursor.finished and end == n_samples:
            end = min(n_samples, f * hop)
    return out, end


def note_amplitudes(engine: Engine, embedding: np.ndarray, pitch: np.ndarray, n_samples: int,
                    harmonics: np.ndarray | None = None) -> np.ndarray | None:
    """A learned source's amplitudes over whole notes, [V, frames, K] (small: computed at once), or
    None for a model without one.

    Args:
        engine: the engine; embedding: float32 [V, bottleneck, frames']; pitch: int64 [V];
        n_samples: the notes' length (frames = its hops, rounded up).
        harmonics: float32 [V, frames', K'] the notes' measured harmonics on the same frames, played
            in the source network's place (:func:`nsynth_live.harmonics.at_pitch`); None: the network's.
    """
    if not engine.cfg.source_harmonics:
        return None
    frames = -(-n_samples // engine.cfg.hop)
    if harmonics is not None:
        return at_pitch(harmonics[:, :frames], pitch, engine.cfg.source_harmonics)
    return engine.source_amplitudes(np.ascontiguousarray(embedding[:, :, :frames]), pitch)


def stream_classes(engine: Engine, slots: Sequence[int], embedding: np.ndarray, pitch: np.ndarray, n_samples: int,
                   noise: NoiseStream, temperature: float, excitation_gain: float = 1.0,
                   amplitudes: np.ndarray | None = None) -> np.ndarray:
    """Generate ``n_samples`` per voice from per-frame embeddings, conditioning a window at a time.

    The same calls as :func:`nsynth_live.host.engines.render_frames` (blocks of one hop, aligned to frames),
    but the conditioning [V, frames, C] is computed :data:`COND_WINDOW` frames at a time rather
    than for the whole note at once.

    Args:
        engine: the engine; ``slots`` [V] active voices at position 0.
        embedding: float32 [V, bottleneck, frames], frames * hop >= n_samples.
        pitch: int64 [V] MIDI notes.
        noise: the voices' noise streams.
        temperature: > 0.
        excitation_gain: factor on the excitation (models with one).
        amplitudes: a learned source's [V, frames, K] (:func:`note_amplitudes`) when the caller has
            them already; None: computed here.

    Returns:
        int64 [V, n_samples] mu-law classes.
    """
    cfg = engine.cfg
    hop, nv = cfg.hop, len(slots)
    frames = -(-n_samples // hop)
    out = np.empty((nv, n_samples), np.int64)
    switch = np.full(nv, hop, np.int64)  # blocks are whole frames: never switch mid-block
    cond_pitch = pitch if cfg.pitch_conditioning else None
    amps = note_amplitudes(engine, embedding, pitch, n_samples) if amplitudes is None else amplitudes
    for w0 in range(0, frames, COND_WINDOW):
        cond = engine.condition(embedding[:, :, w0 : min(w0 + COND_WINDOW, frames)], cond_pitch)  # [V, w, C]
        for f in range(w0, min(w0 + COND_WINDOW, frames)):
            t0 = f * hop
            m = min(hop, n_samples - t0)
            rows = np.repeat(cond[:, f - w0, None], 2, axis=1)  # [V, 2, C]; row 1 is never used
            exc = voice_excitation(cfg, pitch, t0, m, excitation_gain, amps) if cfg.excitation_channels else None
            out[:, t0 : t0 + m] = engine.render(slots, rows, switch, noise.draw(m), temperature, exc=exc)
    return out


def render_notes(engine: Engine, items: Sequence[Item], n_samples: int, hold: int, seed: int,
                 temperature: float, excitation_gain: float = 1.0) -> np.ndarray:
    """Render items together in one batch of engine calls.

    Args:
        engine: with at least ``len(items)`` free voice slots.
        items: (sound, pitch) pairs.
        n_samples: note length; hold: samples the key is down.
        seed: the render's seed (noise per item from its note id).
        temperature: sampling temperature; excitation_gain: factor on the excitation.

    Returns:
        float32 [len(items), n_samples] at full level (velocity 127), in [-1, 1].
    """
    hop = engine.cfg.hop
    plans = [note_frames(it.sound.regions, it.sound.embedding.shape[0], hop, n_samples, hold) for it in items]
    length = min(n_samples, max(end + FADE_SAMPLES for _, end in plans))  # silence after every note's end
    emb = np.stack([it.sound.embedding[frames] for it, (frames, _) in zip(items, plans)]).transpose(0, 2, 1)
    emb = np.ascontiguousarray(emb, np.float32)
    pitch = np.array([it.pitch for it in items], np.int64)
    # The decoder hears it; a residual-form note adds it. Item by item: a bank may mix presets
    # with and without measured harmonics, and a note must not depend on its batch.
    amps = note_amplitudes(engine, emb, pitch, length)
    if amps is not None:
        for i, (it, (frames, _)) in enumerate(zip(items, plans)):
            if it.sound.harmonics is not None:
                amps[i] = note_amplitudes(engine, emb[i : i + 1], pitch[i : i + 1], length,
                                          it.sound.harmonics[frames][None])[0]
    slots = [engine.add_voice() for _ in items]
    try:
        classes = stream_classes(engine, slots, emb, pitch, length, NoiseStream(seed, [it.note_id for it in items]),
                                 temperature, excitation_gain, amps)
    finally:
        for s in slots:
            engine.remove_voice(s)
    noise = None
    if engine.cfg.source_residual and any(it.sound.noise is not None for it in items):
        noise = np.stack([np.zeros(length, np.float32) if it.sound.noise is None else
                          note_noise(it.sound.noise[frames], length, hop, note_rng(seed, it.note_id))
                          for it, (frames, _) in zip(items, plans)])
    audio = np.zeros((len(items), n_samples), np.float32)
    audio[:, :length] = note_audio(engine.cfg, classes, amps, pitch, noise)
    for row, (_, end) in zip(audio, plans):
        if end < n_samples:  # the release frames are over: the host's fade-out, then silence
            k = min(FADE_SAMPLES, n_samples - end)
            row[end : end + k] *= np.linspace(1.0, (FADE_SAMPLES - k) / FADE_SAMPLES, k, dtype=np.float32)
            row[end + k :] = 0.0
    return audio


# ----------------------------------------------------------------------------- the job


@dataclass
class Job:
    """Everything a render needs besides the engine.

    Attributes:
        out: output folder.
        sounds: what to render; pitches, velocities: ascending.
        seconds: note length; seed, temperature, excitation_gain: sampling.
        shard: (i, N) or None; batch: items per engine batch.
        selection: how the sounds were chosen ({"presets": [...]} or {"grid": N, "corners": [...]}).
        bank_name, bank_path: for the manifest.
        level: the one output gain of every note (:mod:`nsynth_live.level`), known before the
            first note so that shards and resumed runs share it (it is part of the settings).
    """

    out: Path
    sounds: list[Sound]
    pitches: list[int]
    velocities: list[int]
    seconds: float = 4.0
    seed: int = 0
    temperature: float = 1.0
    excitation_gain: float = 1.0
    shard: tuple[int, int] | None = None
    batch: int = 64
    selection: dict[str, Any] = field(default_factory=dict)
    bank_name: str = ""
    bank_path: str = ""
    level: OutputGain = field(default_factory=lambda: OutputGain(1.0, None, None, "off"))

    def __post_init__(self) -> None:
        note_lengths(self.seconds)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise BadValue("seed", self.seed, "must be a non-negative integer")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise BadValue("temperature", self.temperature, "must be a positive number")
        try:
            check_excitation_gain(self.excitation_gain)
        except ValueError as err:
            raise BadValue("excitation_gain", self.excitation_gain, str(err)) from None
        if self.batch < 1:
            raise BadValue("batch", self.batch, "must be at least 1")
        if not (math.isfinite(self.level.gain) and self.level.gain > 0):
            raise UserError(f"output gain {self.level.gain}: must be a positive number")
        if not self.sounds:
            raise UserError("nothing to render: no sounds selected")

    @property
    def samples(self) -> Path:
        return self.out / SAMPLES

    def files(self, item: Item) -> list[Path]:
        """The item's WAV files, one per velocity."""
        return [self.samples / note_file(item.sound.file, item.pitch, v) for v in self.velocities]

    def bank_sha256(self) -> str:
        """Hash of what the sounds are: names, ids, regions and trajectories."""
        h = hashlib.sha256()
        for s in self.sounds:
            h.update(json.dumps(s.describe(), sort_keys=True).encode())
            h.update(np.ascontiguousarray(s.embedding, np.float32).tobytes())
            for extra in (s.harmonics, s.noise):
                if extra is not None:
                    h.update(np.ascontiguousarray(extra, np.float32).tobytes())
        return h.hexdigest()

    def manifest(self, info: ExportInfo, engine: Engine) -> dict[str, Any]:
        """The manifest header (no file list yet)."""
        n, hold = note_lengths(self.seconds)
        return {
            "format": rm.FORMAT,
            "version": rm.VERSION,
            "model": {"path": str(Path(info.root).resolve()), "config": info.config.name,
                      "weights_sha256": info.weights_sha256},
            "bank": {"name": self.bank_name, "path": self.bank_path, "sha256": self.bank_sha256()},
            "settings": {
                "selection": self.selection,
                "sounds": [s.describe() for s in self.sounds],
                "pitches": self.pitches,
                "velocities": self.velocities,
                "seconds": self.seconds,
                "samples": n,
                "hold_samples": hold,
                "seed": self.seed,
                "temperature": self.temperature,
                "excitation_gain": self.excitation_gain,
                "output_gain": self.level.gain,
                "engine": engine.name,
                "sample_rate": SAMPLE_RATE,
                "velocity_layers": "copies of one render scaled by velocity / 127",
            },
            "level": self.level.to_dict(),
            "run": {"shard": list(self.shard) if self.shard else None, "batch": self.batch,
                    "execution_provider": getattr(engine, "execution_provider", None),
                    "nsynth_live": __version__},
            "complete": False,
        }


@dataclass
class RenderReport:
    """What :func:`render_bank` did."""

    items: int = 0  # items of this run (this shard)
    skipped: int = 0  # already complete on disk
    rendered: int = 0
    files_written: int = 0
    seconds: float = 0.0  # wall time of the render loop
    write_seconds: float = 0.0  # of which encoding and writing files
    peak: float = 0.0  # loudest sample written by this run (after the output gain)
    instruments: list[Path] = field(default_factory=list)
    manifest: Path | None = None


def _clean_temp(folder: Path, names: set[str]) -> int:
    """Remove temp files a killed run left for ``names`` (``atomic_write_many``'s ``.{name}.*.tmp``).

    Only this run's targets: a shard running beside us in the same folder keeps its temp files.
    """
    removed = 0
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            if p.name[1:-4].rpartition(".")[0] in names:
                p.unlink(missing_ok=True)
                removed += 1
    return removed


def file_entries(job_files: Callable[[Item], list[Path]], items: Sequence[Item], velocities: Sequence[int],
                 out: Path) -> tuple[list[dict[str, Any]], list[Item]]:
    """(manifest file entries of complete items, incomplete items)."""
    entries, missing = [], []
    for it in items:
        paths = job_files(it)
        if all(p.is_file() for p in paths):
            entries += [{"file": p.relative_to(out).as_posix(), "sound": it.sound.name, "pitch": it.pitch,
                         "velocity": v} for p, v in zip(paths, velocities)]
        else:
            missing.append(it)
    return entries, missing


def render_bank(job: Job, engine: Engine, info: ExportInfo, progress: bool = False,
                after_chunk: Callable[[int], None] | None = None) -> RenderReport:
    """Render the job's missing items into ``job.out``; write its manifest (and SFZs unsharded).

    Args:
        job: what to render.
        engine: an open engine of ``info``'s model with at least ``min(job.batch, items)`` slots.
        info: the export (its weights hash goes into the manifest).
        progress: a tqdm bar with ETA on stderr.
        after_chunk: called with the number of chunks done after each chunk's files are written.

    Raises:
        UserError: the folder holds a render with another model, bank or settings, or cannot be
            written (one line naming the path).
    """
    manifest = job.manifest(info, engine)
    rm.check_folder(job.out, rm.identity(manifest))
    try:
        return _render(job, engine, manifest, progress, after_chunk)
    except OSError as err:  # disk full, permissions, --out naming a file
        raise UserError(f"{err.filename or job.out}: cannot write ({err.strerror or err})") from None


def _render(job: Job, engine: Engine, manifest: dict[str, Any], progress: bool,
            after_chunk: Callable[[int], None] | None) -> RenderReport:
    """:func:`render_bank` once the folder is known to hold this render or nothing."""
    from tqdm import tqdm

    n_samples, hold = note_lengths(job.seconds)
    items = items_of(job.sounds, job.pitches, job.shard)
    job.samples.mkdir(parents=True, exist_ok=True)
    path = job.out / rm.manifest_name(job.shard)
    rm.write_manifest(path, {**manifest, "files": []})
    _clean_temp(job.samples, {p.name for it in items for p in job.files(it)})

    report = RenderReport(items=len(items), manifest=path)
    _, todo = file_entries(job.files, items, job.velocities, job.out)
    report.skipped = len(items) - len(todo)
    gains = [np.float32(velocity_gain(v) * job.level.gain) for v in job.velocities]
    start = time.perf_counter()
    bar = tqdm(total=len(items), initial=report.skipped, unit="note", desc="render-bank", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        for k, c0 in enumerate(range(0, len(todo), job.batch)):
            chunk = todo[c0 : c0 + job.batch]
            audio = render_notes(engine, chunk, n_samples, hold, job.seed, job.temperature, job.excitation_gain)
            t_write = time.perf_counter()
            report.peak = max(report.peak, float(np.abs(audio).max()) * float(max(gains)))
            writes = [(p, wav_bytes(row * g)) for it, row in zip(chunk, audio)
                      for p, g in zip(job.files(it), gains) if not p.exists()]  # never rewrite a finished file
            atomic_write_many(writes)
            report.write_seconds += time.perf_counter() - t_write
            report.rendered += len(chunk)
            report.files_written += len(writes)
            bar.update(len(chunk))
            if after_chunk:
                after_chunk(k + 1)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start

    entries, missing = file_entries(job.files, items, job.velocities, job.out)
    manifest["run"]["render_seconds"] = round(report.seconds, 3)
    manifest.update(complete=not missing, files=entries)
    rm.write_manifest(path, manifest)
    if job.shard is None:
        report.instruments = write_instruments(job.out, manifest["settings"]["sounds"], job.pitches,
                                               job.velocities, manifest)
    return report


