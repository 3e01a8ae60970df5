#ifndef TPI_BACKEND_CPU_TUNING_H
#define TPI_BACKEND_CPU_TUNING_H
/* The CPU kernels' tuning constants, one reason each. Nothing overrides
 * them; they are fixed at build time. */

/* ---- threads: every parallel region (matmul.c, attention.c, the
 * element-wise kernels, ref.c) ---- */

/* What starting a parallel region on 2 threads costs over running its body
 * on the calling thread, in ns. bench_threads measures it: 1-8 us back to
 * back on a 2-core VM, while the team still spins (GOMP_SPINCOUNT=2000, as
 * the CLI sets), and 150-210 us once it has gone to sleep on a loaded
 * machine; a decoded token leaves gaps of a few to tens of us between
 * regions, so both happen. 20 us sits between them. */
#define TPI_WAKE_NS 20000
/* A region runs on the team only when its work takes one thread at least
 * this long: with 2 threads it then saves at least the wake-up. Below, it
 * runs on the calling thread alone (an OpenMP if clause), and a small model
 * (stories260K: no region reaches it) runs as fast as on one thread. */
#define TPI_PAR_MIN_NS (2 * TPI_WAKE_NS)
/* One thread's rates, to turn each region's work into time (measured with
 * bench_kernels on one core, rounded up so that a region is judged short
 * rather than long): the decode GEMV streams 16 bytes of weights per ns,
 * the prefill GEMM does 100 FLOP per ns, attention 20 FLOP per ns (scores,
 * exp and the weighted sum), the element-wise kernels 2 floats per ns, the
 * weight packing copies 1 element per ns, and the reference kernels (ref.c)
 * do 1 multiply-add (or element) per ns. */
#define TPI_PAR_MIN_GEMV_BYTES (16 * (int64_t)TPI_PAR_MIN_NS)
#define TPI_PAR_MIN_GEMM_FLOPS (100 * (int64_t)TPI_PAR_MIN_NS)
#define TPI_PAR_MIN_ATTN_FLOPS (20 * (int64_t)TPI_PAR_MIN_NS)
#define TPI_PAR_MIN_PACK_ELEMS ((int64_t)TPI_PAR_MIN_NS)
#define TPI_PAR_MIN_REF_OPS ((int64_t)TPI_PAR_MIN_NS)

/* ---- matmul (matmul.c) ---- */

/* Prefill GEMM: k per slice, so that a 16 x 512 bf16 weight slice (16 KB)
 * and the 6 x 512 activation slice (12 KB) stay in a 48 KB L1 together. */
#define TPI_GEMM_KC 512
/* Prefill GEMM on bf16/f16 weights where the set widens a panel pair once
 * per unit (gemm_avx512.c): k per slice, so that the pair's widened slice
 * (32 x 256 fp32, 32 KB) stays in L1 while the unit's row blocks pass; and
 * the fewest row blocks a unit has for it to widen (with one, the kernel
 * widens in its loop as cheaply). On the Xeon the bf16 layer went from 86
 * to 112 GFLOP/s on one thread and from 160 to 239 on two
 * (`bench_kernels 1 2 p`). */
#define TPI_GEMM_WIDE_KC 256
#define TPI_GEMM_WIDE_MIN_BLOCKS 2
/* Prefill GEMM: blocks of MR = 6 rows per work unit, so that 192 rows x KC
 * of packed activations (384 KB) stay in L2 while the weights stream by. */
#define TPI_GEMM_MC_BLOCKS 32
/* Prefill GEMM: output panels (of 16) per work unit, the grain of its
 * dynamic schedule. */
#define TPI_GEMM_PANELS 8
/* bf16-dot GEMM (gemm_bf16.c), prefill: k per slice, so that a panel
 * pair's slice (32 x 512 bf16, 32 KB) stays in L1/L2 while the row blocks'
 * slices pass it. */
#define TPI_GEMM_BF16_KC 512
/* bf16-dot GEMM, prefill: MR-row blocks per tile (1: 6 rows x 2 panels). */
#define TPI_GEMM_BF16_TILE_BLOCKS 1
/* bf16-dot GEMM, prefill: row blocks and panels per work unit. */
#define TPI_GEMM_BF16_MC_BLOCKS 32
#define TPI_GEMM_BF16_PANELS 8
/* bf16-dot GEMM: up to this many rows each weight panel is streamed from
 * memory once (a serve step's decode rows), in passes of up to 18 rows. */
#define TPI_GEMM_BF16_STREAM_ROWS 32
/* bf16-dot GEMM, few rows: panels per work unit. */
#define TPI_GEMM_BF16_STREAM_PANELS 2
/* bf16-dot tiles: bytes ahead each weight line is prefetched. */
#define TPI_GEMM_BF16_PREFETCH 2048
/* Up to this many rows of x a matmul is a GEMV: it streams every weight
 * byte once per group of rows without packing x (the GEMV kernels exist for
 * 1..4 rows); more rows go to the GEMM. */
#define TPI_GEMV_MAX_ROWS 4
/* GEMV: quarters of its share of the units each thread streams as one
 * fixed block before it takes the rest one unit at a time: a fixed block
 * costs no atomic per unit and keeps a thread's next unit where its
 * prefetches went, the dynamic rest lets a thread the OS preempted be
 * covered by the others. */
#define TPI_GEMV_FIXED_QUARTERS 3
/* 512-bit GEMV (gemv_avx512.c): bytes ahead each panel is prefetched; the
 * loop is faster with it than without, and faster at 2 KB than at 1, 4 or
 * 8 KB. The AVX2 GEMV prefetches nothing: it has no spare issue slots for
 * it, and every distance is slower than the hardware prefetcher alone. */
#define TPI_GEMV512_PREFETCH 2048

/* ---- quantized matmul (quant_matmul.c) ---- */

/* Weight rows per work unit: 16 rows of 2048 Q8_0 columns are 35 KB, which
 * stay in L2 while the prefill's groups of four activation rows pass; a
 * 2048-row weight is 128 units, enough for the dynamic schedule to even out
 * threads. */
#define TPI_QMM_ROWS 16
/* The same for packed weights (a multiple of 8): 64 rows of 2048 Q8_0
 * columns are 139 KB, still in L2, and each pass of a group of activation
 * rows (22 KB, from L2 or L3) now feeds 64 rows; a 2048-row weight is 32
 * units. */
#define TPI_QMM_PACKED_ROWS 64
/* Packed quantized kernels in decode (one or two activation rows): bytes
 * ahead of each block its lines are prefetched (quant_simd.h, qprefetch).
 * On the Xeon, one thread's decode GEMV read 13.5 / 11.9 / 10.7 / 11.4 GB/s
 * (Q8_0 / Q4_0 / Q4_K / Q6_K) at 2 KB, against 10.2 / 7.6 / 8.3 / 9.0
 * without, and no better at 1, 3 or 4 KB or into L2 only
 * (`bench_quant 24 3 128 d`); with the sixteen-row kernels' two streams
 * (quant_pack_x16.h), 1 and 4 KB again measured within the noise of 2. */
#define TPI_QPACK_PREFETCH 2048
#define TPI_QPACK_PREFETCH_ROWS 2
/* Activation rows per kernel call: each weight block is unpacked once per
 * call, and AVX-512's 32 registers hold 8 rows' accumulators (AVX2's set
 * takes them in two passes of 4). More rows would spill. */
#define TPI_QMM_GROUP 8
/* Below this many weight bytes read (bytes x groups of rows) a call
 * runs on one thread: waking the threads costs microseconds. */
#define TPI_QMM_PARALLEL_MIN_BYTES (256 * 1024)

/* ---- attention (attention.c) ---- */

/* Queries per work item: items of one KV head and this many queries share
 * each transposed K tile among the group's heads and queries. */
#define TPI_ATTN_BQ 16

/* ---- element-wise kernels (rmsnorm_avx2.c, rope_avx2.c, silu_avx2.c) ---- */

/* Below this many floats a kernel runs on one thread (TPI_PAR_MIN_NS at 2
 * floats per ns): a decode row's work is far less than a wake-up. */
#define TPI_PARALLEL_MIN_FLOATS (2 * (int64_t)TPI_PAR_MIN_NS)
/* Floats per SiLU-gating work unit. */
#define TPI_SILU_CHUNK 4096
#endif
