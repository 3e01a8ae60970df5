/* The cores' arithmetic ceiling: GFLOP/s of FMAs on registers only
 * (bench_kernels, and the first lines of tpinfer bench). Besides the peak,
 * it tells whether N threads get N times one: on this VM the 2-thread rate
 * moved between 1.70x and 2.01x of the 1-thread rate over five runs in a
 * row. (It does not explain tpinfer bench's 2 x 1 vs 1 x 1, which read
 * 2.03-2.13x around runs that scaled 1.78-1.87x; tpinfer bench's split of
 * that ratio shows where it goes.) 12 independent chains hide the FMA
 * latency.
 * Each width is compiled for its own target, so the file needs no special
 * flags; the unrolling keeps the chains in registers at -O2 (without it
 * they went through the stack at a third of the rate). */
#include <immintrin.h>
#include <omp.h>

#include "backend/cpu/kernels_avx2.h"
#include "core/clock.h"

#define FMA_PEAK(name, tgt, vec, set1, fma, store, lanes)                                              \
    __attribute__((target(tgt))) static double name(int threads)                                       \
    {                                                                                                  \
        const long iters = 20000000;                                                                   \
        volatile float sink = 0;                                                                       \
        double t = tpi_seconds();                                                                      \
        _Pragma("omp parallel num_threads(threads)")                                                   \
        {                                                                                              \
            vec a[12], b = set1(1.0000001f), c = set1(1e-7f);                                          \
            for (int i = 0; i < 12; i++)                                                               \
                a[i] = set1((float)i);                                                                 \
            for (long n = 0; n < iters; n++)                                                           \
                _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++)                                  \
                    a[i] = fma(a[i], b, c);                                                            \
            float f[lanes], s = 0;                                                                     \
            for (int i = 0; i < 12; i++) {                                                             \
                store(f, a[i]);                                                                        \
                s += f[0];                                                                             \
            }                                                                                          \
            if (s == 1.5f) /* keeps the loop: its result is otherwise unused */                        \
                sink = s;                                                                              \
        }                                                                                              \
        (void)sink;                                                                                    \
        return 2.0 * lanes * 12 * (double)iters * threads / (tpi_seconds() - t) / 1e9;                 \
    }
FMA_PEAK(peak256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8)
FMA_PEAK(peak512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16)

double tpi_fma_peak_gflops(int threads, int bits)
{
    __builtin_cpu_init();
    if (bits == 512)
        return __builtin_cpu_supports("avx512f") ? peak512(threads) : 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? peak256(threads) : 0;
}
