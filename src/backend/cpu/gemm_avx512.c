/* The prefill micro-kernel with 512-bit vectors, over the same packing (the
 * packed weights of matmul_packed.h and matmul.c's packed rows of x), for
 * the cpu-avx512 set. On a core with 512-bit FMA units one zmm FMA does the
 * work of two ymm FMAs in the same slot, so the loop structure of the AVX2
 * 6x16 kernel does twice the FLOPs per cycle: this kernel does 6 rows x two
 * adjacent 16-wide panels, one zmm per row and panel (12 accumulators),
 * widening each panel's 16 weights of a k into one zmm.
 * A work unit with several row blocks widens a panel pair's slice once
 * (tpi_avx512_gemm_widen_pair) and runs the f32 kernel on it: on a core
 * whose 512-bit FMAs share their two ports with the widening's shifts and
 * shuffles (Intel), widening in the loop costs 4 of every 16 slots. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"

#define INLINE static inline __attribute__((always_inline))

/* The 16 weights of one k of a panel as one zmm. bf16 is stored interleaved
 * (c0 c8 c1 c9 ... c7 c15, for the AVX2 kernels' shift/AND widening), so
 * its lanes hold the columns in that order until unpermute(). */
INLINE __m512 widen16(const uint8_t *p, tpi_dtype dt)
{
    if (dt == TPI_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    if (dt == TPI_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_loadu_ps((const float *)p);
}

/* Columns back in order: column j sits in lane 2j (j < 8) or 2(j - 8) + 1. */
INLINE __m512 unpermute(__m512 v, tpi_dtype dt)
{
    if (dt != TPI_BF16)
        return v;
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    return _mm512_permutexvar_ps(idx, v);
}

/* c[6, 32] (row stride ldc) = (add ? c : 0) + sum over k < kc of a[k*6 + i]
 * times the k-th weights of panels b (columns 0-15) and b + panel_bytes
 * (columns 16-31). */
INLINE void kernel_6x32(int64_t kc, const float *a, const uint8_t *b, size_t panel_bytes, tpi_dtype dt, float *c,
                        int64_t ldc, int add)
{
    const size_t step = NR * esize(dt);
    const uint8_t *q = b + panel_bytes;
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
           c51 = z;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = widen16(b, dt), b1 = widen16(q, dt), ai;
        ai = _mm512_set1_ps(a[0]);
        c00 = _mm512_fmadd_ps(ai, b0, c00);
        c01 = _mm512_fmadd_ps(ai, b1, c01);
        ai = _mm512_set1_ps(a[1]);
        c10 = _mm512_fmadd_ps(ai, b0, c10);
        c11 = _mm512_fmadd_ps(ai, b1, c11);
        ai = _mm512_set1_ps(a[2]);
        c20 = _mm512_fmadd_ps(ai, b0, c20);
        c21 = _mm512_fmadd_ps(ai, b1, c21);
        ai = _mm512_set1_ps(a[3]);
        c30 = _mm512_fmadd_ps(ai, b0, c30);
        c31 = _mm512_fmadd_ps(ai, b1, c31);
        ai = _mm512_set1_ps(a[4]);
        c40 = _mm512_fmadd_ps(ai, b0, c40);
        c41 = _mm512_fmadd_ps(ai, b1, c41);
        ai = _mm512_set1_ps(a[5]);
        c50 = _mm512_fmadd_ps(ai, b0, c50);
        c51 = _mm512_fmadd_ps(ai, b1, c51);
        a += MR;
        b += step;
        q += step;
    }
#define STORE(r, v0, v1)                                                                                     \
    do {                                                                                                     \
        float *cr = c + (r) * ldc;                                                                           \
        v0 = unpermute(v0, dt);                                                                              \
        v1 = unpermute(v1, dt);                                                                              \
        if (add) {                                                                                           \
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));                                                     \
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + NR));                                                \
        }                                                                                                    \
        _mm512_storeu_ps(cr, v0);                                                                            \
        _mm512_storeu_ps(cr + NR, v1);                                                                       \
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
    static void kernel_##dt(int64_t kc, const float *a, const uint8_t *b, size_t panel_bytes, float *c,     \
                            int64_t ldc, int add)                                                            \
    {                                                                                                        \
        kernel_6x32(kc, a, b, panel_bytes, TPI_##dt, c, ldc, add);                                           \
    }
KERNEL_FN(BF16)
KERNEL_FN(F16)
KERNEL_FN(F32)
#undef KERNEL_FN

/* bf16's interleaved order puts columns j and j + 8 in one dword (j low):
 * a shift and an AND give both as fp32, in order, with no shuffle (the
 * 512-bit widening and unpermute take two port-5 shuffles a k on Intel). */
static void widen_bf16(int64_t kc, const uint8_t *b, float *dst)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int64_t k = 0; k < kc; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(b + (size_t)k * NR * 2));
        _mm256_store_ps(dst + k * NR, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        _mm256_store_ps(dst + k * NR + 8, _mm256_castsi256_ps(_mm256_and_si256(v, hi)));
    }
}

void tpi_avx512_gemm_widen_pair(int64_t kc, const uint8_t *b, size_t panel_bytes, tpi_dtype dt, float *dst)
{
    const size_t step = NR * esize(dt);
    for (int h = 0; h < 2; h++, b += panel_bytes, dst += kc * NR) {
        if (dt == TPI_BF16) {
            widen_bf16(kc, b, dst);
            continue;
        }
        for (int64_t k = 0; k < kc; k++)
            _mm512_store_ps(dst + k * NR, unpermute(widen16(b + (size_t)k * step, dt), dt));
    }
}

tpi_gemm_pair_fn tpi_avx512_gemm_pair_fn(tpi_dtype dt)
{
    static const tpi_gemm_pair_fn fns[3] = {[TPI_F32] = kernel_F32, [TPI_BF16] = kernel_BF16, [TPI_F16] = kernel_F16};
    return fns[dt];
}
