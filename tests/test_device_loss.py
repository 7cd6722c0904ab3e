"""The host losing its audio device: a JACK server of the test's own, killed mid-note.

`nsynth-live play` runs on a private JACK server (its own name: the session's shared server is
never touched); the test kills that server while a note sounds and checks that the host says so
on stderr within a second, then exits with status 3, or, with --reconnect, counts and ignores
the notes sent meanwhile, comes back when a server of the same name returns and plays there.
SIGTERM ends it within a second while the device is gone. The model is the sine model.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from nsynth_live.host.device_watch import DEVICE_LOST_EXIT
from nsynth_live.host.osc_server import build_message
from nsynth_live.pitch import cents_off, note_f0

sys.path.insert(0, str(Path(__file__).parent))
from jack_capture import JackCapture  # noqa: E402
from test_play_e2e import free_port, sine_setup  # noqa: E402,F401 - the fixture

VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.jack


class PrivateJack:
    """A jackd on the dummy driver under a name of its own (killed and restarted by the tests)."""

    def __init__(self) -> None:
        self.name = f"nsl-devloss-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PrivateJack":
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "--no-realtime", "-d", "dummy", "-r", "16000", "-p", "256"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        up = subprocess.run(["jack_wait", "-w", "-t", "10", "-s", self.name], capture_output=True, text=True)
        assert self.proc.poll() is None and up.returncode == 0, f"jackd {self.name} did not start"
        return self

    def kill(self) -> float:
        """SIGKILL the server (as a crash or an unplugged card would); returns the wall time."""
        assert self.proc is not None
        t = time.time()
        self.proc.kill()
        self.proc.wait()
        return t

    def close(self) -> None:
        """Stop the server cleanly. A killed jackd keeps its slot in JACK's server registry (8
        slots, reclaimed only by a server of the same name), so one killed earlier is started
        once more under its name and stopped with SIGTERM, which gives the slot back."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        else:
            self.start()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for sem in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):  # clients that died with it
            sem.unlink(missing_ok=True)


@pytest.fixture
def private_jack():
    if subprocess.run(["which", "jackd"], capture_output=True).returncode != 0:
        pytest.skip("no jackd")
    server = PrivateJack().start()
    yield server
    server.close()


class Host:
    """`nsynth-live play` on the private server; stdout and stderr lines kept with their arrival time."""

    def __init__(self, export, bank, server: str, extra=()):
        self.port = free_port()
        env = dict(os.environ, JACK_DEFAULT_SERVER=server, JACK_NO_START_SERVER="1")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "nsynth-live"), "play", "--model", str(export), "--bank", str(bank), "--engine", "fused",
             "--osc-port", str(self.port), "--quiet", "--block", "128", "--no-midi", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[tuple[float, str, str]] = []  # (time.time(), "out" | "err", line)
        self._cond = threading.Condition()
        for name, pipe in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, pipe), daemon=True).start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3)
        self.wait_line("out", "nsynth-live playing", 60)

    def _read(self, name, pipe) -> None:
        for line in pipe:
            with self._cond:
                self.lines.append((time.time(), name, line.rstrip("\n")))
                self._cond.notify_all()

    def wait_line(self, stream: str, text: str, timeout: float, after: int = 0) -> tuple[float, str]:
        """The first line of ``stream`` containing ``text`` (from line index ``after`` on)."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for t, s, line in self.lines[after:]:
                    if s == stream and text in line:
                        return t, line
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no {stream} line with {text!r} in {timeout} s: {self.lines}")
                self._cond.wait(left)

    def send(self, address, *args) -> None:
        self.sock.sendto(build_message(address, *args), ("127.0.0.1", self.port))

    def status(self):
        self.send("/nsynth/status")
        return list(OscMessage(self.sock.recvfrom(65536)[0]).params)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


def lost_line_after(host: Host, killed_at: float) -> tuple[float, str]:
    t, line = host.wait_line("err", "lost at", 5)
    assert "audio device 'system'" in line, line  # names the device
    stamp = re.search(r"lost at (\d\d):(\d\d):(\d\d)\.(\d{3}) UTC", line)
    assert stamp, line
    h, m, s, ms = (int(x) for x in stamp.groups())
    day = time.gmtime(killed_at)
    stamped = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, h, m, s, 0, 0, 0)) - time.timezone + ms / 1000
    # Both the host's own timestamp and the line's arrival here: within a second of the kill.
    assert -0.05 < stamped - killed_at < 1.0, (stamped - killed_at, line)
    assert t - killed_at < 1.0, (t - killed_at, line)
    return t, line


def test_server_killed_mid_note_reports_within_a_second_and_exits_3(private_jack, sine_setup):
    host = Host(*sine_setup, server=private_jack.name)
    try:
        host.send("/nsynth/note", 60, 100)
        time.sleep(0.5)
        assert host.status()[0] == 1  # the note is sounding
        killed = private_jack.kill()
        t, line = lost_line_after(host, killed)
        assert f"exiting (status {DEVICE_LOST_EXIT})" in line
        rc = host.proc.wait(timeout=5)
        assert rc == DEVICE_LOST_EXIT
        assert time.time() - killed < 3.0
    finally:
        host.close()


def test_reconnect_ignores_notes_while_gone_then_plays_on_the_returned_server(private_jack, sine_setup):
    host = Host(*sine_setup, server=private_jack.name, extra=["--reconnect"])
    cap = None
    try:
        host.send("/nsynth/note", 60, 100)
        time.sleep(0.5)
        killed = private_jack.kill()
        lost_line_after(host, killed)
        assert host.proc.poll() is None  # waiting, not gone
        for i in range(50):  # notes while the device is gone: counted and dropped
            host.send("/nsynth/note", 60 + i % 12, 100)
            time.sleep(0.002)
        assert host.status()[0] == 0  # the voices were released, none started
        time.sleep(1.0)
        mark = len(host.lines)
        private_jack.start()
        _, back = host.wait_line("err", "is back", 15, after=mark)
        ignored = int(re.search(r"\((\d+) events ignored", back).group(1))
        assert 45 <= ignored <= 51, back  # the 50 notes (UDP on loopback may drop a few), no more
        host.wait_line("out", "nsynth-live playing", 60, after=mark)
        host.wait_line("err", "reopened (reconnect 1)", 5, after=mark)
        assert host.status()[0] == 0  # nothing queued from while it was gone
        cap = JackCapture("PortAudio:out_0", servername=private_jack.name)
        time.sleep(0.3)
        a = cap.mark()
        host.send("/nsynth/note", 60, 100)
        time.sleep(1.0)
        held = cap.since(a)
        assert np.abs(held).max() > 0.05, "no sound after the reconnect"
        f0 = note_f0(held[len(held) // 2:], cap.rate, 0.0, len(held) / 2 / cap.rate)
        assert f0 is not None and abs(cents_off(f0, 60)) < 50, f0
        cap.close()
        cap = None
        host.proc.terminate()
        assert host.proc.wait(timeout=5) == 0
    finally:
        if cap is not None:
            cap.close()
        host.close()


def test_sigterm_while_the_device_is_gone_exits_within_a_second(private_jack, sine_setup):
    host = Host(*sine_setup, server=private_jack.name, extra=["--reconnect"])
    try:
        host.send("/nsynth/note", 60, 100)
        time.sleep(0.3)
        lost_line_after(host, private_jack.kill())
        time.sleep(0.7)  # inside the wait for the device, a probe perhaps under way
        t0 = time.time()
        host.proc.send_signal(signal.SIGTERM)
        rc = host.proc.wait(timeout=5)
        assert time.time() - t0 < 1.0 and rc == 0, (time.time() - t0, rc)
    finally:
        host.close()


def test_callbacks_that_stop_count_as_a_lost_device(private_jack, sine_setup):
    """A stopped server (SIGSTOP: the stream stays 'active' but calls back no more) is found by
    the callback heartbeat."""
    host = Host(*sine_setup, server=private_jack.name)
    try:
        time.sleep(0.3)
        stopped = time.time()
        private_jack.proc.send_signal(signal.SIGSTOP)
        try:
            t, line = host.wait_line("err", "lost at", 5)
        finally:
            private_jack.proc.send_signal(signal.SIGCONT)
        assert "no audio callback" in line, line
        assert t - stopped < 1.5, t - stopped
        assert host.proc.wait(timeout=5) == DEVICE_LOST_EXIT
    finally:
        host.close()
