/* Native (C) kernel of the fused engine: host/engines/fused_native.py compiles this file on first use and
 * calls it through cffi. The same step as host/engines/fused_kernels.py's numba run_block (see that
 * module for the numerics), organised for the vector units: per sample, each layer's work for
 * all voices of a chunk is a few small matrix products [m, K] @ [K, N] computed in register
 * tiles (m <= 8 voices, N = 64..256 outputs), so every weight vector loaded feeds m FMAs.
 *
 * One translation unit holds three builds of the step (fused_native_body.h included three
 * times): AVX-512 (16 floats per vector), AVX2+FMA (8) and a generic one (4, the compiler's
 * baseline: SSE2 on x86-64, NEON on arm64); fn_run_block picks one per call by its isa argument
 * and fn_isa_supported says which the CPU runs (so one .so serves Zen 3 and Zen 4/5 alike).
 *
 * Weights arrive repacked by fused_native.py: every width padded to a multiple of 16 floats
 * (Rp, Sp) with zeros, the gate matrix's sigmoid and tanh halves each padded to Rp (G = 2 Rp
 * columns), the output matrices [Rp, Rp + Sp]. Padded inputs and weights are zero, so padded
 * outputs stay zero and real outputs are the unpadded sums exactly.
 */

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's loop distribution turns the rows' short copy and fill loops (put, the x_hist shift) into
 * memmove/memset calls: a library call per 32-float row, several per layer and voice, cost ~8% of
 * a step (perf, AVX2 build). Plain loops of whole vectors are cheaper at these lengths. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

#define N_CLS 256
#define MAX_CHUNK 8
/* The tap rows are prefetched PF_AHEAD layers ahead of their use, with __builtin_prefetch's
 * locality PF_LOC (3: into L1); -D either to experiment. */
#ifndef PF_AHEAD
#define PF_AHEAD 2
#endif
#ifndef PF_LOC
#define PF_LOC 3
#endif

typedef struct {
    int32_t n_layers, r, s, k, rp, sp, cond_width, hist_rows, n_exc, pad_;
    const int64_t *offsets, *dilations;             /* [L] */
    const float *start_w;                           /* [k, Rp + Sp] */
    const float *start_b;                           /* [Rp + Sp] */
    const float *gate_w;                            /* [L, E + k Rp, 2 Rp]: excitation rows, tap rows, h's */
    const float *out_w;                             /* [L, Rp, Rp + Sp] */
    const float *out_b;                             /* [L, Rp + Sp] */
    const float *out1_w;                            /* [E + Sp, Sp]: excitation rows, then out1's */
    const float *logits_w;                          /* [Sp, 256] */
    const float *logits_b;                          /* [256] */
    float *hist;                                    /* [capacity, hist_rows, R] */
    float *x_hist;                                  /* [capacity, k] */
    int64_t *t_pos;                                 /* [capacity] */
} fn_model;

typedef struct {
    int64_t n;                                      /* samples in the block */
    int32_t n_exc;                                  /* E (0: none) */
    const int64_t *slots;                           /* [V] */
    const float *cond;                              /* [V, 2, C] */
    const int64_t *sw;                              /* [V] switch sample */
    const double *noise;                            /* [V, n] */
    const float *temperature;                       /* [V] */
    int64_t *out;                                   /* [V, n] */
    float *logits_out;                              /* [V, n, 256] or NULL */
    const int64_t *feed;                            /* [V, n] or NULL */
    const float *exc;                               /* [V, n, E] or NULL */
} fn_call;

/* The row of ring position `pos` (of either sign) in a ring of `size` rows: a mask when size is a
 * power of two. One place for the tap reads, their prefetches and the writes. */
static inline int64_t ring_row(int64_t pos, int64_t size, int pow2) {
    return pow2 ? (pos & (size - 1)) : ((pos % size) + size) % size;
}

/* The constants of host/engines/fused_kernels.py, digit for digit. */
#define LOG2E_F 1.44269504088896341f
#define EXP_C1 0.693359375f
#define EXP_C2 -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f
#define EXP_LO -87.0f
#define LOG2E_D 1.4426950408889634
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_D_LO -200.0
#define INV_FACT2 (1.0 / 2.0)
#define INV_FACT3 (1.0 / 6.0)
#define INV_FACT4 (1.0 / 24.0)
#define INV_FACT5 (1.0 / 120.0)
#define INV_FACT6 (1.0 / 720.0)
#define INV_FACT7 (1.0 / 5040.0)
#define INV_FACT8 (1.0 / 40320.0)
#define INV_FACT9 (1.0 / 362880.0)
#define INV_FACT10 (1.0 / 3628800.0)
#define INV_FACT11 (1.0 / 39916800.0)
#define INV_FACT12 (1.0 / 479001600.0)
#define INV_FACT13 (1.0 / 6227020800.0)

#if defined(__x86_64__) || defined(_M_X64)
#define FN_X86 1
#endif

#if FN_X86
#include <immintrin.h>
#endif

#if FN_X86 && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,bmi,bmi2,f16c")
#elif FN_X86
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,bmi,bmi2,f16c"))), apply_to = function)
#endif
#if FN_X86
#define VW 16
#define MR_MAX 8
#define ACC_MAX 16
#define SUFFIX _avx512
#include "fused_native_body.h"
#undef VW
#undef MR_MAX
#undef ACC_MAX
#undef SUFFIX
#endif
#if FN_X86 && !defined(__clang__)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,f16c")
#elif FN_X86
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2,f16c"))), apply_to = function)
#endif
#if FN_X86
#define VW 8
#define MR_MAX 4
#define ACC_MAX 12
#define SUFFIX _avx2
#include "fused_native_body.h"
#undef VW
#undef MR_MAX
#undef ACC_MAX
#undef SUFFIX
#endif
#if FN_X86 && !defined(__clang__)
#pragma GCC pop_options
#elif FN_X86
#pragma clang attribute pop
#endif

#define VW 4
#define MR_MAX 4
#define ACC_MAX 8
#define SUFFIX _generic
#include "fused_native_body.h"

#include "source_native.h"

enum { FN_GENERIC = 0, FN_AVX2 = 1, FN_AVX512 = 2 };

/* 1 when this CPU (and its OS) runs the build `isa`, else 0. */
int fn_isa_supported(int isa) {
    if (isa == FN_GENERIC) return 1;
#if FN_X86
    __builtin_cpu_init();
    if (isa == FN_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == FN_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* g[j] = sigmoid(a[j]) * tanh(b[j]) for j < n with build `isa`, the kernel's gate alone (for tests).
 * Returns 0, or -1 for an isa this CPU lacks. */
int fn_gate(int isa, int64_t n, const float *a, const float *b, float *g) {
    if (!fn_isa_supported(isa)) return -1;
#if FN_X86
    if (isa == FN_AVX512) { gate_rows_avx512(n, a, b, g); return 0; }
    if (isa == FN_AVX2) { gate_rows_avx2(n, a, b, g); return 0; }
#endif
    gate_rows_generic(n, a, b, g);
    return 0;
}

/* Floats of scratch one worker needs (one chunk's buffers, plus room to align them). */
int64_t fn_scratch_floats(const fn_model *md) {
    const int64_t rp = md->rp, sp = md->sp, g = 2 * rp, ow = rp + sp, e = md->n_exc;
    return MAX_CHUNK * (g + 16 + sp + rp + ow + sp + 3 * N_CLS) +
           MAX_CHUNK * (e + md->k * rp) + MAX_CHUNK * (e + sp) + 16;
}

/* Run the call's voices lo .. hi-1 for its whole block with build `isa`; `scratch` holds
 * fn_scratch_floats floats, one worker's own. Returns 0, -1 for an isa this CPU lacks, or -2 for
 * a call whose excitation width is not the model's. */
int fn_run_block(int isa, const fn_model *md, const fn_call *cl, int64_t lo, int64_t hi, float *scratch) {
    if (!fn_isa_supported(isa)) return -1;
    if (cl->n_exc != md->n_exc) return -2;
    float *s = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
#if FN_X86
    if (isa == FN_AVX512) { run_block_avx512(md, cl, lo, hi, s); return 0; }
    if (isa == FN_AVX2) { run_block_avx2(md, cl, lo, hi, s); return 0; }
#endif
    run_block_generic(md, cl, lo, hi, s);
    return 0;
}
