"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver (test helper).

Nothing is downloaded: the browser and driver paths are given explicitly, so Selenium Manager is
never asked to find (or fetch) either.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# As root in a container: no sandbox; and no traffic of Chromium's own (updates, sync, QUIC).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def missing() -> str | None:
    """What is not installed (None: both are), for a clear failure."""
    for p in (CHROMIUM, CHROMEDRIVER):
        if not p.is_file():
            return f"{p} is missing: install Debian's chromium and chromium-driver (scripts/setup.sh does)"
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1000, height: int = 820) -> Iterator:
    """A new headless Chromium (a Selenium WebDriver) with a fresh profile, removed afterwards.

    Args:
        width, height: the window in CSS pixels (device pixel ratio 1).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should anything call it, stays offline
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    opts.add_argument("--force-device-scale-factor=1")
    profile = tempfile.mkdtemp(prefix="nsynth-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
