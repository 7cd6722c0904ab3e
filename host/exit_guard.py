"""Ctrl-C and SIGTERM end the host within a second, whatever the audio device is doing.

Python runs signal handlers on the main thread between bytecodes, so a main thread blocked in
a PortAudio call (a stream stop that waits for a dead JACK server) would never see the signal.
The guard therefore also has the interpreter write each signal to a socket
(``signal.set_wakeup_fd``, done by the C-level handler at once) and reads it on its own thread:
that thread sets the stop event the main loop waits on and, if the process is still alive
``grace_s`` later, flushes stdout/stderr and ends it with ``os._exit``.

:func:`leave` ends the process the same way on purpose, after an audio device was lost: the
interpreter's normal exit would run sounddevice's ``Pa_Terminate``, which blocks or aborts on
a lost JACK stream (see :mod:`nsynth_live.host.device_watch`).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

# Set in the environment of a host restarted by --reconnect: how many times it has been.
RESTARTS_ENV = "NSYNTH_LIVE_RESTARTS"


class ExitGuard:
    """Turns SIGINT/SIGTERM into ``stop`` (and ``also``) being set, and exits ``grace_s`` later
    if still running.

    Args:
        stop: set at the first signal.
        also: more events set with it (the one the main loop waits on).
        grace_s: how long an orderly shutdown may take before ``os._exit``.
        code: the exit status used then (may be changed while running).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: threading.Event, *also: threading.Event, grace_s: float = 0.8, code: int = 0):
        self.events = (stop, *also)
        self.grace_s = grace_s
        self.code = code
        self._r, self._w = socket.socketpair()
        self._w.setblocking(False)
        self._previous: dict[int, Any] = {}
        self._old_fd = -1

    def install(self) -> "ExitGuard":
        """Take over the signals (call from the main thread)."""
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        self._old_fd = signal.set_wakeup_fd(self._w.fileno())
        threading.Thread(target=self._watch, name="nsynth-exit-guard", daemon=True).start()
        return self

    def uninstall(self) -> None:
        """Give the signals back (an orderly end; the process exits normally after)."""
        signal.set_wakeup_fd(self._old_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal API
        for event in self.events:
            event.set()

    def _watch(self) -> None:
        while True:
            try:
                data = self._r.recv(16)
            except OSError:
                return
            if any(b in self.SIGNALS for b in data):
                break
        for event in self.events:
            event.set()
        # A plain timeout (the events are set by now).
        threading.Event().wait(self.grace_s)
        leave(self.code)


def leave(code: int) -> None:
    """End the process now with ``code``, after flushing stdout and stderr (no atexit handlers)."""
    _flush()
    os._exit(code)


def restart() -> None:
    """Replace this process by a fresh run of the same command line (``--reconnect``): the
    environment counts the restarts (``RESTARTS_ENV``)."""
    _flush()
    env = dict(os.environ)
    env[RESTARTS_ENV] = str(int(env.get(RESTARTS_ENV, "0") or 0) + 1)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
