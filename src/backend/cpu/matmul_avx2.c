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
#include "backend/cpu/matmul_packed.h"
#include "core/mem.h"

#ifndef KC
#define KC 512 /* 16 x 512 bf16 = 16 KB of weights + 6 x 512 x 4 = 12 KB of activations in L1 (48 KB) */
#endif
#ifndef MC_BLOCKS
#define MC_BLOCKS 32 /* 192 rows x KC x 4 = 384 KB of packed activations in L2; KC and MC were
                        * tuned on the llama-1b shapes (512/32 beat 256/16 by ~10 %) */
#endif
#ifndef PANEL_CHUNK
#define PANEL_CHUNK 8 /* output panels per GEMM work unit */
#endif
#define GEMV_ROWS 4
#ifndef GEMV_FIXED
#define GEMV_FIXED 3 /* quarters of its GEMV units each thread takes in a fixed block (see gemv) */
#endif
#ifndef GEMV_HUGE
#define GEMV_HUGE 1
#endif
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 0 /* bytes ahead, 0 for none: on the Zen 5 development VM every distance
                            * from 1 KB to 256 KB (T0, T1, T2, NTA) was 4-15 % slower than the
                            * hardware prefetcher alone (an earlier machine had preferred 8 KB) */
#endif

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
            /* typed copies: a memcpy call per element made loading a 2 GB model take seconds */
            if (es == 2) { /* rows may start at any byte of a mapped file: fixed-size memcpy, inlined */
                uint16_t *dd = (uint16_t *)d + s;
                for (int64_t k = 0; k < K; k++)
                    memcpy(&dd[k * NR], row + 2 * k, 2);
            } else {
                for (int64_t k = 0; k < K; k++)
                    memcpy(d + ((size_t)k * NR + (size_t)s) * es, row + (size_t)k * es, es);
            }
        }
    }
}

/* Packed weights are streamed once per token in decode, hence on 2 MB
 * pages (core/mem.c). */
static void *alloc_packed(size_t bytes)
{
#if GEMV_HUGE
    return tpi_alloc_stream(bytes);
#else
    return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
#endif
}

int tpi_avx2_prepare_weight(tpi_weight *w)
{
    size_t bytes = packed_size(w);
    void *p = alloc_packed(bytes);
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

/* One output of a call: a weight (all share K) and where its rows go. */
typedef struct mm_out {
    float *y;
    const uint8_t *packed;
    tpi_dtype dt;
    int64_t O, np;
} mm_out;

static kernel_fn pick_kernel(tpi_dtype dt)
{
    return dt == TPI_BF16 ? kernel_bf16 : dt == TPI_F16 ? kernel_f16 : kernel_f32;
}

/* Work is handed out in units of `per` consecutive panels of one output. */
static int64_t n_units(const mm_out *outs, int count, int64_t per)
{
    int64_t n = 0;
    for (int i = 0; i < count; i++)
        n += (outs[i].np + per - 1) / per;
    return n;
}

/* Unit u of all the outputs' units (u < n_units), as (output, first panel). */
static int64_t find_unit(const mm_out *outs, int count, int64_t u, int64_t per, int *which)
{
    int i = 0;
    for (; i < count - 1; i++) {
        int64_t nu = (outs[i].np + per - 1) / per;
        if (u < nu)
            break;
        u -= nu;
    }
    *which = i;
    return u * per;
}

/* The kernels a matmul call uses beyond the AVX2 ones: AVX2's own set has
 * the GEMV pair kernel for one row only, no quad kernel and no GEMM pair
 * kernel; AVX-512's (gemv_avx512.c, gemm_avx512.c) has all three. */
typedef struct cpu_kernels {
    int pair_rows;                                /* GEMV pair (and quad) kernels exist for 1..pair_rows rows */
    tpi_panel_fn (*pair)(tpi_dtype dt, int rows);
    tpi_panel_fn (*quad)(tpi_dtype dt, int rows); /* NULL: pairs only */
    tpi_gemm_pair_fn (*gemm_pair)(tpi_dtype dt); /* NULL: the 6x16 kernel panel by panel */
} cpu_kernels;

static void gemm(const mm_out *outs, int count, const float *x, int64_t n, int64_t K, float *ap, const cpu_kernels *ks)
{
    int64_t nb = (n + MR - 1) / MR, n_pch = n_units(outs, count, PANEL_CHUNK);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            pack_rows(ap + b * K * MR, x, n, K, b);
        /* Work units of (a block of MC_BLOCKS row blocks, PANEL_CHUNK output
         * panels of one weight) are independent (each writes its own tile of
         * its y), so they are handed out dynamically: threads never wait on a
         * fixed half, which matters when the OS preempts one of them. Units
         * go row block by row block, so the threads share the packed rows they
         * read, and the rows are packed once for all the weights (q, k and v
         * read the same x). */
        int64_t n_ic = (nb + MC_BLOCKS - 1) / MC_BLOCKS;
        float tmp[MR * 2 * NR] __attribute__((aligned(64)));
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < n_ic * n_pch; u++) {
            int64_t ic = u / n_pch * MC_BLOCKS, ie = ic + MC_BLOCKS < nb ? ic + MC_BLOCKS : nb;
            int wi;
            int64_t p0 = find_unit(outs, count, u % n_pch, PANEL_CHUNK, &wi);
            const mm_out *o = &outs[wi];
            int64_t O = o->O, p1 = p0 + PANEL_CHUNK < o->np ? p0 + PANEL_CHUNK : o->np;
            size_t es = tpi_dtype_size(o->dt);
            kernel_fn kern = pick_kernel(o->dt);
            tpi_gemm_pair_fn kern2 = ks->gemm_pair ? ks->gemm_pair(o->dt) : NULL;
            size_t panel_bytes = (size_t)K * NR * es;
            for (int64_t pc = 0; pc < K; pc += KC) {
                int64_t kc = K - pc < KC ? K - pc : KC;
                for (int64_t p = p0; p < p1;) {
                    /* two panels at once where there is a pair kernel and a second panel */
                    int64_t w = kern2 && p + 1 < p1 ? 2 : 1;
                    const uint8_t *bp = o->packed + (size_t)p * panel_bytes + (size_t)pc * NR * es;
                    int64_t cols = O - p * NR < w * NR ? O - p * NR : w * NR;
                    for (int64_t b = ic; b < ie; b++) {
                        const float *a = ap + b * K * MR + pc * MR;
                        int64_t rows = n - b * MR < MR ? n - b * MR : MR;
                        float *c = o->y + b * MR * O + p * NR;
                        int full = rows == MR && cols == w * NR;
                        float *dst = full ? c : tmp;
                        int64_t ld = full ? O : w * NR;
                        if (w == 2)
                            kern2(kc, a, bp, panel_bytes, dst, ld, full && pc > 0);
                        else
                            kern(kc, a, bp, dst, ld, full && pc > 0);
                        if (full)
                            continue;
                        for (int64_t i = 0; i < rows; i++)
                            for (int64_t j = 0; j < cols; j++)
                                c[i * O + j] = (pc > 0 ? c[i * O + j] : 0.0f) + tmp[i * w * NR + j];
                    }
                    p += w;
                }
            }
        }
    }
}

/* N rows (1..4) against one panel, the whole K in one pass. Named
 * accumulators (GCC keeps arrays of them on the stack); with one row the k
 * loop is unrolled into 4 independent sets, with two rows into 2, so the FMA
 * latency never limits the stream. */
INLINE void gemv_panel(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p,
                       const int N)
{
    const size_t step = NR * esize(dt);
    const float *x0 = x, *x1 = x + K, *x2 = x + 2 * K, *x3 = x + 3 * K;
    __m256 z = _mm256_setzero_ps();
    /* cRU: row R, column half U; dR: a second k set for N <= 2; eR, fR: third and fourth for N = 1 */
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m256 d00 = z, d01 = z, d10 = z, d11 = z, e00 = z, e01 = z, f00 = z, f01 = z;
    int64_t k = 0;
#define STEP(kk, A0, A1, B0, B1, C0, C1, D0, D1)                                           \
    do {                                                                                 \
        __m256 b0, b1, a;                                                                \
        load16(bp + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        a = _mm256_broadcast_ss(x0 + (kk));                                              \
        A0 = _mm256_fmadd_ps(a, b0, A0);                                                 \
        A1 = _mm256_fmadd_ps(a, b1, A1);                                                 \
        if (N > 1) {                                                                     \
            a = _mm256_broadcast_ss(x1 + (kk));                                          \
            B0 = _mm256_fmadd_ps(a, b0, B0);                                             \
            B1 = _mm256_fmadd_ps(a, b1, B1);                                             \
        }                                                                                \
        if (N > 2) {                                                                     \
            a = _mm256_broadcast_ss(x2 + (kk));                                          \
            C0 = _mm256_fmadd_ps(a, b0, C0);                                             \
            C1 = _mm256_fmadd_ps(a, b1, C1);                                             \
        }                                                                                \
        if (N > 3) {                                                                     \
            a = _mm256_broadcast_ss(x3 + (kk));                                          \
            D0 = _mm256_fmadd_ps(a, b0, D0);                                             \
            D1 = _mm256_fmadd_ps(a, b1, D1);                                             \
        }                                                                                \
    } while (0)
    if (N == 1) {
        for (; k + 4 <= K; k += 4) {
#if GEMV_PREFETCH
            for (size_t off = 0; off < 4 * step; off += 64)
                _mm_prefetch((const char *)bp + (size_t)k * step + GEMV_PREFETCH + off, _MM_HINT_T0);
#endif
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, c10, c11, c20, c21, c30, c31);
            STEP(k + 2, e00, e01, c10, c11, c20, c21, c30, c31);
            STEP(k + 3, f00, f01, c10, c11, c20, c21, c30, c31);
        }
    } else if (N == 2) {
        for (; k + 2 <= K; k += 2) {
#if GEMV_PREFETCH
            for (size_t off = 0; off < 2 * step; off += 64)
                _mm_prefetch((const char *)bp + (size_t)k * step + GEMV_PREFETCH + off, _MM_HINT_T0);
#endif
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
            STEP(k + 1, d00, d01, d10, d11, c20, c21, c30, c31);
        }
    } else {
        for (; k < K; k++) {
#if GEMV_PREFETCH
            if (!((k * step) & 63))
                _mm_prefetch((const char *)bp + (size_t)k * step + GEMV_PREFETCH, _MM_HINT_T0);
#endif
            STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
        }
    }
    for (; k < K; k++)
        STEP(k, c00, c01, c10, c11, c20, c21, c30, c31);
#undef STEP
    c00 = _mm256_add_ps(_mm256_add_ps(c00, d00), _mm256_add_ps(e00, f00));
    c01 = _mm256_add_ps(_mm256_add_ps(c01, d01), _mm256_add_ps(e01, f01));
    c10 = _mm256_add_ps(c10, d10);
    c11 = _mm256_add_ps(c11, d11);
    __m256 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int i = 0; i < N; i++)
        store_panel_row(y + i * O, O, p, out[i][0], out[i][1]);
}

/* Decode (one row) on two adjacent panels at once: one broadcast of x[k]
 * feeds four FMAs instead of two. In cache this runs ~15 % faster than
 * gemv_panel's one row, which matters because the widening and FMAs of a
 * bf16 stream overlap only partly with its memory reads. */
INLINE void gemv_panel2(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, tpi_dtype dt, int64_t p)
{
    const size_t step = NR * esize(dt);
    const uint8_t *bq = bp + (size_t)K * step;
    __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, d00 = z, d01 = z, d10 = z, d11 = z;
    int64_t k = 0;
#define STEP2(kk, A0, A1, B0, B1)                                                          \
    do {                                                                                 \
        __m256 b0, b1, a = _mm256_broadcast_ss(x + (kk));                                \
        load16(bp + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        A0 = _mm256_fmadd_ps(a, b0, A0);                                                 \
        A1 = _mm256_fmadd_ps(a, b1, A1);                                                 \
        load16(bq + (size_t)(kk) * step, dt, &b0, &b1);                                  \
        B0 = _mm256_fmadd_ps(a, b0, B0);                                                 \
        B1 = _mm256_fmadd_ps(a, b1, B1);                                                 \
    } while (0)
    for (; k + 2 <= K; k += 2) {
        STEP2(k, c00, c01, c10, c11);
        STEP2(k + 1, d00, d01, d10, d11);
    }
    for (; k < K; k++)
        STEP2(k, c00, c01, c10, c11);
#undef STEP2
    store_panel_row(y, O, p, _mm256_add_ps(c00, d00), _mm256_add_ps(c01, d01));
    store_panel_row(y, O, p + 1, _mm256_add_ps(c10, d10), _mm256_add_ps(c11, d11));
}

/* One specialised function per (dtype, rows) so that the dtype tests and the
 * row loops fold away inside the k loop (OpenMP outlines its loop bodies
 * before inlining, so the specialisation must happen outside them). */
#define PANEL_FN(dt, N)                                                                                  \
    static void panel_##dt##_##N(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                    \
        gemv_panel(y, x, O, K, bp, TPI_##dt, p, N);                                                       \
    }
TPI_EACH_DTYPE_ROWS(PANEL_FN)
#undef PANEL_FN
#define PANEL2_FN(dt)                                                                                    \
    static void panel2_##dt(float *y, const float *x, int64_t O, int64_t K, const uint8_t *bp, int64_t p) \
    {                                                                                                    \
        gemv_panel2(y, x, O, K, bp, TPI_##dt, p);                                                         \
    }
PANEL2_FN(BF16)
PANEL2_FN(F16)
PANEL2_FN(F32)
#undef PANEL2_FN

static tpi_panel_fn pick_panel_fn(tpi_dtype dt, int64_t n)
{
    static const tpi_panel_fn fns[3][GEMV_ROWS] = TPI_DTYPE_ROWS_TABLE(panel);
    return fns[dt][n - 1];
}

/* The GEMV's pair kernels (two adjacent panels per call, sharing each load
 * of x): AVX2's, here, for one row (cpu_kernels.pair_rows = 1, so rows is
 * always 1); AVX-512's (gemv_avx512.c) for 1..4 rows. */
static tpi_panel_fn avx2_pair_fn(tpi_dtype dt, int rows)
{
    (void)rows;
    static const tpi_panel_fn fns[3] = {[TPI_F32] = panel2_F32, [TPI_BF16] = panel2_BF16, [TPI_F16] = panel2_F16};
    return fns[dt];
}

static const cpu_kernels avx2_kernels = {1, avx2_pair_fn, NULL, NULL},
                         avx512_kernels = {GEMV_ROWS, tpi_avx512_pair_fn, tpi_avx512_quad_fn,
                                           tpi_avx512_gemm_pair_fn};

/* One work unit of the GEMV: up to `per` panels of one weight, from unit u. */
static void gemv_unit(const mm_out *outs, int count, const float *xi, int64_t i, int64_t m, int64_t K,
                      const cpu_kernels *gk, int64_t per, int64_t u)
{
    int wi;
    int64_t p = find_unit(outs, count, u, per, &wi);
    const mm_out *o = &outs[wi];
    size_t panel_bytes = (size_t)K * NR * tpi_dtype_size(o->dt);
    int64_t end = p + per < o->np ? p + per : o->np;
    float *y = o->y + i * o->O;
    if (per == 4 && end - p == 4) {
        gk->quad(o->dt, (int)m)(y, xi, o->O, K, o->packed + (size_t)p * panel_bytes, p);
        return;
    }
    /* a weight's last unit: what is left in pairs, then one panel */
    for (int64_t q = p; q < end;) {
        const uint8_t *bp = o->packed + (size_t)q * panel_bytes;
        if (per > 1 && q + 1 < end) {
            gk->pair(o->dt, (int)m)(y, xi, o->O, K, bp, q);
            q += 2;
        } else {
            pick_panel_fn(o->dt, m)(y, xi, o->O, K, bp, q);
            q++;
        }
    }
}

/* n rows in groups of at most GEMV_ROWS; the GEMV needs no scratch memory.
 * The panels of all the outputs form one parallel loop (one thread wake-up
 * for q, k and v together, and k and v's 16 panels each no longer split
 * alone). Each thread first streams a fixed block of GEMV_FIXED quarters of
 * its share of the units, then the rest are handed out dynamically, one
 * unit at a time: a thread that the OS preempts (other processes, or other
 * ranks on the same cores) delays only the units it holds, and the fast one
 * takes the tail. In a fixed block a thread's next unit follows its last,
 * which the kernels' last prefetches fetch (gemv_avx512.c), and it takes no
 * atomic per unit; bench_kernels 1 4 d, 2 threads, eight alternating rounds:
 * 84.8-92.1 % of the read bandwidth (88.2 on average) with the block
 * against 82.0-91.7 (84.8) all dynamic, ahead in 7 of the 8 rounds. */
static void gemv(const mm_out *outs, int count, const float *x, int64_t n, int64_t K, const cpu_kernels *gk)
{
    for (int64_t i = 0; i < n; i += GEMV_ROWS) {
        int64_t m = n - i < GEMV_ROWS ? n - i : GEMV_ROWS;
        /* units of up to four panels of one weight, as wide as the kernels go */
        const int64_t per = m > gk->pair_rows ? 1 : gk->quad ? 4 : 2;
        int64_t nu = n_units(outs, count, per);
        const float *xi = x + i * K;
#pragma omp parallel
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int64_t fixed = nu * GEMV_FIXED / 4 / nt;
            for (int64_t u = id * fixed; u < (id + 1) * fixed; u++)
                gemv_unit(outs, count, xi, i, m, K, gk, per, u);
#pragma omp for schedule(dynamic, 4 / per)
            for (int64_t u = nt * fixed; u < nu; u++)
                gemv_unit(outs, count, xi, i, m, K, gk, per, u);
        }
    }
}

/* The packed activations of a prefill (n x K floats: 33 MB for 4096 rows of
 * 2048) are kept between calls, one buffer per calling thread, grown as
 * needed. Allocating them per call cost a page fault per 4 KB on every
 * matmul: at 4096 rows that was a third of the GEMM time on a VM. */
static float *scratch(size_t bytes)
{
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        const size_t huge = (size_t)2 << 20;
        size_t want = (bytes + huge - 1) / huge * huge; /* >= 2 MB, so alloc_packed gives exactly this */
        free(buf);
        buf = alloc_packed(want);
        cap = buf ? want : 0;
    }
    return buf;
}

static void matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                         const cpu_kernels *gk)
{
    if (n <= 0 || count <= 0)
        return;
    if (count > TPI_MATMUL_MAX) {
        matmul_multi(count - TPI_MATMUL_MAX, ys + TPI_MATMUL_MAX, x, n, ws + TPI_MATMUL_MAX, gk);
        count = TPI_MATMUL_MAX;
    }
    int64_t K = ws[0]->cols;
    mm_out outs[TPI_MATMUL_MAX];
    tpi_weight tmpw[TPI_MATMUL_MAX];
    int m = 0;
    for (int i = 0; i < count; i++) {
        const tpi_weight *w = ws[i];
        if (w->rows <= 0)
            continue;
        if (K <= 0) {
            memset(ys[i], 0, (size_t)n * (size_t)w->rows * sizeof *ys[i]);
            continue;
        }
        /* A weight nobody prepared (or prepared for another layout) is
         * packed for this call only. */
        tmpw[m] = *w;
        tmpw[m].packed = NULL;
        const uint8_t *packed = w->packed;
        if (!packed || w->packed_bytes != (int64_t)packed_size(w)) {
            if (tpi_avx2_prepare_weight(&tmpw[m])) {
                tpi_backend_cpu_ref()->matmul(ys[i], x, n, w);
                continue;
            }
            packed = tmpw[m].packed;
        }
        outs[m++] = (mm_out){.y = ys[i], .packed = packed, .dt = w->dtype, .O = w->rows, .np = n_panels(w->rows)};
    }
    if (m) {
        float *ap = n > GEMV_ROWS ? scratch((size_t)((n + MR - 1) / MR) * MR * (size_t)K * sizeof(float)) : NULL;
        if (ap)
            gemm(outs, m, x, n, K, ap, gk);
        else
            gemv(outs, m, x, n, K, gk);
    }
    for (int i = 0; i < m; i++)
        free(tmpw[i].packed);
}

void tpi_avx2_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    matmul_multi(count, ys, x, n, ws, &avx2_kernels);
}

void tpi_avx2_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(1, &y, x, n, &w, &avx2_kernels);
}

void tpi_avx512_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    matmul_multi(count, ys, x, n, ws, &avx512_kernels);
}

void tpi_avx512_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(1, &y, x, n, &w, &avx512_kernels);
}
