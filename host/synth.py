"""The voice engine of the live host and of ``render-midi``: events in, blocks of audio out.

:class:`Synth` owns the voices. Each voice is one engine slot playing one pitch along a preset
trajectory (:class:`host.trajectory.Cursor`: attack, sustain held while the key is down, release
after note-off). The sound is chosen by the current *timbre*: one preset, a linear mix of two,
or a bilinear blend of four corners at an XY position; blending happens in latent space, frame
by frame, and moving the XY pad or the mix reshapes held notes at their next frame.

:meth:`Synth.render` produces the next ``n <= hop`` samples of all voices in one batched engine
call. It is not thread-safe by itself: the player's generator thread (or the offline renderer)
is its only caller, and controls arrive as events applied between blocks (:meth:`apply`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from host import events as ev
from host.bank import Bank
from host.engine import Engine, voice_excitation
from host.trajectory import Cursor, bilinear, default_regions, mix
from nsynth_live import mulaw, sampling
from nsynth_live.errors import UserError

FADE_SAMPLES = 64  # a stolen or panicked voice fades out over this many samples (4 ms)


@dataclass
class Voice:
    slot: int
    pitch: int
    velocity: int
    cursor: Cursor
    started: int  # synth sample clock at note-on (voice age for stealing)
    frame: int = 0  # the cursor frame being played
    pos: int = 0  # samples played within the current frame
    cond: np.ndarray | None = None  # float32 [C] conditioning of the current frame
    key_down: bool = True
    sustained: bool = False  # key released while the pedal is down
    fade: int = -1  # samples left of a fade-out; -1: none
    seed_id: int = 0
    t: int = 0  # samples played since note-on (the excitation's phase, for models with one)


@dataclass
class SynthStats:
    notes: int = 0
    stolen: int = 0
    rejected: int = 0  # events naming presets or pitches that do not exist
    last_error: str = ""
    render_seconds: float = 0.0
    rendered_samples: int = 0

    @property
    def realtime_factor(self) -> float:
        """Audio seconds produced per second of rendering (>1: faster than real time)."""
        if self.render_seconds <= 0:
            return 0.0
        return self.rendered_samples / 16000.0 / self.render_seconds


class Synth:
    """Voices over an engine and a bank.

    Args:
        engine: an open engine (its ``max_voices`` bounds polyphony).
        bank: presets (validated against the engine's model).
        voices: most voices sounding at once (default: the engine's slots).
        seed: noise seed; every note draws from its own stream, so a note sounds the same
            whatever else plays.
        temperature: sampling temperature.
    """

    def __init__(self, engine: Engine, bank: Bank, voices: int | None = None, seed: int = 0, temperature: float = 1.0):
        bank.check_model(engine.cfg.hop, engine.cfg.bottleneck)
        self.engine = engine
        self.bank = bank
        self.cfg = engine.cfg
        self.hop = self.cfg.hop
        self.max_voices = min(voices or engine.max_voices, engine.max_voices)
        if self.max_voices < 1:
            raise UserError("--voices must be at least 1")
        self.seed = seed
        self.temperature = temperature
        self.gain = 1.0
        self.sustain = False
        self.voices: OrderedDict[int, Voice] = OrderedDict()  # slot -> voice, oldest first
        self.clock = 0
        self.stats = SynthStats()
        self._note_ids = 0
        self._noise: dict[int, np.random.Generator] = {}
        # Timbre: a preset trajectory per frame, [frames, bottleneck].
        self._mode = "preset"
        self._sel: tuple = (0,)
        self._xy = [0.5, 0.5]
        self._timbre = bank.presets[0].embedding
        self._regions = bank.presets[0].regions
        if bank.corners:
            self._corners = tuple(bank.get(n).embedding for n in bank.corners)
        else:
            self._corners = None

    # ------------------------------------------------------------------ controls

    def apply(self, event: ev.Event, strict: bool = False) -> None:
        """Act on one control event. Bad preset names or indices are counted and ignored (a
        live host keeps playing), or raised with ``strict`` (a command line's initial choice)."""
        if strict:
            self._apply(event)
            return
        try:
            self._apply(event)
        except UserError as err:
            self.stats.rejected += 1
            self.stats.last_error = str(err)[:200]

    def _apply(self, e: ev.Event) -> None:
        if isinstance(e, ev.NoteOn):
            self.note_on(e.pitch, e.velocity)
        elif isinstance(e, ev.NoteOff):
            self.note_off(e.pitch)
        elif isinstance(e, ev.Sustain):
            self.sustain = e.on
            if not e.on:
                for v in self.voices.values():
                    if v.sustained:
                        v.sustained = False
                        v.cursor.release()
        elif isinstance(e, ev.SelectPreset):
            p = self.bank.get(e.preset)
            self._mode, self._sel = "preset", (p.name,)
            self._set_timbre(p.embedding)
        elif isinstance(e, ev.Mix):
            a, b = self.bank.get(e.a), self.bank.get(e.b)
            self._mode, self._sel = "mix", (a.name, b.name, e.t)
            self._set_timbre(mix(a.embedding, b.embedding, e.t))
        elif isinstance(e, ev.Corners):
            self._corners = tuple(self.bank.get(k).embedding for k in e.presets)
            self._mode = "xy"
            self._set_timbre(bilinear(self._corners, *self._xy))
        elif isinstance(e, ev.XY):
            if e.x is not None:
                self._xy[0] = e.x
            if e.y is not None:
                self._xy[1] = e.y
            if self._corners is None:
                raise UserError("XY moved but no corner presets are set (send /nsynth/corners first)")
            self._mode = "xy"
            self._set_timbre(bilinear(self._corners, *self._xy))
        elif isinstance(e, ev.Gain):
            self.gain = float(e.gain)
        elif isinstance(e, ev.Panic):
            for v in self.voices.values():
                v.fade = min(v.fade, FADE_SAMPLES) if v.fade >= 0 else FADE_SAMPLES
        elif isinstance(e, ev.AllNotesOff):
            for v in self.voices.values():
                self._release(v)

    def _set_timbre(self, trajectory: np.ndarray) -> None:
        self._timbre = trajectory
        self._regions = default_regions(trajectory, self.hop)

    @property
    def timbre(self) -> np.ndarray:
        """The current trajectory [frames, bottleneck]."""
        return self._timbre

    def note_on(self, pitch: int, velocity: int) -> None:
        if not 0 <= pitch <= 127:
            raise UserError(f"pitch {pitch} outside 0..127")
        if velocity <= 0:
            self.note_off(pitch)
            return
        for v in self.voices.values():  # the same key again: retrigger as a new voice
            if v.pitch == pitch and v.key_down:
                self._release(v)
        if sum(v.fade < 0 for v in self.voices.values()) >= self.max_voices:
            self.steal()
        if len(self.voices) >= self.engine.max_voices:  # no slot even for fading voices
            self._free(next(iter(self.voices.values())))
        slot = self.engine.add_voice()
        self._note_ids += 1
        frames = self._timbre.shape[0]
        voice = Voice(slot, pitch, velocity, Cursor(self._regions, frames), self.clock, seed_id=self._note_ids)
        voice.frame = voice.cursor.next_frame()
        self._noise[slot] = np.random.default_rng([self.seed, self._note_ids])
        self.voices[slot] = voice
        self.stats.notes += 1

    def note_off(self, pitch: int) -> None:
        for v in self.voices.values():
            if v.pitch == pitch and v.key_down:
                v.key_down = False
                if self.sustain:
                    v.sustained = True
                else:
                    v.cursor.release()

    def _release(self, v: Voice) -> None:
        v.key_down = False
        v.sustained = False
        v.cursor.release()

    def steal(self) -> bool:
        """Fade out the oldest voice (released voices first): one voice goes, not all glitch.

        Returns:
            whether a voice was stolen (False: none left that is not already fading).
        """
        live = [v for v in self.voices.values() if v.fade < 0]
        if not live:
            return False
        released = [v for v in live if not v.key_down]
        (released or live)[0].fade = FADE_SAMPLES
        self.stats.stolen += 1
        return True

    def _free(self, v: Voice) -> None:
        self.engine.remove_voice(v.slot)
        self.voices.pop(v.slot, None)
        self._noise.pop(v.slot, None)

    @property
    def active(self) -> int:
        return len(self.voices)

    # ------------------------------------------------------------------ audio

    def _conditions(self, frames: list[tuple[Voice, int]]) -> np.ndarray:
        """Conditioning rows [len(frames), C] for (voice, trajectory frame) pairs, one engine call."""
        emb = np.stack([self._timbre[f] for _, f in frames])[:, :, None]  # [V, bottleneck, 1]
        pitch = np.array([v.pitch for v, _ in frames], np.int64) if self.cfg.pitch_conditioning else None
        return self.engine.condition(emb, pitch)[:, 0]

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` (1..hop) samples of the mix, float32 [n] in [-1, 1].

        Voices whose trajectory ended (after their release) or whose fade-out finished are freed.
        """
        if not 1 <= n <= self.hop:
            raise ValueError(f"block must be 1..{self.hop} samples, got {n}")
        out = np.zeros(n, np.float32)
        if not self.voices:
            self.clock += n
            return out
        t0 = time.perf_counter()
        voices = list(self.voices.values())
        # Row 0: the frame being played; row 1: the next frame if the block crosses into it.
        need = [(v, v.frame) for v in voices if v.cond is None]
        if need:
            for (v, _), row in zip(need, self._conditions(need)):
                v.cond = row
        switch = np.array([self.hop - v.pos if self.hop - v.pos < n else n for v in voices], np.int64)
        crossing = [i for i, v in enumerate(voices) if switch[i] < n]
        nxt: dict[int, int] = {}
        for i in crossing:
            nxt[i] = voices[i].cursor.next_frame()
        c = self.cfg.cond_width
        cond = np.empty((len(voices), 2, c), np.float32)
        for i, v in enumerate(voices):
            cond[i, 0] = v.cond
            cond[i, 1] = v.cond
        if crossing:
            rows = self._conditions([(voices[i], nxt[i]) for i in crossing])
            for i, row in zip(crossing, rows):
                cond[i, 1] = row
        noise = np.stack([self._noise[v.slot].random(n) for v in voices])
        exc = None
        if self.cfg.excitation_harmonics:
            exc = voice_excitation(self.cfg, [v.pitch for v in voices], np.array([v.t for v in voices]), n)
        classes = self.engine.render([v.slot for v in voices], cond, switch, noise, self.temperature, exc=exc)
        audio = mulaw.decode(classes)  # [V, n]
        for i, v in enumerate(voices):
            level = (v.velocity / 127.0) * self.gain
            x = audio[i] * level
            if v.fade >= 0:
                k = min(v.fade, n)
                ramp = np.zeros(n, np.float32)
                ramp[:k] = np.linspace(v.fade / FADE_SAMPLES, max(0.0, (v.fade - k) / FADE_SAMPLES), k, dtype=np.float32)
                x = x * ramp
                v.fade -= k
            out += x
            v.t += n
            if i in nxt:
                v.frame, v.pos, v.cond = nxt[i], n - int(switch[i]), cond[i, 1].copy()
            else:
                v.pos += n
                if v.pos == self.hop:  # the block ended exactly on a frame boundary
                    v.frame, v.pos, v.cond = v.cursor.next_frame(), 0, None
        for v in voices:
            if v.fade == 0:
                self._free(v)
            elif v.cursor.finished and not v.key_down and v.fade < 0:
                v.fade = FADE_SAMPLES  # the release frames are over: end without a click
        self.clock += n
        self.stats.render_seconds += time.perf_counter() - t0
        self.stats.rendered_samples += n
        # A soft limiter: transparent at normal levels, no harsh clipping when many voices add up.
        return np.tanh(out).astype(np.float32)
