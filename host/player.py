"""The realtime host: control threads -> event queue -> generator thread -> ring -> sounddevice.

Threads:

- the sounddevice callback only copies finished samples out of an :class:`~host.ring.AudioRing`
  (no allocation, no locks, never raises); on underrun it plays silence and counts an xrun;
- the generator thread applies queued events between blocks and renders the next block of all
  voices in one batched engine call whenever the ring holds less than ``lead`` samples; when
  the device does not run at 16 kHz, a soxr stream resamples the block before it enters the ring;
- MIDI (rtmidi's thread) and OSC (:class:`host.osc_server.OscServer`) only parse and enqueue.

When rendering cannot keep up (the ring runs dry while voices play), the oldest voice is stolen
rather than every voice glitching, and the theft is counted in the status.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from host import events as ev
from host.ring import AudioRing
from host.synth import Synth
from nsynth_live import SAMPLE_RATE
from nsynth_live.errors import UserError


@dataclass
class PlayerStatus:
    voices: int
    xruns: int
    engine: str
    realtime_factor: float
    stolen: int
    rejected: int
    device_rate: int


class _WakingQueue(queue.Queue):
    """An event queue that wakes the generator thread at once: a note does not wait for the
    generator's next poll."""

    def __init__(self, wake: threading.Event):
        super().__init__()
        self._wake_event = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake_event.set()


class Player:
    """Runs a :class:`Synth` against an output device.

    Args:
        synth: the voices.
        device: sounddevice output device (name substring or index; None: the default).
        block: samples per render call at 16 kHz (1..hop). The device runs at its own period
            (JACK's buffer size, for instance).
        lead: samples to keep rendered ahead of playback at the device rate (default 1 block):
            the smaller, the lower the latency from a key to its sound. It grows by a block
            whenever playback runs dry while the generator was idle (a device that pulls in
            bigger bursts), up to 16 blocks.
        channels: output channels (the mono mix is copied to each).
    """

    def __init__(self, synth: Synth, device: Any = None, block: int = 256, lead: int | None = None, channels: int = 2):
        import sounddevice as sd

        if not 1 <= block <= synth.hop:
            raise UserError(f"--block {block}: must be 1..{synth.hop} samples")
        self.synth = synth
        self._wake = threading.Event()
        self.events: "queue.Queue[ev.Event]" = _WakingQueue(self._wake)
        self.block = block
        try:
            info = sd.query_devices(device, "output")
        except (ValueError, sd.PortAudioError) as err:
            raise UserError(f"audio device {device!r}: {err}") from None
        self.device_name = info["name"]
        self.rate = int(round(info["default_samplerate"])) if info["default_samplerate"] else SAMPLE_RATE
        self.channels = max(1, min(channels, int(info["max_output_channels"])))
        self.device_block = max(1, int(round(block * self.rate / SAMPLE_RATE)))
        self.lead = lead or self.device_block
        self.max_lead = max(self.lead, 16 * self.device_block)
        self.ring = AudioRing(max(8 * self.device_block, 4 * self.lead, 8192))
        self._resampler = None
        if self.rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(SAMPLE_RATE, self.rate, 1, dtype="float32", quality="HQ")
        self._running = threading.Event()
        self._gen = threading.Thread(target=self._generate, name="nsynth-generator", daemon=True)
        self._error: BaseException | None = None
        self.first_sound_at: float | None = None  # perf_counter of the first non-zero sample rendered
        try:
            self.stream = sd.OutputStream(
                # blocksize 0: the host API's own period (JACK's buffer size), so every callback
                # is one device period and never two back to back.
                device=device, samplerate=self.rate, blocksize=0, channels=self.channels,
                dtype="float32", callback=self._callback, latency="low",
            )
        except sd.PortAudioError as err:
            raise UserError(f"audio device {self.device_name!r}: cannot open an output stream ({err})") from None
        self._mono = np.zeros(max(self.device_block * 4, 8192), np.float32)
        self._cb_frames = 0

    # ------------------------------------------------------------------ audio thread

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Only copies: the buffer is preallocated for the usual block size.
        mono = self._mono[:frames] if frames <= self._mono.shape[0] else np.zeros(frames, np.float32)
        self._cb_frames = frames  # the device may ask for more than the block we asked for (JACK's period)
        self.ring.read_into(mono)
        outdata[:] = mono[:, None]
        self._wake.set()

    # ------------------------------------------------------------------ generator thread

    def _generate(self) -> None:
        synth = self.synth
        try:
            while self._running.is_set():
                while True:
                    try:
                        synth.apply(self.events.get_nowait())
                    except queue.Empty:
                        break
                if self.ring.fill >= max(self.lead, self._cb_frames):
                    self._waited = True
                    self._late = 0
                    self._wake.wait(timeout=self.block / SAMPLE_RATE / 2)
                    self._wake.clear()
                    continue
                xruns = self.ring.xruns
                if xruns != self._last_xruns:
                    if self._waited:
                        # The generator was ahead and idle, yet playback ran dry: the device pulls
                        # in bigger bursts than we keep ready. Keep one block more ready.
                        self.lead = min(self.lead + self.device_block, self.max_lead)
                    else:
                        self._late += 1
                        if self._late >= 2 and synth.active > 1:
                            # Rendering flat out and late twice running: too many voices for this
                            # machine. Shed the oldest (counted in the status) rather than let
                            # every voice glitch.
                            synth.steal()
                            self._late = 0
                    self._last_xruns = xruns
                    self._waited = False
                audio = synth.render(self.block)
                if self.first_sound_at is None and np.any(audio):
                    self.first_sound_at = time.perf_counter()
                if self._resampler is not None:
                    audio = self._resampler.resample_chunk(audio)
                self._push(audio)
        except BaseException as err:  # surfaced by run()/status; the callback keeps playing silence
            self._error = err

    def _push(self, audio: np.ndarray) -> None:
        while audio.size and self._running.is_set():
            n = self.ring.write(audio)
            audio = audio[n:]
            if audio.size:
                self._wake.wait(timeout=0.01)
                self._wake.clear()

    # ------------------------------------------------------------------ control

    def start(self) -> "Player":
        self._last_xruns = 0
        self._waited = False
        self._late = 0
        self._running.set()
        self._gen.start()
        # Prime the ring so the first callback does not count an xrun.
        deadline = time.time() + 2.0
        while self.ring.fill < self.lead and time.time() < deadline and self._error is None:
            time.sleep(0.001)
        self.stream.start()
        return self

    def stop(self) -> None:
        self._running.clear()
        self._wake.set()
        try:
            self.stream.stop()
            self.stream.close()
        finally:
            self._gen.join(timeout=2)

    def check(self) -> None:
        """Re-raise a failure of the generator thread (as one clear line)."""
        if self._error is not None:
            err = self._error
            raise UserError(f"generator stopped: {type(err).__name__}: {err}") from None

    def status(self) -> PlayerStatus:
        s = self.synth
        return PlayerStatus(
            voices=s.active, xruns=self.ring.xruns, engine=s.engine.name,
            realtime_factor=s.stats.realtime_factor, stolen=s.stats.stolen, rejected=s.stats.rejected,
            device_rate=self.rate,
        )
