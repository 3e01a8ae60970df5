/* The decode GEMV with 512-bit vectors, over the same packed layout
 * (matmul_packed.h), for the cpu-avx512 set. A bf16 decode streams weights
 * at the memory's rate only if widening and FMAs keep up, which the AVX2
 * loop's do not (bench_gemv_loop compares both with a plain read). One zmm
 * holds one k of two adjacent panels, panel p in lanes 0-7 and panel p + 1
 * in lanes 8-15, so each k costs one broadcast, one shift, one AND and two
 * FMAs per 32 weights, half the instructions of the AVX2 pair kernel. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"
#include "backend/cpu/tuning.h"

#define INLINE static inline __attribute__((always_inline))

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

/* Rows 0..N-1 against the W (2 or 4) panels p..p + W - 1, one zmm per pair
 * of panels and k. Four panels at once are four sequential streams, and the
 * hardware prefetcher keeps more lines in flight over four streams than over
 * two: one core's read rate from memory is bound by its lines in flight, not
 * by the memory. The k loop runs S independent accumulator sets so that at
 * least 8 FMA chains hide the FMA latency, and each line of every panel is
 * prefetched TPI_GEMV512_PREFETCH bytes ahead. */
INLINE void span(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p,
                 const int N, const int W)
{
    const size_t step = NR * esize(dt), pbytes = (size_t)K * step;
    const int S = N * W >= 8 ? 1 : 8 / (N * W); /* independent k sets */
    const int KB = S < 2 ? 2 : S;               /* k-steps per iteration: at least one line of bf16 */
    __m512 acc[4][4][4];                        /* [set][row][zmm of the k-step]; GCC keeps them in registers */
    for (int s = 0; s < S; s++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < W; j++)
                acc[s][i][j] = _mm512_setzero_ps();
#define KSTEP(kk, set)                                                                                     \
    do {                                                                                                 \
        __m512 b[4];                                                                                     \
        for (int q = 0; q < W / 2; q++)                                                                  \
            load_pair(bp + 2 * q * pbytes + (size_t)(kk) * step, bp + (2 * q + 1) * pbytes + (size_t)(kk) * step, \
                      dt, &b[2 * q], &b[2 * q + 1]);                                                     \
        for (int i = 0; i < N; i++) {                                                                    \
            __m512 a = _mm512_set1_ps(x[i * K + (kk)]);                                                  \
            for (int j = 0; j < W; j++)                                                                  \
                acc[set][i][j] = _mm512_fmadd_ps(a, b[j], acc[set][i][j]);                               \
        }                                                                                                \
    } while (0)
    int64_t k = 0;
    for (; k + KB <= K; k += KB) {
        /* Near the end, where the lines ahead are the next panel's, which
         * this call is already reading, the lines of panel p + W + w instead:
         * the next unit's, if this thread takes it (always so with one
         * thread), so that its start is not left to demand misses. */
        size_t ahead = (size_t)k * step + TPI_GEMV512_PREFETCH;
        if (ahead >= pbytes)
            ahead += (size_t)(W - 1) * pbytes;
        for (int w = 0; w < W; w++)
            for (size_t off = 0; off < KB * step; off += 64)
                _mm_prefetch((const char *)bp + w * pbytes + ahead + off, _MM_HINT_T0);
        for (int kk = 0; kk < KB; kk++)
            KSTEP(k + kk, kk % S);
    }
    for (; k < K; k++)
        KSTEP(k, 0);
#undef KSTEP
    for (int s = 1; s < S; s++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < W; j++)
                acc[0][i][j] = _mm512_add_ps(acc[0][i][j], acc[s][i][j]);
    /* zmm 2q holds columns 0-7 of panels p + 2q (low half) and p + 2q + 1
     * (high half); zmm 2q + 1 their columns 8-15 */
    for (int i = 0; i < N; i++)
        for (int q = 0; q < W / 2; q++) {
            __m512 lo = acc[0][i][2 * q], hi = acc[0][i][2 * q + 1];
            store_panel_row(y + i * O, O, p + 2 * q, _mm512_castps512_ps256(lo), _mm512_castps512_ps256(hi));
            store_panel_row(y + i * O, O, p + 2 * q + 1,
                            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1)),
                            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1)));
        }
}

/* One function per (dtype, rows, width), so the tests on them fold away in the k loop. */
#define SPAN_FN(dt, N)                                                                                      \
    static void pair_##dt##_##N(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                      \
        span(y, x, O, K, bp, TPI_##dt, p, N, 2);                                                           \
    }                                                                                                      \
    static void quad_##dt##_##N(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                      \
        span(y, x, O, K, bp, TPI_##dt, p, N, 4);                                                           \
    }
TPI_EACH_DTYPE_ROWS(SPAN_FN)
#undef SPAN_FN

tpi_panel_fn tpi_avx512_pair_fn(tpi_dtype dt, int rows)
{
    static const tpi_panel_fn fns[3][4] = TPI_DTYPE_ROWS_TABLE(pair);
    return rows >= 1 && rows <= 4 ? fns[dt][rows - 1] : NULL;
}

tpi_panel_fn tpi_avx512_quad_fn(tpi_dtype dt, int rows)
{
    static const tpi_panel_fn fns[3][4] = TPI_DTYPE_ROWS_TABLE(quad);
    return rows >= 1 && rows <= 4 ? fns[dt][rows - 1] : NULL;
}
