"""A separate JACK client that records what another client plays (test helper)."""

from __future__ import annotations

import threading
import time

import numpy as np


class JackCapture:
    """Records one JACK output port into memory, with JACK's frame clock.

    Args:
        source: the port to record, e.g. "PortAudio:out_0".
        seconds: capacity.
        servername: the JACK server (None: the default one).
    """

    def __init__(self, source: str, seconds: float = 30.0, name: str = "nsynth-test-capture",
                 servername: str | None = None):
        import jack

        self.client = jack.Client(name, no_start_server=True, servername=servername)
        self.rate = self.client.samplerate
        self.buf = np.zeros(int(seconds * self.rate), np.float32)
        self.n = 0
        self.lock = threading.Lock()
        self.port = self.client.inports.register("in")
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(source, self.port)

    def _process(self, frames: int) -> None:
        data = self.port.get_array()
        end = min(self.n + frames, len(self.buf))
        self.buf[self.n : end] = data[: end - self.n]
        self.n = end

    def mark(self) -> int:
        """Samples recorded so far (a position to slice from later)."""
        return self.n

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def since(self, start: int) -> np.ndarray:
        return self.buf[start : self.n].copy()

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def audio_outputs() -> set[str]:
    """Every audio output port on the JACK server now, e.g. {"PortAudio:out_0", ...}.

    Taken before and after starting a host, it tells which ports that host opened, where other
    PortAudio clients share the server (their names then get suffixes: "PortAudio-01").
    """
    import jack

    client = jack.Client("nsynth-test-ports", no_start_server=True)
    try:
        return {p.name for p in client.get_ports(is_audio=True, is_output=True)}
    finally:
        client.close()
