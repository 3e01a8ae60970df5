/* Quantized weights: the block decoders against llama.cpp's gguf-py
 * (../shared/golden/gguf, bit for bit), the quantizers' error, and the
 * quantized matmul kernels (backend/cpu/quant*.c):
 *  - each SIMD set against the plain reference on random shapes (decode
 *    n = 1..4, prefill n = 5..70, rows not a multiple of the unit, k_off > 0
 *    with cols not a multiple of the block): both compute the same integer
 *    dot products and differ only in the order of fp32 sums, so
 *    max|fast - ref| <= 1e-5 * max|ref|;
 *  - the reference against a double-precision dot of the dequantized
 *    weights with the activations as quantized (<= 1e-5 * max|ref|: fp32
 *    rounding only) and with the float activations (<= 3e-2 * max|ref|,
 *    the golden README's bound for 8-bit activation blocks).
 * A set this processor lacks is reported skipped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "core/quant.h"
#include "gguf_peek.h"
#include "testutil.h"

static const tpi_dtype qtypes[] = {TPI_Q8_0, TPI_Q4_0, TPI_Q4_K, TPI_Q6_K};

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static float frand(void) /* uniform in [-1, 1), splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static float grand(void) /* roughly normal: weights and activations look like this */
{
    return (frand() + frand() + frand() + frand()) * 0.866f;
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

static float *rand_vec(size_t n, float scale)
{
    float *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = grand() * scale;
    return v;
}

/* ---- golden dequantization ---- */

typedef struct golden_case {
    tpi_dtype t;
    uint32_t ggml_type;
    const char *file, *tensor, *dequantized;
} golden_case;

static void test_dequant_golden(void **state)
{
    (void)state;
    const char *dir = tu_shared_dir();
    if (!dir)
        skip();
    static const golden_case cases[] = {
        {TPI_Q8_0, 8, "mini-q8_0.gguf", "output.weight", "dequant-q8_0.f32"},
        {TPI_Q6_K, 14, "mini-q4_0.gguf", "output.weight", "dequant-q6_k.f32"},
        {TPI_Q4_0, 2, "mini-q4_0.gguf", "token_embd.weight", "dequant-q4_0.f32"},
        {TPI_Q4_K, 12, "mini-q4_k_m.gguf", "token_embd.weight", "dequant-q4_k.f32"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const golden_case *g = &cases[c];
        size_t fbytes, wbytes;
        char *gdir = tu_path(dir, "golden/gguf");
        uint8_t *file = tu_read_file(tu_in(gdir, g->file), &fbytes);
        float *want = tu_read_file(tu_in(gdir, g->dequantized), &wbytes);
        free(gdir);
        assert_true(file && want);
        gguf_peek_tensor t;
        assert_int_equal(gguf_peek(file, fbytes, g->tensor, &t), 0);
        assert_int_equal(t.type, g->ggml_type);
        assert_int_equal(t.n_dims, 2);
        int64_t cols = (int64_t)t.dims[0], rows = (int64_t)t.dims[1];
        assert_int_equal(rows * cols * 4, (int64_t)wbytes);
        assert_true(t.data + rows * tpi_dtype_row_bytes(g->t, cols) <= file + fbytes);
        float *got = xmalloc(wbytes);
        for (int64_t r = 0; r < rows; r++)
            tpi_dequant_row(g->t, t.data + r * tpi_dtype_row_bytes(g->t, cols), got + r * cols, cols);
        if (memcmp(got, want, wbytes)) {
            for (int64_t i = 0; i < rows * cols; i++)
                if (memcmp(&got[i], &want[i], 4)) {
                    print_error("%s %s: element %lld is %.9g, gguf-py gives %.9g\n", g->file, g->tensor,
                                (long long)i, got[i], want[i]);
                    break;
                }
            fail();
        }
        free(got);
        free(want);
        free(file);
    }
}

/* ---- quantizers ---- */

/* RMS of the quantization error over RMS of x, for normal-like data; the
 * bounds are ~1.25x what these quantizers measure (Q8_0 0.0051, Q4_0 0.081,
 * Q4_K 0.069, Q6_K 0.017 at this commit), so a worse rounding fails
 * (Q4_K rounding down instead of to nearest measures 0.157). */
static double rms_bound(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return 0.0065;
    case TPI_Q4_0: return 0.10;
    case TPI_Q4_K: return 0.085;
    default: return 0.021;
    }
}

static void roundtrip_case(tpi_dtype t, int64_t n, float scale)
{
    float *x = rand_vec((size_t)n, scale), *y = xmalloc((size_t)n * 4), *z = xmalloc((size_t)n * 4);
    int64_t bytes = tpi_dtype_row_bytes(t, n), bs = tpi_dtype_block(t);
    uint8_t *q = xmalloc((size_t)bytes), *q2 = xmalloc((size_t)bytes);
    /* a block of zeros and a block with one outlier */
    memset(x, 0, (size_t)bs * sizeof *x);
    x[bs + 3] = 20.0f * scale;
    assert_int_equal(tpi_quant_row(t, x, q, n), 0);
    assert_int_equal(tpi_quant_row(t, x, q2, n), 0);
    assert_memory_equal(q, q2, (size_t)bytes); /* deterministic */
    tpi_dequant_row(t, q, y, n);
    for (int64_t i = 0; i < bs; i++)
        assert_true(y[i] == 0.0f);
    double se = 0, sx = 0;
    for (int64_t b = 0; b < n / bs; b++) {
        float amax = 0;
        for (int64_t i = b * bs; i < (b + 1) * bs; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        for (int64_t i = b * bs; i < (b + 1) * bs; i++) {
            double e = fabs((double)y[i] - x[i]);
            /* per element: half a step and the fp16 scale's rounding for Q8_0;
             * Q4_0's far end may clamp a whole step (-8d..7d) */
            if (t == TPI_Q8_0 && !(e <= 0.6 * amax / 127 + 1e-30)) {
                print_error("Q8_0 element %lld: |%g - %g| > half a step\n", (long long)i, y[i], x[i]);
                fail();
            }
            if (t == TPI_Q4_0 && !(e <= 1.01 * amax / 8 + 1e-30)) {
                print_error("Q4_0 element %lld: |%g - %g| > a step\n", (long long)i, y[i], x[i]);
                fail();
            }
            if (b >= 2) { /* the zero and outlier blocks aside */
                se += e * e;
                sx += (double)x[i] * x[i];
            }
        }
    }
    double rel = sqrt(se / sx);

    if (!(rel <= rms_bound(t))) {
        print_error("%s: rms error %g of rms(x) > %g\n", tpi_dtype_name(t), rel, rms_bound(t));
        fail();
    }
    /* stable: the dequantized values quantize back to (nearly) themselves */
    assert_int_equal(tpi_quant_row(t, y, q2, n), 0);
    tpi_dequant_row(t, q2, z, n);
    double d2 = 0;
    for (int64_t i = 0; i < n; i++)
        d2 += ((double)z[i] - y[i]) * ((double)z[i] - y[i]);
    double rel2 = sqrt(d2 / sx);

    double stable = t == TPI_Q8_0 || t == TPI_Q4_0 ? 0.0 : rel / 4;
    if (!(rel2 <= stable)) {
        print_error("%s: requantizing moved the values by %g of rms(x) (> %g)\n", tpi_dtype_name(t), rel2, stable);
        fail();
    }
    free(x), free(y), free(z), free(q), free(q2);
}

static void test_quant_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(tpi_quant_row(qtypes[i], NULL, NULL, 17), -1);
        roundtrip_case(qtypes[i], 256 * 64, 1.0f);
        roundtrip_case(qtypes[i], 256 * 8, 0.02f);
    }
    assert_int_equal(tpi_quant_row(TPI_F32, NULL, NULL, 32), -1);
}

/* ---- matmul ---- */

/* A weight [rows, cols] of type t with k_off, quantized from random floats;
 * *deq gets its dequantized rows of nb * block values. */
static tpi_weight make_qweight(tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off, float **deq)
{
    tpi_weight w = {.dtype = t, .rows = rows, .cols = cols, .k_off = k_off};
    int64_t nb = tpi_qweight_blocks(&w), bs = tpi_dtype_block(t), rb = nb * tpi_dtype_block_bytes(t);
    uint8_t *data = xmalloc((size_t)(rows * rb));
    float *f = rand_vec((size_t)(nb * bs), 0.05f);
    *deq = xmalloc((size_t)(rows * nb * bs) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < nb * bs; i++)
            f[i] = grand() * 0.05f;
        assert_int_equal(tpi_quant_row(t, f, data + r * rb, nb * bs), 0);
        tpi_dequant_row(t, data + r * rb, *deq + r * nb * bs, nb * bs);
    }
    free(f);
    w.data = data;
    return w;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

static void expect_close(const float *got, const double *want, size_t n, double tol, const char *what)
{
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        m = fmax(m, fabs(want[i]));
        if (!(d <= e)) /* a NaN (an output never written) sticks */
            e = d;
    }
    if (!(e <= tol * m)) {
        print_error("%s: max error %g > %g * max|ref| %g\n", what, e, tol, m);
        fail();
    }
}

/* x's activations as the kernels see them: quantized per block and
 * dequantized back, in the weight's block positions. */
static void dequant_act(tpi_dtype t, const float *x, int64_t cols, int64_t k_off, int64_t nb, float *out)
{
    int64_t bs = tpi_dtype_block(t);
    uint8_t *a = xmalloc(tpi_qact_row_bytes(t, nb));
    tpi_qact_quantize(t, x, cols, k_off, nb, a);
    for (int64_t b = 0; b < nb; b++)
        for (int64_t j = 0; j < bs; j++) {
            if (bs == 32) {
                const tpi_q8a8 *q = (const tpi_q8a8 *)a + b / 8;
                out[b * bs + j] = q->d[b % 8] * q->qs[32 * (b % 8) + j];
            } else {
                const tpi_q8k *q = (const tpi_q8k *)a + b;
                out[b * bs + j] = q->d * q->qs[j];
            }
        }
    free(a);
}

/* The reference matmul against double-precision dots of the dequantized
 * weight with the quantized, then with the float activations. */
static void ref_vs_double(tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off, int64_t n)
{
    float *deq;
    tpi_weight w = make_qweight(t, rows, cols, k_off, &deq);
    int64_t nb = tpi_qweight_blocks(&w), bs = tpi_dtype_block(t);
    float *x = rand_vec((size_t)(n * cols), 1.0f), *y = xmalloc((size_t)(n * rows) * 4);
    float *xq = xmalloc((size_t)(nb * bs) * 4);
    double *want_q = xmalloc((size_t)(n * rows) * 8), *want_f = xmalloc((size_t)(n * rows) * 8);
    tpi_backend_cpu_ref()->matmul(y, x, n, &w);
    for (int64_t i = 0; i < n; i++) {
        dequant_act(t, x + i * cols, cols, k_off, nb, xq);
        for (int64_t o = 0; o < rows; o++) {
            const float *wr = deq + o * nb * bs;
            double sq = 0, sf = 0;
            for (int64_t e = 0; e < nb * bs; e++)
                sq += (double)wr[e] * xq[e];
            for (int64_t c = 0; c < cols; c++)
                sf += (double)wr[k_off + c] * x[i * cols + c];
            want_q[i * rows + o] = sq;
            want_f[i * rows + o] = sf;
        }
    }
    char what[128];
    snprintf(what, sizeof what, "ref %s [%lld, %lld] k_off %lld n %lld", tpi_dtype_name(t), (long long)rows,
             (long long)cols, (long long)k_off, (long long)n);
    expect_close(y, want_q, (size_t)(n * rows), 1e-5, what);
    expect_close(y, want_f, (size_t)(n * rows), 3e-2, what);
    free((void *)w.data), free(deq), free(x), free(y), free(xq), free(want_q), free(want_f);
}

static void test_ref_vs_double(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        int64_t bs = tpi_dtype_block(qtypes[i]);
        ref_vs_double(qtypes[i], 37, 4 * bs, 0, 3);
        ref_vs_double(qtypes[i], 21, 3 * bs - 40, 17, 2);  /* a rank's slice off the block grid */
        ref_vs_double(qtypes[i], 9, bs + 8, bs - 3, 1);
    }
}

typedef struct kset {
    const char *name;
    tpi_qdot_fn (*pick)(tpi_dtype);
    int (*have)(void);
} kset;

static const kset ksets[] = {{"avx2", tpi_avx2_qdot, tpi_cpu_has_avx2},
                             {"avx512-vnni", tpi_avx512_qdot, tpi_cpu_has_avx512_vnni}};

static void fast_case(const kset *ks, tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off, int64_t n)
{
    float *deq;
    tpi_weight w = make_qweight(t, rows, cols, k_off, &deq);
    float *x = rand_vec((size_t)(n * cols), 1.0f), *got = xmalloc((size_t)(n * rows) * 4);
    float *want = xmalloc((size_t)(n * rows) * 4);
    double *wd = xmalloc((size_t)(n * rows) * 8);
    tpi_qmatmul_ref(want, x, n, &w);
    for (int64_t i = 0; i < n * rows; i++) {
        got[i] = NAN;
        wd[i] = want[i];
    }
    const tpi_weight *ws[1] = {&w};
    float *ys[1] = {got};
    tpi_qmatmul(1, ys, x, n, ws, ks->pick, NULL, NULL); /* unpacked: the row kernels */
    char what[128];
    snprintf(what, sizeof what, "%s %s [%lld, %lld] k_off %lld n %lld", ks->name, tpi_dtype_name(t), (long long)rows,
             (long long)cols, (long long)k_off, (long long)n);
    expect_close(got, wd, (size_t)(n * rows), 1e-5, what);
    (void)max_abs;
    free((void *)w.data), free(deq), free(x), free(got), free(want), free(wd);
}

static void kernel_set(const kset *ks)
{
    if (!ks->have()) {
        printf("skipped: this processor lacks the %s set\n", ks->name);
        skip();
    }
    for (size_t i = 0; i < 4; i++) {
        int64_t bs = tpi_dtype_block(qtypes[i]);
        for (int64_t n = 1; n <= 4; n++) /* decode */
            fast_case(ks, qtypes[i], 16 * 3 + 5, (bs == 32 ? 64 : 8) * bs, 0, n);
        for (int64_t n = 5; n <= 70; n += 13) /* prefill */
            fast_case(ks, qtypes[i], 16 * 2 + 11, (bs == 32 ? 24 : 3) * bs, 0, n);
        fast_case(ks, qtypes[i], 7, 1 * bs, 0, 9);
        fast_case(ks, qtypes[i], 19, 5 * bs - 21, 13, 3);  /* k_off, cols off the block grid */
        fast_case(ks, qtypes[i], 40, 2 * bs - 1, bs - 1, 11);
        fast_case(ks, qtypes[i], 33, 4 * bs, bs / 2, 2);
    }
}

static void test_avx2(void **state)
{
    (void)state;
    kernel_set(&ksets[0]);
}

static void test_avx512_vnni(void **state)
{
    (void)state;
    kernel_set(&ksets[1]);
}

/* Through the backend: one matmul_multi call mixing Q4_K, Q6_K and an f32
 * weight (a Q4_K_M file's q, v and a float weight), against the reference
 * backend, on the fastest set. */
static void test_backend_multi(void **state)
{
    (void)state;
    const tpi_backend *fast = tpi_backend_cpu(), *ref = tpi_backend_cpu_ref();
    int64_t cols = 512, n_list[] = {1, 3, 9};
    float *d1, *d2;
    tpi_weight a = make_qweight(TPI_Q4_K, 70, cols, 0, &d1), b = make_qweight(TPI_Q6_K, 33, cols, 0, &d2);
    float *fw = rand_vec((size_t)(20 * cols), 0.05f);
    tpi_weight c = {.dtype = TPI_F32, .rows = 20, .cols = cols, .data = fw};
    /* packed where the type has a packed layout (test_quant_pack.c), else
     * computed where it lies */
    assert_int_equal(fast->prepare_weight ? fast->prepare_weight(&a) : 0, 0);
    assert_true(!a.packed == !(fast->prepare_weight && tpi_qpack_group_bytes(TPI_Q4_K, 2)));
    for (size_t k = 0; k < 3; k++) {
        int64_t n = n_list[k];
        float *x = rand_vec((size_t)(n * cols), 1.0f);
        float *got[3], *want[3];
        const tpi_weight *ws[3] = {&a, &b, &c};
        for (int i = 0; i < 3; i++) {
            got[i] = xmalloc((size_t)(n * ws[i]->rows) * 4);
            want[i] = xmalloc((size_t)(n * ws[i]->rows) * 4);
        }
        fast->matmul_multi(3, got, x, n, ws);
        ref->matmul_multi(3, want, x, n, ws);
        for (int i = 0; i < 3; i++) {
            size_t m = (size_t)(n * ws[i]->rows);
            double *wd = xmalloc(m * 8);
            for (size_t j = 0; j < m; j++)
                wd[j] = want[i][j];
            expect_close(got[i], wd, m, 1e-5, "backend matmul_multi");
            free(wd), free(got[i]), free(want[i]);
        }
        free(x);
    }
    free((void *)a.data), free(a.packed), free((void *)b.data), free(fw), free(d1), free(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_golden), cmocka_unit_test(test_quant_roundtrip),
        cmocka_unit_test(test_ref_vs_double),  cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512_vnni),    cmocka_unit_test(test_backend_multi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
