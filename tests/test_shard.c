/* The slicing arithmetic of tp/shard.c, without a checkpoint: for 1..8 ranks
 * and the shape of every golden model (plus stories260K and a Llama-1B
 * shape), under every combination of split blocks, each split tensor is
 * covered exactly once by the ranks' slices, rank sizes differ by at most one
 * unit, a rank holds exactly the KV heads its query heads read, and
 * replicated tensors are whole on every rank. Exact integer checks: no
 * tolerance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tp/plan.h"
#include "tp/shard.h"

#define MAX_RANKS 8

typedef struct shape {
    const char *name;
    int64_t hidden, layers, heads, kv_heads, ff, vocab, head_dim;
    int tied, qkv_bias, o_bias, mlp_bias, qk_norm;
} shape;

/* config.json of shared/golden/<name> and shared/golden/hf/<name> (the
 * bf16 and mistral-swa cases share llama-gqa's shape), shared/models. */
static const shape shapes[] = {
    {"golden/llama-gqa", 64, 3, 8, 2, 160, 256, 8, 0, 0, 0, 0, 0},
    {"golden/llama-linear-rope", 64, 3, 8, 4, 160, 256, 8, 0, 0, 0, 0, 0},
    {"golden/llama-mha", 64, 3, 8, 8, 160, 256, 8, 0, 0, 0, 0, 0},
    {"golden/llama-uneven", 96, 3, 6, 2, 200, 256, 16, 0, 0, 0, 0, 0},
    {"golden/llama3-rope-tied", 64, 3, 4, 4, 160, 256, 16, 1, 0, 0, 0, 0},
    {"golden/qwen2-bias", 64, 3, 8, 2, 160, 256, 8, 1, 1, 0, 0, 0},
    {"golden/qwen3-qknorm", 64, 3, 6, 2, 160, 256, 16, 0, 0, 0, 0, 1},
    {"golden/hf/llama-gqa", 64, 4, 8, 2, 176, 256, 8, 0, 0, 0, 0, 0},
    {"golden/hf/llama-linear-rope", 64, 4, 8, 4, 176, 256, 8, 0, 0, 0, 0, 0},
    {"golden/hf/llama-mha", 64, 4, 8, 8, 176, 256, 8, 0, 0, 0, 0, 0},
    {"golden/hf/llama-uneven", 96, 4, 6, 2, 202, 250, 16, 0, 0, 0, 0, 0},
    {"golden/hf/llama3-rope-tied", 64, 4, 4, 2, 176, 256, 16, 1, 0, 0, 0, 0},
    {"golden/hf/qwen2-bias", 64, 4, 8, 2, 176, 256, 8, 0, 1, 0, 0, 0},
    {"models/stories260K-hf", 64, 5, 8, 4, 172, 512, 8, 1, 0, 0, 0, 0},
    {"llama-1b", 2048, 22, 32, 4, 5632, 32000, 64, 0, 0, 0, 0, 0},
    /* Llama's attention_bias and mlp_bias, which no golden model sets. */
    {"hf/llama-uneven + attention_bias, mlp_bias", 96, 4, 6, 2, 202, 250, 16, 0, 1, 1, 1, 0},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static tpi_config config_of(const shape *s)
{
    tpi_config c = {0};
    snprintf(c.arch_name, sizeof c.arch_name, "%s", s->name);
    c.hidden_size = s->hidden, c.n_layers = s->layers, c.n_heads = s->heads, c.n_kv_heads = s->kv_heads;
    c.intermediate_size = s->ff, c.vocab_size = s->vocab, c.head_dim = s->head_dim;
    c.tie_word_embeddings = s->tied, c.qkv_bias = s->qkv_bias, c.o_bias = s->o_bias, c.mlp_bias = s->mlp_bias;
    c.qk_norm = s->qk_norm;
    return c;
}

/* Length of an axis and the unit it is dealt in, from config.json alone. */
static int64_t axis_len(const tpi_config *c, tpi_axis a, int64_t *unit)
{
    *unit = 1;
    switch (a) {
    case TPI_AXIS_NONE: return 1;
    case TPI_AXIS_HIDDEN: return c->hidden_size;
    case TPI_AXIS_HEAD_DIM: return c->head_dim;
    case TPI_AXIS_Q_HEADS: *unit = c->head_dim; return c->n_heads * c->head_dim;
    case TPI_AXIS_KV_HEADS: *unit = c->head_dim; return c->n_kv_heads * c->head_dim;
    case TPI_AXIS_FF: *unit = TPI_FF_UNIT; return c->intermediate_size;
    case TPI_AXIS_EMBED:
    case TPI_AXIS_VOCAB: return c->vocab_size;
    }
    return -1;
}

static int axis_splits(tpi_axis a)
{
    return a != TPI_AXIS_NONE && a != TPI_AXIS_HIDDEN && a != TPI_AXIS_HEAD_DIM;
}

static int block_split(const tpi_shard_blocks *b, tpi_block k)
{
    switch (k) {
    case TPI_BLOCK_NORM: return 0;
    case TPI_BLOCK_ATTN: return b->attn;
    case TPI_BLOCK_MLP: return b->mlp;
    case TPI_BLOCK_EMBED: return b->embed;
    case TPI_BLOCK_LM_HEAD: return b->lm_head;
    }
    return -1;
}

typedef struct ctx {
    const shape *sp;
    tpi_config c;
    tpi_shard_blocks b;
    int size;
    tpi_shard sh[MAX_RANKS];
    /* per axis and rank, the range the first weight on that axis gave: every
     * other weight on the axis (o_proj's columns, a bias) must agree */
    int64_t ref0[TPI_AXIS_VOCAB + 1][MAX_RANKS], refn[TPI_AXIS_VOCAB + 1][MAX_RANKS];
    int ref_set[TPI_AXIS_VOCAB + 1];
} ctx;

#define FAIL(x, role, fmt, ...)                                                                                       \
    fail_msg("%s, %d ranks, blocks attn %d mlp %d embed %d lm_head %d, %s: " fmt, (x)->sp->name, (x)->size,           \
             (x)->b.attn, (x)->b.mlp, (x)->b.embed, (x)->b.lm_head, tpi_weights[role].name, __VA_ARGS__)

/* Rank sizes on a dealt axis: every index exactly once, whole units. */
static void check_dealt(ctx *x, tpi_role role, tpi_axis a, const int64_t *b0, const int64_t *n)
{
    int64_t unit, len = axis_len(&x->c, a, &unit), min_units = len, max_units = 0;
    unsigned char *seen = calloc((size_t)len, 1);
    assert_non_null(seen);
    for (int r = 0; r < x->size; r++) {
        if (b0[r] < 0 || n[r] < 0 || b0[r] + n[r] > len || b0[r] % unit)
            FAIL(x, role, "rank %d holds [%lld, +%lld) of %lld (unit %lld)", r, (long long)b0[r], (long long)n[r],
                 (long long)len, (long long)unit);
        for (int64_t i = b0[r]; i < b0[r] + n[r]; i++)
            if (seen[i]++)
                FAIL(x, role, "index %lld held twice (again by rank %d)", (long long)i, r);
        int64_t units = (n[r] + unit - 1) / unit;
        min_units = units < min_units ? units : min_units;
        max_units = units > max_units ? units : max_units;
    }
    for (int64_t i = 0; i < len; i++)
        if (!seen[i])
            FAIL(x, role, "index %lld of %lld held by no rank", (long long)i, (long long)len);
    if (max_units - min_units > 1)
        FAIL(x, role, "rank sizes %lld..%lld units of %lld differ by more than one", (long long)min_units,
             (long long)max_units, (long long)unit);
    free(seen);
}

/* Rank r holds KV head k exactly when one of its query heads reads k
 * (transformers' repeat_kv: query head h reads KV head h / group). */
static void check_kv(ctx *x, tpi_role role, const int64_t *b0, const int64_t *n)
{
    int64_t hd = x->c.head_dim, group = x->c.n_heads / x->c.n_kv_heads;
    for (int r = 0; r < x->size; r++) {
        int64_t q0 = x->ref0[TPI_AXIS_Q_HEADS][r] / hd, nq = x->refn[TPI_AXIS_Q_HEADS][r] / hd;
        if (b0[r] % hd || n[r] % hd)
            FAIL(x, role, "rank %d holds rows [%lld, +%lld), not whole heads", r, (long long)b0[r], (long long)n[r]);
        for (int64_t k = 0; k < x->c.n_kv_heads; k++) {
            int needed = 0;
            for (int64_t h = q0; h < q0 + nq; h++)
                needed |= h / group == k;
            int held = k >= b0[r] / hd && k < (b0[r] + n[r]) / hd;
            if (needed != held)
                FAIL(x, role, "rank %d (query heads [%lld, +%lld)) %s KV head %lld", r, (long long)q0, (long long)nq,
                     held ? "holds unneeded" : "lacks", (long long)k);
        }
    }
}

/* Ranges on a split axis agree across the weights that share it. */
static void check_same(ctx *x, tpi_role role, tpi_axis a, const int64_t *b0, const int64_t *n)
{
    for (int r = 0; r < x->size; r++) {
        if (!x->ref_set[a])
            x->ref0[a][r] = b0[r], x->refn[a][r] = n[r];
        else if (x->ref0[a][r] != b0[r] || x->refn[a][r] != n[r])
            FAIL(x, role, "rank %d holds [%lld, +%lld), another weight on the same axis [%lld, +%lld)", r,
                 (long long)b0[r], (long long)n[r], (long long)x->ref0[a][r], (long long)x->refn[a][r]);
    }
    x->ref_set[a] = 1;
}

static void check_name(ctx *x, tpi_role role, int64_t l, const char *got)
{
    char want[160];
    tpi_role file = role == TPI_W_LM_HEAD && x->c.tie_word_embeddings ? TPI_W_EMBED : role;
    const char *pat = tpi_weights[file].name, *star = strchr(pat, '*');
    if (star)
        snprintf(want, sizeof want, "%.*s%lld%s", (int)(star - pat), pat, (long long)l, star + 1);
    else
        snprintf(want, sizeof want, "%s", pat);
    if (strcmp(want, got))
        FAIL(x, role, "layer %lld reads \"%s\", expected \"%s\"", (long long)l, got, want);
}

/* One weight of one layer over all ranks. */
static void check_weight(ctx *x, tpi_role role, int64_t l)
{
    const tpi_weight_spec *w = &tpi_weights[role];
    tpi_slice s[MAX_RANKS];
    int64_t unit, rows = axis_len(&x->c, w->rows, &unit), cols = axis_len(&x->c, w->cols, &unit);
    /* A bias added after the all-reduce is whole even in a split block. */
    int split = block_split(&x->b, w->block) && x->size > 1 && (axis_splits(w->rows) || axis_splits(w->cols));
    for (int r = 0; r < x->size; r++) {
        int has = tpi_shard_slice(&x->sh[r], &x->c, role, l, &s[r]);
        if (has != tpi_weight_present(&x->c, role))
            FAIL(x, role, "rank %d: slice says %d, the config %d", r, has, tpi_weight_present(&x->c, role));
        if (!has)
            return;
        check_name(x, role, l, s[r].name);
        if (s[r].rows != rows || s[r].cols != cols || s[r].n_dims != (w->cols == TPI_AXIS_NONE ? 1 : 2))
            FAIL(x, role, "rank %d: whole shape [%lld, %lld], expected [%lld, %lld]", r, (long long)s[r].rows,
                 (long long)s[r].cols, (long long)rows, (long long)cols);
        /* The unsplit dimension is whole; a replicated tensor whole in both. */
        int whole_rows = !split || !axis_splits(w->rows), whole_cols = !split || !axis_splits(w->cols);
        if ((whole_rows && (s[r].row0 || s[r].n_rows != rows)) || (whole_cols && (s[r].col0 || s[r].n_cols != cols)))
            FAIL(x, role, "rank %d holds rows [%lld, +%lld) and columns [%lld, +%lld) of [%lld, %lld]", r,
                 (long long)s[r].row0, (long long)s[r].n_rows, (long long)s[r].col0, (long long)s[r].n_cols,
                 (long long)rows, (long long)cols);
    }
    if (!split)
        return;
    int by_rows = axis_splits(w->rows);
    tpi_axis a = by_rows ? w->rows : w->cols;
    int64_t b0[MAX_RANKS], n[MAX_RANKS];
    for (int r = 0; r < x->size; r++) {
        b0[r] = by_rows ? s[r].row0 : s[r].col0;
        n[r] = by_rows ? s[r].n_rows : s[r].n_cols;
    }
    if (a == TPI_AXIS_KV_HEADS)
        check_kv(x, role, b0, n);
    else
        check_dealt(x, role, a, b0, n);
    check_same(x, role, a, b0, n);
}

static int more_ranks_than_heads(const ctx *x)
{
    return x->b.attn && x->size > 1 && x->size > x->c.n_heads;
}

/* Every weight of shape `sp` at `size` ranks with blocks `b` split. */
static void check_case(const shape *sp, int size, tpi_shard_blocks b)
{
    ctx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->sp = sp, x->c = config_of(sp), x->b = b, x->size = size;
    /* The launcher refuses -n by tpi_shard_max_ranks: exactly the sizes the load refuses. */
    int64_t max;
    const char *field = tpi_shard_max_ranks(&x->c, &b, &max);
    if ((field && size > 1 && size > max) != more_ranks_than_heads(x))
        fail_msg("%s, %d ranks: tpi_shard_max_ranks gives %lld (%s), the load %s", sp->name, size, (long long)max,
                 field ? field : "no limit", more_ranks_than_heads(x) ? "refuses" : "accepts");
    for (int r = 0; r < size; r++) {
        tpi_error err = {0};
        int rc = tpi_shard_init(&x->sh[r], &x->c, &b, size, r, &err);
        if (!more_ranks_than_heads(x)) {
            if (rc)
                fail_msg("%s, %d ranks: %s", sp->name, size, err.msg);
            continue;
        }
        char want[96];
        snprintf(want, sizeof want, "%d ranks over num_attention_heads = %lld", size, (long long)sp->heads);
        if (rc != TPI_ECONFIG || !strstr(err.msg, want))
            fail_msg("%s, %d ranks: expected TPI_ECONFIG naming \"%s\", got %d \"%s\"", sp->name, size, want, rc,
                     err.msg);
    }
    /* Query heads first: check_kv reads the ranges q_proj gave. */
    for (int64_t l = 0; l < sp->layers && !more_ranks_than_heads(x); l++) {
        memset(x->ref_set, 0, sizeof x->ref_set);
        check_weight(x, TPI_W_Q, l);
        for (int r = 0; r < TPI_N_ROLES; r++)
            if (r != TPI_W_Q && tpi_weight_per_layer(r))
                check_weight(x, r, l);
    }
    for (int r = 0; r < TPI_N_ROLES && !more_ranks_than_heads(x); r++)
        if (!tpi_weight_per_layer(r))
            check_weight(x, r, -1);
    free(x);
}

static void test_every_shape(void **state)
{
    (void)state;
    int refused = 0;
    for (size_t i = 0; i < N_SHAPES; i++)
        for (int size = 1; size <= MAX_RANKS; size++) {
            for (int mask = 0; mask < 16; mask++) {
                tpi_shard_blocks b = {.attn = mask & 1, .mlp = !!(mask & 2), .embed = !!(mask & 4),
                                      .lm_head = !!(mask & 8)};
                check_case(&shapes[i], size, b);
            }
            refused += size > shapes[i].heads;
        }
    printf("%zu shapes x 1..%d ranks x 16 block choices; %d (shape, ranks) pairs refused a split attention\n",
           N_SHAPES, MAX_RANKS, refused);
    assert_true(refused > 0); /* the refusal is exercised, not only the slices */
}

/* The deal itself on sizes no model has: short last units, fewer units than
 * ranks (empty ranks), the larger ranks first. */
static void test_deal(void **state)
{
    (void)state;
    for (int64_t n = 0; n <= 70; n++)
        for (int64_t unit = 1; unit <= 9; unit++)
            for (int size = 1; size <= MAX_RANKS; size++) {
                int64_t next = 0, prev_units = -1;
                for (int r = 0; r < size; r++) {
                    int64_t b, k;
                    tpi_shard_deal(n, unit, size, r, &b, &k);
                    int64_t units = (k + unit - 1) / unit, all = (n + unit - 1) / unit;
                    if (b != next || k < 0 || units < all / size || units > all / size + 1 ||
                        (prev_units >= 0 && units > prev_units))
                        fail_msg("deal of %lld in units of %lld over %d: rank %d got [%lld, +%lld)", (long long)n,
                                 (long long)unit, size, r, (long long)b, (long long)k);
                    next = b + k, prev_units = units;
                }
                if (next != n)
                    fail_msg("deal of %lld in units of %lld over %d covers %lld", (long long)n, (long long)unit,
                             size, (long long)next);
            }
}

/* The built-in plan, read back through the same table, splits every block. */
static void test_auto_plan(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SHAPES; i++) {
        tpi_config c = config_of(&shapes[i]);
        tpi_plan *p;
        tpi_shard_blocks b;
        tpi_error err = {0};
        if (tpi_plan_auto(&p, &c, &err) || tpi_plan_blocks(p, &c, &b, &err))
            fail_msg("%s: %s", shapes[i].name, err.msg);
        assert_true(b.attn && b.mlp && b.embed && b.lm_head);
        tpi_plan_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deal),
        cmocka_unit_test(test_every_shape),
        cmocka_unit_test(test_auto_plan),
    };
    return cmocka_run_group_tests_name("shard", tests, NULL, NULL);
}
