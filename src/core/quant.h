#ifndef TPI_CORE_QUANT_H
#define TPI_CORE_QUANT_H
/* GGUF's quantized block formats, byte for byte as ggml lays them out
 * (ggml-common.h), and the plain conversions between them and float32. The
 * kernels (backend/cpu/quant*.c) compute on the blocks directly; these are
 * for the embedding lookup, the loader's --quant, convert and the tests'
 * references. fp16 scales are IEEE binary16 bit patterns. */
#include <stdint.h>

#include "core/dtype.h"

#define TPI_QK8_0 32
#define TPI_QK4_0 32
#define TPI_QK_K 256
#define TPI_K_SCALE_SIZE 12

typedef struct tpi_block_q8_0 {
    uint16_t d;             /* scale */
    int8_t qs[TPI_QK8_0];   /* x[i] = d * qs[i] */
} tpi_block_q8_0;

typedef struct tpi_block_q4_0 {
    uint16_t d;                 /* scale */
    uint8_t qs[TPI_QK4_0 / 2];  /* x[i] = d * ((qs[i] & 15) - 8), x[i + 16] = d * ((qs[i] >> 4) - 8) */
} tpi_block_q4_0;

typedef struct tpi_block_q4_k {
    uint16_t d, dmin;                     /* super-block scales of the 6-bit scales and mins */
    uint8_t scales[TPI_K_SCALE_SIZE];     /* 8 scales and 8 mins of 6 bits, packed */
    uint8_t qs[TPI_QK_K / 2];             /* 4-bit quants */
} tpi_block_q4_k;

typedef struct tpi_block_q6_k {
    uint8_t ql[TPI_QK_K / 2];   /* low 4 bits */
    uint8_t qh[TPI_QK_K / 4];   /* high 2 bits */
    int8_t scales[TPI_QK_K / 16];
    uint16_t d;                 /* super-block scale */
} tpi_block_q6_k;

_Static_assert(sizeof(tpi_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(tpi_block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(tpi_block_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(tpi_block_q6_k) == 210, "Q6_K block");

/* Dequantizes n elements (a multiple of t's block) of block type t at src
 * into dst, exactly as gguf-py's dequantize computes them (float32
 * arithmetic in its order, no contraction): ../shared/golden/gguf's
 * dequantized files are reproduced bit for bit. Float types are widened. */
void tpi_dequant_row(tpi_dtype t, const void *src, float *dst, int64_t n);

/* Quantizes n float32 values (a multiple of t's block) into blocks of type t
 * (Q8_0, Q4_0, Q4_K or Q6_K) at dst. Q8_0 and Q4_0 round as llama.cpp's
 * reference quantizers do (quantize_row_q8_0_ref, _q4_0_ref); Q4_K and Q6_K
 * pick each sub-block's scale (and Q4_K's min) by a small weighted
 * least-squares search of their own, in the spirit of llama.cpp's but not
 * byte-identical to llama-quantize. Deterministic: the same input gives the
 * same bytes on every CPU, so a quantizing load (--quant) and convert agree.
 * Returns -1 for a type it cannot write or n not a multiple of the block,
 * else 0. */
int tpi_quant_row(tpi_dtype t, const float *src, void *dst, int64_t n);
#endif
