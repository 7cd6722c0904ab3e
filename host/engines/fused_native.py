"""The fused engine's native kernel: host/engines/fused_native.c, compiled on first use, called via cffi.

The C kernel runs the same step as the numba one (:mod:`nsynth_live.host.engines.fused_kernels`), laid
out for the vector units: per sample, each layer's work for all voices of a chunk (up to 8) is a
few small matrix products computed in register tiles, at a far higher share of the CPU's FMA
peak than the numba kernel's matrix-vector loops (bench/bench_fused.py ``--kernels native,numba``).

Build: the first engine that asks compiles the C file with the system C compiler (``$CC``, else
``cc``/``gcc``; on Windows a MinGW-w64 gcc or clang on PATH) into the user's cache
(``$NSYNTH_LIVE_CACHE``, else ``$XDG_CACHE_HOME/nsynth-live``, else ``~/.cache/nsynth-live``),
named by a hash of the sources, compiler and flags, so it is built once per machine and rebuilt
when the source changes. It prints one line to stderr when it does. No compiler: :func:`load`
says why, and the engine falls back to the numba kernel. One build holds an AVX-512, an AVX2+FMA
and a generic version; :func:`choose_isa` picks the best this CPU runs (``NSYNTH_FUSED_ISA`` or
the engine's ``isa`` argument forces one, e.g. the AVX2 path on an AVX-512 machine for tests).

Numerics: as the numba kernel (float32 products summed in input order, one FMA each; the same
gate sigmoid * tanh, ``fused_kernels.gate_f32``, and sampling rule), so both render the same
classes (tests/test_fused_native.py measures the logits' agreement and the classes' equality,
and bounds the gate's error against float64).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ISAS = ("generic", "avx2", "avx512")
"""The builds in one compiled kernel, in order of preference (codes 0, 1, 2 in the C file)."""

_PAD = 16  # widths padded to a multiple of 16 floats: whole vectors on every build

_CDEF = """
typedef struct {
    int32_t n_layers, r, s, k, rp, sp, cond_width, hist_rows, n_exc, pad_;
    const int64_t *offsets, *dilations;
    const float *start_w, *start_b, *gate_w, *out_w, *out_b, *out1_w, *logits_w, *logits_b;
    float *hist;
    float *x_hist;
    int64_t *t_pos;
} fn_model;
typedef struct {
    int64_t n;
    int32_t n_exc;
    const int64_t *slots;
    const float *cond;
    const int64_t *sw;
    const double *noise;
    const float *temperature;
    int64_t *out;
    float *logits_out;
    const int64_t *feed;
    const float *exc;
} fn_call;
int fn_isa_supported(int isa);
int64_t fn_scratch_floats(const fn_model *md);
int fn_run_block(int isa, const fn_model *md, const fn_call *cl, int64_t lo, int64_t hi, float *scratch);
int fn_gate(int isa, int64_t n, const float *a, const float *b, float *g);
void fn_source(int64_t nv, int64_t n, int32_t k, int32_t nrows, const float *rows, const int32_t *ia,
               const int32_t *ib, const float *w, const double *phase, float gain, float *unit, float *level);
"""

_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=fast", "-fno-math-errno"]
_SOURCES = ("fused_native.c", "fused_native_body.h", "source_native.h")


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here (the message says why)."""


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on demand)."""
    if os.environ.get("NSYNTH_LIVE_CACHE"):
        return Path(os.environ["NSYNTH_LIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nsynth-live"


def _compiler() -> list[str]:
    cc = os.environ.get("CC")
    if cc:
        return cc.split()
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    raise NativeUnavailable("no C compiler found (set CC, or install gcc: apt-get install gcc libc6-dev)")


@dataclass
class _Lib:
    ffi: object
    lib: object
    path: Path


_LOADED: _Lib | None = None
_LOAD_LOCK = threading.Lock()


def load() -> _Lib:
    """The compiled kernel, built into :func:`cache_dir` first if needed (once per process).

    Raises:
        NativeUnavailable: cffi, a compiler or the build is missing or failing (with the
            compiler's message).
    """
    global _LOADED
    with _LOAD_LOCK:
        if _LOADED is None:
            _LOADED = _build_and_open()
        return _LOADED


def _build_and_open() -> _Lib:
    try:
        import cffi
    except ImportError as err:  # a dependency of sounddevice, so normally present
        raise NativeUnavailable(f"cffi is not installed ({err})") from err
    here = Path(__file__).resolve().parent
    cc = _compiler()
    try:
        version = subprocess.run(cc + ["--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise NativeUnavailable(f"C compiler {cc[0]!r} does not run ({err})") from err
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    digest.update(" ".join(cc + _FLAGS).encode() + version.encode())
    suffix = ".dll" if sys.platform == "win32" else ".so"
    target = cache_dir() / f"fused_native-{digest.hexdigest()[:16]}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"fused engine: compiling its native kernel once with {Path(cc[0]).name} into {target}",
              file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            part = Path(tmp) / target.name
            cmd = cc + _FLAGS + ["-o", str(part), str(here / "fused_native.c")]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.SubprocessError) as err:
                raise NativeUnavailable(f"compiling {here / 'fused_native.c'} failed to run ({err})") from err
            if done.returncode != 0:
                raise NativeUnavailable(f"compiling {here / 'fused_native.c'} failed: "
                                        f"{(done.stderr or done.stdout).strip()[-2000:]}")
            os.replace(part, target)  # atomic: a concurrent builder sees the whole file or none
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    try:
        lib = ffi.dlopen(str(target))
    except OSError as err:
        raise NativeUnavailable(f"loading {target} failed ({err})") from err
    return _Lib(ffi, lib, target)


def supported_isas() -> list[str]:
    """The builds this CPU runs, best last."""
    lib = load().lib
    return [name for code, name in enumerate(ISAS) if lib.fn_isa_supported(code)]


def choose_isa(request: str | None = None) -> str:
    """The build to run: ``request`` (or ``$NSYNTH_FUSED_ISA``; ``auto``/None: the best supported).

    Raises:
        ValueError: an unknown name, or one this CPU does not run.
    """
    request = request or os.environ.get("NSYNTH_FUSED_ISA") or "auto"
    have = supported_isas()
    if request == "auto":
        return have[-1]
    if request not in ISAS:
        raise ValueError(f"fused engine: isa must be auto or one of {', '.join(ISAS)}, got {request!r}")
    if request not in have:
        raise ValueError(f"fused engine: this CPU does not run the {request} kernel (it runs {', '.join(have)})")
    return request


def gate(a: np.ndarray, b: np.ndarray, isa: str | None = None) -> np.ndarray:
    """sigmoid(a) * tanh(b) by the C kernel's gate (build ``isa``, as :func:`choose_isa`), for tests.

    Args:
        a, b: float32 arrays of one shape.

    Returns:
        float32, the shape of ``a``.
    """
    lib = load()
    code = ISAS.index(choose_isa(isa))
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"gate: a and b differ in shape ({a.shape}, {b.shape})")
    g = np.empty_like(a)
    ptr = lambda x: lib.ffi.cast("float *", x.ctypes.data)  # noqa: E731
    if lib.lib.fn_gate(code, a.size, ptr(a), ptr(b), ptr(g)) != 0:
        raise RuntimeError(f"fused engine: the {ISAS[code]} kernel refused to run on this CPU")
    return g


def _pad(n: int) -> int:
    return -(-n // _PAD) * _PAD


class NativeStep:
    """The C kernel bound to one engine's weights and state arrays.

    Args:
        weights: the engine's stacked weights (``fused_engine._Weights``: start_w [1, k, R+S],
            start_b, gate_w [L, kR, 2R], out_w [L, R, R+S], out_b [L, R+S], out1_w [1, S, S],
            logits_w [1, S, 256], logits_b [256], exc_w [E, C]); repacked here, padded.
        dims: L, R, S, k of the config.
        hist, x_hist, t_pos, offsets, dilations: the engine's state and ring layout, used in
            place (float32 [capacity, H, R], float32 [capacity, k], int64 [capacity], int64 [L]).
        workers: how many shares may run at once (one scratch buffer each).
        isa: as :func:`choose_isa`.
    """

    def __init__(self, weights: object, dims: tuple[int, int, int, int], hist: np.ndarray, x_hist: np.ndarray,
                 t_pos: np.ndarray, offsets: np.ndarray, dilations: np.ndarray, workers: int,
                 isa: str | None = None):
        n_layers, r, s, k = dims
        if not 2 <= k <= 16:
            raise ValueError(f"fused engine: the native kernel takes kernel sizes 2..16, got {k}")
        self._lib = load()
        self.isa = choose_isa(isa)
        self._code = ISAS.index(self.isa)
        ffi = self._lib.ffi
        rp, sp = _pad(r), _pad(s)
        g, ow = 2 * rp, rp + sp
        w = weights
        start_w = np.zeros((k, ow), np.float32)
        start_w[:, :r], start_w[:, rp:rp + s] = w.start_w[0, :, :r], w.start_w[0, :, r:]
        start_b = np.zeros(ow, np.float32)
        start_b[:r], start_b[rp:rp + s] = w.start_b[:r], w.start_b[r:]
        e = w.exc_w.shape[0]
        # Each layer's gate matrix [E + k Rp, 2 Rp]: the excitation's rows (its columns of
        # exc_w), then the taps', then h's, so that one product [exc | taps | h] @ gate sums
        # them in the numba kernel's order.
        gate = np.zeros((n_layers, e + k * rp, g), np.float32)
        for layer in range(n_layers if e else 0):
            cols = w.exc_w[:, 2 * r * layer:2 * r * (layer + 1)]
            gate[layer, :e, :r], gate[layer, :e, rp:rp + r] = cols[:, :r], cols[:, r:]
        for tap in range(k):
            rows = w.gate_w[:, tap * r:(tap + 1) * r]
            gate[:, e + tap * rp:e + tap * rp + r, :r] = rows[:, :, :r]
            gate[:, e + tap * rp:e + tap * rp + r, rp:rp + r] = rows[:, :, r:]
        out_w = np.zeros((n_layers, rp, ow), np.float32)
        out_w[:, :r, :r], out_w[:, :r, rp:rp + s] = w.out_w[:, :, :r], w.out_w[:, :, r:]
        out_b = np.zeros((n_layers, ow), np.float32)
        out_b[:, :r], out_b[:, rp:rp + s] = w.out_b[:, :r], w.out_b[:, r:]
        out1 = np.zeros((e + sp, sp), np.float32)  # [exc rows; out1_w], as the gate's
        out1[e:e + s, :s] = w.out1_w[0]
        if e:
            out1[:e, :s] = w.exc_w[:, 2 * r * n_layers:]
        logits_w = np.zeros((sp, w.logits_w.shape[2]), np.float32)
        logits_w[:s] = w.logits_w[0]
        self._keep = [start_w, start_b, gate, out_w, out_b, out1, logits_w, np.ascontiguousarray(w.logits_b),
                      hist, x_hist, t_pos, offsets, dilations]
        for a in self._keep:  # the C side indexes them as dense arrays
            if not a.flags.c_contiguous:
                raise ValueError("fused engine: the native kernel needs C-contiguous weights and state")
        md = ffi.new("fn_model *")
        md.n_layers, md.r, md.s, md.k, md.rp, md.sp = n_layers, r, s, k, rp, sp
        md.cond_width, md.hist_rows, md.n_exc = 2 * r * n_layers + s, hist.shape[1], e
        md.offsets, md.dilations = self._ptr("int64_t *", offsets), self._ptr("int64_t *", dilations)
        md.start_w, md.start_b = self._ptr("float *", start_w), self._ptr("float *", start_b)
        md.gate_w, md.out_w, md.out_b = self._ptr("float *", gate), self._ptr("float *", out_w), self._ptr("float *", out_b)
        md.out1_w, md.logits_w = self._ptr("float *", out1), self._ptr("float *", logits_w)
        md.logits_b = self._ptr("float *", self._keep[7])
        md.hist, md.x_hist, md.t_pos = self._ptr("float *", hist), self._ptr("float *", x_hist), self._ptr("int64_t *", t_pos)
        self._md = md
        self._n_exc, self._capacity = e, hist.shape[0]
        floats = int(self._lib.lib.fn_scratch_floats(md))
        self._scratch = [np.zeros(floats, np.float32) for _ in range(workers)]
        self._scratch_ptr = [self._ptr("float *", a) for a in self._scratch]

    def _ptr(self, kind: str, a: np.ndarray):
        return self._lib.ffi.cast(kind, a.ctypes.data)

    def call(self, slots: np.ndarray, cond: np.ndarray, switch: np.ndarray, noise: np.ndarray, temp: np.ndarray,
             out: np.ndarray, logits_out: np.ndarray, feed: np.ndarray, exc: np.ndarray) -> object:
        """One block's arguments, bound for :meth:`run` (the arrays must outlive the runs).

        Args:
            as ``fused_kernels.run_block`` (the empty arrays meaning "none").
        """
        # The C side reads raw memory: a wrong dtype or layout would be read as garbage, not refused.
        for a, dtype in ((slots, np.int64), (cond, np.float32), (switch, np.int64), (noise, np.float64),
                         (temp, np.float32), (out, np.int64), (logits_out, np.float32), (feed, np.int64),
                         (exc, np.float32)):
            if a.dtype != dtype or not a.flags.c_contiguous:
                raise TypeError(f"fused engine: the native kernel needs C-contiguous {np.dtype(dtype).name} "
                                f"arrays, got {a.dtype} {a.shape}")
        nv, n = noise.shape
        e = exc.shape[2] if exc.shape[0] else 0
        if (slots.shape != (nv,) or cond.shape != (nv, 2, self._md.cond_width) or switch.shape != (nv,)
                or temp.shape != (nv,) or out.shape != (nv, n) or (logits_out.shape[0] and logits_out.shape != (nv, n, 256))
                or (feed.shape[0] and feed.shape != (nv, n)) or (e and exc.shape[:2] != (nv, n))
                or e != self._n_exc or (nv and (slots.min() < 0 or slots.max() >= self._capacity))):
            raise ValueError("fused engine: the native kernel's arguments disagree in shape, excitation or slots")
        ffi = self._lib.ffi
        c = ffi.new("fn_call *")
        c.n = noise.shape[1]
        c.n_exc = exc.shape[2] if exc.shape[0] else 0
        c.slots, c.cond, c.sw = self._ptr("int64_t *", slots), self._ptr("float *", cond), self._ptr("int64_t *", switch)
        c.noise, c.temperature = self._ptr("double *", noise), self._ptr("float *", temp)
        c.out = self._ptr("int64_t *", out)
        c.logits_out = self._ptr("float *", logits_out) if logits_out.shape[0] else ffi.NULL
        c.feed = self._ptr("int64_t *", feed) if feed.shape[0] else ffi.NULL
        c.exc = self._ptr("float *", exc) if exc.shape[0] else ffi.NULL
        return c

    def run(self, call: object, lo: int, hi: int, worker: int) -> None:
        """Run the call's voices ``lo .. hi-1`` with scratch ``worker`` (the GIL is released)."""
        rc = self._lib.lib.fn_run_block(self._code, self._md, call, lo, hi, self._scratch_ptr[worker])
        if rc != 0:
            raise RuntimeError(f"fused engine: the {self.isa} kernel refused to run on this CPU" if rc == -1 else
                               "fused engine: the native kernel's call and model disagree in excitation width")
