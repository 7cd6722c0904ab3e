"""The browser XY pad (``nsynth-live play --web``): a real headless Chromium on the real host.

`nsynth-live play --web` runs as its own process on the JACK dummy device with the hand-set sine
model (tests/sine_model.py), whose notes are clean sines at their pitch; a separate JACK client
records its output. Chromium (Debian's, through chromedriver) opens the page, presses keys and
drags the pad; a websocket client of aiohttp plays a second page, and floods the host with bad
messages.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nsynth_live.host.bank import Bank, Preset, save_bank
from nsynth_live.host.osc_server import BadMessage, parse_message
from nsynth_live.host.trajectory import default_regions
from nsynth_live.host.web import access
from nsynth_live.host.web.protocol import MAX_MESSAGE, parse_text
from nsynth_live.pitch import cents_off, note_f0

sys.path.insert(0, str(Path(__file__).parent))
from headless_chromium import headless_chromium, missing  # noqa: E402
from jack_capture import JackCapture  # noqa: E402
from sine_model import sine_model  # noqa: E402
from test_play_e2e import RELEASE_S, Host  # noqa: E402

WEB_DIR = Path(__file__).parents[1] / "host" / "web"
CORNERS = ["bowed", "reed", "brass", "mallet"]  # (0,0), (1,0), (0,1), (1,1)


@pytest.fixture(scope="module")
def pad_setup(tmp_path_factory):
    """The sine model and a bank of five presets, four of them the pad's corners."""
    from nsynth_live.exporters.export import export_model

    root = tmp_path_factory.mktemp("webpad")
    export = export_model(sine_model(), root / "model")
    rng = np.random.default_rng(0)
    presets = []
    for name in CORNERS + ["plucked"]:
        emb = rng.standard_normal((125, 16)).astype(np.float32)
        presets.append(Preset(name, emb, 60, regions=default_regions(emb, 512)))
    save_bank(Bank(root / "bank", "webpad", 512, 16000, 16, 125, presets, corners=CORNERS))
    return export, root / "bank"


def start_host(setup, *extra: str) -> tuple[Host, JackCapture]:
    """``nsynth-live play`` on the sine model, and a recorder of the output port it opened."""
    host = Host(*setup, extra=["--no-midi", *extra])
    return host, JackCapture(host.output)


def web_url(host: Host) -> str:
    m = re.search(r"web: (\S+)", host.banner)
    assert m, host.banner
    return m.group(1)


class WsPage:
    """Another page: an aiohttp websocket client in its own thread, keeping what the host pushes.

    Args:
        url: the page's URL as the host printed it (its token, if any, is used).
        **connect: extra arguments of ``ws_connect`` (headers, ...).
    """

    def __init__(self, url: str, **connect):
        import aiohttp

        self.messages: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        ws_url = url.replace("http://", "ws://").replace("/?", "/ws?") if "?" in url else url.replace("http://", "ws://") + "ws"

        async def open_():
            self.session = aiohttp.ClientSession()
            try:
                self.ws = await self.session.ws_connect(ws_url, max_msg_size=0, **connect)
            except BaseException:
                await self.session.close()
                raise
            self.reader = asyncio.ensure_future(self._read())

        self._run(open_())

    def _run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _read(self):
        async for msg in self.ws:
            self.messages.append(json.loads(msg.data))

    def send(self, *message) -> None:
        self._run(self.ws.send_str(json.dumps(list(message))))

    def send_raw(self, frames: list[str | bytes], pause_every: int = 0) -> None:
        """Send text (or binary) frames back to back."""

        async def go():
            for i, f in enumerate(frames):
                await (self.ws.send_bytes(f) if isinstance(f, bytes) else self.ws.send_str(f))
                if pause_every and i % pause_every == pause_every - 1:
                    await asyncio.sleep(0.002)

        self._run(go())

    def latest(self, kind: str) -> dict | None:
        for m in reversed(self.messages):
            if m["type"] == kind:
                return m
            if m["type"] == "hello":
                return m.get(kind)
        return None

    def status(self) -> dict:
        """Ask the host for its status now; its reply."""
        n = len(self.messages)
        self.send("/nsynth/status")
        deadline = time.time() + 10
        while time.time() < deadline:
            if any(m["type"] == "status" for m in self.messages[n:]):
                return self.latest("status")
            time.sleep(0.02)
        raise AssertionError("no status reply")

    def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in list(self.messages):
                if predicate(m):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no such message among {self.messages[-3:]}")

    def close(self) -> None:
        async def close_():
            await self.ws.close()
            await self.session.close()

        self._run(close_())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def held_pitch_ok(audio: np.ndarray, rate: int, midi: int) -> float:
    """The held tone's pitch (Hz), checked against ``midi`` within 50 cents."""
    assert np.abs(audio).max() > 0.05, "the note never sounded"
    f0 = note_f0(audio, rate, 0.0, len(audio) / rate)
    assert f0 is not None and abs(cents_off(f0, midi)) < 50, (f0, midi)
    return f0


def no_gap(audio: np.ndarray, frame: int = 1024) -> None:
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    assert len(frames) > 4 and np.abs(frames).max(axis=1).min() > 0.05, "the note stopped sounding"


# ---------------------------------------------------------------------- the protocol, without a host


def test_messages_are_the_osc_address_space_with_its_rules():
    same = [("/nsynth/note", [60, 100]), ("/nsynth/note", [61.0, 0]), ("/nsynth/xy", [0.25, 0.75]),
            ("/nsynth/xy", [-3, 7]), ("/nsynth/corners", ["a", "b", 2, "d"]), ("/nsynth/preset", ["reed"]),
            ("/nsynth/gain", [1.5]), ("/nsynth/temperature", [9]), ("/nsynth/excitation_gain", [3.5]),
            ("/nsynth/panic", []), ("/nsynth/status", [])]
    for address, args in same:
        assert parse_text(json.dumps([address, *args])) == parse_message(address, args)
    bad = ["", "[]", "{}", "60", '["/nsynth/note"]', '["/nsynth/note", 128, 1]', '["/nsynth/note", "60", 1]',
           '["/nsynth/note", true, 1]', '["/nsynth/note", NaN, 1]', '["/nsynth/xy", Infinity, 0]',
           '["/nsynth/note", ' + "9" * 400 + ", 1]", '["/other/xy", 0, 0]', '[["/nsynth/xy"], 0, 0]',
           '["/nsynth/preset", {}]', '["/nsynth/temperature", 0]', "[" * 400 + "]" * 400,
           '["/nsynth/xy", ' + "0, " * (MAX_MESSAGE // 3) + "0]"]
    for text in bad:
        with pytest.raises(BadMessage):
            parse_text(text)


def test_access_rules():
    assert access.is_loopback("127.0.0.1") and access.is_loopback("::1") and access.is_loopback("localhost")
    assert not access.is_loopback("0.0.0.0") and not access.is_loopback("192.168.1.5")
    assert not access.is_loopback("myhost.lan")
    assert access.names_this_machine("127.0.0.1:8000") and access.names_this_machine("[::1]:8000")
    assert access.names_this_machine("localhost")
    assert not access.names_this_machine("attacker.example:8000") and not access.names_this_machine(None)
    assert access.same_origin(None, "127.0.0.1:8000")  # not a browser
    assert access.same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not access.same_origin("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not access.same_origin("http://attacker.example", "127.0.0.1:8000")
    assert not access.same_origin("null", "127.0.0.1:8000")
    t = access.new_token()
    assert len(t) >= 20 and access.token_ok(t, t) and not access.token_ok(t, t[:-1]) and not access.token_ok(t, None)


def test_page_references_nothing_beyond_the_host():
    files = {p.name: p.read_text() for p in WEB_DIR.iterdir() if p.suffix in (".html", ".js", ".css")}
    assert set(files) == {"index.html", "app.js", "style.css"}
    for name, text in files.items():
        assert not re.search(r"(?i)\b(?:https?|wss?|ftp):\/\/[^\s'\"`$]", text), name
        assert "@import" not in text, name
    html = files["index.html"]
    for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html):
        assert ref.startswith("data:") or (":" not in ref and not ref.startswith("//")), ref
    for ref in re.findall(r"url\(([^)]*)\)", files["style.css"]):
        assert ref.strip("'\" ").startswith("data:"), ref


# ---------------------------------------------------------------------- a real browser on the real host


@pytest.mark.jack
@pytest.mark.slow
def test_browser_plays_a_key_and_morphs_with_the_pad(jack_server, pad_setup):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if why := missing():
        pytest.fail(why)
    host, cap = start_host(pad_setup, "--web", "0")
    url = web_url(host)
    other = WsPage(url)
    try:
        with headless_chromium(1000, 820) as d:
            d.get(url)
            WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "conn").text == "connected")
            WebDriverWait(d, 5).until(lambda d: d.find_element(By.ID, "corner-name-0").text)
            pad = d.find_element(By.ID, "pad")
            r = pad.rect

            # The pad names its corners: bottom-left (0,0), bottom-right, top-left, top-right.
            labels = [d.find_element(By.ID, f"corner-name-{i}") for i in range(4)]
            assert [e.text for e in labels] == CORNERS
            for i, e in enumerate(labels):
                lr = e.rect
                assert e.is_displayed() and r["x"] <= lr["x"] and lr["x"] + lr["width"] <= r["x"] + r["width"] + 1
                left, bottom = i % 2 == 0, i < 2
                assert (lr["x"] < r["x"] + r["width"] / 2) == left, (i, lr, r)
                assert (lr["y"] > r["y"] + r["height"] / 2) == bottom, (i, lr, r)
            # Rendered, not blank: the pad differs from the page around it, and its labels are drawn.
            shot = np.asarray(Image.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")).astype(np.float32)
            page_bg = shot[2, 2]
            box = shot[int(r["y"]) : int(r["y"] + r["height"]), int(r["x"]) : int(r["x"] + r["width"])]
            assert box.shape[0] > 200 and box.shape[1] > 200, box.shape
            assert np.mean(np.abs(box - page_bg).sum(-1) > 12) > 0.9, "the pad is not drawn"
            assert box.std() > 5
            lr = labels[3].rect
            text = shot[int(lr["y"]) : int(lr["y"] + lr["height"]), int(lr["x"]) : int(lr["x"] + lr["width"])]
            assert text.max() > 200 and text.min() < 120, "the corner name is not drawn"
            # Everything the page loaded came from the host.
            origin = url.split("/?")[0].rstrip("/")
            loaded = d.execute_script("return performance.getEntries().map(e => e.name)"
                                      ".filter(n => /^[a-z]+:/.test(n))")
            assert loaded and all(n.startswith(origin + "/") for n in loaded), loaded
            assert {origin + "/style.css", origin + "/app.js"} <= set(loaded)

            # An on-screen key (G4, MIDI 67), held with the mouse: the host plays G4.
            key = d.find_element(By.CSS_SELECTOR, '#keyboard [data-pitch="67"]')
            a = cap.mark()
            ActionChains(d).click_and_hold(key).pause(1.2).release().perform()
            b = cap.mark()
            held = cap.since(a)[: b - a]
            held_pitch_ok(held[len(held) // 3 :], cap.rate, 67)
            cap.wait(RELEASE_S + 0.5)

            # B4 held from the computer keyboard ("j") while the pad is dragged from near the
            # bottom-left corner to (0.8, 0.25): the note sounds through the morph, and the host's
            # state is where the page left the pad.
            w, h = r["width"], r["height"]
            a = cap.mark()
            (ActionChains(d).key_down("j").pause(0.4)
             .move_to_element_with_offset(pad, int(-0.4 * w), int(0.4 * h)).click_and_hold().pause(0.2)
             .move_to_element_with_offset(pad, 0, 0).pause(0.2)
             .move_to_element_with_offset(pad, int(0.3 * w), int(0.25 * h)).pause(0.6)
             .release().key_up("j").perform())
            b = cap.mark()
            during = cap.since(a)[: b - a]
            steady = during[int(0.3 * cap.rate) : len(during) - int(0.05 * cap.rate)]
            no_gap(steady)
            held_pitch_ok(steady, cap.rate, 71)
            expect = (0.5 + int(0.3 * w) / w, 0.5 - int(0.25 * h) / h)
            state = other.wait_for(lambda m: m["type"] == "state"
                                   and abs(m["xy"][0] - expect[0]) < 0.02 and abs(m["xy"][1] - expect[1]) < 0.02)
            assert state["mode"] == "xy" and state["corners"] == CORNERS
            # The other page saw the drag as it went (the host pushes every move).
            xs = {round(m["xy"][0], 2) for m in other.messages if m["type"] == "state"}
            assert len(xs) >= 3, xs
            st = other.status()
            assert st["web_accepted"] >= 5 and st["web_rejected"] == 0 and st["engine"] == "fused"

            # ... and the browser sees the other page's move.
            other.send("/nsynth/xy", 0.1, 0.9)
            WebDriverWait(d, 5).until(lambda d: (pad.get_attribute("data-x"), pad.get_attribute("data-y")) == ("0.1", "0.9"))
            puck = d.find_element(By.ID, "puck")
            assert puck.get_attribute("style").replace(" ", "").startswith("left:10%;top:10%")
            WebDriverWait(d, 5).until(lambda d: d.find_element(By.ID, "st-voices").text.isdigit())
            cap.wait(RELEASE_S + 0.5)

            # A phone's two thumbs (touch events, as a touchscreen sends them): one holds E4 on the
            # keyboard, the other drags the pad to (0.7, 0.2) meanwhile.
            d.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
            kr = d.find_element(By.CSS_SELECTOR, '#keyboard [data-pitch="64"]').rect
            thumb = {"x": kr["x"] + kr["width"] / 2, "y": kr["y"] + kr["height"] * 0.8, "id": 1}

            def on_pad(fx: float, fy: float) -> dict:
                return {"x": r["x"] + fx * w, "y": r["y"] + (1 - fy) * h, "id": 2}

            def touch(kind: str, points: list[dict]) -> None:
                d.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

            a = cap.mark()
            touch("touchStart", [thumb])
            time.sleep(0.3)
            touch("touchStart", [thumb, on_pad(0.2, 0.8)])
            for f in np.linspace(0.2, 0.7, 6):
                time.sleep(0.1)
                touch("touchMove", [thumb, on_pad(f, 1.0 - f)])
            time.sleep(0.5)
            b = cap.mark()
            touch("touchEnd", [])
            during = cap.since(a)[: b - a]
            no_gap(during[int(0.3 * cap.rate) :])
            held_pitch_ok(during[int(0.3 * cap.rate) :], cap.rate, 64)
            other.wait_for(lambda m: m["type"] == "state" and abs(m["xy"][0] - 0.7) < 0.02 and abs(m["xy"][1] - 0.3) < 0.02)
        assert host.proc.poll() is None
    finally:
        other.close()
        cap.close()
        assert host.close() == 0


def malformed(n: int) -> list[str | bytes]:
    """``n`` bad messages of twelve kinds: not JSON, wrong shapes and types, out of range, oversized."""
    rng = np.random.default_rng(2)
    out: list[str | bytes] = []
    for i in range(n):
        kind = i % 12
        if kind == 0:
            out.append("".join(chr(c) for c in rng.integers(32, 127, int(rng.integers(1, 80)))))
        elif kind == 1:
            out.append(json.dumps({"address": "/nsynth/note", "args": [60, 100]}))
        elif kind == 2:
            out.append(json.dumps(["/nsynth/note", "sixty", 100]))
        elif kind == 3:
            out.append('["/nsynth/note", NaN, 100]')
        elif kind == 4:
            out.append(json.dumps(["/nsynth/note", 1e30, 1e30]))
        elif kind == 5:
            out.append(json.dumps([f"/nsynth/unknown{i}", 1]))
        elif kind == 6:
            out.append(json.dumps(["/nsynth/xy", *([0.5] * 400)]))  # oversized
        elif kind == 7:
            out.append(rng.integers(0, 256, 32, dtype=np.uint8).tobytes())  # a binary frame
        elif kind == 8:
            out.append(json.dumps(["/nsynth/xy", 0.5]))
        elif kind == 9:
            out.append('["/nsynth/note", ' + "9" * 350 + ", 1]")
        elif kind == 10:
            out.append(json.dumps(["/nsynth/preset", ["p0"]]))
        else:
            out.append(json.dumps(["/nsynth/note", True, 100]))
    return out


@pytest.mark.jack
@pytest.mark.slow
def test_ten_thousand_malformed_messages_do_not_disturb_a_playing_note(jack_server, pad_setup):
    host, cap = start_host(pad_setup, "--web", "0")
    page = WsPage(web_url(host))
    bad = malformed(10_000)
    try:
        page.send("/nsynth/note", 60, 100)
        cap.wait(0.5)
        a = cap.mark()
        page.send_raw(bad, pause_every=500)
        cap.wait(0.3)
        during = cap.since(a)
        assert host.proc.poll() is None
        no_gap(during)  # sounding all the way through the flood
        held_pitch_ok(during, cap.rate, 60)
        st = page.status()
        # TCP drops nothing: every one of them is counted, none is taken for an event.
        assert st["web_rejected"] == 10_000 and st["rejected"] == 10_000, st
        assert st["web_accepted"] == 2 and st["voices"] == 1, st  # the note and the status request
        assert {"xruns", "rtf", "engine"} <= set(st)
        # A frame beyond what aiohttp takes (64 KiB) is counted too, and closes only that page.
        big = WsPage(web_url(host))
        big.send_raw(["[" + "0," * 50_000 + "0]"])
        deadline = time.time() + 10
        while not big.ws.closed and time.time() < deadline:
            time.sleep(0.05)
        assert big.ws.closed
        big.close()
        st = page.status()
        assert st["web_rejected"] == 10_001 and st["voices"] == 1, st
        # A page that goes away with a key down releases it.
        page.close()
        page = WsPage(web_url(host))
        deadline = time.time() + RELEASE_S + 5
        while page.status()["voices"] and time.time() < deadline:
            time.sleep(0.2)
        assert page.status()["voices"] == 0
    finally:
        page.close()
        cap.close()
        assert host.close() == 0


def _get(url: str, **kw) -> tuple[int, str]:
    import aiohttp

    async def go():
        async with aiohttp.ClientSession() as s, s.get(url, **kw) as resp:
            return resp.status, await resp.text()

    return asyncio.run(go())


def _ws_refused(url: str, **kw) -> int:
    """The HTTP status that refused a websocket (fails if it was accepted)."""
    import aiohttp

    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        WsPage(url, **kw).close()
    return err.value.status


@pytest.mark.jack
def test_lan_bound_page_needs_its_token(jack_server, pad_setup):
    """Bound to every address, the host refuses pages and websockets without the printed token
    (checked over 127.0.0.1 only: nothing here reaches the LAN)."""
    host = Host(*pad_setup, extra=["--no-midi", "--web", "0", "--web-host", "0.0.0.0"])
    try:
        m = re.search(r"web: http://([^/]+):(\d+)/\?token=([\w-]+)", host.banner)
        assert m, host.banner
        port, token = m.group(2), m.group(3)
        qr = host.proc.stdout.readline() + host.proc.stdout.readline()
        assert "\u2580" in qr or "\u2588" in qr or "\u2584" in qr, qr  # the URL as a QR code
        base = f"http://127.0.0.1:{port}/"
        for url in (base, base + "app.js", base + "?token=wrong", base + "?token="):
            assert _get(url)[0] == 403, url
        assert _ws_refused(base) == 403
        assert _ws_refused(base + "?token=" + token[:-1]) == 403
        status, html = _get(base + "?token=" + token)
        assert status == 200 and 'id="pad"' in html
        assert _get(base + "app.js", cookies={access.COOKIE: token})[0] == 200
        page = WsPage(base + "?token=" + token)
        try:
            hello = page.wait_for(lambda m: m["type"] == "hello")
            assert hello["presets"] == CORNERS + ["plucked"] and hello["state"]["corners"] == CORNERS
        finally:
            page.close()
    finally:
        assert host.close() == 0


@pytest.mark.jack
def test_a_web_port_in_use_is_one_clear_error(jack_server, pad_setup, tmp_path):
    import socket
    import subprocess

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        export, bank = pad_setup
        run = subprocess.run([str(Path(sys.executable).parent / "nsynth-live"), "play", "--model", str(export),
                              "--bank", str(bank), "--engine", "fused", "--no-midi", "--osc-port", "0", "--quiet",
                              "--web", str(port)], capture_output=True, text=True, timeout=120)
    finally:
        taken.close()
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [f"nsynth-live play: error: web: cannot listen on 127.0.0.1:{port} "
                                               "(Address already in use)"], run.stderr


@pytest.mark.jack
def test_local_page_refuses_other_sites(jack_server, pad_setup):
    """Bound to 127.0.0.1 (no token), the host still refuses a request naming another host (DNS
    rebinding) and a websocket opened by another site's page."""
    host = Host(*pad_setup, extra=["--no-midi", "--web", "0"])
    try:
        url = web_url(host)
        assert "token" not in url
        port = re.search(r":(\d+)/", url).group(1)
        assert _get(url)[0] == 200
        assert _get(url, headers={"Host": f"attacker.example:{port}"})[0] == 403
        assert _ws_refused(url, headers={"Origin": "http://attacker.example"}) == 403
        page = WsPage(url, headers={"Origin": f"http://127.0.0.1:{port}"})
        page.close()
    finally:
        assert host.close() == 0
