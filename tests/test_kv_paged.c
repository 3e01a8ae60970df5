/* The paged KV cache (tpi_kv_create_pool and friends) at any world size
 * (run at 1 and 2 ranks): logits through a fragmented pool of small blocks
 * equal, bit for bit, those through one block per sequence (the contiguous
 * layout), since the attention kernels do the same arithmetic in the same
 * order whatever the block size; truncation, shared prefixes and copy on
 * write equal runs that rebuild the same positions in a fresh sequence with
 * the same forwards, bit for bit; an exhausted pool refuses with TPI_ELIMIT,
 * nothing changed, and proceeds once a sequence is freed; the usage figures
 * follow every operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "golden.h"
#include "testutil.h"

static golden_ctx G;

static const char *model_dir(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/golden/hf/%s", G.shared, name);
    return buf;
}

static int64_t vocab(const tpi_model *m)
{
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    return info.vocab_size;
}

/* Token i of stream `seed`: any ids in the 256-token vocabulary. */
static int32_t tok(int seed, int64_t i)
{
    return (int32_t)((seed * 131 + i * 17 + 3) % 251);
}

static tpi_kv *pool(tpi_model *m, int64_t n_seq, int64_t max_ctx, int64_t pool_positions, int64_t block)
{
    tpi_kv *kv = NULL;
    tpi_error err = {0};
    tpi_kv_opts o = {.n_seq = n_seq, .max_ctx = max_ctx, .pool_positions = pool_positions,
                     .block_positions = block};
    if (tpi_kv_create_pool(&kv, m, &o, &err))
        g_fail(&G, "kv pool %lld x %lld, block %lld: %s", (long long)n_seq, (long long)max_ctx, (long long)block,
               err.msg);
    return kv;
}

/* One forward: n_new[s] tokens of stream seeds[s] (continuing from the
 * sequence's length) for each of the ns sequences. Returns the logits of
 * every new token (malloc'd, filled on rank 0) and *rc. */
static float *forward(tpi_model *m, tpi_kv *kv, int64_t ns, const int64_t *n_new, const int *seeds, int *rc,
                      tpi_error *err)
{
    int64_t n = 0;
    for (int64_t s = 0; s < ns; s++)
        n += n_new[s];
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    float *out = calloc((size_t)((n ? n : 1) * vocab(m)), sizeof *out);
    assert_true(ids && out);
    for (int64_t s = 0, t = 0; s < ns; s++)
        for (int64_t i = 0; i < n_new[s]; i++)
            ids[t++] = tok(seeds[s], tpi_kv_len(kv, s) + i);
    *rc = tpi_model_forward(m, kv, ids, n_new, TPI_LOGITS_ALL, out, err);
    free(ids);
    return out;
}

/* A forward of n tokens of stream `seed` on sequence seq alone; its logits
 * (NULL after g_fail). */
static float *run1(tpi_model *m, tpi_kv *kv, int64_t ns, int64_t seq, int64_t n, int seed)
{
    int64_t n_new[8] = {0};
    int seeds[8] = {0};
    n_new[seq] = n;
    seeds[seq] = seed;
    int rc;
    tpi_error err = {0};
    float *l = forward(m, kv, ns, n_new, seeds, &rc, &err);
    if (rc) {
        g_fail(&G, "forward of %lld tokens on sequence %lld: %s", (long long)n, (long long)seq, err.msg);
        free(l);
        return NULL;
    }
    return l;
}

/* On rank 0: a and b (rows of logits) hold the same bits. Frees both. */
static void same_bits(const char *what, float *a, float *b, int64_t rows, int64_t V)
{
    if (tpi_comm_rank(G.comm) == 0) {
        size_t n = (size_t)(rows * V);
        if (!a || !b)
            g_fail(&G, "%s: no logits", what);
        else if (memcmp(a, b, n * sizeof *a))
            g_fail(&G, "%s: logits differ (max|a-b|/max|b| = %.3g), expected the same bits", what,
                   tu_rel_err(a, b, n));
        else
            printf("ok: %s (%lld rows, same bits)\n", what, (long long)rows);
    }
    free(a);
    free(b);
}

static void expect_usage(tpi_kv *kv, const char *what, int64_t blocks_free, int64_t used)
{
    tpi_kv_usage u;
    tpi_kv_get_usage(kv, &u);
    if (u.blocks_free != blocks_free || u.positions_used != used)
        g_fail(&G, "%s: %lld blocks free and %lld positions used, expected %lld and %lld", what,
               (long long)u.blocks_free, (long long)u.positions_used, (long long)blocks_free, (long long)used);
}

/* ---- (a) a fragmented pool against one block per sequence ---- */

/* The same forwards on sequences 0..2 of both caches (prefill in pieces of
 * different lengths, then decode steps), after sequences 3..5 of the paged
 * one were filled, cut and freed in a scrambled order so that its free list
 * and the block tables are out of order. */
static void fragmented_case(const char *name, int64_t block, int64_t chunk)
{
    G.load.prefill_chunk = chunk;
    tpi_model *m = g_load(&G, model_dir(name), 0);
    G.load.prefill_chunk = 0;
    if (!m)
        return;
    int64_t V = vocab(m);
    tpi_kv *whole = pool(m, 6, 64, 0, 64), *paged = pool(m, 6, 64, 6 * 48, block);
    if (!whole || !paged)
        goto done;
    tpi_kv_usage u;
    tpi_kv_get_usage(whole, &u);
    if (u.block_positions != 64 || u.blocks_total != 6)
        g_fail(&G, "one block per sequence: %lld blocks of %lld", (long long)u.blocks_total,
               (long long)u.block_positions);
    int seeds[6] = {1, 2, 3, 4, 5, 6}, rc;
    tpi_error err = {0};
    static const int64_t fill[][6] = {{0, 0, 0, 20, 13, 30}, {0, 0, 0, 5, 9, 2}};
    for (int i = 0; i < 2; i++)
        free(forward(m, paged, 6, fill[i], seeds, &rc, &err));
    tpi_kv_clear(paged, 4);
    tpi_kv_truncate(paged, 5, 7, &err);
    tpi_kv_clear(paged, 3);
    free(run1(m, paged, 6, 4, 11, 9));
    static const int64_t steps[][6] = {{9, 0, 14}, {5, 11, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {7, 1, 2}};
    char what[160];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc2, n = (int)(steps[i][0] + steps[i][1] + steps[i][2]);
        float *a = forward(m, paged, 6, steps[i], seeds, &rc, &err);
        float *b = forward(m, whole, 6, steps[i], seeds, &rc2, &err);
        if (rc || rc2)
            g_fail(&G, "%s step %zu: %s", name, i, err.msg);
        snprintf(what, sizeof what, "%s: blocks of %lld in a fragmented pool vs one block per sequence, "
                 "prefill chunk %lld, forward %zu", name, (long long)block, (long long)chunk, i);
        same_bits(what, a, b, n, V);
    }
done:
    tpi_kv_free(whole);
    tpi_kv_free(paged);
    tpi_model_free(m);
}

static void test_fragmented(void **state)
{
    (void)state;
    fragmented_case("llama-gqa", 4, 0);
    fragmented_case("llama-gqa", 5, 7);
    fragmented_case("mistral-swa", 3, 5); /* the sliding window across blocks */
    fragmented_case("qwen2-bias", 16, 0);
    g_finish(&G);
}

/* ---- (b) truncate, then append ---- */

static void test_truncate(void **state)
{
    (void)state;
    tpi_model *m = g_load(&G, model_dir("llama-gqa"), 0);
    if (!m)
        return;
    int64_t V = vocab(m);
    tpi_kv *kv = pool(m, 2, 64, 0, 4);
    tpi_error err = {0};
    if (kv) {
        /* sequence 0: 10 + 13 tokens and 3 steps, cut back to 10 (inside a
         * block), then 6 other tokens; sequence 1: the same 10, then those 6 */
        free(run1(m, kv, 2, 0, 10, 1));
        free(run1(m, kv, 2, 0, 13, 1));
        for (int i = 0; i < 3; i++)
            free(run1(m, kv, 2, 0, 1, 1));
        expect_usage(kv, "26 positions in blocks of 4", 32 - 7, 26);
        if (tpi_kv_truncate(kv, 0, 10, &err))
            g_fail(&G, "truncate: %s", err.msg);
        expect_usage(kv, "truncated to 10", 32 - 3, 10);
        free(run1(m, kv, 2, 1, 10, 1));
        same_bits("truncate then append vs a fresh sequence", run1(m, kv, 2, 0, 6, 7), run1(m, kv, 2, 1, 6, 7), 6, V);
        expect_usage(kv, "both at 16", 32 - 8, 32);
        if (tpi_kv_truncate(kv, 0, 17, &err) != TPI_EINVAL || tpi_kv_truncate(kv, 2, 0, &err) != TPI_EINVAL)
            g_fail(&G, "truncate past the length or of a sequence that does not exist is not TPI_EINVAL");
        tpi_kv_truncate(kv, 1, 0, &err);
        expect_usage(kv, "sequence 1 truncated to 0", 32 - 4, 16);
    }
    tpi_kv_free(kv);
    tpi_model_free(m);
    g_finish(&G);
}

/* ---- (c) shared prefixes and copy on write ---- */

/* The trace and its accounting are worked out in blocks of 4 in a pool of
 * 64: sequences 0 and 1 share a prefix, 2 and 3 rebuild each one's
 * positions alone with the same forwards (a prefix, then truncated), so
 * each pair must give the same bits. */
static void test_copy_prefix(void **state)
{
    (void)state;
    tpi_model *m = g_load(&G, model_dir("llama-gqa"), 0);
    if (!m)
        return;
    int64_t V = vocab(m);
    tpi_kv *kv = pool(m, 4, 64, 256, 4);
    tpi_error err = {0};
    if (!kv)
        goto done;
    free(run1(m, kv, 4, 0, 21, 1));
    expect_usage(kv, "21 positions", 58, 21);
    if (tpi_kv_copy_prefix(kv, 1, 0, 13, &err))
        g_fail(&G, "copy_prefix: %s", err.msg);
    expect_usage(kv, "13 of them shared: 3 full blocks shared, the partial one copied", 57, 34);
    float *l1 = run1(m, kv, 4, 1, 5, 2);
    expect_usage(kv, "the copy continued", 56, 39);
    free(run1(m, kv, 4, 2, 21, 1));
    tpi_kv_truncate(kv, 2, 13, &err);
    expect_usage(kv, "the reference of the copy", 52, 52);
    same_bits("a shared prefix continued vs the same positions built alone", l1, run1(m, kv, 4, 2, 5, 2), 5, V);
    expect_usage(kv, "the reference continued", 51, 57);

    /* the source cut back into a block it shares, then written: a copy */
    tpi_kv_truncate(kv, 0, 10, &err);
    expect_usage(kv, "the source cut to 10", 54, 46);
    if (tpi_kv_blocks_needed(kv, 0, 4) != 2)
        g_fail(&G, "4 positions after 10 in a shared block need %lld blocks, expected 2 (one a copy)",
               (long long)tpi_kv_blocks_needed(kv, 0, 4));
    float *l0 = run1(m, kv, 4, 0, 4, 3);
    expect_usage(kv, "the source written into its copy", 52, 50);
    free(run1(m, kv, 4, 3, 21, 1));
    tpi_kv_truncate(kv, 3, 10, &err);
    same_bits("the source after copy on write vs built alone", l0, run1(m, kv, 4, 3, 4, 3), 4, V);
    expect_usage(kv, "its reference", 48, 64);
    /* the copy still reads the block as it was */
    same_bits("the copy after the source's write vs built alone", run1(m, kv, 4, 1, 3, 4), run1(m, kv, 4, 2, 3, 4),
              3, V);
    expect_usage(kv, "both copies at 21", 46, 70);

    /* the copy cut back into a block it still shares with the source */
    tpi_kv_truncate(kv, 1, 6, &err);
    tpi_kv_truncate(kv, 2, 6, &err);
    expect_usage(kv, "both copies cut to 6", 54, 40);
    if (tpi_kv_blocks_needed(kv, 1, 3) != 2 || tpi_kv_blocks_needed(kv, 2, 3) != 1)
        g_fail(&G, "3 positions after 6: %lld and %lld blocks, expected 2 (shared) and 1 (own)",
               (long long)tpi_kv_blocks_needed(kv, 1, 3), (long long)tpi_kv_blocks_needed(kv, 2, 3));
    same_bits("the copy written into a shared block vs built alone", run1(m, kv, 4, 1, 3, 5), run1(m, kv, 4, 2, 3, 5),
              3, V);
    expect_usage(kv, "both copies at 9", 51, 46);
    same_bits("the source after the copy's write", run1(m, kv, 4, 0, 2, 6), run1(m, kv, 4, 3, 2, 6), 2, V);
    expect_usage(kv, "both sources at 16", 51, 50);

    /* a prefix of whole blocks, and of nothing */
    if (tpi_kv_copy_prefix(kv, 2, 0, 12, &err) || tpi_kv_copy_prefix(kv, 3, 0, 0, &err))
        g_fail(&G, "copy_prefix: %s", err.msg);
    expect_usage(kv, "12 shared, 0 copied", 58, 37);
    if (tpi_kv_copy_prefix(kv, 0, 0, 1, &err) != TPI_EINVAL || tpi_kv_copy_prefix(kv, 1, 0, 17, &err) != TPI_EINVAL)
        g_fail(&G, "copy_prefix onto itself or past the source's length is not TPI_EINVAL");
    tpi_kv_clear(kv, -1);
    expect_usage(kv, "all cleared", 64, 0);
done:
    tpi_kv_free(kv);
    tpi_model_free(m);
    g_finish(&G);
}

/* ---- (d) an exhausted pool ---- */

static void test_exhausted(void **state)
{
    (void)state;
    tpi_model *m = g_load(&G, model_dir("llama-gqa"), 0);
    if (!m)
        return;
    int64_t V = vocab(m);
    /* 6 blocks of 4 for 3 sequences of up to 32: a pool smaller than
     * n_seq x max_ctx */
    tpi_kv *kv = pool(m, 3, 32, 24, 4), *ref = pool(m, 1, 32, 0, 0);
    tpi_error err = {0};
    int rc, seeds[3] = {1, 2, 3};
    if (!kv || !ref)
        goto done;
    free(run1(m, kv, 3, 0, 17, 1));
    expect_usage(kv, "17 positions", 1, 17);
    static const int64_t both[3] = {1, 8, 0};
    if (tpi_kv_blocks_needed(kv, 0, 1) != 0 || tpi_kv_blocks_needed(kv, 1, 8) != 2)
        g_fail(&G, "blocks needed: %lld and %lld, expected 0 and 2", (long long)tpi_kv_blocks_needed(kv, 0, 1),
               (long long)tpi_kv_blocks_needed(kv, 1, 8));
    free(forward(m, kv, 3, both, seeds, &rc, &err));
    if (rc != TPI_ELIMIT || !strstr(err.msg, "need 2 blocks of 4 positions but 1 of 6 are free"))
        g_fail(&G, "a forward past the pool: %d, \"%s\"; expected TPI_ELIMIT naming 2 blocks needed, 1 of 6 free",
               rc, err.msg);
    else if (tpi_comm_rank(G.comm) == 0)
        printf("ok: %s\n", err.msg);
    if (tpi_kv_len(kv, 0) != 17 || tpi_kv_len(kv, 1) != 0)
        g_fail(&G, "the refused forward changed the lengths");
    expect_usage(kv, "after the refused forward", 1, 17);
    free(run1(m, kv, 3, 1, 4, 9));
    expect_usage(kv, "the pool full", 0, 21);
    err.msg[0] = 0;
    if (tpi_kv_copy_prefix(kv, 2, 0, 13, &err) != TPI_ELIMIT || !strstr(err.msg, "0 of 6"))
        g_fail(&G, "a copy with a partial block into a full pool: \"%s\", expected TPI_ELIMIT", err.msg);
    expect_usage(kv, "after the refused copy", 0, 21);
    if (tpi_kv_copy_prefix(kv, 2, 0, 12, &err))
        g_fail(&G, "a copy of whole blocks needs none: %s", err.msg);
    tpi_kv_clear(kv, 0);
    expect_usage(kv, "sequence 0 freed, its first 3 blocks still shared", 2, 16);
    tpi_kv_clear(kv, 1);
    expect_usage(kv, "sequence 1 freed", 3, 12);
    same_bits("the refused forward once blocks are free", run1(m, kv, 3, 1, 8, 2), run1(m, ref, 1, 0, 8, 2), 8, V);
    expect_usage(kv, "sequence 1 at 8", 1, 20);
    if (tpi_kv_len(kv, 1) != 8)
        g_fail(&G, "sequence 1 holds %lld positions, expected 8", (long long)tpi_kv_len(kv, 1));
    int64_t five[3] = {0, 0, 5};
    seeds[2] = 1;
    free(forward(m, kv, 3, five, seeds, &rc, &err));
    if (rc != TPI_ELIMIT)
        g_fail(&G, "5 more positions in 1 free block: %d, expected TPI_ELIMIT", rc);
    tpi_kv_clear(kv, 1);
    /* sequence 2 holds sequence 0's first 12 positions: the reference
     * builds them as sequence 0 did, then cuts back */
    float *a = forward(m, kv, 3, five, seeds, &rc, &err);
    if (rc)
        g_fail(&G, "the forward after sequence 1 was freed: %s", err.msg);
    expect_usage(kv, "sequence 2 at 17", 1, 17);
    tpi_kv_clear(ref, -1);
    free(run1(m, ref, 1, 0, 17, 1));
    tpi_kv_truncate(ref, 0, 12, &err);
    same_bits("a shared prefix continued once blocks are free", a, run1(m, ref, 1, 0, 5, 1), 5, V);
done:
    tpi_kv_free(kv);
    tpi_kv_free(ref);
    tpi_model_free(m);
    g_finish(&G);
}

/* ---- options ---- */

static void expect_refused(tpi_model *m, tpi_kv_opts o, int code, const char *needle)
{
    tpi_kv *kv = NULL;
    tpi_error err = {0};
    int rc = tpi_kv_create_pool(&kv, m, &o, &err);
    if (rc != code || kv || !strstr(err.msg, needle))
        g_fail(&G, "kv opts %lld seq x %lld ctx, pool %lld, block %lld: %d \"%s\"; expected %d naming %s",
               (long long)o.n_seq, (long long)o.max_ctx, (long long)o.pool_positions, (long long)o.block_positions,
               rc, err.msg, code, needle);
    tpi_kv_free(kv);
}

static void test_options(void **state)
{
    (void)state;
    tpi_model *m = g_load(&G, model_dir("llama-gqa"), 0);
    if (!m)
        return;
    expect_refused(m, (tpi_kv_opts){.n_seq = 0, .max_ctx = 8}, TPI_EINVAL, "n_seq");
    expect_refused(m, (tpi_kv_opts){.n_seq = 1, .max_ctx = 0}, TPI_EINVAL, "max_ctx");
    expect_refused(m, (tpi_kv_opts){.n_seq = (int64_t)1 << 21, .max_ctx = 8}, TPI_ELIMIT, "at most 1048576 sequences");
    expect_refused(m, (tpi_kv_opts){.n_seq = 2, .max_ctx = (int64_t)1 << 33}, TPI_ELIMIT, "4294967296 positions");
    expect_refused(m, (tpi_kv_opts){.n_seq = 1, .max_ctx = 8, .block_positions = -1}, TPI_EINVAL, "block_positions");
    expect_refused(m, (tpi_kv_opts){.n_seq = 1, .max_ctx = 8, .pool_positions = -5}, TPI_EINVAL, "pool_positions");
    expect_refused(m, (tpi_kv_opts){.n_seq = (int64_t)1 << 20, .max_ctx = (int64_t)1 << 20, .block_positions = 1},
                   TPI_ELIMIT, "block-table");
    /* the defaults: blocks of the default size, or of the context when it is
     * shorter; a pool for every sequence's whole context, or what is asked
     * in whole blocks */
    tpi_kv *kv = NULL;
    tpi_error err = {0};
    tpi_kv_usage u;
    static const struct { int64_t n_seq, ctx, pool, block, want_block, want_blocks; } cases[] = {
        {3, 100, 0, 0, 64, 3 * 2}, {2, 5, 0, 0, 5, 2}, {4, 100, 33, 8, 8, 5}, {2, 10, 1000, 4, 4, 6},
        {2, 300, 0, 16, 16, 2 * 19},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tpi_kv_opts o = {.n_seq = cases[i].n_seq, .max_ctx = cases[i].ctx, .pool_positions = cases[i].pool,
                         .block_positions = cases[i].block};
        if (tpi_kv_create_pool(&kv, m, &o, &err)) {
            g_fail(&G, "kv case %zu: %s", i, err.msg);
            continue;
        }
        tpi_kv_get_usage(kv, &u);
        if (u.block_positions != cases[i].want_block || u.blocks_total != cases[i].want_blocks ||
            u.blocks_free != u.blocks_total || u.positions_used != 0)
            g_fail(&G, "kv case %zu: %lld blocks of %lld (%lld free), expected %lld of %lld", i,
                   (long long)u.blocks_total, (long long)u.block_positions, (long long)u.blocks_free,
                   (long long)cases[i].want_blocks, (long long)cases[i].want_block);
        tpi_kv_free(kv);
    }
    if (tpi_kv_create(&kv, m, 2, 200, &err))
        g_fail(&G, "tpi_kv_create: %s", err.msg);
    else {
        tpi_kv_get_usage(kv, &u);
        if (u.block_positions != 64 || u.blocks_total != 8)
            g_fail(&G, "tpi_kv_create(2, 200): %lld blocks of %lld, expected 8 of 64", (long long)u.blocks_total,
                   (long long)u.block_positions);
        tpi_kv_free(kv);
    }
    tpi_model_free(m);
    g_finish(&G);
}

int main(int argc, char **argv)
{
    int rc0 = g_init(&G, &argc, &argv);
    if (rc0)
        return rc0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragmented), cmocka_unit_test(test_truncate), cmocka_unit_test(test_copy_prefix),
        cmocka_unit_test(test_exhausted),  cmocka_unit_test(test_options),
    };
    char group[32];
    snprintf(group, sizeof group, "kv paged TP=%d", tpi_comm_size(G.comm));
    int rc = _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    tpi_comm_free(G.comm);
    return rc;
}
