#ifndef TPI_COMM_WIRE_H
#define TPI_COMM_WIRE_H
/* The encodings an all-reduce's partial sums travel in between hosts
 * (tpi_comm_opts.wire, docs/MULTIHOST.md "Lighter all-reduces"): float32
 * as computed, bf16 (the upper half of each float, rounded to nearest
 * even), or q8: blocks of TPI_WIRE_Q8_BLOCK values as one float32 scale
 * (the block's largest magnitude / 127) and one int8 per value, as
 * distributed-llama's Q80 sync. Sums are always accumulated in float32. */
#include <stddef.h>
#include <stdint.h>

#define TPI_WIRE_Q8_BLOCK 32

/* Bytes n values take in kind (enum tpi_wire_kind); n a multiple of
 * TPI_WIRE_Q8_BLOCK for q8. */
size_t tpi_wire_bytes(int kind, int64_t n);
/* Writes x [n] as kind into out [tpi_wire_bytes(kind, n)]. Non-finite
 * values: bf16 keeps them; a q8 block holding one decodes to NaN. */
void tpi_wire_encode(int kind, const float *x, int64_t n, void *out);
/* acc [n] += the values in [n] encodes (in [tpi_wire_bytes(kind, n)]). */
void tpi_wire_add(int kind, const void *in, int64_t n, float *acc);
#endif
