#include "golden.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "testutil.h"

/* The options a ctest line gives a test binary: the same values the tpinfer
 * CLI takes from its flags and environment, put in the option structs. */
static int parse_opts(golden_ctx *g, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--prefill-chunk"))
            g->load.prefill_chunk = atoll(v);
        else if (v && !strcmp(argv[i], "--kernels"))
            g->load.kernels = v;
        else if (v && !strcmp(argv[i], "--allreduce") && !strcmp(v, "mpi"))
            g->comm_opts.allreduce = TPI_ALLREDUCE_MPI;
        else if (v && !strcmp(argv[i], "--allreduce-wire") && (!strcmp(v, "bf16") || !strcmp(v, "q8")))
            g->comm_opts.wire = !strcmp(v, "bf16") ? TPI_WIRE_BF16 : TPI_WIRE_Q8;
        else if (v && !strcmp(argv[i], "--tol-same") && atof(v) > 0)
            g->tol_same = atof(v);
        else if (v && !strcmp(argv[i], "--expect-allreduce"))
            g->expect_allreduce = v;
        else {
            fprintf(stderr, "usage: %s [--prefill-chunk N] [--kernels SET] [--allreduce mpi] [--allreduce-wire "
                            "bf16|q8] [--tol-same REL] [--expect-allreduce shm|mpi|mpi-bf16|mpi-q8]\n", argv[0]);
            return 1;
        }
    }
    return 0;
}

int g_init(golden_ctx *g, int *argc, char ***argv)
{
    tpi_error err = {0};
    g->comm_opts.kind = tu_comm_kind();
    g->tol_same = 1e-5;
    if (parse_opts(g, *argc, *argv))
        return 1;
    if (tpi_comm_create(&g->comm, &g->comm_opts, argc, argv, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* Every rank of a test runs on this machine, and so does each one-rank
     * model loaded beside the split one: all share its cores. */
    g->load.local_ranks = tpi_comm_size(g->comm);
    if (tpi_comm_rank(g->comm) != 0 && !freopen("/dev/null", "w", stdout))
        return 1;
    /* Across hosts the all-reduce must be the network's, never a shared
     * memory window that only works because the hosts are emulated. */
    if (g->expect_allreduce && strcmp(g->expect_allreduce, g->comm->allreduce ? g->comm->allreduce : "?"))
        g_fail(g, "the all-reduce in use is %s, expected %s", g->comm->allreduce, g->expect_allreduce);
    else if (g->expect_allreduce && tpi_comm_rank(g->comm) == 0)
        printf("ok: the all-reduce in use is %s\n", g->expect_allreduce);
    g->shared = tu_shared_dir();
    if (!g->shared) {
        tpi_comm_free(g->comm);
        return TU_SKIP;
    }
    return 0;
}

void g_fail(golden_ctx *g, const char *fmt, ...)
{
    g->failures++;
    if (tpi_comm_rank(g->comm) != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

tpi_model *g_load(golden_ctx *g, const char *dir, int one_rank)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    tpi_load_opts o = g->load;
    o.comm = one_rank ? NULL : g->comm;
    if (tpi_model_load(&m, dir, &o, &err))
        g_fail(g, "load %s: %s", dir, err.msg);
    return m;
}

float *g_logits(golden_ctx *g, tpi_model *m, const int32_t *ids, const int64_t *lens, int64_t n_seq)
{
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int64_t n = 0;
    for (int64_t i = 0; i < n_seq; i++)
        n += lens[i];
    float *out = malloc((size_t)(n * info.vocab_size) * sizeof *out);
    tpi_error err = {0};
    if (tpi_model_logits(m, ids, lens, n_seq, out, &err)) {
        g_fail(g, "forward: %s", err.msg);
        free(out);
        return NULL;
    }
    return out;
}

int g_greedy_cached(golden_ctx *g, tpi_model *m, const int32_t *prompt, int64_t n, int64_t steps, int32_t *out)
{
    tpi_kv *kv;
    tpi_error err = {0};
    if (tpi_kv_create(&kv, m, 1, n + steps, &err)) {
        g_fail(g, "kv: %s", err.msg);
        return -1;
    }
    int64_t cnt = n;
    int32_t next;
    const int32_t *ids = prompt;
    for (int64_t s = 0; s < steps; s++) {
        if (tpi_model_forward_argmax(m, kv, ids, &cnt, &next, &err)) {
            g_fail(g, "greedy step %lld: %s", (long long)s, err.msg);
            tpi_kv_free(kv);
            return -1;
        }
        out[s] = next;
        ids = &out[s];
        cnt = 1;
    }
    tpi_kv_free(kv);
    return 0;
}

int g_greedy_full(golden_ctx *g, tpi_model *m, const int32_t *prompt, int64_t n, int64_t steps, int32_t *out)
{
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int32_t *seq = malloc((size_t)(n + steps) * sizeof *seq);
    memcpy(seq, prompt, (size_t)n * sizeof *seq);
    int rc = 0;
    for (int64_t s = 0; s < steps && !rc; s++) {
        int64_t len = n + s;
        float *l = g_logits(g, m, seq, &len, 1);
        int32_t best = 0;
        if (l) { /* rank 0 decides, as the generation loop does, then broadcasts */
            const float *row = l + (len - 1) * info.vocab_size;
            for (int64_t j = 1; j < info.vocab_size; j++)
                if (row[j] > row[best])
                    best = (int32_t)j;
        }
        int32_t ok = l != NULL;
        free(l);
        tpi_comm_bcast(g->comm, &best, sizeof best, 0);
        tpi_comm_bcast(g->comm, &ok, sizeof ok, 0);
        rc = ok ? 0 : -1;
        seq[n + s] = out[s] = best;
    }
    free(seq);
    return rc;
}

void g_expect_close(golden_ctx *g, const char *what, const float *got, const float *ref, size_t n, double tol)
{
    if (tpi_comm_rank(g->comm) != 0)
        return;
    if (!got || !ref) {
        g_fail(g, "%s: no data", what);
        return;
    }
    double e = tu_rel_err(got, ref, n);
    if (!(e <= tol))
        g_fail(g, "%s: max|got-ref|/max|ref| = %.3g > %.1g", what, e, tol);
    else
        printf("ok: %s (rel err %.2g <= %.1g)\n", what, e, tol);
}

void g_finish(golden_ctx *g)
{
    int32_t f = g->failures;
    tpi_comm_allreduce_max_i32(g->comm, &f, 1);
    g->failures = 0;
    assert_int_equal(f, 0);
}

int32_t *g_json_ids(const void *arr, int64_t *n)
{
    const cJSON *a = arr;
    *n = cJSON_GetArraySize(a);
    int32_t *ids = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *ids);
    int64_t i = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next)
        ids[i++] = (int32_t)e->valuedouble;
    return ids;
}

struct cJSON *g_read_json(const char *dir, const char *file)
{
    char *p = tu_path(dir, file);
    char *text = tu_read_file(p, NULL);
    free(p);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}
