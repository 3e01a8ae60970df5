/* Block-type weights packed eight rows at a time (backend/cpu/quant_pack.h),
 * for every type whose group bytes are not 0:
 *  - pack then unpack gives every row back bit for bit, and the padding
 *    rows of the last group as zero blocks;
 *  - each set's packed kernel (reference, AVX2, AVX-512 VNNI) against the
 *    unpacked reference dot (quant_ref.c) of the same rows, on random bytes
 *    as quants (Q8_0's -128 included), random scales with zeros among them,
 *    nb a multiple of 8 and not, m = 1..8 and beyond, strided activation
 *    and output rows: the reference packed Q8_0/Q4_0 kernels bit for bit
 *    (the same operations in the same order), the others within 1e-5 *
 *    max|ref| (the same integer sums, scaled in another fp32 order);
 *  - AVX-512's kernels on two groups at once (prefill's) against its
 *    eight-row kernels on each group, bit for bit (the same lane
 *    operations), the second group's padding rows included;
 *  - the driver (tpi_qmatmul) on a packed weight with rows not a multiple of
 *    8, k_off != 0, decode and prefill row counts, its plain rows freed,
 *    against tpi_qmatmul_ref on the plain weight (1e-5); tpi_qmatmul_ref on
 *    the packed weight alone equals it bit for bit;
 *  - the backend's prepare_weight packs these types, and its matmul on the
 *    packed weight matches the reference backend's.
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

static const tpi_dtype qtypes[] = {TPI_Q8_0, TPI_Q4_0, TPI_Q4_K, TPI_Q6_K};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((double)(rnd() >> 40) / (double)(1ull << 23) - 1.0);
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* The fp16 scale offsets of a block of type t (the rest are quants). */
static int scale_offsets(tpi_dtype t, int off[2])
{
    switch (t) {
    case TPI_Q4_K: off[0] = 0, off[1] = 2; return 2;
    case TPI_Q6_K: off[0] = 208; return 1;
    default: off[0] = 0; return 1;
    }
}

/* rows x nb random blocks of type t: random bytes, with finite fp16 scales,
 * every seventh block's zero. */
static uint8_t *rand_blocks(tpi_dtype t, int64_t rows, int64_t nb)
{
    int64_t bb = tpi_dtype_block_bytes(t), n = rows * nb;
    uint8_t *p = xmalloc((size_t)(n * bb));
    for (int64_t i = 0; i < n * bb; i++)
        p[i] = (uint8_t)rnd();
    int off[2], ns = scale_offsets(t, off);
    for (int64_t b = 0; b < n; b++)
        for (int s = 0; s < ns; s++) {
            uint16_t h = b % 7 == 3 ? 0 : tpi_f32_to_f16(frand() * 0.01f);
            memcpy(p + b * bb + off[s], &h, 2);
        }
    return p;
}

static int64_t n_groups(int64_t rows)
{
    return (rows + TPI_QPACK_ROWS - 1) / TPI_QPACK_ROWS;
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const int64_t rows_list[] = {1, 8, 13, 21}, nb_list[] = {1, 3, 9};
    int tested = 0;
    for (size_t ti = 0; ti < 4; ti++) {
        tpi_dtype t = qtypes[ti];
        if (!tpi_qpack_group_bytes(t, 1))
            continue;
        tested++;
        for (size_t ri = 0; ri < 4; ri++)
            for (size_t ni = 0; ni < 3; ni++) {
                int64_t rows = rows_list[ri], nb = nb_list[ni], rb = nb * tpi_dtype_block_bytes(t);
                size_t gb = tpi_qpack_group_bytes(t, nb);
                uint8_t *src = rand_blocks(t, rows, nb), *packed = xmalloc(gb * (size_t)n_groups(rows));
                uint8_t *row = xmalloc((size_t)rb), *zero = calloc(1, (size_t)rb);
                tpi_qpack(t, src, (size_t)rb, rows, nb, packed);
                for (int64_t r = 0; r < n_groups(rows) * TPI_QPACK_ROWS; r++) {
                    tpi_qunpack_row(t, packed + (size_t)(r / TPI_QPACK_ROWS) * gb, nb, (int)(r % TPI_QPACK_ROWS),
                                    row);
                    assert_memory_equal(row, r < rows ? src + r * rb : zero, (size_t)rb);
                }
                free(src), free(packed), free(row), free(zero);
            }
    }
    assert_true(tested >= 2); /* Q8_0 and Q4_0 at least */
}

/* ---- the kernels ---- */

typedef struct pset {
    const char *name;
    tpi_qpdot_fn (*pick)(tpi_dtype);
    int (*have)(void);
    tpi_qpdot_fn (*pick16)(tpi_dtype); /* the driver's kernels on two groups, or NULL */
} pset;

static int have_always(void)
{
    return 1;
}

static const pset psets[] = {
    {"ref", tpi_ref_qpdot, have_always, NULL},
    {"avx2", tpi_avx2_qpdot, tpi_cpu_has_avx2, NULL},
    {"avx512-vnni", tpi_avx512_qpdot, tpi_cpu_has_avx512_vnni, tpi_avx512_qpdot16},
};

/* m activation rows of nb blocks for type t (x at block position k_off),
 * `as` bytes apart (>= the row's bytes). */
static uint8_t *rand_acts(tpi_dtype t, int64_t nb, int64_t k_off, int m, size_t as)
{
    int64_t bs = tpi_dtype_block(t), cols = nb * bs - k_off;
    uint8_t *a = calloc((size_t)m, as);
    float *x = xmalloc((size_t)cols * sizeof *x);
    assert_non_null(a);
    for (int r = 0; r < m; r++) {
        for (int64_t c = 0; c < cols; c++)
            x[c] = frand() * (c % 97 == 5 ? 8.0f : 1.0f);
        tpi_qact_quantize(t, x, cols, k_off, nb, a + (size_t)r * as);
    }
    free(x);
    return a;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* One packed group of `rows` (<= 8) random rows against m activation rows:
 * the set's kernel against the unpacked reference dot of each row. */
static void kernel_case(const pset *ps, tpi_dtype t, int rows, int64_t nb, int m)
{
    int64_t rb = nb * tpi_dtype_block_bytes(t);
    size_t gb = tpi_qpack_group_bytes(t, nb), as = tpi_qact_row_bytes(t, nb) + 64;
    uint8_t *src = rand_blocks(t, rows, nb), *g = xmalloc(gb), *a = rand_acts(t, nb, 0, m, as);
    tpi_qpack(t, src, (size_t)rb, rows, nb, g);
    const int64_t ys = TPI_QPACK_ROWS + 5;
    float *got = xmalloc((size_t)(m * ys) * sizeof *got), *want = xmalloc((size_t)(m * ys) * sizeof *want);
    for (int64_t i = 0; i < m * ys; i++)
        got[i] = NAN, want[i] = 0;
    for (int i = 0; i < rows; i++)
        tpi_ref_qdot(t)(nb, src + i * rb, a, as, m, want + i, ys);
    tpi_qpdot_fn pdot = ps->pick(t);
    assert_non_null(pdot);
    pdot(nb, g, a, as, m, got, ys);
    /* quant_pack.c's reference kernels repeat quant_ref.c's operations */
    int exact = ps->pick == tpi_ref_qpdot && (t == TPI_Q8_0 || t == TPI_Q4_0);
    double tol = exact ? 0 : 1e-5 * max_abs(want, (size_t)(m * ys));
    for (int r = 0; r < m; r++) {
        for (int i = 0; i < TPI_QPACK_ROWS; i++) {
            float w = want[r * ys + i], x = got[r * ys + i];
            if (!(fabs(x - w) <= tol)) { /* a NaN (never written) fails too */
                print_error("%s %s rows %d nb %lld m %d: y[%d][%d] = %.9g, reference %.9g\n", ps->name,
                            tpi_dtype_name(t), rows, (long long)nb, m, r, i, x, w);
                fail();
            }
        }
        for (int64_t i = TPI_QPACK_ROWS; i < ys; i++) /* past the group's eight: untouched */
            assert_true(isnan(got[r * ys + i]));
    }
    free(src), free(g), free(a), free(got), free(want);
}

static void kernel_set(const pset *ps)
{
    if (!ps->have()) {
        printf("skipped: this processor lacks the %s set\n", ps->name);
        skip();
    }
    static const int64_t nb_list[] = {1, 5, 8, 9, 17};
    for (size_t ti = 0; ti < 4; ti++) {
        tpi_dtype t = qtypes[ti];
        if (!tpi_qpack_group_bytes(t, 1) || !ps->pick(t))
            continue; /* no packed layout, or this set keeps its unpacked kernels */
        for (size_t ni = 0; ni < 5; ni++)
            for (int m = 1; m <= 12; m++)
                kernel_case(ps, t, m % 3 ? 8 : 5, nb_list[ni], m);
        kernel_case(ps, t, 8, 3, 16);
        kernel_case(ps, t, 1, 2, 20);
    }
}

static void test_kernels_ref(void **state)
{
    (void)state;
    kernel_set(&psets[0]);
}

static void test_kernels_avx2(void **state)
{
    (void)state;
    kernel_set(&psets[1]);
}

static void test_kernels_avx512(void **state)
{
    (void)state;
    kernel_set(&psets[2]);
}

/* AVX-512's kernel on two groups (rows 8 + rows2 < 16 of them real, the
 * rest padding) against its eight-row kernel on each group: the same
 * operations per lane, so the same bits; columns past 16 untouched. */
static void x16_case(tpi_dtype t, int rows2, int64_t nb, int m)
{
    int rows = TPI_QPACK_ROWS + rows2;
    int64_t rb = nb * tpi_dtype_block_bytes(t);
    size_t gb = tpi_qpack_group_bytes(t, nb), as = tpi_qact_row_bytes(t, nb) + 64;
    uint8_t *src = rand_blocks(t, rows, nb), *g = xmalloc(2 * gb), *a = rand_acts(t, nb, 0, m, as);
    tpi_qpack(t, src, (size_t)rb, rows, nb, g);
    const int64_t ys = 2 * TPI_QPACK_ROWS + 3;
    float *got = xmalloc((size_t)(m * ys) * sizeof *got), *want = xmalloc((size_t)(m * ys) * sizeof *want);
    for (int64_t i = 0; i < m * ys; i++)
        got[i] = want[i] = NAN;
    tpi_avx512_qpdot(t)(nb, g, a, as, m, want, ys);
    tpi_avx512_qpdot(t)(nb, g + gb, a, as, m, want + TPI_QPACK_ROWS, ys);
    tpi_avx512_qpdot16(t)(nb, g, a, as, m, got, ys);
    for (int r = 0; r < m; r++)
        for (int64_t i = 0; i < ys; i++) {
            float w = want[r * ys + i], x = got[r * ys + i];
            if (memcmp(&w, &x, sizeof w)) { /* the NaNs past 16 compare equal */
                print_error("x16 %s rows %d nb %lld m %d: y[%d][%lld] = %.9g, eight-row kernel %.9g\n",
                            tpi_dtype_name(t), rows, (long long)nb, m, r, (long long)i, x, w);
                fail();
            }
        }
    free(src), free(g), free(a), free(got), free(want);
}

static void test_kernels_avx512_x16(void **state)
{
    (void)state;
    if (!tpi_cpu_has_avx512_vnni()) {
        printf("skipped: this processor lacks the avx512-vnni set\n");
        skip();
    }
    static const int64_t nb_list[] = {1, 5, 8, 9, 17};
    for (size_t ti = 0; ti < 4; ti++) {
        tpi_dtype t = qtypes[ti];
        assert_non_null(tpi_avx512_qpdot16(t));
        for (size_t ni = 0; ni < 5; ni++)
            for (int m = 1; m <= 12; m++)
                x16_case(t, m % 3 ? 8 : 3, nb_list[ni], m);
        x16_case(t, 8, 3, 16);
        x16_case(t, 1, 2, 20);
    }
    assert_null(tpi_avx512_qpdot16(TPI_F32));
}

/* ---- the driver ---- */

/* A weight [rows, cols] of type t at k_off, of random blocks (data owned by
 * the caller). */
static tpi_weight make_weight(tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off)
{
    tpi_weight w = {.dtype = t, .rows = rows, .cols = cols, .k_off = k_off};
    w.data = rand_blocks(t, rows, tpi_qweight_blocks(&w));
    return w;
}

/* w packed as tpi_cpu_prepare_weight packs it, its plain rows gone. */
static tpi_weight packed_copy(const tpi_weight *w)
{
    tpi_weight p = *w;
    int64_t nb = tpi_qweight_blocks(w);
    size_t gb = tpi_qpack_group_bytes(w->dtype, nb);
    p.packed = xmalloc(gb * (size_t)n_groups(w->rows));
    p.packed_bytes = (int64_t)(gb * (size_t)n_groups(w->rows));
    tpi_qpack(w->dtype, w->data, (size_t)(nb * tpi_dtype_block_bytes(w->dtype)), w->rows, nb, p.packed);
    p.data = NULL;
    return p;
}

static void expect_close(const float *got, const float *want, size_t n, double rel, const char *what)
{
    double tol = rel * max_abs(want, n);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol)) {
            print_error("%s: y[%zu] = %.9g, reference %.9g (tolerance %g)\n", what, i, got[i], want[i], tol);
            fail();
        }
}

static void driver_case(const pset *ps, tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off, int64_t n)
{
    tpi_weight w = make_weight(t, rows, cols, k_off), p = packed_copy(&w);
    float *x = xmalloc((size_t)(n * cols) * sizeof *x), *want = xmalloc((size_t)(n * rows) * sizeof *want);
    float *got = xmalloc((size_t)(n * rows) * sizeof *got), *refp = xmalloc((size_t)(n * rows) * sizeof *refp);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand();
    for (int64_t i = 0; i < n * rows; i++)
        got[i] = NAN;
    tpi_qmatmul_ref(want, x, n, &w);
    tpi_qmatmul_ref(refp, x, n, &p);
    assert_memory_equal(refp, want, (size_t)(n * rows) * sizeof *want);
    const tpi_weight *ws[1] = {&p};
    float *ys[1] = {got};
    tpi_qmatmul(1, ys, x, n, ws, tpi_ref_qdot, ps->pick, ps->pick16);
    char what[128];
    snprintf(what, sizeof what, "%s %s [%lld, %lld] k_off %lld n %lld", ps->name, tpi_dtype_name(t),
             (long long)rows, (long long)cols, (long long)k_off, (long long)n);
    expect_close(got, want, (size_t)(n * rows), 1e-5, what);
    free((void *)w.data), free(p.packed), free(x), free(want), free(got), free(refp);
}

static void driver_set(const pset *ps)
{
    if (!ps->have()) {
        printf("skipped: this processor lacks the %s set\n", ps->name);
        skip();
    }
    for (size_t ti = 0; ti < 4; ti++) {
        tpi_dtype t = qtypes[ti];
        int64_t bs = tpi_dtype_block(t);
        if (!tpi_qpack_group_bytes(t, 1))
            continue;
        for (int64_t n = 1; n <= 4; n++) /* decode */
            driver_case(ps, t, 8 * 9 + 5, (bs == 32 ? 40 : 4) * bs, 0, n);
        for (int64_t n = 5; n <= 70; n += 13) /* prefill */
            driver_case(ps, t, 8 * 17 + 3, (bs == 32 ? 24 : 3) * bs, 0, n);
        driver_case(ps, t, 3, bs, 0, 9);
        driver_case(ps, t, 19, 5 * bs - 21, 13, 3);  /* k_off, cols off the block grid */
        driver_case(ps, t, 40, 2 * bs - 1, bs - 1, 11);
        driver_case(ps, t, 130, 9 * bs, bs / 2, 17);
    }
}

static void test_driver_ref(void **state)
{
    (void)state;
    driver_set(&psets[0]);
}

static void test_driver_avx2(void **state)
{
    (void)state;
    driver_set(&psets[1]);
}

static void test_driver_avx512(void **state)
{
    (void)state;
    driver_set(&psets[2]);
}

/* Through the fastest backend: prepare_weight packs the type (and again is a
 * no-op), and matmul on the packed weight with its plain rows gone matches
 * the reference backend on the plain weight. */
static void test_backend(void **state)
{
    (void)state;
    const tpi_backend *fast = tpi_backend_cpu(), *ref = tpi_backend_cpu_ref();
    if (!fast->prepare_weight) {
        printf("skipped: the %s backend packs nothing\n", fast->name);
        skip();
    }
    for (size_t ti = 0; ti < 4; ti++) {
        tpi_dtype t = qtypes[ti];
        int64_t bs = tpi_dtype_block(t), cols = 4 * bs, rows = 37;
        tpi_weight w = make_weight(t, rows, cols, 0), p = w;
        assert_int_equal(fast->prepare_weight(&p), 0);
        size_t gb = tpi_qpack_group_bytes(t, 4);
        if (!gb) {
            assert_null(p.packed); /* computed where it lies */
            free((void *)w.data);
            continue;
        }
        assert_non_null(p.packed);
        assert_int_equal(p.packed_bytes, (int64_t)gb * n_groups(rows));
        void *first = p.packed;
        p.data = NULL;
        assert_int_equal(fast->prepare_weight(&p), 0);
        assert_ptr_equal(p.packed, first);
        for (int64_t n = 1; n <= 9; n += 4) {
            float *x = xmalloc((size_t)(n * cols) * sizeof *x), *got = xmalloc((size_t)(n * rows) * 4);
            float *want = xmalloc((size_t)(n * rows) * 4);
            for (int64_t i = 0; i < n * cols; i++)
                x[i] = frand();
            fast->matmul(got, x, n, &p);
            ref->matmul(want, x, n, &w);
            expect_close(got, want, (size_t)(n * rows), 1e-5, "backend matmul on a packed weight");
            ref->matmul(got, x, n, &p);
            assert_memory_equal(got, want, (size_t)(n * rows) * 4);
            free(x), free(got), free(want);
        }
        free(p.packed), free((void *)w.data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_kernels_ref),
        cmocka_unit_test(test_kernels_avx2),  cmocka_unit_test(test_kernels_avx512),
        cmocka_unit_test(test_kernels_avx512_x16),
        cmocka_unit_test(test_driver_ref),    cmocka_unit_test(test_driver_avx2),
        cmocka_unit_test(test_driver_avx512), cmocka_unit_test(test_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
