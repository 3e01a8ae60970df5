#ifndef TPI_BACKEND_CPU_GEMM_BF16_H
#define TPI_BACKEND_CPU_GEMM_BF16_H
/* The bf16-dot GEMM: bf16 weights (matmul_packed.h's panels, unchanged)
 * times activations rounded to bf16, on vdpbf16ps. gemm_bf16.c drives it
 * for matmul.c when a set has bf16_dot; gemm_bf16_avx512.c holds the
 * kernels (AVX512_BF16/BW: call only where select.c found them). */
#include "backend/cpu/matmul_packed.h"

/* Rows and accumulators one tile holds: 18 rows of one panel, or 12 rows of
 * two panels (24 of the 32 vector registers; the rest hold the weights). */
#define TPI_GEMM_BF16_MAX_ROWS 18
#define TPI_GEMM_BF16_MAX_ACC 24

/* A tile: c[rows, cols] (row stride ldc; cols <= 16 * panels, fewer at a
 * weight's last panel) = (add ? c : 0) + the kc k of the packed rows a
 * times panel b (and b + panel_bytes). Row r's (k, k + 1) pair kp is the
 * 32-bit word a[(r / MR) * a_blk + kp * MR + r % MR], k in its low half. */
typedef void (*tpi_gemm_bf16_fn)(int64_t kc, const uint32_t *a, int64_t a_blk, const uint8_t *b, size_t panel_bytes,
                                 float *c, int64_t ldc, int64_t cols, int add);
/* The tile of `rows` rows and `panels` (1 or 2) panels; NULL past
 * TPI_GEMM_BF16_MAX_ROWS rows (one panel) or MAX_ACC / 2 rows (two). */
tpi_gemm_bf16_fn tpi_avx512bf16_tile_fn(int rows, int panels);
/* Packs rows [MR * blk, MR * blk + MR) of x [n, K] rounded to bf16 (nearest
 * even, tpi_f32_to_bf16's bits) as the tiles read them: ap[kp * MR + i],
 * kp < (K + 1) / 2, zero past K and past row n. */
void tpi_avx512bf16_pack_rows(uint32_t *ap, const float *x, int64_t n, int64_t K, int64_t blk);

/* One weight of a call: its packed panels, its O outputs, where y [n, O]
 * goes. All of a call's weights share K. */
typedef struct tpi_bf16_out {
    float *y;
    const uint8_t *packed;
    int64_t O;
} tpi_bf16_out;

/* Scratch words tpi_gemm_bf16 needs for n rows of K. */
size_t tpi_gemm_bf16_scratch_words(int64_t n, int64_t K);
/* y = x [n, K] @ W^T for each of the count outputs, n > 0, K > 0, on the
 * OpenMP threads; ap: tpi_gemm_bf16_scratch_words(n, K) words. */
void tpi_gemm_bf16(const tpi_bf16_out *outs, int count, const float *x, int64_t n, int64_t K, uint32_t *ap);
#endif
