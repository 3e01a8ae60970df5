#ifndef TPI_BACKEND_CPU_QUANT_KERNELS_H
#define TPI_BACKEND_CPU_QUANT_KERNELS_H
/* Matmul on weights of a block type (Q8_0, Q4_0, Q4_K, Q6_K) without
 * dequantizing them: each row of x is quantized to 8-bit blocks (below), and
 * the kernels take integer dot products of the weights' quants with the
 * activations' quants, scaled and accumulated in fp32.
 *  - Q8_0 and Q4_0 weights read activation blocks of 32 with one scale
 *    each, the same grain as the weights, stored eight blocks to a
 *    tpi_q8a8 so that the kernels load eight scales as one vector (the
 *    weights' eight scales are multiplied by them at once, not block by
 *    block); Q4_0's (q - 8) becomes q's unsigned dot plus dsum = -8 * d *
 *    sum(a), applied once per eight blocks. The packed kernels take the
 *    offsets (Q8_0's 128 of w ^ 0x80, Q4_0's 8) in integers from nsum.
 *  - Q4_K and Q6_K read tpi_q8k blocks of 256 with the sums of each 16
 *    quants: Q4_K's mins and Q6_K's offset of 32 come out of those sums.
 * An activation row holds as many blocks as the weight row (k_off: x's
 * column 0 is block position k_off, the rest are zeros); a row of 32-blocks
 * is ceil(nb / 8) tpi_q8a8, the last one padded with zero blocks. */
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

typedef struct tpi_q8a8 {
    float d[8];       /* block j: x[32 j + i] ~ d[j] * qs[32 j + i] */
    float dsum[8];    /* -8 * d[j] * (sum of block j's qs) */
    int32_t nsum[8];  /* -(sum of block j's qs): the packed kernels' offsets (quant_pack_simd.h) */
    int8_t qs[256];   /* -127..127 */
} tpi_q8a8;

typedef struct tpi_q8k {
    float d;
    int8_t qs[256];     /* -127..127 */
    int16_t bsums[16];  /* sums of qs[16 g .. 16 g + 16) */
} tpi_q8k;

/* Bytes of a quantized activation row of nb blocks for weights of block
 * type t (0 for other types). */
size_t tpi_qact_row_bytes(tpi_dtype t, int64_t nb);
/* Quantizes one row x[0, cols) into the activation row of nb blocks for
 * weights of type t, x's column 0 at block position k_off, zeros outside.
 * Shared by every kernel set, so that they all see the same quants. */
void tpi_qact_quantize(tpi_dtype t, const float *x, int64_t cols, int64_t k_off, int64_t nb, void *dst);
/* Blocks in a row of w (ceil((k_off + cols) / block)). */
int64_t tpi_qweight_blocks(const tpi_weight *w);

/* y[r * y_stride] = dot(weight row w of nb blocks, activation row r) for r <
 * m (1..TPI_QMM_GROUP); activation row r starts a_stride bytes after row r - 1. */
typedef void (*tpi_qdot_fn)(int64_t nb, const void *w, const void *a, size_t a_stride, int m, float *y,
                            int64_t y_stride);

/* Each set's dot kernels for weight type t (NULL for a type it lacks). */
tpi_qdot_fn tpi_ref_qdot(tpi_dtype t);
tpi_qdot_fn tpi_avx2_qdot(tpi_dtype t);   /* AVX2, FMA, F16C */
tpi_qdot_fn tpi_avx512_qdot(tpi_dtype t); /* plus AVX-512 F/BW/VL/VNNI (vpdpbusd, vpdpwssd) */

/* The plain reference matmul for one block-type weight (ref.c's): one row
 * and one output at a time, no tiling. */
void tpi_qmatmul_ref(float *y, const float *x, int64_t n, const tpi_weight *w);
/* The threaded driver (quant_matmul.c): ys[i] = x @ ws[i]^T for block-type
 * weights that share cols, with dot kernels from pick, and for weights
 * packed eight rows at a time (quant_pack.h) packed kernels from ppick
 * (NULL, or NULL for a type: the reference's), and those on two groups
 * at once from ppick16 where it gives one (NULL: none);
 * quant_pack.h says what a tpi_qpdot_fn computes. */
typedef void (*tpi_qpdot_fn)(int64_t nb, const void *g, const void *a, size_t a_stride, int m, float *y,
                             int64_t y_stride);
void tpi_qmatmul(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                 tpi_qdot_fn (*pick)(tpi_dtype), tpi_qpdot_fn (*ppick)(tpi_dtype),
                 tpi_qpdot_fn (*ppick16)(tpi_dtype));
/* 1 where the processor runs tpi_avx2_qdot's and tpi_avx512_qdot's
 * instructions (select.c). */
int tpi_cpu_has_avx2(void);
int tpi_cpu_has_avx512_vnni(void);
#endif
