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
 * the attention kernels read any block size at the same speed within noise
 * (docs/PERFORMANCE.md "Paged KV cache"), so the smallest that keeps a
 * head's run in a block at whole pages' worth of streaming wastes least
 * (half a block per sequence on average). */
#define TPI_KV_BLOCK_DEFAULT 16
#endif
