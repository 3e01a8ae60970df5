/* Q4_K and Q6_K weights packed eight rows at a time (backend/cpu/
 * quant_pack_k.c, quant_pack_k_simd.h):
 *  - packing then unpacking gives back every row's blocks byte for byte,
 *    and the padding rows of the last group unpack to zero blocks;
 *  - the packed reference kernel against the unpacked reference path
 *    (tpi_qmatmul_ref) on weights from tpi_quant_row, k_off = 0 and not;
 *  - each SIMD set's packed kernels against the packed reference on random
 *    blocks (any bytes), quantized rows (with all-zero rows: zero scales)
 *    and extreme blocks (every quant and scale at its limit against
 *    activations of +-127, the int16 sums' worst case), m = 1..12.
 * Integer sums are exact, so outputs differ only by the fp32 summation
 * order: max|got - want| <= 1e-5 * max|want| of each call. A set this
 * processor lacks is reported skipped. */
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

static const tpi_dtype ktypes[] = {TPI_Q4_K, TPI_Q6_K};

static uint64_t rng_state = 0x13198a2e03707344ull;

static uint64_t next64(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((double)(next64() >> 40) / (double)(1ull << 23) - 1.0);
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

typedef enum blocks_kind {
    B_QUANT,   /* tpi_quant_row of random rows, every fifth row all zeros */
    B_RANDOM,  /* random bytes, finite scales */
    B_EXTREME, /* every quant and scale at its limit */
} blocks_kind;

/* rows x nb blocks of type t, row r at r * nb * block bytes. */
static uint8_t *make_blocks(tpi_dtype t, int64_t rows, int64_t nb, blocks_kind kind)
{
    size_t bb = (size_t)tpi_dtype_block_bytes(t), rb = (size_t)nb * bb;
    uint8_t *w = xmalloc((size_t)rows * rb);
    float *f = xmalloc((size_t)nb * 256 * sizeof *f);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * rb;
        if (kind == B_QUANT) {
            for (int64_t e = 0; e < nb * 256; e++)
                f[e] = r % 5 == 4 ? 0.0f : (frand() + frand() + frand()) * 0.05f;
            assert_int_equal(tpi_quant_row(t, f, row, nb * 256), 0);
            continue;
        }
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = row + (size_t)b * bb;
            for (size_t i = 0; i < bb; i++)
                blk[i] = kind == B_RANDOM ? (uint8_t)next64() : 0xff;
            uint16_t d = tpi_f32_to_f16(kind == B_RANDOM ? frand() * 0.01f : 0.01f);
            if (t == TPI_Q4_K) {
                tpi_block_q4_k *q = (tpi_block_q4_k *)(void *)blk;
                q->d = d;
                q->dmin = tpi_f32_to_f16(kind == B_RANDOM ? frand() * 0.01f : 0.003f);
            } else {
                tpi_block_q6_k *q = (tpi_block_q6_k *)(void *)blk;
                q->d = d;
                if (kind == B_EXTREME) /* the int8 scales' both ends */
                    for (int g = 0; g < 16; g++)
                        q->scales[g] = (int8_t)(g % 3 ? -128 : 127);
            }
        }
    }
    free(f);
    return w;
}

/* The rows packed: ceil(rows / 8) groups of gb bytes. */
static uint8_t *pack(tpi_dtype t, const uint8_t *w, int64_t rows, int64_t nb, size_t *gb)
{
    *gb = tpi_qpack_group_bytes_k(t, nb);
    assert_true(*gb > 0);
    uint8_t *p = xmalloc(*gb * (size_t)((rows + 7) / 8));
    memset(p, 0xa5, *gb * (size_t)((rows + 7) / 8)); /* every byte must be written */
    tpi_qpack_k(t, w, (size_t)nb * (size_t)tpi_dtype_block_bytes(t), rows, nb, p);
    return p;
}

/* ---- layout ---- */

static void roundtrip_case(tpi_dtype t, int64_t rows, int64_t nb, blocks_kind kind)
{
    size_t bb = (size_t)tpi_dtype_block_bytes(t), rb = (size_t)nb * bb, gb;
    uint8_t *w = make_blocks(t, rows, nb, kind), *p = pack(t, w, rows, nb, &gb);
    uint8_t *back = xmalloc(rb), *zero = calloc(1, rb);
    assert_non_null(zero);
    for (int64_t r = 0; r < (rows + 7) / 8 * 8; r++) {
        memset(back, 0x5a, rb);
        tpi_qunpack_row_k(t, p + (size_t)(r / 8) * gb, nb, (int)(r % 8), back);
        if (memcmp(back, r < rows ? w + (size_t)r * rb : zero, rb)) {
            print_error("%s rows %lld nb %lld: row %lld unpacks differently\n", tpi_dtype_name(t), (long long)rows,
                        (long long)nb, (long long)r);
            fail();
        }
    }
    free(w), free(p), free(back), free(zero);
}

static void test_roundtrip(void **state)
{
    (void)state;
    const int64_t rows[] = {1, 7, 8, 13, 24};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            for (int64_t nb = 1; nb <= 4; nb++)
                for (int kind = B_QUANT; kind <= B_EXTREME; kind++)
                    roundtrip_case(ktypes[k], rows[i], nb, (blocks_kind)kind);
}

static void test_sizes(void **state)
{
    (void)state;
    /* the layouts as quant_pack_k.c states them: 1184 and 1680 bytes an x8 block */
    assert_int_equal(tpi_qpack_group_bytes_k(TPI_Q4_K, 3), 3 * 1184);
    assert_int_equal(tpi_qpack_group_bytes_k(TPI_Q6_K, 5), 5 * 1680);
    const tpi_dtype others[] = {TPI_F32, TPI_BF16, TPI_Q8_0, TPI_Q4_0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(tpi_qpack_group_bytes_k(others[i], 4), 0);
        assert_null(tpi_ref_qpdot_k(others[i]));
        assert_null(tpi_avx2_qpdot_k(others[i]));
        assert_null(tpi_avx512_qpdot_k(others[i]));
    }
}

/* ---- kernels ---- */

static void expect_close(const float *got, const float *want, size_t n, const char *what)
{
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        m = fmax(m, fabs(want[i]));
        if (!(d <= e)) /* a NaN (an output never written) sticks */
            e = d;
    }
    if (!(e <= 1e-5 * m)) {
        print_error("%s: max error %g > 1e-5 * max|ref| %g\n", what, e, m);
        fail();
    }
}

/* The packed reference against tpi_qmatmul_ref on the same weight: a
 * [rows, cols] slice at k_off of rows quantized by tpi_quant_row. */
static void ref_case(tpi_dtype t, int64_t rows, int64_t cols, int64_t k_off, int64_t n)
{
    tpi_weight w = {.dtype = t, .rows = rows, .cols = cols, .k_off = k_off};
    int64_t nb = tpi_qweight_blocks(&w), rp = (rows + 7) / 8 * 8;
    size_t gb, arb = tpi_qact_row_bytes(t, nb);
    uint8_t *blocks = make_blocks(t, rows, nb, B_QUANT), *p = pack(t, blocks, rows, nb, &gb);
    w.data = blocks;
    float *x = xmalloc((size_t)(n * cols) * sizeof *x), *want = xmalloc((size_t)(n * rows) * sizeof *want);
    float *got = xmalloc((size_t)(n * rp) * sizeof *got), *gw = xmalloc((size_t)(n * rows) * sizeof *gw);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand();
    tpi_qmatmul_ref(want, x, n, &w);
    uint8_t *act = xmalloc((size_t)n * arb);
    for (int64_t i = 0; i < n; i++)
        tpi_qact_quantize(t, x + i * cols, cols, k_off, nb, act + (size_t)i * arb);
    for (int64_t i = 0; i < n * rp; i++)
        got[i] = NAN;
    for (int64_t g = 0; g < rp / 8; g++)
        tpi_ref_qpdot_k(t)(nb, p + (size_t)g * gb, act, arb, (int)n, got + 8 * g, rp);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < rp; o++) {
            if (o < rows)
                gw[i * rows + o] = got[i * rp + o];
            else
                assert_true(got[i * rp + o] == 0.0f); /* padding rows */
        }
    char what[128];
    snprintf(what, sizeof what, "packed ref %s [%lld, %lld] k_off %lld n %lld", tpi_dtype_name(t), (long long)rows,
             (long long)cols, (long long)k_off, (long long)n);
    expect_close(gw, want, (size_t)(n * rows), what);
    free(blocks), free(p), free(x), free(want), free(got), free(gw), free(act);
}

static void test_ref_vs_unpacked(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        ref_case(ktypes[k], 8, 256, 0, 1);
        ref_case(ktypes[k], 21, 3 * 256, 0, 3);
        ref_case(ktypes[k], 13, 2 * 256 - 40, 17, 9);   /* a rank's slice off the block grid */
        ref_case(ktypes[k], 5, 256 + 8, 256 - 3, 2);
        ref_case(ktypes[k], 30, 5 * 256, 0, 12);
    }
}

typedef struct kset {
    const char *name;
    tpi_qpdot_fn (*pick)(tpi_dtype);
    int (*have)(void);
} kset;

static const kset ksets[] = {{"avx2", tpi_avx2_qpdot_k, tpi_cpu_has_avx2},
                             {"avx512-vnni", tpi_avx512_qpdot_k, tpi_cpu_has_avx512_vnni}};

/* Activations: random, or (extreme) every x equal to +1 or -1, so that
 * every quant is +-127. */
static void fill_x(float *x, int64_t n, blocks_kind kind, int64_t r)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = kind == B_EXTREME ? (r % 2 ? -1.0f : 1.0f) : frand() * (1.0f + (float)r);
}

/* One set's kernel against the packed reference, every group of a
 * rows x nb weight, m activation rows (a_stride with a gap, y_stride not 8). */
static void simd_case(const kset *ks, tpi_dtype t, int64_t rows, int64_t nb, int m, blocks_kind kind)
{
    size_t gb, arb = tpi_qact_row_bytes(t, nb), as = arb + 48;
    int64_t groups = (rows + 7) / 8, ys = 8 * groups + 3;
    uint8_t *w = make_blocks(t, rows, nb, kind), *p = pack(t, w, rows, nb, &gb);
    uint8_t *act = xmalloc((size_t)m * as);
    float *x = xmalloc((size_t)nb * 256 * sizeof *x);
    for (int r = 0; r < m; r++) {
        fill_x(x, nb * 256, kind, r);
        tpi_qact_quantize(t, x, nb * 256, 0, nb, act + (size_t)r * as);
    }
    float *want = xmalloc((size_t)(m * ys) * sizeof *want), *got = xmalloc((size_t)(m * ys) * sizeof *got);
    tpi_qpdot_fn fast = ks->pick(t), ref = tpi_ref_qpdot_k(t);
    assert_non_null(fast);
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t i = 0; i < m * ys; i++)
            want[i] = got[i] = NAN;
        ref(nb, p + (size_t)g * gb, act, as, m, want + 8 * g, ys);
        fast(nb, p + (size_t)g * gb, act, as, m, got + 8 * g, ys);
        float gg[8 * 16], ww[8 * 16];
        for (int r = 0; r < m; r++)
            for (int i = 0; i < 8; i++) {
                gg[8 * r + i] = got[r * ys + 8 * g + i];
                ww[8 * r + i] = want[r * ys + 8 * g + i];
                if (8 * g + i >= rows)
                    assert_true(gg[8 * r + i] == 0.0f && ww[8 * r + i] == 0.0f);
            }
        char what[160];
        snprintf(what, sizeof what, "%s %s rows %lld nb %lld m %d kind %d group %lld", ks->name, tpi_dtype_name(t),
                 (long long)rows, (long long)nb, m, (int)kind, (long long)g);
        expect_close(gg, ww, (size_t)(8 * m), what);
    }
    free(w), free(p), free(act), free(x), free(want), free(got);
}

static void kernel_set(const kset *ks)
{
    if (!ks->have()) {
        printf("skipped: this processor lacks the %s set\n", ks->name);
        skip();
    }
    for (size_t k = 0; k < 2; k++) {
        for (int m = 1; m <= 12; m++)
            simd_case(ks, ktypes[k], 8 + 5 * (m % 3), 1 + m % 4, m, B_QUANT);
        for (int m = 1; m <= 9; m += 2) {
            simd_case(ks, ktypes[k], 19, 3, m, B_RANDOM);
            simd_case(ks, ktypes[k], 8, 2, m, B_EXTREME);
        }
        simd_case(ks, ktypes[k], 3, 6, 16, B_RANDOM);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_ref_vs_unpacked),
        cmocka_unit_test(test_avx2),         cmocka_unit_test(test_avx512_vnni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
