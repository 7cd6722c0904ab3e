"""The ``fused`` engine: a compiled CPU step for small models, streaming voices in real time.

One call generates a block of samples for a set of voices: every layer of every step, the output
stack and the draw (the sampling rule of :mod:`nsynth_live.sampling`) run inside one compiled
function, with the voices split across a small persistent pool of worker threads (the kernel
releases the GIL). Two kernels compute the same step: the C kernel of
:mod:`nsynth_live.host.engines.fused_native` (register-tiled small GEMMs, AVX-512 or AVX2,
compiled on first use; the default where a C compiler is present) and the numba kernel
:func:`nsynth_live.host.engines.fused_kernels.run_block` (the fallback). The per-voice state (each layer's ring of
past inputs, the last k input samples, the position) lives in slot arrays of fixed capacity, as
:class:`nsynth_live.generate.RingCache` keeps it, so voices come and go without touching the
others. Weights are the plain numpy dict of ``host.model_files.step_weights_from_onnx`` (the
ONNX initializers), so this engine and ``ort`` read the same numbers. ``nsynth_live.host.engines.fused_adapter.FusedAdapter``
puts this class behind the common :class:`nsynth_live.host.engines.interface.Engine` interface.

The kernel keeps its accumulators on the calling thread's stack (~176 KB), which bounds the model
width: L * 2R <= 32768 floats (``paper`` just fits, one voice per chunk; wider models are refused
with a message pointing to ``ort``, which is the faster engine for them anyway).

No torch here: the host runs without it (docs/design.md).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from nsynth_live.host.engines import fused_kernels as K
from nsynth_live.configs import N_CLASSES, ModelConfig, history_length
from nsynth_live.ring_layout import RingLayout

COMPILE_NOTICE = "nsynth-live: compiling the fused engine (first start only, ~20 s)..."
"""What a start with a cold compile cache says, once, on stderr."""


def compile_cache_is_cold() -> bool:
    """Whether numba's on-disk cache lacks the compiled block kernel (so starting compiles it).

    Reads the cache index only (no compile, well under a millisecond); an index of another
    version of the source counts as empty, as numba treats it.
    """
    try:
        return not K.run_block._cache._cache_file._load_index()
    except Exception:  # numba's cache internals moved: say nothing rather than guess
        return False


def _aligned_zeros(shape: tuple[int, ...], align: int = 64) -> np.ndarray:
    """float32 zeros starting on an ``align``-byte boundary: the rings' rows are read a cache line
    at a time by the C kernel, and numpy's 16-byte alignment makes each row straddle one more."""
    n = int(np.prod(shape))
    raw = np.zeros(n + align // 4, np.float32)
    start = (-raw.ctypes.data % align) // 4
    return raw[start : start + n].reshape(shape)


_EMPTY_LOGITS = np.zeros((0, 0, 0), np.float32)
_EMPTY_FEED = np.zeros((0, 0), np.int64)
_EMPTY_EXC = np.zeros((0, 0, 0), np.float32)
_EMPTY_EXC_W = np.zeros((0, 0), np.float32)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check(weights: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in weights:
        raise ValueError(f"fused engine: weight {name!r} missing")
    w = np.asarray(weights[name])
    if w.shape != shape:
        raise ValueError(f"fused engine: weight {name!r} has shape {w.shape}, the config needs {shape}")
    return np.ascontiguousarray(w, dtype=np.float32)


class _Weights:
    """The step weights stacked per kind, contiguous in the order the kernel reads them.

    Args:
        cfg: model config.
        weights: ``host.model_files.step_weights_from_onnx``'s dict (matrices [in, out]).
    """

    def __init__(self, cfg: ModelConfig, weights: Mapping[str, np.ndarray]):
        n, r, s, k = cfg.decoder_layers, cfg.residual, cfg.skip, cfg.decoder_kernel
        self.start_w = _check(weights, "start_w", (k, r + s))[None]  # [1, k, R+S]: one "layer"
        self.start_b = _check(weights, "start_b", (r + s,))
        self.gate_w = np.stack([_check(weights, f"layers.{i}.gate_w", (k * r, 2 * r)) for i in range(n)])
        # The last layer has no residual: its [R, S] skip matrix goes in columns R.. of a zeroed
        # [R, R + S] block, so all layers share one array (the kernel never reads those zeros).
        self.out_w = np.zeros((n, r, r + s), np.float32)
        self.out_b = np.zeros((n, r + s), np.float32)
        for i in range(n):
            last = i == n - 1
            cols = slice(r, r + s) if last else slice(0, r + s)
            width = s if last else r + s
            self.out_w[i, :, cols] = _check(weights, f"layers.{i}.out_w", (r, width))
            self.out_b[i, cols] = _check(weights, f"layers.{i}.out_b", (width,))
        self.out1_w = _check(weights, "out1_w", (s, s))[None]
        self.logits_w = _check(weights, "logits_w", (s, N_CLASSES))[None]
        self.logits_b = _check(weights, "logits_b", (N_CLASSES,))
        e = cfg.excitation_channels
        self.exc_w = _check(weights, "exc_w", (e, cfg.cond_width)) if e else _EMPTY_EXC_W

    def args(self) -> tuple[np.ndarray, ...]:
        return (self.start_w, self.start_b, self.gate_w, self.out_w, self.out_b, self.out1_w, self.logits_w,
                self.logits_b)


class FusedEngine:
    """Compiled CPU engine over a fixed number of voice slots.

    Args:
        cfg: model config (widths, layers, kernel, dilations, hop).
        weights: step weights keyed ``start_w, start_b, layers.{i}.gate_w, layers.{i}.out_w,
            layers.{i}.out_b, out1_w, logits_w, logits_b`` (float32 numpy, matrices [in, out]).
        max_voices: number of voice slots (the most voices one call may run).
        threads: worker threads the voices of a call are split over (the calling thread is one
            of them).
        parallel: how the shares run: ``"pool"``, a persistent pool of Python threads calling the
            GIL-free kernel (the calling thread runs the first share), or ``"prange"``, numba's
            own thread pool (set to ``threads`` of its threads for the calling thread). The pool
            measured faster and steadier on the 2-core development CPU (bench/bench_fused.py).
        warmup: run one tiny block at construction so that the first real-time call neither
            compiles nor loads anything (the compiled code is cached on disk by numba).
        kernel: ``"native"`` (the C kernel of :mod:`.fused_native`, compiled on first use),
            ``"numba"`` (:mod:`.fused_kernels`), or ``"auto"``: native where it builds here,
            else numba with one line on stderr saying why. None: ``$NSYNTH_FUSED_KERNEL`` or auto.
            The native kernel runs its shares on the thread pool (``parallel="pool"``).
        isa: the native kernel's build (``auto``, ``avx512``, ``avx2``, ``generic``; None:
            ``$NSYNTH_FUSED_ISA`` or auto, the best this CPU runs).
    """

    name = "fused"

    def __init__(self, cfg: ModelConfig, weights: Mapping[str, np.ndarray], max_voices: int = 16,
                 threads: int = 2, warmup: bool = True, parallel: str = "pool", kernel: str | None = None,
                 isa: str | None = None):
        if parallel not in ("pool", "prange"):
            raise ValueError(f"fused engine: parallel must be 'pool' or 'prange', got {parallel!r}")
        if max_voices < 1:
            raise ValueError(f"fused engine: max_voices must be >= 1, got {max_voices}")
        if threads < 1:
            raise ValueError(f"fused engine: threads must be >= 1, got {threads}")
        if K.chunk_voices(cfg.decoder_layers, cfg.residual, cfg.skip) < 1:
            raise ValueError(f"fused engine: config {cfg.name!r} is too wide for the compiled step's stack "
                             f"accumulators (L*2R = {cfg.decoder_layers * 2 * cfg.residual} > {K.STACK_GATE}); "
                             "use the ort engine")
        self.cfg = cfg
        self.max_voices = max_voices
        self.threads = threads
        self.parallel = parallel
        self._w = _Weights(cfg, weights)
        k, r, s = cfg.decoder_kernel, cfg.residual, cfg.skip
        self._offsets = RingLayout(cfg).offsets  # the kernel computes the rows from these
        self._dilations = np.array(cfg.decoder_dilations, np.int64)
        self.hist = _aligned_zeros((max_voices, history_length(cfg), r))
        self.x_hist = np.zeros((max_voices, k), np.float32)
        self.t_pos = np.zeros(max_voices, np.int64)
        # Scratch: rows are positions in a call (each worker owns a disjoint range of rows); the
        # sampling scratch is per worker.
        v = max_voices
        self._scratch = (
            np.zeros((v, (k - 1) * r), np.float32),  # taps
            np.zeros((v, k), np.float32),  # x_hist copies
            np.zeros((v, r), np.float32),  # h
            np.zeros((v, s), np.float32),  # skip
            np.zeros((v, r), np.float32),  # g
        )
        self._sz = np.zeros((threads, N_CLASSES), np.float32)
        self._scdf = np.zeros((threads, N_CLASSES), np.float32)
        self._native = self._open_native(kernel, isa)  # says so itself when it compiles
        if self._native is None and warmup and compile_cache_is_cold():
            # numba's ~20 s compile of a first start, explained rather than a silent stall.
            print(COMPILE_NOTICE, file=sys.stderr, flush=True)
        self.kernel = "numba" if self._native is None else f"native-{self._native.isa}"
        use_pool = threads > 1 and parallel == "pool"
        self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="fused") if use_pool else None
        self._lock = threading.Lock()  # one call at a time: the scratch and state are shared
        if warmup:
            self._warmup()

    def _open_native(self, kernel: str | None, isa: str | None):
        """The native kernel over this engine's weights and state, or None for the numba one."""
        import os
        import sys

        from nsynth_live.host.engines import fused_native

        kernel = kernel or os.environ.get("NSYNTH_FUSED_KERNEL") or "auto"
        if kernel not in ("auto", "native", "numba"):
            raise ValueError(f"fused engine: kernel must be auto, native or numba, got {kernel!r}")
        if kernel == "numba" or (kernel == "auto" and self.parallel == "prange"):
            return None
        if self.parallel == "prange":
            raise ValueError("fused engine: the native kernel runs on the thread pool (parallel='pool')")
        cfg = self.cfg
        dims = (cfg.decoder_layers, cfg.residual, cfg.skip, cfg.decoder_kernel)
        try:
            return fused_native.NativeStep(self._w, dims, self.hist, self.x_hist, self.t_pos, self._offsets,
                                           self._dilations, self.threads, isa)
        except fused_native.NativeUnavailable as err:
            if kernel == "native":
                raise ValueError(f"fused engine: the native kernel is unavailable: {err}") from err
            print(f"fused engine: using the numba kernel (native kernel unavailable: {err})", file=sys.stderr)
            return None

    @classmethod
    def from_export(cls, export_dir: str | Path, **kwargs) -> FusedEngine:
        """An engine over an export directory's ``decoder_step.onnx`` initializers.

        Args:
            export_dir: written by ``nsynth-live export`` (validated by
                :func:`host.model_files.load_export`).
            kwargs: as the constructor (max_voices, threads, warmup).
        """
        from nsynth_live.host.model_files import load_export, step_weights_from_onnx

        info = load_export(export_dir)
        return cls(info.config, step_weights_from_onnx(info.decoder_step), **kwargs)

    # ------------------------------------------------------------------------- voices

    def reset(self, slots: Sequence[int] | np.ndarray | None = None) -> None:
        """Silence slots (all when None): zero rings and input history, position 0 (a new voice).

        Args:
            slots: slot indices in 0 .. max_voices - 1.
        """
        idx = np.arange(self.max_voices) if slots is None else self._slots(slots)
        self.hist[idx] = 0.0
        self.x_hist[idx] = 0.0
        self.t_pos[idx] = 0

    def _slots(self, slots: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(slots, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.max_voices):
            raise ValueError(f"fused engine: slots must be in 0..{self.max_voices - 1}, got {idx.tolist()}")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"fused engine: a slot appears twice in {idx.tolist()}")
        return idx

    # ------------------------------------------------------------------------- generation

    def generate(
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
        """Generate the next ``n`` samples of each voice and advance its state.

        Args:
            slots: [V] the voices' slots (distinct).
            cond: float32 [V, 2, C] (C = L*2R + S): each voice's conditioning row of the current
                frame (row 0) and of the next (row 1); a block spans at most one frame boundary.
            switch: int [V]: the block-relative sample from which row 1 applies (n or more: row 0
                throughout; 0: row 1 throughout).
            noise: float64 [V, n]: uniform numbers of :class:`nsynth_live.sampling.NoiseStream`.
            temperature: > 0, one for all voices or [V].
            logits_out: optional float32 [V, n, 256] that receives every step's logits.
            feed: optional int [V, n]: classes fed back instead of the drawn ones (teacher
                forcing: makes the logits comparable with a parallel forward over given input).
            exc: float32 [V, n, 2H]: each sample's excitation (:mod:`nsynth_live.excitation`),
                required exactly when the config has one.

        Returns:
            int64 [V, n]: the drawn mu-law classes.
        """
        idx = self._slots(slots)
        nv = idx.size
        noise = np.ascontiguousarray(noise, dtype=np.float64)
        if noise.ndim != 2 or noise.shape[0] != nv:
            raise ValueError(f"fused engine: noise must be [{nv}, n], got {noise.shape}")
        n = noise.shape[1]
        c = self.cfg.cond_width
        cond = np.ascontiguousarray(cond, dtype=np.float32)
        if cond.shape != (nv, 2, c):
            raise ValueError(f"fused engine: cond must be [{nv}, 2, {c}], got {cond.shape}")
        # A writable copy: numba compiles read-only arrays separately, and the warm-up must
        # compile what the fast path passes.
        switch = np.array(np.broadcast_to(np.asarray(switch, dtype=np.int64), (nv,)))
        temp = np.asarray(temperature, dtype=np.float64)
        if not (np.all(np.isfinite(temp)) and np.all(temp > 0)):
            raise ValueError(f"fused engine: temperature must be finite and > 0, got {temperature!r}")
        temp = np.array(np.broadcast_to(temp.astype(np.float32), (nv,)))  # writable, as switch
        if logits_out is None:
            logits_out = _EMPTY_LOGITS
        elif logits_out.shape != (nv, n, N_CLASSES) or logits_out.dtype != np.float32 or not logits_out.flags.c_contiguous:
            raise ValueError(f"fused engine: logits_out must be C-contiguous float32 [{nv}, {n}, {N_CLASSES}]")
        if feed is None:
            feed = _EMPTY_FEED
        else:
            feed = np.ascontiguousarray(feed, dtype=np.int64)
            if feed.shape != (nv, n):
                raise ValueError(f"fused engine: feed must be [{nv}, {n}], got {feed.shape}")
        e = self.cfg.excitation_channels
        if e:
            if exc is None:
                raise ValueError("fused engine: this model needs exc [V, n, 2H] (its excitation)")
            exc = np.ascontiguousarray(exc, dtype=np.float32)
            if exc.shape != (nv, n, e):
                raise ValueError(f"fused engine: exc must be [{nv}, {n}, {e}], got {exc.shape}")
        elif exc is not None:
            raise ValueError("fused engine: this model takes no excitation")
        else:
            exc = _EMPTY_EXC
        return self._run(idx, cond, switch, noise, temp, logits_out, feed, exc)

    def generate_fast(self, slots: np.ndarray, cond: np.ndarray, switch: np.ndarray, noise: np.ndarray,
                      temperature: np.ndarray, exc: np.ndarray | None = None) -> np.ndarray:
        """:meth:`generate` without its argument checks, for a caller that builds them well formed
        every block (the live synth): the checks cost more than a small block's Python work.

        Args:
            slots: int64 [V], distinct, in 0 .. max_voices - 1.
            cond: C-contiguous float32 [V, 2, C].
            switch: int64 [V].
            noise: C-contiguous float64 [V, n].
            temperature: float32 [V], finite and > 0.
            exc: C-contiguous float32 [V, n, E] exactly when the config has an excitation, else None.

        Returns:
            int64 [V, n], as :meth:`generate`.
        """
        return self._run(slots, cond, switch, noise, temperature, _EMPTY_LOGITS, _EMPTY_FEED,
                         _EMPTY_EXC if exc is None else exc)

    def _run(self, idx: np.ndarray, cond: np.ndarray, switch: np.ndarray, noise: np.ndarray, temp: np.ndarray,
             logits_out: np.ndarray, feed: np.ndarray, exc: np.ndarray) -> np.ndarray:
        """Run the kernel on validated arguments (shapes as :meth:`generate_fast`)."""
        nv, n = noise.shape
        out = np.empty((nv, n), np.int64)
        if nv == 0 or n == 0:
            return out
        common = (idx, n, cond, switch, noise, temp, out, logits_out, feed, exc, self._w.exc_w, self.hist, self.x_hist, self.t_pos,
                  self._offsets, self._dilations) + self._w.args() + self._scratch
        shares = self._shares(nv)
        if self._native is not None:
            call = self._native.call(idx, cond, switch, noise, temp, out, logits_out, feed, exc)
            with self._lock:
                futures = [self._pool.submit(self._native.run, call, lo, hi, w)
                           for w, (lo, hi) in enumerate(shares[1:], 1)] if self._pool is not None else []
                self._native.run(call, *shares[0], 0)
                for f in futures:
                    f.result()
            return out
        with self._lock:
            if self.parallel == "prange" and len(shares) > 1:
                import numba

                numba.set_num_threads(len(shares))  # per calling thread in numba
                bounds = np.array([lo for lo, _ in shares] + [nv], np.int64)
                K.run_block_prange(bounds, *common, self._sz, self._scdf)
                return out
            futures = [
                self._pool.submit(K.run_block, lo, hi, *common, self._sz[w], self._scdf[w])
                for w, (lo, hi) in enumerate(shares[1:], 1)
            ] if self._pool is not None else []
            lo, hi = shares[0]
            K.run_block(lo, hi, *common, self._sz[0], self._scdf[0])
            for f in futures:
                f.result()
        return out

    def _shares(self, nv: int) -> list[tuple[int, int]]:
        """Contiguous, near-equal ranges of call positions, one per worker (none empty)."""
        parts = min(self.threads if self._pool is not None or self.parallel == "prange" else 1, nv)
        bounds = [nv * p // parts for p in range(parts + 1)]
        return [(bounds[p], bounds[p + 1]) for p in range(parts)]

    def _warmup(self) -> None:
        """Compile (or load from numba's cache) and run every kernel path once, then reset."""
        nv = min(self.max_voices, self.threads)
        c = self.cfg.cond_width
        cond = np.zeros((nv, 2, c), np.float32)
        e = self.cfg.excitation_channels
        exc = np.zeros((nv, 2, e), np.float32) if e else None
        self.generate(range(nv), cond, np.ones(nv, np.int64), np.full((nv, 2), 0.5), exc=exc)
        self.generate(range(nv), cond, np.ones(nv, np.int64), np.full((nv, 2), 0.5),
                      logits_out=np.zeros((nv, 2, N_CLASSES), np.float32), feed=np.full((nv, 2), 128), exc=exc)
        self.reset()

    def close(self) -> None:
        """Stop the worker threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> FusedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
