"""The output folder of ``render-bank``: file names, WAV bytes, SFZ instruments and the merge.

Layout::

    OUT/samples/{sound}-{pitch:03d}-{velocity:03d}.wav   16-bit, 16 kHz, mono (NSynth-style names)
    OUT/{sound}.sfz                                     one instrument per complete sound
    OUT/manifest.json, OUT/manifest-shard-{i}-of-{N}.json   (:mod:`host.render_manifest`)

:func:`merge` joins shard manifests from the files on disk, so it needs neither the model nor
the bank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsynth_live.host import render_manifest as rm
from nsynth_live.host import sfz
from nsynth_live import __version__
from nsynth_live.errors import UserError

SAMPLES = "samples"
"""Subfolder of the output that holds the WAV files."""


def note_file(stem: str, pitch: int, velocity: int) -> str:
    """``{sound}-{pitch:03d}-{velocity:03d}.wav``, as NSynth names its notes."""
    return f"{stem}-{pitch:03d}-{velocity:03d}.wav"


def write_instruments(out: Path, sounds: Sequence[dict[str, Any]], pitches: Sequence[int],
                      velocities: Sequence[int], manifest: dict[str, Any]) -> list[Path]:
    """One ``.sfz`` per sound whose every file exists.

    Args:
        sounds: manifest sound entries ({"name", "file", ...}).

    Returns:
        the ``.sfz`` paths of the complete sounds.
    """
    comments = [f"rendered by nsynth-live render-bank {__version__}: model {manifest['model']['weights_sha256'][:16]}, "
                f"seed {manifest['settings']['seed']}, engine {manifest['settings']['engine']}",
                "velocity layers are one render per note scaled by velocity / 127"]
    written = []
    for s in sounds:
        names = {(p, v): f"{SAMPLES}/{note_file(s['file'], p, v)}" for p in pitches for v in velocities}
        if all((out / n).is_file() for n in names.values()):
            path = out / f"{s['file']}.sfz"
            sfz.write_instrument(path, sfz.instrument(s["name"], pitches, velocities, lambda p, v: names[p, v],
                                                      comments))
            written.append(path)
    return written


@dataclass
class MergeReport:
    """What :func:`merge` found and wrote."""

    shards: list[tuple[int, int]]
    files: int
    missing: list[str]  # "{sound} pitch {p}" of items with a missing file
    missing_shards: list[int]
    instruments: list[Path]
    manifest: Path


def merge(out: Path) -> MergeReport:
    """Join the shard manifests of ``out`` into ``manifest.json`` and write every complete SFZ.

    Files are checked on disk, not taken from the shard manifests.

    Raises:
        UserError: no shard manifests, shards of different splits, or shards rendered with
            another model, bank or settings (one line naming the file and the setting).
    """
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"{out}: no render-bank output folder there")
    shards = [p for p in rm.manifests(out) if rm.shard_of(p)]
    if not shards:
        raise UserError(f"{out}: no manifest-shard-*-of-*.json to merge (render with --shard i/N first)")
    first = rm.read_manifest(shards[0])
    ident = rm.identity(first)
    n = rm.shard_of(shards[0])[1]
    for p in shards[1:]:
        if rm.shard_of(p)[1] != n:
            raise UserError(f"{p}: splits the items into {rm.shard_of(p)[1]} shards, {shards[0].name} into {n}")
        rm.check_same(p, rm.identity(rm.read_manifest(p)), ident, shards[0].name)
    target = out / rm.MANIFEST
    if target.is_file():
        rm.check_same(target, rm.identity(rm.read_manifest(target)), ident, shards[0].name)

    settings = first["settings"]
    pitches, velocities = settings["pitches"], settings["velocities"]
    entries, missing = [], []
    for s in settings["sounds"]:
        for p in pitches:
            paths = [(v, out / SAMPLES / note_file(s["file"], p, v)) for v in velocities]
            if all(f.is_file() for _, f in paths):
                entries += [{"file": f.relative_to(out).as_posix(), "sound": s["name"], "pitch": p, "velocity": v}
                            for v, f in paths]
            else:
                missing.append(f"{s['name']} pitch {p}")
    have = sorted(rm.shard_of(p)[0] for p in shards)
    manifest = {k: v for k, v in first.items() if k not in ("files", "complete", "run")}
    manifest["run"] = {"merged_shards": [rm.shard_of(p) for p in shards], "nsynth_live": __version__}
    manifest.update(complete=not missing, missing=missing, files=entries)
    try:
        rm.write_manifest(target, manifest)
        instruments = write_instruments(out, settings["sounds"], pitches, velocities, manifest)
    except OSError as err:
        raise UserError(f"{err.filename or out}: cannot write ({err.strerror or err})") from None
    return MergeReport([rm.shard_of(p) for p in shards], len(entries), missing,
                       [i for i in range(n) if i not in have], instruments, target)
