/* The communicator's watchdog option, interrupt and status, and the rank
 * limit a launcher reads, without MPI (docs/BAD_INPUT.md, "Ranks"); the
 * multi-rank behaviour is tests/ranks.sh's. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"
#include "tpinfer.h"

static void expect_bad_timeout(double t)
{
    tpi_comm *c = NULL;
    tpi_error err = {0};
    int rc = tpi_comm_create(&c, &(tpi_comm_opts){.kind = "self", .timeout_s = t}, NULL, NULL, &err);
    assert_int_equal(rc, TPI_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err.msg, "tpi_comm_opts.timeout_s: expected a finite number of seconds >= 0"));
}

static void test_timeout_validated(void **s)
{
    (void)s;
    expect_bad_timeout(NAN);
    expect_bad_timeout(INFINITY);
    expect_bad_timeout(-1);
    expect_bad_timeout(-1e-9);
    double good[] = {0, 0.5, 60};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tpi_comm *c = NULL;
        assert_int_equal(tpi_comm_create(&c, &(tpi_comm_opts){.timeout_s = good[i]}, NULL, NULL, NULL), 0);
        tpi_comm_free(c);
    }
}

/* After tpi_comm_interrupt every collective fails with TPI_EINTR, and the
 * status says so with the code given. */
static void test_interrupt(void **s)
{
    (void)s;
    tpi_comm *c = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_comm_create(&c, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(tpi_comm_status(c, &err), 0);
    float x = 1;
    assert_int_equal(tpi_comm_allreduce_sum_f32(c, &x, 1), 0);
    tpi_comm_interrupt(c, 143);
    assert_int_equal(tpi_comm_status(c, &err), TPI_EINTR);
    assert_string_equal(err.msg, "interrupted (code 143)");
    assert_int_equal(tpi_comm_allreduce_sum_f32(c, &x, 1), TPI_EINTR);
    assert_int_equal(tpi_comm_barrier(c), TPI_EINTR);
    assert_int_equal(tpi_comm_bcast(c, &x, sizeof x, 0), TPI_EINTR);
    assert_int_equal(tpi_comm_bcast_idle(c, &x, sizeof x, 0), TPI_EINTR);
    assert_int_equal(tpi_comm_status(c, &err), TPI_EINTR);
    tpi_comm_free(c);
}

/* The limit is num_attention_heads (the tiny shape's 8); a directory
 * without config.json is the load's error. */
static void test_max_ranks(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    const char *model = tu_in(dir, "tiny");
    tpi_error err = {0};
    assert_int_equal(tpi_make_model("tiny", "f32", model, 1, &err), 0);
    int64_t max = -1;
    const char *field = NULL;
    assert_int_equal(tpi_model_max_ranks(model, NULL, &max, &field, &err), 0);
    assert_int_equal(max, 8);
    assert_string_equal(field, "num_attention_heads");
    assert_int_not_equal(tpi_model_max_ranks(tu_in(dir, "none"), NULL, &max, &field, &err), 0);
    assert_non_null(strstr(err.msg, "config.json"));
    assert_null(field);
    tu_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_validated),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_max_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
