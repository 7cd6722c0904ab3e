"""The Pure Data example patch (presets/patches/nsynth-live.pd), run in real Pd.

Pd runs headless (``-nogui -nosound -nomidi``) with the example patch and a one-object harness
patch: ``[netreceive PORT 0 old]`` evaluates what the test writes to it over TCP, so the test can
send to the patch's receivers (``nsynth-note 60 100;``) and click its boxes the way the GUI does
(``pd-nsynth-live.pd mouse X Y 1 0;``). What the patch sends goes over real UDP, either to a
socket here (checked address by address against the OSC table of docs/design.md, plus the host's two
extensions, and parsed by the host's own parser) or to a real ``nsynth-live play`` on the JACK
dummy server, whose status reply comes back into the patch and whose audio is recorded.

Skipped when ``pd`` is not installed, unless NSYNTH_REQUIRE_PD=1 (scripts/test.sh), which makes it
a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket

from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import build_message, parse_message

ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "presets" / "patches" / "nsynth-live.pd"
VENV_BIN = Path(sys.executable).parent
RELEASE_S = (125 - 93) * 512 / 16000  # release frames of a 4 s trajectory (as in test_play_e2e)

# the OSC table of docs/design.md: address -> the event the host's parser makes of it (None: the host answers
# /nsynth/status itself).
BASE = {
    "/nsynth/note": (ev.NoteOn, ev.NoteOff),
    "/nsynth/note_off": ev.NoteOff,
    "/nsynth/preset": ev.SelectPreset,
    "/nsynth/mix": ev.Mix,
    "/nsynth/corners": ev.Corners,
    "/nsynth/xy": ev.XY,
    "/nsynth/gain": ev.Gain,
    "/nsynth/panic": ev.Panic,
    "/nsynth/status": type(None),
}
# nsynth-live's extensions beyond the base table of docs/design.md (host/osc_server.py): the decoding settings, live.
EXTENSIONS = {
    "/nsynth/temperature": ev.Temperature,
    "/nsynth/excitation_gain": ev.ExcitationGain,
}
ADDRESSES = {**BASE, **EXTENSIONS}

# Anything Pd prints about a broken patch or a failed message.
PD_TROUBLE = re.compile(
    r"error|couldn't create|bad arguments|no such object|no method|connection failed|not connected"
    r"|already connected|stack overflow|can't open|warning",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def pd_exe() -> str:
    exe = shutil.which("pd") or shutil.which("puredata")
    if exe is None:
        if os.environ.get("NSYNTH_REQUIRE_PD") == "1":
            pytest.fail("NSYNTH_REQUIRE_PD=1 but Pure Data (pd) is not installed (scripts/setup.sh installs puredata-core)")
        pytest.skip("Pure Data (pd) is not installed (apt-get install puredata-core)")
    return exe


def free_port(kind: int) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------- the patch file


def pd_records(text: str) -> list[list[str]]:
    """The records of a .pd file (``#X obj 20 30 foo bar;`` -> ['#X', 'obj', '20', '30', 'foo', 'bar'])."""
    return [r.split() for r in re.split(r"(?<!\\);\s*\n", text) if r.strip()]


class PdPatch:
    """A top-level .pd patch: its boxes (in creation order, as Pd numbers them) and connections."""

    BOX_KINDS = {"obj", "msg", "text", "floatatom", "symbolatom", "listbox"}

    def __init__(self, text: str):
        recs = pd_records(text)
        assert recs[0][:2] == ["#N", "canvas"], "not a Pd patch"
        assert not any(r[:2] == ["#N", "canvas"] for r in recs[1:]), "the example has no subpatches"
        self.boxes: list[dict] = []
        self.edges: list[tuple[int, int, int, int]] = []
        for r in recs[1:]:
            if r[0] != "#X":
                continue
            if r[1] in self.BOX_KINDS:
                self.boxes.append({"kind": r[1], "x": int(r[2]), "y": int(r[3]), "atoms": r[4:]})
            elif r[1] == "connect":
                self.edges.append(tuple(int(v) for v in r[2:6]))

    def cls(self, i: int) -> str:
        b = self.boxes[i]
        return b["atoms"][0] if b["kind"] == "obj" and b["atoms"] else b["kind"]

    def downstream(self, i: int, stop: str) -> set[int]:
        """Boxes of class ``stop`` reachable from box i (not through another ``stop``)."""
        seen, todo, found = {i}, [i], set()
        while todo:
            j = todo.pop()
            for a, _, b, _ in self.edges:
                if a == j and b not in seen:
                    seen.add(b)
                    (found.add(b) if self.cls(b) == stop else todo.append(b))
        return found

    def osc_address(self, i: int) -> str:
        """The address an [oscformat a b] box builds: /a/b."""
        assert self.cls(i) == "oscformat"
        return "/" + "/".join(self.boxes[i]["atoms"][1:])


def pd_atom(s: str):
    try:
        return float(s)
    except ValueError:
        return s


# --------------------------------------------------------------------------- Pd under test


class Pd:
    """Pd running ``patch`` headless, driven over a TCP FUDI connection."""

    def __init__(self, exe: str, patch: Path, tmp_path: Path):
        self.patch = patch
        self.canvas = f"pd-{patch.name}"
        port = free_port(socket.SOCK_STREAM)
        harness = tmp_path / "harness.pd"
        harness.write_text(f"#N canvas 0 0 300 100 12;\n#X obj 10 10 netreceive {port} 0 old;\n")
        self.proc = subprocess.Popen(
            [exe, "-nogui", "-nosound", "-nomidi", "-noprefs", "-stderr",
             "-open", str(harness), "-open", str(patch)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
        self._out: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.time() + 15
        while True:
            try:
                self.ctl = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    raise AssertionError(f"Pd did not start:\n{self.output()}")
                time.sleep(0.05)

    def _read(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            with self._lock:
                self._out.append(chunk.decode(errors="replace"))

    def output(self) -> str:
        with self._lock:
            return "".join(self._out)

    def send(self, receiver: str, *atoms) -> None:
        """``; receiver atoms`` as a Pd message box would send it."""
        self.ctl.sendall((" ".join([receiver, *map(str, atoms)]) + ";\n").encode())

    def click(self, x: int, y: int) -> None:
        """A left click (press and release) at canvas position x, y, as the GUI sends it."""
        self.send(self.canvas, "mouse", x, y, 1, 0)
        self.send(self.canvas, "mouseup", x, y, 0)

    def wait_for(self, pattern: str, start: int, timeout: float = 5.0) -> re.Match:
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.compile(pattern).search(self.output(), start)
            if m:
                return m
            time.sleep(0.02)
        raise AssertionError(f"Pd never printed {pattern!r}; it printed:\n{self.output()}")

    def quit(self) -> str:
        """Ends Pd and returns everything it printed."""
        try:
            self.send("pd", "quit")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()
        self._reader.join(timeout=5)
        return self.output()


def trouble(log: str) -> list[str]:
    return [line for line in log.splitlines() if PD_TROUBLE.search(line)]


class Listener:
    """A UDP socket standing in for the host: collects OSC messages, answers /nsynth/status."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def recv(self, timeout: float = 5.0) -> tuple[str, list, tuple]:
        self.sock.settimeout(timeout)
        data, sender = self.sock.recvfrom(65536)
        msgs = [m.message for m in OscPacket(data).messages]
        assert len(msgs) == 1, "one message per datagram"
        return msgs[0].address, list(msgs[0].params), sender

    def expect(self, address: str, args: list) -> tuple:
        got_address, got_args, sender = self.recv()
        assert got_address == address and same_args(got_args, args), (got_address, got_args, "expected", address, args)
        # The host takes it: the same parser as host/osc_server.py, no rejection, the right event.
        assert got_address in ADDRESSES, got_address
        event = parse_message(got_address, got_args)
        assert isinstance(event, ADDRESSES[got_address]), (got_address, got_args, event)
        return sender

    def expect_nothing(self, seconds: float = 0.3) -> None:
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        raise AssertionError(f"unexpected OSC message {OscMessage(data).address} {list(OscMessage(data).params)}")

    def close(self) -> None:
        self.sock.close()


def same_args(got: list, want: list) -> bool:
    """Equal, numbers within float32 rounding (OSC floats are 32-bit)."""
    return len(got) == len(want) and all(
        g == w if isinstance(w, str) else isinstance(g, (int, float)) and abs(g - w) < 1e-6 for g, w in zip(got, want))


def patch_copy(tmp_path: Path, port: int) -> Path:
    """The example patch with its connect message pointed at ``port`` (for clicking "connect")."""
    text = PATCH.read_text()
    assert text.count("connect 127.0.0.1 9000;") == 1, "the connect message targets 127.0.0.1 9000"
    out = tmp_path / PATCH.name
    out.write_text(text.replace("connect 127.0.0.1 9000;", f"connect 127.0.0.1 {port};"))
    return out


def click_point(box: dict) -> tuple[int, int]:
    return box["x"] + 5, box["y"] + 6


# --------------------------------------------------------------------------- tests


def test_patch_loads_without_errors(pd_exe, tmp_path):
    out = subprocess.run(
        [pd_exe, "-nogui", "-nosound", "-nomidi", "-noprefs", "-stderr", "-verbose",
         "-open", str(PATCH), "-send", "pd quit"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert f"tried {PATCH} and succeeded" in log, log
    assert trouble(log) == [], log


def test_patch_uses_only_vanilla_objects():
    """Every object is built into Pd vanilla 0.51+ (no externals, no abstractions)."""
    vanilla = {"oscformat", "oscparse", "netsend", "list", "t", "r", "pack", "unpack", "route", "print", "clip",
               "hsl", "vsl", "bng", "tgl"}
    patch = PdPatch(PATCH.read_text())
    used = {patch.cls(i) for i, b in enumerate(patch.boxes) if b["kind"] == "obj"}
    assert used <= vanilla, used - vanilla
    # netsend in UDP + binary mode, as oscformat's byte lists need.
    assert [b["atoms"] for b in patch.boxes if b["atoms"][:1] == ["netsend"]] == [["netsend", "-u", "-b"]]


def test_receivers_send_the_design_messages(pd_exe, tmp_path):
    """Every control's receive name, in real Pd, gives exactly the message of docs/design.md over UDP (or the
    extension's, for temperature and pitch lock)."""
    host = Listener()
    pd = Pd(pd_exe, PATCH, tmp_path)
    try:
        pd.send("nsynth-connect", "127.0.0.1", host.port)
        steps = [
            (("nsynth-note", 60, 100), "/nsynth/note", [60.0, 100.0]),
            (("nsynth-note", 60, 0), "/nsynth/note", [60.0, 0.0]),
            (("nsynth-note_off", 64), "/nsynth/note_off", [64.0]),
            (("nsynth-preset", 2), "/nsynth/preset", [2.0]),
            (("nsynth-preset", "brass"), "/nsynth/preset", ["brass"]),
            (("nsynth-mix", 0, 1, 0.25), "/nsynth/mix", [0.0, 1.0, 0.25]),
            (("nsynth-mix", "p0", "p1", 0.5), "/nsynth/mix", ["p0", "p1", 0.5]),
            (("nsynth-corners", 0, 1, 2, 3), "/nsynth/corners", [0.0, 1.0, 2.0, 3.0]),
            (("nsynth-x", 0.25), "/nsynth/xy", [0.25, 0.0]),
            (("nsynth-y", 0.75), "/nsynth/xy", [0.25, 0.75]),
            (("nsynth-xy", 0.5, 0.125), "/nsynth/xy", [0.5, 0.125]),  # one message for both
            (("nsynth-x", 1), "/nsynth/xy", [1.0, 0.125]),  # the pad remembers y
            (("nsynth-gain", 1.5), "/nsynth/gain", [1.5]),
            # Extensions. A [clip] after each slider keeps to the host's ranges: temperature 0
            # (which the host would reject) leaves as 0.02, an excitation gain of 10 as 8.
            (("nsynth-temperature", 0.5), "/nsynth/temperature", [0.5]),
            (("nsynth-temperature", 0), "/nsynth/temperature", [0.02]),
            (("nsynth-excitation_gain", 3.5), "/nsynth/excitation_gain", [3.5]),
            (("nsynth-excitation_gain", 10), "/nsynth/excitation_gain", [8.0]),
            (("nsynth-panic", "bang"), "/nsynth/panic", []),
            (("nsynth-status", "bang"), "/nsynth/status", []),
        ]
        sender = None
        for send, address, args in steps:
            pd.send(*send)
            sender = host.expect(address, args)
        host.expect_nothing()

        # The status reply comes back through netsend into the patch, which prints it.
        start = len(pd.output())
        host.sock.sendto(build_message("/nsynth/status", 1, 0, "fused", 0.25, 3), sender)
        pd.wait_for(r"nsynth-reply: status 1 0 fused 0\.25 3", start)

        # Connecting again (to another port) first disconnects: no "already connected".
        other = Listener()
        try:
            pd.send("nsynth-connect", "127.0.0.1", other.port)
            pd.send("nsynth-note", 67, 90)
            other.expect("/nsynth/note", [67.0, 90.0])
            host.expect_nothing()
            pd.send("nsynth-disconnect", "bang")
            pd.send("nsynth-connect", "127.0.0.1", host.port)
            pd.send("nsynth-note", 67, 0)
            host.expect("/nsynth/note", [67.0, 0.0])
            other.expect_nothing()
        finally:
            other.close()
    finally:
        log = pd.quit()
        host.close()
    assert trouble(log) == [], log


def test_clicking_every_box_sends_its_message(pd_exe, tmp_path):
    """Click "connect", then every message box and bang, as a user would: each sends one message
    to the address of the [oscformat] it is wired to, with the box's numbers as arguments."""
    host = Listener()
    patch_file = patch_copy(tmp_path, host.port)
    patch = PdPatch(patch_file.read_text())
    pd = Pd(pd_exe, patch_file, tmp_path)
    seen = set()
    try:
        connect = [b for b in patch.boxes if b["kind"] == "msg" and b["atoms"][:1] == ["connect"]]
        assert len(connect) == 1
        pd.click(*click_point(connect[0]))
        for i, box in enumerate(patch.boxes):
            if box["kind"] == "msg":
                if box["atoms"][0] in ("connect", "disconnect", "set"):
                    continue
                args = [] if box["atoms"] == ["bang"] else [pd_atom(a) for a in box["atoms"]]
            elif patch.cls(i) == "bng":
                args = []
            else:
                continue
            targets = patch.downstream(i, "oscformat")
            assert len(targets) == 1, (box, targets)
            address = patch.osc_address(targets.pop())
            pd.click(*click_point(box))
            host.expect(address, args)
            seen.add(address)
        host.expect_nothing()
    finally:
        log = pd.quit()
        host.close()
    assert trouble(log) == [], log
    # Every base address but /nsynth/xy (sliders: see the receivers test) has a box to click, and
    # so has each extension.
    assert seen == (set(BASE) - {"/nsynth/xy"}) | set(EXTENSIONS)


# --------------------------------------------------------------------------- with the real host


@pytest.fixture(scope="module")
def sine_setup(tmp_path_factory):
    from nsynth_live.exporters.export import export_model
    from nsynth_live.host.bank import Bank, Preset, save_bank
    from nsynth_live.host.trajectory import default_regions

    sys.path.insert(0, str(Path(__file__).parent))
    from sine_model import sine_model

    root = tmp_path_factory.mktemp("pd_e2e")
    export = export_model(sine_model(), root / "model")
    rng = np.random.default_rng(0)
    presets = []
    for i in range(4):
        emb = rng.standard_normal((125, 16)).astype(np.float32)
        presets.append(Preset(f"p{i}", emb, 60, regions=default_regions(emb, 512)))
    # No corners in the bank: the patch's corners message sets them.
    save_bank(Bank(root / "bank", "pd-e2e", 512, 16000, 16, 125, presets))
    return export, root / "bank"


@pytest.mark.jack
def test_patch_plays_a_note_on_the_real_host(pd_exe, jack_server, sine_setup, tmp_path):
    """Click connect, corners, move the XY pad, click "60 100", status, "60 0": the host plays C4
    in tune, answers status into the patch (one voice), releases the note and rejects nothing."""
    from nsynth_live.pitch import cents_off, note_f0

    sys.path.insert(0, str(Path(__file__).parent))
    from jack_capture import JackCapture, audio_outputs

    export, bank = sine_setup
    port = free_port(socket.SOCK_DGRAM)
    patch_file = patch_copy(tmp_path, port)
    patch = PdPatch(patch_file.read_text())

    def box(kind: str, text: str) -> dict:
        found = [b for b in patch.boxes if b["kind"] == kind and " ".join(b["atoms"]) == text]
        assert len(found) == 1, (kind, text)
        return found[0]

    status_bng = [b for i, b in enumerate(patch.boxes) if patch.cls(i) == "bng"
                  and patch.osc_address(next(iter(patch.downstream(i, "oscformat")))) == "/nsynth/status"][0]

    before = audio_outputs()
    host = subprocess.Popen(
        [str(VENV_BIN / "nsynth-live"), "play", "--model", str(export), "--bank", str(bank),
         "--engine", "fused", "--osc-port", str(port), "--block", "128", "--no-midi"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pd = cap = None
    log = ""
    try:
        line = host.stdout.readline()
        assert "nsynth-live playing" in line, host.stderr.read()
        pd = Pd(pd_exe, patch_file, tmp_path)
        # This host's own output port (another PortAudio client on the server would hold "PortAudio").
        new = sorted(p for p in audio_outputs() - before if p.endswith(":out_0"))
        cap = JackCapture(new[0] if new else "PortAudio:out_0", name="nsynth-test-pd-capture")

        def status() -> list[str]:
            start = len(pd.output())
            pd.click(*click_point(status_bng))
            return pd.wait_for(r"nsynth-reply: status (\S+) (\S+) (\S+) (\S+) (\S+)", start).groups()

        pd.click(*click_point(box("msg", f"connect 127.0.0.1 {port}")))
        pd.click(*click_point(box("msg", "0 1 2 3")))  # corners
        pd.send("nsynth-xy", 0.3, 0.6)  # the XY pad's sliders
        time.sleep(0.2)
        a = cap.mark()
        pd.click(*click_point(box("msg", "60 100")))
        cap.wait(1.0)
        voices, xruns, engine, rtf, rejected = status()
        assert (voices, engine, rejected) == ("1", "fused", "0")
        b = cap.mark()
        pd.click(*click_point(box("msg", "60 0")))
        cap.wait(RELEASE_S + 0.8)
        voices, _, _, _, rejected = status()
        assert (voices, rejected) == ("0", "0")

        held = cap.since(a)[: b - a]
        assert np.abs(held).max() > 0.05, "the note never sounded"
        f0 = note_f0(held[len(held) // 4 :], cap.rate, 0.0, len(held) / cap.rate)
        assert f0 is not None and abs(cents_off(f0, 60)) < 50, f0
        tail = cap.since(b)[int((RELEASE_S + 0.3) * cap.rate) :]
        assert len(tail) > 0.1 * cap.rate and np.abs(tail).max() < 1e-3, "still sounding after the release"
    finally:
        if cap is not None:
            cap.close()
        if pd is not None:
            log = pd.quit()
        host.terminate()
        try:
            out, err = host.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            host.kill()
            out, err = host.communicate()
    assert host.returncode == 0, err
    assert trouble(log) == [], log
    # The host's own status line counts every rejection (OSC, and presets or an XY move the
    # synth refused): none.
    lines = [ln for ln in re.split(r"[\r\n]", out) if "rejected" in ln]  # the line is redrawn with \r
    assert lines and re.search(r"rejected +0\b", lines[-1]), lines[-3:]
