/* tpinfer-bench's report of the prefill sweep: the table, the scaling lines,
 * the CSV and the chart. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sweep.h"

static const row *find_row(const row *rows, int n, int ranks, int threads, int batch)
{
    for (int i = 0; i < n; i++)
        if (rows[i].ranks == ranks && rows[i].threads == threads && rows[i].batch == batch)
            return &rows[i];
    return NULL;
}

void report_table(const row *rows, int n)
{
    printf("\n%5s %7s %5s %5s %10s %10s %8s %7s %8s\n", "ranks", "threads", "batch", "seq", "ms", "tokens/s",
           "GFLOP/s", "%FMA", "speedup");
    for (int i = 0; i < n; i++) {
        /* speedup over 1 rank with as many threads as this row uses in all */
        const row *b = find_row(rows, n, 1, rows[i].ranks * rows[i].threads, rows[i].batch);
        char sp[32] = "-";
        if (b)
            snprintf(sp, sizeof sp, "%.2fx", b->ms / rows[i].ms);
        printf("%5d %7d %5d %5d %10.1f %10.1f %8.1f %6.1f%% %8s\n", rows[i].ranks, rows[i].threads, rows[i].batch,
               rows[i].seq, rows[i].ms, rows[i].tokens_per_s, rows[i].gflops, rows[i].pct_fma, sp);
    }
    printf("(%%FMA: of the FMA peak on the run's threads in all, measured around the run)\n");
}

/* Where N x 1 lost against 1 x 1: the ratio one->ms / r->ms is exactly
 * N x work x balance x outside, with
 *   work    = 1 x 1's time over the ranks' work added up (1: splitting the
 *             weights cost no speed; below 1: the ranks' cores or kernels
 *             ran slower than the 1 x 1 run's),
 *   balance = the ranks' mean work over the slowest rank's (1: equal),
 *   outside = the slowest rank's work over the run's time (1 minus its
 *             share in collectives: the all-reduces themselves, and the
 *             waits at the all-reduces where another rank was late, since
 *             ranks balanced over a run still take turns within it).
 * The run's time is rank 0's, so the product matches the ratio to within
 * the ranks' few microseconds of difference. */
static void print_scaling_split(const row *r, const row *one)
{
    if (r->n_ranktimes != r->ranks)
        return;
    double sum = 0, max = 0;
    for (int q = 0; q < r->n_ranktimes; q++) {
        sum += r->work_ms[q];
        max = r->work_ms[q] > max ? r->work_ms[q] : max;
    }
    if (sum <= 0)
        return;
    printf("  split: %d x work %.3f x balance %.3f x outside %.3f; per rank, work + collectives ms:", r->ranks,
           one->ms / sum, sum / r->ranks / max, max / r->ms);
    for (int q = 0; q < r->n_ranktimes; q++)
        printf("%s %.3f + %.3f", q ? "," : "", r->work_ms[q], r->coll_ms[q]);
    /* A task that runs beside an N x 1 job takes its time from a rank, which
     * the others then wait for; beside 1 x 1 it has an idle core. */
    if (r->has_others && one->has_others)
        printf("; other tasks' CPU ms during the run: %.0f (1 x 1's: %.0f; /proc/stat counts in 10 ms ticks)",
               r->others_ms, one->others_ms);
    printf("\n");
}

void report_scaling(const row *rows, int n, int cores)
{
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        const row *one = find_row(rows, n, 1, 1, r->batch), *wide = find_row(rows, n, 1, r->ranks, r->batch);
        if (r->ranks < 2 || r->threads != 1 || !one || !wide)
            continue;
        printf("batch %d: %d ranks x 1 thread vs 1 x 1: %.2fx (ideal %d", r->batch, r->ranks, one->ms / r->ms,
               r->ranks);
        if (r->ranks == cores && r->core_lo > 0 && one->core_hi > 0)
            printf("; %d x the slowest core's GEMM over the fastest's, around the two runs: %.2fx", r->ranks,
                   r->ranks * r->core_lo / one->core_hi);
        printf("); vs 1 x %d threads: %.2fx\n", r->ranks, wide->ms / r->ms);
        print_scaling_split(r, one);
    }
}

int report_csv(const char *path, const row *rows, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm,pct_fma_peak,fma_peak_gflops\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%d,%d,%d,%.3f,%.3f,%.3f,%.2f,%.2f,%.1f\n", rows[i].ranks, rows[i].threads, rows[i].batch,
                rows[i].seq, rows[i].ms, rows[i].tokens_per_s, rows[i].gflops, rows[i].pct_sgemm, rows[i].pct_fma,
                rows[i].fma_peak);
    return fclose(f) ? -1 : 0;
}

void report_png(const char *path, const row *rows, int n, const char *ranks, int seq)
{
    char dat[] = "/tmp/tpinfer-bench-XXXXXX";
    int fd = mkstemp(dat);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return;
    for (int i = 0; i < n; i++)
        fprintf(f, "%d %d %.3f\n", rows[i].ranks, rows[i].batch, rows[i].tokens_per_s);
    fclose(f);
    char cmd[2048], list[256];
    snprintf(list, sizeof list, "%s", ranks);
    for (char *q = list; *q; q++)
        if (*q == ',')
            *q = ' ';
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"set terminal png size 800,500; set output '%s'; "
             "set title 'tpinfer prefill, seq %d (threads per rank = cores / ranks)'; "
             "set xlabel 'batch'; set ylabel 'tokens/s'; set logscale x 2; set yrange [0:*]; set key bottom right; "
             "plot for [r in '%s'] '%s' using (\\$1==r+0 ? \\$2 : 1/0):3 with linespoints title r.' rank(s)'\"",
             path, seq, list, dat);
    if (system(cmd) == 0)
        printf("\nchart: %s\n", path);
    else
        fprintf(stderr, "tpinfer-bench: gnuplot failed; no chart (apt-get install gnuplot-nox)\n");
    unlink(dat);
}
