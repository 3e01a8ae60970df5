#ifndef TPI_TP_SPLIT_H
#define TPI_TP_SPLIT_H
/* How a dimension is dealt over ranks (DESIGN.md "Tensor-parallel plan"):
 * `n` elements in units of `unit` (a head, or a block of MLP features), the
 * last unit possibly short; rank r gets a contiguous run of units and rank
 * sizes differ by at most one unit, the larger ones first. */
#include <stdint.h>

void tpi_split(int64_t n, int64_t unit, int size, int rank, int64_t *begin, int64_t *count);

/* MLP features are dealt in blocks of this many, so every rank's slice but the
 * last starts on an AVX2 register boundary. */
#define TPI_FF_UNIT 8
#endif
