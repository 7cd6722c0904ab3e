"""The wheel as a user installs it: a fresh venv without torch plays and renders the shipped default.

Builds the distribution from a copy of the sources the wheel is made of (so a stale ``build/``
folder in the checkout cannot leak in), installs it into a new venv (pip's cache supplies the
dependencies' wheels) and runs the main commands from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "nsynth_live", "host", "exporters", "presets"]
SHIPPED = ["presets/default/model/model.json", "presets/default/model/encoder.onnx",
           "presets/default/model/conditioner.onnx", "presets/default/model/decoder_step.onnx",
           "presets/default/bank/bank.json", "presets/default/bank/flute.npy", "presets/phrase.mid",
           "presets/patches/nsynth-live.pd", "presets/patches/nsynth-live.maxpat"]


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 600,
        cache: Path | None = None) -> subprocess.CompletedProcess:
    """``cmd`` as a user of the wheel runs it; ``cache``: the compiled kernels' cache folder
    (a new user's is empty)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if cache is not None:
        env["NSYNTH_LIVE_CACHE"] = str(cache)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the venv it is installed into)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, src / name,
                                                                      **({"ignore": ignore} if (ROOT / name).is_dir() else {}))
    res = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)])
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("nsynth_live-*.whl")
    venv = tmp / "venv"
    res = run([sys.executable, "-m", "venv", str(venv)])
    assert res.returncode == 0, res.stderr
    res = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    assert res.returncode == 0, res.stderr[-2000:]
    return wheel, venv


@pytest.mark.slow
def test_the_wheel_carries_the_shipped_default_and_no_generic_names(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for f in SHIPPED:
        assert f"nsynth_live/{f}" in names, f
    assert {n.split("/")[0] for n in names} == {"nsynth_live", wheel.name.split("-py3")[0] + ".dist-info"}
    meta = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/METADATA").decode()
    base = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert base and not any(d in ln for ln in base for d in ("torch", "matplotlib", "pyfluidsynth"))
    assert any("torch" in ln and 'extra == "train"' in ln for ln in meta.splitlines())


@pytest.mark.slow
def test_a_base_install_renders_the_shipped_default_without_torch(installed, tmp_path):
    _, venv = installed
    py, nl = str(venv / "bin" / "python"), str(venv / "bin" / "nsynth-live")
    for name in ("torch", "host", "exporters"):
        res = run([py, "-c", f"import {name}"], cwd=tmp_path)
        assert res.returncode == 1 and f"No module named '{name}'" in res.stderr, (name, res.stderr)

    cache = tmp_path / "kernel-cache"
    res = run([nl, "render-midi", str(ROOT / "presets" / "phrase.mid"), "--out", "x.wav"], cwd=tmp_path, cache=cache)
    assert res.returncode == 0, res.stderr
    # A fresh install's kernel caches are cold: the first start says why it stalls (the C kernel's
    # compile, or numba's where no compiler is found), the next does not.
    assert "fused engine: compiling its native kernel" in res.stderr or "compiling the fused engine" in res.stderr
    audio, rate = sf.read(tmp_path / "x.wav")
    assert rate == 16000 and len(audio) > 2 * rate and 0.05 < np.abs(audio).max() <= 1.0

    res = run([nl, "render-bank", "--presets", "flute", "--pitches", "60", "--out", "b", "--no-progress"],
              cwd=tmp_path, cache=cache)
    assert res.returncode == 0, res.stderr
    assert "compiling" not in res.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["files"]) == 5
    assert (tmp_path / "b" / "flute.sfz").is_file()
    note, _ = sf.read(tmp_path / "b" / "samples" / "flute-060-127.wav")
    assert np.abs(note).max() > 0.05

    # What needs the train extra says so, in one line.
    for cmd in (["train", "--config", "tiny", "--data", "d", "--out", "r"],
                ["export", "--checkpoint", "r", "--out", "e"]):
        res = run([nl, *cmd], cwd=tmp_path)
        assert res.returncode == 2, (cmd, res.stderr)
        assert res.stderr.strip().splitlines() == [
            f"nsynth-live {cmd[0]}: error: this command needs torch, which the base install leaves out; "
            "install the training stack with: pip install 'nsynth-live[train]'"]
    assert run([py, "-c", "import torch"]).returncode == 1  # nothing above installed it


@pytest.mark.slow
def test_the_train_extra_trains_and_exports(installed, tmp_path, nsynth_tiny):
    """Last in this file: it adds torch to the venv the tests above need without it."""
    wheel, venv = installed
    py, nl = str(venv / "bin" / "python"), str(venv / "bin" / "nsynth-live")
    # torch pinned first, as scripts/setup.sh does (the CPU wheel on this machine, never a CUDA build).
    for spec in ("torch==2.13.0", f"{wheel}[train]"):
        res = run([py, "-m", "pip", "install", "-q", spec], timeout=900)
        assert res.returncode == 0, (spec, res.stderr[-2000:])
    res = run([nl, "train", "--config", "tiny", "--data", str(nsynth_tiny), "--out", "run", "--steps", "2",
               "--batch-size", "2", "--crop", "1024", "--valid-every", "2", "--valid-notes", "2", "--no-progress",
               "--threads", "1"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    res = run([nl, "export", "--checkpoint", "run", "--out", "exp"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    meta = json.loads((tmp_path / "exp" / "model.json").read_text())
    assert meta["config"]["name"] == "tiny" and (tmp_path / "exp" / "decoder_step.onnx").is_file()
