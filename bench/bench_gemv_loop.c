/* The bf16 decode GEMV's inner loop on its own (a benchmark, not a test):
 * how much of the decode time is arithmetic and how much is memory. Each
 * variant streams the same packed panels (16 outputs x K = 2048, k-major,
 * bf16) from L2, L3 and memory, with 1 and 2 threads; GB/s of weights.
 *
 *   bench_gemv_loop
 *
 * Variants: read (an integer sum: the memory ceiling), v1 (one panel per
 * broadcast of x[k]), v2 (two panels per broadcast, as gemv_avx2.c does),
 * nowiden (v1 without the bf16 widening: wrong results, shows its cost),
 * pf8k (v1 with a software prefetch 8 KB ahead) and, on processors that
 * have it, avx512 (v1 with 512-bit vectors and 32-output panels), avx512p2
 * (two 16-output panels per zmm, as gemv_avx512.c does, there with a
 * prefetch), avx512k2 (two k of one panel per zmm) and quad (four
 * 16-output panels, two per zmm, prefetched as gemv_avx512.c does), and
 * read4 (the read over four panels at once: four streams) and read4pf (the
 * same with a prefetch 2 KB ahead, as the bandwidth probe of tpinfer-bench
 * reads). Numbers are meaningful only as ratios within one run. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define K 2048
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,fma")))

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef void (*panel_fn)(float *y, const float *x, const uint16_t *w);

AVX2 static inline void widen(const uint16_t *p, __m256 *lo, __m256 *hi)
{
    __m256i r = _mm256_loadu_si256((const __m256i *)p);
    *lo = _mm256_castsi256_ps(_mm256_slli_epi32(r, 16));
    *hi = _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
}

AVX2 static void read_panel(float *y, const float *x, const uint16_t *w)
{
    (void)x;
    __m256i a = _mm256_setzero_si256(), b = a;
    for (int k = 0; k < K; k += 2) {
        a = _mm256_add_epi32(a, _mm256_loadu_si256((const __m256i *)(w + k * 16)));
        b = _mm256_add_epi32(b, _mm256_loadu_si256((const __m256i *)(w + k * 16 + 16)));
    }
    _mm256_storeu_si256((__m256i *)y, _mm256_add_epi32(a, b));
}

#define V1(name, PF, WIDEN)                                                                                \
    AVX2 static void name(float *y, const float *x, const uint16_t *w)                                    \
    {                                                                                                     \
        __m256 z = _mm256_setzero_ps(), c[8] = {z, z, z, z, z, z, z, z};                                  \
        for (int k = 0; k < K; k += 4) {                                                                  \
            if (PF)                                                                                       \
                _mm_prefetch((const char *)(w + k * 16) + 8192, _MM_HINT_T0);                             \
            for (int j = 0; j < 4; j++) {                                                                 \
                __m256 lo, hi, a = _mm256_broadcast_ss(x + k + j);                                        \
                if (WIDEN)                                                                                \
                    widen(w + (k + j) * 16, &lo, &hi);                                                    \
                else                                                                                      \
                    lo = hi = _mm256_loadu_ps((const float *)(w + (k + j) * 16));                        \
                c[2 * j] = _mm256_fmadd_ps(a, lo, c[2 * j]);                                              \
                c[2 * j + 1] = _mm256_fmadd_ps(a, hi, c[2 * j + 1]);                                      \
            }                                                                                             \
        }                                                                                                 \
        _mm256_storeu_ps(y, _mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[4], c[6])));          \
        _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_add_ps(c[1], c[3]), _mm256_add_ps(c[5], c[7])));      \
    }
V1(v1_panel, 0, 1)
V1(nowiden_panel, 0, 0)
V1(pf8k_panel, 1, 1)

/* two adjacent panels (w and w + 16 K) */
AVX2 static void v2_panel(float *y, const float *x, const uint16_t *w)
{
    const uint16_t *w2 = w + 16 * K;
    __m256 z = _mm256_setzero_ps(), c[8] = {z, z, z, z, z, z, z, z};
    for (int k = 0; k < K; k += 2)
        for (int j = 0; j < 2; j++) {
            __m256 lo, hi, a = _mm256_broadcast_ss(x + k + j);
            widen(w + (k + j) * 16, &lo, &hi);
            c[4 * j] = _mm256_fmadd_ps(a, lo, c[4 * j]);
            c[4 * j + 1] = _mm256_fmadd_ps(a, hi, c[4 * j + 1]);
            widen(w2 + (k + j) * 16, &lo, &hi);
            c[4 * j + 2] = _mm256_fmadd_ps(a, lo, c[4 * j + 2]);
            c[4 * j + 3] = _mm256_fmadd_ps(a, hi, c[4 * j + 3]);
        }
    for (int i = 0; i < 4; i++)
        _mm256_storeu_ps(y + 8 * i, _mm256_add_ps(c[i], c[4 + i]));
}

/* 32 outputs per panel: covers the bytes of two 16-wide panels */
AVX512 static void avx512_panel(float *y, const float *x, const uint16_t *w)
{
    const __m512i m = _mm512_set1_epi32((int)0xffff0000u);
    __m512 z = _mm512_setzero_ps(), c[8] = {z, z, z, z, z, z, z, z};
    for (int k = 0; k < K; k += 4)
        for (int j = 0; j < 4; j++) {
            __m512i r = _mm512_loadu_si512((const void *)(w + (k + j) * 32));
            __m512 a = _mm512_set1_ps(x[k + j]);
            c[2 * j] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)), c[2 * j]);
            c[2 * j + 1] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_and_si512(r, m)), c[2 * j + 1]);
        }
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[4], c[6])));
    _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_add_ps(c[1], c[3]), _mm512_add_ps(c[5], c[7])));
}

/* two adjacent 16-wide panels in the AVX2 layout, one k of each in a zmm
 * (panel w in lanes 0-7, panel w + 16 K in lanes 8-15): the packing stays
 * the AVX2 GEMM's */
AVX512 static void avx512p2_panel(float *y, const float *x, const uint16_t *w)
{
    const uint16_t *w2 = w + 16 * K;
    const __m512i m = _mm512_set1_epi32((int)0xffff0000u);
    __m512 z = _mm512_setzero_ps(), c[8] = {z, z, z, z, z, z, z, z};
    for (int k = 0; k < K; k += 4)
        for (int j = 0; j < 4; j++) {
            __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + (k + j) * 16))),
                                           _mm256_loadu_si256((const __m256i *)(w2 + (k + j) * 16)), 1);
            __m512 a = _mm512_set1_ps(x[k + j]);
            c[2 * j] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)), c[2 * j]);
            c[2 * j + 1] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_and_si512(r, m)), c[2 * j + 1]);
        }
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[4], c[6])));
    _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_add_ps(c[1], c[3]), _mm512_add_ps(c[5], c[7])));
}

/* one 16-wide panel in the AVX2 layout, two k per zmm (k in lanes 0-7,
 * k + 1 in lanes 8-15), x[k], x[k + 1] spread over the halves by a permute:
 * one contiguous stream per panel, 64 bytes per load */
AVX512 static void avx512k2_panel(float *y, const float *x, const uint16_t *w)
{
    const __m512i m = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 z = _mm512_setzero_ps(), c[8] = {z, z, z, z, z, z, z, z};
    for (int k = 0; k < K; k += 8)
        for (int j = 0; j < 4; j++) {
            __m512i r = _mm512_loadu_si512((const void *)(w + (k + 2 * j) * 16));
            __m512 a = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)(x + k + 2 * j)))));
            c[2 * j] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)), c[2 * j]);
            c[2 * j + 1] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_and_si512(r, m)), c[2 * j + 1]);
        }
    __m512 lo = _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[4], c[6]));
    __m512 hi = _mm512_add_ps(_mm512_add_ps(c[1], c[3]), _mm512_add_ps(c[5], c[7]));
    _mm256_storeu_ps(y, _mm256_add_ps(_mm512_castps512_ps256(lo), _mm512_extractf32x8_ps(lo, 1)));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm512_castps512_ps256(hi), _mm512_extractf32x8_ps(hi, 1)));
}

/* the read over four panels at once: four sequential streams, each line
 * prefetched PF bytes ahead or not at all */
#define READ4(name, PF)                                                                                   \
    AVX2 static void name(float *y, const float *x, const uint16_t *w)                                    \
    {                                                                                                     \
        (void)x;                                                                                          \
        __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),           \
                        _mm256_setzero_si256()};                                                          \
        for (int k = 0; k < K; k += 2)                                                                    \
            for (int j = 0; j < 4; j++) {                                                                 \
                const __m256i *p = (const __m256i *)(w + (size_t)j * 16 * K + k * 16);                    \
                if (PF)                                                                                   \
                    _mm_prefetch((const char *)p + PF, _MM_HINT_T0);                                      \
                __m256i l = _mm256_add_epi32(_mm256_loadu_si256(p), _mm256_loadu_si256(p + 1));          \
                a[j] = _mm256_add_epi32(a[j], l);                                                         \
            }                                                                                             \
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(a[0], a[1]), _mm256_add_epi32(a[2], a[3]));        \
        _mm256_storeu_si256((__m256i *)y, s);                                                             \
    }
READ4(read4_panel, 0)
READ4(read4pf_panel, 2048)

/* four adjacent 16-wide panels in the AVX2 layout (four streams), panels
 * 2q and 2q + 1 in one zmm, one broadcast of x[k] for four FMAs, each line
 * prefetched 2 KB ahead */
AVX512 static void quad_panel(float *y, const float *x, const uint16_t *w)
{
    const __m512i m = _mm512_set1_epi32((int)0xffff0000u);
    __m512 z = _mm512_setzero_ps(), c[2][4] = {{z, z, z, z}, {z, z, z, z}};
    for (int k = 0; k < K; k += 2) {
        for (int j = 0; j < 4; j++)
            _mm_prefetch((const char *)(w + (size_t)j * 16 * K + k * 16) + 2048, _MM_HINT_T0);
        for (int s = 0; s < 2; s++) {
            __m512 a = _mm512_set1_ps(x[k + s]);
            for (int q = 0; q < 2; q++) {
                const uint16_t *p = w + (size_t)(2 * q) * 16 * K + (k + s) * 16;
                __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                                               _mm256_loadu_si256((const __m256i *)(p + 16 * K)), 1);
                c[s][2 * q] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)), c[s][2 * q]);
                c[s][2 * q + 1] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_and_si512(r, m)), c[s][2 * q + 1]);
            }
        }
    }
    for (int j = 0; j < 4; j++)
        _mm512_storeu_ps(y + 16 * j, _mm512_add_ps(c[0][j], c[1][j]));
}

static const struct {
    const char *name;
    panel_fn fn;
    int panels; /* 16-wide panels one call covers */
    int avx512;
} variants[] = {
    {"read", read_panel, 1, 0},         {"v1", v1_panel, 1, 0},         {"v2", v2_panel, 2, 0},
    {"nowiden", nowiden_panel, 1, 0},   {"pf8k", pf8k_panel, 1, 0},     {"avx512", avx512_panel, 2, 1},
    {"avx512p2", avx512p2_panel, 2, 1}, {"avx512k2", avx512k2_panel, 1, 1}, {"quad", quad_panel, 4, 1},
    {"read4", read4_panel, 4, 0},       {"read4pf", read4pf_panel, 4, 0},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* GB/s of one pass over np panels, repeated so it moves >= 600 MB. */
static double measure(panel_fn fn, int step, const uint16_t *w, int64_t np, const float *x, float *y, int threads)
{
    double bytes = (double)np * 16 * K * 2;
    int inner = (int)(6e8 / bytes) + 1;
    omp_set_num_threads(threads);
    double t = now();
    for (int i = 0; i < inner; i++) {
#pragma omp parallel for schedule(dynamic, 2)
        for (int64_t p = 0; p < np; p += step)
            fn(y + p * 16, x, w + (size_t)p * 16 * K);
    }
    return bytes * inner / (now() - t) / 1e9;
}

int main(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "bench_gemv_loop: needs AVX2 and FMA\n");
        return 1;
    }
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    const int64_t sizes[] = {4, 32, 10000}; /* 256 KB (L2), 2 MB (L3), 655 MB (memory) */
    const char *where[] = {"L2 256 KB", "L3 2 MB", "memory 655 MB"};
    size_t bytes = (size_t)sizes[2] * 16 * K * 2;
    uint16_t *w = aligned_alloc((size_t)2 << 20, bytes);
    float *x = malloc(K * sizeof *x), *y = malloc((size_t)sizes[2] * 16 * sizeof *y + 64);
    if (!w || !x || !y)
        return 1;
    madvise(w, bytes, MADV_HUGEPAGE);
    memset(w, 0x3f, bytes);
    for (int i = 0; i < K; i++)
        x[i] = 1.0f;
    printf("bf16 GEMV inner loop, K = %d, GB/s of weights (best of 5 interleaved rounds)%s\n", K,
           avx512 ? "" : "; no AVX-512 here, that variant is skipped");
    printf("%-8s", "variant");
    for (int s = 0; s < 3; s++)
        printf(" %14s", where[s]);
    printf(" %14s\n", "memory, 2 thr");
    /* Rounds go over every variant in turn and each keeps its best, so
     * the memory's drift on a shared machine (it moves by 1.5x within
     * minutes) hits all variants alike. */
    double best[N_VARIANTS][4] = {{0}};
    for (int r = 0; r < 5; r++)
        for (size_t v = 0; v < N_VARIANTS; v++) {
            if (variants[v].avx512 && !avx512)
                continue;
            for (int c = 0; c < 4; c++) {
                double g = measure(variants[v].fn, variants[v].panels, w, sizes[c < 3 ? c : 2], x, y, c < 3 ? 1 : 2);
                best[v][c] = g > best[v][c] ? g : best[v][c];
            }
        }
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (variants[v].avx512 && !avx512)
            continue;
        printf("%-8s", variants[v].name);
        for (int c = 0; c < 4; c++)
            printf(" %14.1f", best[v][c]);
        printf("\n");
    }
    free(w);
    free(x);
    free(y);
    return 0;
}
