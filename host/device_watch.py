"""Noticing that the audio device went away, and waiting for it to come back.

PortAudio tells of a lost device differently per host API: when the JACK server goes, the
stream turns inactive (``Pa_IsStreamActive``) and its callbacks stop, without the finished
callback; ALSA's callback thread stops with an error and calls the finished callback; a hung
driver just stops calling back. :class:`StreamWatch` looks for all three every ``poll_s``.

A lost stream is never stopped or closed, and it is never reopened in the same process:
PortAudio's JACK host API (V19.6, the one sounddevice ships with) waits in ``Pa_StopStream``,
``Pa_AbortStream`` and ``Pa_CloseStream`` for a process callback the dead server will never
run (a condition variable with a ten-minute timeout), and ``Pa_Terminate``, the only way to
see a restarted server, asserts on the dead client and aborts. So the host leaves the stream
alone, waits for the device with a fresh PortAudio in a short child process
(:func:`wait_for_device`), then exits or restarts itself (:mod:`nsynth_live.host.exit_guard`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any, Callable

# The exit status of `nsynth-live play` when its audio device is lost (README: Troubleshooting).
DEVICE_LOST_EXIT = 3

# Runs in a child: a fresh PortAudio sees the devices as they are now (an initialized one keeps
# the list it found at start). Exit 0: the output device is there.
_PROBE = """
import json, sys
import sounddevice as sd
try:
    sd.query_devices(json.loads(sys.argv[1]), "output")
except Exception:
    sys.exit(1)
"""


class StreamWatch:
    """A thread that calls ``on_lost(reason)`` once, within ``poll_s``, when the stream stops.

    Args:
        active: whether the stream is running (``sounddevice.OutputStream.active``).
        heartbeat: a count the audio callback increments on every call.
        finished: set by the stream's finished callback.
        on_lost: called from the watch thread with one line saying what happened.
        stall_s: seconds without a callback that count as a lost device (a hung driver). Long
            enough that a loaded machine delaying a callback is not taken for one.
        poll_s: seconds between looks.
    """

    def __init__(self, active: Callable[[], bool], heartbeat: Callable[[], int], finished: threading.Event,
                 on_lost: Callable[[str], None], stall_s: float = 0.8, poll_s: float = 0.1):
        self._active = active
        self._heartbeat = heartbeat
        self._finished = finished
        self._on_lost = on_lost
        self.stall_s = stall_s
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nsynth-device-watch", daemon=True)

    def start(self) -> "StreamWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the stream is stopped on purpose)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)

    def reason(self, beats: int, since: float, now: float) -> str | None:
        """Why the stream counts as lost now, or None (``beats`` and ``since``: the heartbeat
        count last seen and when it last changed)."""
        if self._finished.is_set():
            return "the stream finished"
        try:
            if not self._active():
                return "the stream stopped"
        except Exception as err:  # a stream PortAudio no longer knows
            return f"the stream failed ({err})"
        if self._heartbeat() == beats and now - since >= self.stall_s:
            return f"no audio callback for {now - since:.1f} s"
        return None

    def _run(self) -> None:
        beats, since = self._heartbeat(), time.monotonic()
        while not self._stop.wait(self.poll_s):
            now = time.monotonic()
            why = self.reason(beats, since, now)
            if why is not None:
                self._on_lost(why)
                return
            count = self._heartbeat()
            if count != beats:
                beats, since = count, now


def device_present(device: Any, timeout: float = 5.0, stop: threading.Event | None = None) -> bool:
    """Whether the output ``device`` (a name substring, an index or None for the default) exists
    now, as a fresh PortAudio sees it. Returns False at once when ``stop`` is set."""
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, json.dumps(device)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return False
        time.sleep(0.02)
    return proc.returncode == 0


def wait_for_device(device: Any, stop: threading.Event, every: float = 0.5) -> bool:
    """Look for the output ``device`` every ``every`` seconds until it is there (True) or ``stop``
    is set (False, within a few hundredths of a second)."""
    while not stop.is_set():
        started = time.monotonic()
        if device_present(device, stop=stop):
            return True
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return False


def call_with_timeout(fn: Callable[[], Any], timeout: float) -> bool:
    """Run ``fn`` on a daemon thread; whether it returned within ``timeout`` seconds (a device
    call that blocks is left behind, and the process exits without it)."""
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - a stream being let go of: its error changes nothing
            pass
        finally:
            done.set()

    threading.Thread(target=run, name="nsynth-device-call", daemon=True).start()
    return done.wait(timeout)
