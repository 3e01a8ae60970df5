/* NaN and infinity in the weights never become silent output: a generation
 * step whose logits are not finite fails naming the sequence and the step
 * (greedy through the argmax across ranks, sampled through rank 0's check),
 * and check_weights names the first bad tensor and element in every dtype.
 * The checkpoints are make-model's "tiny" shape with one element poked.
 * MPI-aware: failures are counted and agreed on after each test, never
 * asserted between collectives.
 *
 * `test_nonfinite make DIR DTYPE TENSOR ELEMENT nan|+inf|-inf` writes such a
 * checkpoint and exits (the CLI tests in nonfinite.cmake use it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "io/safetensors.h"
#include "testutil.h"

static tpi_comm *comm;
static char *tmp; /* rank 0's temp directory, the same path on every rank */
static int failures;

static int rank0(void) { return tpi_comm_rank(comm) == 0; }

__attribute__((format(printf, 1, 2))) static void nf_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL (rank %d): ", tpi_comm_rank(comm));
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

/* Every rank learns whether any failed, then the test asserts none did. */
static void finish(void)
{
    int32_t f = failures;
    failures = 0;
    assert_int_equal(tpi_comm_allreduce_max_i32(comm, &f, 1), 0);
    assert_int_equal(f, 0);
}

/* The bits of `kind` (nan, +inf, -inf) in dtype dt. */
static uint32_t special(tpi_dtype dt, const char *kind)
{
    static const uint32_t bits[3][3] = {
        /* nan, +inf, -inf */
        {0x7fc00000u, 0x7f800000u, 0xff800000u}, /* f32 */
        {0x7fc0u, 0x7f80u, 0xff80u},             /* bf16 */
        {0x7e00u, 0x7c00u, 0xfc00u},             /* f16 */
    };
    int k = !strcmp(kind, "nan") ? 0 : !strcmp(kind, "+inf") ? 1 : 2;
    return bits[dt][k];
}

/* Writes `kind` over element `elem` of `tensor` in dir/model.safetensors,
 * at the offset the file's own header gives. */
static int poke(const char *dir, const char *tensor, int64_t elem, const char *kind)
{
    char *path = tu_path(dir, "model.safetensors");
    tpi_st_file *f = NULL;
    tpi_error err = {0};
    long off = -1;
    uint32_t bits = 0;
    size_t es = 0;
    if (!tpi_st_open(&f, path, &err)) {
        const tpi_st_tensor *t = tpi_st_find(f, tensor);
        if (t && elem >= 0 && elem < t->numel) {
            es = tpi_dtype_size(t->dtype);
            off = (long)(t->data - (const uint8_t *)f->map) + (long)(elem * (int64_t)es);
            bits = special(t->dtype, kind);
        }
        tpi_st_close(f);
    }
    FILE *w = off >= 0 ? fopen(path, "r+b") : NULL;
    int ok = w && !fseek(w, off, SEEK_SET) && fwrite(&bits, es, 1, w) == 1; /* little-endian: the low es bytes */
    if (w && fclose(w))
        ok = 0;
    if (!ok)
        fprintf(stderr, "cannot poke %s element %lld of %s: %s\n", tensor, (long long)elem, path, err.msg);
    free(path);
    return ok ? 0 : -1;
}

/* Rank 0 writes tmp/name (a tiny checkpoint of dtype dt, optionally with
 * one element poked); the others wait. Returns the path (static buffer). */
static const char *make(const char *name, const char *dt, const char *tensor, int64_t elem, const char *kind)
{
    static char dir[4][600];
    static int next;
    char *d = dir[next++ % 4];
    snprintf(d, sizeof dir[0], "%s/%s", tmp, name);
    int32_t bad = 0;
    if (rank0()) {
        tpi_error err = {0};
        if (tpi_make_model("tiny", dt, d, 7, &err) || (tensor && poke(d, tensor, elem, kind)))
            bad = 1, fprintf(stderr, "make %s: %s\n", d, err.msg);
    }
    tpi_comm_allreduce_max_i32(comm, &bad, 1);
    assert_int_equal(bad, 0);
    return d;
}

static tpi_model *load(const char *dir, int check, tpi_error *err)
{
    tpi_load_opts o = {.comm = comm, .n_threads = 1, .check_weights = check};
    tpi_model *m = NULL;
    if (tpi_model_load(&m, dir, &o, err))
        return NULL;
    return m;
}

static tpi_gen_opts gen_opts(int64_t n, double temp)
{
    static const int32_t no_eos[1] = {-1};
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = n;
    o.eos_ids = no_eos;
    o.n_eos = 1;
    o.sampling.temperature = temp;
    o.sampling.seed = 11;
    return o;
}

/* Generation must fail with TPI_ENONFINITE and exactly `want` on every rank. */
static void expect_gen_fails(tpi_model *m, const int32_t *ids, const int64_t *lens, int64_t n_seq, double temp,
                             const char *want)
{
    tpi_gen_result res[4];
    tpi_gen_opts o = gen_opts(8, temp);
    tpi_error err = {0};
    int rc = tpi_generate(m, ids, lens, n_seq, &o, res, &err);
    if (rc != TPI_ENONFINITE || strcmp(err.msg, want))
        nf_fail("temp %g: rc %d \"%s\", expected TPI_ENONFINITE with \"%s\"", temp, rc, rc ? err.msg : "", want);
    else if (rank0())
        printf("ok: temp %g: %s\n", temp, err.msg);
    for (int64_t s = 0; !rc && s < n_seq; s++)
        tpi_gen_result_free(&res[s]);
}

/* A NaN (and an infinity) in the embedding row of a prompt token: every
 * logit is NaN at the prefill, greedy and sampled, alone and in a batch
 * where only the second sequence reads the row. */
static void test_prompt_embedding(void **unused)
{
    (void)unused;
    const char *kinds[] = {"nan", "+inf"};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "embed-%s", kinds[k]);
        /* row 40 (token 40), column 5 */
        const char *dir = make(name, "f32", "model.embed_tokens.weight", 40 * 128 + 5, kinds[k]);
        tpi_error err = {0};
        tpi_model *m = load(dir, 0, &err);
        if (!m) {
            nf_fail("load %s: %s", dir, err.msg);
            continue;
        }
        const int32_t one[] = {1, 40, 3}, two[] = {1, 2, 3, 1, 40};
        const int64_t one_len[] = {3}, two_lens[] = {3, 2};
        for (int sampled = 0; sampled < 2; sampled++) {
            expect_gen_fails(m, one, one_len, 1, sampled ? 0.8 : 0,
                             "generate: sequence 0, step 0: logits are not finite (NaN or infinity)");
            expect_gen_fails(m, two, two_lens, 2, sampled ? 0.8 : 0,
                             "generate: sequence 1, step 0: logits are not finite (NaN or infinity)");
        }
        tpi_model_free(m);
    }
    finish();
}

/* One NaN in lm_head row 250 makes one logit NaN and leaves the rest finite:
 * the argmax alone would pass over it. At 2 ranks the last rank holds that
 * row, so the finding has to cross ranks. */
static void test_one_logit(void **unused)
{
    (void)unused;
    const char *dir = make("lm-head-nan", "bf16", "lm_head.weight", 250 * 128 + 3, "nan");
    tpi_error err = {0};
    tpi_model *m = load(dir, 0, &err);
    if (!m) {
        nf_fail("load %s: %s", dir, err.msg);
    } else {
        const int32_t ids[] = {1, 2, 3};
        const int64_t len[] = {3};
        expect_gen_fails(m, ids, len, 1, 0, "generate: sequence 0, step 0: logits are not finite (NaN or infinity)");
        expect_gen_fails(m, ids, len, 1, 0.8, "generate: sequence 0, step 0: logits are not finite (NaN or infinity)");
    }
    tpi_model_free(m);
    finish();
}

/* The clean continuation of ids under o, into out [n]; 0 or -1 after fail. */
static int continuation(const char *dir, const int32_t *ids, int64_t len, const tpi_gen_opts *o, int32_t *out)
{
    tpi_error err = {0};
    tpi_gen_result r;
    tpi_model *m = load(dir, 0, &err);
    int rc = m ? tpi_generate(m, ids, &len, 1, o, &r, &err) : -1;
    if (rc) {
        nf_fail("clean generate: %s", err.msg);
    } else {
        memcpy(out, r.ids, (size_t)r.n_ids * sizeof *out);
        tpi_gen_result_free(&r);
    }
    tpi_model_free(m);
    return rc ? -1 : 0;
}

/* A token the prompt does not hold and the output first produces at index
 * k >= 1; its embedding poked, generation runs clean until it is fed back,
 * then fails at step k + 1 with the tokens before it intact. */
static void later_step(double temp)
{
    const int32_t prompt[] = {1, 2, 3};
    int32_t clean[8];
    tpi_gen_opts o = gen_opts(8, temp);
    if (continuation(tu_in(tmp, "clean-f32"), prompt, 3, &o, clean))
        return;
    int64_t k = 1;
    for (int dup = 1; k < 7 && dup; k += dup) {
        dup = clean[k] <= 3;
        for (int64_t j = 0; j < k && !dup; j++)
            dup = clean[j] == clean[k];
    }
    if (k >= 7) {
        nf_fail("temp %g: the clean output has no new token to poke", temp);
        return;
    }
    char name[32];
    snprintf(name, sizeof name, "embed-later-%g", temp);
    const char *dir = make(name, "f32", "model.embed_tokens.weight", (int64_t)clean[k] * 128, "nan");
    tpi_error err = {0};
    tpi_model *m = load(dir, 0, &err);
    tpi_gen_state *st = NULL;
    int64_t len = 3;
    int rc = m ? tpi_gen_state_create(&st, m, prompt, &len, 1, &o, &err) : -1;
    while (rc >= 0 && (rc = tpi_gen_state_step(st, &err)) > 0)
        ;
    char want[128];
    snprintf(want, sizeof want, "generate: sequence 0, step %lld: logits are not finite (NaN or infinity)",
             (long long)k + 1);
    const int32_t *got;
    int64_t n = st ? tpi_gen_state_ids(st, 0, &got) : 0;
    if (rc != TPI_ENONFINITE || strcmp(err.msg, want))
        nf_fail("temp %g: rc %d \"%s\", expected \"%s\"", temp, rc, err.msg, want);
    else if (n != k + 1 || memcmp(got, clean, (size_t)n * sizeof *got))
        nf_fail("temp %g: %lld tokens before the failure, expected the clean run's first %lld", temp, (long long)n,
             (long long)k + 1);
    else if (rank0())
        printf("ok: temp %g: token %d poked: %s\n", temp, clean[k], err.msg);
    tpi_gen_state_free(st);
    tpi_model_free(m);
}

static void test_later_step(void **unused)
{
    (void)unused;
    make("clean-f32", "f32", NULL, 0, NULL);
    later_step(0);
    later_step(0.8);
    finish();
}

/* check_weights names the tensor and element in each dtype and for each
 * kind, on whichever rank holds it, with the same message on every rank. */
static void test_check_weights(void **unused)
{
    (void)unused;
    static const struct {
        const char *dtype, *tensor, *kind;
        int64_t elem;
        const char *want;
    } cases[] = {
        /* down_proj [128, 344] is split by columns: column 300 is the last rank's */
        {"f32", "model.layers.3.mlp.down_proj.weight", "nan", 17 * 344 + 300,
         "model.layers.3.mlp.down_proj.weight: element 6148 (row 17, column 300) is NaN"},
        {"bf16", "model.layers.3.mlp.down_proj.weight", "+inf", 17 * 344 + 300,
         "model.layers.3.mlp.down_proj.weight: element 6148 (row 17, column 300) is +inf"},
        {"f16", "model.embed_tokens.weight", "-inf", 250 * 128 + 9,
         "model.embed_tokens.weight: element 32009 (row 250, column 9) is -inf"},
        {"bf16", "model.layers.1.input_layernorm.weight", "nan", 7,
         "model.layers.1.input_layernorm.weight: element 7 is NaN"},
        {"f16", "lm_head.weight", "nan", 3 * 128 + 1, "lm_head.weight: element 385 (row 3, column 1) is NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "check-%zu", i);
        const char *dir = make(name, cases[i].dtype, cases[i].tensor, cases[i].elem, cases[i].kind);
        tpi_error err = {0};
        tpi_model *m = load(dir, 1, &err);
        int rc = m ? 0 : err.code;
        if (rc != TPI_ENONFINITE || strcmp(err.msg, cases[i].want))
            nf_fail("%s %s: rc %d \"%s\", expected TPI_ENONFINITE with \"%s\"", cases[i].dtype, cases[i].tensor, rc,
                 m ? "" : err.msg, cases[i].want);
        else if (rank0())
            printf("ok: %s: %s\n", cases[i].dtype, err.msg);
        tpi_model_free(m);
    }
    finish();
}

/* A clean checkpoint loads with check_weights and generates what it does
 * without, greedy and sampled, in every dtype. */
static void test_check_weights_clean(void **unused)
{
    (void)unused;
    const char *dtypes[] = {"f32", "bf16", "f16"};
    const int32_t prompt[] = {1, 2, 3};
    for (int d = 0; d < 3; d++) {
        char name[32];
        snprintf(name, sizeof name, "check-clean-%s", dtypes[d]);
        const char *dir = make(name, dtypes[d], NULL, 0, NULL);
        for (int sampled = 0; sampled < 2; sampled++) {
            int32_t out[2][8];
            tpi_gen_opts o = gen_opts(8, sampled ? 0.8 : 0);
            tpi_error err = {0};
            int64_t len = 3;
            tpi_gen_result r;
            tpi_model *m = load(dir, 1, &err);
            int rc = m ? tpi_generate(m, prompt, &len, 1, &o, &r, &err) : -1;
            if (rc || r.n_ids != 8) {
                nf_fail("%s: check_weights on a clean checkpoint: %s", dtypes[d], err.msg);
            } else {
                memcpy(out[1], r.ids, sizeof out[1]);
                tpi_gen_result_free(&r);
                if (!continuation(dir, prompt, 3, &o, out[0]) && memcmp(out[0], out[1], sizeof out[0]))
                    nf_fail("%s temp %g: the output differs with check_weights", dtypes[d], o.sampling.temperature);
            }
            tpi_model_free(m);
        }
    }
    finish();
}

/* Ranks given different check_weights fail together instead of waiting in
 * a collective only some of them join. */
static void test_check_weights_disagree(void **unused)
{
    (void)unused;
    if (tpi_comm_size(comm) < 2)
        return;
    tpi_error err = {0};
    tpi_model *m = load(tu_in(tmp, "clean-f32"), rank0(), &err);
    if (m || err.code != TPI_EINVAL || !strstr(err.msg, "check_weights"))
        nf_fail("different check_weights: rc %d \"%s\", expected TPI_EINVAL naming check_weights", err.code, err.msg);
    tpi_model_free(m);
    finish();
}

static int make_main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s make DIR DTYPE TENSOR ELEMENT nan|+inf|-inf\n", argv[0]);
        return 2;
    }
    tpi_error err = {0};
    if (tpi_make_model("tiny", argv[3], argv[2], 7, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    return poke(argv[2], argv[4], strtoll(argv[5], NULL, 10), argv[6]) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "make"))
        return make_main(argc, argv);
    tpi_error err = {0};
    tpi_comm_opts co = {.kind = tu_comm_kind()};
    if (tpi_comm_create(&comm, &co, &argc, &argv, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (!rank0() && !freopen("/dev/null", "w", stdout))
        return 1;
    char path[512] = {0};
    if (rank0() && (tmp = tu_mkdtemp()))
        snprintf(path, sizeof path, "%s", tmp);
    tpi_comm_bcast(comm, path, sizeof path, 0);
    if (!path[0]) {
        fprintf(stderr, "no temp directory\n");
        tpi_comm_abort(comm, 1);
    }
    free(tmp);
    tmp = strdup(path);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_embedding), cmocka_unit_test(test_one_logit),
        cmocka_unit_test(test_later_step),       cmocka_unit_test(test_check_weights),
        cmocka_unit_test(test_check_weights_clean), cmocka_unit_test(test_check_weights_disagree),
    };
    char group[64];
    snprintf(group, sizeof group, "nonfinite TP=%d", tpi_comm_size(comm));
    int rc = _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    tpi_comm_barrier(comm);
    if (rank0())
        tu_rmdir(tmp);
    free(tmp);
    tpi_comm_free(comm);
    return rc;
}
