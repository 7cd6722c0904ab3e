"""The engine interface both engines implement.

An engine streams many voices of one exported model through the decoder step. It is built for
two callers:

- the realtime host: a generator thread renders blocks of at most ``hop`` samples for all active
  voices together (one :meth:`Engine.render` call per block), adding and removing voices between
  calls without disturbing the others;
- offline rendering: many voices for many blocks (:func:`nsynth_live.host.engines.offline.render_frames`).

Voices live in ``max_voices`` fixed slots (state preallocated once: no allocation per voice).
Rendering and voice changes are serialised by one lock, so a control thread may add or remove
voices while the generator thread renders: the change lands between two blocks.
:meth:`Engine.add_voice` hands out a free slot with zeroed state (silence, as the causal zero
padding of the teacher-forced forward); :meth:`Engine.remove_voice` frees it. Conditioning is
computed once per frame by :meth:`Engine.condition` (``conditioner.onnx``); a render call takes
each voice's current and next frame rows and the sample at which it switches, so blocks need
not be aligned with frames. Sampling is :func:`nsynth_live.sampling.sample_classes` with noise
from :class:`nsynth_live.sampling.NoiseStream`, drawn by the caller: the same seed renders the same
samples on every engine, up to float near-ties.

Engines keep their per-voice rings in the layout of
:class:`nsynth_live.host.engines.ring_state.RingState`, so engine state compares directly with the
PyTorch reference.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from nsynth_live import sampling
from nsynth_live.configs import ModelConfig
from nsynth_live.errors import UserError
from nsynth_live.host.model_files import ExportInfo


class FrontEnd(Protocol):
    """The per-frame graphs of an export: conditioning and encoding (shapes as :class:`Engine`)."""

    def condition(self, embedding: np.ndarray, pitch: Any = None) -> np.ndarray: ...

    def amplitudes(self, embedding: np.ndarray, pitch: Any) -> np.ndarray: ...

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class Engine(ABC):
    """One exported model, ``max_voices`` voice slots, blocks of samples per call.

    The per-frame graphs (encoder, conditioner) run through a front end the concrete engine
    hands in (both engines use :class:`nsynth_live.host.engines.onnx_sessions.OrtFrontEnd`), so
    this interface depends on no runtime.

    Args:
        info: the validated export (:func:`nsynth_live.host.model_files.load_export`).
        max_voices: voice slots (the most voices one render call may run).
        frontend: runs the per-frame graphs (:class:`FrontEnd`).
    """

    name = "engine"

    def __init__(self, info: ExportInfo, max_voices: int, frontend: FrontEnd):
        if isinstance(max_voices, bool) or not isinstance(max_voices, (int, np.integer)) or max_voices < 1:
            raise UserError(f"max_voices must be a positive integer, got {max_voices!r}")
        self.info = info
        self.cfg: ModelConfig = info.config
        # The export's recommended temperature and excitation gain; callers override per render.
        self.decoding: sampling.Decoding = info.decoding
        self.max_voices = int(max_voices)
        self._free = list(range(self.max_voices - 1, -1, -1))  # pop() hands out the lowest slot
        self._active: set[int] = set()
        self._front = frontend
        # Held by render and by voice changes: a control thread may add or remove voices while
        # the generator thread renders; the change then lands between two blocks.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------- voices

    def add_voice(self) -> int:
        """A free slot with zeroed state (a voice starting from silence).

        Raises:
            UserError: every slot is taken.
        """
        with self._lock:
            if not self._free:
                raise UserError(f"all {self.max_voices} voices are in use")
            slot = self._free.pop()
            self._reset(np.array([slot], np.int64))
            self._active.add(slot)
            return slot

    def remove_voice(self, slot: int) -> None:
        """Free ``slot`` (its state is zeroed when it is handed out again)."""
        with self._lock:
            if slot not in self._active:
                raise ValueError(f"voice slot {slot!r} is not active")
            self._active.remove(slot)
            self._free.append(slot)
            self._free.sort(reverse=True)

    @property
    def active_slots(self) -> list[int]:
        """Active slots, ascending."""
        return sorted(self._active)

    @abstractmethod
    def _reset(self, slots: np.ndarray) -> None:
        """Zero the state of ``slots`` (int64 [n])."""

    # ------------------------------------------------------------------------- generation

    @abstractmethod
    def render(
        self,
        slots: Sequence[int] | np.ndarray,
        cond: np.ndarray,
        switch: Sequence[int] | np.ndarray,
        noise: np.ndarray,
        temperature: float | Sequence[float] | np.ndarray = 1.0,
        logits_out: np.ndarray | None = None,
        feed: np.ndarray | None = None,
        exc: np.ndarray | None = None,
    ) -> np.ndarray:
        """Generate the next ``n`` samples of each voice in ``slots`` and advance their state.

        Args:
            slots: [V] distinct active slots.
            cond: float32 [V, 2, C] (C = L*2R + S, a row of :meth:`condition`): each voice's
                current frame (row 0) and next frame (row 1); a block spans at most one boundary.
            switch: int [V]: block-relative sample from which row 1 applies (>= n: never;
                0: from the start).
            noise: float64 [V, n] uniform numbers (:class:`nsynth_live.sampling.NoiseStream`).
            temperature: > 0, one for all voices or [V].
            logits_out: optional float32 [V, n, 256] receiving every step's logits.
            feed: optional int [V, n]: classes fed back instead of the drawn ones (teacher forcing).
            exc: float32 [V, n, E]: each sample's excitation (:func:`voice_excitation`), required
                exactly for models with an excitation (``excitation_harmonics`` or a learned source).

        Returns:
            int64 [V, n]: the drawn mu-law classes.
        """

    def render_fast(self, slots: np.ndarray, cond: np.ndarray, switch: np.ndarray, noise: np.ndarray,
                    temperature: np.ndarray, exc: np.ndarray | None = None) -> np.ndarray:
        """:meth:`render` for a caller that builds well-formed arguments every block (the live
        synth): an engine may skip its checks here. The default runs :meth:`render`.

        Args:
            slots: int64 [V] distinct active slots.
            cond: C-contiguous float32 [V, 2, C].
            switch: int64 [V].
            noise: C-contiguous float64 [V, n].
            temperature: float32 [V], finite and > 0.
            exc: C-contiguous float32 [V, n, 2H] exactly for models with an excitation, else None.

        Returns:
            int64 [V, n], as :meth:`render`.
        """
        return self.render(slots, cond, switch, noise, temperature, exc=exc)

    def check_excitation(self, exc: Any, nv: int, n: int) -> np.ndarray | None:
        """Validate the excitation argument -> float32 [V, n, 2H] or None."""
        e = self.cfg.excitation_channels
        if not e:
            if exc is not None:
                raise ValueError(f"{self.name} engine: this model takes no excitation")
            return None
        if exc is None:
            raise ValueError(f"{self.name} engine: this model needs its excitation [V, n, {e}] per block")
        exc = np.ascontiguousarray(exc, dtype=np.float32)
        if exc.shape != (nv, n, e):
            raise ValueError(f"{self.name} engine: exc must be [{nv}, {n}, {e}], got {exc.shape}")
        return exc

    def check_render_args(self, slots: Any, cond: Any, switch: Any, noise: Any, temperature: Any) -> tuple[np.ndarray, ...]:
        """Validate and normalise render arguments -> (slots int64 [V], cond float32 [V, 2, C],
        switch int64 [V], noise float64 [V, n], temperature float32 [V])."""
        idx = np.asarray(slots, dtype=np.int64).reshape(-1)
        inactive = [int(s) for s in idx if int(s) not in self._active]
        if inactive:
            raise ValueError(f"{self.name} engine: slots {inactive} are not active voices")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"{self.name} engine: a slot appears twice in {idx.tolist()}")
        nv = idx.size
        noise = np.ascontiguousarray(noise, dtype=np.float64)
        if noise.ndim != 2 or noise.shape[0] != nv:
            raise ValueError(f"{self.name} engine: noise must be [{nv}, n], got {noise.shape}")
        c = self.cfg.cond_width
        cond = np.ascontiguousarray(cond, dtype=np.float32)
        if cond.shape != (nv, 2, c):
            raise ValueError(f"{self.name} engine: cond must be [{nv}, 2, {c}], got {cond.shape}")
        switch = np.array(np.broadcast_to(np.asarray(switch, dtype=np.int64), (nv,)))  # writable (numba types)
        temp = np.asarray(temperature, dtype=np.float64)
        if not (np.all(np.isfinite(temp)) and np.all(temp > 0)):
            raise ValueError(f"{self.name} engine: temperature must be finite and > 0, got {temperature!r}")
        temp = np.ascontiguousarray(np.broadcast_to(temp, (nv,)))
        return idx, cond, switch, noise, temp

    # ------------------------------------------------------------------------- per frame

    def condition(self, embedding: np.ndarray, pitch: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Every layer's conditioning per frame (``conditioner.onnx``).

        Args:
            embedding: float32 [B, bottleneck, F].
            pitch: int [B] MIDI notes 0..127 (None for a model without pitch conditioning).

        Returns:
            float32 [B, F, L*2R + S].
        """
        return self._front.condition(embedding, pitch)

    def source_amplitudes(self, embedding: np.ndarray, pitch: np.ndarray | Sequence[int]) -> np.ndarray:
        """The learned source's harmonic amplitudes per frame (``source.onnx``; models with
        ``source_harmonics`` only), from which :func:`nsynth_live.host.engines.offline.source_excitation`
        synthesises the excitation.

        Args:
            embedding: float32 [B, bottleneck, F].
            pitch: int [B] MIDI notes 0..127.

        Returns:
            float32 [B, F, K].
        """
        return self._front.amplitudes(embedding, pitch)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Embedding frames of raw audio (``encoder.onnx``; mu-law happens in the graph).

        Args:
            audio: float32 [B, T] in [-1, 1], T a positive multiple of hop.

        Returns:
            float32 [B, bottleneck, T // hop].
        """
        return self._front.encode(audio)

    def close(self) -> None:
        """Release sessions and threads."""
        self._front.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
