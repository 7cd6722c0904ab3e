"""The manifests of ``render-bank``: what was rendered, with which model, bank and settings.

An output folder holds ``manifest.json`` (an unsharded render, or the merge of shards) and/or
``manifest-shard-{i}-of-{N}.json`` (one per shard). Every manifest carries an *identity*: the
model's weights hash, the hash of the rendered sounds' trajectories and every setting that
changes the audio. Renders into one folder must share it, so a resumed or sharded render never
mixes notes of two models, banks or seeds; speed settings (batch, threads) are not part of it.
All writes are atomic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nsynth_live.host.model_files import first_difference, read_json, short_json
from nsynth_live.errors import UserError
from nsynth_live.atomic import atomic_write_bytes

FORMAT = "nsynth-live-render-bank"
VERSION = 1
MANIFEST = "manifest.json"
_SHARD = re.compile(r"^manifest-shard-(\d+)-of-(\d+)\.json$")


def manifest_name(shard: tuple[int, int] | None) -> str:
    """``manifest.json``, or ``manifest-shard-{i}-of-{N}.json`` for shard (i, N)."""
    return MANIFEST if shard is None else f"manifest-shard-{shard[0]}-of-{shard[1]}.json"


def shard_of(path: Path) -> tuple[int, int] | None:
    """(i, N) of a shard manifest's file name, or None."""
    m = _SHARD.match(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def manifests(out: Path) -> list[Path]:
    """Every manifest in ``out``: manifest.json first, then shards by (N, i)."""
    found = [p for p in out.glob("manifest*.json") if p.name == MANIFEST or shard_of(p)]
    return sorted(found, key=lambda p: (p.name != MANIFEST, shard_of(p)[::-1] if shard_of(p) else ()))


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that renders sharing a folder must agree on."""
    return {"model_sha256": manifest["model"]["weights_sha256"], "bank_sha256": manifest["bank"]["sha256"],
            "settings": manifest["settings"]}


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse and minimally validate a manifest (one-line UserError naming the file)."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a render-bank manifest")
    if data.get("version") != VERSION:
        raise UserError(f"{path}: manifest version {data.get('version')!r}, this nsynth-live reads {VERSION}")
    try:
        identity(data)
        data["settings"]["sounds"], data["settings"]["pitches"], data["settings"]["velocities"]
    except (KeyError, TypeError):
        raise UserError(f"{path}: manifest lacks model, bank or settings") from None
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write a manifest atomically (readers see the old one or the new one)."""
    atomic_write_bytes(path, (json.dumps(manifest, indent=1) + "\n").encode())


def check_same(path: Path, theirs: dict[str, Any], mine: dict[str, Any], me: str) -> None:
    """Refuse, in one line, two identities that differ.

    Args:
        path: the manifest ``theirs`` was read from (named in the message).
        theirs: its identity; mine: the identity to compare; me: what ``mine`` is, for the message.
    """
    diff = first_difference(theirs, mine)
    if diff:
        key, a, b = diff
        raise UserError(f"{path}: {key} is {short_json(a, 60)} there but {short_json(b, 60)} in {me}")


def check_folder(out: Path, mine: dict[str, Any]) -> None:
    """Refuse to render into a folder whose manifests describe another render.

    Raises:
        UserError: naming the manifest and the first setting that differs.
    """
    if not out.is_dir():
        return
    for path in manifests(out):
        check_same(path, identity(read_manifest(path)), mine,
                   "this run (render into another --out, or repeat that render's settings)")
