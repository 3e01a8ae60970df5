#ifndef TPI_CORE_DTYPE_H
#define TPI_CORE_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Weight storage types; activations are always float32. The block types
 * are GGUF's (ggml's block layouts, core/quant.h): a row of n elements is
 * n / block elements' blocks of block_bytes each. */
typedef enum tpi_dtype {
    TPI_F32 = 0, TPI_BF16 = 1, TPI_F16 = 2,
    TPI_Q8_0 = 3, TPI_Q4_0 = 4, TPI_Q4_K = 5, TPI_Q6_K = 6,
    TPI_N_DTYPES
} tpi_dtype;

/* Bytes per element of a float type; 0 for a block type (use the block
 * helpers below, which also hold for float types: a block of one). */
size_t tpi_dtype_size(tpi_dtype t);
/* 1 for a block (quantized) type. */
int tpi_dtype_is_quant(tpi_dtype t);
/* Elements per block: 1 (float types), 32 (Q8_0, Q4_0), 256 (Q4_K, Q6_K). */
int64_t tpi_dtype_block(tpi_dtype t);
/* Bytes per block: 4/2 (float types), 34 (Q8_0), 18 (Q4_0), 144 (Q4_K), 210 (Q6_K). */
int64_t tpi_dtype_block_bytes(tpi_dtype t);
/* Bytes of n elements; n must be a multiple of the block (else -1). */
int64_t tpi_dtype_row_bytes(tpi_dtype t, int64_t n);
/* "F32", "BF16", "F16" (safetensors' spelling), "Q8_0", "Q4_0", "Q4_K", "Q6_K" (GGUF's). */
const char *tpi_dtype_name(tpi_dtype t);
/* Parses a safetensors dtype string; returns -1 when not one tpinfer stores
 * (block types never come from safetensors). */
int tpi_dtype_parse(const char *s, tpi_dtype *out);

static inline float tpi_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as torch does; NaN stays NaN. */
static inline uint16_t tpi_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float tpi_f16_to_f32(uint16_t h);
uint16_t tpi_f32_to_f16(float f);

/* Widens n elements of type t at src to float32; for a block type n is a
 * multiple of its block and the values are core/quant.h's dequantization. */
void tpi_to_f32(float *dst, const void *src, tpi_dtype t, size_t n);
#endif
