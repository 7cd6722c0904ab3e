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
from dataclasses import dataclass

import numpy as np

from nsynth_live.host import events as ev
from nsynth_live.host.bank import Bank
from nsynth_live.excitation import free_phase
from nsynth_live.host.engines import Engine, voice_excitation
from nsynth_live.host.engines.block_source import glide, rows_source
from nsynth_live.host.trajectory import Cursor, bilinear_presets, default_regions, mix_presets
from nsynth_live.harmonics import at_pitch
from nsynth_live.noise import BANDS, NoiseVoice, note_rng
from nsynth_live import mulaw, sampling
from nsynth_live.errors import UserError
from nsynth_live.residual import add_source

FADE_SAMPLES = 64  # a stolen or panicked voice fades out over this many samples (4 ms)
NOISE_CHUNK = 4096  # noise drawn per voice at a time (one generator call per 16 blocks of 256)
COND_WINDOW = 8  # trajectory frames conditioned per cache miss (around the missing one)
COND_PITCHES = 32  # pitches whose conditioning the cache keeps (least recently used go first)
DECODE = mulaw.decode(np.arange(mulaw.N_CLASSES))  # float32 [256]: class -> sample, as mulaw.decode
NO_NOISE = np.zeros(BANDS, np.float32)  # the bands of a timbre without measured noise


def velocity_gain(velocity: int) -> float:
    """Linear level of a note of MIDI ``velocity`` (1..127): the host's and render-bank's one rule."""
    return velocity / 127.0


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
    target: int | None = None  # a learned source's amplitudes glide from `frame`'s towards this frame's
    noise: NoiseVoice | None = None  # a residual-form note's measured noise (the timbre's noise bands)


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


class CondCache:
    """Conditioning rows of the current timbre, per (pitch, trajectory frame), kept until it changes.

    The conditioner (``Engine.condition``) is a per-frame projection of (embedding frame, pitch),
    so a held note revisiting its sustain frames, or a second note at the same pitch, needs no
    new call: rows are computed once, ``COND_WINDOW`` frames around each miss at a time (a voice
    moves frame by frame, forwards or, in its sustain ping-pong, backwards), all misses of a
    block in one engine call, and are the engine's own output, bit for bit. Filled rows are never
    written again, so a voice may hold a view of one across a timbre change.

    A model with a learned source also keeps its harmonic amplitudes per (pitch, frame): the
    timbre's measured harmonics played at that pitch when it has them
    (:func:`nsynth_live.harmonics.at_pitch`), else its source network's
    (:meth:`Engine.source_amplitudes`), computed with the same misses.

    Args:
        engine: computes the rows.
        pitch_conditioning: whether the model takes a pitch (else every pitch shares key 0).
    """

    def __init__(self, engine: Engine, pitch_conditioning: bool):
        self.engine = engine
        self.pitched = pitch_conditioning
        self.width = engine.cfg.cond_width
        self.harmonics = engine.cfg.source_harmonics
        self.calls = 0  # engine calls made (for tests and profiling)
        self.trajectory = np.zeros((1, engine.cfg.bottleneck), np.float32)
        self.measured: np.ndarray | None = None  # [frames, K'] the timbre's measured harmonics
        # key -> ([F, C] rows, [F, K] amplitudes or None, filled [F])
        self._rows: OrderedDict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = OrderedDict()

    def reset(self, trajectory: np.ndarray, harmonics: np.ndarray | None = None) -> None:
        """A new timbre, float32 [frames, bottleneck] (and its measured harmonics [frames, K'] or
        None): forget every row."""
        self.trajectory = trajectory
        self.measured = harmonics
        self._rows = OrderedDict()

    def _key(self, pitch: int) -> int:
        return pitch if self.pitched else 0

    def row(self, pitch: int, frame: int) -> np.ndarray:
        """The row of ``(pitch, frame)``, float32 [C] (a view into the cache: never write to it),
        made ready by :meth:`ensure`."""
        return self._rows[self._key(pitch)][0][frame]

    def amplitudes(self, pitch: int, frame: int) -> np.ndarray:
        """The learned source's amplitudes of ``(pitch, frame)``, float32 [K] (a view, as :meth:`row`)."""
        return self._rows[self._key(pitch)][1][frame]

    def ensure(self, wanted: list[tuple[int, int]]) -> None:
        """Compute the missing rows among ``(pitch, frame)`` pairs, in one engine call."""
        frames = self.trajectory.shape[0]
        misses: dict[tuple[int, int], None] = {}
        for pitch, frame in wanted:
            key = self._key(pitch)
            entry = self._rows.get(key)
            if entry is None:
                amps = np.empty((frames, self.harmonics), np.float32) if self.harmonics else None
                entry = self._rows[key] = (np.empty((frames, self.width), np.float32), amps, np.zeros(frames, bool))
            else:
                self._rows.move_to_end(key)
            if not entry[2][frame]:
                misses[(key, frame)] = None
        if not misses:
            return
        w = min(COND_WINDOW, frames)
        starts = [min(max(f - w // 2, 0), frames - w) for _, f in misses]
        emb = np.stack([self.trajectory[s : s + w].T for s in starts])  # [B, bottleneck, w]
        pitch = np.array([k for k, _ in misses], np.int64) if self.pitched else None
        cond = self.engine.condition(emb, pitch)  # [B, w, C]
        amps = None
        if self.harmonics and self.measured is not None:
            amps = at_pitch(np.stack([self.measured[s : s + w] for s in starts]), pitch, self.harmonics)
        elif self.harmonics:
            amps = self.engine.source_amplitudes(emb, pitch)  # [B, w, K]
        self.calls += 1
        for j, ((key, _), s) in enumerate(zip(misses, starts)):
            table, amp_table, filled = self._rows[key]
            todo = ~filled[s : s + w]
            table[s : s + w][todo] = cond[j][todo]
            if amp_table is not None:
                amp_table[s : s + w][todo] = amps[j][todo]
            filled[s : s + w] = True
        while len(self._rows) > COND_PITCHES:  # the least recently used pitch (not needed now)
            key = next(iter(self._rows))
            if any(self._key(p) == key for p, _ in wanted):
                break
            self._rows.popitem(last=False)


class Synth:
    """Voices over an engine and a bank.

    Args:
        engine: an open engine (its ``max_voices`` bounds polyphony).
        bank: presets (validated against the engine's model).
        voices: most voices sounding at once (default: the engine's slots).
        seed: noise seed; every note draws from its own stream, so a note sounds the same
            whatever else plays.
        temperature: sampling temperature; None: the export's recommended one.
        excitation_gain: factor on the excitation (models with one); None: the export's
            recommended one. Both may change between blocks (attributes of the same names).
        output_gain: the render's one level gain (:mod:`nsynth_live.level`), on top of the
            velocity and ``/nsynth/gain`` gains.
    """

    def __init__(self, engine: Engine, bank: Bank, voices: int | None = None, seed: int = 0,
                 temperature: float | None = None, excitation_gain: float | None = None, output_gain: float = 1.0):
        bank.check_model(engine.cfg.hop, engine.cfg.bottleneck)
        self.engine = engine
        self.bank = bank
        self.cfg = engine.cfg
        self.hop = self.cfg.hop
        self.max_voices = min(voices or engine.max_voices, engine.max_voices)
        if self.max_voices < 1:
            raise UserError("--voices must be at least 1")
        self.seed = seed
        decoding = engine.decoding.override(temperature, excitation_gain)
        self.temperature = decoding.temperature
        self.excitation_gain = decoding.excitation_gain
        self.gain = 1.0
        self.output_gain = float(output_gain)
        self.sustain = False
        self.voices: OrderedDict[int, Voice] = OrderedDict()  # slot -> voice, oldest first
        self.clock = 0
        self.stats = SynthStats()
        self._note_ids = 0
        self._noise: dict[int, np.random.Generator] = {}
        # Timbre: a preset trajectory per frame, [frames, bottleneck].
        self._mode = "preset"
        self._sel: tuple = (bank.presets[0].name,)
        self._xy = [0.5, 0.5]
        self._cond = CondCache(engine, self.cfg.pitch_conditioning)
        first = bank.presets[0]
        self._set_timbre(first.embedding, first.regions or None, first.harmonics, first.noise)
        # The XY pad's four corner presets (their names: corner_names), or None.
        self._corners: tuple | None = tuple(bank.get(n) for n in bank.corners) if bank.corners else None
        self.corner_names: tuple[str, ...] | None = tuple(bank.corners) if bank.corners else None
        # Per-block buffers, allocated once for every slot (flat, so that the first V rows of
        # any shape are one contiguous array for the engine).
        slots, c = engine.max_voices, self.cfg.cond_width
        self._cond_buf = np.empty(slots * 2 * c, np.float32)  # -> [V, 2, C]
        self._noise_buf = np.empty(slots * self.hop, np.float64)  # -> [V, n]
        self._switch = np.empty(slots, np.int64)
        self._slots = np.empty(slots, np.int64)
        self._levels = np.empty(slots, np.float32)
        self._temps = np.empty(slots, np.float32)
        k = self.cfg.source_harmonics
        self._amp_rows = np.empty(slots * 4 * k, np.float32)  # -> [V, 4, K] (a learned source's rows)
        self._pos = np.empty(slots, np.int64)
        self._t = np.empty(slots, np.int64)
        self._pitches = np.empty(slots, np.int64)
        self._temp_value: float | None = None
        # Noise drawn NOISE_CHUNK numbers per voice at a time: the same stream as drawing per block.
        self._noise_chunk = np.empty((slots, NOISE_CHUNK), np.float64)
        self._noise_pos = np.zeros(slots, np.int64)

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
            # The bank's stored regions, as render-bank uses them (they may be hand-edited);
            # blends below have none stored and find theirs from their own frames.
            self._set_timbre(p.embedding, p.regions or None, p.harmonics, p.noise)
        elif isinstance(e, ev.Mix):
            a, b = self.bank.get(e.a), self.bank.get(e.b)
            self._mode, self._sel = "mix", (a.name, b.name, e.t)
            emb, harmonics, noise = mix_presets(a, b, e.t)
            self._set_timbre(emb, harmonics=harmonics, noise=noise)
        elif isinstance(e, ev.Corners):
            picked = [self.bank.get(k) for k in e.presets]
            self._corners = tuple(picked)
            self.corner_names = tuple(p.name for p in picked)
            self._mode = "xy"
            self._set_xy_timbre()
        elif isinstance(e, ev.XY):
            if e.x is not None:
                self._xy[0] = e.x
            if e.y is not None:
                self._xy[1] = e.y
            if self._corners is None:
                raise UserError("XY moved but no corner presets are set (send /nsynth/corners first)")
            self._mode = "xy"
            self._set_xy_timbre()
        elif isinstance(e, ev.Gain):
            self.gain = float(e.gain)
        elif isinstance(e, ev.Temperature):
            self.temperature = float(e.temperature)
        elif isinstance(e, ev.ExcitationGain):
            self.excitation_gain = float(e.gain)
        elif isinstance(e, ev.Panic):
            for v in self.voices.values():
                v.fade = min(v.fade, FADE_SAMPLES) if v.fade >= 0 else FADE_SAMPLES
        elif isinstance(e, ev.AllNotesOff):
            for v in self.voices.values():
                self._release(v)

    def controls(self) -> dict:
        """The control state as plain values, for status pages (read from any thread: each value
        is replaced whole by the generator thread, so a reader sees it before or after a change).

        Returns:
            mode ("preset", "mix" or "xy"), selection (the preset name; the mix's a, b, t; or
            empty), xy [x, y], corners (four preset names or None), gain, temperature,
            excitation_gain.
        """
        sel = self._sel if self._mode != "xy" else ()
        return {"mode": self._mode, "selection": list(sel), "xy": [float(self._xy[0]), float(self._xy[1])],
                "corners": list(self.corner_names) if self.corner_names else None, "gain": float(self.gain),
                "temperature": float(self.temperature), "excitation_gain": float(self.excitation_gain)}

    def _set_timbre(self, trajectory: np.ndarray, regions: dict[str, int] | None = None,
                    harmonics: np.ndarray | None = None, noise: np.ndarray | None = None) -> None:
        self._timbre = trajectory
        self._regions = default_regions(trajectory, self.hop) if regions is None else regions
        self._cond.reset(trajectory, harmonics)
        # A residual-form model's notes add the timbre's measured noise (nsynth_live.noise).
        self._timbre_noise = noise if self.cfg.source_residual else None

    def _set_xy_timbre(self) -> None:
        """The corners blended at the pad's position: embeddings, and harmonics and noise where all four have them."""
        emb, harmonics, noise = bilinear_presets(self._corners, *self._xy)
        self._set_timbre(emb, harmonics=harmonics, noise=noise)

    def prepare(self) -> None:
        """Do the one-time work (opening the conditioner, importing the excitation) now, not at the
        first note of a live set."""
        self._cond.ensure([(60, 0)])
        if self.cfg.excitation_harmonics:
            voice_excitation(self.cfg, [60], np.zeros(1), 1)
        elif self.cfg.source_harmonics:
            z = np.zeros((1, 1), np.int32)  # also loads (builds, on a first run) the native source kernel
            rows_source(np.zeros((1, 1, self.cfg.source_harmonics), np.float32), z, z, np.zeros((1, 1), np.float32),
                        np.zeros((1, 1)))

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
        if self.cfg.source_residual:  # always: a timbre with noise may come while the note sounds
            voice.noise = NoiseVoice(note_rng(self.seed, self._note_ids))
        self._noise[slot] = rng = np.random.default_rng([self.seed, self._note_ids])
        rng.random(out=self._noise_chunk[slot])
        self._noise_pos[slot] = 0
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

    def _draw_noise(self, slot: int, out: np.ndarray) -> None:
        """The next ``len(out)`` numbers of the voice's noise stream into ``out`` (float64 [n])."""
        n, pos = out.shape[0], int(self._noise_pos[slot])
        chunk = self._noise_chunk[slot]
        first = min(n, NOISE_CHUNK - pos)
        out[:first] = chunk[pos : pos + first]
        if first < n:  # the chunk ran out: draw the next one (n <= hop < NOISE_CHUNK)
            self._noise[slot].random(out=chunk)
            out[first:] = chunk[: n - first]
            self._noise_pos[slot] = n - first
        else:
            self._noise_pos[slot] = pos + n

    def _source_block(self, voices: list[Voice], nxt: dict[int, int], after: dict[int, int], switch: np.ndarray,
                      n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A learned source's excitation for this block, float32 [V, n, 2]: each voice's
        amplitudes glide from its frame's towards the frame after it, as in training (towards the
        cursor's next frame as it stands; a release meanwhile makes the glide end early). Second:
        for a residual-form model the source at its own level [V, n], which its notes add to the
        sampled residual (:mod:`nsynth_live.residual`); else None."""
        nv, k = len(voices), self.cfg.source_harmonics
        rows = self._amp_rows[: nv * 4 * k].reshape(nv, 4, k)
        pos, t, pitch = self._pos[:nv], self._t[:nv], self._pitches[:nv]
        amp = self._cond.amplitudes
        for i, v in enumerate(voices):
            rows[i, 0] = amp(v.pitch, v.frame)
            rows[i, 1] = amp(v.pitch, v.target)
            if i in nxt:
                rows[i, 2] = amp(v.pitch, nxt[i])
                rows[i, 3] = amp(v.pitch, after[i])
            pos[i], t[i], pitch[i] = v.pos, v.t, v.pitch
        ia, ib, w = glide(pos, switch, n, self.hop)
        phase = free_phase(pitch, n, t)
        return rows_source(rows, ia, ib, w, phase, self.excitation_gain, with_level=bool(self.cfg.source_residual))

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` (1..hop) samples of the mix, float32 [n] in [-1, 1].

        Voices whose trajectory ended (after their release) or whose fade-out finished are freed.
        """
        if not 1 <= n <= self.hop:
            raise ValueError(f"block must be 1..{self.hop} samples, got {n}")
        if not self.voices:
            self.clock += n
            return np.zeros(n, np.float32)
        t0 = time.perf_counter()
        if self.temperature != self._temp_value:  # validated once per value, not per block
            sampling.check_temperature(self.temperature)
            self._temps.fill(self.temperature)
            self._temp_value = self.temperature
        voices = list(self.voices.values())
        nv, hop, c = len(voices), self.hop, self.cfg.cond_width
        # Row 0: the frame being played; row 1: the next frame if the block crosses into it
        # (sample `switch` of the block on), else row 0 again.
        nxt: dict[int, int] = {}
        for i, v in enumerate(voices):
            if hop - v.pos < n:
                nxt[i] = v.cursor.next_frame()
        wanted = [(v.pitch, v.frame) for v in voices if v.cond is None]
        wanted += [(voices[i].pitch, f) for i, f in nxt.items()]
        after: dict[int, int] = {}  # a learned source: the frame after the next one, per crossing voice
        if self.cfg.source_harmonics:
            for v in voices:
                if v.target is None:
                    v.target = v.cursor.peek()
            after = {i: voices[i].cursor.peek() for i in nxt}
            # Every row the block reads (a held cond row's amplitudes too: a timbre change empties the cache).
            wanted += [(v.pitch, f) for v in voices for f in (v.frame, v.target)]
            wanted += [(voices[i].pitch, f) for i, f in after.items()]
        if wanted:
            self._cond.ensure(wanted)  # one conditioner call at most, usually none
        cond = self._cond_buf[: nv * 2 * c].reshape(nv, 2, c)
        noise = self._noise_buf[: nv * n].reshape(nv, n)
        switch = self._switch[:nv]
        slots = self._slots[:nv]
        for i, v in enumerate(voices):
            if v.cond is None:
                v.cond = self._cond.row(v.pitch, v.frame)
            slots[i] = v.slot
            cond[i, 0] = v.cond
            if i in nxt:
                cond[i, 1] = self._cond.row(v.pitch, nxt[i])
                switch[i] = hop - v.pos
            else:
                cond[i, 1] = v.cond
                switch[i] = n
            self._draw_noise(v.slot, noise[i])
            self._levels[i] = velocity_gain(v.velocity) * self.gain * self.output_gain
        exc = level = None
        if self.cfg.excitation_harmonics:
            exc = voice_excitation(self.cfg, [v.pitch for v in voices], np.array([v.t for v in voices]), n,
                                   self.excitation_gain)
        elif self.cfg.source_harmonics:
            exc, level = self._source_block(voices, nxt, after, switch, n)
        # Every argument is well formed by construction: skip the engine's checks (fast path).
        classes = self.engine.render_fast(slots, cond, switch, noise, self._temps[:nv], exc=exc)
        audio = DECODE[classes]  # float32 [V, n]
        if level is not None:
            bands = self._timbre_noise
            for i, v in enumerate(voices):  # each voice's noise, its frame's bands (the next one's after `switch`)
                if v.noise is None:
                    continue
                if bands is None:  # a timbre without noise: the voice's last segments ring out, then silence
                    level[i] += v.noise.render(n, lambda j: NO_NOISE)
                    continue
                now, then, sw = bands[v.frame], bands[nxt[i]] if i in nxt else None, int(switch[i])
                level[i] += v.noise.render(n, lambda j: now if then is None or j < sw else then)
            audio = add_source(audio, level)
        audio *= self._levels[:nv, None]
        for i, v in enumerate(voices):
            if v.fade >= 0:
                k = min(v.fade, n)
                ramp = np.zeros(n, np.float32)
                ramp[:k] = np.linspace(v.fade / FADE_SAMPLES, max(0.0, (v.fade - k) / FADE_SAMPLES), k, dtype=np.float32)
                audio[i] *= ramp
                v.fade -= k
            v.t += n
            if i in nxt:
                v.frame, v.pos, v.cond = nxt[i], n - int(switch[i]), self._cond.row(v.pitch, nxt[i])
                v.target = after.get(i)
            else:
                v.pos += n
                if v.pos == hop:  # the block ended exactly on a frame boundary
                    v.frame, v.pos, v.cond, v.target = v.cursor.next_frame(), 0, None, None
        out = audio.sum(0, dtype=np.float32) if nv > 1 else audio[0]
        for v in voices:
            if v.fade == 0:
                self._free(v)
            elif v.cursor.finished and not v.key_down and v.fade < 0:
                v.fade = FADE_SAMPLES  # the release frames are over: end without a click
        self.clock += n
        self.stats.render_seconds += time.perf_counter() - t0
        self.stats.rendered_samples += n
        # A soft limiter: transparent at normal levels, no harsh clipping when many voices add up.
        return np.tanh(out)
