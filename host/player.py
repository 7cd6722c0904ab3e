"""The realtime host: control threads -> event queue -> generator thread -> ring -> sounddevice.

Threads:

- the sounddevice callback only copies finished samples out of an :class:`~host.ring.AudioRing`
  (no allocation, no locks, never raises); on underrun it plays silence and counts an xrun. It
  notes the time it ran, which is the clock the generator renders by;
- the generator thread renders just in time (:class:`Pacer`): it sleeps until the last moment
  from which rendering what the device's next callback needs (one period, plus a safety margin
  of time) still finishes before that callback, applies the queued events, then renders all
  voices in one batched engine call per block. A note therefore waits for at most one device
  period plus one render, not behind audio rendered ahead (under heavy load the ring keeps a
  block or two in reserve, see :class:`Pacer`). When the device does not run at 16 kHz, a soxr
  stream resamples each block before it enters the ring;
- MIDI (rtmidi's thread) and OSC (:class:`host.osc_server.OscServer`) only parse and enqueue;
  an event wakes the generator, which applies it at once (the note's setup then is not part of
  the next render), unless it comes too late for the block the next callback needs: then that
  block is rendered without it first.

When rendering cannot keep up (the ring runs dry while the generator renders flat out), the
oldest voice is stolen rather than every voice glitching, and the theft is counted in the status.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsynth_live.host import events as ev
from nsynth_live.host.ring import AudioRing
from nsynth_live.host.synth import Synth
from nsynth_live import SAMPLE_RATE
from nsynth_live.errors import BadValue, UserError


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


class Pacer:
    """When the generator renders: just in time for the device's next callback.

    The callback reports when it ran and how many frames it took (:meth:`callback`); callbacks
    come once per device period, so the next one is due a period after the last. Before it, the
    ring must hold ``need`` samples (the callback's frames, or ``lead`` if larger). The render of
    the missing samples starts ``estimate + margin`` before that moment, where ``estimate`` is
    what the blocks cost (measured per voice, the worst block of the last ``HISTORY_S`` seconds,
    times the voices now sounding: a chord does not have to make one late block first to be
    accounted for) and ``margin`` absorbs the scheduler's wake-up jitter.

    Under heavy load the ring keeps blocks in reserve: one when the estimate and margin pass
    ``HEAVY[0]`` of a period, two past ``HEAVY[1]``. A block that runs long (the machine is
    shared: another thread, another process, the hypervisor) then eats into the reserve instead
    of making an xrun, and the blocks after it, each faster than real time, fill it again. It
    adds latency only while the load lasts. After an xrun the margin grows by ``MARGIN_STEP``
    (under heavy load, or beyond half a period, the lead grows by a block instead): timing that
    was too tight once is not tried again; both shrink back one step after ``RELAX_S`` without
    an xrun.

    Times are seconds of ``time.perf_counter``; sizes are samples at the device rate.

    Args:
        rate: device sample rate.
        block: device samples one render adds to the ring.
        lead: samples the ring holds at least when a callback comes (>= 1).
        max_lead: most ``lead`` may grow to.
        margin: initial safety margin (s).
    """

    HISTORY_S = 2.0
    HEAVY = (0.5, 0.75)
    MARGIN_STEP = 0.001
    RELAX_S = 10.0
    PRIOR_PER_VOICE = 0.25  # of a period per voice, until blocks have been measured
    SLOW = 0.25

    def __init__(self, rate: int, block: int, lead: int, max_lead: int, margin: float = 0.003):
        self.rate = rate
        self.block = block
        self.lead = self.base_lead = lead
        self.max_lead = max(max_lead, lead)
        self.margin = self.base_margin = margin
        self.last_callback: float | None = None  # written by the audio callback
        self.frames = 0  # frames the last callback took (the device period)
        # (when, seconds per block per voice) and (when, seconds per block without voices).
        self._per_voice: deque[tuple[float, float]] = deque()
        self._base: deque[tuple[float, float]] = deque()
        self._worst_per_voice = 0.0
        self._worst_base = 0.0
        self._relax_at = math.inf

    # -- audio thread

    def callback(self, now: float, frames: int) -> None:
        """The device took ``frames`` samples at ``now`` (a few float operations: callback-safe).

        Callbacks come on the device's grid of periods; one that runs late (its thread waited
        for the GIL or the scheduler) is taken to have come on the grid, so that it does not
        push the next render late too. The grid may still move later by a hundredth of a period
        per callback, which follows a device clock slower than ours.
        """
        if self.last_callback is not None and frames == self.frames:
            expected = self.last_callback + frames / self.rate
            if now > expected:
                now = min(now, expected + 0.01 * frames / self.rate)
        self.frames = frames
        self.last_callback = now

    # -- generator thread

    @property
    def period(self) -> float:
        """Seconds between callbacks (one block's worth until the first callback)."""
        return (self.frames or self.block) / self.rate

    def rendered(self, now: float, seconds: float, voices: int) -> None:
        """Record that one block of ``voices`` voices, finished at ``now``, took ``seconds``."""
        history = self._per_voice if voices else self._base
        history.append((now, seconds / voices if voices else seconds))
        while history[0][0] < now - self.HISTORY_S and len(history) > 1:
            history.popleft()
        worst = max(s for _, s in history)  # once per block, not per question
        if voices:
            self._worst_per_voice = worst
        else:
            self._worst_base = worst

    def estimate(self, voices: int) -> float:
        """Seconds one block of ``voices`` voices is expected to take (a pessimistic figure: the
        worst recent block, plus ``SLOW`` of it for one slower still)."""
        if not voices:
            return self._worst_base * (1 + self.SLOW)
        per_voice = self._worst_per_voice if self._per_voice else self.PRIOR_PER_VOICE * self.period
        return per_voice * voices * (1 + self.SLOW)

    def reserve(self, voices: int) -> int:
        """Blocks kept in reserve for ``voices`` voices (0 at light load)."""
        load = (self.estimate(voices) + self.margin) / self.period
        return sum(load > h for h in self.HEAVY)

    def need(self, voices: int) -> int:
        """Samples the ring must hold when the next callback comes."""
        return max(self.lead, self.frames) + self.reserve(voices) * self.block

    def start_at(self, now: float, fill: int, voices: int) -> float:
        """When to start rendering the next block: <= now for at once, ``inf`` when the ring already
        holds what the next callback needs (the generator then waits for that callback)."""
        need = self.need(voices)
        if fill >= need:
            return math.inf
        if self.last_callback is None:
            return now  # not playing yet: fill the ring
        due = self.last_callback + self.period
        if due < now:  # the callback is late (or the device stopped): whatever is missing, now
            return now
        blocks = -(-(need - fill) // self.block)
        return due - blocks * self.estimate(voices) - self.margin

    def too_late(self, now: float, fill: int, voices: int) -> bool:
        """Whether the block the next callback still needs can no longer be rendered with
        ``voices`` voices before it is due (``fill``: samples in the ring now)."""
        if self.last_callback is None or fill >= self.frames:
            return False
        due = self.last_callback + self.period
        blocks = -(-(self.frames - fill) // self.block)
        return now + blocks * self.estimate(voices) + self.margin > due

    def xrun(self, now: float, voices: int) -> None:
        """The ring ran dry although the generator kept to its schedule: loosen the timing."""
        if not self.reserve(voices) and self.margin + self.MARGIN_STEP <= self.period / 2:
            self.margin += self.MARGIN_STEP
        else:
            self.lead = min(self.lead + self.block, self.max_lead)
        self._relax_at = now + self.RELAX_S

    def relax(self, now: float) -> None:
        """After ``RELAX_S`` without an xrun, take one step of the loosening back."""
        if now < self._relax_at:
            return
        if self.lead > self.base_lead:
            self.lead = max(self.lead - self.block, self.base_lead)
        elif self.margin > self.base_margin:
            self.margin = max(self.margin - self.MARGIN_STEP, self.base_margin)
        self._relax_at = now + self.RELAX_S if (self.lead > self.base_lead or self.margin > self.base_margin) else math.inf


class Player:
    """Runs a :class:`Synth` against an output device.

    Args:
        synth: the voices.
        device: sounddevice output device (name substring or index; None: the default).
        block: samples per render call at 16 kHz (1..hop). The device runs at its own period
            (JACK's buffer size, for instance).
        lead: samples the ring holds at least when a callback comes, at the device rate (default:
            the device's period, known at the first callback). Rendering happens just in time to
            keep it (:class:`Pacer`); the smaller, the lower the latency from a key to its sound.
            It grows by a block on an xrun under heavy load, or when xruns persist although the
            timing margin has grown to half a period (a device that pulls in bigger bursts), up
            to 16 blocks, and shrinks back after 10 s without one.
        channels: output channels (the mono mix is copied to each).
    """

    def __init__(self, synth: Synth, device: Any = None, block: int = 256, lead: int | None = None, channels: int = 2):
        import sounddevice as sd

        if not 1 <= block <= synth.hop:
            raise BadValue("block", block, f"must be 1..{synth.hop} samples")
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
        lead = lead or self.device_block
        self.pacer = Pacer(self.rate, self.device_block, lead, max(lead, 16 * self.device_block))
        self.ring = AudioRing(max(8 * self.device_block, 4 * self.pacer.max_lead, 8192))
        self._resampler = None
        if self.rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(SAMPLE_RATE, self.rate, 1, dtype="float32", quality="HQ")
        self._running = threading.Event()
        self._gen = threading.Thread(target=self._generate, name="nsynth-generator", daemon=True)
        self._error: BaseException | None = None
        self._late = 0
        self._pending: list[ev.Event] = []  # taken from the queue, not applied yet (see _apply_events)
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

    @property
    def lead(self) -> int:
        """Samples the ring holds at least when a callback comes (adapts; see :class:`Pacer`)."""
        return self.pacer.lead

    # ------------------------------------------------------------------ audio thread

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Only copies: the buffer is preallocated for the usual block size. The device may ask
        # for more than the block we asked for (JACK's period): the pacer learns it here.
        self.pacer.callback(time.perf_counter(), frames)
        mono = self._mono[:frames] if frames <= self._mono.shape[0] else np.zeros(frames, np.float32)
        self.ring.read_into(mono)
        outdata[:] = mono[:, None]
        self._wake.set()

    # ------------------------------------------------------------------ generator thread

    def _apply_events(self, now: float) -> None:
        """Apply the queued events, unless they would make the next callback run dry.

        A chord that arrives just before a callback is due, with too little time left to render
        the block that callback needs with the new voices, waits for the next block: the ring
        gets the block without them first (as just-in-time rendering would have had it ready had
        it not been so lean), and they start a period later instead of an xrun.
        """
        while True:
            try:
                self._pending.append(self.events.get_nowait())
            except queue.Empty:
                break
        if not self._pending:
            return
        if self.pacer.too_late(now, self.ring.fill, self.synth.active + sum(isinstance(e, ev.NoteOn) for e in self._pending)):
            return
        for event in self._pending:
            self.synth.apply(event)
        self._pending.clear()

    def _generate(self) -> None:
        synth, pacer, ring = self.synth, self.pacer, self.ring
        seen_xruns = ring.xruns
        waited = True  # the generator waited for its start time since its last render
        slack = True  # ... and before that render (it was not rendering back to back)
        try:
            while self._running.is_set():
                # Cleared before looking at the clocks, so a callback or an event that comes
                # while we decide still wakes the wait below.
                self._wake.clear()
                now = time.perf_counter()
                self._apply_events(now)
                if ring.xruns != seen_xruns:
                    seen_xruns = ring.xruns
                    if waited or slack:
                        # On schedule, yet playback ran dry: the timing was too tight (a late
                        # wake-up, a slow block, a device that pulls early). Loosen it.
                        pacer.xrun(now, synth.active)
                    else:
                        self._late += 1
                        if self._late >= 2 and synth.active > 1:
                            # Rendering back to back and late twice running: too many voices for
                            # this machine. Shed the oldest (counted in the status) rather than
                            # let every voice glitch.
                            synth.steal()
                            self._late = 0
                else:
                    pacer.relax(now)
                start = pacer.start_at(now, ring.fill, synth.active)
                if start > now:
                    if start == math.inf:
                        self._late = 0  # caught up: the ring holds what the next callback needs
                    # Until the start time, the next callback or an event, whichever comes first.
                    self._wake.wait(min(start - now, pacer.period))
                    waited = True
                    continue
                slack, waited = waited, False
                voices = synth.active
                t0 = time.perf_counter()
                audio = synth.render(self.block)
                done = time.perf_counter()
                pacer.rendered(done, done - t0, voices)
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
        # One-time work (the conditioner's session) now rather than at the first note.
        self.synth.prepare()
        # A thread waiting for the GIL (the audio callback) gets it within 0.5 ms rather than
        # Python's default 5 ms: the callback's clock is the one the generator renders by.
        sys.setswitchinterval(0.0005)
        self._running.set()
        self._gen.start()
        # Prime the ring so the first callback does not count an xrun.
        deadline = time.time() + 2.0
        while self.ring.fill < self.pacer.need(0) and time.time() < deadline and self._error is None:
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
