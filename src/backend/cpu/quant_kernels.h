#ifndef TPI_BACKEND_CPU_QUANT_KERNELS_H
#define TPI_BACKEND_CPU_QUANT_KERNELS_H
/* Matmul on weights of a block type (Q8_0, Q4_0, Q4_K, Q6_K) without
 * dequantizing them: each row of x is quantized to 8-bit blocks (below), and
 * the kernels take integer dot products of the weights' quants with the
 * activations' quants, scaled and accumulated in fp32.
 *  - Q8_0 and Q4_0 weights read tpi_q8a blocks of 32: one scale per block,
 *    the same grain as the weights, plus the sum of the quants, which turns
 *    Q4_0's (q - 8) into q's unsigned dot minus 8 * sum.
 *  - Q4_K and Q6_K read tpi_q8k blocks of 256 with the sums of each 16
 *    quants: Q4_K's mins and Q6_K's offset of 32 come out of those sums.
 * An activation row holds as many blocks as the weight row (k_off: x's
 * column 0 is block position k_off, the rest are zeros). */
#include <stdint.h>

#include "backend/backend.h"

typedef struct tpi_q8a {
    float d;       /* x[i] ~ d * qs[i] */
    int32_t sum;   /* sum of qs */
    int8_t qs[32]; /* -127..127 */
} tpi_q8a;

typedef struct tpi_q8k {
    float d;
    int8_t qs[256];     /* -127..127 */
    int16_t bsums[16];  /* sums of qs[16 g .. 16 g + 16) */
} tpi_q8k;

/* Bytes of one activation block for weights of block type t (0 for others). */
size_t tpi_qact_block_bytes(tpi_dtype t);
/* Quantizes one row x[0, cols) into nb activation blocks for weights of type
 * t, x's column 0 at block position k_off, zeros outside. Shared by every
 * kernel set, so that they all see the same quants. */
void tpi_qact_quantize(tpi_dtype t, const float *x, int64_t cols, int64_t k_off, int64_t nb, void *dst);
/* Blocks in a row of w (ceil((k_off + cols) / block)). */
int64_t tpi_qweight_blocks(const tpi_weight *w);

/* y[r * y_stride] = dot(weight row w of nb blocks, activation row r) for r <
 * m (1..4); activation row r starts a_stride blocks after row r - 1. */
typedef void (*tpi_qdot_fn)(int64_t nb, const void *w, const void *a, int64_t a_stride, int m, float *y,
                            int64_t y_stride);

/* Each set's dot kernels for weight type t (NULL for a type it lacks). */
tpi_qdot_fn tpi_ref_qdot(tpi_dtype t);
tpi_qdot_fn tpi_avx2_qdot(tpi_dtype t);   /* AVX2, FMA, F16C */
tpi_qdot_fn tpi_avx512_qdot(tpi_dtype t); /* plus AVX-512 F/BW/VL/VNNI (vpdpbusd, vpdpwssd) */

/* The plain reference matmul for one block-type weight (ref.c's): one row
 * and one output at a time, no tiling. */
void tpi_qmatmul_ref(float *y, const float *x, int64_t n, const tpi_weight *w);
/* The threaded driver (quant_matmul.c): ys[i] = x @ ws[i]^T for block-type
 * weights that share cols, with dot kernels from pick. */
void tpi_qmatmul(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                 tpi_qdot_fn (*pick)(tpi_dtype));
/* 1 where the processor runs tpi_avx512_qdot's instructions (select.c). */
int tpi_cpu_has_avx512_vnni(void);
#endif
