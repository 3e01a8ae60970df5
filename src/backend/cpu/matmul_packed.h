#ifndef TPI_BACKEND_CPU_MATMUL_PACKED_H
#define TPI_BACKEND_CPU_MATMUL_PACKED_H
/* The packed weight layout that matmul_avx2.c makes and that both its GEMV
 * and gemv_avx512.c read (the layout is described in matmul_avx2.c): panels
 * of NR outputs, k-major. Include only from files compiled with AVX2. */
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"

#define NR 16 /* outputs per weight panel */
#define MR 6  /* rows per packed block of x (prefill): ap[k * MR + i] */

/* tpi_dtype_size is out of line; the kernels need the size as a constant. */
static inline __attribute__((always_inline)) size_t esize(tpi_dtype dt)
{
    return dt == TPI_F32 ? 4 : 2;
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

/* A GEMV kernel: `rows` (fixed per function) rows of x [rows, K] against
 * panel p of a packed weight with O outputs (bp: the panel's first byte),
 * writing columns 16p.. of y [rows, O]. The pair (quad) kernels do panels p
 * and p + 1 (to p + 3) (bp: panel p's first byte; the next panels follow it). */
typedef void (*tpi_panel_fn)(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p);

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

/* gemv_avx512.c: kernels over two (pair) and four (quad: panels p..p + 3)
 * adjacent panels for 1..4 rows, AVX-512F (call only where the processor
 * has it). */
tpi_panel_fn tpi_avx512_pair_fn(tpi_dtype dt, int rows);
tpi_panel_fn tpi_avx512_quad_fn(tpi_dtype dt, int rows);

/* A prefill micro-kernel over two adjacent panels: c[MR, 32] (row stride
 * ldc) = (add ? c : 0) + the kc k-steps of packed rows a times panels b and
 * b + panel_bytes. gemm_avx512.c's, AVX-512F. */
typedef void (*tpi_gemm_pair_fn)(int64_t kc, const float *a, const uint8_t *b, size_t panel_bytes, float *c,
                                 int64_t ldc, int add);
tpi_gemm_pair_fn tpi_avx512_gemm_pair_fn(tpi_dtype dt);
#endif
