"""Take docs/webpad.png: the browser pad of ``nsynth-live play --web`` in headless Chromium.

Runs the host with the shipped default model and bank on the system's audio device (the JACK
dummy server in CI's setup), opens the page in Debian's Chromium (tests/headless_chromium.py),
moves the pad, and writes a small palette PNG.

Usage: .venv/bin/python scripts/webpad_screenshot.py [OUT.png]
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from headless_chromium import headless_chromium, missing  # noqa: E402


def main(out: Path) -> int:
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if why := missing():
        print(why, file=sys.stderr)
        return 1
    exe = Path(sys.executable).parent / "nsynth-live"
    host = subprocess.Popen([str(exe), "play", "--web", "0", "--no-midi", "--osc-port", "0", "--quiet"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = host.stdout.readline()
        m = re.search(r"web: (\S+)", line)
        if not m:
            print(f"the host did not start: {line!r}", file=sys.stderr)
            return 1
        with headless_chromium(960, 820) as d:
            d.get(m.group(1))
            WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "conn").text == "connected")
            pad = d.find_element(By.ID, "pad")
            w, h = pad.rect["width"], pad.rect["height"]
            ActionChains(d).move_to_element_with_offset(pad, int(-0.12 * w), int(-0.18 * h)).click().perform()
            time.sleep(1.0)  # the host's state and a status come back
            png = d.get_screenshot_as_png()
        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        img.save(tmp, optimize=True)
        tmp.replace(out)
        print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {img.width}x{img.height})")
        return 0
    finally:
        host.terminate()
        host.wait(10)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "webpad.png"))
