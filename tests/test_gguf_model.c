/* GGUF models end to end, at any world size (ctest runs it at 1, 2 and 3
 * ranks): ../shared/golden/gguf's mini files give the logits its
 * expected.json lists, within its README's bounds, and stories260K.gguf gives
 * stories260K-hf's logits (<= 1e-5 relative) and greedy text. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "golden.h"
#include "testutil.h"

static golden_ctx G;

/* The README's bounds on max|got - ref| / max|ref|: float activations over
 * F32 weights; activations in 8-bit blocks over block-typed weights. */
#define TOL_FLOAT 1e-4
#define TOL_QUANT 3e-2
/* A split model of 32-element blocks against the unsplit one: the same
 * weights and activation blocks, but the all-reduce sums in another order, and
 * a last-bit change of an activation can round its 8-bit value the other
 * way. K types (256-element blocks) are compared with the reference only: a
 * rank whose columns start inside a block (k_off) quantizes its activations
 * over a part of the block, with another scale, which moves the logits by as
 * much as the activation rounding itself (2-3.6 % measured at TP=2 and 3). */
#define TOL_QUANT_TP 1e-2
/* stories260K.gguf holds stories260K-hf's weights in F32: only the order of
 * float sums may differ. */
#define TOL_SAME_WEIGHTS 1e-5
#define QUANT_LOAD_TOL_Q8_0 5e-2
#define QUANT_LOAD_TOL_Q4 4e-1

typedef struct gguf_case {
    char name[64];
    const cJSON *json;
} gguf_case;

static cJSON *expected;

static float *read_f32(const char *dir, const char *name, size_t n)
{
    size_t bytes = 0;
    float *v = tu_read_file(tu_in(dir, name), &bytes);
    if (v && bytes != n * sizeof *v) {
        g_fail(&G, "%s: %zu bytes, expected %zu", name, bytes, n * sizeof *v);
        free(v);
        return NULL;
    }
    return v;
}

static void test_mini(void **state)
{
    const cJSON *c = ((gguf_case *)*state)->json;
    const char *file = cJSON_GetObjectItem(c, "file")->valuestring;
    const cJSON *types = cJSON_GetObjectItem(c, "tensor_types");
    int all_f32 = cJSON_GetArraySize(types) == 1 && !strcmp(cJSON_GetArrayItem(types, 0)->valuestring, "F32");
    double tol = all_f32 ? TOL_FLOAT : TOL_QUANT;
    int k_types = 0;
    for (int i = 0; i < cJSON_GetArraySize(types); i++)
        k_types |= strstr(cJSON_GetArrayItem(types, i)->valuestring, "_K") != NULL;
    char *dir = tu_path(G.shared, "golden/gguf"), *path = tu_path(dir, file);
    tpi_model *m = g_load(&G, path, 0), *m1 = tpi_comm_size(G.comm) > 1 ? g_load(&G, path, 1) : NULL;
    const cJSON *seq;
    cJSON_ArrayForEach(seq, cJSON_GetObjectItem(c, "sequences")) {
        if (!m)
            break;
        int64_t n;
        int32_t *ids = g_json_ids(cJSON_GetObjectItem(seq, "input_ids"), &n);
        size_t count = (size_t)n * 512;
        float *ref = read_f32(dir, cJSON_GetObjectItem(seq, "logits_file")->valuestring, count);
        float *got = g_logits(&G, m, ids, &n, 1);
        char what[160];
        snprintf(what, sizeof what, "%s, %lld tokens, TP=%d", file, (long long)n, tpi_comm_size(G.comm));
        g_expect_close(&G, what, got, ref, count, tol);
        if (m1 && !k_types) { /* the split model against the whole one, much closer than either to the reference */
            float *one = g_logits(&G, m1, ids, &n, 1);
            snprintf(what, sizeof what, "%s, %lld tokens, TP=%d vs TP=1", file, (long long)n, tpi_comm_size(G.comm));
            g_expect_close(&G, what, got, one, count, all_f32 ? TOL_FLOAT : TOL_QUANT_TP);
            free(one);
        }
        free(ids), free(ref), free(got);
    }
    tpi_model_free(m);
    tpi_model_free(m1);
    free(dir), free(path);
    g_finish(&G);
}

/* The same model as a Hugging Face checkpoint and as llama.cpp's GGUF (q/k
 * rows permuted, names and shapes its own): the same logits and greedy text. */
static void test_stories(void **state)
{
    (void)state;
    char *models = tu_path(G.shared, "models"), *hf = tu_path(models, "stories260K-hf");
    char *gguf = tu_path(models, "stories260K/stories260K.gguf");
    static const int32_t prompt[] = {1, 403, 407, 261, 378, 429, 267, 385, 261, 1024 % 512, 33, 402};
    int64_t n = sizeof prompt / sizeof prompt[0];
    tpi_model *a = g_load(&G, gguf, 0), *b = g_load(&G, hf, 0);
    if (a && b) {
        float *la = g_logits(&G, a, prompt, &n, 1), *lb = g_logits(&G, b, prompt, &n, 1);
        g_expect_close(&G, "stories260K.gguf logits vs stories260K-hf", la, lb, (size_t)n * 512, TOL_SAME_WEIGHTS);
        free(la), free(lb);
        int32_t ga[48], gb[48];
        if (!g_greedy_cached(&G, a, prompt, 5, 48, ga) && !g_greedy_cached(&G, b, prompt, 5, 48, gb) &&
            memcmp(ga, gb, sizeof ga))
            g_fail(&G, "stories260K.gguf greedy tokens differ from stories260K-hf's");
        else if (tpi_comm_rank(G.comm) == 0)
            printf("ok: stories260K.gguf greedy = stories260K-hf greedy (48 tokens)\n");
    }
    tpi_model_free(a), tpi_model_free(b);
    free(models), free(hf), free(gguf);
    g_finish(&G);
}

/* --quant: each rank quantizes its slice of stories260K-hf while loading
 * (its 172 MLP features and 64 hidden are not whole blocks: zero-padded).
 * Against the float model, the bound is the weight and activation rounding
 * of each type on this small model, measured at TP=1, 2 and 3 with margin. */
static void test_quant_load(void **state)
{
    (void)state;
    static const struct { const char *type; double tol; } types[] = {
        {"q8_0", QUANT_LOAD_TOL_Q8_0}, {"q4_0", QUANT_LOAD_TOL_Q4}, {"q4_k", QUANT_LOAD_TOL_Q4},
    };
    char *dir = tu_path(G.shared, "models/stories260K-hf");
    static const int32_t prompt[] = {1, 403, 407, 261, 378, 429, 267, 385, 261, 33, 402};
    int64_t n = sizeof prompt / sizeof prompt[0];
    tpi_model *f = g_load(&G, dir, 0);
    float *ref = f ? g_logits(&G, f, prompt, &n, 1) : NULL;
    tpi_model_free(f);
    for (size_t i = 0; i < sizeof types / sizeof types[0] && ref; i++) {
        G.load.quant = types[i].type;
        tpi_model *m = g_load(&G, dir, 0);
        G.load.quant = NULL;
        if (!m)
            continue;
        tpi_model_info info;
        tpi_model_get_info(m, &info);
        if (info.mapped_bytes != 0)
            g_fail(&G, "--quant %s: %lld bytes still mapped (every matrix is quantized into owned memory)",
                   types[i].type, (long long)info.mapped_bytes);
        float *got = g_logits(&G, m, prompt, &n, 1);
        char what[128];
        snprintf(what, sizeof what, "stories260K-hf --quant %s vs float, TP=%d", types[i].type,
                 tpi_comm_size(G.comm));
        g_expect_close(&G, what, got, ref, (size_t)n * 512, types[i].tol);
        free(got);
        tpi_model_free(m);
    }
    free(ref);
    free(dir);
    g_finish(&G);
}

int main(int argc, char **argv)
{
    int rc0 = g_init(&G, &argc, &argv);
    if (rc0)
        return rc0;
    char *dir = tu_path(G.shared, "golden/gguf");
    expected = g_read_json(dir, "expected.json");
    free(dir);
    if (!expected) {
        printf("skipped: no golden/gguf/expected.json in %s\n", G.shared);
        tpi_comm_free(G.comm);
        return TU_SKIP;
    }
    static struct CMUnitTest tests[16];
    static gguf_case cases[16];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(expected, "cases")) {
        if (n == 15)
            break;
        snprintf(cases[n].name, sizeof cases[n].name, "%s", cJSON_GetObjectItem(c, "file")->valuestring);
        cases[n].json = c;
        tests[n] = (struct CMUnitTest){cases[n].name, test_mini, NULL, NULL, &cases[n]};
        n++;
    }
    tests[n++] = (struct CMUnitTest){"stories260K.gguf", test_stories, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"stories260K-hf --quant", test_quant_load, NULL, NULL, NULL};
    char group[64];
    snprintf(group, sizeof group, "gguf models TP=%d", tpi_comm_size(G.comm));
    int rc = _cmocka_run_group_tests(group, tests, (size_t)n, NULL, NULL);
    cJSON_Delete(expected);
    tpi_comm_free(G.comm);
    return rc;
}
