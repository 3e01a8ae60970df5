#ifndef TPI_BACKEND_CPU_MATMUL_PACKED_H
#define TPI_BACKEND_CPU_MATMUL_PACKED_H
/* The packed weight layout that matmul.c makes and every matmul kernel
 * reads, and the kernels' signatures.
 *
 * The O outputs of a weight W [O, K] are cut into panels of NR = 16 (the
 * last one zero-padded); panel p holds, for k = 0..K-1 in order, the 16
 * values W[16p + j][k] in the stored dtype, so one panel is one contiguous
 * stream of 16 K elements for both the GEMM and the GEMV. bf16 stores the 16
 * values of a k interleaved as c0 c8 c1 c9 ... c7 c15, so that one 32-byte
 * load widens to columns 0..7 with a 32-bit shift left by 16 and to columns
 * 8..15 with an AND that keeps the high halves; f16 and f32 stay in order. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"

#define NR 16 /* outputs per weight panel */
#define MR 6  /* rows per packed block of x (prefill): ap[k * MR + i] */

/* tpi_dtype_size is out of line; the kernels need the size as a constant. */
static inline __attribute__((always_inline)) size_t esize(tpi_dtype dt)
{
    return dt == TPI_F32 ? 4 : 2;
}

/* A GEMV kernel: `rows` (fixed per function) rows of x [rows, K] against
 * panel p of a packed weight with O outputs (bp: the panel's first byte),
 * writing columns 16p.. of y [rows, O]. The pair (quad) kernels do panels p
 * and p + 1 (to p + 3) (bp: panel p's first byte; the next panels follow it). */
typedef void (*tpi_panel_fn)(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p);

/* A prefill micro-kernel: c[MR, 16] (row stride ldc) = (add ? c : 0) + the
 * kc k-steps of packed rows a times panel b. */
typedef void (*tpi_gemm_fn)(int64_t kc, const float *a, const uint8_t *b, float *c, int64_t ldc, int add);
/* The same over two adjacent panels: c[MR, 32] from panels b and
 * b + panel_bytes. */
typedef void (*tpi_gemm_pair_fn)(int64_t kc, const float *a, const uint8_t *b, size_t panel_bytes, float *c,
                                 int64_t ldc, int add);

/* The kernels are specialised per (dtype, rows) so that the dtype tests and
 * row loops fold away inside the k loop: M(dt, rows) for each, and the
 * [dtype][rows - 1] table of the functions named prefix_DT_ROWS. */
#define TPI_EACH_DTYPE_ROWS(M)                                                                             \
    M(BF16, 1) M(BF16, 2) M(BF16, 3) M(BF16, 4) M(F16, 1) M(F16, 2) M(F16, 3) M(F16, 4) M(F32, 1) M(F32, 2) \
        M(F32, 3) M(F32, 4)
#define TPI_DTYPE_ROWS_TABLE(prefix)                                                                       \
    {                                                                                                    \
        [TPI_F32] = {prefix##_F32_1, prefix##_F32_2, prefix##_F32_3, prefix##_F32_4},                    \
        [TPI_BF16] = {prefix##_BF16_1, prefix##_BF16_2, prefix##_BF16_3, prefix##_BF16_4},               \
        [TPI_F16] = {prefix##_F16_1, prefix##_F16_2, prefix##_F16_3, prefix##_F16_4},                    \
    }

/* gemv_avx2.c: one panel for 1..4 rows; two adjacent panels (pair) for one
 * row. AVX2/FMA/F16C. */
tpi_panel_fn tpi_avx2_panel_fn(tpi_dtype dt, int rows);
tpi_panel_fn tpi_avx2_pair_fn(tpi_dtype dt, int rows);
/* gemm_avx2.c: the 6x16 prefill micro-kernel. AVX2/FMA/F16C. */
tpi_gemm_fn tpi_avx2_gemm_fn(tpi_dtype dt);
/* gemv_avx512.c: two (pair) and four (quad) adjacent panels for 1..4 rows;
 * gemm_avx512.c: the 6x32 prefill micro-kernel. AVX-512F: call only where
 * the processor has it. */
tpi_panel_fn tpi_avx512_pair_fn(tpi_dtype dt, int rows);
tpi_panel_fn tpi_avx512_quad_fn(tpi_dtype dt, int rows);
tpi_gemm_pair_fn tpi_avx512_gemm_pair_fn(tpi_dtype dt);
/* Widens kc k-steps of two adjacent bf16 or f16 panels (b, b + panel_bytes)
 * to fp32 in column order: panel 0 at dst[k * 16 + j], panel 1 kc * 16
 * floats further, which the f32 pair kernel takes with panel_bytes
 * kc * 64. AVX-512F. */
void tpi_avx512_gemm_widen_pair(int64_t kc, const uint8_t *b, size_t panel_bytes, tpi_dtype dt, float *dst);

#ifdef __AVX2__
#include <immintrin.h>

/* Widens the 16 packed values of one k into columns 0..7 and 8..15. */
static inline __attribute__((always_inline)) void load16(const void *p, tpi_dtype dt, __m256 *b0, __m256 *b1)
{
    if (dt == TPI_BF16) {
        __m256i r = _mm256_loadu_si256((const __m256i *)p);
        *b0 = _mm256_castsi256_ps(_mm256_slli_epi32(r, 16));
        *b1 = _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
    } else if (dt == TPI_F16) {
        *b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        *b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p + 1));
    } else {
        *b0 = _mm256_loadu_ps((const float *)p);
        *b1 = _mm256_loadu_ps((const float *)p + 8);
    }
}

/* Columns 0..7 and 8..15 of one output row of panel p (the last panel may
 * hold fewer than 16 outputs). */
static inline __attribute__((always_inline)) void store_panel_row(float *y, int64_t O, int64_t p, __m256 lo,
                                                                  __m256 hi)
{
    int64_t cols = O - p * NR < NR ? O - p * NR : NR;
    float *yp = y + p * NR;
    if (cols == NR) {
        _mm256_storeu_ps(yp, lo);
        _mm256_storeu_ps(yp + 8, hi);
        return;
    }
    float t[NR];
    _mm256_storeu_ps(t, lo);
    _mm256_storeu_ps(t + 8, hi);
    memcpy(yp, t, (size_t)cols * sizeof *yp);
}
#endif
#endif
