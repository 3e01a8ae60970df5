/* The options a caller passes reach the library: tpi_load_opts' prefill
 * chunk, kernel set and thread layout, and tpi_comm_opts. Each one is read
 * back through tpi_model_info and checked against what it changes (the
 * logits stay those of the defaults within a stated tolerance); bad values
 * are TPI_EINVAL naming the field. Runs on a "tiny" checkpoint written by
 * tpi_make_model, so it needs no shared data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "testutil.h"
#include "tpinfer.h"

/* A chunked prefill and the default differ only in the order of float sums
 * across chunks; the reference kernels and the fast ones in their rounding:
 * both stay within the golden README's bound for a float32 engine. */
#define TOL 1e-4

static char *dir;

/* Two sequences of 10 and 7 tokens: in chunks of 3 each spans several, the
 * second starting inside a chunk of the first. */
static const int32_t ids[17] = {256, 5, 9, 44, 3, 71, 200, 18, 6, 90, 256, 12, 13, 14, 150, 2, 77};
static const int64_t lens[2] = {10, 7};

static tpi_model *load(const tpi_load_opts *o)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    if (tpi_model_load(&m, dir, o, &err))
        fail_msg("load: %s", err.msg);
    return m;
}

static float *logits(tpi_model *m)
{
    float *out = malloc(17 * 258 * sizeof *out);
    tpi_error err = {0};
    assert_non_null(out);
    if (tpi_model_logits(m, ids, lens, 2, out, &err))
        fail_msg("forward: %s", err.msg);
    return out;
}

static void expect_close(const char *what, const float *got, const float *ref)
{
    double e = tu_rel_err(got, ref, 17 * 258);
    printf("%s: max|got-ref|/max|ref| = %.2g (tolerance %.0e)\n", what, e, TOL);
    assert_true(e <= TOL);
}

static void test_prefill_chunk(void **state)
{
    (void)state;
    tpi_model *m = load(NULL), *m3 = load(&(tpi_load_opts){.prefill_chunk = 3});
    tpi_model_info info, info3;
    tpi_model_get_info(m, &info);
    tpi_model_get_info(m3, &info3);
    assert_int_equal(info.prefill_chunk, 512);
    assert_int_equal(info3.prefill_chunk, 3);
    float *want = logits(m), *got = logits(m3);
    expect_close("prefill in chunks of 3 vs one pass", got, want);
    free(want), free(got);
    tpi_model_free(m), tpi_model_free(m3);
}

static void test_kernels(void **state)
{
    (void)state;
    tpi_model *best = load(NULL), *ref = load(&(tpi_load_opts){.kernels = "ref"});
    tpi_model_info info;
    tpi_model_get_info(ref, &info);
    assert_string_equal(info.kernels, "ref");
    tpi_model_get_info(best, &info);
    __builtin_cpu_init();
    const char *fastest = !__builtin_cpu_supports("avx2")      ? "ref"
                          : __builtin_cpu_supports("avx512f") ? "avx512"
                                                               : "avx2";
    assert_string_equal(info.kernels, fastest);
    float *want = logits(ref), *got = logits(best);
    expect_close("fastest kernels vs the reference kernels", got, want);
    free(want), free(got);
    tpi_model_free(best), tpi_model_free(ref);
    /* a set the processor cannot run falls back to the fastest, and says so */
    tpi_model *m = load(&(tpi_load_opts){.kernels = "avx512"});
    tpi_model_get_info(m, &info);
    assert_string_equal(info.kernels, strcmp(fastest, "avx512") ? fastest : "avx512");
    tpi_model_free(m);
}

static void test_threads(void **state)
{
    (void)state;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct { tpi_load_opts o; long want; } cases[] = {
        {{.n_threads = 3}, 3},
        {{.n_threads = 0}, cores},
        {{.local_ranks = 2}, cores / 2 > 0 ? cores / 2 : 1},
        {{.local_ranks = (int)cores + 1}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tpi_model *m = load(&cases[i].o);
        tpi_model_info info;
        tpi_model_get_info(m, &info);
        assert_int_equal(info.n_threads, cases[i].want);
        tpi_model_free(m);
    }
}

static void expect_einval(const tpi_load_opts *o, const char *needle)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_model_load(&m, dir, o, &err), TPI_EINVAL);
    assert_null(m);
    printf("refused: %s\n", err.msg);
    assert_non_null(strstr(err.msg, needle));
}

static void test_bad_options(void **state)
{
    (void)state;
    expect_einval(&(tpi_load_opts){.kernels = "avx513"},
                  "kernels: expected auto, ref, avx2 or avx512, found \"avx513\"");
    expect_einval(&(tpi_load_opts){.prefill_chunk = -1}, "prefill_chunk");
    expect_einval(&(tpi_load_opts){.n_threads = -2}, "n_threads");
    expect_einval(&(tpi_load_opts){.local_ranks = -1}, "local_ranks");
    expect_einval(&(tpi_load_opts){.bf16_activations = 2},
                  "bf16_activations: expected 0 (fp32 activations) or 1 (bf16), found 2");
}

/* tpi_comm_opts, and the public collectives on a world of one (a NULL
 * communicator included): they copy, or do nothing. */
static void test_comm(void **state)
{
    (void)state;
    tpi_comm *c = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_comm_create(&c, &(tpi_comm_opts){.kind = "mpl"}, NULL, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "kind"));
    assert_int_equal(tpi_comm_create(&c, &(tpi_comm_opts){.allreduce = 7}, NULL, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "allreduce"));
    assert_int_equal(tpi_comm_create(&c, NULL, NULL, NULL, &err), 0);
    assert_string_equal(c->kind, "self");
    assert_string_equal(c->allreduce, "none");
    tpi_comm *worlds[2] = {c, NULL};
    for (int w = 0; w < 2; w++) {
        int64_t mine = 42, all = 0, one = 1;
        float f[3] = {1, 2, 3}, g[3] = {0};
        assert_int_equal(tpi_comm_gather(worlds[w], &mine, sizeof mine, &all, 0), 0);
        assert_int_equal(all, 42);
        assert_int_equal(tpi_comm_gatherv(worlds[w], f, g, &(int64_t){3}, 0), 0);
        assert_memory_equal(f, g, sizeof f);
        assert_int_equal(tpi_comm_allreduce_sum_f32(worlds[w], f, 3), 0);
        assert_int_equal(tpi_comm_bcast(worlds[w], &one, sizeof one, 0), 0);
        assert_int_equal(tpi_comm_barrier(worlds[w]), 0);
        assert_int_equal(tpi_comm_bcast(worlds[w], &one, sizeof one, 1), TPI_EINVAL);
        assert_int_equal(tpi_comm_allreduce_sum_f32(worlds[w], f, -1), TPI_EINVAL);
        assert_memory_equal(f, ((float[]){1, 2, 3}), sizeof f);
    }
    tpi_comm_free(c);
}

int main(void)
{
    tpi_error err = {0};
    char *tmp = tu_mkdtemp();
    dir = tmp ? tu_path(tmp, "tiny") : NULL;
    if (!dir || tpi_make_model("tiny", "f32", dir, 7, &err)) {
        fprintf(stderr, "make-model: %s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefill_chunk), cmocka_unit_test(test_kernels), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_bad_options),   cmocka_unit_test(test_comm),
    };
    int rc = cmocka_run_group_tests_name("options", tests, NULL, NULL);
    tu_rmdir(tmp);
    free(dir);
    free(tmp);
    return rc;
}
