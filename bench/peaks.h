#ifndef TPI_BENCH_PEAKS_H
#define TPI_BENCH_PEAKS_H
/* The cores' arithmetic ceilings, measured on registers only (peaks.c), and
 * the memory's read rate (membw.c): what tpinfer-bench and bench_kernels
 * judge our kernels against. Each probe picks its instructions at run time
 * and runs on any x86-64 processor. */
#include <stddef.h>

typedef enum peak_kind {
    PEAK_FMA,      /* fp32 FMA, the widest width the CPU has (GFLOP/s) */
    PEAK_BF16_DOT, /* bf16 pairs into fp32 lanes, AVX512_BF16 vdpbf16ps (GFLOP/s) */
    PEAK_INT8_DOT, /* u8 x s8 quads into int32 lanes, vpdpbusd of AVX512_VNNI or AVX-VNNI (GOP/s) */
} peak_kind;

/* GFLOP/s of `threads` OpenMP threads issuing `bits`-wide (256 or 512) fp32
 * FMAs, once (take the best of a few); 0 where the CPU lacks that width. */
double peak_fma_gflops(int threads, int bits);
/* The best of `reps` runs of kind k on `threads` threads; 0 where the CPU
 * lacks the instructions. */
double peak_best(peak_kind k, int threads, int reps);
/* The instructions kind k runs on this CPU, for printing; NULL where none. */
const char *peak_name(peak_kind k);

/* Seconds to read `bytes` of buf once with `threads` OpenMP threads (a sum,
 * each thread's share read as four streams at once): the memory's read rate
 * when buf is far larger than the caches. Run it a few times and keep the
 * fastest. -1 where the CPU lacks AVX2. */
double membw_read_seconds(const float *buf, size_t bytes, int threads);
#endif
