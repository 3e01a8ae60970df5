/* The bf16-dot prefill GEMM (the cpu-avx512 set's bf16 variant,
 * gemm_bf16_avx512.c through matmul.c) against a reference that rounds the
 * activations to bf16 (nearest even) and accumulates the exact products in
 * double, on random shapes with ragged edges in every tile dimension.
 *
 * Bound, per output: |got - want| <= (K + 2) * 2^-24 * sum_k |x_k w_k|.
 * A bf16 x bf16 product is exact in fp32 (8 + 8 significant bits), so the
 * only errors are the kernel's fp32 additions, at most K + 1 of them on the
 * path to each output (the tile adds across k slices included), each within
 * half an ulp of its partial sum: the classic recursive-summation bound.
 * Activations truncated instead of rounded, or a k pair misplaced, are off
 * by ~2^-9 relative, far outside it.
 *
 * Decode (n <= 4 rows) keeps fp32 activations; other dtypes are untouched.
 * Every output starts as NaN, so one the GEMM leaves unwritten fails. */
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
#include "testutil.h"

static const tpi_backend *bf;

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static float frand(void) /* uniform in [-1, 1), splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

/* A bf16 weight [rows, cols] at a `misalign`ed address; *block to free. */
static tpi_weight make_weight(tpi_dtype dt, int64_t rows, int64_t cols, size_t misalign, void **block)
{
    size_t es = tpi_dtype_size(dt), n = (size_t)rows * (size_t)cols;
    uint8_t *b = malloc(n * es + misalign + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        float f = frand();
        uint16_t h = dt == TPI_BF16 ? tpi_f32_to_bf16(f) : tpi_f32_to_f16(f);
        if (dt == TPI_F32)
            memcpy(b + misalign + i * 4, &f, 4);
        else
            memcpy(b + misalign + i * 2, &h, 2);
    }
    *block = b;
    return (tpi_weight){.dtype = dt, .rows = rows, .cols = cols, .data = b + misalign};
}

static float weight_at(const tpi_weight *w, int64_t o, int64_t k)
{
    const uint8_t *p = (const uint8_t *)w->data + ((size_t)o * (size_t)w->cols + (size_t)k) * tpi_dtype_size(w->dtype);
    uint16_t h;
    float f;
    if (w->dtype == TPI_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    return w->dtype == TPI_BF16 ? tpi_bf16_to_f32(h) : tpi_f16_to_f32(h);
}

/* got against x rounded to bf16 (round_x) or as is, times w, in double:
 * fails past the bound above, scaled by `slack` (1: the bf16 GEMM). */
static void check(const float *got, const float *x, int64_t n, const tpi_weight *w, int round_x, double slack,
                  const char *what)
{
    int64_t K = w->cols;
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < w->rows; o++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                float xv = x[i * K + k];
                double a = round_x ? tpi_bf16_to_f32(tpi_f32_to_bf16(xv)) : xv, p = a * weight_at(w, o, k);
                s += p;
                mag += fabs(p);
            }
            double err = fabs((double)got[i * w->rows + o] - s), bound = slack * (double)(K + 2) * 0x1p-24 * mag;
            if (!(err <= bound)) {
                print_error("%s: y[%lld][%lld] = %.9g, want %.9g (error %g > bound %g)\n", what, (long long)i,
                            (long long)o, got[i * w->rows + o], s, err, bound);
                fail();
            }
        }
}

static void gemm_case(int64_t rows, int64_t cols, int64_t n, size_t misalign, int prepare)
{
    void *block;
    tpi_weight w = make_weight(TPI_BF16, rows, cols, misalign, &block);
    if (prepare)
        assert_int_equal(bf->prepare_weight(&w), 0);
    float *x = malloc((size_t)(n * cols) * sizeof *x), *y = malloc((size_t)(n * rows) * sizeof *y);
    assert_true(x && y);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand() * 3.0f;
    for (int64_t i = 0; i < n * rows; i++)
        y[i] = NAN; /* every output must be written */
    bf->matmul(y, x, n, &w);
    char what[128];
    snprintf(what, sizeof what, "bf16 GEMM [%lld, %lld] n=%lld%s", (long long)rows, (long long)cols, (long long)n,
             prepare ? " prepared" : "");
    /* decode rows keep fp32 activations (accumulated in fp32 as well) */
    check(y, x, n, &w, n > 4, 1.0, what);
    free(w.packed);
    free(block);
    free(x);
    free(y);
}

/* Edge tiles: rows (outputs) around the 16- and 32-wide tiles, K odd and
 * even around the 512-k slices, n around the 6-row blocks and the 192-row
 * work units. */
static void test_shapes(void **state)
{
    (void)state;
    static const int64_t rows[] = {1, 15, 16, 17, 31, 32, 33, 48, 100};
    static const int64_t cols[] = {1, 2, 3, 64, 511, 512, 513, 1100};
    static const int64_t ns[] = {3, 5, 6, 7, 13, 64};
    int t = 0;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++, t++)
                gemm_case(rows[r], cols[c], ns[i], (size_t)t % 3, t % 2);
    gemm_case(40, 1025, 390, 1, 1); /* several row-block units and k slices, ragged */
}

/* Few rows (a serve step's decode batch, n <= 32): each panel streamed once
 * with all the rows in registers, two panels a tile up to 12 rows, passes
 * of 18 rows beyond; n = 1..4 is the GEMV (fp32 activations). Outputs not
 * a multiple of 16 or 32 (masked stores, a lone last panel), K odd and
 * around the packing's 16-k chunks; n = 33 and 37 are the first prefill
 * shapes past the streaming ones. */
static void test_few_rows(void **state)
{
    (void)state;
    static const int64_t rows[] = {1, 17, 40, 100};
    static const int64_t cols[] = {1, 15, 16, 17, 33, 130};
    static const int64_t more[] = {24, 31, 32, 33, 37};
    int t = 0;
    for (int64_t n = 1; n <= 25; n++, t++)
        gemm_case(rows[t % 4], cols[t % 6], n <= 20 ? n : more[n - 21], (size_t)t % 3, t % 2);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++, t++)
            gemm_case(rows[r], cols[c], 16, (size_t)t % 3, t % 2);
}

static void test_random(void **state)
{
    (void)state;
    for (int t = 0; t < 30; t++) {
        int64_t rows = 1 + (int64_t)((frand() + 1) * 80), cols = 1 + (int64_t)((frand() + 1) * 700);
        int64_t n = 5 + (int64_t)((frand() + 1) * 120);
        gemm_case(rows, cols, n, (size_t)t % 5, t % 2);
    }
}

/* q, k, v of mixed dtypes in one call: the bf16 weight gets bf16 activations,
 * the f16 and f32 ones the fp32 activations (bound: fp32 summation). */
static void test_mixed(void **state)
{
    (void)state;
    static const tpi_dtype dts[] = {TPI_F16, TPI_BF16, TPI_F32};
    const int64_t n = 29, K = 301;
    tpi_weight w[3];
    const tpi_weight *wp[3];
    void *block[3];
    float *y[3], *x = malloc((size_t)(n * K) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n * K; i++)
        x[i] = frand();
    for (int i = 0; i < 3; i++) {
        w[i] = make_weight(dts[i], 20 + 7 * i, K, (size_t)i, &block[i]);
        wp[i] = &w[i];
        assert_non_null(y[i] = malloc((size_t)(n * w[i].rows) * sizeof(float)));
    }
    bf->matmul_multi(3, y, x, n, wp);
    for (int i = 0; i < 3; i++) {
        check(y[i], x, n, &w[i], dts[i] == TPI_BF16, 1.0, tpi_dtype_name(dts[i]));
        free(block[i]);
        free(y[i]);
    }
    free(x);
}

static void test_threads(void **state)
{
    (void)state;
    omp_set_num_threads(3);
    gemm_case(70, 300, 50, 1, 1);
    omp_set_num_threads(1);
    gemm_case(70, 301, 50, 2, 1);
    omp_set_num_threads(2);
}

int main(void)
{
    const tpi_backend *avx512 = NULL;
    if (tpi_backend_cpu_select("avx512", &avx512))
        return 1;
    bf = tpi_backend_cpu_bf16(avx512);
    if (bf == avx512) {
        printf("skipped: this processor lacks AVX512_BF16 (or AVX-512F/BW), so the bf16-dot GEMM never runs\n");
        return TU_SKIP;
    }
    assert_string_equal(tpi_backend_cpu_set(bf), "avx512+bf16");
    /* the variant applies to the AVX-512 set alone */
    const tpi_backend *avx2 = NULL;
    tpi_backend_cpu_select("avx2", &avx2);
    if (tpi_backend_cpu_bf16(avx2) != avx2)
        return 1;
    omp_set_num_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_few_rows),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("bf16-dot GEMM", tests, NULL, NULL);
}
