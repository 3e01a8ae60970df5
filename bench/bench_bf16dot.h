#ifndef TPI_BENCH_BF16DOT_H
#define TPI_BENCH_BF16DOT_H
/* bench_kernels part b (bench_bf16dot.c): the bf16-dot GEMM against the
 * vdpbf16ps peak and the read bandwidth of the same rounds. */
#include "backend/backend.h"

/* Prints the prefill table (when `prefill`) and the serve-step table (when
 * `serve`) for be's bf16-dot variant (and be itself, fp32 activations,
 * beside it in the serve steps), best of reps rounds; prints a skip line
 * where the CPU lacks AVX512_BF16. Returns nonzero when memory runs out. */
int bench_bf16_dot(const tpi_backend *be, int reps, int prefill, int serve);
#endif
