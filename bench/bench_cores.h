#ifndef TPI_BENCH_BENCH_CORES_H
#define TPI_BENCH_BENCH_CORES_H
/* The engine's own prefill GEMM timed on each core in turn (tpinfer-bench):
 * the cores of a VM need not be equal, and N ranks of one thread each run
 * at the pace of the slowest. */
typedef struct core_probe core_probe;

/* NULL when out of memory. */
core_probe *core_probe_new(void);
/* rate[c] = GFLOP/s of one thread pinned to core c, for c < cores; the
 * calling thread's affinity and OpenMP thread count are restored. -1 (and
 * rates of 0) when the pinning fails. */
int core_probe_run(core_probe *p, double *rate, int cores);
void core_probe_free(core_probe *p);
#endif
