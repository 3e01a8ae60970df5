/* Tensor-parallel invariants at any world size (run under mpirun at 2 and 4):
 * per-rank weight bytes, the number of collectives per forward pass, and
 * plans from config.json or a file (errors naming the key; the same logits
 * whatever valid plan is used). */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "golden.h"
#include "model/model.h"
#include "testutil.h"

static golden_ctx G;
static char *tmp; /* shared by all ranks: rank 0 creates it, then broadcasts */

static char *case_dir(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/golden/hf/%s", G.shared, name);
    return buf;
}

/* ---- weight bytes: total/N plus the replicated tensors, within one unit ---- */

static void check_bytes(const char *name)
{
    char *dir = case_dir(name);
    tpi_model *m = g_load(&G, dir, 0), *m1 = g_load(&G, dir, 1);
    if (!m || !m1) {
        tpi_model_free(m), tpi_model_free(m1);
        return;
    }
    const tpi_config *c = &m->cfg;
    int size = tpi_comm_size(G.comm);
    int64_t es = 4, H = c->hidden_size, hd = c->head_dim;
    /* Replicated: the norms (kept as float32) and nothing else in the auto plan. */
    int64_t repl = (2 * c->n_layers + 1) * H * 4 + (c->qk_norm ? 2 * c->n_layers * hd * 4 : 0);
    int64_t total = m1->weight_bytes;
    /* One unit of every split dimension: a query head (q rows, o columns), a KV
     * head (k, v rows), a block of MLP features, and one vocabulary row each
     * for the embedding and lm_head. */
    int64_t unit = c->n_layers * (2 * hd * H + 2 * hd * H + 3 * 8 * H) * es + 2 * H * es;
    double expect = (double)(total - repl) / size + (double)repl;
    double diff = (double)m->weight_bytes - expect;
    if (diff < 0)
        diff = -diff;
    printf("%s rank %d: %lld bytes, expected %.0f +- %lld (total %lld, replicated %lld)\n", name,
           tpi_comm_rank(G.comm), (long long)m->weight_bytes, expect, (long long)unit, (long long)total,
           (long long)repl);
    if (diff > (double)unit) {
        G.failures++; /* every rank checks its own */
        fprintf(stderr, "FAIL: %s rank %d holds %lld bytes, expected %.0f within %lld\n", name, tpi_comm_rank(G.comm),
                (long long)m->weight_bytes, expect, (long long)unit);
    }
    tpi_model_free(m);
    tpi_model_free(m1);
}

static void test_weight_bytes(void **s)
{
    (void)s;
    check_bytes("llama-gqa");
    check_bytes("llama-uneven");
    check_bytes("qwen2-bias");
    g_finish(&G);
}

/* ---- collectives per forward pass ---- */

static int n_allreduce, n_gatherv, n_argmax;
static const tpi_comm_ops *real_ops;

static int count_allreduce(tpi_comm *c, float *buf, int64_t n)
{
    n_allreduce++;
    return real_ops->allreduce_sum(c, buf, n);
}

static int count_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root)
{
    n_gatherv++;
    return real_ops->gatherv(c, send, recv, counts, root);
}

static int count_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n)
{
    n_argmax++;
    return real_ops->argmax(c, vals, idx, n);
}

static void test_collectives(void **s)
{
    (void)s;
    tpi_model *m = g_load(&G, case_dir("llama-gqa"), 0);
    assert_non_null(m);
    tpi_comm_ops counting = *G.comm->ops;
    real_ops = G.comm->ops;
    counting.allreduce_sum = count_allreduce;
    counting.gatherv = count_gatherv;
    counting.argmax = count_argmax;
    G.comm->ops = &counting;
    int32_t ids[] = {5, 6, 7, 8};
    int64_t len = 4, L = m->cfg.n_layers;
    float *logits = malloc(4 * 256 * sizeof *logits);
    tpi_error err = {0};
    int split = tpi_comm_size(G.comm) > 1;
    n_allreduce = n_gatherv = n_argmax = 0;
    assert_int_equal(tpi_model_logits(m, ids, &len, 1, logits, &err), 0);
    /* two per layer (o_proj, down_proj) + the vocabulary-split embedding */
    printf("forward: %d all-reduces, %d gathers for %lld layers\n", n_allreduce, n_gatherv, (long long)L);
    assert_int_equal(n_allreduce, split ? 2 * L + 1 : 0);
    assert_int_equal(n_gatherv, split ? 1 : 0);
    tpi_kv *kv;
    assert_int_equal(tpi_kv_create(&kv, m, 1, 8, &err), 0);
    int32_t next;
    n_allreduce = n_gatherv = n_argmax = 0;
    assert_int_equal(tpi_model_forward_argmax(m, kv, ids, &len, &next, &err), 0);
    /* greedy: (value, index) pairs cross ranks, the logits never do */
    assert_int_equal(n_gatherv, 0);
    assert_int_equal(n_argmax, split ? 1 : 0);
    /* The prefill_chunk option reaches the forward: in chunks of 3 the 4
     * tokens take two passes, each with its own all-reduces. */
    tpi_load_opts keep = G.load;
    G.load.prefill_chunk = 3;
    tpi_model *m3 = g_load(&G, case_dir("llama-gqa"), 0);
    G.load = keep;
    assert_non_null(m3);
    n_allreduce = n_gatherv = n_argmax = 0;
    assert_int_equal(tpi_model_logits(m3, ids, &len, 1, logits, &err), 0);
    printf("forward in chunks of 3: %d all-reduces\n", n_allreduce);
    G.comm->ops = real_ops; /* before the assertion: `counting` ends with this function */
    assert_int_equal(n_allreduce, split ? 2 * (2 * L + 1) : 0);
    tpi_model_free(m3);
    tpi_kv_free(kv);
    free(logits);
    tpi_model_free(m);
}

/* The all-reduce itself (shared memory on one node unless the test is run
 * with --allreduce mpi): the one asked for, exact sums across the chunk
 * boundaries, repeated calls (both slots reused), and bit-identical results
 * on every rank. */
static void test_allreduce(void **s)
{
    (void)s;
    tpi_comm *c = G.comm;
    int P = c->size, r = c->rank;
    const char *want = P == 1 ? "none" : G.comm_opts.allreduce == TPI_ALLREDUCE_MPI ? "mpi" : "shm";
    if (r == 0)
        printf("all-reduce: %s\n", c->allreduce);
    assert_string_equal(c->allreduce, want);
    const int64_t sizes[] = {1, 2048, 16383, 16384, 16385, 3 * 16384 + 5, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *buf = malloc((size_t)n * sizeof *buf), *first = malloc((size_t)n * sizeof *buf);
        assert_non_null(buf);
        assert_non_null(first);
        for (int rep = 0; rep < 3; rep++) {
            /* small multiples of 1/4: every partial sum is exact */
            for (int64_t i = 0; i < n; i++)
                buf[i] = 0.25f * (float)((r + 1) * (i % 1000 + rep + 1));
            assert_int_equal(tpi_comm_allreduce_sum_f32(c, buf, n), 0);
            int64_t bad = -1;
            for (int64_t i = 0; i < n && bad < 0; i++)
                if (buf[i] != 0.25f * (float)(P * (P + 1) / 2 * (i % 1000 + rep + 1)))
                    bad = i;
            if (bad >= 0)
                g_fail(&G, "rank %d: all-reduce of %lld floats (call %d): element %lld is %g, expected %g\n", r,
                       (long long)n, rep, (long long)bad, buf[bad],
                       0.25 * (double)(P * (P + 1) / 2 * (bad % 1000 + rep + 1)));
        }
        /* rounding: inexact values must still agree bit for bit across ranks */
        uint32_t h = 2166136261u ^ (uint32_t)r;
        for (int64_t i = 0; i < n; i++) {
            h = (h ^ (uint32_t)i) * 16777619u;
            buf[i] = (float)(h >> 8) / 16777216.0f - 0.5f;
        }
        assert_int_equal(tpi_comm_allreduce_sum_f32(c, buf, n), 0);
        memcpy(first, buf, (size_t)n * sizeof *buf);
        assert_int_equal(tpi_comm_bcast(c, first, (size_t)n * sizeof *first, 0), 0);
        if (memcmp(first, buf, (size_t)n * sizeof *buf))
            g_fail(&G, "rank %d: all-reduce of %lld floats differs from rank 0's result\n", r, (long long)n);
        free(buf);
        free(first);
    }
    g_finish(&G);
}

/* ---- plans ---- */

static const char *tmp_path(const char *name)
{
    return tu_in(tmp, name);
}

/* Rank 0 writes; everyone waits for it. */
static void put(const char *name, const char *text)
{
    if (tpi_comm_rank(G.comm) == 0)
        assert_int_equal(tu_write_file(tmp_path(name), text, strlen(text)), 0);
    tpi_comm_barrier(G.comm);
}

static int load_with_plan(const char *dir, const char *plan_file, tpi_model **m, tpi_error *err)
{
    tpi_load_opts o = {.comm = G.comm, .tp_plan_file = plan_file};
    return tpi_model_load(m, dir, &o, err);
}

static void expect_plan_error(const char *plan_json, const char *needle1, const char *needle2)
{
    put("plan.json", plan_json);
    tpi_model *m = NULL;
    tpi_error err = {0};
    int rc = load_with_plan(case_dir("llama-gqa"), tmp_path("plan.json"), &m, &err);
    tpi_comm_barrier(G.comm); /* nobody rewrites plan.json while another rank reads it */
    if (tpi_comm_rank(G.comm) == 0)
        printf("  plan error: %s\n", err.msg);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "plan.json"));
    assert_non_null(strstr(err.msg, needle1));
    if (needle2)
        assert_non_null(strstr(err.msg, needle2));
}

static void test_plan_errors(void **s)
{
    (void)s;
    expect_plan_error("{\"layers.*.self_attn.q_proj\": \"diagonal\"}", "\"layers.*.self_attn.q_proj\"",
                      "unknown style \"diagonal\"");
    expect_plan_error("{\"layers.*.self_attn.qkv_proj\": \"colwise\"}", "\"layers.*.self_attn.qkv_proj\"",
                      "matches no weight");
    expect_plan_error("{\"layers.*.self_attn.q_proj\": \"colwise\", \"layers.*.self_attn.k_proj\": \"colwise\","
                      "\"layers.*.self_attn.v_proj\": \"colwise\", \"layers.*.self_attn.o_proj\": \"colwise\"}",
                      "\"layers.*.self_attn.o_proj\"", "inconsistent");
    expect_plan_error("{\"layers.*.mlp.gate_proj\": \"colwise\", \"layers.*.mlp.down_proj\": \"rowwise\"}",
                      "layers.*.mlp", "inconsistent");
    expect_plan_error("{\"norm\": \"colwise\"}", "\"norm\"", "only be replicated");
    expect_plan_error("[1, 2]", "must be a JSON object", NULL);
}

/* Different valid plans compute the same logits. */
static void test_plan_equivalence(void **s)
{
    (void)s;
    const char *dir = case_dir("llama-gqa");
    int32_t ids[] = {3, 14, 15, 92, 65, 35};
    int64_t len = 6;
    tpi_model *ref = g_load(&G, dir, 1);
    float *want = g_logits(&G, ref, ids, &len, 1);
    tpi_model_free(ref);
    static const char *const plans[] = {
        /* newer transformers names, MLP replicated */
        "{\"layers.*.self_attn.q_proj\": \"local_colwise\", \"layers.*.self_attn.k_proj\": \"local_colwise\","
        "\"layers.*.self_attn.v_proj\": \"local_colwise\", \"layers.*.self_attn.o_proj\": \"local_rowwise\","
        "\"layers.*.mlp.gate_proj\": \"replicate\", \"layers.*.mlp.up_proj\": \"replicate\","
        "\"layers.*.mlp.down_proj\": \"replicate\", \"layers.*.input_layernorm.weight\": \"sequence_parallel\","
        "\"lm_head\": \"colwise_gather_output\"}",
        /* older names, attention replicated, embedding split, wrapped like config.json */
        "{\"base_model_tp_plan\": {\"embed_tokens\": \"embedding_rowwise\","
        "\"layers.*.mlp.gate_proj\": \"colwise\", \"layers.*.mlp.up_proj\": \"colwise\","
        "\"layers.*.mlp.down_proj\": \"rowwise_split_input\", \"lm_head\": \"replicate\"}}",
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        put("plan.json", plans[i]);
        tpi_model *m = NULL;
        tpi_error err = {0};
        int rc = load_with_plan(dir, tmp_path("plan.json"), &m, &err);
        tpi_comm_barrier(G.comm);
        if (rc) {
            g_fail(&G, "plan %zu: %s", i, err.msg);
            continue;
        }
        float *got = g_logits(&G, m, ids, &len, 1);
        char what[64];
        snprintf(what, sizeof what, "plan file %zu vs TP=1", i);
        g_expect_close(&G, what, got, want, 6 * 256, 1e-5);
        free(got);
        tpi_model_free(m);
    }
    /* config.json's base_model_tp_plan is used when no file is given. */
    if (tpi_comm_rank(G.comm) == 0) {
        char *src = tu_path(dir, "config.json");
        char *text = tu_read_file(src, NULL);
        cJSON *cfg = cJSON_Parse(text);
        cJSON *plan = cJSON_Parse("{\"layers.*.self_attn.q_proj\": \"colwise\", \"layers.*.self_attn.k_proj\": "
                                  "\"colwise\", \"layers.*.self_attn.v_proj\": \"colwise\","
                                  "\"layers.*.self_attn.o_proj\": \"rowwise\", \"layers.*.mlp.gate_proj\": \"colwise\","
                                  "\"layers.*.mlp.up_proj\": \"colwise\", \"layers.*.mlp.down_proj\": \"rowwise\"}");
        cJSON_AddItemToObject(cfg, "base_model_tp_plan", plan);
        char *out = cJSON_Print(cfg);
        tu_write_file(tmp_path("config.json"), out, strlen(out));
        char *st = tu_path(dir, "model.safetensors");
        unlink(tmp_path("model.safetensors"));
        assert_int_equal(symlink(st, tmp_path("model.safetensors")), 0);
        free(st), free(out), free(src), free(text);
        cJSON_Delete(cfg);
    }
    tpi_comm_barrier(G.comm);
    tpi_model *m = g_load(&G, tmp, 0);
    if (m) {
        if (tpi_comm_rank(G.comm) == 0 && !strstr(m->plan->source, "base_model_tp_plan"))
            g_fail(&G, "plan source is %s, expected config.json's base_model_tp_plan", m->plan->source);
        float *got = g_logits(&G, m, ids, &len, 1);
        g_expect_close(&G, "config.json base_model_tp_plan vs TP=1", got, want, 6 * 256, 1e-5);
        free(got);
    }
    tpi_model_free(m);
    free(want);
    g_finish(&G);
}

int main(int argc, char **argv)
{
    int rc0 = g_init(&G, &argc, &argv);
    if (rc0)
        return rc0;
    char buf[512] = "";
    if (tpi_comm_rank(G.comm) == 0) {
        char *t = tu_mkdtemp();
        snprintf(buf, sizeof buf, "%s", t ? t : "");
        free(t);
    }
    tpi_comm_bcast(G.comm, buf, sizeof buf, 0);
    tmp = buf;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_bytes),
        cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_allreduce),
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_plan_equivalence),
    };
    char group[32];
    snprintf(group, sizeof group, "tp TP=%d", tpi_comm_size(G.comm));
    int rc = _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    tpi_comm_barrier(G.comm);
    if (tpi_comm_rank(G.comm) == 0)
        tu_rmdir(tmp);
    tpi_comm_free(G.comm);
    return rc;
}
