#ifndef TPI_BACKEND_CPU_KERNELS_H
#define TPI_BACKEND_CPU_KERNELS_H
/* The CPU kernel sets select.c chooses from. Same contracts as the
 * tpi_backend fields they fill (backend/backend.h). cpu-avx2 needs AVX2, FMA
 * and F16C; cpu-avx512 is the same set with AVX-512F matmul micro-kernels
 * and attention tile step, and needs AVX-512F too. select.c calls each only
 * on a processor that has its instructions. */
#include "backend/backend.h"

/* Repacks w into w->packed for both sets' matmuls (matmul.c; the layout is
 * matmul_packed.h's), allocated so that plain free() releases it. Returns 0,
 * or -1 when out of memory (w is then unchanged). */
int tpi_cpu_prepare_weight(tpi_weight *w);

/* matmul.c's driver with each set's micro-kernels. */
void tpi_avx2_matmul(float *y, const float *x, int64_t n, const tpi_weight *w);
void tpi_avx2_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws);
void tpi_avx512_matmul(float *y, const float *x, int64_t n, const tpi_weight *w);
void tpi_avx512_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws);
/* cpu-avx512 with bf16 weights' prefill GEMM on bf16 activations and the
 * bf16 dot product (gemm_bf16_avx512.c); needs AVX512_BF16 and BW too. */
void tpi_avx512bf16_matmul(float *y, const float *x, int64_t n, const tpi_weight *w);
void tpi_avx512bf16_matmul_multi(int count, float *const *ys, const float *x, int64_t n,
                                 const tpi_weight *const *ws);

/* attention.c's driver with each set's tile step (attention_avx2.c,
 * attention_avx512.c). */
void tpi_avx2_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                        const float *const *v, const tpi_attn_shape *s);
void tpi_avx512_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                          const float *const *v, const tpi_attn_shape *s);

/* Element-wise kernels, the same in both sets. */
void tpi_avx2_rmsnorm(float *y, const float *x, const float *g, int64_t n, int64_t dim, float eps);
void tpi_avx2_rope(float *x, int64_t n, int64_t stride, int64_t n_heads, int64_t head_dim, const float *cos,
                   const float *sin);
void tpi_avx2_silu_mul(float *g, const float *u, int64_t n);
#endif
