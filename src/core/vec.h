#ifndef TPI_CORE_VEC_H
#define TPI_CORE_VEC_H
/* Element-wise float32 helpers for code outside the backends (the
 * residual stream, the all-reduce): baseline x86-64 SSE, no dispatch. */
#include <stdint.h>

/* out[i] = a[i] + b[i] for i < n; out may be a or b. */
void tpi_add_f32(float *out, const float *a, const float *b, int64_t n);

#endif
