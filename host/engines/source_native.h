/* A learned source's excitation per block (host/engines/block_source.py calls it), in the fused
 * engine's build (fused_native.c includes this file): the same numbers as the numpy reference,
 * block_source.rows_source with kernel="numpy" (nsynth_live.excitation.unit_source on
 * amplitudes interpolated between frame rows), without its [V, K, n] temporaries, whose
 * allocation alone cost more than the arithmetic (2.7 ms a block of 8 voices on a Zen 3 core).
 *
 * Numerics, as numpy computes them: each amplitude a = A[ia] * (1 - w) + A[ib] * w in float32
 * (no FMA: this function is built with fp-contract off); Clenshaw's recurrence
 * b0 = 2 cos(p) b1 - b2 + a from the last harmonic down, in float64; the sums b1 sin(p) and
 * b1 cos(p) - b2 rounded to float32; the norm sqrt(sum_k a_k^2 + 1e-12) with the float32 squares
 * summed in float64 from k = 0 up; unit = float32(sum / norm) * gain. */

#include <math.h>

#pragma STDC FP_CONTRACT OFF /* clang's way; GCC's is the optimize attribute below */

#define SRC_LANES 8 /* samples whose recurrences run side by side: each is a serial chain */

__attribute__((optimize("fp-contract=off")))
void fn_source(int64_t nv, int64_t n, int32_t k, int32_t nrows, const float *rows, const int32_t *ia,
               const int32_t *ib, const float *w, const double *phase, float gain, float *unit,
               float *level) {
    for (int64_t v = 0; v < nv; v++) {
        const float *tab = rows + v * (int64_t)nrows * k;
        for (int64_t j0 = 0; j0 < n; j0 += SRC_LANES) {
            const int64_t m = n - j0 < SRC_LANES ? n - j0 : SRC_LANES;
            const float *ra[SRC_LANES], *rb[SRC_LANES];
            float wa[SRC_LANES], wj[SRC_LANES];
            double c[SRC_LANES], s[SRC_LANES], two_c[SRC_LANES], b1[SRC_LANES], b2[SRC_LANES], norm[SRC_LANES];
            for (int l = 0; l < SRC_LANES; l++) {
                const int64_t at = v * n + j0 + (l < m ? l : m - 1); /* spare lanes repeat the last sample */
                ra[l] = tab + (int64_t)ia[at] * k;
                rb[l] = tab + (int64_t)ib[at] * k;
                wj[l] = w[at];
                wa[l] = 1.0f - wj[l];
                c[l] = cos(phase[at]);
                s[l] = sin(phase[at]);
                two_c[l] = 2.0 * c[l];
                b1[l] = b2[l] = norm[l] = 0.0;
            }
            for (int32_t h = k - 1; h >= 0; h--) {
                for (int l = 0; l < SRC_LANES; l++) {
                    const float a = ra[l][h] * wa[l] + rb[l][h] * wj[l];
                    double b0 = two_c[l] * b1[l];
                    b0 -= b2[l];
                    b0 += (double)a;
                    b2[l] = b1[l];
                    b1[l] = b0;
                }
            }
            for (int32_t h = 0; h < k; h++) {
                for (int l = 0; l < SRC_LANES; l++) {
                    const float a = ra[l][h] * wa[l] + rb[l][h] * wj[l];
                    norm[l] += (double)(a * a);
                }
            }
            for (int l = 0; l < m; l++) {
                const int64_t at = v * n + j0 + l;
                const double r = sqrt(norm[l] + 1e-12);
                /* volatile: the sums are rounded to float32 before the division, as numpy does (GCC's
                 * default excess precision for C would otherwise divide the float64 values). */
                volatile float sum_sin = (float)(b1[l] * s[l]), sum_cos = (float)(b1[l] * c[l] - b2[l]);
                unit[2 * at] = (float)((double)sum_sin / r) * gain;
                unit[2 * at + 1] = (float)((double)sum_cos / r) * gain;
                if (level) level[at] = sum_cos;
            }
        }
    }
}
