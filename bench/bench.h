#ifndef TPI_BENCH_BENCH_H
#define TPI_BENCH_BENCH_H
/* tpinfer-bench's two halves; each returns the process exit code (0 ok, 1
 * runtime error, 2 usage error). */

/* The sweep (sweep.c): prefill over batch sizes and rank counts, decode,
 * all-reduce, each configuration one worker job; the table, CSV and chart. */
int bench_sweep(int argc, char **argv);
/* `tpinfer-bench worker` (worker.c): the measuring half, one per rank. */
int bench_worker(int argc, char **argv);
#endif
