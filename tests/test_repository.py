"""The repository stands on its own: its import contracts hold and no file points outside it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tracked_text_files() -> list[Path]:
    """Every tracked file that reads as text (git ls-files; binary files are skipped)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in names.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            head = path.read_bytes()[:4096]
            if b"\0" not in head:
                files.append(path)
    return files


# Outside the repository: the workspace's shared folder, its measurement log, a design file that
# was never part of the project. The project's design is docs/design.md, its figures are
# bench/results/ and docs/benchmarks.md.
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/MEASUREMENTS|\bMEASUREMENTS(\.md)?\b|\bDESIGN\.md\b|\bDESIGN\b")


def test_no_tracked_file_refers_outside_the_repository():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    hits = []
    for path in tracked_text_files():
        if path.resolve() == Path(__file__).resolve():
            continue  # this file names the patterns it looks for
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts (the layering) on the installed package layout."""
    pytest.importorskip("importlinter")
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout
