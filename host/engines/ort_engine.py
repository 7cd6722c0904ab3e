"""The ``ort`` engine: the exported graphs through ONNX Runtime (CUDA when usable, else CPU).

The decoder step runs once per sample for all voices of a block, through IO binding: every
buffer is preallocated for ``max_voices`` voices and bound by pointer once per batch size
(rebound only when the number of voices in a call changes), so a step allocates nothing big.
The rings stay outside the step graph, which measured fastest (docs/benchmarks.md) (only the gathered taps
go in and the new columns come out), but on the device: two one-node helper graphs gather the
taps from the ring and scatter the new columns into it in place (:func:`ring_models`), so on CUDA
only the k last inputs and the ring row indices go up and the logits come down each step. The
ring layout and index tables are :class:`nsynth_live.host.engines.ring_state.RingState`'s (RingCache's). The same code
runs on the CPU provider, where the device buffers are host memory and the ring is
``RingState.hist`` itself.

Not verified on a GPU (none was available to the author): the CUDA path is this same code with
``device_type="cuda"``; ScatterND's in-place write (output bound to its input's buffer) was checked
on the CPU provider only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nsynth_live import mulaw, sampling
from nsynth_live.configs import N_CLASSES
from nsynth_live.host.engines.interface import Engine
from nsynth_live.host.engines.onnx_sessions import CPU, CUDA, OrtFrontEnd, make_session, providers_for  # noqa: F401
from nsynth_live.host.engines.ring_state import RingState
from nsynth_live.host.model_files import ExportInfo

def sample_rows(logits: np.ndarray, u: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """:func:`nsynth_live.sampling.sample_classes` with one temperature per row.

    Args:
        logits: float32 [n, 256]; u: float64 [n]; temperature: float [n] (> 0).

    Returns:
        int64 [n].
    """
    if np.all(temperature == temperature[0]):
        return sampling.sample_classes(logits, u, float(temperature[0]))
    return np.concatenate([sampling.sample_classes(logits[i : i + 1], u[i : i + 1], float(temperature[i]))
                           for i in range(len(u))])



def ring_models(residual: int) -> tuple[bytes, bytes]:
    """The two helper graphs that keep the rings on the device, rows of ``residual`` floats.

    - gather: ``hist [N, R]``, ``rows [M]`` int64 -> ``taps [M, R]`` (Gather: reads, no copy of hist).
    - scatter: ``hist [N, R]``, ``rows [M, 1]`` int64, ``columns [M, R]`` -> ``hist [N, R]``
      (ScatterND). Its output is bound to the input's own buffer, so the write is in place: ONNX
      Runtime's ScatterND copies input to output only when they are different buffers.
    """
    from onnx import TensorProto, helper

    def model(node: Any, inputs: list[tuple[str, int, list[Any]]], output: tuple[str, list[Any]]) -> bytes:
        graph = helper.make_graph(
            [node], node.op_type.lower(),
            [helper.make_tensor_value_info(n, t, shape) for n, t, shape in inputs],
            [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 7
        return m.SerializeToString()

    f, i = TensorProto.FLOAT, TensorProto.INT64
    gather = model(helper.make_node("Gather", ["hist", "rows"], ["taps"], axis=0),
                   [("hist", f, ["N", residual]), ("rows", i, ["M"])], ("taps", ["M", residual]))
    scatter = model(helper.make_node("ScatterND", ["hist", "rows", "columns"], ["hist_out"]),
                    [("hist", f, ["N", residual]), ("rows", i, ["M", 1]), ("columns", f, ["M", residual])],
                    ("hist_out", ["N", residual]))
    return gather, scatter


class OrtEngine(Engine):
    """The decoder step through ONNX Runtime with IO binding; the rings stay on the device.

    Per sample, three bound runs: gather the taps from the ring (device -> device), the step
    (taps, cond, columns on the device; the k last inputs in and the logits out through host
    memory, a few floats per voice), and an in-place scatter of the new columns into the ring.
    Only the logits cross to the host, where the shared sampling rule draws the classes. On the
    CPU provider the device is host memory and the ring *is* ``self.ring.hist`` (zero copy); the
    code path is the same.

    Args:
        info: the validated export.
        max_voices: voice slots.
        threads: intra-op threads (None: ONNX Runtime's default).
        device: ``auto`` (CUDA when usable), ``cpu`` or ``cuda``.
        separate_ring: keep the ring in memory of its own (an OrtValue, not ``ring.hist``), as on
            a GPU; None: only on a GPU. Tests set it on the CPU to run the GPU's ring code.
    """

    name = "ort"

    def __init__(self, info: ExportInfo, max_voices: int = 16, threads: int | None = None, device: str = "auto",
                 separate_ring: bool | None = None):
        import onnxruntime as ort

        super().__init__(info, max_voices, OrtFrontEnd(info, threads=threads, device=device))
        self.threads, self.device = threads, device
        self.providers = providers_for(device)
        self.device_type = "cuda" if self.providers[0] == CUDA else "cpu"
        self.session = make_session(info.decoder_step, self.providers, threads)
        gather, scatter = ring_models(info.config.residual)
        # One thread each: they only move memory, and a second spinning thread pool next to the
        # step's would steal its cores.
        self._gather = make_session(gather, self.providers, 1)
        self._scatter = make_session(scatter, self.providers, 1)
        cfg, v, dev = self.cfg, self.max_voices, self.device_type
        n, r, k = cfg.decoder_layers, cfg.residual, cfg.decoder_kernel
        self._taps_per_voice, self._layers = n * (k - 1), n
        # Index tables, positions, last inputs; on the CPU also the ring memory itself.
        self._separate = dev != "cpu" if separate_ring is None else separate_ring
        self.ring = RingState(cfg, v, with_hist=not self._separate)
        rows = v * self.ring.length
        ortvalue = ort.OrtValue
        # Device buffers (bound by pointer; a call's batch is the first nv rows of each).
        if not self._separate:
            self._hist = ortvalue.ortvalue_from_numpy(self.ring.hist.reshape(rows, r), dev, 0)  # shares ring.hist
        else:
            self._hist = ortvalue.ortvalue_from_shape_and_type([rows, r], np.float32, dev, 0)
        self._taps = ortvalue.ortvalue_from_shape_and_type([v, n, (k - 1) * r], np.float32, dev, 0)
        self._columns = ortvalue.ortvalue_from_shape_and_type([v, n, r], np.float32, dev, 0)
        self._cond = ortvalue.ortvalue_from_shape_and_type([v, cfg.cond_width], np.float32, dev, 0)
        # Host buffers.
        self._cond_host = np.zeros((v, cfg.cond_width), np.float32)  # staged, then copied to _cond
        self._x_hist = np.zeros((v, k), np.float32)
        self._exc = np.zeros((v, max(1, cfg.excitation_channels)), np.float32)  # this step's excitation
        self._logits = np.zeros((v, N_CLASSES), np.float32)
        self._read_rows = np.zeros(v * self._taps_per_voice, np.int64)
        self._write_rows = np.zeros((v * n, 1), np.int64)
        self.binding = self.session.io_binding()
        self._gather_binding = self._gather.io_binding()
        self._scatter_binding = self._scatter.io_binding()
        self._bound = 0
        self._zeros: np.ndarray | None = None  # one voice's ring of zeros, for resets
        if self._separate:
            self._reset(np.arange(v))  # its memory starts uninitialised

    @property
    def execution_provider(self) -> str:
        return self.session.get_providers()[0]

    def _bind(self, nv: int) -> None:
        """Bind the first ``nv`` voices' rows of every buffer (only when the batch size changes)."""
        if nv == self._bound:
            return
        dev, f32, i64 = self.device_type, np.float32, np.int64
        cfg, r = self.cfg, self.cfg.residual
        m_read, m_write = nv * self._taps_per_voice, nv * self._layers
        hist_shape = [self.max_voices * self.ring.length, r]
        g = self._gather_binding
        g.bind_input("hist", dev, 0, f32, hist_shape, self._hist.data_ptr())
        g.bind_input("rows", "cpu", 0, i64, [m_read], self._read_rows.ctypes.data)
        g.bind_output("taps", dev, 0, f32, [m_read, r], self._taps.data_ptr())
        b = self.binding
        b.bind_input("x_hist", "cpu", 0, f32, [nv, cfg.decoder_kernel], self._x_hist.ctypes.data)
        b.bind_input("taps", dev, 0, f32, [nv, cfg.decoder_layers, (cfg.decoder_kernel - 1) * r], self._taps.data_ptr())
        b.bind_input("cond", dev, 0, f32, [nv, cfg.cond_width], self._cond.data_ptr())
        if cfg.excitation_channels:
            b.bind_input("excitation", "cpu", 0, f32, [nv, cfg.excitation_channels], self._exc.ctypes.data)
        b.bind_output("logits", "cpu", 0, f32, [nv, N_CLASSES], self._logits.ctypes.data)
        b.bind_output("columns", dev, 0, f32, [nv, cfg.decoder_layers, r], self._columns.data_ptr())
        s = self._scatter_binding
        s.bind_input("hist", dev, 0, f32, hist_shape, self._hist.data_ptr())
        s.bind_input("rows", "cpu", 0, i64, [m_write, 1], self._write_rows.ctypes.data)
        s.bind_input("columns", dev, 0, f32, [m_write, r], self._columns.data_ptr())
        s.bind_output("hist_out", dev, 0, f32, hist_shape, self._hist.data_ptr())  # in place
        self._bound = nv

    def _reset(self, slots: np.ndarray) -> None:
        """Zero the slots' rings on the device (an in-place scatter of zeros, one voice at a time)
        and their last inputs and positions."""
        length, r = self.ring.length, self.cfg.residual
        if self._zeros is None:
            self._zeros = np.zeros((length, r), np.float32)
        shape = [self.max_voices * length, r]
        binding = self._scatter.io_binding()
        binding.bind_input("hist", self.device_type, 0, np.float32, shape, self._hist.data_ptr())
        binding.bind_input("columns", "cpu", 0, np.float32, [length, r], self._zeros.ctypes.data)
        binding.bind_output("hist_out", self.device_type, 0, np.float32, shape, self._hist.data_ptr())
        for slot in slots:
            rows = (int(slot) * length + np.arange(length, dtype=np.int64))[:, None]
            binding.bind_input("rows", "cpu", 0, np.int64, [length, 1], rows.ctypes.data)
            self._scatter.run_with_iobinding(binding)
        self.ring.x_hist[slots] = 0.0
        self.ring.t[slots] = 0

    def state(self, slot: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(hist [H, R], x_hist [k], position) of one slot (copies; from the device on CUDA)."""
        if not self._separate:
            hist = self.ring.hist[slot].copy()
        else:
            hist = self._hist.numpy().reshape(self.max_voices, self.ring.length, -1)[slot]
        return hist, self.ring.x_hist[slot].copy(), int(self.ring.t[slot])

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
        """See :meth:`nsynth_live.host.engines.interface.Engine.render` (shapes and semantics)."""
        with self._lock:  # one render at a time (the bound buffers are shared), no voice changes meanwhile
            return self._render(slots, cond, switch, noise, temperature, logits_out, feed, exc)

    def _render(
        self, slots: Any, cond: Any, switch: Any, noise: Any, temperature: Any, logits_out: Any, feed: Any,
        exc: Any = None,
    ) -> np.ndarray:
        idx, cond, switch, noise, temp = self.check_render_args(slots, cond, switch, noise, temperature)
        nv, n = noise.shape
        exc = self.check_excitation(exc, nv, n)
        if logits_out is not None and logits_out.shape != (nv, n, N_CLASSES):
            raise ValueError(f"ort engine: logits_out must be [{nv}, {n}, {N_CLASSES}], got {logits_out.shape}")
        if feed is not None:
            feed = np.asarray(feed, dtype=np.int64)
            if feed.shape != (nv, n):
                raise ValueError(f"ort engine: feed must be [{nv}, {n}], got {feed.shape}")
        out = np.empty((nv, n), np.int64)
        if nv == 0 or n == 0:
            return out
        self._bind(nv)
        ring, x_hist, logits = self.ring, self._x_hist[:nv], self._logits[:nv]
        read_rows = self._read_rows[: nv * self._taps_per_voice].reshape(nv, -1)
        write_rows = self._write_rows[: nv * self._layers].reshape(nv, -1)
        base = (idx * ring.length)[:, None]  # first ring row of each voice
        start = ring.t[idx]
        np.take(ring.x_hist, idx, axis=0, out=x_hist, mode="clip")  # the call's voices' last inputs, kept here
        self._cond_host[:nv] = np.where((switch <= 0)[:, None], cond[:, 1], cond[:, 0])
        self._cond.update_inplace(self._cond_host)
        changes = {int(j): np.flatnonzero(switch == j) for j in np.unique(switch[(switch > 0) & (switch < n)])}
        for j in range(n):
            rows = changes.get(j)
            if rows is not None:  # some voices move to their next frame here
                self._cond_host[rows] = cond[rows, 1]
                self._cond.update_inplace(self._cond_host)
            if exc is not None:
                self._exc[:nv] = exc[:, j]
            phase = (start + j) % ring.period
            np.add(ring.read[phase], base, out=read_rows)
            np.add(ring.write[phase], base, out=write_rows)
            self._gather.run_with_iobinding(self._gather_binding)
            self.session.run_with_iobinding(self.binding)
            self._scatter.run_with_iobinding(self._scatter_binding)
            if logits_out is not None:
                logits_out[:, j] = logits
            drawn = sample_rows(logits, noise[:, j], temp)
            out[:, j] = drawn
            x_hist[:, :-1] = x_hist[:, 1:]  # numpy copies overlapping slices safely
            x_hist[:, -1] = mulaw.to_input(drawn if feed is None else feed[:, j])
        ring.x_hist[idx] = x_hist
        ring.t[idx] = start + n
        return out
