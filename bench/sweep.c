/* tpinfer-bench: the forward pass at seq 512 over batch sizes, for 1 and 2
 * ranks (threads per rank = cores / ranks), judged against the cores' FMA
 * peak; decode tokens/s against the read bandwidth; all-reduce latency and
 * bandwidth.
 *
 * The sweep (no MPI) measures the machine's ceilings, then runs each
 * configuration (ranks x threads) as `[mpirun -np N] tpinfer-bench worker
 * ...`, whose rank 0 prints lines (worker.c) that the sweep turns into the
 * table, the CSV and the chart (report.c). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "bench_cores.h"
#include "core/clock.h"
#include "llama_table.h"
#include "peaks.h"
#include "sweep.h"
#include "tpinfer.h"
#include "util.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

#define MAX_CORES 64
#define MAX_ROWS 256
#define MAX_CONFIGS 64
#define PEAK_REPS 3 /* register probes: best of */

typedef struct sweep_opts {
    const char *dir, *shape, *dtype, *batches, *ranks, *csv, *png, *ctxs;
    const char *bf16_act; /* --bf16-activations "0" or "1", passed to the workers */
    int seq, reps, threads, scaling, llama_table;
    char self[4096]; /* this program, re-executed as the workers */
    char made[512];  /* where --shape writes its model */
} sweep_opts;

/* One configuration of the sweep; extra: the 1 x 1 run of --scaling. */
typedef struct config {
    int ranks, threads, extra;
} config;

/* The machine's ceilings. Those that judge a prefill run are measured again
 * after each run, and the run is judged against the higher of the figures
 * before and after it: the machine drifts over a sweep of minutes. */
typedef struct ceilings {
    int cores, seq;
    double sgemm[2];           /* OpenBLAS sgemm GFLOP/s on 1 thread and on all cores: pct_sgemm */
    double fma[MAX_CORES + 1]; /* FMA peak GFLOP/s by thread count; 0 until measured */
    core_probe *cp;            /* our GEMM on each core alone (bench_cores.c), or NULL */
    double core[MAX_CORES];
    int n_core;
} ceilings;

static int by_config(const void *a, const void *b)
{
    const row *x = a, *y = b;
    return x->config != y->config ? x->config - y->config : x->order - y->order;
}

/* ---- ceilings ---- */

/* Best of a few runs of C[m,n] = A[m,k] B[k,n]^T, the shape of our matmul. */
static double sgemm_gflops(int threads, int m, int n, int k)
{
    openblas_set_num_threads(threads);
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)n * k * 4), *c = malloc((size_t)m * n * 4);
    double best = 1e30;
    for (size_t i = 0; a && i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; b && i < (size_t)n * k; i++)
        b[i] = (float)(i % 5) * 0.1f;
    for (int r = 0; a && b && c && r < 4; r++) {
        double t = tpi_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        t = tpi_seconds() - t;
        if (r && t < best) /* the first run warms caches and threads */
            best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * k / best / 1e9;
}

/* OpenBLAS sgemm on [seq x 2048] x [2048 x 2048]^T (llama-1b's o projection
 * for one sequence), on 1 thread and on all cores. */
static void sgemm_pair(const ceilings *c, double out[2])
{
    out[0] = sgemm_gflops(1, c->seq, 2048, 2048);
    out[1] = c->cores > 1 ? sgemm_gflops(c->cores, c->seq, 2048, 2048) : out[0];
}

/* The threads a configuration runs on in all, as the FMA peak counts them. */
static int peak_threads(const ceilings *c, const config *cf)
{
    int n = cf->ranks * cf->threads;
    n = n < c->cores ? n : c->cores;
    return n < MAX_CORES ? n : MAX_CORES;
}

/* "what (instructions): X unit/s per core, Y with N threads (Zx)", or that
 * the CPU lacks them. */
static void print_peak(peak_kind k, const char *what, const char *unit, int threads, double one, double all)
{
    const char *name = peak_name(k);
    if (!name || one <= 0) {
        printf("%s: not on this CPU\n", what);
        return;
    }
    printf("%s (%s, registers only): %.1f %s per core, %.1f with %d thread%s (%.2fx)\n", what, name, one, unit, all,
           threads, threads > 1 ? "s" : "", all / one);
}

/* The peak of kind k on 1 thread and on `threads`, printed. */
static void measure_peak(peak_kind k, const char *what, const char *unit, int threads)
{
    double one = peak_best(k, 1, PEAK_REPS);
    double all = threads > 1 && one > 0 ? peak_best(k, threads, PEAK_REPS) : one;
    print_peak(k, what, unit, threads, one, all);
}

static void ceilings_init(ceilings *c, int seq)
{
    c->seq = seq;
    c->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int all = c->cores < MAX_CORES ? c->cores : MAX_CORES;
    c->fma[1] = peak_best(PEAK_FMA, 1, PEAK_REPS);
    c->fma[all] = all > 1 ? peak_best(PEAK_FMA, all, PEAK_REPS) : c->fma[1];
    print_peak(PEAK_FMA, "fp32 FMA peak", "GFLOP/s", all, c->fma[1], c->fma[all]);
    measure_peak(PEAK_BF16_DOT, "bf16 dot-product peak", "GFLOP/s", all);
    measure_peak(PEAK_INT8_DOT, "int8 dot-product peak", "GOP/s", all);
    sgemm_pair(c, c->sgemm);
    printf("OpenBLAS sgemm [%d x 2048] x [2048 x 2048]^T (the CSV's pct_sgemm): %.1f GFLOP/s with 1 thread, "
           "%.1f with %d threads\n", seq, c->sgemm[0], c->sgemm[1], c->cores);
    c->n_core = all;
    c->cp = core_probe_new();
    if (c->cp && core_probe_run(c->cp, c->core, c->n_core)) {
        core_probe_free(c->cp);
        c->cp = NULL;
    }
    if (c->cp) {
        printf("our GEMM on one core, [512 x 2048] x [2048 x 2048]^T bf16, GFLOP/s:");
        for (int i = 0; i < c->n_core; i++)
            printf(" core %d %.1f", i, c->core[i]);
        printf("\n");
    }
}

/* Measures the ceilings again after a run of configuration cf at batch b,
 * judges the run's rows against them (the higher of before and after) and
 * prints them. */
static void ceilings_after_run(ceilings *c, const config *cf, int b, row *rows, int n)
{
    int wide = cf->ranks * cf->threads > 1, t = peak_threads(c, cf);
    double sg[2], fma = peak_best(PEAK_FMA, t, PEAK_REPS), lo = 0, hi = 0;
    sgemm_pair(c, sg);
    double best_sg = sg[wide] > c->sgemm[wide] ? sg[wide] : c->sgemm[wide];
    double best_fma = fma > c->fma[t] ? fma : c->fma[t];
    double after[MAX_CORES];
    if (c->cp && !core_probe_run(c->cp, after, c->n_core))
        for (int i = 0; i < c->n_core; i++) {
            double r = (c->core[i] + after[i]) / 2;
            lo = i == 0 || r < lo ? r : lo;
            hi = r > hi ? r : hi;
            c->core[i] = after[i];
        }
    for (int j = 0; j < n; j++) {
        rows[j].pct_sgemm = 100.0 * rows[j].gflops / best_sg;
        rows[j].fma_peak = best_fma;
        rows[j].pct_fma = best_fma > 0 ? 100.0 * rows[j].gflops / best_fma : 0;
        rows[j].core_lo = lo;
        rows[j].core_hi = hi;
        printf("prefill %d x %d, batch %d: %.1f GFLOP/s = %.1f %% of FMA peak (%d thread%s: %.1f GFLOP/s before the "
               "run, %.1f after); sgemm (%d thread%s) %.1f before, %.1f after\n", cf->ranks, cf->threads, b,
               rows[j].gflops, rows[j].pct_fma, t, t > 1 ? "s" : "", c->fma[t], fma, wide ? c->cores : 1,
               wide ? "s" : "", c->sgemm[wide], sg[wide]);
    }
    c->fma[t] = fma;
    c->sgemm[0] = sg[0];
    c->sgemm[1] = sg[1];
}

/* ---- worker jobs ---- */

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

/* One worker line: a PREFILL row appended, RANKTIMES and OTHERS added to
 * its row, anything else (decode, all-reduce) passed through. */
static void parse_line(const char *line, const config *cf, row *rows, int *n_rows)
{
    row r = {.ranks = cf->ranks, .threads = cf->threads};
    double flops;
    if (sscanf(line, "PREFILL %d %d %lf %lf", &r.batch, &r.seq, &r.ms, &flops) == 4) {
        r.tokens_per_s = r.batch * r.seq / (r.ms / 1e3);
        r.gflops = flops / (r.ms / 1e3) / 1e9;
        if (*n_rows < MAX_ROWS)
            rows[(*n_rows)++] = r; /* judged by ceilings_after_run */
    } else if (!strncmp(line, "RANKTIMES ", 10)) {
        parse_ranktimes(line + 10, rows, *n_rows);
    } else if (sscanf(line, "OTHERS %d %lf", &r.batch, &r.others_ms) == 2) {
        row *o = newest_row(rows, *n_rows, r.batch);
        if (o) {
            o->others_ms = r.others_ms;
            o->has_others = 1;
        }
    } else {
        fputs(line, stdout);
    }
}

/* Runs `tpinfer-bench worker` as cf->ranks ranks (under mpirun when more
 * than one) on `batches` and `ctxs` and reads its lines. */
static int run_worker(const sweep_opts *o, const config *cf, const char *batches, const char *ctxs, row *rows,
                      int *n_rows)
{
    char cmd[8192], args[6144];
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(args, sizeof args,
             "'%s' worker -m '%s' --batches %s --seq %d --decode-ctx %s --reps %d -t %d --bf16-activations %s", o->self,
             o->dir, batches, o->seq, ctxs, o->reps, cf->threads, o->bf16_act);
    if (cf->ranks > 1) /* the flags are Open MPI's, Debian's MPI */
        snprintf(cmd, sizeof cmd, "%s -np %d %s%s -x OMP_NUM_THREADS=%d %s", TPI_MPIEXEC, cf->ranks,
                 geteuid() == 0 ? "--allow-run-as-root " : "", cf->ranks > cores ? "--oversubscribe" : "--bind-to none",
                 cf->threads, args);
    else
        snprintf(cmd, sizeof cmd, "%s", args);
    fprintf(stderr, "tpinfer-bench: %s\n", cmd);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p))
        parse_line(line, cf, rows, n_rows);
    return pclose(p) == 0 ? 0 : -1;
}

/* Prefill: batch by batch, every configuration in turn, so that the
 * machine's drift over the minutes of a sweep falls on all of them alike
 * and their ratios are taken side by side (one configuration after another
 * gave 2 x 1 vs 1 x 2 of 0.82-0.98x in one sweep where runs side by side
 * gave 1.03x). */
static int sweep_prefill(const sweep_opts *o, ceilings *c, const config *cf, int n_cf, const int32_t *bs,
                         int64_t n_bs, row *rows, int *n_rows)
{
    int rc = 0;
    for (int64_t b = 0; b < n_bs && !rc; b++)
        for (int i = 0; i < n_cf && !rc && *n_rows < MAX_ROWS; i++) {
            char one[16];
            snprintf(one, sizeof one, "%d", bs[b]);
            int first = *n_rows;
            if (run_worker(o, &cf[i], one, "none", rows, n_rows)) {
                fprintf(stderr, "tpinfer-bench: the %d-rank %d-thread run at batch %d failed\n", cf[i].ranks,
                        cf[i].threads, bs[b]);
                rc = 1;
                break;
            }
            for (int j = first; j < *n_rows; j++) {
                rows[j].config = i;
                rows[j].order = (int)b;
            }
            ceilings_after_run(c, &cf[i], bs[b], rows + first, *n_rows - first);
        }
    return rc;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer-bench (-m DIR | --shape NAME [--dtype bf16]) [options]\n"
               "       tpinfer-bench worker ...   (the measuring half, started by the first form)\n"
               "  --batches 1,2,4,8   batch sizes of the prefill sweep\n"
               "  --ranks 1,2         rank counts (threads per rank = cores / ranks)\n"
               "  --seq 512           prefill sequence length\n"
               "  --decode-ctx 128,1024  contexts at which decode tokens/s is measured (none: no decode)\n"
               "  --csv FILE          write ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm,\n"
               "                      pct_fma_peak,fma_peak_gflops\n"
               "  --png FILE          speedup chart (default bench.png; needs gnuplot)\n"
               "  --reps N            timed repetitions per prefill point, and decode windows of\n"
               "                      16 steps beyond one (the best is kept; default 2)\n"
               "  --threads T         threads per rank instead of cores / ranks\n"
               "  --scaling           also run 1 rank x 1 thread and print N x 1 vs 1 x 1 and vs 1 x N\n"
               "  --bf16-activations B  1: prompts of bf16 weights on bf16 activations and the bf16 dot\n"
               "                      product (AVX512_BF16), as llama.cpp computes BF16 files; 0: fp32 (default)\n"
               "  --llama-table       only pp512 and tg128 at 1x1, 1x2 and 2x1 (ranks x threads), as\n"
               "                      llama-bench names them; the default for -m FILE.gguf\n"
               "--shape writes the model (as tpinfer make-model does) into out/<shape>-<dtype> first.\n");
}

/* Returns -1 when the run should stop with exit code *code (0 for --help). */
static int parse_opts(int argc, char **argv, sweep_opts *o, int *code)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"shape", required_argument, 0, 's'},
        {"dtype", required_argument, 0, 'd'},   {"batches", required_argument, 0, 'b'},
        {"ranks", required_argument, 0, 'r'},   {"seq", required_argument, 0, 'q'},
        {"csv", required_argument, 0, 'c'},     {"png", required_argument, 0, 'p'},
        {"decode-ctx", required_argument, 0, 'x'}, {"reps", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"scaling", no_argument, 0, 'S'},
        {"llama-table", no_argument, 0, 'L'},   {"help", no_argument, 0, 'h'},
        {"bf16-activations", required_argument, 0, 'a'}, {0, 0, 0, 0},
    };
    *o = (sweep_opts){.dtype = "bf16", .batches = "1,2,4,8", .ranks = "1,2", .png = "bench.png",
                      .ctxs = "128,1024", .bf16_act = "0", .seq = 512, .reps = 2};
    int c;
    *code = 2;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->dir = optarg; break;
        case 's': o->shape = optarg; break;
        case 'd': o->dtype = optarg; break;
        case 'b': o->batches = optarg; break;
        case 'r': o->ranks = optarg; break;
        case 'q': o->seq = atoi(optarg); break;
        case 'c': o->csv = optarg; break;
        case 'p': o->png = optarg; break;
        case 'x': o->ctxs = optarg; break;
        case 'n': o->reps = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'S': o->scaling = 1; break;
        case 'L': o->llama_table = 1; break;
        case 'a': o->bf16_act = optarg; break;
        case 'h': usage(stdout); *code = 0; return -1;
        default: usage(stderr); return -1;
        }
    }
    if (strcmp(o->bf16_act, "0") && strcmp(o->bf16_act, "1")) {
        fprintf(stderr, "tpinfer-bench: --bf16-activations: expected 0 (fp32 activations) or 1 (bf16), got '%s'\n",
                o->bf16_act);
        return -1;
    }
    if ((!o->dir == !o->shape) || o->seq < 1 || o->reps < 1 || optind != argc) {
        fprintf(stderr, "tpinfer-bench: give exactly one of -m DIR or --shape NAME\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* This program's path, and the model: --shape writes it unless it is there. */
static int prepare(sweep_opts *o)
{
    ssize_t len = readlink("/proc/self/exe", o->self, sizeof o->self - 1);
    if (len <= 0) {
        fprintf(stderr, "tpinfer-bench: cannot find this program's path to start the workers\n");
        return -1;
    }
    o->self[len] = 0;
    char mp[4200];
    struct stat st;
    if (!o->shape) { /* fail before minutes of ceilings, not in the first worker */
        size_t n = strlen(o->dir);
        if (n > 5 && !strcasecmp(o->dir + n - 5, ".gguf")) {
            if (stat(o->dir, &st) == 0)
                return 0;
            fprintf(stderr, "tpinfer-bench: %s: not found\n", o->dir);
            return -1;
        }
        snprintf(mp, sizeof mp, "%s/config.json", o->dir);
        if (stat(mp, &st) == 0)
            return 0;
        fprintf(stderr, "tpinfer-bench: %s: missing (a model directory needs config.json)\n", mp);
        return -1;
    }
    snprintf(o->made, sizeof o->made, "out/%s-%s", o->shape, o->dtype);
    o->dir = o->made;
    snprintf(mp, sizeof mp, "%s/model.safetensors", o->made);
    if (stat(mp, &st) == 0)
        return 0;
    mkdir("out", 0755);
    tpi_error err = {0};
    fprintf(stderr, "tpinfer-bench: writing %s\n", o->made);
    if (tpi_make_model(o->shape, o->dtype, o->made, 1234, &err)) {
        fprintf(stderr, "tpinfer-bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The configurations: each rank count on cores / ranks threads (or
 * --threads), and with --scaling 1 rank on 1 thread, since the scaling
 * targets compare N ranks x 1 thread with 1 x 1 and 1 x cores. */
static int configs(const sweep_opts *o, int cores, config *cf)
{
    int32_t *rk;
    int64_t n_rk;
    if (bench_parse_ints(o->ranks, "--ranks", &rk, &n_rk))
        return -1;
    int n = 0;
    for (int64_t i = 0; i < n_rk && n < MAX_CONFIGS - 1; i++) {
        int t = o->threads > 0 ? o->threads : cores / rk[i] > 0 ? cores / rk[i] : 1;
        cf[n++] = (config){rk[i], t, 0};
    }
    if (o->scaling && cores > 1)
        cf[n++] = (config){1, 1, 1};
    free(rk);
    return n;
}

int bench_sweep(int argc, char **argv)
{
    sweep_opts o;
    config cf[MAX_CONFIGS];
    int code, cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (parse_opts(argc, argv, &o, &code))
        return code;
    int32_t *bs;
    int64_t n_bs;
    int n_cf = configs(&o, cores, cf);
    if (n_cf < 0 || bench_parse_ints(o.batches, "--batches", &bs, &n_bs))
        return 2;
    if (prepare(&o)) {
        free(bs);
        return 1;
    }
    size_t len = strlen(o.dir);
    if (o.llama_table || (len > 5 && !strcasecmp(o.dir + len - 5, ".gguf"))) {
        free(bs);
        return bench_llama_table(o.self, o.dir, o.reps, o.bf16_act);
    }
    ceilings c = {0};
    ceilings_init(&c, o.seq);
    static row rows[MAX_ROWS];
    int n_rows = 0, rc = sweep_prefill(&o, &c, cf, n_cf, bs, n_bs, rows, &n_rows);
    core_probe_free(c.cp);
    free(bs);
    /* Decode and the all-reduce: one run per configuration. */
    for (int i = 0; i < n_cf && !rc && strcmp(o.ctxs, "none"); i++)
        if (run_worker(&o, &cf[i], "none", o.ctxs, rows, &n_rows)) {
            fprintf(stderr, "tpinfer-bench: the %d-rank %d-thread decode run failed\n", cf[i].ranks, cf[i].threads);
            rc = 1;
        }
    if (rc)
        return rc;
    qsort(rows, (size_t)n_rows, sizeof *rows, by_config);
    int n_main = 0; /* the chart shows the main sweep only: the rows before the extra configuration's */
    while (n_main < n_rows && !cf[rows[n_main].config].extra)
        n_main++;
    report_table(rows, n_rows);
    report_scaling(rows, n_rows, cores);
    if (o.csv && report_csv(o.csv, rows, n_rows)) {
        fprintf(stderr, "tpinfer-bench: %s: cannot write\n", o.csv);
        return 1;
    }
    report_png(o.png, rows, n_main, o.ranks, o.seq);
    return 0;
}
