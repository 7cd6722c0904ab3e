"""Shared fixtures: a small real dataset rendered from the installed GM soundfont."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


@pytest.fixture(scope="session")
def soundfont() -> Path:
    if not SOUNDFONT.is_file():
        pytest.fail(f"{SOUNDFONT} is missing: install the timgm6mb-soundfont package (scripts/setup.sh does)")
    return SOUNDFONT


@pytest.fixture(scope="session")
def nsynth_tiny(tmp_path_factory, soundfont) -> Path:
    """Four GM programs x pitches 56..64 at velocity 100, split 2/1/1 instruments."""
    from nsynth_live.soundfont import build_dataset

    root = tmp_path_factory.mktemp("nsynth_tiny")
    build_dataset(soundfont, root, programs=[0, 24, 40, 73], pitches=range(56, 65), velocities=[100],
                  seed=0, splits=(0.5, 0.25, 0.25), workers=1, progress=False)
    return root


def jack_running() -> bool:
    import subprocess

    try:
        out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.strip() == "running"


@pytest.fixture(scope="session")
def jack_server() -> None:
    """A running JACK server (scripts/test.sh starts one on the dummy driver)."""
    if not jack_running():
        if os.environ.get("NSYNTH_REQUIRE_JACK") == "1":
            pytest.fail("NSYNTH_REQUIRE_JACK=1 but no JACK server is running")
        pytest.skip("no JACK server (run scripts/jack.sh start)")
