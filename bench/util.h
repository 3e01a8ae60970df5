#ifndef TPI_BENCH_UTIL_H
#define TPI_BENCH_UTIL_H
/* Helpers shared by tpinfer-bench's two halves (sweep.c, worker.c). */
#include <stdint.h>

#include "tpinfer.h"

/* Parses "1,2,3" into a malloc'd array of n integers >= 1; prints an error
 * naming `what` and returns -1 on a malformed list. */
int bench_parse_ints(const char *s, const char *what, int32_t **out, int64_t *n);
#endif
