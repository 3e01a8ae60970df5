/* The prefill micro-kernel on the bf16 dot product (vdpbf16ps, AVX512_BF16)
 * for bf16 weights, with activations rounded to bf16: the cpu-avx512 set's
 * variant that tpi_load_opts.bf16_activations asks for.
 *
 * vdpbf16ps adds to each fp32 lane j the two products of bf16 elements 2j
 * and 2j + 1 of its operands, so both operands must pair two k of the same
 * output in a lane. The packed weights stay matmul_packed.h's one layout
 * (the GEMV reads it unchanged): a panel holds, per k, the 16 outputs' bf16
 * interleaved c0 c8 c1 c9 ... c7 c15, so the 64 bytes of k and k + 1 are
 * two such rows one after the other. One vpermw interleaves them word by
 * word, which puts (k, k + 1) of column c0 in lane 0, of c8 in lane 1, ...:
 * the fp32 GEMM kernel's lane order, undone once at the store. The packed
 * activations (matmul.c) hold each row's (k, k + 1) pair as one 32-bit word,
 * which a dword broadcast puts in every lane. */
#include <immintrin.h>

#include "backend/cpu/matmul_packed.h"

#define INLINE static inline __attribute__((always_inline))

/* vpermw indices: word 2m of the result is word m of row k (the load's low
 * 32 bytes), word 2m + 1 is word m of row k + 1 (its high 32 bytes). */
static const uint16_t pair_idx[32] __attribute__((aligned(64))) = {
    0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

/* Rows k and k + 1 of a panel paired per lane; `last` reads row k alone
 * (an odd K's last k, whose k + 1 is past the panel) and pairs it with 0. */
INLINE __m512bh pair_rows(const uint8_t *p, __m512i idx, int last)
{
    __m512i v = last ? _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)p))
                     : _mm512_loadu_si512((const void *)p);
    return (__m512bh)_mm512_permutexvar_epi16(idx, v);
}

INLINE __m512 unpermute(__m512 v)
{
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    return _mm512_permutexvar_ps(idx, v);
}

#define BCAST(i) ((__m512bh)_mm512_set1_epi32((int)a[i]))
#define DOT(i)                                                                                               \
    do {                                                                                                     \
        __m512bh ai = BCAST(i);                                                                              \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                                                         \
        if (two)                                                                                             \
            c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                                                     \
    } while (0)
/* One pair of k (or the last odd k): 6 rows x 1 or 2 panels. */
#define STEP(last)                                                                                           \
    do {                                                                                                     \
        __m512bh b0 = pair_rows(b, idx, last), b1 = two ? pair_rows(q, idx, last) : b0;                      \
        DOT(0);                                                                                              \
        DOT(1);                                                                                              \
        DOT(2);                                                                                              \
        DOT(3);                                                                                              \
        DOT(4);                                                                                              \
        DOT(5);                                                                                              \
    } while (0)

/* c[6, 16 * (1 + two)] (row stride ldc) = (add ? c : 0) + the kc k-steps of
 * the packed bf16 pairs a (a[kp * MR + i]: row i's k = 2kp, 2kp + 1) times
 * panel b and, when two, panel b + panel_bytes. */
INLINE void kernel_6xn(int64_t kc, const uint32_t *a, const uint8_t *b, size_t panel_bytes, int two, float *c,
                       int64_t ldc, int add)
{
    const __m512i idx = _mm512_load_si512((const void *)pair_idx);
    const uint8_t *q = b + panel_bytes;
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
           c51 = z;
    const size_t step = 2 * NR * sizeof(uint16_t);
#pragma GCC unroll 2
    for (int64_t k = 0; k + 1 < kc; k += 2) {
        STEP(0);
        a += MR;
        b += step;
        q += step;
    }
    if (kc & 1)
        STEP(1);
#define STORE(r, v0, v1)                                                                                     \
    do {                                                                                                     \
        float *cr = c + (r) * ldc;                                                                           \
        v0 = unpermute(v0);                                                                                  \
        if (add)                                                                                             \
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));                                                     \
        _mm512_storeu_ps(cr, v0);                                                                            \
        if (two) {                                                                                           \
            v1 = unpermute(v1);                                                                              \
            if (add)                                                                                         \
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + NR));                                            \
            _mm512_storeu_ps(cr + NR, v1);                                                                   \
        }                                                                                                    \
    } while (0)
    STORE(0, c00, c01);
    STORE(1, c10, c11);
    STORE(2, c20, c21);
    STORE(3, c30, c31);
    STORE(4, c40, c41);
    STORE(5, c50, c51);
#undef STORE
}
#undef STEP
#undef DOT
#undef BCAST

static void kernel_one(int64_t kc, const uint32_t *a, const uint8_t *b, size_t panel_bytes, float *c, int64_t ldc,
                       int add)
{
    kernel_6xn(kc, a, b, panel_bytes, 0, c, ldc, add);
}

static void kernel_two(int64_t kc, const uint32_t *a, const uint8_t *b, size_t panel_bytes, float *c, int64_t ldc,
                       int add)
{
    kernel_6xn(kc, a, b, panel_bytes, 1, c, ldc, add);
}

tpi_gemm_bf16_fn tpi_avx512bf16_gemm_fn(int panels)
{
    return panels == 2 ? kernel_two : kernel_one;
}
