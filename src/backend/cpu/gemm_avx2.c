/* The prefill micro-kernel on AVX2 + FMA + F16C, over the packed layout
 * (matmul_packed.h) and matmul.c's packed rows of x: 6 rows x one 16-wide
 * panel in 12 ymm accumulators, one weight row of 16 loaded and widened per
 * k and 6 activations broadcast against it. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"

#define INLINE static inline __attribute__((always_inline))

/* c[6, 16] (row stride ldc) = (add ? c : 0) + the sum over k < kc of
 * a[k*6 + i] times the k-th weights of panel b. */
INLINE void kernel_6x16(int64_t kc, const float *a, const uint8_t *b, tpi_dtype dt, float *c, int64_t ldc, int add)
{
    size_t step = NR * esize(dt);
    const uint8_t *bp = b;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0, b1, ai;
        load16(bp, dt, &b0, &b1);
        ai = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40);
        c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50);
        c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += MR;
        bp += step;
    }
#define STORE(r, v0, v1)                                                                   \
    do {                                                                                   \
        float *cr = c + (r) * ldc;                                                         \
        if (add) {                                                                         \
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));                                   \
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));                               \
        }                                                                                  \
        _mm256_storeu_ps(cr, v0);                                                          \
        _mm256_storeu_ps(cr + 8, v1);                                                      \
    } while (0)
    STORE(0, c00, c01);
    STORE(1, c10, c11);
    STORE(2, c20, c21);
    STORE(3, c30, c31);
    STORE(4, c40, c41);
    STORE(5, c50, c51);
#undef STORE
}

#define KERNEL_FN(dt)                                                                                        \
    static void kernel_##dt(int64_t kc, const float *a, const uint8_t *b, float *c, int64_t ldc, int add)    \
    {                                                                                                        \
        kernel_6x16(kc, a, b, TPI_##dt, c, ldc, add);                                                        \
    }
KERNEL_FN(BF16)
KERNEL_FN(F16)
KERNEL_FN(F32)
#undef KERNEL_FN

tpi_gemm_fn tpi_avx2_gemm_fn(tpi_dtype dt)
{
    static const tpi_gemm_fn fns[3] = {[TPI_F32] = kernel_F32, [TPI_BF16] = kernel_BF16, [TPI_F16] = kernel_F16};
    return fns[dt];
}
