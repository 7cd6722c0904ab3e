"""Files the commands write get the mode a plain ``open()`` gives (0644 under umask 022, 0640
under 027): readable by a sampler, a DAW or a web server running as another user.

One pipeline of real commands, each in its own process under the umask: train -> export ->
evaluate; encode -> render-bank and render-midi with the export and the encoded bank.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

NSYNTH_LIVE = str(Path(sys.executable).parent / "nsynth-live")
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, umask: int = 0o022) -> None:
    res = subprocess.run([NSYNTH_LIVE, *args], capture_output=True, text=True, timeout=600, umask=umask)
    assert res.returncode == 0, (args, res.stderr)


def modes(folder: Path) -> dict[str, int]:
    """Mode of every file under ``folder`` (relative name -> permission bits); no temp file left."""
    files = {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}
    assert files and not [f for f in files if f.endswith(".tmp")], files
    return files


def only(files: dict[str, int], mode: int) -> None:
    wrong = {f: oct(m) for f, m in files.items() if m != mode}
    assert not wrong, f"expected {oct(mode)}: {wrong}"


@pytest.fixture(scope="module")
def pipeline(nsynth_tiny, tmp_path_factory) -> Path:
    """train, export and encode under umask 022 (export and encode also under 027)."""
    root = tmp_path_factory.mktemp("modes")
    run("train", "--config", "tiny", "--data", str(nsynth_tiny), "--out", str(root / "run"), "--steps", "2",
        "--batch-size", "2", "--crop", "1024", "--checkpoint-every", "2", "--valid-every", "2", "--valid-notes", "2",
        "--log-every", "1", "--threads", "1", "--no-progress")
    run("export", "--checkpoint", str(root / "run"), "--out", str(root / "export"))
    run("export", "--checkpoint", str(root / "run"), "--out", str(root / "export027"), umask=0o027)
    note = sorted((nsynth_tiny / "nsynth-train" / "audio").glob("*-060-100.wav"))[0]
    run("encode", str(note), "--model", str(root / "export"), "--bank", str(root / "bank"), "--name", "n")
    run("encode", str(note), "--model", str(root / "export"), "--bank", str(root / "bank027"), "--name", "n",
        umask=0o027)
    return root


def test_train_writes_0644(pipeline):
    files = modes(pipeline / "run")
    assert {"checkpoint.pt", "settings.json", "config.json", "metrics.jsonl"} <= set(files), files
    only(files, 0o644)


def test_export_writes_0644_and_follows_the_umask(pipeline):
    only(modes(pipeline / "export"), 0o644)
    only(modes(pipeline / "export027"), 0o640)
    assert stat.S_IMODE((pipeline / "export").stat().st_mode) == 0o755


def test_encode_writes_0644_and_follows_the_umask(pipeline):
    files = modes(pipeline / "bank")
    assert "bank.json" in files and "n.npy" in files
    only(files, 0o644)
    only(modes(pipeline / "bank027"), 0o640)


def test_evaluate_writes_0644(pipeline, nsynth_tiny):
    out = pipeline / "eval"
    run("evaluate", "--model", str(pipeline / "export"), "--data", str(nsynth_tiny), "--out", str(out),
        "--limit", "1", "--seconds", "0.25", "--plots", "1", "--threads", "1", "--no-progress")
    files = modes(out)
    assert "results.json" in files and any(f.endswith(".png") for f in files) and any(f.endswith(".wav") for f in files)
    only(files, 0o644)


def test_render_bank_writes_0644_and_follows_the_umask(pipeline):
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = pipeline / f"rendered-{umask:o}"
        run("render-bank", "--model", str(pipeline / "export"), "--bank", str(pipeline / "bank"), "--pitches", "60",
            "--velocities", "64,127", "--seconds", "0.25", "--no-progress", "--out", str(out), umask=umask)
        files = modes(out)
        assert {"manifest.json", "n.sfz", "samples/n-060-127.wav"} <= set(files), files
        only(files, mode)


def test_render_midi_writes_0644(pipeline):
    out = pipeline / "midi" / "phrase.wav"
    run("render-midi", str(ROOT / "presets" / "phrase.mid"), "--model", str(pipeline / "export"),
        "--bank", str(pipeline / "bank"), "--out", str(out))
    only(modes(out.parent), 0o644)
