"""Playing and rendering never import the training stack (torch, matplotlib, pyfluidsynth).

Each command runs in a fresh interpreter whose import system refuses those modules and says so
on stderr; a command that tried, even inside a ``try``, leaves that line behind.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nsynth_live.host.osc_server import build_message
from nsynth_live.wav import write_wav

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "matplotlib", "fluidsynth")
WRAPPER = textwrap.dedent(f"""
    import sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {BLOCKED!r}:
                sys.stderr.write(f"BLOCKED import {{name}}\\n")
                sys.stderr.flush()
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    from nsynth_live.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def nsynth_live(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_wrapper_does_refuse_torch(tmp_path):
    res = nsynth_live("train", "--config", "tiny", "--data", "d", "--out", "r", cwd=tmp_path)
    assert res.returncode == 2 and "BLOCKED import torch" in res.stderr and "nsynth-live[train]" in res.stderr


@pytest.mark.slow
def test_encode_presets_render_midi_and_render_bank_never_import_torch(tmp_path):
    t = np.arange(16000 * 2) / 16000
    write_wav(tmp_path / "a.wav", (0.4 * np.sin(2 * np.pi * 261.63 * t) * np.minimum(1, 20 * (2 - t))).astype(np.float32))
    runs = [
        ("encode", "a.wav", "--bank", "mine", "--name", "sine"),  # the shipped default model
        ("presets", "list", "mine"),
        ("render-midi", str(ROOT / "presets" / "phrase.mid"), "--out", "x.wav"),
        ("render-midi", str(ROOT / "presets" / "phrase.mid"), "--out", "y.wav", "--engine", "ort", "--bank", "mine"),
        ("render-bank", "--presets", "flute", "--pitches", "60", "--velocities", "127", "--seconds", "0.5",
         "--out", "b", "--no-progress"),
    ]
    for args in runs:
        res = nsynth_live(*args, cwd=tmp_path)
        assert res.returncode == 0, (args, res.stderr)
        assert "BLOCKED" not in res.stderr, (args, res.stderr)
    assert (tmp_path / "x.wav").is_file() and (tmp_path / "y.wav").is_file()
    assert (tmp_path / "b" / "samples" / "flute-060-127.wav").is_file()


@pytest.mark.jack
def test_play_never_imports_torch(jack_server, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, "play", "--no-midi", "--quiet", "--osc-port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "nsynth-live playing" in line, proc.stderr.read() if proc.poll() is not None else line
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(build_message("/nsynth/note", 60, 100), ("127.0.0.1", port))
            time.sleep(1.0)
            sock.sendto(build_message("/nsynth/note", 60, 0), ("127.0.0.1", port))
        time.sleep(0.3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "BLOCKED" not in err, err
