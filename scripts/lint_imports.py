"""Check the import contracts of pyproject.toml ([tool.importlinter]) with import-linter.

The repository keeps ``host/``, ``exporters/`` and ``presets/`` beside ``nsynth_live/``; installed,
they are ``nsynth_live.host`` etc. (pyproject's package-dir mapping). import-linter reads the
package from disk, so this stages the installed layout as a tree of symlinks in a temporary folder,
per ``[tool.setuptools.package-dir]``, and runs ``lint-imports`` on it. Exit status: lint-imports'.

Usage: python scripts/lint_imports.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(root: Path, into: Path) -> None:
    """Symlink the packages into ``into`` as they install (``nsynth_live.host`` -> ``host/``, ...)."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        target = into.joinpath(*package.split("."))
        if package.count(".") == 0:  # the root package: its own entries, so subpackages can join it
            target.mkdir(parents=True)
            for entry in (root / folder).iterdir():
                if entry.name != "__pycache__":
                    os.symlink(entry, target / entry.name)
        else:
            os.symlink(root / folder, target)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nsynth-lint-imports-") as tmp:
        stage(ROOT, Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        # lint-imports' own entry point, through this interpreter (a venv may lack the script),
        # run from the staged folder: the checkout on sys.path would shadow the staged package.
        command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
        return subprocess.run([sys.executable, "-c", command, str(ROOT / "pyproject.toml"), "--no-cache"],
                              cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
