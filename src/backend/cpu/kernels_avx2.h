#ifndef TPI_BACKEND_CPU_KERNELS_AVX2_H
#define TPI_BACKEND_CPU_KERNELS_AVX2_H
/* Probes of the processor for benchmarks (membw_avx2.c, fma_peak.c), not
 * kernels of the model; the kernel sets are in kernels.h. */
#include <stddef.h>

/* Seconds to read `bytes` of buf once with `threads` OpenMP threads (a sum,
 * each thread's share read as four streams at once): the memory's read rate
 * when buf is far larger than the caches. For benchmarks; run it a few
 * times and keep the fastest. */
double tpi_avx2_read_seconds(const float *buf, size_t bytes, int threads);

/* GFLOP/s of `threads` OpenMP threads doing `bits`-wide (256 or 512) FMAs
 * on registers only, once (take the best of a few); 0 where the processor
 * lacks that width. Callable on any x86-64 processor (fma_peak.c). */
double tpi_fma_peak_gflops(int threads, int bits);
#endif
