#ifndef TPI_TOOLS_MEMORY_H
#define TPI_TOOLS_MEMORY_H
/* What each rank holds of the model, for generate's summary and serve's
 * startup line: its weight bytes, how many of them are read in place from
 * the file mapping (shared with the page cache) and how many were copied,
 * and the process's resident memory (VmRSS). */
#include <stddef.h>

#include "tpinfer.h"

/* Collective over comm: gathers every rank's figures to rank 0, which writes
 * "rank 0: W MiB weights (M mapped, C copied), resident R MiB; rank 1: ...;
 * model files F MiB" into buf (others get an empty string). */
void memory_report(tpi_comm *comm, const tpi_model *m, char *buf, size_t n);
#endif
