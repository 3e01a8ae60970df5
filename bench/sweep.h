#ifndef TPI_BENCH_SWEEP_H
#define TPI_BENCH_SWEEP_H
/* The rows of tpinfer-bench's prefill sweep (sweep.c) and their report
 * (report.c). */

#define MAX_RANKS 16 /* ranks whose split of the prefill time is kept */

/* One prefill run: a batch size on one configuration. */
typedef struct row {
    int ranks, threads, batch, seq;
    double ms, tokens_per_s, gflops;
    double pct_sgemm;        /* of OpenBLAS sgemm, on 1 thread or on all cores as the run used 1 or more */
    double fma_peak;         /* the FMA peak on the run's threads in all, GFLOP/s */
    double pct_fma;          /* gflops as a share of fma_peak */
    double core_lo, core_hi; /* the slowest and fastest core's GEMM GFLOP/s, each the mean of before and after */
    double work_ms[MAX_RANKS], coll_ms[MAX_RANKS]; /* each rank's own work and time in collectives (RANKTIMES) */
    int n_ranktimes;
    double others_ms; /* CPU time other tasks took during the run (OTHERS), where has_others */
    int has_others;
    int config, order; /* for the table's order: configuration, then batch as given */
} row;

/* The table of every row, with the speedup over 1 rank on as many threads. */
void report_table(const row *rows, int n);
/* For each N x 1 row: N x 1 vs 1 x 1 and vs 1 x N, and the split of the
 * first into work, balance and time outside collectives. */
void report_scaling(const row *rows, int n, int cores);
/* The CSV: ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm, then
 * pct_fma_peak,fma_peak_gflops. Returns 0, or -1 when it cannot write. */
int report_csv(const char *path, const row *rows, int n);
/* tokens/s per batch size, one line per rank count in `ranks` ("1,2"),
 * drawn by gnuplot into the PNG at path. */
void report_png(const char *path, const row *rows, int n, const char *ranks, int seq);
#endif
