"""Compiled (numba) kernels of the fused engine: a block of samples for a set of voices per call.

The step is the contract of ``nsynth_live/decoder.py`` (``decoder_step``) followed by the one
sampling rule of ``nsynth_live/sampling.py``, fused: every layer, the output stack and the draw of
one sample, for every voice of the call, before moving to the next sample.

Numerics, and why:

- float32 throughout; the sampling rule's float64 steps (exp, the running cdf sum) in float64.
- ``fastmath={"contract"}`` only: LLVM may fuse ``a * b + c`` into one FMA (one rounding instead of
  two: never less accurate), but may not reassociate sums, assume no NaN/inf, or use approximate
  reciprocals. Each output of a matrix product is summed in input order, as a plain loop would.
- the gate sigmoid(a) * tanh(b) is written out (:func:`gate_f32`: two exps by Cephes' ``expf``
  reduction and polynomial, one division; within a few float32 ulps of the exact product) rather
  than called from libm: numba has no vector math library here (no SVML), so ``math.tanh`` in a
  loop stays a scalar call per element, and 1,280 of them per sample would cost more than all the
  matrix products. Written as plain arithmetic with selects, the loops vectorise. Its error is at
  the level of float32 rounding, like PyTorch's own vectorised sigmoid/tanh (which are not
  correctly rounded either). The C kernel (fused_native_body.h) computes the same operations.
- the sampling rule's ``exp`` is a float64 exp accurate to about 1 ulp of float64, then rounded to
  float32, exactly as the rule prescribes: it agrees with numpy's ``np.exp(float64)`` after the
  rounding unless the exact value lies within ~1e-16 (relative) of a float32 rounding boundary.
- ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising. Python's
  error model tests every divisor, and that branch alone stops LLVM vectorising a loop (it made
  sigmoid, with its one division, a scalar loop).

Every voice's arithmetic is the same whatever else shares its call (batching, threads, chunks and
block sizes only reorder independent work), so a voice renders bit for bit the same stream alone
or in any batch.

Speed, and why (``live`` on the 2-core development CPU; bench/bench_fused.py): a step is ~40
small matrix-vector products (32 or 64 inputs); at these sizes the costs are per row pass, not
per multiply-add, so the kernel (1) keeps accumulators on the stack, where LLVM can prove that no
weight array aliases them and drops its run-time overlap checks; (2) chains eight input rows
per pass in registers; (3) reads each weight row once per pass for all voices of a chunk;
(4) computes every layer's tap products before the serial walk up the residual stream.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

FASTMATH = {"contract"}
N_CLASSES = 256

# Stack accumulators per kernel call, in float32 (about 176 KB of the calling thread's stack):
# every layer's gate sums [L, chunk, 2R], the layer outputs [chunk, R+S], out1 [chunk, S] and
# the logits [chunk, 256]. Voices are processed in chunks that fit.
STACK_GATE = 32768
STACK_ROW = 4096

F32 = np.float32
_ZERO = F32(0.0)
_ONE = F32(1.0)
_TWO = F32(2.0)

# Cephes expf: exp(x) = 2**n * exp(r), r = x - n ln2 split in two parts (C1 has few bits, so
# n * C1 is exact), exp(r) by a degree-7 polynomial on |r| <= ln2 / 2.
_LOG2E = F32(1.44269504088896341)
_EXP_C1 = F32(0.693359375)
_EXP_C2 = F32(-2.12194440e-4)
_EXP_P0 = F32(1.9875691500e-4)
_EXP_P1 = F32(1.3981999507e-3)
_EXP_P2 = F32(8.3334519073e-3)
_EXP_P3 = F32(4.1665795894e-2)
_EXP_P4 = F32(1.6666665459e-1)
_EXP_P5 = F32(5.0000001201e-1)
# Clamp so that 2**n stays a normal float32 (n >= -126): exp(-87) ~ 1.6e-38.
_EXP_LO = F32(-87.0)
# y + 1.5 * 2**23 rounds y to an integer n (|y| < 2**22), and its bits are those of 1.5 * 2**23 plus n.
_ROUND_MAGIC = F32(12582912.0)
_EXP_BIAS = np.int32(127 - 0x4B400000)  # 127 - the bits of 1.5 * 2**23: bits + this = n + 127
_SIGN = np.int32(-2147483648)  # the float32 sign bit

# float64 exp for the sampling rule: 2**n * exp(r), |r| <= ln2 / 2, ln2 split hi/lo (fdlibm's
# constants: n * LN2_HI is exact for |n| < 2**11), exp(r) by its Taylor series to r**13 / 13!
# (truncation < 2e-17 relative on |r| <= 0.35): ~1 ulp of float64 in all.
_LOG2E_D = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Logits are shifted so that max(z) = 0; float32(exp(z)) is 0 for z < -104, so clamping there
# keeps 2**n normal in float64 without changing any rounded result.
_EXP_D_LO = -200.0
_INV_FACT = tuple(1.0 / float(np.prod(np.arange(1, i + 1, dtype=np.float64))) for i in range(14))


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (an LLVM bitcast: vectorises)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _bits_of_f32(typingctx, x):
    """The IEEE bits of the float32 ``x`` as an int32 (an LLVM bitcast: vectorises)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits``."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _stack_f32(typingctx, size):
    """A pointer to ``size`` (a literal) float32 on the caller's stack (an LLVM alloca).

    The kernel's accumulators live there: LLVM then knows that no weight or state array can
    alias them, so it vectorises the products without run-time overlap checks (one check per
    weight row per pass otherwise, which cost as much as the arithmetic at these widths).
    """
    if not isinstance(size, types.IntegerLiteral):
        return None
    n = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float32), size=n)

    return types.CPointer(types.float32)(size), codegen


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_parts(x: np.float32) -> tuple[np.float32, np.float32]:
    """exp(x) for x <= 0 as (q, s) with exp(x) = s * (1 + q): s = 2**n, q = exp(r) - 1.

    Cephes ``expf``'s reduction r = x - n ln2 (ln2 split in two parts, C1 with few bits so that
    n * C1 is exact) and polynomial on |r| <= ln2 / 2; n = x log2(e) rounded to nearest with the
    1.5 * 2**23 trick, whose sum also holds n in its low bits (2**n: one integer add and shift).
    x is clamped below at -87 so that 2**n stays normal.
    """
    x = max(x, _EXP_LO)
    t = x * _LOG2E + _ROUND_MAGIC
    fn = t - _ROUND_MAGIC
    r = x - fn * _EXP_C1
    r = r - fn * _EXP_C2
    r2 = r * r
    p = ((((_EXP_P0 * r + _EXP_P1) * r + _EXP_P2) * r + _EXP_P3) * r + _EXP_P4) * r + _EXP_P5
    q = p * r2 + r
    s = _f32_from_bits(np.int32((_bits_of_f32(t) + _EXP_BIAS) << np.int32(23)))
    return q, s


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def gate_f32(a: np.float32, b: np.float32) -> np.float32:
    """sigmoid(a) * tanh(b) in float32, with one division.

    With E = exp(-|a|) and M = exp(-2|b|) - 1 (from :func:`_exp_parts`: M = s q + (s - 1) has no
    cancellation for small b), sigmoid(a) = (E if a < 0 else 1) / (1 + E) and
    tanh(b) = sign(b) * (-M) / (2 + M). Every exp argument is <= 0 and every factor lies in
    [0, 4]: no overflow and no select between formulas. Within a few float32 ulps of the exact
    product (tests/test_fused_native.py bounds it); the C kernel computes the same operations.
    """
    qa, sa = _exp_parts(-abs(a))
    nb = -abs(b)
    qb, sb = _exp_parts(nb + nb)
    e = qa * sa + sa
    m = qb * sb + (sb - _ONE)
    num = (e if a < _ZERO else _ONE) * m  # <= 0
    # The sign of b, by its bit (as the C kernel): -num for b >= +0, num for b <= -0.
    num = _f32_from_bits(np.int32(_bits_of_f32(num) ^ ((_bits_of_f32(b) & _SIGN) ^ _SIGN)))
    return num / ((_ONE + e) * (_TWO + m))


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def exp_f64(x: float) -> float:
    """exp(x) in float64 for x <= 0 (clamped below at -200), ~1 ulp."""
    x = max(x, _EXP_D_LO)
    fn = np.floor(x * _LOG2E_D + 0.5)
    r = (x - fn * _LN2_HI) - fn * _LN2_LO
    # Horner from the highest order down; the last terms are added in order of size.
    p = _INV_FACT[13]
    p = p * r + _INV_FACT[12]
    p = p * r + _INV_FACT[11]
    p = p * r + _INV_FACT[10]
    p = p * r + _INV_FACT[9]
    p = p * r + _INV_FACT[8]
    p = p * r + _INV_FACT[7]
    p = p * r + _INV_FACT[6]
    p = p * r + _INV_FACT[5]
    p = p * r + _INV_FACT[4]
    p = p * r + _INV_FACT[3]
    p = p * r + _INV_FACT[2]
    p = (p * r) * r + r + 1.0
    scale = _f64_from_bits((np.int64(fn) + np.int64(1023)) << np.int64(52))
    return p * scale


# ----------------------------------------------------------------------------- array forms (tests)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def gate_array(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i] = sigmoid(a[i]) * tanh(b[i]) for float32 [N] arrays (for tests and benchmarks)."""
    for i in range(a.shape[0]):
        out[i] = gate_f32(a[i], b[i])


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def exp64_array(x: np.ndarray, out: np.ndarray) -> None:
    """out[i] = exp(x[i]) for float64 [N] arrays with x <= 0."""
    for i in range(x.shape[0]):
        out[i] = exp_f64(x[i])


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def sample_rows(logits: np.ndarray, u: np.ndarray, temperature: np.ndarray, out: np.ndarray) -> None:
    """The sampling rule over rows (for tests): logits f32 [B, 256], u f64 [B], temperature f32 [B]
    -> out int64 [B]."""
    z = np.empty(N_CLASSES, np.float32)
    cdf = np.empty(N_CLASSES, np.float32)
    rows = logits.reshape(1, logits.shape[0], logits.shape[1])
    for b in range(logits.shape[0]):
        out[b] = _sample(rows, b, u[b], temperature[b], z, cdf)


# ----------------------------------------------------------------------------- the step


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _sample(logits: np.ndarray, row: int, u: float, temperature: np.float32, z: np.ndarray, cdf: np.ndarray) -> int:
    """The rule of ``nsynth_live.sampling.sample_classes`` for one row.

    Args:
        logits: float32 [1, B, 256], of which row ``row`` is drawn from.
        row: the row.
        u: float64 uniform number.
        temperature: float32 > 0.
        z, cdf: float32 [256] scratch.
    """
    n = logits.shape[2]
    for j in range(n):
        z[j] = logits[0, row, j] / temperature  # a division, as the rule (not a multiply by 1/T)
    zmax = z[0]
    for j in range(1, n):
        if z[j] > zmax:
            zmax = z[j]
    for j in range(n):
        # float32 subtraction, float64 exp rounded to float32; cdf holds p for now.
        cdf[j] = np.float32(exp_f64(np.float64(z[j] - zmax)))
    acc = 0.0
    for j in range(n):  # left to right in float64, each partial sum rounded to float32
        acc += np.float64(cdf[j])
        cdf[j] = np.float32(acc)
    threshold = np.float32(u) * cdf[n - 1]
    count = 0
    for j in range(n):
        count += cdf[j] < threshold
    return count


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _matvec(
    x: np.ndarray, lo: int, hi: int, w: np.ndarray, layer: int, row0: int, acc: np.ndarray, a0: int, vb: int,
    n_out: int,
) -> None:
    """acc[a0, v - vb, :n_out] += x[v] @ w[layer, row0 : row0 + K, :n_out] for v = lo .. hi-1 (K: x's width).

    Each output is summed over the inputs in order (the rounding of a plain loop), eight input
    rows per pass: the eight products are chained in registers, and the accumulator is loaded
    and stored once per pass instead of once per row. The output loop is innermost and
    contiguous, so it vectorises; the voice loop sits inside the pass, so the pass's weight rows
    are read from L1 for every voice of the chunk.

    Args:
        x: float32 [V, K] inputs.
        lo, hi: the voices to compute.
        w: float32 [L, rows, N] weights.
        layer, row0: the matrix, and its first row to use.
        acc: float32 [A, chunk, N] accumulators (hold the bias or conditioning on entry).
        a0: which accumulator of acc.
        vb: the voice of acc's first row.
        n_out: outputs to compute (a run-time start column would defeat the vectoriser).
    """
    n_in = x.shape[1]
    blocked = n_in - n_in % 8
    for c in range(0, blocked, 8):
        r = row0 + c
        for v in range(lo, hi):
            x0 = x[v, c]
            x1 = x[v, c + 1]
            x2 = x[v, c + 2]
            x3 = x[v, c + 3]
            x4 = x[v, c + 4]
            x5 = x[v, c + 5]
            x6 = x[v, c + 6]
            x7 = x[v, c + 7]
            u = v - vb
            for j in range(n_out):
                a = acc[a0, u, j] + x0 * w[layer, r, j]
                a = a + x1 * w[layer, r + 1, j]
                a = a + x2 * w[layer, r + 2, j]
                a = a + x3 * w[layer, r + 3, j]
                a = a + x4 * w[layer, r + 4, j]
                a = a + x5 * w[layer, r + 5, j]
                a = a + x6 * w[layer, r + 6, j]
                acc[a0, u, j] = a + x7 * w[layer, r + 7, j]
    for c in range(blocked, n_in):
        for v in range(lo, hi):
            xc = x[v, c]
            u = v - vb
            for j in range(n_out):
                acc[a0, u, j] += xc * w[layer, row0 + c, j]


def chunk_voices(n_layers: int, residual: int, skip: int) -> int:
    """Voices per kernel chunk that fit the stack accumulators (0: the model is too wide)."""
    return min(STACK_GATE // (n_layers * 2 * residual), STACK_ROW // (residual + skip), STACK_ROW // skip,
               STACK_ROW // N_CLASSES)


chunk_voices_jit = njit(inline="always")(chunk_voices)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def run_block(
    lo: int,
    hi: int,
    slots: np.ndarray,
    n: int,
    cond: np.ndarray,
    switch: np.ndarray,
    noise: np.ndarray,
    temperature: np.ndarray,
    out: np.ndarray,
    logits_out: np.ndarray,
    feed: np.ndarray,
    exc: np.ndarray,
    exc_w: np.ndarray,
    hist: np.ndarray,
    x_hist: np.ndarray,
    t_pos: np.ndarray,
    offsets: np.ndarray,
    dilations: np.ndarray,
    start_w: np.ndarray,
    start_b: np.ndarray,
    gate_w: np.ndarray,
    out_w: np.ndarray,
    out_b: np.ndarray,
    out1_w: np.ndarray,
    logits_w: np.ndarray,
    logits_b: np.ndarray,
    taps: np.ndarray,
    xk: np.ndarray,
    h: np.ndarray,
    skip: np.ndarray,
    g: np.ndarray,
    sz: np.ndarray,
    scdf: np.ndarray,
) -> None:
    """Run ``n`` samples for the voices ``lo .. hi-1`` of a call (one worker's share).

    Voices are independent, so the share runs in chunks of :func:`chunk_voices` voices, each
    chunk for the whole block, with its accumulators on the stack.

    Args:
        lo, hi: the share, as positions in the call's voice arrays.
        slots: int64 [V]: each voice's state slot.
        n: samples in this block.
        cond: float32 [V, 2, C]: row 0 for samples before ``switch``, row 1 from it on
            (C = L*2R + S, :func:`nsynth_live.decoder.condition`'s layout).
        switch: int64 [V]: the block-relative sample where row 1 takes over (>= n: never).
        noise: float64 [V, n]: the sampling rule's uniform numbers.
        temperature: float32 [V].
        out: int64 [V, n]: the drawn classes (written).
        logits_out: float32 [V, n, 256] to record the logits, or [0, 0, 0] not to.
        feed: int64 [V, n]: classes to feed back instead of the drawn ones (teacher forcing,
            for tests), or [0, 0] to feed the drawn ones.
        exc: float32 [V, n, E]: each sample's excitation (configs with one), or [0, 0, 0].
        exc_w: float32 [E, C]: its projection onto the conditioning, or [0, 0].
        hist: float32 [capacity, H, R]: every slot's rings, layer i at rows offsets[i] ..
            offsets[i] + (k-1) d_i.
        x_hist: float32 [capacity, k]: last k inputs, oldest first.
        t_pos: int64 [capacity]: samples each slot has generated (the ring position).
        offsets, dilations: int64 [L].
        start_w [1, k, R+S], start_b [R+S], gate_w [L, kR, 2R], out_w [L, R, R+S] (the last
            layer's residual columns zero), out_b [L, R+S], out1_w [1, S, S],
            logits_w [1, S, 256], logits_b [256]: float32 weights.
        taps [V, (k-1)R], xk [V, k], h [V, R], skip [V, S], g [V, R], sz [256], scdf [256]:
            float32 scratch of this worker (voice rows lo .. hi-1).
    """
    n_layers = gate_w.shape[0]
    chunk = chunk_voices_jit(n_layers, h.shape[1], skip.shape[1])
    z_mem = _stack_f32(STACK_GATE)
    o_mem = _stack_f32(STACK_ROW)
    o1_mem = _stack_f32(STACK_ROW)
    logit_mem = _stack_f32(STACK_ROW)
    z = numba.carray(z_mem, (n_layers, chunk, 2 * h.shape[1]))
    o = numba.carray(o_mem, (1, chunk, h.shape[1] + skip.shape[1]))
    o1 = numba.carray(o1_mem, (1, chunk, skip.shape[1]))
    logit = numba.carray(logit_mem, (1, chunk, logits_b.shape[0]))
    # Per sample, the gate products of every layer's past taps (and its conditioning) come
    # first: they depend only on the rings, so these L matrix products are independent of each
    # other and keep the core busy. Then the layers run in order on the residual stream, each
    # adding h @ (its gate rows for h[t]) to the same accumulators: the same sums in the same
    # order as [taps, h] @ gate_w, with only half of the products on the serial path from one
    # layer to the next. Arrays are indexed element by element, never sliced in the loops: a
    # slice is a new array object with an (atomic) reference count, and hundreds per sample
    # cost more than the arithmetic. Accumulator row v - vb belongs to voice v.
    for vb in range(lo, hi, chunk):
        vh = min(vb + chunk, hi)
        k = x_hist.shape[1]
        r = h.shape[1]
        s = skip.shape[1]
        r2 = 2 * r
        n_layers = gate_w.shape[0]
        n_cls = logits_b.shape[0]
        record = logits_out.shape[0] > 0
        forced = feed.shape[0] > 0
        n_exc = exc.shape[2] if exc.shape[0] > 0 else 0
        for t in range(n):
            # Every layer's conditioning + taps @ gate rows of the taps (independent of each other).
            for layer in range(n_layers):
                d = dilations[layer]
                size = (k - 1) * d
                off = offsets[layer]
                cb = r2 * layer
                pow2 = size & (size - 1) == 0
                for v in range(vb, vh):
                    slot = slots[v]
                    tv = t_pos[slot]
                    for tap in range(k - 1):
                        back = tv - (k - 1 - tap) * d
                        # A power-of-two ring (every config's): a mask, not a 64-bit division.
                        src = off + (back & (size - 1) if pow2 else back % size)
                        for j in range(r):
                            taps[v, tap * r + j] = hist[slot, src, j]
                    row = 0 if t < switch[v] else 1
                    for j in range(r2):
                        z[layer, v - vb, j] = cond[v, row, cb + j]
                    # The excitation's share of this sample's conditioning (absent: E = 0).
                    for e in range(n_exc):
                        xe = exc[v, t, e]
                        for j in range(r2):
                            z[layer, v - vb, j] += xe * exc_w[e, cb + j]
                _matvec(taps, vb, vh, gate_w, layer, 0, z, layer, vb, r2)
            # h_0 and the first skip term: x_hist @ start_w + start_b, as one [R + S] row in o.
            for v in range(vb, vh):
                for i in range(k):
                    xk[v, i] = x_hist[slots[v], i]
                for j in range(r + s):
                    o[0, v - vb, j] = start_b[j]
            _matvec(xk, vb, vh, start_w, 0, 0, o, 0, vb, r + s)
            for v in range(vb, vh):
                for j in range(r):
                    h[v, j] = o[0, v - vb, j]
                for j in range(s):
                    skip[v, j] = o[0, v - vb, r + j]
            for layer in range(n_layers):
                size = (k - 1) * dilations[layer]
                off = offsets[layer]
                last = layer == n_layers - 1
                # h_i[t] overwrites the oldest tap's slot, read above.
                pow2 = size & (size - 1) == 0
                for v in range(vb, vh):
                    slot = slots[v]
                    dst = off + (t_pos[slot] & (size - 1) if pow2 else t_pos[slot] % size)
                    for j in range(r):
                        hist[slot, dst, j] = h[v, j]
                _matvec(h, vb, vh, gate_w, layer, (k - 1) * r, z, layer, vb, r2)
                # g @ out_w + out_b: residual and skip side by side. The last layer's residual
                # columns are zeros and computed anyway (see _matvec's n_out).
                for v in range(vb, vh):
                    for j in range(r):
                        g[v, j] = gate_f32(z[layer, v - vb, j], z[layer, v - vb, r + j])
                    for j in range(r + s):
                        o[0, v - vb, j] = out_b[layer, j]
                _matvec(g, vb, vh, out_w, layer, 0, o, 0, vb, r + s)
                for v in range(vb, vh):
                    if not last:
                        for j in range(r):
                            h[v, j] += o[0, v - vb, j]
                    for j in range(s):
                        skip[v, j] += o[0, v - vb, r + j]
            # relu(relu(skip) @ out1_w + cond_out1) @ logits_w + logits_b.
            cb = r2 * n_layers
            for v in range(vb, vh):
                row = 0 if t < switch[v] else 1
                for j in range(s):
                    o1[0, v - vb, j] = cond[v, row, cb + j]
                    skip[v, j] = max(skip[v, j], _ZERO)
                for e in range(n_exc):
                    xe = exc[v, t, e]
                    for j in range(s):
                        o1[0, v - vb, j] += xe * exc_w[e, cb + j]
            _matvec(skip, vb, vh, out1_w, 0, 0, o1, 0, vb, s)
            for v in range(vb, vh):
                for j in range(s):
                    skip[v, j] = max(o1[0, v - vb, j], _ZERO)  # skip is free now: out1's output
                for j in range(n_cls):
                    logit[0, v - vb, j] = logits_b[j]
            _matvec(skip, vb, vh, logits_w, 0, 0, logit, 0, vb, n_cls)
            for v in range(vb, vh):
                slot = slots[v]
                if record:
                    for j in range(n_cls):
                        logits_out[v, t, j] = logit[0, v - vb, j]
                cls = _sample(logit, v - vb, noise[v, t], temperature[v], sz, scdf)
                out[v, t] = cls
                if forced:
                    cls = feed[v, t]
                for i in range(k - 1):
                    x_hist[slot, i] = x_hist[slot, i + 1]
                x_hist[slot, k - 1] = np.float32(cls - 128) / np.float32(128.0)
                t_pos[slot] += 1


@njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def run_block_prange(
    bounds: np.ndarray,
    slots: np.ndarray,
    n: int,
    cond: np.ndarray,
    switch: np.ndarray,
    noise: np.ndarray,
    temperature: np.ndarray,
    out: np.ndarray,
    logits_out: np.ndarray,
    feed: np.ndarray,
    exc: np.ndarray,
    exc_w: np.ndarray,
    hist: np.ndarray,
    x_hist: np.ndarray,
    t_pos: np.ndarray,
    offsets: np.ndarray,
    dilations: np.ndarray,
    start_w: np.ndarray,
    start_b: np.ndarray,
    gate_w: np.ndarray,
    out_w: np.ndarray,
    out_b: np.ndarray,
    out1_w: np.ndarray,
    logits_w: np.ndarray,
    logits_b: np.ndarray,
    taps: np.ndarray,
    xk: np.ndarray,
    h: np.ndarray,
    skip: np.ndarray,
    g: np.ndarray,
    sz: np.ndarray,
    scdf: np.ndarray,
) -> None:
    """:func:`run_block` over the shares ``bounds[p] .. bounds[p+1]`` on numba's own thread pool
    (``prange``), the alternative to the engine's Python thread pool.

    Args:
        bounds: int64 [P + 1] share boundaries; sz, scdf: float32 [P, 256]; the rest as
            :func:`run_block`.
    """
    for p in prange(bounds.shape[0] - 1):
        run_block(bounds[p], bounds[p + 1], slots, n, cond, switch, noise, temperature, out, logits_out, feed, exc, exc_w, hist,
                  x_hist, t_pos, offsets, dilations, start_w, start_b, gate_w, out_w, out_b, out1_w, logits_w,
                  logits_b, taps, xk, h, skip, g, sz[p], scdf[p])
