#ifndef TPI_MODEL_TUNING_H
#define TPI_MODEL_TUNING_H
/* The model's tuning constants, one reason each (the kernels' are in
 * backend/cpu/tuning.h). */

/* Tokens per pass of a forward unless tpi_load_opts.prefill_chunk says otherwise: the
 * matmuls reach the same GFLOP/s at x [512, in] as at [2048, in], and the
 * activations stay bounded (a 32k-token prompt in one pass would need
 * ~1.5 GB for the MLP's g and u alone). */
#define TPI_PREFILL_CHUNK_DEFAULT 512

/* Positions per KV block unless tpi_kv_opts.block_positions says otherwise:
 * decode attention from memory through scattered blocks of 16 ran 1-13 %
 * slower than through one contiguous block at contexts of 4k-16k, blocks of
 * 64 and 128 0-9 % (docs/PERFORMANCE.md "Paged KV cache"); 64 is the
 * smaller of those, and one of the kernel's 64-key tiles then lies in one
 * block. */
#define TPI_KV_BLOCK_DEFAULT 64
#endif
