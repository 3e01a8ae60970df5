/* y[n, O] = x[n, K] @ W^T for a weight W [O, K] stored in bf16, f16 or f32,
 * with fp32 activations and fp32 accumulation, on AVX2 + FMA + F16C.
 *
 * Packed weight layout (w->packed, made once at load by prepare_weight):
 * the O outputs are cut into panels of NR = 16 (the last one zero-padded);
 * panel p holds, for k = 0..K-1 in order, the 16 values W[16p + j][k] in the
 * stored dtype. One panel is therefore one contiguous stream of 16*K
 * elements, which serves both paths below:
 *  - prefill (n > GEMV_ROWS): a BLIS-style GEMM. x is packed into row blocks
 *    of MR = 6 rows, k-major; a 6x16 micro-kernel keeps 12 ymm accumulators,
 *    loads one 16-wide weight row per k and broadcasts 6 activations. K is
 *    cut into KC slices and rows into MC blocks so that a 16 x KC weight slice
 *    stays in L1 while the 6 x KC activation slices stream from L2.
 *  - decode (n <= GEMV_ROWS): every weight byte is read exactly once, panel
 *    by panel, so the speed is the memory's.
 * Weights stay in their stored dtype (half the bytes of f32 for bf16/f16: the
 * decode speed is bytes/bandwidth) and are widened in registers as they are
 * used. bf16 is stored with the 16 values of a k interleaved as
 * c0 c8 c1 c9 ... c7 c15, so that one 32-byte load widens to columns 0..7
 * with a 32-bit shift left by 16 and to columns 8..15 with an AND that keeps
 * the high halves: two cheap integer ops per 16 weights. f16 stays in natural
 * order: two F16C vcvtph2ps per 16 weights. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels_avx2.h"
#include "backend/cpu/simd_avx2.h"

#define NR 16
#define MR 6
#define KC 256       /* 16 x 256 bf16 = 8 KB of weights + 6 x 256 x 4 = 6 KB of activations in L1 */
#define MC_BLOCKS 16 /* 96 rows x KC x 4 = 96 KB of packed activations in L2 */
#define GEMV_ROWS 4

#define INLINE static inline __attribute__((always_inline))

static int64_t n_panels(int64_t rows)
{
    return (rows + NR - 1) / NR;
}

static size_t packed_size(const tpi_weight *w)
{
    return (size_t)n_panels(w->rows) * NR * (size_t)w->cols * tpi_dtype_size(w->dtype);
}

/* Position of output j (0..15) inside a packed 16-value group. */
static int slot(tpi_dtype dt, int j)
{
    if (dt != TPI_BF16)
        return j;
    return j < 8 ? 2 * j : 2 * (j - 8) + 1;
}

static void pack(void *dst, const tpi_weight *w)
{
    size_t es = tpi_dtype_size(w->dtype);
    int64_t K = w->cols, np = n_panels(w->rows);
    const uint8_t *src = w->data;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < np; p++) {
        uint8_t *d = (uint8_t *)dst + (size_t)p * NR * (size_t)K * es;
        for (int j = 0; j < NR; j++) {
            int64_t o = p * NR + j;
            int s = slot(w->dtype, j);
            if (o >= w->rows) {
                for (int64_t k = 0; k < K; k++)
                    memset(d + ((size_t)k * NR + (size_t)s) * es, 0, es);
                continue;
            }
            const uint8_t *row = src + (size_t)o * (size_t)K * es;
            for (int64_t k = 0; k < K; k++)
                memcpy(d + ((size_t)k * NR + (size_t)s) * es, row + (size_t)k * es, es);
        }
    }
}

int tpi_avx2_prepare_weight(tpi_weight *w)
{
    size_t bytes = packed_size(w);
    size_t alloc = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, alloc ? alloc : 64);
    if (!p)
        return -1;
    pack(p, w);
    free(w->packed);
    w->packed = p;
    w->packed_bytes = (int64_t)bytes;
    return 0;
}

/* Widens the 16 packed values of one k into columns 0..7 and 8..15. */
INLINE void load16(const void *p, tpi_dtype dt, __m256 *b0, __m256 *b1)
{
    if (dt == TPI_BF16) {
        __m256i r = _mm256_loadu_si256((const __m256i *)p);
        *b0 = _mm256_castsi256_ps(_mm256_slli_epi32(r, 16));
        *b1 = _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
    } else if (dt == TPI_F16) {
        *b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        *b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p + 1));
    } else {
        *b0 = _mm256_loadu_ps((const float *)p);
        *b1 = _mm256_loadu_ps((const float *)p + 8);
    }
}

/* c[6, 16] (row stride ldc) = (add ? c : 0) + a[kc, 6]^T-ish panel product:
 * sum over k of a[k*6 + i] * b[k][j]. */
INLINE void kernel_6x16(int64_t kc, const float *a, const void *b, tpi_dtype dt, float *c, int64_t ldc, int add)
{
    size_t step = NR * tpi_dtype_size(dt);
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

typedef void (*kernel_fn)(int64_t kc, const float *a, const void *b, float *c, int64_t ldc, int add);

static void kernel_bf16(int64_t kc, const float *a, const void *b, float *c, int64_t ldc, int add)
{
    kernel_6x16(kc, a, b, TPI_BF16, c, ldc, add);
}
static void kernel_f16(int64_t kc, const float *a, const void *b, float *c, int64_t ldc, int add)
{
    kernel_6x16(kc, a, b, TPI_F16, c, ldc, add);
}
static void kernel_f32(int64_t kc, const float *a, const void *b, float *c, int64_t ldc, int add)
{
    kernel_6x16(kc, a, b, TPI_F32, c, ldc, add);
}

/* Packs rows [MR*blk, MR*blk + MR) of x [n, K] as ap[k*MR + i], zero rows
 * past n, so the micro-kernel reads its 6 activations of a k contiguously. */
static void pack_rows(float *ap, const float *x, int64_t n, int64_t K, int64_t blk)
{
    int64_t r0 = blk * MR, rows = n - r0 < MR ? n - r0 : MR;
    if (rows < MR)
        memset(ap, 0, (size_t)K * MR * sizeof *ap);
    for (int64_t i = 0; i < rows; i++) {
        const float *xi = x + (r0 + i) * K;
        for (int64_t k = 0; k < K; k++)
            ap[k * MR + i] = xi[k];
    }
}

static void gemm(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed, tpi_dtype dt,
                 float *ap)
{
    size_t es = tpi_dtype_size(dt);
    int64_t nb = (n + MR - 1) / MR, np = n_panels(O);
    kernel_fn kern = dt == TPI_BF16 ? kernel_bf16 : dt == TPI_F16 ? kernel_f16 : kernel_f32;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            pack_rows(ap + b * K * MR, x, n, K, b);
        /* Threads split the output panels, so each reads only its share of
         * the weights and no two write the same y. */
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t p0 = np * t / nt, p1 = np * (t + 1) / nt;
        float tmp[MR * NR] __attribute__((aligned(32)));
        for (int64_t ic = 0; ic < nb; ic += MC_BLOCKS) {
            int64_t ie = ic + MC_BLOCKS < nb ? ic + MC_BLOCKS : nb;
            for (int64_t pc = 0; pc < K; pc += KC) {
                int64_t kc = K - pc < KC ? K - pc : KC;
                for (int64_t p = p0; p < p1; p++) {
                    const uint8_t *bp = packed + ((size_t)p * (size_t)K + (size_t)pc) * NR * es;
                    int64_t cols = O - p * NR < NR ? O - p * NR : NR;
                    for (int64_t b = ic; b < ie; b++) {
                        const float *a = ap + b * K * MR + pc * MR;
                        int64_t rows = n - b * MR < MR ? n - b * MR : MR;
                        float *c = y + b * MR * O + p * NR;
                        if (rows == MR && cols == NR) {
                            kern(kc, a, bp, c, O, pc > 0);
                            continue;
                        }
                        kern(kc, a, bp, tmp, NR, 0);
                        for (int64_t i = 0; i < rows; i++)
                            for (int64_t j = 0; j < cols; j++)
                                c[i * O + j] = (pc > 0 ? c[i * O + j] : 0.0f) + tmp[i * NR + j];
                    }
                }
            }
        }
    }
}

/* N rows (1..4) against one panel, the whole K in one pass. With few rows
 * the FMA chains are short, so for N = 1, 2 the k loop is unrolled into U
 * independent accumulator sets to hide the FMA latency. */
INLINE void gemv_panel(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p,
                       const int N)
{
    const int U = N == 1 ? 4 : N == 2 ? 2 : 1;
    size_t step = NR * tpi_dtype_size(dt);
    __m256 acc[4][4][2];
    for (int u = 0; u < U; u++)
        for (int i = 0; i < N; i++)
            acc[u][i][0] = acc[u][i][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + U <= K; k += U) {
        for (int u = 0; u < U; u++) {
            __m256 b0, b1;
            load16(bp + (size_t)(k + u) * step, dt, &b0, &b1);
            for (int i = 0; i < N; i++) {
                __m256 a = _mm256_broadcast_ss(x + i * K + k + u);
                acc[u][i][0] = _mm256_fmadd_ps(a, b0, acc[u][i][0]);
                acc[u][i][1] = _mm256_fmadd_ps(a, b1, acc[u][i][1]);
            }
        }
    }
    for (; k < K; k++) {
        __m256 b0, b1;
        load16(bp + (size_t)k * step, dt, &b0, &b1);
        for (int i = 0; i < N; i++) {
            __m256 a = _mm256_broadcast_ss(x + i * K + k);
            acc[0][i][0] = _mm256_fmadd_ps(a, b0, acc[0][i][0]);
            acc[0][i][1] = _mm256_fmadd_ps(a, b1, acc[0][i][1]);
        }
    }
    int64_t cols = O - p * NR < NR ? O - p * NR : NR;
    for (int i = 0; i < N; i++) {
        for (int u = 1; u < U; u++) {
            acc[0][i][0] = _mm256_add_ps(acc[0][i][0], acc[u][i][0]);
            acc[0][i][1] = _mm256_add_ps(acc[0][i][1], acc[u][i][1]);
        }
        float *yi = y + i * O + p * NR;
        if (cols == NR) {
            _mm256_storeu_ps(yi, acc[0][i][0]);
            _mm256_storeu_ps(yi + 8, acc[0][i][1]);
        } else {
            float t[NR];
            _mm256_storeu_ps(t, acc[0][i][0]);
            _mm256_storeu_ps(t + 8, acc[0][i][1]);
            memcpy(yi, t, (size_t)cols * sizeof *yi);
        }
    }
}

INLINE void gemv_dt(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed, tpi_dtype dt)
{
    int64_t np = n_panels(O);
    size_t panel_bytes = (size_t)K * NR * tpi_dtype_size(dt);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < np; p++) {
        const uint8_t *bp = packed + (size_t)p * panel_bytes;
        switch (n) {
        case 1: gemv_panel(y, x, O, K, bp, dt, p, 1); break;
        case 2: gemv_panel(y, x, O, K, bp, dt, p, 2); break;
        case 3: gemv_panel(y, x, O, K, bp, dt, p, 3); break;
        default: gemv_panel(y, x, O, K, bp, dt, p, 4); break;
        }
    }
}

/* One function per dtype so the dtype tests fold away inside the loops. */
static void gemv_bf16(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed)
{
    gemv_dt(y, x, n, O, K, packed, TPI_BF16);
}
static void gemv_f16(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed)
{
    gemv_dt(y, x, n, O, K, packed, TPI_F16);
}
static void gemv_f32(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed)
{
    gemv_dt(y, x, n, O, K, packed, TPI_F32);
}

/* n rows in groups of at most GEMV_ROWS; the GEMV needs no scratch memory. */
static void gemv(float *y, const float *x, int64_t n, int64_t O, int64_t K, const uint8_t *packed, tpi_dtype dt)
{
    for (int64_t i = 0; i < n; i += GEMV_ROWS) {
        int64_t m = n - i < GEMV_ROWS ? n - i : GEMV_ROWS;
        if (dt == TPI_BF16)
            gemv_bf16(y + i * O, x + i * K, m, O, K, packed);
        else if (dt == TPI_F16)
            gemv_f16(y + i * O, x + i * K, m, O, K, packed);
        else
            gemv_f32(y + i * O, x + i * K, m, O, K, packed);
    }
}

void tpi_avx2_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    int64_t O = w->rows, K = w->cols;
    if (n <= 0 || O <= 0)
        return;
    if (K <= 0) {
        memset(y, 0, (size_t)n * (size_t)O * sizeof *y);
        return;
    }
    /* A weight nobody prepared (or prepared for another layout) is packed
     * for this call only. */
    tpi_weight tmpw = *w;
    const uint8_t *packed = w->packed;
    if (!packed || w->packed_bytes != (int64_t)packed_size(w)) {
        tmpw.packed = NULL;
        if (tpi_avx2_prepare_weight(&tmpw)) {
            tpi_backend_cpu_ref()->matmul(y, x, n, w);
            return;
        }
        packed = tmpw.packed;
    }
    float *ap = NULL;
    if (n > GEMV_ROWS) {
        int64_t nb = (n + MR - 1) / MR;
        ap = aligned_alloc(64, ((size_t)nb * MR * (size_t)K * sizeof(float) + 63) / 64 * 64);
    }
    if (ap)
        gemm(y, x, n, O, K, packed, w->dtype, ap);
    else
        gemv(y, x, n, O, K, packed, w->dtype);
    free(ap);
    if (packed != w->packed)
        free(tmpw.packed);
}
