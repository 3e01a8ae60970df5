/* The decode GEMV with 512-bit vectors, over the AVX2 layout (so the
 * packing and the memory stay the same; select.c picks it, with
 * gemm_avx512.c, where the processor has AVX-512F). Why: a bf16 decode streams weights at the
 * memory's rate only if widening and FMAs keep up, and with AVX2 they do not
 * (bench_gemv_loop: about 75-90 % of a plain read from memory on Zen 5; the
 * 512-bit loop reaches the plain read). One zmm holds one k of two adjacent
 * panels, panel p in lanes 0-7 and panel p + 1 in lanes 8-15, so each k
 * costs one broadcast, one shift, one AND and two FMAs per 32 weights,
 * half the instructions of the AVX2 pair kernel. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"

#define INLINE static inline __attribute__((always_inline))
#ifndef PREFETCH
#define PREFETCH 2048 /* bytes ahead in each of the two panels; see below */
#endif

/* k's 16 values of panels p (at bp) and p + 1 (at bq) as b0 = [p cols 0-7 |
 * p+1 cols 0-7] and b1 = [p cols 8-15 | p+1 cols 8-15], for every dtype. */
INLINE void load_pair(const uint8_t *bp, const uint8_t *bq, tpi_dtype dt, __m512 *b0, __m512 *b1)
{
    if (dt == TPI_BF16) { /* stored c0 c8 c1 c9 ...: shift for 0-7, mask for 8-15 */
        __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)bp)),
                                       _mm256_loadu_si256((const __m256i *)bq), 1);
        *b0 = _mm512_castsi512_ps(_mm512_slli_epi32(r, 16));
        *b1 = _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u)));
    } else if (dt == TPI_F16) {
        const __m128i *p = (const __m128i *)bp, *q = (const __m128i *)bq;
        *b0 = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(p)), _mm_loadu_si128(q), 1));
        *b1 = _mm512_cvtph_ps(
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(p + 1)), _mm_loadu_si128(q + 1), 1));
    } else {
        const double *p = (const double *)bp, *q = (const double *)bq;
        *b0 = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(p)), _mm256_loadu_pd(q), 1));
        *b1 = _mm512_castpd_ps(
            _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(p + 4)), _mm256_loadu_pd(q + 4), 1));
    }
}

/* Rows 0..N-1 against panels p and p + 1; with one row the k loop runs four
 * independent accumulator sets, with two rows two, so FMA latency never
 * limits the stream. Each line of both panels is prefetched PREFETCH bytes
 * ahead: measured side by side (bench_kernels ... d, Zen 5 VM), the 512-bit
 * loop with it reached 80-85 % of the read bandwidth against 74-76 %
 * without it and 69-74 % for the AVX2 loop; 1, 4 and 8 KB were slower than
 * 2 KB. (The AVX2 loop itself got slower with a prefetch: it has no spare
 * issue slots for it.) */
INLINE void pair(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p,
                 const int N)
{
    const size_t step = NR * esize(dt);
    const uint8_t *bq = bp + (size_t)K * step;
    const float *x0 = x, *x1 = x + K, *x2 = x + 2 * K, *x3 = x + 3 * K;
    __m512 z = _mm512_setzero_ps();
    /* cRU: row R, column half U; d, e, f: further k sets of row 0 (and d1 of row 1) */
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 d00 = z, d01 = z, d10 = z, d11 = z, e00 = z, e01 = z, f00 = z, f01 = z;
    int64_t k = 0;
    /* the lines of k-steps [kk, kk + nk) of both panels, PREFETCH bytes on */
#define PF(kk, nk)                                                                                         \
    do {                                                                                                 \
        for (size_t off = 0; off < (nk) * step; off += 64) {                                             \
            _mm_prefetch((const char *)bp + (size_t)(kk) * step + PREFETCH + off, _MM_HINT_T0);          \
            _mm_prefetch((const char *)bq + (size_t)(kk) * step + PREFETCH + off, _MM_HINT_T0);          \
        }                                                                                                \
    } while (0)
#define STEP(kk, A0, A1, B0, B1, C0, C1, D0, D1)                                                           \
    do {                                                                                                 \
        __m512 b0, b1, a;                                                                                \
        load_pair(bp + (size_t)(kk) * step, bq + (size_t)(kk) * step, dt, &b0, &b1);                     \
        a = _mm512_set1_ps(x0[kk]);                                                                      \
        A0 = _mm512_fmadd_ps(a, b0, A0);                                                                 \
        A1 = _mm512_fmadd_ps(a, b1, A1);                                                                 \
        if (N > 1) {                                                                                     \
            a = _mm512_set1_ps(x1[kk]);                                                                  \
            B0 = _mm512_fmadd_ps(a, b0, B0);                                                             \
            B1 = _mm512_fmadd_ps(a, b1, B1);                                                             \
        }                                                                                                \
        if (N > 2) {                                                                                     \
            a = _mm512_set1_ps(x2[kk]);                                                                  \
            C0 = _mm512_fmadd_ps(a, b0, C0);                                                             \
            C1 = _mm512_fmadd_ps(a, b1, C1);                                                             \
        }                                                                                                \
        if (N > 3) {                                                                                     \
            a = _mm512_set1_ps(x3[kk]);                                                                  \
            D0 = _mm512_fmadd_ps(a, b0, D0);                                                             \
            D1 = _mm512_fmadd_ps(a, b1, D1);                                                             \
        }                                                                                                \
    } while (0)
    if (N == 1) {
        for (; k + 4 <= K; k += 4) {
            PF(k, 4);
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, c10, c11, c20, c21, c30, c31);
            STEP(k + 2, e00, e01, c10, c11, c20, c21, c30, c31);
            STEP(k + 3, f00, f01, c10, c11, c20, c21, c30, c31);
        }
    } else if (N == 2) {
        for (; k + 2 <= K; k += 2) {
            PF(k, 2);
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, d10, d11, c20, c21, c30, c31);
        }
    } else {
        for (; k + 2 <= K; k += 2) {
            PF(k, 2);
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, c00, c01, c10, c11, c20, c21, c30, c31);
        }
    }
    for (; k < K; k++)
        STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
#undef STEP
#undef PF
    c00 = _mm512_add_ps(_mm512_add_ps(c00, d00), _mm512_add_ps(e00, f00));
    c01 = _mm512_add_ps(_mm512_add_ps(c01, d01), _mm512_add_ps(e01, f01));
    c10 = _mm512_add_ps(c10, d10);
    c11 = _mm512_add_ps(c11, d11);
    __m512 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int i = 0; i < N; i++) {
        __m512 lo = out[i][0], hi = out[i][1];
        store_panel_row(y + i * O, O, p, _mm512_castps512_ps256(lo), _mm512_castps512_ps256(hi));
        store_panel_row(y + i * O, O, p + 1, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1)),
                        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1)));
    }
}

/* One function per (dtype, rows), so the tests on them fold away in the k loop. */
#define PAIR_FN(dt, N)                                                                                      \
    static void pair_##dt##_##N(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                      \
        pair(y, x, O, K, bp, TPI_##dt, p, N);                                                              \
    }
TPI_EACH_DTYPE_ROWS(PAIR_FN)
#undef PAIR_FN

tpi_panel_fn tpi_avx512_pair_fn(tpi_dtype dt, int rows)
{
    static const tpi_panel_fn fns[3][4] = TPI_DTYPE_ROWS_TABLE(pair);
    return rows >= 1 && rows <= 4 ? fns[dt][rows - 1] : NULL;
}
