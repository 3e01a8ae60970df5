/* tpinfer bench: the forward pass at seq 512 over batch sizes, for 1 and 2
 * ranks (threads per rank = cores / ranks), next to the machine's OpenBLAS
 * sgemm rate; decode tokens/s; all-reduce latency and bandwidth.
 *
 * The driver (no MPI) measures sgemm, then runs each configuration (ranks x
 * threads) as `[mpirun -np N] tpinfer bench-worker ...`, whose rank 0 prints
 * RESULT lines the driver turns into the table, the CSV and the chart. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/kernels_avx2.h"
#include "bench_cores.h"
#include "cli.h"
#include "commands.h"
#include "core/clock.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

void openblas_set_num_threads(int n);

/* Best of a few runs of C[m,n] = A[m,k] B[k,n]^T, the shape of our matmul. */
static double sgemm_gflops(int threads, int m, int n, int k)
{
    openblas_set_num_threads(threads);
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)n * k * 4), *c = malloc((size_t)m * n * 4);
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t = tpi_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        t = tpi_seconds() - t;
        if (r && t < best) /* the first run warms caches and threads */
            best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * k / best / 1e9;
}

/* GFLOP/s of the FMA peak of the width the GEMM uses (512-bit where the
 * processor has it), best of 3. */
static double fma_peak(int threads)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double v = tpi_fma_peak_gflops(threads, 512);
        if (v == 0)
            v = tpi_fma_peak_gflops(threads, 256);
        best = v > best ? v : best;
    }
    return best;
}

#define MAX_RANKS 16 /* ranks whose split of the prefill time is kept */

typedef struct row {
    int ranks, threads, batch, seq;
    double ms, tokens_per_s, gflops, pct;
    double core_lo, core_hi; /* the slowest and fastest core's GEMM GFLOP/s, each the mean of before and after */
    double work_ms[MAX_RANKS], coll_ms[MAX_RANKS]; /* each rank's own work and time in collectives (RANKTIMES) */
    int n_ranktimes;
    double others_ms; /* CPU time other tasks took during the run (OTHERS), where has_others */
    int has_others;
    int config, order; /* for the table's order: configuration, then batch as given */
} row;

/* One configuration of the sweep; extra: the 1 x 1 run of --scaling. */
typedef struct config {
    int ranks, threads, extra;
} config;

static int by_config(const void *a, const void *b)
{
    const row *x = a, *y = b;
    return x->config != y->config ? x->config - y->config : x->order - y->order;
}

static const row *find_row(const row *rows, int n, int ranks, int threads, int batch)
{
    for (int i = 0; i < n; i++)
        if (rows[i].ranks == ranks && rows[i].threads == threads && rows[i].batch == batch)
            return &rows[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer bench (-m DIR | --shape NAME [--dtype bf16]) [options]\n"
               "  --batches 1,2,4,8   batch sizes of the prefill sweep\n"
               "  --ranks 1,2         rank counts (threads per rank = cores / ranks)\n"
               "  --seq 512           prefill sequence length\n"
               "  --decode-ctx 128,1024  contexts at which decode tokens/s is measured\n"
               "  --csv FILE          write ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm\n"
               "  --png FILE          speedup chart (default bench.png; needs gnuplot)\n"
               "  --reps N            timed repetitions per prefill point, and decode windows of\n"
               "                      16 steps beyond one (the best is kept; default 2)\n"
               "  --threads T         threads per rank instead of cores / ranks\n"
               "  --scaling           also run 1 rank x 1 thread and print N x 1 vs 1 x 1 and vs 1 x N\n"
               "--shape writes the model (tpinfer make-model) into out/<shape>-<dtype> first.\n");
}

/* The row a worker's later line about `batch` belongs to: the newest
 * PREFILL row of that batch, or NULL. */
static row *newest_row(row *rows, int n_rows, long batch)
{
    for (int i = n_rows - 1; i >= 0; i--)
        if (rows[i].batch == batch)
            return &rows[i];
    return NULL;
}

/* "batch work collective work collective ..." (ms, a pair per rank) into
 * the newest row of that batch. */
static void parse_ranktimes(const char *s, row *rows, int n_rows)
{
    char *end;
    row *r = newest_row(rows, n_rows, strtol(s, &end, 10));
    if (!r)
        return;
    r->n_ranktimes = 0;
    while (r->n_ranktimes < MAX_RANKS) {
        s = end;
        double w = strtod(s, &end);
        if (end == s)
            break;
        s = end;
        double c = strtod(s, &end);
        if (end == s)
            break;
        r->work_ms[r->n_ranktimes] = w;
        r->coll_ms[r->n_ranktimes++] = c;
    }
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

static int run_worker(const char *self, int ranks, int threads, const char *dir, const char *batches, int seq,
                      const char *ctxs, int reps, row *rows, int *n_rows)
{
    char cmd[8192];
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ranks > 1)
        snprintf(cmd, sizeof cmd, "%s -np %d %s%s -x OMP_NUM_THREADS=%d '%s' bench-worker -m '%s' --batches %s "
                 "--seq %d --decode-ctx %s --reps %d -t %d",
                 TPI_MPIEXEC, ranks, geteuid() == 0 ? "--allow-run-as-root " : "",
                 ranks > cores ? "--oversubscribe" : "--bind-to none", threads, self, dir, batches, seq, ctxs, reps,
                 threads);
    else
        snprintf(cmd, sizeof cmd, "'%s' bench-worker -m '%s' --batches %s --seq %d --decode-ctx %s --reps %d -t %d",
                 self, dir, batches, seq, ctxs, reps, threads);
    fprintf(stderr, "bench: %s\n", cmd);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        row r = {.ranks = ranks, .threads = threads};
        double flops;
        if (sscanf(line, "PREFILL %d %d %lf %lf", &r.batch, &r.seq, &r.ms, &flops) == 4) {
            r.tokens_per_s = r.batch * r.seq / (r.ms / 1e3);
            r.gflops = flops / (r.ms / 1e3) / 1e9;
            rows[(*n_rows)++] = r; /* pct: set by the caller, from the yardstick around this run */
        } else if (!strncmp(line, "RANKTIMES ", 10)) {
            parse_ranktimes(line + 10, rows, *n_rows);
        } else if (sscanf(line, "OTHERS %d %lf", &r.batch, &r.others_ms) == 2) {
            row *o = newest_row(rows, *n_rows, r.batch);
            if (o) {
                o->others_ms = r.others_ms;
                o->has_others = 1;
            }
        } else {
            fputs(line, stdout); /* decode and all-reduce lines pass through */
        }
    }
    return pclose(p) == 0 ? 0 : -1;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"shape", required_argument, 0, 's'},
        {"dtype", required_argument, 0, 'd'},   {"batches", required_argument, 0, 'b'},
        {"ranks", required_argument, 0, 'r'},   {"seq", required_argument, 0, 'q'},
        {"csv", required_argument, 0, 'c'},     {"png", required_argument, 0, 'p'},
        {"decode-ctx", required_argument, 0, 'x'}, {"reps", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"scaling", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *dir = NULL, *shape = NULL, *dtype = "bf16", *batches = "1,2,4,8", *ranks = "1,2", *csv = NULL;
    const char *png = "bench.png", *ctxs = "128,1024";
    int seq = 512, reps = 2, fixed_threads = 0, scaling = 0, c;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 's': shape = optarg; break;
        case 'd': dtype = optarg; break;
        case 'b': batches = optarg; break;
        case 'r': ranks = optarg; break;
        case 'q': seq = atoi(optarg); break;
        case 'c': csv = optarg; break;
        case 'p': png = optarg; break;
        case 'x': ctxs = optarg; break;
        case 'n': reps = atoi(optarg); break;
        case 't': fixed_threads = atoi(optarg); break;
        case 'S': scaling = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((!dir == !shape) || seq < 1 || reps < 1 || optind != argc) {
        fprintf(stderr, "tpinfer bench: give exactly one of -m DIR or --shape NAME\n");
        usage(stderr);
        return 2;
    }
    char made[512], self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = 0;
    if (shape) {
        snprintf(made, sizeof made, "out/%s-%s", shape, dtype);
        char mp[600];
        snprintf(mp, sizeof mp, "%s/model.safetensors", made);
        struct stat st;
        if (stat(mp, &st) != 0) {
            mkdir("out", 0755);
            tpi_error err = {0};
            fprintf(stderr, "bench: writing %s\n", made);
            if (tpi_make_model(shape, dtype, made, 1234, &err)) {
                fprintf(stderr, "tpinfer bench: %s\n", err.msg);
                return 1;
            }
        }
        dir = made;
    }
    int32_t *rk, *bs;
    int64_t n_rk, n_bs;
    if (cli_parse_ids(ranks, "--ranks", &rk, &n_rk))
        return 2;
    if (cli_parse_ids(batches, "--batches", &bs, &n_bs)) {
        free(rk);
        return 2;
    }
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* The yardstick: OpenBLAS sgemm on the FFN shape of one 512-token
     * sequence, measured before the first run and after each, so that each
     * run is judged against the higher of the rates around it (the machine
     * drifts over a sweep of minutes). */
    double sg[2] = {sgemm_gflops(1, seq, 2048, 2048), 0};
    sg[1] = cores > 1 ? sgemm_gflops(cores, seq, 2048, 2048) : sg[0];
    /* The cores' arithmetic: the FMA peak with one of them and with all. */
    double fp[2] = {fma_peak(1), cores > 1 ? fma_peak(cores) : 0};
    /* And the ceiling of N x 1 vs 1 x 1: our GEMM on each core alone
     * (bench_cores.c), also measured after each prefill run. */
    core_probe *cp = core_probe_new();
    double cr[64] = {0}, cr_after[64] = {0};
    int n_cr = cores < 64 ? cores : 64;
    if (cp && core_probe_run(cp, cr, n_cr)) {
        core_probe_free(cp);
        cp = NULL;
    }
    printf("OpenBLAS sgemm [%d x 2048] x [2048 x 2048]^T: %.1f GFLOP/s with 1 thread, %.1f GFLOP/s with %d threads\n",
           seq, sg[0], sg[1], cores);
    printf("FMA peak (registers only): %.1f GFLOP/s with 1 thread, %.1f GFLOP/s with %d threads (%.2fx)\n", fp[0], fp[1],
           cores, fp[0] > 0 ? fp[1] / fp[0] : 0.0);
    if (cp) {
        printf("our GEMM on one core, [512 x 2048] x [2048 x 2048]^T bf16, GFLOP/s:");
        for (int c = 0; c < n_cr; c++)
            printf(" core %d %.1f", c, cr[c]);
        printf("\n");
    }
    /* The scaling targets compare N ranks x 1 thread with 1 x 1 and
     * 1 x cores: with --scaling, one more configuration, 1 rank on 1 thread. */
    config cf[64];
    int n_cf = 0;
    for (int64_t i = 0; i < n_rk && n_cf < 63; i++) {
        int t = fixed_threads > 0 ? fixed_threads : cores / rk[i] > 0 ? cores / rk[i] : 1;
        cf[n_cf++] = (config){rk[i], t, 0};
    }
    if (scaling && cores > 1)
        cf[n_cf++] = (config){1, 1, 1};
    free(rk);
    row rows[256];
    int n_rows = 0, fail = 0;
    /* Prefill: batch by batch, every configuration in turn, so that the
     * machine's drift over the minutes of a sweep falls on all of them
     * alike and their ratios are taken side by side (one configuration after
     * another gave 2 x 1 vs 1 x 2 of 0.82-0.98x in one sweep where runs side
     * by side gave 1.03x). Each run is judged against the sgemm measured
     * just before and after it. */
    for (int64_t b = 0; b < n_bs && !fail; b++)
        for (int i = 0; i < n_cf && !fail && n_rows < 256; i++) {
            char one[16];
            snprintf(one, sizeof one, "%d", bs[b]);
            int wide = cf[i].ranks * cf[i].threads > 1, first = n_rows;
            if (run_worker(self, cf[i].ranks, cf[i].threads, dir, one, seq, "none", reps, rows, &n_rows)) {
                fprintf(stderr, "tpinfer bench: the %d-rank %d-thread run at batch %d failed\n", cf[i].ranks,
                        cf[i].threads, bs[b]);
                fail = 1;
                break;
            }
            double after[2] = {sgemm_gflops(1, seq, 2048, 2048), 0};
            after[1] = cores > 1 ? sgemm_gflops(cores, seq, 2048, 2048) : after[0];
            double best = after[wide] > sg[wide] ? after[wide] : sg[wide];
            double lo = 0, hi = 0;
            if (cp && !core_probe_run(cp, cr_after, n_cr))
                for (int c = 0; c < n_cr; c++) {
                    double r = (cr[c] + cr_after[c]) / 2;
                    lo = c == 0 || r < lo ? r : lo;
                    hi = r > hi ? r : hi;
                    cr[c] = cr_after[c];
                }
            for (int j = first; j < n_rows; j++) {
                rows[j].pct = 100.0 * rows[j].gflops / best;
                rows[j].core_lo = lo;
                rows[j].core_hi = hi;
                rows[j].config = i;
                rows[j].order = (int)b;
            }
            printf("sgemm (%d thread%s) around the %d x %d run at batch %d: %.1f GFLOP/s before, %.1f after\n",
                   wide ? cores : 1, wide ? "s" : "", cf[i].ranks, cf[i].threads, bs[b], sg[wide], after[wide]);
            sg[0] = after[0];
            sg[1] = after[1];
        }
    /* Decode and the all-reduce: one run per configuration. */
    for (int i = 0; i < n_cf && !fail; i++)
        if (strcmp(ctxs, "none") && run_worker(self, cf[i].ranks, cf[i].threads, dir, "none", seq, ctxs, reps, rows,
                                               &n_rows)) {
            fprintf(stderr, "tpinfer bench: the %d-rank %d-thread decode run failed\n", cf[i].ranks, cf[i].threads);
            fail = 1;
        }
    free(bs);
    core_probe_free(cp);
    if (fail)
        return 1;
    qsort(rows, (size_t)n_rows, sizeof *rows, by_config);
    int n_main = 0; /* the chart shows the main sweep only: the rows before the extra configuration's */
    while (n_main < n_rows && !cf[rows[n_main].config].extra)
        n_main++;
    printf("\n%5s %7s %5s %5s %10s %10s %8s %7s %8s\n", "ranks", "threads", "batch", "seq", "ms", "tokens/s",
           "GFLOP/s", "%sgemm", "speedup");
    for (int i = 0; i < n_rows; i++) {
        /* speedup over 1 rank with as many threads as this row uses in all */
        const row *b = find_row(rows, n_rows, 1, rows[i].ranks * rows[i].threads, rows[i].batch);
        char sp[32] = "-";
        if (b)
            snprintf(sp, sizeof sp, "%.2fx", b->ms / rows[i].ms);
        printf("%5d %7d %5d %5d %10.1f %10.1f %8.1f %6.1f%% %8s\n", rows[i].ranks, rows[i].threads, rows[i].batch,
               rows[i].seq, rows[i].ms, rows[i].tokens_per_s, rows[i].gflops, rows[i].pct, sp);
    }
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        const row *one = find_row(rows, n_rows, 1, 1, r->batch), *wide = find_row(rows, n_rows, 1, r->ranks, r->batch);
        if (r->ranks > 1 && r->threads == 1 && one && wide) {
            printf("batch %d: %d ranks x 1 thread vs 1 x 1: %.2fx (ideal %d", r->batch, r->ranks, one->ms / r->ms,
                   r->ranks);
            if (r->ranks == cores && r->core_lo > 0 && one->core_hi > 0)
                printf("; %d x the slowest core's GEMM over the fastest's, around the two runs: %.2fx", r->ranks,
                       r->ranks * r->core_lo / one->core_hi);
            printf("); vs 1 x %d threads: %.2fx\n", r->ranks, wide->ms / r->ms);
            print_scaling_split(r, one);
        }
    }
    if (csv) {
        FILE *f = fopen(csv, "w");
        if (!f) {
            fprintf(stderr, "tpinfer bench: %s: cannot write\n", csv);
            return 1;
        }
        fprintf(f, "ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm\n");
        for (int i = 0; i < n_rows; i++)
            fprintf(f, "%d,%d,%d,%d,%.3f,%.3f,%.3f,%.2f\n", rows[i].ranks, rows[i].threads, rows[i].batch,
                    rows[i].seq, rows[i].ms, rows[i].tokens_per_s, rows[i].gflops, rows[i].pct);
        fclose(f);
    }
    /* The chart: tokens/s per batch size, one line per rank count. */
    char dat[] = "/tmp/tpinfer-bench-XXXXXX";
    int fd = mkstemp(dat);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) {
        for (int i = 0; i < n_main; i++)
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
                 png, seq, list, dat);
        if (system(cmd) == 0)
            printf("\nchart: %s\n", png);
        else
            fprintf(stderr, "bench: gnuplot failed; no chart (apt-get install gnuplot-nox)\n");
        unlink(dat);
    }
    return 0;
}
