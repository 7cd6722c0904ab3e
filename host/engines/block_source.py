"""A learned source's excitation for one block of voices, from their frame rows.

Per block the host needs, for every voice and sample, the source's harmonic amplitudes
interpolated between two frame rows, their harmonic sum and quadrature (Clenshaw's recurrence)
divided by their norm (:func:`nsynth_live.excitation.unit_source`), and for a residual-form model
the in-phase sum at its own level. In numpy that takes [V, K, n] temporaries whose allocation cost
more than the arithmetic (2.7 ms a block of 8 voices on a Zen 3 core, a sixth of a 16 ms block);
the fused engine's native build carries the same computation without them
(host/engines/source_native.h, 0.4-0.6 ms there). :func:`rows_source` runs that kernel where it is built
and the numpy reference otherwise; the two agree to float32 rounding (tests/test_block_source.py).

A block's interpolation is given as indices into a small table of rows per voice:
``amplitude[v, j] = rows[v, ia[v, j]] * (1 - w[v, j]) + rows[v, ib[v, j]] * w[v, j]``.
:func:`frame_span` builds it for whole notes' frames (:func:`nsynth_live.excitation.upsample_frames`),
:func:`glide` for the live host's four rows per voice (a frame gliding towards the next, then the
next towards the one after it).
"""

from __future__ import annotations

import numpy as np

from nsynth_live.excitation import frame_weights, unit_source
from nsynth_live.residual import in_phase

KERNELS = ("auto", "native", "numpy")
_native_failed: str | None = None  # why the native kernel cannot be used here (tried once per process)
_native_lib = None  # the loaded kernel, once it loaded


def frame_span(amplitudes: np.ndarray, n: int, hop: int, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows and weights of samples ``start .. start + n - 1`` of whole notes' frames, as
    :func:`nsynth_live.excitation.upsample_frames` interpolates them (past the last frame it holds).

    Args:
        amplitudes: float32 [V, F, K] per frame from note-on; n: samples (>= 1); hop: samples per
            frame; start: first sample since note-on (the same for every voice).

    Returns:
        (rows float32 [V, S, K]: the S frames the block touches, ia and ib int32 [V, n], w float32 [V, n]).
    """
    f, g, w = frame_weights(n, hop, start, amplitudes.shape[1])
    lo, hi = (int(f[0]), int(g[-1]) + 1) if n else (0, 1)
    rows = np.ascontiguousarray(amplitudes[:, lo:hi], np.float32)
    nv = amplitudes.shape[0]
    shape = (nv, n)
    return (rows, np.broadcast_to((f - lo).astype(np.int32), shape).copy(),
            np.broadcast_to((g - lo).astype(np.int32), shape).copy(), np.broadcast_to(w, shape).copy())


def glide(pos: np.ndarray, switch: np.ndarray, n: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights for four rows per voice, as training interpolates frames: before
    sample ``switch`` a voice is ``pos`` samples into a frame going from row 0 (at its start)
    towards row 1 (the frame after it); from ``switch`` on it is in the next frame, row 2 towards row 3.

    Args:
        pos: int [V]; switch: int [V] (>= n: never); n: samples; hop: samples per frame.

    Returns:
        (ia, ib int32 [V, n], w float32 [V, n]).
    """
    j = np.arange(n)[None, :]
    before = j < np.asarray(switch)[:, None]
    w = np.where(before, np.asarray(pos)[:, None] + j, j - np.asarray(switch)[:, None]).astype(np.float32) / np.float32(hop)
    ia = np.where(before, 0, 2).astype(np.int32)
    return ia, ia + np.int32(1), np.ascontiguousarray(w, np.float32)


def rows_source(rows: np.ndarray, ia: np.ndarray, ib: np.ndarray, w: np.ndarray, phase: np.ndarray,
                gain: float = 1.0, with_level: bool = False, kernel: str = "auto") -> tuple[np.ndarray, np.ndarray | None]:
    """The source as the decoder hears it, and optionally at its own level, for one block.

    Args:
        rows: float32 [V, R, K] frame rows per voice; ia, ib: int [V, n] row indices in 0..R-1;
            w: float32 [V, n] weights (see the module docstring).
        phase: float64 [V, n] each sample's fundamental phase.
        gain: factor on the heard source (:class:`nsynth_live.sampling.Decoding`).
        with_level: also return the in-phase sum at the amplitudes' level.
        kernel: ``native`` (the C kernel; raises NativeUnavailable without one), ``numpy`` (the
            reference) or ``auto`` (native where it builds).

    Returns:
        (float32 [V, n, 2] the unit-level sum and quadrature times ``gain``, float32 [V, n] or None).
    """
    global _native_failed, _native_lib
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    rows = np.ascontiguousarray(rows, np.float32)
    nv, nrows, k = rows.shape
    n = phase.shape[1]
    ia = np.ascontiguousarray(ia, np.int32)
    ib = np.ascontiguousarray(ib, np.int32)
    w = np.ascontiguousarray(w, np.float32)
    if ia.shape != (nv, n) or ib.shape != (nv, n) or np.shape(w) != (nv, n) or phase.shape != (nv, n):
        raise ValueError(f"rows_source: ia, ib, w and phase must be [{nv}, {n}]")
    if nv and n and (min(ia.min(), ib.min()) < 0 or max(ia.max(), ib.max()) >= nrows):
        raise ValueError(f"rows_source: row indices outside 0..{nrows - 1}")
    if kernel != "numpy" and _native_lib is None and _native_failed is None:
        from nsynth_live.host.engines.fused_native import NativeUnavailable, load

        try:
            _native_lib = load()
        except (NativeUnavailable, OSError) as err:  # OSError: e.g. a cache folder it cannot write
            _native_failed = str(err)
            if kernel == "native":
                raise NativeUnavailable(_native_failed) from err
    if kernel != "numpy" and _native_lib is not None:
        return _native(_native_lib, rows, ia, ib, w, np.ascontiguousarray(phase, np.float64), gain, with_level)
    if kernel == "native":
        from nsynth_live.host.engines.fused_native import NativeUnavailable

        raise NativeUnavailable(_native_failed)
    v = np.arange(nv)[:, None]
    amps = rows[v, ia] * (1 - w[..., None]) + rows[v, ib] * w[..., None]  # [V, n, K]
    return amps_source(np.ascontiguousarray(amps.transpose(0, 2, 1)), phase, gain, with_level)


def amps_source(amps: np.ndarray, phase: np.ndarray, gain: float = 1.0,
                with_level: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The numpy definition from per-sample amplitudes: :func:`nsynth_live.excitation.unit_source`
    times ``gain`` in the engines' layout, and the in-phase sum at its level.

    Args:
        amps: float32 [V, K, n]; phase: float64 [V, n]; gain, with_level: as :func:`rows_source`.

    Returns:
        (float32 [V, n, 2], float32 [V, n] or None).
    """
    unit, sums = unit_source(np.asarray(amps, np.float32), phase)
    if gain != 1.0:
        unit *= np.float32(gain)
    level = np.ascontiguousarray(in_phase(sums), np.float32) if with_level else None
    return np.ascontiguousarray(unit.transpose(0, 2, 1)), level


def _native(lib, rows, ia, ib, w, phase, gain, with_level):
    nv, nrows, k = rows.shape
    n = phase.shape[1]
    unit = np.empty((nv, n, 2), np.float32)
    level = np.empty((nv, n), np.float32) if with_level else None
    ffi = lib.ffi
    ptr = lambda kind, a: ffi.cast(kind, a.ctypes.data)  # noqa: E731
    lib.lib.fn_source(nv, n, k, nrows, ptr("float *", rows), ptr("int32_t *", ia), ptr("int32_t *", ib),
                      ptr("float *", w), ptr("double *", phase), float(np.float32(gain)), ptr("float *", unit),
                      ptr("float *", level) if with_level else ffi.NULL)
    return unit, level
