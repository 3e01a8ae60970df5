/* The fast CPU kernels against the plain reference (backend/cpu/ref.c) on
 * random shapes, odd sizes included: every op, every weight dtype, unaligned
 * weight data, tensor-parallel head offsets, windows, chunked prefill and
 * decode. Tolerance: max|fast - ref| / max|ref| <= TOL over each output;
 * both accumulate in fp32 in a different order (and exp is a polynomial), so
 * the expected error is ~1e-6. */
#include <cpuid.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "backend/cpu/tuning.h"
#include "testutil.h"

#define TOL 1e-5

static const tpi_backend *fast, *ref;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void) /* uniform in [-1, 1), splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static float *rand_floats(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

static void check_close(const float *got, const float *want, size_t n, const char *what)
{
    double e = tu_rel_err(got, want, n);
    if (!(e <= TOL)) {
        print_error("%s: relative error %g > %g\n", what, e, TOL);
        fail();
    }
}

/* ---- matmul ---- */

/* A weight [rows, cols] of dtype dt whose data starts `misalign` bytes past
 * an aligned address, as a tensor inside a mapped safetensors file may. */
static tpi_weight make_weight(tpi_dtype dt, int64_t rows, int64_t cols, size_t misalign, void **block)
{
    size_t es = tpi_dtype_size(dt), n = (size_t)rows * (size_t)cols;
    uint8_t *b = malloc(n * es + misalign + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        float f = frand();
        uint8_t *p = b + misalign + i * es;
        if (dt == TPI_F32) {
            memcpy(p, &f, 4);
        } else {
            uint16_t h = dt == TPI_BF16 ? tpi_f32_to_bf16(f) : tpi_f32_to_f16(f);
            memcpy(p, &h, 2);
        }
    }
    *block = b;
    tpi_weight w = {.dtype = dt, .rows = rows, .cols = cols, .data = b + misalign};
    return w;
}

static void matmul_case(tpi_dtype dt, int64_t rows, int64_t cols, int64_t n, size_t misalign)
{
    void *block;
    tpi_weight w = make_weight(dt, rows, cols, misalign, &block);
    float *x = rand_floats((size_t)(n * cols), 1.0f);
    size_t ny = (size_t)(n * rows);
    float *want = malloc((ny ? ny : 1) * sizeof *want), *got = malloc((ny ? ny : 1) * sizeof *got);
    assert_true(want && got);
    char what[160];
    snprintf(what, sizeof what, "matmul %s [%lld, %lld] n=%lld misalign=%zu", tpi_dtype_name(dt), (long long)rows,
             (long long)cols, (long long)n, misalign);
    ref->matmul(want, x, n, &w);

    /* unprepared: the kernel packs for the call */
    for (size_t i = 0; i < ny; i++)
        got[i] = NAN;
    fast->matmul(got, x, n, &w);
    check_close(got, want, ny, what);

    if (fast->prepare_weight) {
        assert_int_equal(fast->prepare_weight(&w), 0);
        for (size_t i = 0; i < ny; i++)
            got[i] = NAN;
        fast->matmul(got, x, n, &w);
        check_close(got, want, ny, what);
        /* y must be fully overwritten, whatever it held before */
        for (size_t i = 0; i < ny; i++)
            got[i] = 1e30f;
        fast->matmul(got, x, n, &w);
        check_close(got, want, ny, what);
    }
    free(w.packed);
    free(block);
    free(x);
    free(want);
    free(got);
}

static void test_matmul_shapes(void **state)
{
    (void)state;
    /* rows around the 16-wide panels (1-13 of them: the decode GEMV's
     * 4-panel units, whole and with 1-3 panels left over), cols around the K
     * blocks (512), n across the decode GEMV (<= 4) / GEMM (6-row blocks of
     * 192) boundary */
    static const int64_t shapes[][2] = {{1, 1},   {16, 16}, {17, 33},  {5, 7},   {40, 300},   {100, 257},
                                        {33, 513}, {64, 64}, {15, 1000}, {48, 8}, {90, 70}, {200, 129}};
    static const int64_t ns[] = {1, 2, 3, 4, 5, 6, 7, 13, 17, 64, 97, 200};
    static const tpi_dtype dts[] = {TPI_BF16, TPI_F16, TPI_F32};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
                matmul_case(dts[d], shapes[s][0], shapes[s][1], ns[i], (s + i) % 3);
    /* several K blocks and row blocks at once, with ragged ends in both */
    for (size_t d = 0; d < 3; d++)
        matmul_case(dts[d], 40, 1100, 390, 1);
}

static void test_matmul_random(void **state)
{
    (void)state;
    for (int t = 0; t < 40; t++) {
        tpi_dtype dt = (tpi_dtype)(t % 3);
        int64_t rows = 1 + (int64_t)((frand() + 1) * 90), cols = 1 + (int64_t)((frand() + 1) * 350);
        int64_t n = 1 + (int64_t)((frand() + 1) * 60);
        matmul_case(dt, rows, cols, n, (size_t)t % 5);
    }
}

/* Several weights over one x (q, k, v; gate, up): each output must equal the
 * reference matmul of its own weight, whatever the mix of dtypes, row counts
 * (0 included), preparation, and more weights than one call takes. */
static void test_matmul_multi(void **state)
{
    (void)state;
    static const int64_t ns[] = {1, 2, 3, 4, 5, 13, 200};
    for (int t = 0; t < 24; t++) {
        int count = 1 + t % (TPI_MATMUL_MAX + 2);
        int64_t cols = 1 + (int64_t)((frand() + 1) * 300), n = ns[t % 7];
        tpi_weight w[TPI_MATMUL_MAX + 2];
        const tpi_weight *wp[TPI_MATMUL_MAX + 2];
        void *block[TPI_MATMUL_MAX + 2];
        float *want[TPI_MATMUL_MAX + 2], *got[TPI_MATMUL_MAX + 2];
        float *x = rand_floats((size_t)(n * cols), 1.0f);
        for (int i = 0; i < count; i++) {
            int64_t rows = i == 1 && t % 4 == 0 ? 0 : 1 + (int64_t)((frand() + 1) * 60);
            w[i] = make_weight((tpi_dtype)((t + i) % 3), rows, cols, (size_t)i % 3, &block[i]);
            if (fast->prepare_weight && (t + i) % 2)
                assert_int_equal(fast->prepare_weight(&w[i]), 0);
            wp[i] = &w[i];
            want[i] = malloc((size_t)(n * rows + 1) * sizeof(float));
            got[i] = malloc((size_t)(n * rows + 1) * sizeof(float));
            assert_true(want[i] && got[i]);
            for (int64_t j = 0; j < n * rows; j++)
                got[i][j] = NAN;
            ref->matmul(want[i], x, n, &w[i]);
        }
        fast->matmul_multi(count, got, x, n, wp);
        for (int i = 0; i < count; i++) {
            char what[160];
            snprintf(what, sizeof what, "matmul_multi case %d: weight %d of %d, %s [%lld, %lld] n=%lld", t, i, count,
                     tpi_dtype_name(w[i].dtype), (long long)w[i].rows, (long long)cols, (long long)n);
            check_close(got[i], want[i], (size_t)(n * w[i].rows), what);
            free(w[i].packed);
            free(block[i]);
            free(want[i]);
            free(got[i]);
        }
        free(x);
    }
}

/* Thread counts that do not divide the panels evenly, and a single thread,
 * on work large enough to wake the threads (tuning.h's thresholds: below
 * them every region runs on one thread). */
static void test_matmul_threads(void **state)
{
    (void)state;
    static const int threads[] = {1, 3};
    assert_true(400 / 16 * 16 * 1000 * 2 >= TPI_PAR_MIN_GEMV_BYTES);
    assert_true(2 * 50 * 600 * 200 >= TPI_PAR_MIN_GEMM_FLOPS && 2 * 9 * 1300 * 330 >= TPI_PAR_MIN_GEMM_FLOPS);
    for (size_t t = 0; t < 2; t++) {
        omp_set_num_threads(threads[t]);
        matmul_case(TPI_BF16, 410, 1000, 1, 1);
        matmul_case(TPI_BF16, 200, 600, 50, 1);
        matmul_case(TPI_F16, 330, 1300, 9, 0);
    }
    omp_set_num_threads(2);
}

/* ---- rmsnorm, rope, silu ---- */

static void test_rmsnorm(void **state)
{
    (void)state;
    static const int64_t dims[] = {1, 7, 8, 9, 64, 100, 2048, 2051};
    static const int64_t ns[] = {1, 3, 17};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (size_t i = 0; i < 3; i++) {
            int64_t dim = dims[d], n = ns[i];
            size_t len = (size_t)(n * dim);
            float *x = rand_floats(len, 3.0f), *g = rand_floats((size_t)dim, 1.0f);
            float *want = malloc(len * sizeof *want), *got = malloc(len * sizeof *got);
            assert_true(want && got);
            float eps = i == 1 ? 0.5f : 1e-5f; /* a large eps so a kernel that drops it fails */
            ref->rmsnorm(want, x, g, n, dim, eps);
            fast->rmsnorm(got, x, g, n, dim, eps);
            check_close(got, want, len, "rmsnorm");
            memcpy(got, x, len * sizeof *got); /* in place, as the model does for q/k norms */
            fast->rmsnorm(got, got, g, n, dim, eps);
            check_close(got, want, len, "rmsnorm in place");
            free(x);
            free(g);
            free(want);
            free(got);
        }
}

static void test_rope(void **state)
{
    (void)state;
    static const int64_t hds[] = {2, 8, 16, 18, 34, 64, 128};
    for (size_t d = 0; d < sizeof hds / sizeof hds[0]; d++)
        for (int64_t n = 1; n <= 9; n += 4)
            for (int64_t nh = 1; nh <= 5; nh += 2) {
                int64_t hd = hds[d], stride = nh * hd + 3; /* extra columns must stay untouched */
                size_t len = (size_t)(n * stride);
                float *x = rand_floats(len, 2.0f), *cs = rand_floats((size_t)(n * hd / 2), 1.0f),
                      *sn = rand_floats((size_t)(n * hd / 2), 1.0f);
                float *want = malloc(len * sizeof *want);
                assert_non_null(want);
                memcpy(want, x, len * sizeof *want);
                ref->rope(want, n, stride, nh, hd, cs, sn);
                fast->rope(x, n, stride, nh, hd, cs, sn);
                check_close(x, want, len, "rope");
                free(x);
                free(cs);
                free(sn);
                free(want);
            }
}

static void test_silu_mul(void **state)
{
    (void)state;
    static const int64_t ns[] = {1, 7, 8, 9, 100, 4096 * 5 + 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = (size_t)ns[i];
        /* wide range so both tails of the exp (and its clamps) are hit */
        float *g = rand_floats(n, 12.0f), *u = rand_floats(n, 2.0f);
        if (n > 8) {
            g[0] = -100.0f;
            g[1] = 100.0f;
            g[2] = -88.0f;
            g[3] = 0.0f;
        }
        float *want = malloc(n * sizeof *want);
        assert_non_null(want);
        memcpy(want, g, n * sizeof *want);
        ref->silu_mul(want, u, (int64_t)n);
        fast->silu_mul(g, u, (int64_t)n);
        check_close(g, want, n, "silu_mul");
        /* elementwise too: small outputs must not hide behind a large maximum */
        for (size_t j = 0; j < n; j++)
            if (!(fabsf(g[j] - want[j]) <= 1e-6f * fabsf(want[j]) + 1e-38f)) {
                print_error("silu_mul[%zu] = %g, want %g\n", j, g[j], want[j]);
                fail();
            }
        free(g);
        free(u);
        free(want);
    }
}

/* ---- attention ---- */

/* The cache c (one block of ctx positions, shape s) cut into blocks of bp
 * positions that lie in the pool in a scrambled order, as a paged cache's
 * blocks do: *ps is the shape to read them with, bases[] the blocks in
 * position order. Returns the pool (free it). */
static float *paged_copy(const float *c, const tpi_attn_shape *s, int64_t ctx, int64_t n_kv, int64_t bp,
                         const float **bases, tpi_attn_shape *ps)
{
    int64_t nb = (ctx + bp - 1) / bp, hd = s->head_dim, head_major = s->kv_pos_stride == hd;
    *ps = *s;
    ps->block_positions = bp;
    ps->kv_head_stride = head_major ? bp * hd : hd;
    size_t bf = (size_t)(n_kv * bp * hd);
    float *pool = malloc((size_t)nb * bf * sizeof *pool);
    int64_t *perm = malloc((size_t)nb * sizeof *perm);
    assert_true(pool && perm);
    for (int64_t i = 0; i < nb; i++)
        perm[i] = i;
    for (int64_t i = nb - 1; i > 0; i--) {
        int64_t j = (int64_t)((frand() + 1) * 0.5 * (double)(i + 1)) % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int64_t i = 0; i < nb; i++)
        bases[i] = pool + (size_t)perm[i] * bf;
    for (int64_t h = 0; h < n_kv; h++)
        for (int64_t j = 0; j < ctx; j++)
            memcpy((float *)tpi_attn_kv_row(bases, ps, h, j), c + h * s->kv_head_stride + j * s->kv_pos_stride,
                   (size_t)hd * sizeof *c);
    free(perm);
    return pool;
}

/* The fast and the reference kernel over the same cache paged in blocks of
 * bp positions give the bits they give over it whole (got, want): the
 * block size never changes the arithmetic. */
static void check_paged(const float *got, const float *want, const float *q, int64_t n, const int64_t *pos,
                        const float *k, const float *v, const tpi_attn_shape *s, int64_t ctx, int64_t n_kv,
                        int64_t bp, const char *what)
{
    int64_t nb = (ctx + bp - 1) / bp;
    const float **kb = malloc((size_t)nb * sizeof *kb), **vb = malloc((size_t)nb * sizeof *vb);
    size_t qlen = (size_t)(n * s->n_heads * s->head_dim);
    float *out = malloc(qlen * sizeof *out);
    assert_true(kb && vb && out);
    tpi_attn_shape ps;
    float *kp = paged_copy(k, s, ctx, n_kv, bp, kb, &ps), *vp = paged_copy(v, s, ctx, n_kv, bp, vb, &ps);
    for (int r = 0; r < 2; r++) {
        (r ? ref : fast)->attention(out, q, n, pos, kb, vb, &ps);
        if (memcmp(out, r ? want : got, qlen * sizeof *out)) {
            print_error("%s: %s kernel over blocks of %lld positions differs from the whole cache (max diff %g)\n",
                        what, r ? "reference" : "fast", (long long)bp, tu_rel_err(out, r ? want : got, qlen));
            fail();
        }
    }
    free(kp), free(vp), free(kb), free(vb), free(out);
}

/* A rank holding query heads [q_head0, q_head0 + n_heads) of a model with
 * `group` query heads per KV head: it caches KV heads from q_head0 / group
 * to the last one its heads read, as the tensor-parallel loader does. n
 * queries at positions start, start+1, ... (chunked prefill, or decode when
 * n = 1), unless `shuffle`, which scatters the positions. */
static void attn_case(int64_t hd, int64_t group, int64_t q_head0, int64_t n_heads, int64_t start, int64_t n,
                      int64_t window, int shuffle)
{
    int64_t kv_head0 = q_head0 / group, kv_last = (q_head0 + n_heads - 1) / group;
    int64_t n_kv = kv_last - kv_head0 + 1, ctx = start + n;
    /* cases alternate the two cache layouts: a position's heads together
     * (a row per position), and each head's positions together (the model's) */
    static int head_major;
    head_major = !head_major;
    tpi_attn_shape s = {.n_heads = n_heads, .head_dim = hd, .q_head0 = q_head0, .group = group,
                        .kv_head0 = kv_head0, .kv_pos_stride = head_major ? hd : n_kv * hd,
                        .kv_head_stride = head_major ? ctx * hd : hd, .window = window,
                        .scale = 1.0f / sqrtf((float)hd)};
    size_t qlen = (size_t)(n * n_heads * hd), kvlen = (size_t)(ctx * n_kv * hd);
    float *q = rand_floats(qlen, 3.0f), *k = rand_floats(kvlen, 3.0f), *v = rand_floats(kvlen, 1.0f);
    int64_t *pos = malloc((size_t)n * sizeof *pos);
    float *want = malloc(qlen * sizeof *want), *got = malloc(qlen * sizeof *got);
    assert_true(pos && want && got);
    for (int64_t i = 0; i < n; i++)
        pos[i] = start + i;
    if (shuffle)
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)((frand() + 1) * 0.5 * (double)(i + 1)) % (i + 1), t = pos[i];
            pos[i] = pos[j];
            pos[j] = t;
        }
    const float *kw[1] = {k}, *vw[1] = {v};
    ref->attention(want, q, n, pos, kw, vw, &s);
    for (size_t i = 0; i < qlen; i++)
        got[i] = NAN;
    fast->attention(got, q, n, pos, kw, vw, &s);
    char what[200];
    snprintf(what, sizeof what, "attention hd=%lld group=%lld q_head0=%lld heads=%lld start=%lld n=%lld window=%lld%s",
             (long long)hd, (long long)group, (long long)q_head0, (long long)n_heads, (long long)start,
             (long long)n, (long long)window, shuffle ? " shuffled" : "");
    check_close(got, want, qlen, what);
    /* block sizes below, at and above the kernel's 64-key tile, and not
     * dividing it (7 of them, so each meets both layouts) */
    static const int64_t bps[] = {1, 3, 8, 16, 64, 100, 24};
    static unsigned which;
    check_paged(got, want, q, n, pos, k, v, &s, ctx, n_kv, bps[which++ % 7], what);
    free(q);
    free(k);
    free(v);
    free(pos);
    free(want);
    free(got);
}

static void test_attention_prefill(void **state)
{
    (void)state;
    static const int64_t hds[] = {8, 16, 64, 128, 12 /* not a multiple of 8: the reference path */};
    static const int64_t groups[] = {1, 2, 4};
    static const int64_t ns[] = {1, 2, 3, 17, 64, 100};
    for (size_t d = 0; d < sizeof hds / sizeof hds[0]; d++)
        for (size_t g = 0; g < 3; g++)
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                int64_t G = groups[g];
                attn_case(hds[d], G, 0, 4 * G, 0, ns[i], 0, 0);
                attn_case(hds[d], G, 0, 2 * G, 5, ns[i], 0, 0);  /* chunked: a cached prefix */
                attn_case(hds[d], G, 0, 2 * G, 70, ns[i], 16, 0); /* sliding window */
            }
}

static void test_attention_decode(void **state)
{
    (void)state;
    static const int64_t ctxs[] = {1, 2, 63, 64, 65, 200, 1030};
    for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++)
        for (int64_t G = 1; G <= 8; G *= 2) {
            attn_case(64, G, 0, 4 * G, ctxs[c] - 1, 1, 0, 0);
            attn_case(16, G, 0, G, ctxs[c] - 1, 1, 0, 0);
            attn_case(64, G, 0, 2 * G, ctxs[c] - 1, 1, 100, 0);
            attn_case(8, G, 0, 2 * G, ctxs[c] - 1, 1, 1, 0); /* window 1: only itself */
        }
}

/* Tensor-parallel slices: a rank's heads start mid-model and may cut a GQA
 * group (its first and last KV heads then serve fewer than `group` heads). */
static void test_attention_tp_slices(void **state)
{
    (void)state;
    attn_case(64, 8, 16, 16, 0, 40, 0, 0);  /* rank 1 of 2, llama-1b-like */
    attn_case(64, 3, 2, 3, 0, 33, 0, 0);    /* heads 2..4 of 6: KV heads 0 and 1 */
    attn_case(16, 4, 5, 6, 10, 20, 0, 0);   /* heads 5..10: KV heads 1..2 */
    attn_case(16, 4, 5, 6, 90, 1, 0, 0);    /* same, decode */
    attn_case(32, 2, 7, 1, 3, 30, 9, 0);    /* one head, odd KV head, window */
    attn_case(64, 8, 1, 2, 0, 70, 0, 0);    /* heads 1..2, inside one group */
    attn_case(16, 1, 3, 2, 0, 129, 5, 0);   /* MHA slice, window */
}

static void test_attention_positions(void **state)
{
    (void)state;
    attn_case(16, 2, 0, 4, 0, 50, 0, 1);
    attn_case(64, 4, 0, 8, 30, 90, 20, 1);
}

static void test_attention_threads(void **state)
{
    (void)state;
    omp_set_num_threads(1);
    attn_case(64, 4, 0, 8, 0, 80, 0, 0);
    omp_set_num_threads(3);
    /* both above the threshold that wakes the threads (4 FLOPs per key, dim and head) */
    assert_true(4 * 80 * 81 / 2 * 8 * 64 >= TPI_PAR_MIN_ATTN_FLOPS && 4 * 501 * 8 * 64 >= TPI_PAR_MIN_ATTN_FLOPS);
    attn_case(64, 4, 0, 8, 0, 80, 0, 0);
    attn_case(64, 4, 0, 8, 500, 1, 0, 0);
    omp_set_num_threads(2);
}

/* ---- selection ---- */

static void test_select(void **state)
{
    (void)state;
    const tpi_backend *best = tpi_backend_cpu(), *be = NULL;
    int avx512 = __builtin_cpu_supports("avx512f");
    assert_string_equal(best->name, avx512 ? "cpu-avx512" : "cpu-avx2");
    assert_int_equal(tpi_backend_cpu_select("ref", &be), 0);
    assert_ptr_equal(be, tpi_backend_cpu_ref());
    assert_string_equal(tpi_backend_cpu_set(be), "ref");
    assert_int_equal(tpi_backend_cpu_select("avx2", &be), 0);
    assert_string_equal(be->name, "cpu-avx2");
    assert_string_equal(tpi_backend_cpu_set(be), "avx2");
    /* avx512 where the processor has it, else the best it runs, as the name tells */
    assert_int_equal(tpi_backend_cpu_select("avx512", &be), 0);
    assert_ptr_equal(be, best);
    assert_string_equal(tpi_backend_cpu_set(be), avx512 ? "avx512" : "avx2");
    assert_int_equal(tpi_backend_cpu_select("avx513", &be), TPI_EINVAL); /* a typo is refused */
    assert_ptr_equal(be, best);
    const char *const autos[] = {NULL, "", "auto"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tpi_backend_cpu_select(autos[i], &be), 0);
        assert_ptr_equal(be, best);
    }
}

int main(void)
{
    __builtin_cpu_init();
    unsigned a, b, c, d; /* F16C: CPUID leaf 1, ECX bit 29; clang's builtin does not know "f16c" */
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !f16c) {
        printf("skipped: this processor lacks AVX2/FMA/F16C, so only the reference kernels run\n");
        return TU_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_random),
        cmocka_unit_test(test_matmul_threads),
        cmocka_unit_test(test_matmul_multi),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_silu_mul),
        cmocka_unit_test(test_attention_prefill),
        cmocka_unit_test(test_attention_decode),
        cmocka_unit_test(test_attention_tp_slices),
        cmocka_unit_test(test_attention_positions),
        cmocka_unit_test(test_attention_threads),
    };
    ref = tpi_backend_cpu_ref();
    omp_set_num_threads(2);
    /* every fast set this processor can run: AVX2, then the best if it differs */
    if (tpi_backend_cpu_select("avx2", &fast))
        return 1;
    int failed = cmocka_run_group_tests_name("cpu-avx2", tests, NULL, NULL);
    const tpi_backend *best = tpi_backend_cpu();
    if (best == fast) {
        printf("note: no AVX-512F here, so the cpu-avx512 kernels were not run\n");
        return failed;
    }
    fast = best;
    return failed + cmocka_run_group_tests_name(best->name, tests, NULL, NULL);
}
