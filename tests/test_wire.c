/* The all-reduce's wire encodings (comm/wire.h) against a reference written
 * here: bf16 rounding to nearest even, q8 blocks within half a step of the
 * input, sums in float32. Under mpirun (2 or more ranks, --allreduce mpi),
 * also the encoded all-reduce: every rank holds the same bits, within the
 * encoding's bound of the exact sum. */
#include <math.h>
#include <mpi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "comm/wire.h"
#include "testutil.h"
#include "tpinfer.h"

static float bits_to_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The reference bf16: the nearest of the two bf16 neighbours, ties to the
 * even one, found by comparing distances in double. */
static float ref_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    float lo = bits_to_f(u & 0xffff0000u), hi = bits_to_f((u & 0xffff0000u) + 0x10000u);
    double dl = fabs((double)x - lo), dh = fabs((double)hi - x);
    if (dl != dh)
        return dl < dh ? lo : hi;
    return ((u >> 16) & 1) ? hi : lo;
}

static float roundtrip(int kind, const float *x, int64_t n, float *out)
{
    unsigned char buf[4096];
    assert_true(tpi_wire_bytes(kind, n) <= sizeof buf);
    tpi_wire_encode(kind, x, n, buf);
    memset(out, 0, (size_t)n * sizeof *out);
    tpi_wire_add(kind, buf, n, out);
    return out[0];
}

static void test_sizes(void **s)
{
    (void)s;
    assert_int_equal(tpi_wire_bytes(TPI_WIRE_F32, 64), 256);
    assert_int_equal(tpi_wire_bytes(TPI_WIRE_BF16, 64), 128);
    assert_int_equal(tpi_wire_bytes(TPI_WIRE_Q8, 64), 2 * (4 + 32)); /* 1.125 bytes a value */
}

static void test_bf16_rounding(void **s)
{
    (void)s;
    float x[64], got[64];
    /* ties: 1 + 2^-8 goes down to 1 (even), 1 + 3 * 2^-8 up to 1 + 2^-6 */
    x[0] = 1.0f + 0x1p-8f, x[1] = 1.0f + 3 * 0x1p-8f, x[2] = -(1.0f + 0x1p-8f + 0x1p-20f);
    x[3] = INFINITY, x[4] = -0.0f, x[5] = 3.0e38f, x[6] = 1e-40f /* subnormal */;
    srand(7);
    for (int i = 7; i < 64; i++)
        x[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * powf(10.0f, (float)(i % 9 - 4));
    roundtrip(TPI_WIRE_BF16, x, 64, got);
    assert_true(got[0] == 1.0f && got[1] == 1.0f + 0x1p-6f && got[2] == -(1.0f + 0x1p-7f));
    assert_true(isinf(got[3]) && got[3] > 0 && got[4] == 0.0f);
    for (int i = 0; i < 64; i++)
        if (i != 3)
            assert_true(got[i] == ref_bf16(x[i]));
    x[0] = NAN;
    roundtrip(TPI_WIRE_BF16, x, 32, got);
    assert_true(isnan(got[0]));
}

static void test_q8_blocks(void **s)
{
    (void)s;
    float x[96], got[96];
    srand(11);
    for (int i = 0; i < 96; i++) /* three blocks of different magnitude; the middle one zero */
        x[i] = i < 32 ? (float)rand() / (float)RAND_MAX * 4 - 2 : i < 64 ? 0.0f : ((float)rand() / (float)RAND_MAX - 0.5f) * 1e-3f;
    roundtrip(TPI_WIRE_Q8, x, 96, got);
    for (int b = 0; b < 3; b++) {
        double amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmax(amax, fabs(x[b * 32 + i]));
        double step = amax / 127;
        for (int i = 0; i < 32; i++) {
            int k = b * 32 + i;
            assert_true(fabs((double)got[k] - x[k]) <= step / 2 * (1 + 1e-5) + 1e-30);
            /* the reference: round(x / step) * step */
            double want = step > 0 ? round(x[k] / step) * step : 0;
            assert_true(fabs(got[k] - want) <= 1e-6 * amax + 1e-30);
        }
    }
    /* integers up to 127 times a power of two come back exactly */
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i * 4 - 62) * 0.25f;
    x[5] = 127 * 0.25f;
    roundtrip(TPI_WIRE_Q8, x, 32, got);
    for (int i = 0; i < 32; i++)
        assert_true(got[i] == x[i]);
    x[9] = INFINITY;
    roundtrip(TPI_WIRE_Q8, x, 32, got);
    assert_true(isnan(got[0]) && isnan(got[31])); /* the block is lost, visibly */
}

/* tpi_wire_add accumulates: acc += decoded, in float32. */
static void test_add_accumulates(void **s)
{
    (void)s;
    float x[32], acc[32];
    unsigned char buf[256];
    for (int kind = TPI_WIRE_F32; kind <= TPI_WIRE_Q8; kind++) {
        for (int i = 0; i < 32; i++)
            x[i] = (float)i - 15.5f, acc[i] = 100.0f;
        tpi_wire_encode(kind, x, 32, buf);
        tpi_wire_add(kind, buf, 32, acc);
        for (int i = 0; i < 32; i++)
            assert_true(fabsf(acc[i] - (100.0f + x[i])) <= 0.07f);
    }
}

static void test_opts_validated(void **s)
{
    (void)s;
    tpi_comm *c = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_comm_create(&c, &(tpi_comm_opts){.kind = "self", .wire = 3}, NULL, NULL, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "tpi_comm_opts.wire: expected TPI_WIRE_F32, TPI_WIRE_BF16 or TPI_WIRE_Q8"));
}

/* ---- under mpirun: the encoded all-reduce ---- */

/* Rank r's value i: smooth plus a rank-dependent wiggle, so sums cancel. */
static float part(int r, int64_t i)
{
    return sinf(0.01f * (float)i * (float)(r + 1)) * (1.0f + 0.1f * (float)r) + (r % 2 ? -0.3f : 0.3f);
}

/* How far the encoded all-reduce may be from the exact sum at each value:
 * every partial sum is encoded once (reduce-scatter) and the sum once more
 * (all-gather). bf16 loses up to 2^-8 of a value (8 significant bits); q8 up to half a step,
 * 1/254 of its 32-value block's largest magnitude. */
static void bounds(int wire, int N, int64_t n, const double *exact, double *bound)
{
    for (int64_t b = 0; b < n; b += TPI_WIRE_Q8_BLOCK) {
        int64_t e = b + TPI_WIRE_Q8_BLOCK < n ? b + TPI_WIRE_Q8_BLOCK : n;
        double bmax_sum = 0, bmax_parts = 0;
        for (int r = 0; r < N; r++) {
            double m = 0;
            for (int64_t i = b; i < e; i++)
                m = fmax(m, fabs(part(r, i)));
            bmax_parts += m;
        }
        for (int64_t i = b; i < e; i++)
            bmax_sum = fmax(bmax_sum, fabs(exact[i]));
        for (int64_t i = b; i < e; i++) {
            double mag = 0;
            for (int r = 0; r < N; r++)
                mag += fabs(part(r, i));
            double slack = 1e-6 * mag; /* float32 sums */
            bound[i] = wire == TPI_WIRE_F32    ? slack
                       : wire == TPI_WIRE_BF16 ? 0x1p-8 * (mag + fabs(exact[i]) * 1.01) + slack
                                               : (bmax_parts + bmax_sum * 1.01) / 254 + slack;
        }
    }
}

static int collective(int *argc, char ***argv)
{
    int wires[] = {TPI_WIRE_F32, TPI_WIRE_BF16, TPI_WIRE_Q8}, fails = 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) /* ours: each communicator below leaves it initialized */
        return 1;
    for (int w = 0; w < 3; w++) {
        tpi_comm *c = NULL;
        if (tpi_comm_create(&c, &(tpi_comm_opts){.kind = "mpi", .allreduce = TPI_ALLREDUCE_MPI, .wire = wires[w]},
                            argc, argv, NULL))
            return 1;
        int N = tpi_comm_size(c), me = tpi_comm_rank(c);
        int64_t sizes[] = {1, 31, 2048, 100003, (1 << 21) + 77}; /* the last crosses a piece */
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int64_t n = sizes[k];
            float *buf = malloc((size_t)n * sizeof *buf), *r0 = malloc((size_t)n * sizeof *r0);
            double *exact = malloc((size_t)n * sizeof *exact), *bound = malloc((size_t)n * sizeof *bound);
            for (int64_t i = 0; i < n; i++) {
                buf[i] = part(me, i);
                exact[i] = 0;
                for (int r = 0; r < N; r++)
                    exact[i] += part(r, i);
            }
            bounds(wires[w], N, n, exact, bound);
            if (tpi_comm_allreduce_act(c, buf, n))
                return 1;
            memcpy(r0, buf, (size_t)n * sizeof *r0);
            tpi_comm_bcast(c, r0, (size_t)n * sizeof *r0, 0);
            int same = !memcmp(r0, buf, (size_t)n * sizeof *r0);
            int64_t bad = -1;
            double worst = 0; /* error / bound */
            for (int64_t i = 0; i < n; i++) {
                double q = fabs(buf[i] - exact[i]) / bound[i];
                worst = q > worst ? q : worst;
                if (!(q <= 1) && bad < 0)
                    bad = i;
            }
            if (!same || bad >= 0) {
                fprintf(stderr, "FAIL rank %d wire %d n %lld: bit-identical %d; value %lld is %.9g, exact %.9g, "
                        "bound %.3g\n", me, wires[w], (long long)n, same, (long long)bad, bad >= 0 ? buf[bad] : 0,
                        bad >= 0 ? exact[bad] : 0, bad >= 0 ? bound[bad] : 0);
                fails++;
            } else if (me == 0) {
                printf("ok: %s n %lld: ranks bit-identical, error <= %.2f of the bound\n", c->allreduce,
                       (long long)n, worst);
            }
            free(buf);
            free(r0);
            free(exact);
            free(bound);
        }
        int32_t f = fails;
        tpi_comm_allreduce_max_i32(c, &f, 1);
        fails = f;
        tpi_comm_free(c);
    }
    MPI_Finalize();
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (!strcmp(tu_comm_kind(), "mpi"))
        return collective(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_q8_blocks),      cmocka_unit_test(test_add_accumulates),
        cmocka_unit_test(test_opts_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
