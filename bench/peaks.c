/* The cores' arithmetic ceilings: G(FL)OP/s of one instruction on registers
 * only, CHAINS independent chains of it per thread to hide its latency.
 * Besides the peak, it tells whether N threads get N times one: on a shared
 * 2-core VM the 2-thread FMA rate moved between 1.70x and 2.01x of the
 * 1-thread rate over five runs in a row.
 *
 * Why these and not OpenBLAS sgemm: Debian's OpenBLAS runs far below the FMA
 * peak on some CPUs (31-44 GFLOP/s against 331 on a 2-core Xeon with
 * AVX-512), so a share of sgemm says little about our kernels. The FMA peak
 * bounds the fp32 GEMM; the bf16 and int8 dot products bound kernels that
 * multiply in those types.
 *
 * Each probe is compiled for its own target, so the file needs no special
 * flags and runs anywhere; the unrolling keeps the chains in registers at -O2
 * (without it they went through the stack at a third of the rate). */
#include <immintrin.h>
#include <omp.h>

#include "core/clock.h"
#include "peaks.h"

#define CHAINS 12
#define ITERS 20000000L /* 0.04-0.1 s: 240 M instructions at 1-2 a cycle */

/* Where each probe's result goes (an atomic add to a volatile), so that its
 * loop cannot be dropped as unused. */
static volatile unsigned sink;

/* One probe: `step` applied ITERS x CHAINS times on accumulators of type
 * acc_t; each step does `ops` operations (a multiply-add counts 2). lane0
 * reads an accumulator's first lane. */
#define PEAK_PROBE(name, tgt, acc_t, opnd_t, acc_init, a_init, b_init, step, ops, lane0)               \
    __attribute__((target(tgt))) static double name(int threads)                                       \
    {                                                                                                  \
        double t = tpi_seconds();                                                                      \
        _Pragma("omp parallel num_threads(threads)")                                                   \
        {                                                                                              \
            acc_t acc[CHAINS];                                                                         \
            opnd_t a = a_init, b = b_init;                                                             \
            for (int i = 0; i < CHAINS; i++)                                                           \
                acc[i] = acc_init;                                                                     \
            for (long n = 0; n < ITERS; n++)                                                           \
                _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++)                              \
                    acc[i] = step(acc[i], a, b);                                                       \
            unsigned s = 0;                                                                            \
            for (int i = 0; i < CHAINS; i++)                                                           \
                s += lane0(acc[i]) != 0;                                                               \
            _Pragma("omp atomic") sink += s;                                                           \
        }                                                                                              \
        return (double)(ops) * CHAINS * (double)ITERS * threads / (tpi_seconds() - t) / 1e9;           \
    }

/* Operands that keep the fp32 accumulators normal (no denormal or overflow
 * slow paths) over ITERS steps. */
#define FMA256(acc, a, b) _mm256_fmadd_ps(acc, a, b)
#define FMA512(acc, a, b) _mm512_fmadd_ps(acc, a, b)
PEAK_PROBE(fma256, "avx2,fma", __m256, __m256, _mm256_set1_ps(1.0f), _mm256_set1_ps(1.0000001f),
           _mm256_set1_ps(1e-7f), FMA256, 2 * 8, _mm256_cvtss_f32)
PEAK_PROBE(fma512, "avx512f", __m512, __m512, _mm512_set1_ps(1.0f), _mm512_set1_ps(1.0000001f),
           _mm512_set1_ps(1e-7f), FMA512, 2 * 16, _mm512_cvtss_f32)
/* vdpbf16ps: each of 16 fp32 lanes adds two bf16 products */
PEAK_PROBE(bf16dot512, "avx512f,avx512bf16", __m512, __m512bh, _mm512_set1_ps(1.0f),
           _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)),
           _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)), _mm512_dpbf16_ps, 4 * 16,
           _mm512_cvtss_f32)
/* vpdpbusd: each int32 lane adds four u8 x s8 products (it wraps: integer
 * lanes have no slow path) */
PEAK_PROBE(int8dot512, "avx512f,avx512vnni", __m512i, __m512i, _mm512_set1_epi32(1), _mm512_set1_epi8(3),
           _mm512_set1_epi8(-2), _mm512_dpbusd_epi32, 8 * 16, _mm512_cvtsi512_si32)
/* GCC 12 copies each accumulator and stores it to the stack on every step
 * of _mm256_dpbusd_avx_epi32 (its register allocation does not tie the
 * instruction's input to its output), so this one is written in asm. */
__attribute__((target("avx2,avxvnni"))) static inline __m256i dpbusd256(__m256i acc, __m256i a, __m256i b)
{
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    return acc;
}
PEAK_PROBE(int8dot256, "avx2,avxvnni", __m256i, __m256i, _mm256_set1_epi32(1), _mm256_set1_epi8(3),
           _mm256_set1_epi8(-2), dpbusd256, 8 * 8, _mm256_cvtsi256_si32)

/* What this CPU has. */
typedef struct isa {
    int fma256, fma512, bf16dot512, int8dot512, int8dot256;
} isa;

static isa cpu(void)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") != 0, avx512 = __builtin_cpu_supports("avx512f") != 0;
    return (isa){
        .fma256 = avx2 && __builtin_cpu_supports("fma"),
        .fma512 = avx512,
        .bf16dot512 = avx512 && __builtin_cpu_supports("avx512bf16"),
        .int8dot512 = avx512 && __builtin_cpu_supports("avx512vnni"),
        .int8dot256 = avx2 && __builtin_cpu_supports("avxvnni"),
    };
}

double peak_fma_gflops(int threads, int bits)
{
    isa c = cpu();
    if (bits == 512)
        return c.fma512 ? fma512(threads) : 0;
    return c.fma256 ? fma256(threads) : 0;
}

static double peak_once(peak_kind k, int threads)
{
    isa c = cpu();
    switch (k) {
    case PEAK_FMA: return c.fma512 ? fma512(threads) : c.fma256 ? fma256(threads) : 0;
    case PEAK_BF16_DOT: return c.bf16dot512 ? bf16dot512(threads) : 0;
    case PEAK_INT8_DOT: return c.int8dot512 ? int8dot512(threads) : c.int8dot256 ? int8dot256(threads) : 0;
    }
    return 0;
}

double peak_best(peak_kind k, int threads, int reps)
{
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double v = peak_once(k, threads);
        if (v == 0)
            return 0;
        best = v > best ? v : best;
    }
    return best;
}

const char *peak_name(peak_kind k)
{
    isa c = cpu();
    switch (k) {
    case PEAK_FMA: return c.fma512 ? "512-bit vfmadd" : c.fma256 ? "256-bit vfmadd" : NULL;
    case PEAK_BF16_DOT: return c.bf16dot512 ? "512-bit vdpbf16ps" : NULL;
    case PEAK_INT8_DOT: return c.int8dot512 ? "512-bit vpdpbusd" : c.int8dot256 ? "256-bit vpdpbusd (AVX-VNNI)" : NULL;
    }
    return NULL;
}
