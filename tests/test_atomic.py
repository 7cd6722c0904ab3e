"""The one file writer (nsynth_live.atomic) and the one WAV writer (nsynth_live.wav)."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nsynth_live.atomic import atomic_open, atomic_write_bytes, atomic_write_many
from nsynth_live.wav import to_pcm16, wav_bytes, write_wav


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def in_child(code: str, umask: int = 0o022, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter under ``umask`` (the umask is per process)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, umask=umask, **kw)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_new_files_get_the_mode_a_plain_open_would(tmp_path, umask, expected):
    res = in_child(f"""
        from pathlib import Path
        from nsynth_live.atomic import atomic_open, atomic_write_bytes, atomic_write_many
        d = Path({str(tmp_path)!r})
        atomic_write_bytes(d / "one", b"1")
        atomic_write_many([(d / "two", b"2"), (d / "three", b"3")])
        with atomic_open(d / "four") as f:
            f.write(b"4")
        open(d / "plain", "wb").close()
    """, umask=umask)
    assert res.returncode == 0, res.stderr
    assert mode(tmp_path / "plain") == expected
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == dict.fromkeys(["one", "two", "three", "four", "plain"],
                                                                           expected)
    assert (tmp_path / "three").read_bytes() == b"3"


def test_a_failing_rename_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "bank.json"
    target.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new")
    with pytest.raises(OSError, match="No space"):
        with atomic_open(target) as f:
            f.write(b"new")
    with pytest.raises(OSError, match="No space"):
        atomic_write_many([(tmp_path / "a.wav", b"a"), (target, b"new")])
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.json"]


def test_an_exception_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write(b"half a checkp")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_process_killed_between_write_and_rename_leaves_the_old_file(tmp_path):
    """SIGKILL just before the rename (its data written and fsynced): the name still holds the old
    file, whole; the only trace is a temp file named ``.{name}.*.tmp`` (what reruns clean up)."""
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")
    res = in_child(f"""
        import os, signal
        from nsynth_live.atomic import atomic_write_bytes
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        atomic_write_bytes({str(target)!r}, b"new" * 1000)
    """)
    assert res.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    left = [p for p in tmp_path.iterdir() if p != target]
    assert len(left) == 1 and left[0].name.startswith(".manifest.json.") and left[0].name.endswith(".tmp")
    assert left[0].read_bytes() == b"new" * 1000  # written and fsynced before the rename


def test_one_wav_writer_for_float_and_int16_audio(tmp_path):
    rng = np.random.default_rng(0)
    audio = np.concatenate([rng.uniform(-1, 1, 999), [1.0, -1.0, 0.5, 1.5, -2.0]]).astype(np.float32)
    pcm, clipped = to_pcm16(audio)
    assert clipped and pcm[-2] == 32767 and pcm[-1] == -32768 and pcm[-3] == 16384
    # The float path is the dataset builder's int16 path (x * 32768, rounded, clipped) ...
    assert wav_bytes(audio) == wav_bytes(pcm)
    # ... and within one step of libsndfile's own float conversion.
    ref = io.BytesIO()
    sf.write(ref, np.clip(audio, -1, 1), 16000, format="WAV", subtype="PCM_16")
    assert np.abs(np.frombuffer(ref.getvalue()[44:], "<i2").astype(int) - pcm).max() <= 1
    data = wav_bytes(audio)
    assert len(data) == 44 + 2 * len(audio)  # canonical header
    path = write_wav(tmp_path / "sub" / "x.wav", audio, 22050)
    back, rate = sf.read(path, dtype="int16")
    assert rate == 22050 and np.array_equal(back, pcm)
    assert back[-2] == 32767 and back[-1] == -32768
