#ifndef TPI_CORE_VEC_H
#define TPI_CORE_VEC_H
/* Element-wise float32 helpers for code outside the backends (the
 * residual stream, the all-reduce): baseline x86-64 SSE, no dispatch. */
#include <stdint.h>

/* out[i] = a[i] + b[i] for i < n; out may be a or b. */
void tpi_add_f32(float *out, const float *a, const float *b, int64_t n);
/* 1 when no value of x [n] is NaN or infinite: the exponent bits, all ones
 * for both, are read as bits so that no compiler flag folds the test away;
 * one branch-free pass. */
int tpi_all_finite_f32(const float *x, int64_t n);

#endif
