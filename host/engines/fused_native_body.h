/* The fused step, written once for one vector width: included by fused_native.c once per ISA
 * (AVX-512, AVX2+FMA, generic) with VW (floats per vector), MR_MAX and ACC_MAX (register tile
 * limits) and SUFFIX (the function-name suffix) defined.
 *
 * Numerics match host/engines/fused_kernels.py (the numba kernel) operation for operation: every output
 * of a matrix product is its initial value (bias, conditioning) plus the products in input
 * order, each one fused multiply-add (the file is compiled with -ffp-contract=fast, as the numba
 * kernel runs with fastmath "contract"); the gate sigmoid * tanh is the same operations
 * (fused_kernels.gate_f32); the draw is the same float64 rule. So the two kernels agree to the last bit wherever both compilers
 * contract the same expressions (measured: they do on this code), and otherwise to rounding.
 */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUFFIX)

typedef float CAT(vf, SUFFIX) __attribute__((vector_size(VW * 4), aligned(4)));
#define VF CAT(vf, SUFFIX)

/* C[m, n] += sum_k A[m, k] * B[k, n] for an mr x (nv * VW) tile, k in order. mr and nv are
 * compile-time constants after inlining, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void FN(tile)(const int mr, const int nv, int kk, const float *a,
                                                            int lda, const float *b, int ldb, const float *c0,
                                                            int ldc0, float *c, int ldc) {
    VF acc[MR_MAX][4];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) acc[i][j] = *(const VF *)(c0 + i * ldc0 + j * VW);
    for (int k = 0; k < kk; k++) {
        VF w[4];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) w[j] = *(const VF *)(b + k * ldb + j * VW);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            float x = a[i * lda + k];
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++) acc[i][j] = acc[i][j] + x * w[j];
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) *(VF *)(c + i * ldc + j * VW) = acc[i][j];
}

#define TILE_CASE(MR, NV) \
    case (MR) * 8 + (NV): FN(tile)(MR, NV, kk, a + m0 * lda, lda, b + n0, ldb, c0 + m0 * ldc0 + n0, ldc0, \
                                   c + m0 * ldc + n0, ldc); break;

/* C [m, n] = C0 [m, n] + A [m, kk] @ B [kk, n] (row-major, n a multiple of VW), each output its
 * initial value plus the products in order of k; C0 may be C itself (ldc0 = ldc) or one row for
 * all (ldc0 = 0: a bias). Tiles of up to MR_MAX rows by as many vectors as ACC_MAX accumulators
 * allow. */
static __attribute__((noinline)) void FN(gemm0)(int m, int n, int kk, const float *a, int lda, const float *b,
                                                int ldb, const float *c0, int ldc0, float *c, int ldc) {
    for (int m0 = 0; m0 < m; m0 += MR_MAX) {
        int mr = m - m0 < MR_MAX ? m - m0 : MR_MAX;
        int nv_max = ACC_MAX / mr;
        if (nv_max > 4) nv_max = 4;
        if (nv_max < 1) nv_max = 1;
        /* The row's vectors in tiles of near-equal width (96 floats on AVX-512: 3 + 3, not 4 + 2,
         * whose narrow tile has too few accumulators to hide the FMA latency). */
        const int nvec = n / VW, ntiles = (nvec + nv_max - 1) / nv_max;
        const int nv_even = ntiles ? (nvec + ntiles - 1) / ntiles : 1;
        for (int n0 = 0; n0 < n; ) {
            int left = (n - n0) / VW;
            int nv = left < nv_even ? left : nv_even;
            switch (mr * 8 + nv) {
                TILE_CASE(1, 1) TILE_CASE(1, 2) TILE_CASE(1, 3) TILE_CASE(1, 4)
                TILE_CASE(2, 1) TILE_CASE(2, 2) TILE_CASE(2, 3) TILE_CASE(2, 4)
                TILE_CASE(3, 1) TILE_CASE(3, 2) TILE_CASE(3, 3) TILE_CASE(3, 4)
                TILE_CASE(4, 1) TILE_CASE(4, 2) TILE_CASE(4, 3) TILE_CASE(4, 4)
#if MR_MAX > 4
                TILE_CASE(5, 1) TILE_CASE(5, 2) TILE_CASE(5, 3)
                TILE_CASE(6, 1) TILE_CASE(6, 2)
                TILE_CASE(7, 1) TILE_CASE(7, 2)
                TILE_CASE(8, 1) TILE_CASE(8, 2)
#endif
                default: break; /* unreachable: nv <= ACC_MAX / mr */
            }
            n0 += nv * VW;
        }
    }
}

/* C [m, n] += A [m, kk] @ B [kk, n]. */
static inline __attribute__((always_inline)) void FN(gemm)(int m, int n, int kk, const float *a, int lda,
                                                            const float *b, int ldb, float *c, int ldc) {
    FN(gemm0)(m, n, kk, a, lda, b, ldb, c, ldc, c, ldc);
}

/* dst[:n] = src[:w], zeros after: whole vectors without checks in the usual case (w == n, a
 * multiple of VW; the auto-vectoriser's alias and trip-count checks cost more than these short
 * rows' copies). */
static inline __attribute__((always_inline)) void FN(put)(float *restrict dst, const float *restrict src, int w,
                                                           int n) {
    if (w == n && n % VW == 0) {
        for (int j = 0; j < n; j += VW) *(VF *)(dst + j) = *(const VF *)(src + j);
        return;
    }
    for (int j = 0; j < w; j++) dst[j] = src[j];
    for (int j = w; j < n; j++) dst[j] = 0.0f;
}

/* dst[:n] += src[:n], n a multiple of VW. */
static inline __attribute__((always_inline)) void FN(add)(float *restrict dst, const float *restrict src, int n) {
    for (int j = 0; j < n; j += VW) *(VF *)(dst + j) = *(const VF *)(dst + j) + *(const VF *)(src + j);
}

/* Elementwise work in explicit vectors (the compilers' auto-vectoriser leaves rounding and the
 * selects scalar here). Rounding to an integer is done without a rounding instruction, by the
 * 1.5 * 2**23 (2**52) trick: y + magic rounds y to nearest, - magic takes it back exactly. */
typedef int32_t CAT(vi, SUFFIX) __attribute__((vector_size(VW * 4), aligned(4)));
typedef double CAT(vd, SUFFIX) __attribute__((vector_size(VW * 4), aligned(8)));
typedef int64_t CAT(vl, SUFFIX) __attribute__((vector_size(VW * 4), aligned(8)));
typedef float CAT(vh, SUFFIX) __attribute__((vector_size(VW * 2), aligned(4)));
typedef int32_t CAT(vhi, SUFFIX) __attribute__((vector_size(VW * 2), aligned(4)));
#define VI CAT(vi, SUFFIX)
#define VD CAT(vd, SUFFIX)
#define VL CAT(vl, SUFFIX)
#define VH CAT(vh, SUFFIX)
#define VHI CAT(vhi, SUFFIX)

static inline __attribute__((always_inline)) VF FN(self)(VI m, VF a, VF b) {
    return (VF)(((VI)a & m) | ((VI)b & ~m));
}

static inline __attribute__((always_inline)) VD FN(seld)(VL m, VD a, VD b) {
    return (VD)(((VL)a & m) | ((VL)b & ~m));
}

/* exp(x) for x <= 0 in two parts, x clamped below at EXP_LO: exp(x) = s (1 + q) with
 * s = 2**n and q = exp(r) - 1, r = x - n ln2, |r| <= ln2 / 2 (Cephes expf's reduction and
 * polynomial, fused_kernels._exp_parts). n is x log2(e) rounded to nearest by the 1.5 * 2**23 trick,
 * whose sum also holds n in its low mantissa bits, so 2**n is one integer add and shift. */
static inline __attribute__((always_inline)) void FN(exp_parts)(VF x, VF *q, VF *s) {
    const VF magic = (VF){} + 12582912.0f; /* 1.5 * 2**23 */
    x = FN(self)(x < EXP_LO, (VF){} + EXP_LO, x);
    VF t = x * LOG2E_F + magic;
    VF fn = t - magic;
    VF r = x - fn * EXP_C1;
    r = r - fn * EXP_C2;
    VF r2 = r * r;
    VF p = ((((EXP_P0 * r + EXP_P1) * r + EXP_P2) * r + EXP_P3) * r + EXP_P4) * r + EXP_P5;
    *q = p * r2 + r;
    *s = (VF)(((VI)t + (127 - 0x4B400000)) << 23); /* t's bits are 1.5 * 2**23's (0x4B400000) + n */
}

/* g[j] = sigmoid(zs[j]) * tanh(zt[j]) for j < n (n a multiple of VW), as fused_kernels.gate_f32:
 * with E = exp(-|a|) and M = exp(-2|b|) - 1 (both from exp_parts, M without cancellation),
 * sigmoid(a) = (a < 0 ? E : 1) / (1 + E) and tanh(b) = sign(b) (-M) / (2 + M), so the product
 * is one division: sign(b) (a < 0 ? E : 1) (-M) / ((1 + E) (2 + M)). Every exp argument is <= 0
 * and every factor in [0, 4]: no overflow, no select between formulas. */
static inline __attribute__((always_inline)) void FN(gate)(int n, const float *restrict zs, const float *restrict zt,
                                                            float *restrict g) {
    const VI sign = (VI){} + (int32_t)0x80000000;
    for (int j = 0; j < n; j += VW) {
        VF a = *(const VF *)(zs + j), b = *(const VF *)(zt + j);
        VF qa, sa, qb, sb;
        VF xb = (VF)((VI)b | sign);
        FN(exp_parts)((VF)((VI)a | sign), &qa, &sa);
        FN(exp_parts)(xb + xb, &qb, &sb);
        VF e = qa * sa + sa;
        VF m = qb * sb + (sb - 1.0f);
        VF num = FN(self)(a < 0.0f, e, (VF){} + 1.0f) * m;
        num = (VF)((VI)num ^ (((VI)b & sign) ^ sign));
        *(VF *)(g + j) = num / ((1.0f + e) * (2.0f + m));
    }
}

/* The gate of m rows of z [m, 2 Rp] (sigmoid half, tanh half) into g [m, Rp]: one call a layer. */
static void FN(gate_m)(int m, int rp, const float *restrict z, float *restrict g) {
    for (int i = 0; i < m; i++) FN(gate)(rp, z + i * 2 * rp, z + i * 2 * rp + rp, g + i * rp);
}

/* p[j] = float32(exp(z[j] - zmax)) for j < n (n a multiple of VW / 2), the sampling rule's
 * float64 exp (fused_kernels.exp_f64: ~1 ulp). */
static void FN(exp_rows)(int n, const float *restrict z, float zmax, float *restrict p) {
    __attribute__((unused)) const VD magic = (VD){} + 6755399441055744.0; /* 1.5 * 2**52 */
    for (int j = 0; j < n; j += VW / 2) {
        VH xf = *(const VH *)(z + j) - zmax;
        /* exp(x) < 2**-150 for x < -104: the float32 result is 0 whatever the polynomial says
         * (a trained model at a low temperature has most classes there). */
        VHI below = xf < -104.0f; /* -1 where below */
        uint64_t words[VW / 4];
        memcpy(words, &below, sizeof below);
        uint64_t all = ~(uint64_t)0;
        for (int q = 0; q < VW / 4; q++) all &= words[q];
        if (all == ~(uint64_t)0) {
            *(VH *)(p + j) = (VH){};
            continue;
        }
        VD x = __builtin_convertvector(xf, VD);
        x = FN(seld)(x < EXP_D_LO, (VD){} + EXP_D_LO, x);
        VD y = x * LOG2E_D + 0.5;
#if VW == 16
        VD fn = (VD)_mm512_roundscale_pd((__m512d)y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); /* floor(y) */
#elif VW == 8
        VD fn = (VD)_mm256_round_pd((__m256d)y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
#else
        VD tr = (y + magic) - magic; /* floor(y): y rounded to nearest, less 1 where that is above y */
        VD fn = tr - FN(seld)(tr > y, (VD){} + 1.0, (VD){});
#endif
        VD r = (x - fn * LN2_HI) - fn * LN2_LO;
        VD q = (VD){} + INV_FACT13;
        q = q * r + INV_FACT12;
        q = q * r + INV_FACT11;
        q = q * r + INV_FACT10;
        q = q * r + INV_FACT9;
        q = q * r + INV_FACT8;
        q = q * r + INV_FACT7;
        q = q * r + INV_FACT6;
        q = q * r + INV_FACT5;
        q = q * r + INV_FACT4;
        q = q * r + INV_FACT3;
        q = q * r + INV_FACT2;
        q = (q * r) * r + r + 1.0;
#if VW == 16
        /* q * 2**fn in one instruction (exact: the result is normal, fn >= -289). */
        *(VH *)(p + j) = __builtin_convertvector((VD)_mm512_scalef_pd((__m512d)q, (__m512d)fn), VH);
#else
        /* 2**fn from its bits: fn + 1.5 * 2**52 holds the integer fn in its low bits. */
        VL bits = (((VL)(fn + magic) - (VL)magic) + 1023) << 52;
        *(VH *)(p + j) = __builtin_convertvector(q * (VD)bits, VH);
#endif
    }
}

/* cdf[i, j] = float32(sum of cdf[i, :j+1] in float64, left to right) for the m rows (the
 * rule's running sum), the rows' independent chains interleaved so that their adds overlap. */
static inline __attribute__((always_inline)) void FN(running_sums)(const int m, float *cdf) {
    double acc[MAX_CHUNK];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++) acc[i] = 0.0;
    for (int j = 0; j < N_CLS; j++)
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            acc[i] += (double)cdf[i * N_CLS + j];
            cdf[i * N_CLS + j] = (float)acc[i];
        }
}

/* The rule of nsynth_live.sampling.sample_classes for the rows of a chunk (logit [m, N_CLS]),
 * the voices' running sums interleaved (independent chains: the float64 adds overlap). */
static void FN(sample)(int m, const float *logit, const double *u, const float *temp, float *z, float *cdf,
                       int64_t *cls) {
    for (int i = 0; i < m; i++) {
        const float *l = logit + i * N_CLS;
        const float *zi = l; /* l / 1 is l exactly: no division at the usual temperature */
        float t = temp[i];
        if (t != 1.0f) {
            float *zd = z + i * N_CLS;
            for (int j = 0; j < N_CLS; j++) zd[j] = l[j] / t; /* a division, as the rule */
            zi = zd;
        }
        VF vm = *(const VF *)zi;
        for (int j = VW; j < N_CLS; j += VW) {
            VF zj = *(const VF *)(zi + j);
            vm = FN(self)(zj > vm, zj, vm);
        }
        float zmax = vm[0];
        for (int j = 1; j < VW; j++) zmax = vm[j] > zmax ? vm[j] : zmax;
        FN(exp_rows)(N_CLS, zi, zmax, cdf + i * N_CLS);
    }
    switch (m) { /* a constant voice count keeps the running sums in registers */
        case 1: FN(running_sums)(1, cdf); break;
        case 2: FN(running_sums)(2, cdf); break;
        case 3: FN(running_sums)(3, cdf); break;
        case 4: FN(running_sums)(4, cdf); break;
        case 5: FN(running_sums)(5, cdf); break;
        case 6: FN(running_sums)(6, cdf); break;
        case 7: FN(running_sums)(7, cdf); break;
        default: FN(running_sums)(8, cdf); break;
    }
    for (int i = 0; i < m; i++) {
        const float *ci = cdf + i * N_CLS;
        float threshold = (float)u[i] * ci[N_CLS - 1];
        VI count = (VI){};
        for (int j = 0; j < N_CLS; j += VW) count -= *(const VF *)(ci + j) < threshold; /* true is -1 */
        int64_t total = 0;
        for (int j = 0; j < VW; j++) total += count[j];
        cls[i] = total;
    }
}

/* The tap rows of layer l for the chunk's voices at this sample, fetched ahead into the cache
 * (rings of long dilations are far apart, MBs for a few voices: without it every tap read
 * waits on memory). */
static inline __attribute__((always_inline)) void FN(prefetch_taps)(const fn_model *md, const fn_call *cl, int64_t vb,
                                                                     int m, int l) {
    const int K = md->k, R = md->r, H = md->hist_rows;
    const int64_t d = md->dilations[l], size = (K - 1) * d, off = md->offsets[l];
    const int pow2 = (size & (size - 1)) == 0;
    for (int i = 0; i < m; i++) {
        const int64_t slot = cl->slots[vb + i], tv = md->t_pos[slot];
        for (int tap = 0; tap < K - 1; tap++) {
            const int64_t back = tv - (K - 1 - tap) * d;
            const int64_t src = off + ring_row(back, size, pow2);
            const char *p = (const char *)(md->hist + (slot * H + src) * R);
            /* every line of the row: rows need not start on a line (the engine aligns hist to 64 bytes, but a row is 64-byte aligned only when its width is) */
            for (int64_t q = 0; q < (int64_t)R * 4; q += 64) __builtin_prefetch(p + q, 0, PF_LOC);
            __builtin_prefetch(p + (int64_t)R * 4 - 1, 0, PF_LOC);
        }
    }
}

/* One chunk of <= MAX_CHUNK voices (positions vb .. vb + m - 1 of the call) for the whole block.
 * Each layer's gate sums are one product [m, E + (k-1) Rp + Rp] @ [E + k Rp, 2 Rp]: the rows
 * of A are [excitation | taps | h] side by side (h kept there), gate_w's rows [exc | taps | h]
 * to match, so every output is its conditioning plus the products in the numba kernel's order
 * (excitation channels, taps, h). The same for out1: [exc | relu(skip)] @ [exc rows; out1_w]. */
static void FN(run_chunk)(const fn_model *md, const fn_call *cl, int64_t vb, int m, float *scratch) {
    const int L = md->n_layers, R = md->r, S = md->s, K = md->k, E = cl->n_exc;
    const int Rp = md->rp, Sp = md->sp, G = 2 * Rp, OW = Rp + Sp, C = md->cond_width, H = md->hist_rows;
    const int KT = (K - 1) * Rp; /* tap rows of a gate matrix */
    const int AW = E + KT + Rp, A1W = E + Sp; /* widths of the gate's and out1's A rows */
    const int64_t n = cl->n;
    /* Scratch carve-up (each piece a multiple of 16 floats: vectors stay 64-byte aligned). */
    float *z = scratch;                       /* [m, G] gate sums */
    float *xk = z + MAX_CHUNK * G;            /* [m, 16] (k <= 16) */
    float *skip = xk + MAX_CHUNK * 16;        /* [m, Sp] */
    float *g = skip + MAX_CHUNK * Sp;         /* [m, Rp] */
    float *o = g + MAX_CHUNK * Rp;            /* [m, OW] */
    float *o1 = o + MAX_CHUNK * OW;           /* [m, Sp] */
    float *logit = o1 + MAX_CHUNK * Sp;       /* [m, 256] */
    float *sz = logit + MAX_CHUNK * N_CLS;    /* [m, 256] */
    float *scdf = sz + MAX_CHUNK * N_CLS;     /* [m, 256] */
    float *a = scdf + MAX_CHUNK * N_CLS;      /* [m, AW]: exc | taps | h */
    float *a1 = a + MAX_CHUNK * AW;           /* [m, A1W]: exc | relu(skip) */
    double u[MAX_CHUNK];
    float temp[MAX_CHUNK];
    int64_t cls[MAX_CHUNK];
    const int record = cl->logits_out != 0, forced = cl->feed != 0;
    const float *out1_w = md->out1_w;         /* [E + Sp, Sp] */
    for (int i = 0; i < m; i++) temp[i] = cl->temperature[vb + i];

    for (int64_t t = 0; t < n; t++) {
        for (int l = 0; l < L && l < PF_AHEAD; l++) FN(prefetch_taps)(md, cl, vb, m, l);
        /* h_0 and the first skip term: x_hist @ start_w + start_b, one [Rp + Sp] row. */
        for (int i = 0; i < m; i++) {
            const int64_t slot = cl->slots[vb + i];
            for (int j = 0; j < K; j++) xk[i * 16 + j] = md->x_hist[slot * K + j];
            if (E) {
                const float *ev = cl->exc + ((vb + i) * n + t) * E;
                for (int j = 0; j < E; j++) a[i * AW + j] = a1[i * A1W + j] = ev[j];
            }
        }
        FN(gemm0)(m, OW, K, xk, 16, md->start_w, OW, md->start_b, 0, o, OW);
        for (int i = 0; i < m; i++) {
            float *hi = a + i * AW + E + KT;
            for (int j = 0; j < Rp; j++) hi[j] = o[i * OW + j];
            FN(put)(skip + i * Sp, o + i * OW + Rp, Sp, Sp);
        }
        for (int l = 0; l < L; l++) {
            const int64_t d = md->dilations[l], size = (K - 1) * d, off = md->offsets[l];
            const int pow2 = (size & (size - 1)) == 0, last = l == L - 1;
            if (l + PF_AHEAD < L) FN(prefetch_taps)(md, cl, vb, m, l + PF_AHEAD);
            for (int i = 0; i < m; i++) {
                const int64_t v = vb + i, slot = cl->slots[v], tv = md->t_pos[slot];
                const float *cv = cl->cond + (v * 2 + (t < cl->sw[v] ? 0 : 1)) * C + (int64_t)l * 2 * R;
                float *zi = z + i * G;
                FN(put)(zi, cv, R, Rp);
                FN(put)(zi + Rp, cv + R, R, Rp);
                float *ai = a + i * AW + E;
                for (int tap = 0; tap < K - 1; tap++) {
                    const int64_t back = tv - (K - 1 - tap) * d;
                    const int64_t src = off + ring_row(back, size, pow2);
                    const float *hs = md->hist + (slot * H + src) * R;
                    float *ti = ai + tap * Rp;
                    if (R == Rp && R % VW == 0)
                        for (int j = 0; j < R; j += VW) *(VF *)(ti + j) = *(const VF *)(hs + j);
                    else {
                        for (int j = 0; j < R; j++) ti[j] = hs[j];
                        for (int j = R; j < Rp; j++) ti[j] = 0.0f;
                    }
                }
                /* h_l[t] overwrites the oldest tap, read just above */
                const int64_t dst = off + ring_row(tv, size, pow2);
                float *hd = md->hist + (slot * H + dst) * R;
                const float *hi = ai + KT;
                for (int j = 0; j < R; j++) hd[j] = hi[j];
            }
            FN(gemm)(m, G, AW, a, AW, md->gate_w + (int64_t)l * (E + K * Rp) * G, G, z, G);
            FN(gate_m)(m, Rp, z, g);
            /* g @ out_w + out_b: residual and skip side by side; the last layer only its skip. */
            const int c0 = last ? Rp : 0;
            const float *ob = md->out_b + (int64_t)l * OW;
            FN(gemm0)(m, OW - c0, Rp, g, Rp, md->out_w + (int64_t)l * Rp * OW + c0, OW, ob + c0, 0, o + c0, OW);
            for (int i = 0; i < m; i++) {
                if (!last) {
                    float *hi = a + i * AW + E + KT;
                    for (int j = 0; j < Rp; j++) hi[j] += o[i * OW + j];
                }
                FN(add)(skip + i * Sp, o + i * OW + Rp, Sp);
            }
        }
        /* relu(relu(skip) @ out1_w + cond_out1 (+ excitation)) @ logits_w + logits_b. */
        for (int i = 0; i < m; i++) {
            const int64_t v = vb + i;
            const float *cv = cl->cond + (v * 2 + (t < cl->sw[v] ? 0 : 1)) * C + (int64_t)L * 2 * R;
            FN(put)(o1 + i * Sp, cv, S, Sp);
            float *ri = a1 + i * A1W + E;
            for (int j = 0; j < Sp; j++) ri[j] = skip[i * Sp + j] > 0.0f ? skip[i * Sp + j] : 0.0f;
        }
        FN(gemm)(m, Sp, A1W, a1, A1W, out1_w, Sp, o1, Sp);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < Sp; j++) skip[i * Sp + j] = o1[i * Sp + j] > 0.0f ? o1[i * Sp + j] : 0.0f;
            u[i] = cl->noise[(vb + i) * n + t];
        }
        FN(gemm0)(m, N_CLS, Sp, skip, Sp, md->logits_w, N_CLS, md->logits_b, 0, logit, N_CLS);
        FN(sample)(m, logit, u, temp, sz, scdf, cls);
        for (int i = 0; i < m; i++) {
            const int64_t v = vb + i, slot = cl->slots[v];
            if (record)
                for (int j = 0; j < N_CLS; j++) cl->logits_out[(v * n + t) * N_CLS + j] = logit[i * N_CLS + j];
            int64_t c = cls[i];
            cl->out[v * n + t] = c;
            if (forced) c = cl->feed[v * n + t];
            float *xh = md->x_hist + slot * K;
            for (int j = 0; j < K - 1; j++) xh[j] = xh[j + 1];
            xh[K - 1] = (float)(c - 128) / 128.0f;
            md->t_pos[slot] += 1;
        }
    }
}

/* g = sigmoid(a) * tanh(b) for n floats, any n (the gate alone, for tests). */
static void FN(gate_rows)(int64_t n, const float *a, const float *b, float *g) {
    float ta[VW], tb[VW], tg[VW];
    int64_t whole = n - n % VW;
    for (int64_t j = 0; j < whole; j += VW) FN(gate)(VW, a + j, b + j, g + j);
    if (whole == n) return;
    for (int j = 0; j < VW; j++) {
        ta[j] = whole + j < n ? a[whole + j] : 0.0f;
        tb[j] = whole + j < n ? b[whole + j] : 0.0f;
    }
    FN(gate)(VW, ta, tb, tg);
    for (int64_t j = whole; j < n; j++) g[j] = tg[j - whole];
}

static void FN(run_block)(const fn_model *md, const fn_call *cl, int64_t lo, int64_t hi, float *scratch) {
    for (int64_t vb = lo; vb < hi; vb += MAX_CHUNK) {
        int m = hi - vb < MAX_CHUNK ? (int)(hi - vb) : MAX_CHUNK;
        FN(run_chunk)(md, cl, vb, m, scratch);
    }
}

#undef VF
#undef VI
#undef VD
#undef VL
#undef VH
#undef VHI
#undef FN
#undef TILE_CASE
