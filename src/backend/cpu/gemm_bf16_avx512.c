/* The bf16-dot GEMM's kernels (vdpbf16ps, AVX512_BF16) for bf16 weights
 * on activations rounded to bf16: the cpu-avx512 set's variant that
 * tpi_load_opts.bf16_activations asks for. gemm_bf16.c drives them.
 *
 * vdpbf16ps adds to each fp32 lane j the two products of bf16 elements 2j
 * and 2j + 1 of its operands, so both operands must pair two k of the same
 * output in a lane. The packed weights stay matmul_packed.h's one layout
 * (the GEMV reads it unchanged): a panel holds, per k, the 16 outputs' bf16
 * interleaved c0 c8 c1 c9 ... c7 c15, so the 64 bytes of k and k + 1 are
 * two such rows one after the other. One vpermw interleaves them word by
 * word, which puts (k, k + 1) of column c0 in lane 0, of c8 in lane 1, ...:
 * the fp32 GEMM kernel's lane order, undone once at the store. The packed
 * activations hold each row's (k, k + 1) pair as one 32-bit word, which a
 * dword broadcast puts in every lane. */
#include <immintrin.h>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/tuning.h"

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

/* Lane order c0 c8 c1 c9 ... back to c0 c1 ... c15, then stored (added to
 * what c holds when add) in the first `cols` columns. */
INLINE void store16(float *c, __m512 v, int64_t cols, int add)
{
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    v = _mm512_permutexvar_ps(idx, v);
    if (cols >= NR) {
        if (add)
            v = _mm512_add_ps(v, _mm512_loadu_ps(c));
        _mm512_storeu_ps(c, v);
    } else if (cols > 0) {
        __mmask16 m = (__mmask16)((1u << cols) - 1);
        if (add)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
        _mm512_mask_storeu_ps(c, m, v);
    }
}

/* The tile of R rows x P panels: c[R, cols] (row stride ldc) = (add ? c :
 * 0) + the kc k of the packed rows a times panel b (and b + panel_bytes).
 * Row r's pair kp is a[(r / MR) * a_blk + kp * MR + r % MR]. Every weight
 * line is prefetched TPI_GEMM_BF16_PREFETCH bytes ahead: from memory when
 * the tile streams a panel once (few rows), from L2 otherwise. R and P are
 * constants in each instance, so the accumulators stay in registers. */
INLINE void tile(const int R, const int P, int64_t kc, const uint32_t *a, int64_t a_blk, const uint8_t *b,
                 size_t panel_bytes, float *c, int64_t ldc, int64_t cols, int add)
{
    const __m512i idx = _mm512_load_si512((const void *)pair_idx);
    const uint8_t *q = b + panel_bytes;
    const uint32_t *a0 = a, *a1 = a + a_blk, *a2 = a + 2 * a_blk;
    __m512 acc[TPI_GEMM_BF16_MAX_ACC];
#pragma GCC unroll 24
    for (int i = 0; i < R * P; i++)
        acc[i] = _mm512_setzero_ps();
#define BF16_STEP(last)                                                                                       \
    do {                                                                                                      \
        __m512bh b0 = pair_rows(b, idx, last), b1 = P == 2 ? pair_rows(q, idx, last) : b0;                    \
        _Pragma("GCC unroll 24") for (int r = 0; r < R; r++)                                                  \
        {                                                                                                     \
            const uint32_t *ar = r < MR ? a0 : r < 2 * MR ? a1 : a2;                                          \
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ar[r % MR]);                                        \
            acc[r * P] = _mm512_dpbf16_ps(acc[r * P], x, b0);                                                 \
            if (P == 2)                                                                                       \
                acc[r * P + 1] = _mm512_dpbf16_ps(acc[r * P + 1], x, b1);                                     \
        }                                                                                                     \
    } while (0)
    const size_t step = 2 * NR * sizeof(uint16_t);
    for (int64_t k = 0; k + 1 < kc; k += 2) {
        _mm_prefetch((const char *)b + TPI_GEMM_BF16_PREFETCH, _MM_HINT_T0);
        if (P == 2)
            _mm_prefetch((const char *)q + TPI_GEMM_BF16_PREFETCH, _MM_HINT_T0);
        BF16_STEP(0);
        a0 += MR;
        a1 += MR;
        a2 += MR;
        b += step;
        q += step;
    }
    if (kc & 1)
        BF16_STEP(1);
#undef BF16_STEP
#pragma GCC unroll 24
    for (int r = 0; r < R; r++) {
        store16(c + r * ldc, acc[r * P], cols, add);
        if (P == 2)
            store16(c + r * ldc + NR, acc[r * P + 1], cols - NR, add);
    }
}

#define TILE_FN(R, P)                                                                                         \
    static void tile_##R##_##P(int64_t kc, const uint32_t *a, int64_t a_blk, const uint8_t *b,             \
                               size_t panel_bytes, float *c, int64_t ldc, int64_t cols, int add)             \
    {                                                                                                         \
        tile(R, P, kc, a, a_blk, b, panel_bytes, c, ldc, cols, add);                                          \
    }
#define TILE_P1(R) TILE_FN(R, 1)
#define TILE_P2(R) TILE_FN(R, 2)
TILE_P1(1) TILE_P1(2) TILE_P1(3) TILE_P1(4) TILE_P1(5) TILE_P1(6) TILE_P1(7) TILE_P1(8) TILE_P1(9) TILE_P1(10)
TILE_P1(11) TILE_P1(12) TILE_P1(13) TILE_P1(14) TILE_P1(15) TILE_P1(16) TILE_P1(17) TILE_P1(18)
TILE_P2(1) TILE_P2(2) TILE_P2(3) TILE_P2(4) TILE_P2(5) TILE_P2(6) TILE_P2(7) TILE_P2(8) TILE_P2(9) TILE_P2(10)
TILE_P2(11) TILE_P2(12)

static const tpi_gemm_bf16_fn tiles1[TPI_GEMM_BF16_MAX_ROWS] = {
    tile_1_1,  tile_2_1,  tile_3_1,  tile_4_1,  tile_5_1,  tile_6_1,  tile_7_1,  tile_8_1,  tile_9_1,
    tile_10_1, tile_11_1, tile_12_1, tile_13_1, tile_14_1, tile_15_1, tile_16_1, tile_17_1, tile_18_1};
static const tpi_gemm_bf16_fn tiles2[TPI_GEMM_BF16_MAX_ACC / 2] = {
    tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2, tile_7_2, tile_8_2, tile_9_2, tile_10_2, tile_11_2,
    tile_12_2};

tpi_gemm_bf16_fn tpi_avx512bf16_tile_fn(int rows, int panels)
{
    if (rows < 1 || panels < 1 || panels > 2)
        return NULL;
    if (panels == 1)
        return rows <= TPI_GEMM_BF16_MAX_ROWS ? tiles1[rows - 1] : NULL;
    return rows <= TPI_GEMM_BF16_MAX_ACC / 2 ? tiles2[rows - 1] : NULL;
}

/* 16 floats rounded to bf16, nearest even, as tpi_f32_to_bf16 (a NaN stays
 * a quiet NaN): the 16 results in order, i.e. 8 (k, k + 1) pairs. */
INLINE __m256i round16(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

/* Where each of the 48 words of a chunk (8 pairs x 6 rows, pair-major)
 * comes from, for the three 16-word stores: lanes from A = rows 0, 1 and B
 * = rows 2, 3 (vpermt2d indices), and under the mask from C = rows 4, 5.
 * Row i's pair j is lane (i % 2) * 8 + j of its register. */
static const int32_t from_ab[3][16] __attribute__((aligned(64))) = {
    {0, 8, 16, 24, 0, 0, 1, 9, 17, 25, 0, 0, 2, 10, 18, 26},
    {0, 0, 3, 11, 19, 27, 0, 0, 4, 12, 20, 28, 0, 0, 5, 13},
    {21, 29, 0, 0, 6, 14, 22, 30, 0, 0, 7, 15, 23, 31, 0, 0}};
static const int32_t from_c[3][16] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0},
    {2, 10, 0, 0, 0, 0, 3, 11, 0, 0, 0, 0, 4, 12, 0, 0},
    {0, 0, 5, 13, 0, 0, 0, 0, 6, 14, 0, 0, 0, 0, 7, 15}};
static const __mmask16 c_mask[3] = {0x0c30, 0x30c3, 0xc30c};

void tpi_avx512bf16_pack_rows(uint32_t *ap, const float *x, int64_t n, int64_t K, int64_t blk)
{
    int64_t r0 = blk * MR, rows = n - r0 < MR ? n - r0 : MR, kp_all = (K + 1) / 2;
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        __mmask16 lm = K - k0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k0)) - 1);
        __m256i r[MR];
        for (int i = 0; i < MR; i++)
            r[i] = i < rows ? round16(_mm512_maskz_loadu_ps(lm, x + (r0 + i) * K + k0)) : _mm256_setzero_si256();
        __m512i A = _mm512_inserti64x4(_mm512_castsi256_si512(r[0]), r[1], 1);
        __m512i B = _mm512_inserti64x4(_mm512_castsi256_si512(r[2]), r[3], 1);
        __m512i C = _mm512_inserti64x4(_mm512_castsi256_si512(r[4]), r[5], 1);
        int64_t pairs = kp_all - k0 / 2 < 8 ? kp_all - k0 / 2 : 8, words = pairs * MR;
        uint32_t *d = ap + k0 / 2 * MR;
        for (int j = 0; j < 3; j++) {
            __m512i o = _mm512_permutex2var_epi32(A, _mm512_load_si512((const void *)from_ab[j]), B);
            o = _mm512_mask_permutexvar_epi32(o, c_mask[j], _mm512_load_si512((const void *)from_c[j]), C);
            int64_t left = words - 16 * j;
            if (left >= 16)
                _mm512_storeu_si512((void *)(d + 16 * j), o);
            else if (left > 0)
                _mm512_mask_storeu_epi32(d + 16 * j, (__mmask16)((1u << left) - 1), o);
        }
    }
}
