#ifndef TPI_BACKEND_CPU_KERNELS_AVX2_H
#define TPI_BACKEND_CPU_KERNELS_AVX2_H
/* The AVX2/FMA/F16C kernels (the *_avx2.c files). Same contracts as the
 * tpi_backend fields they fill (backend/backend.h); select.c calls them only
 * on processors that have AVX2, FMA and F16C. */
#include "backend/backend.h"

/* Repacks w into w->packed (see matmul_avx2.c for the layout), allocated with
 * aligned_alloc so plain free() releases it. Returns 0, or -1 when out of
 * memory (w is then unchanged). */
int tpi_avx2_prepare_weight(tpi_weight *w);
void tpi_avx2_matmul(float *y, const float *x, int64_t n, const tpi_weight *w);
void tpi_avx2_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws);
/* The same matmul with the AVX-512F GEMV and GEMM micro-kernels
 * (gemv_avx512.c, gemm_avx512.c); only on processors that have AVX-512F as
 * well. */
void tpi_avx512_matmul(float *y, const float *x, int64_t n, const tpi_weight *w);
void tpi_avx512_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws);
void tpi_avx2_rmsnorm(float *y, const float *x, const float *g, int64_t n, int64_t dim, float eps);
void tpi_avx2_rope(float *x, int64_t n, int64_t stride, int64_t n_heads, int64_t head_dim, const float *cos,
                   const float *sin);
void tpi_avx2_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *k, const float *v,
                        const tpi_attn_shape *s);
/* The same attention with attention_avx512.c's tile step; only where the
 * processor has AVX-512F. */
void tpi_avx512_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *k,
                          const float *v, const tpi_attn_shape *s);
void tpi_avx2_silu_mul(float *g, const float *u, int64_t n);
#endif
