/* The decode GEMV on AVX2 + FMA + F16C, over the packed layout
 * (matmul_packed.h): every weight byte is read exactly once, panel by
 * panel, so its speed is the memory's. Weights stay in their stored dtype
 * (half the bytes of f32 for bf16 and f16) and are widened in registers. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"

#define INLINE static inline __attribute__((always_inline))

/* N rows (1..4) against one panel, the whole K in one pass. Named
 * accumulators (GCC keeps arrays of them on the stack); with one row the k
 * loop is unrolled into 4 independent sets, with two rows into 2, so the FMA
 * latency never limits the stream. */
INLINE void gemv_panel(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p,
                       const int N)
{
    const size_t step = NR * esize(dt);
    const float *x0 = x, *x1 = x + K, *x2 = x + 2 * K, *x3 = x + 3 * K;
    __m256 z = _mm256_setzero_ps();
    /* cRU: row R, column half U; dR: a second k set for N <= 2; eR, fR: third and fourth for N = 1 */
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m256 d00 = z, d01 = z, d10 = z, d11 = z, e00 = z, e01 = z, f00 = z, f01 = z;
    int64_t k = 0;
#define STEP(kk, A0, A1, B0, B1, C0, C1, D0, D1)                                           \
    do {                                                                                 \
        __m256 b0, b1, a;                                                                \
        load16(bp + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        a = _mm256_broadcast_ss(x0 + (kk));                                              \
        A0 = _mm256_fmadd_ps(a, b0, A0);                                                 \
        A1 = _mm256_fmadd_ps(a, b1, A1);                                                 \
        if (N > 1) {                                                                     \
            a = _mm256_broadcast_ss(x1 + (kk));                                          \
            B0 = _mm256_fmadd_ps(a, b0, B0);                                             \
            B1 = _mm256_fmadd_ps(a, b1, B1);                                             \
        }                                                                                \
        if (N > 2) {                                                                     \
            a = _mm256_broadcast_ss(x2 + (kk));                                          \
            C0 = _mm256_fmadd_ps(a, b0, C0);                                             \
            C1 = _mm256_fmadd_ps(a, b1, C1);                                             \
        }                                                                                \
        if (N > 3) {                                                                     \
            a = _mm256_broadcast_ss(x3 + (kk));                                          \
            D0 = _mm256_fmadd_ps(a, b0, D0);                                             \
            D1 = _mm256_fmadd_ps(a, b1, D1);                                             \
        }                                                                                \
    } while (0)
    if (N == 1) {
        for (; k + 4 <= K; k += 4) {
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, c10, c11, c20, c21, c30, c31);
            STEP(k + 2, e00, e01, c10, c11, c20, c21, c30, c31);
            STEP(k + 3, f00, f01, c10, c11, c20, c21, c30, c31);
        }
    } else if (N == 2) {
        for (; k + 2 <= K; k += 2) {
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, d10, d11, c20, c21, c30, c31);
        }
    } else {
        for (; k < K; k++)
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
    }
    for (; k < K; k++)
        STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
#undef STEP
    c00 = _mm256_add_ps(_mm256_add_ps(c00, d00), _mm256_add_ps(e00, f00));
    c01 = _mm256_add_ps(_mm256_add_ps(c01, d01), _mm256_add_ps(e01, f01));
    c10 = _mm256_add_ps(c10, d10);
    c11 = _mm256_add_ps(c11, d11);
    __m256 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int i = 0; i < N; i++)
        store_panel_row(y + i * O, O, p, out[i][0], out[i][1]);
}

/* Decode (one row) on two adjacent panels at once: one broadcast of x[k]
 * feeds four FMAs instead of two. In cache this runs ~15 % faster than
 * gemv_panel's one row, which matters because the widening and FMAs of a
 * bf16 stream overlap only partly with its memory reads. */
INLINE void gemv_panel2(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p)
{
    const size_t step = NR * esize(dt);
    const uint8_t *bq = bp + (size_t)K * step;
    __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, d00 = z, d01 = z, d10 = z, d11 = z;
    int64_t k = 0;
#define STEP2(kk, A0, A1, B0, B1)                                                          \
    do {                                                                                 \
        __m256 b0, b1, a = _mm256_broadcast_ss(x + (kk));                                \
        load16(bp + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        A0 = _mm256_fmadd_ps(a, b0, A0);                                                 \
        A1 = _mm256_fmadd_ps(a, b1, A1);                                                 \
        load16(bq + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        B0 = _mm256_fmadd_ps(a, b0, B0);                                                 \
        B1 = _mm256_fmadd_ps(a, b1, B1);                                                 \
    } while (0)
    for (; k + 2 <= K; k += 2) {
        STEP2(k, c00, c01, c10, c11);
        STEP2(k + 1, d00, d01, d10, d11);
    }
    for (; k < K; k++)
        STEP2(k, c00, c01, c10, c11);
#undef STEP2
    store_panel_row(y, O, p, _mm256_add_ps(c00, d00), _mm256_add_ps(c01, d01));
    store_panel_row(y, O, p + 1, _mm256_add_ps(c10, d10), _mm256_add_ps(c11, d11));
}

/* One specialised function per (dtype, rows) so that the dtype tests and the
 * row loops fold away inside the k loop (OpenMP outlines its loop bodies
 * before inlining, so the specialisation must happen outside them). */
#define PANEL_FN(dt, N)                                                                                  \
    static void panel_##dt##_##N(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                    \
        gemv_panel(y, x, O, K, bp, TPI_##dt, p, N);                                                       \
    }
TPI_EACH_DTYPE_ROWS(PANEL_FN)
#undef PANEL_FN
#define PANEL2_FN(dt)                                                                                    \
    static void panel2_##dt(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                    \
        gemv_panel2(y, x, O, K, bp, TPI_##dt, p);                                                         \
    }
PANEL2_FN(BF16)
PANEL2_FN(F16)
PANEL2_FN(F32)
#undef PANEL2_FN

tpi_panel_fn tpi_avx2_panel_fn(tpi_dtype dt, int rows)
{
    static const tpi_panel_fn fns[3][4] = TPI_DTYPE_ROWS_TABLE(panel);
    return rows >= 1 && rows <= 4 ? fns[dt][rows - 1] : NULL;
}

/* For one row (decode) only; more rows take gemv_panel. */
tpi_panel_fn tpi_avx2_pair_fn(tpi_dtype dt, int rows)
{
    static const tpi_panel_fn fns[3] = {[TPI_F32] = panel2_F32, [TPI_BF16] = panel2_BF16, [TPI_F16] = panel2_F16};
    return rows == 1 ? fns[dt] : NULL;
}
