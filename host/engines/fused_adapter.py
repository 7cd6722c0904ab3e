"""The :class:`~nsynth_live.host.engines.interface.Engine` interface over the fused engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsynth_live.errors import UserError
from nsynth_live.host.engines.interface import Engine
from nsynth_live.host.engines.onnx_sessions import OrtFrontEnd
from nsynth_live.host.model_files import ExportInfo, step_weights_from_onnx


class FusedAdapter(Engine):
    """The :class:`Engine` interface over :class:`nsynth_live.host.engines.fused_engine.FusedEngine` (the compiled CPU step).

    Args:
        info: the validated export; weights come from ``decoder_step.onnx``'s initializers.
        max_voices: voice slots.
        threads: worker threads (default: every core this process may run on,
            :func:`~nsynth_live.host.engines.fused_engine.usable_cores`).
    """

    name = "fused"

    def __init__(self, info: ExportInfo, max_voices: int = 16, threads: int | None = None):
        from nsynth_live.host.engines.fused_engine import usable_cores

        self._threads = threads or usable_cores()
        super().__init__(info, max_voices, OrtFrontEnd(info, threads=self._threads, device="cpu"))
        try:
            from nsynth_live.host.engines.fused_engine import FusedEngine
        except ImportError as err:
            raise UserError(f"the fused engine is unavailable here ({err})") from None

        self._cond_front: Any = None
        weights = step_weights_from_onnx(info.decoder_step)
        try:
            self.engine = FusedEngine(self.cfg, weights, max_voices=self.max_voices, threads=self._threads)
        except Exception as err:  # the compiler may fail here (it compiles on first use)
            msg = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise UserError(f"the fused engine failed to start ({type(err).__name__}: {msg})") from None

    def condition(self, embedding: np.ndarray, pitch: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """:meth:`Engine.condition` through a session of its own with one intra-op thread: a live
        host's calls are small (a few frames), and ONNX Runtime's thread pool would spin after
        each one on the cores the compiled step needs (the encoder keeps ``threads``)."""
        return self._frame_front().condition(embedding, pitch)

    def source_amplitudes(self, embedding: np.ndarray, pitch: np.ndarray | Sequence[int]) -> np.ndarray:
        """:meth:`Engine.source_amplitudes` on :meth:`condition`'s one-thread session set."""
        return self._frame_front().amplitudes(embedding, pitch)

    def _frame_front(self) -> OrtFrontEnd:
        """The per-frame graphs' one-thread front end, opened on first use."""
        if self._cond_front is None:
            self._cond_front = OrtFrontEnd(self.info, threads=1, device="cpu")
        return self._cond_front

    def _reset(self, slots: np.ndarray) -> None:
        self.engine.reset(slots)

    def render(self, slots, cond, switch, noise, temperature=1.0, logits_out=None, feed=None, exc=None):  # type: ignore[override]
        with self._lock:
            idx, cond, switch, noise, temp = self.check_render_args(slots, cond, switch, noise, temperature)
            exc = self.check_excitation(exc, idx.size, noise.shape[1])
            return self.engine.generate(idx, cond, switch, noise, temp, logits_out=logits_out, feed=feed, exc=exc)

    def render_fast(self, slots, cond, switch, noise, temperature, exc=None):  # type: ignore[override]
        with self._lock:
            return self.engine.generate_fast(slots, cond, switch, noise, temperature, exc)

    def state(self, slot: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(hist [H, R], x_hist [k], position) of one slot (copies)."""
        e = self.engine
        return e.hist[slot].copy(), e.x_hist[slot].copy(), int(e.t_pos[slot])

    def close(self) -> None:
        self.engine.close()
        self._cond_front = None
        super().close()
