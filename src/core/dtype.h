#ifndef TPI_CORE_DTYPE_H
#define TPI_CORE_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Weight storage types; activations are always float32. */
typedef enum tpi_dtype { TPI_F32 = 0, TPI_BF16 = 1, TPI_F16 = 2 } tpi_dtype;

size_t tpi_dtype_size(tpi_dtype t);
const char *tpi_dtype_name(tpi_dtype t); /* safetensors spelling: "F32", "BF16", "F16" */
/* Parses a safetensors dtype string; returns -1 when not one tpinfer stores. */
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

/* Widens n elements of type t at src to float32. */
void tpi_to_f32(float *dst, const void *src, tpi_dtype t, size_t n);
#endif
