#ifndef TPI_BENCH_UTIL_H
#define TPI_BENCH_UTIL_H
/* Helpers shared by tpinfer-bench's two halves (sweep.c, worker.c). */
#include <stdint.h>

#include "tpinfer.h"

/* Parses "1,2,3" into a malloc'd array of n integers >= 1; prints an error
 * naming `what` and returns -1 on a malformed list. */
int bench_parse_ints(const char *s, const char *what, int32_t **out, int64_t *n);
/* Prints "tpinfer-bench <cmd>: <msg>" (with the rank in a multi-rank job)
 * and returns the exit code 1. In a multi-rank job it ends every rank, so a
 * failing rank never leaves the others waiting in a collective. */
int bench_fail(tpi_comm *comm, const char *cmd, const tpi_error *err);
#endif
