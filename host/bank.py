"""Preset banks: a folder of named embedding trajectories, read, validated and written safely.

Layout::

    BANK/bank.json      {"format": "nsynth-live-bank", "version": 1, "name", "hop", "sample_rate",
                         "bottleneck", "frames", "presets": [...], "corners": [4 names] | null}
    BANK/<file>.npy     one preset: float32 [frames, bottleneck], loaded with allow_pickle=False
    BANK/<harmonics_file>.npy   optional: float32 [frames, K], its source note's measured
                        harmonic amplitudes (:mod:`nsynth_live.harmonics`)
    BANK/<noise_file>.npy       optional: float32 [frames, 64], the noise between its harmonics
                        measured in bands (:mod:`nsynth_live.noise`)

A preset entry is ``{"name", "file", "source_pitch", "tags", "regions", "provenance"}`` and,
optionally, ``"harmonics_file"`` and ``"noise_file"``, where ``regions`` is ``{"sustain_start", "sustain_end",
"release_start"}`` in frames (see :mod:`host.trajectory`). Older readers ignore the harmonics;
every preset of a bank that has them has the same K. Every check that can fail is done before anything is written, files are
written to temporary names and renamed into place, and ``bank.json`` is replaced last: a command
that fails leaves the bank exactly as it was.

This module never imports torch: the realtime host reads banks.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live.errors import UserError
from nsynth_live.atomic import atomic_write_bytes
from nsynth_live.noise import BANDS as NOISE_BANDS

FORMAT = "nsynth-live-bank"
VERSION = 1
BANK_JSON = "bank.json"
REGION_KEYS = ("sustain_start", "sustain_end", "release_start")
FILE_KEYS = ("file", "harmonics_file", "noise_file")  # a preset entry's .npy files



@dataclass
class Preset:
    """One named embedding trajectory.

    Attributes:
        name: unique within its bank.
        embedding: float32 [frames, bottleneck].
        source_pitch: MIDI pitch of the note it was encoded from.
        tags: free-form labels (family, source, ...).
        regions: sustain and release boundaries in frames (:mod:`host.trajectory`); the attack is
            everything before the sustain.
        provenance: where it came from (source file, model hash, ...).
        harmonics: float32 [frames, K] or None: its source note's harmonic amplitudes, measured
            at ``source_pitch`` on the embedding's frames (:func:`nsynth_live.harmonics.measure`);
            a model with a learned source plays them in its source network's place.
        noise: float32 [frames, BANDS] or None: the noise between its source note's harmonics,
            per band (:func:`nsynth_live.noise.measure`); a residual-form model adds it to its notes.
    """

    name: str
    embedding: np.ndarray
    source_pitch: int
    tags: list[str] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    harmonics: np.ndarray | None = field(default=None, repr=False)
    noise: np.ndarray | None = field(default=None, repr=False)

    @property
    def frames(self) -> int:
        return int(self.embedding.shape[0])


@dataclass
class Bank:
    """A loaded, validated bank.

    Attributes:
        path: the bank folder.
        name: display name.
        hop: samples per embedding frame of the model the presets were encoded with.
        sample_rate: audio rate (16000).
        bottleneck: embedding channels.
        frames: frames per preset (all presets of a bank have the same length).
        presets: in bank order.
        corners: four preset names for the XY pad (bottom-left, bottom-right, top-left,
            top-right), or None.
    """

    path: Path
    name: str
    hop: int
    sample_rate: int
    bottleneck: int
    frames: int
    presets: list[Preset]
    corners: list[str] | None = None

    def names(self) -> list[str]:
        return [p.name for p in self.presets]

    def get(self, key: str | int) -> Preset:
        """A preset by name or by 0-based index (what OSC and MIDI program change send)."""
        if isinstance(key, (int, np.integer)):
            if not 0 <= key < len(self.presets):
                raise UserError(f"bank {self.path}: no preset at index {key} (it has {len(self.presets)})")
            return self.presets[int(key)]
        for p in self.presets:
            if p.name == key:
                return p
        raise UserError(f"bank {self.path}: no preset named {key!r}")

    def check_model(self, hop: int, bottleneck: int) -> None:
        """Refuse a bank encoded for another model geometry."""
        if hop != self.hop:
            raise UserError(f"bank {self.path}: encoded with hop {self.hop}, the model's hop is {hop}")
        if bottleneck != self.bottleneck:
            raise UserError(
                f"bank {self.path}: embeddings have {self.bottleneck} channels, the model's have {bottleneck}"
            )


def slug(name: str) -> str:
    """A file-name-safe form of a preset name."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return s or "preset"


def _fail(path: Path, msg: str) -> UserError:
    return UserError(f"bank {path}: {msg}")


def _load_npy(path: Path, file: str, bank: Path) -> np.ndarray:
    f = bank / file
    if Path(file).name != file or not file.endswith(".npy"):
        raise _fail(bank, f"preset file {file!r} must be a plain .npy file name inside the bank")
    if not f.is_file():
        raise _fail(bank, f"missing preset file {file}")
    try:
        arr = np.load(f, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle: refused
        raise _fail(bank, f"{file}: not a plain numeric array ({err})") from None
    except (OSError, EOFError) as err:
        raise _fail(bank, f"{file}: unreadable ({err})") from None
    return arr


def _check_regions(bank: Path, name: str, regions: Any, frames: int) -> dict[str, int]:
    if not isinstance(regions, dict) or set(regions) != set(REGION_KEYS):
        raise _fail(bank, f"preset {name!r}: regions must have exactly {', '.join(REGION_KEYS)}")
    r = {k: regions[k] for k in REGION_KEYS}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in r.values()):
        raise _fail(bank, f"preset {name!r}: regions must be integer frame indices")
    if not 0 <= r["sustain_start"] < r["sustain_end"] <= r["release_start"] <= frames:
        raise _fail(bank, f"preset {name!r}: regions {r} are not ordered within 0..{frames} frames")
    return r


def _load_levels(bank: Path, name: str, file: Any, frames: int, width: int | None = None) -> np.ndarray | None:
    """A preset's optional per-frame levels file (harmonics: any width K; noise: ``width``
    bands): None when the entry names none."""
    if file is None:
        return None
    arr = _load_npy(bank / str(file), str(file), bank)
    what = "harmonics" if width is None else "noise"
    want = f"({frames}, {'K' if width is None else width})"
    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[0] != frames or arr.shape[1] < 1 or \
            (width is not None and arr.shape[1] != width):
        raise _fail(bank, f"preset {name!r}: {what} {file} is {arr.dtype} {arr.shape}, expected float32 {want}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise _fail(bank, f"preset {name!r}: {what} {file} holds negative, NaN or infinite values")
    return arr


def load_bank(path: str | os.PathLike[str]) -> Bank:
    """Read and validate a bank folder.

    Raises:
        UserError: one line naming the bank and what is wrong: missing or invalid bank.json,
            wrong format or version, duplicate names, a missing/pickled/misshapen/non-finite
            .npy, bad regions or corners.
    """
    bank = Path(path)
    meta_path = bank / BANK_JSON
    if not meta_path.is_file():
        raise _fail(bank, f"no {BANK_JSON} (not a preset bank)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(bank, f"{BANK_JSON} is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(bank, f"{BANK_JSON} is not an nsynth-live bank (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise _fail(bank, f"bank version {meta.get('version')!r}, this nsynth-live reads version {VERSION}")
    try:
        hop, sr, width, frames = (int(meta[k]) for k in ("hop", "sample_rate", "bottleneck", "frames"))
        entries = list(meta["presets"])
    except (KeyError, TypeError, ValueError) as err:
        raise _fail(bank, f"{BANK_JSON} lacks or mistypes a field ({err})") from None
    if not entries:
        raise _fail(bank, "holds no presets")

    presets: list[Preset] = []
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e["name"]:
            raise _fail(bank, f"a preset entry has no name: {e!r}"[:200])
        name = e["name"]
        if name in seen:
            raise _fail(bank, f"duplicate preset name {name!r}")
        seen.add(name)
        arr = _load_npy(bank / str(e.get("file")), str(e.get("file")), bank)
        if arr.dtype != np.float32:
            raise _fail(bank, f"preset {name!r}: dtype {arr.dtype}, expected float32")
        if arr.shape != (frames, width):
            raise _fail(bank, f"preset {name!r}: shape {arr.shape}, expected ({frames}, {width}) frames x channels")
        if not np.isfinite(arr).all():
            raise _fail(bank, f"preset {name!r}: embedding has NaN or infinite values")
        pitch = e.get("source_pitch")
        if not isinstance(pitch, int) or isinstance(pitch, bool) or not 0 <= pitch <= 127:
            raise _fail(bank, f"preset {name!r}: source_pitch {pitch!r} is not a MIDI note 0..127")
        presets.append(Preset(
            name=name, embedding=arr, source_pitch=pitch, tags=[str(t) for t in e.get("tags", [])],
            regions=_check_regions(bank, name, e.get("regions"), frames),
            provenance=dict(e.get("provenance", {})),
            harmonics=_load_levels(bank, name, e.get("harmonics_file"), frames),
            noise=_load_levels(bank, name, e.get("noise_file"), frames, NOISE_BANDS),
        ))
    ks = {p.harmonics.shape[1] for p in presets if p.harmonics is not None}
    if len(ks) > 1:
        raise _fail(bank, f"presets' harmonics files have different harmonic counts {sorted(ks)}; re-encode them with one model")

    corners = meta.get("corners")
    if corners is not None:
        if not isinstance(corners, list) or len(corners) != 4 or any(c not in seen for c in corners):
            raise _fail(bank, f"corners must name 4 presets of the bank, got {corners!r}")
    return Bank(path=bank, name=str(meta.get("name", bank.name)), hop=hop, sample_rate=sr, bottleneck=width,
                frames=frames, presets=presets, corners=corners)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _put_npy(path: Path, arr: np.ndarray, file: str, stem: str, used: set[str]) -> str:
    """Write ``arr`` into the bank unless ``file`` already holds exactly it; returns its file name.

    A new or changed array gets a fresh name, so the current bank.json stays valid until it is
    replaced."""
    data = _npy_bytes(arr)
    if not (file and (path / file).is_file() and (path / file).read_bytes() == data):
        name, n = f"{stem}.npy", 1
        while name in used or (path / name).exists():
            name, n = f"{stem}.{n}.npy", n + 1
        atomic_write_bytes(path / name, data)
        file = name
    used.add(file)
    return file


def _checked_arrays(path: Path, bank: Bank, p: Preset) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A preset's embedding, harmonics and noise as float32, or one error naming what is wrong."""
    emb = np.asarray(p.embedding, dtype=np.float32)
    if emb.shape != (bank.frames, bank.bottleneck) or not np.isfinite(emb).all():
        raise _fail(path, f"preset {p.name!r}: embedding must be finite [{bank.frames}, {bank.bottleneck}]")
    _check_regions(path, p.name, p.regions, bank.frames)
    h = None if p.harmonics is None else np.asarray(p.harmonics, dtype=np.float32)
    if h is not None and (h.ndim != 2 or h.shape[0] != bank.frames or h.shape[1] < 1 or not np.isfinite(h).all()
                          or (h < 0).any()):
        raise _fail(path, f"preset {p.name!r}: harmonics must be finite, >= 0, [{bank.frames}, K >= 1]")
    z = None if p.noise is None else np.asarray(p.noise, dtype=np.float32)
    if z is not None and (z.shape != (bank.frames, NOISE_BANDS) or not np.isfinite(z).all() or (z < 0).any()):
        raise _fail(path, f"preset {p.name!r}: noise must be finite, >= 0, [{bank.frames}, {NOISE_BANDS}]")
    return emb, h, z


def save_bank(bank: Bank) -> Path:
    """Write a whole bank (new or updated) to ``bank.path``.

    New .npy files go in first under their final names (never overwriting a file the current
    bank.json uses), then bank.json is replaced atomically, then files no preset uses any more
    are removed. A crash at any point leaves a loadable bank: the old one or the new one.
    """
    path = bank.path
    path.mkdir(parents=True, exist_ok=True)
    old: dict[tuple[str, str], str] = {}  # (preset name, key) -> file, as the current bank.json has them
    if (path / BANK_JSON).is_file():
        try:
            old = {(e["name"], key): e[key] for e in json.loads((path / BANK_JSON).read_text())["presets"]
                   for key in FILE_KEYS if isinstance(e.get(key), str)}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            old = {}
    old_files = set(old.values())
    names = [p.name for p in bank.presets]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _fail(path, f"duplicate preset name {dup!r}")
    if bank.corners is not None and (len(bank.corners) != 4 or any(c not in names for c in bank.corners)):
        raise _fail(path, f"corners must name 4 presets of the bank, got {bank.corners!r}")

    ks = {np.shape(p.harmonics)[-1] for p in bank.presets if p.harmonics is not None}
    if len(ks) > 1:
        raise _fail(path, f"presets' harmonics have different harmonic counts {sorted(ks)}")
    # Every check before anything is written: a refused bank leaves no stray file behind.
    arrays = [_checked_arrays(path, bank, p) for p in bank.presets]
    entries, used = [], set(old_files)
    for p, (emb, h, z) in zip(bank.presets, arrays):
        entry: dict[str, Any] = {
            "name": p.name, "file": _put_npy(path, emb, old.get((p.name, "file"), ""), slug(p.name), used),
            "source_pitch": int(p.source_pitch), "tags": list(p.tags),
            "regions": {k: int(p.regions[k]) for k in REGION_KEYS}, "provenance": p.provenance,
        }
        if h is not None:
            entry["harmonics_file"] = _put_npy(path, h, old.get((p.name, "harmonics_file"), ""),
                                               slug(p.name) + ".harmonics", used)
        if z is not None:
            entry["noise_file"] = _put_npy(path, z, old.get((p.name, "noise_file"), ""), slug(p.name) + ".noise", used)
        entries.append(entry)
    meta = {
        "format": FORMAT, "version": VERSION, "name": bank.name, "hop": bank.hop,
        "sample_rate": bank.sample_rate, "bottleneck": bank.bottleneck, "frames": bank.frames,
        "presets": entries, "corners": bank.corners,
    }
    atomic_write_bytes(path / BANK_JSON, (json.dumps(meta, indent=2) + "\n").encode())
    for f in old_files - {e[key] for e in entries for key in FILE_KEYS if key in e}:
        (path / f).unlink(missing_ok=True)
    return path
