/* The bf16 decode GEMV's inner loop on its own (a benchmark, not a test):
 * how much of the decode time is arithmetic and how much is memory. Each
 * variant streams the same packed panels (16 outputs x K = 2048, k-major,
 * bf16) from L2, L3 and memory, with 1 and 2 threads; GB/s of weights.
 *
 *   bench_gemv_loop
 *
 * Variants: read (an integer sum: the memory ceiling), v1 (one panel per
 * broadcast of x[k]), v2 (two panels per broadcast, as matmul_avx2.c does),
 * nowiden (v1 without the bf16 widening: wrong results, shows its cost),
 * pf8k (v1 with a software prefetch 8 KB ahead) and, on processors that
 * have it, avx512 (v1 with 512-bit vectors and 32-output panels). Numbers
 * are meaningful only as ratios within one run. */
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
#define AVX512 __attribute__((target("avx512f,avx512bw,fma")))

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

static const struct {
    const char *name;
    panel_fn fn;
    int panels; /* 16-wide panels one call covers */
} variants[] = {
    {"read", read_panel, 1}, {"v1", v1_panel, 1},     {"v2", v2_panel, 2},
    {"nowiden", nowiden_panel, 1}, {"pf8k", pf8k_panel, 1}, {"avx512", avx512_panel, 2},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* Best GB/s of 5 passes over np panels, repeated so each pass moves >= 600 MB. */
static double measure(panel_fn fn, int step, const uint16_t *w, int64_t np, const float *x, float *y, int threads)
{
    double bytes = (double)np * 16 * K * 2, best = 1e30;
    int inner = (int)(6e8 / bytes) + 1;
    omp_set_num_threads(threads);
    for (int r = 0; r < 5; r++) {
        double t = now();
        for (int i = 0; i < inner; i++) {
#pragma omp parallel for schedule(dynamic, 2)
            for (int64_t p = 0; p < np; p += step)
                fn(y + p * 16, x, w + (size_t)p * 16 * K);
        }
        t = now() - t;
        if (t < best)
            best = t;
    }
    return bytes * inner / best / 1e9;
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
    printf("bf16 GEMV inner loop, K = %d, GB/s of weights (best of 5)%s\n", K,
           avx512 ? "" : "; no AVX-512 here, that variant is skipped");
    printf("%-8s", "variant");
    for (int s = 0; s < 3; s++)
        printf(" %14s", where[s]);
    printf(" %14s\n", "memory, 2 thr");
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (variants[v].fn == avx512_panel && !avx512)
            continue;
        printf("%-8s", variants[v].name);
        for (int s = 0; s < 3; s++)
            printf(" %14.1f", measure(variants[v].fn, variants[v].panels, w, sizes[s], x, y, 1));
        printf(" %14.1f\n", measure(variants[v].fn, variants[v].panels, w, sizes[2], x, y, 2));
    }
    free(w);
    free(x);
    free(y);
    return 0;
}
