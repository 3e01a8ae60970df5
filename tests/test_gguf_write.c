/* io/gguf_write.c against core/gguf.c: a file with a key of every GGUF value
 * type (scalars, a string, arrays of every scalar type and of strings, an
 * empty array) and a tensor of every tpinfer dtype in 1 to 4 dimensions is
 * written and read back: every key, type and value and every tensor's type,
 * shape and bytes must be equal (exact: no tolerance), and each tensor must
 * start at a multiple of the alignment. The streaming rules are checked
 * too: data past a tensor, a short tensor, a duplicate key, an unwritable
 * path are errors that name what is wrong and leave no file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "core/gguf.h"
#include "io/gguf_write.h"
#include "testutil.h"

typedef struct scalar_case {
    const char *key;
    tpi_gguf_type type;
    uint8_t bytes[8];
    size_t size;
} scalar_case;

static const scalar_case scalars[] = {
    {"t.u8", TPI_GGUF_U8, {0xfe}, 1},
    {"t.i8", TPI_GGUF_I8, {0x80}, 1},
    {"t.u16", TPI_GGUF_U16, {0x34, 0x12}, 2},
    {"t.i16", TPI_GGUF_I16, {0x00, 0x80}, 2},
    {"t.u32", TPI_GGUF_U32, {1, 2, 3, 4}, 4},
    {"t.i32", TPI_GGUF_I32, {0xff, 0xff, 0xff, 0xff}, 4},
    {"t.f32", TPI_GGUF_F32, {0x00, 0x00, 0xc0, 0x3f}, 4}, /* 1.5 */
    {"t.bool", TPI_GGUF_BOOL, {1}, 1},
    {"t.u64", TPI_GGUF_U64, {1, 2, 3, 4, 5, 6, 7, 0x80}, 8},
    {"t.i64", TPI_GGUF_I64, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
    {"t.f64", TPI_GGUF_F64, {0, 0, 0, 0, 0, 0, 0xf0, 0xbf}, 8}, /* -1.0 */
};
#define N_SCALARS ((int)(sizeof scalars / sizeof scalars[0]))

static const char *const strs[] = {"", "a b", "\xe2\x96\x81hello", "<0x0A>", "[PAD7]"};

typedef struct tensor_case {
    const char *name;
    tpi_dtype t;
    int n_dims;
    int64_t ne[4];
} tensor_case;

static const tensor_case tensors[] = {
    {"f32.1d", TPI_F32, 1, {7}},
    {"f16.2d", TPI_F16, 2, {5, 3}},
    {"bf16.3d", TPI_BF16, 3, {4, 3, 2}},
    {"q8_0", TPI_Q8_0, 2, {64, 3}},
    {"q4_0.4d", TPI_Q4_0, 4, {32, 2, 1, 3}},
    {"q4_k", TPI_Q4_K, 2, {256, 2}},
    {"q6_k", TPI_Q6_K, 2, {512, 1}},
};
#define N_TENSORS ((int)(sizeof tensors / sizeof tensors[0]))

static size_t tensor_bytes(const tensor_case *c)
{
    int64_t rows = 1;
    for (int d = 1; d < c->n_dims; d++)
        rows *= c->ne[d];
    return (size_t)(rows * tpi_dtype_row_bytes(c->t, c->ne[0]));
}

/* Deterministic bytes for tensor i (varied, so a swap or shift shows). */
static uint8_t *tensor_data(int i)
{
    size_t n = tensor_bytes(&tensors[i]);
    uint8_t *p = malloc(n);
    uint32_t s = 2463534242u + (uint32_t)i;
    for (size_t k = 0; k < n; k++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        p[k] = (uint8_t)s;
    }
    return p;
}

static void add_keys(tpi_gguf_writer *w)
{
    for (int i = 0; i < N_SCALARS; i++)
        assert_int_equal(tpi_gguf_w_scalar(w, scalars[i].key, scalars[i].type, scalars[i].bytes), 0);
    assert_int_equal(tpi_gguf_w_str(w, "t.str", "\xe2\x96\x81tok\"en\n"), 0);
    for (int i = 0; i < N_SCALARS; i++) {
        char key[32];
        uint8_t three[24];
        for (int k = 0; k < 3; k++)
            memcpy(three + k * scalars[i].size, scalars[i].bytes, scalars[i].size);
        snprintf(key, sizeof key, "arr.%s", scalars[i].key + 2);
        assert_int_equal(tpi_gguf_w_arr(w, key, scalars[i].type, three, 3), 0);
    }
    assert_int_equal(tpi_gguf_w_arr_str(w, "arr.str", strs, 5), 0);
    assert_int_equal(tpi_gguf_w_arr(w, "arr.empty", TPI_GGUF_I32, NULL, 0), 0);
}

static void check_keys(const tpi_gguf *g)
{
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 1 + N_SCALARS + 1 + N_SCALARS + 2);
    int64_t align;
    assert_int_equal(tpi_gguf_get_i64(g, "general.alignment", &align, NULL), 0);
    assert_int_equal(align, TPI_GGUF_ALIGNMENT);
    for (int i = 0; i < N_SCALARS; i++) {
        const tpi_gguf_kv *kv = tpi_gguf_find(g, scalars[i].key);
        assert_non_null(kv);
        assert_int_equal(kv->type, scalars[i].type);
        assert_memory_equal(kv->value, scalars[i].bytes, scalars[i].size);
        char key[32];
        snprintf(key, sizeof key, "arr.%s", scalars[i].key + 2);
        kv = tpi_gguf_find(g, key);
        assert_non_null(kv);
        assert_int_equal(kv->type, TPI_GGUF_ARRAY);
        assert_int_equal(kv->arr_type, scalars[i].type);
        assert_int_equal(kv->arr_n, 3);
        for (int k = 0; k < 3; k++)
            assert_memory_equal(kv->value + k * scalars[i].size, scalars[i].bytes, scalars[i].size);
    }
    tpi_gguf_str s;
    assert_int_equal(tpi_gguf_get_str(g, "t.str", &s, NULL), 0);
    assert_int_equal(s.len, strlen("\xe2\x96\x81tok\"en\n"));
    assert_memory_equal(s.s, "\xe2\x96\x81tok\"en\n", (size_t)s.len);
    const tpi_gguf_kv *kv = tpi_gguf_find(g, "arr.str");
    assert_non_null(kv);
    assert_int_equal(kv->arr_type, TPI_GGUF_STRING);
    assert_int_equal(kv->arr_n, 5);
    for (int k = 0; k < 5; k++) {
        s = tpi_gguf_arr_str(g, kv, k);
        assert_int_equal(s.len, strlen(strs[k]));
        if (s.len)
            assert_memory_equal(s.s, strs[k], (size_t)s.len);
    }
    kv = tpi_gguf_find(g, "arr.empty");
    assert_non_null(kv);
    assert_int_equal(kv->arr_n, 0);
}

static void check_tensors(const tpi_gguf *g)
{
    assert_int_equal(g->n_tensors, N_TENSORS);
    for (int i = 0; i < N_TENSORS; i++) {
        const tensor_case *c = &tensors[i];
        const tpi_gguf_tensor *t = &g->tensors[i]; /* file order = declaration order */
        assert_string_equal(t->name, c->name);
        assert_int_equal(t->ggml_type, tpi_gguf_ggml_type(c->t));
        assert_true(t->type_ok);
        assert_int_equal(t->dtype, c->t);
        assert_int_equal(t->n_dims, c->n_dims);
        for (int d = 0; d < c->n_dims; d++)
            assert_int_equal(t->ne[d], c->ne[d]);
        assert_int_equal(t->bytes, tensor_bytes(c));
        assert_int_equal((t->data - (const uint8_t *)g->maps[0]) % TPI_GGUF_ALIGNMENT, 0);
        uint8_t *want = tensor_data(i);
        assert_memory_equal(t->data, want, tensor_bytes(c));
        free(want);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "all.gguf");
    tpi_gguf_writer *w;
    tpi_error err = {0};
    assert_int_equal(tpi_gguf_writer_create(&w, &err), 0);
    add_keys(w);
    for (int i = 0; i < N_TENSORS; i++)
        assert_int_equal(tpi_gguf_w_tensor(w, tensors[i].name, tensors[i].t, tensors[i].n_dims, tensors[i].ne), 0);
    assert_int_equal(tpi_gguf_w_begin(w, path, &err), 0);
    for (int i = 0; i < N_TENSORS; i++) {
        /* in two pieces, the split inside the tensor, as a converter streams rows */
        uint8_t *d = tensor_data(i);
        size_t n = tensor_bytes(&tensors[i]), half = n / 2;
        assert_int_equal(tpi_gguf_w_data(w, d, half, &err), 0);
        assert_int_equal(tpi_gguf_w_data(w, d + half, n - half, &err), 0);
        free(d);
    }
    assert_int_equal(tpi_gguf_w_finish(w, &err), 0);
    tpi_gguf_writer_free(w);
    tpi_gguf *g = NULL;
    if (tpi_gguf_open(&g, path, &err))
        fail_msg("%s", err.msg);
    check_keys(g);
    check_tensors(g);
    tpi_gguf_close(g);
    free(path);
    tu_rmdir(dir);
    free(dir);
}

/* One tensor of 64 bytes (F32 [16]); returns the writer after begin. */
static tpi_gguf_writer *one_tensor(const char *path)
{
    tpi_gguf_writer *w;
    tpi_error err = {0};
    int64_t ne[1] = {16};
    assert_int_equal(tpi_gguf_writer_create(&w, &err), 0);
    assert_int_equal(tpi_gguf_w_tensor(w, "x", TPI_F32, 1, ne), 0);
    assert_int_equal(tpi_gguf_w_begin(w, path, &err), 0);
    return w;
}

static void test_stream_errors(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "bad.gguf"), *part = tu_path(dir, "bad.gguf.part");
    uint8_t bytes[80] = {0};
    tpi_error err = {0};

    tpi_gguf_writer *w = one_tensor(path);
    assert_int_equal(tpi_gguf_w_data(w, bytes, 80, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "tensor x: 80 bytes given, 64 left of its 64"));
    tpi_gguf_writer_free(w);
    assert_int_equal(access(part, F_OK), -1);

    w = one_tensor(path);
    assert_int_equal(tpi_gguf_w_data(w, bytes, 60, &err), 0);
    assert_int_equal(tpi_gguf_w_finish(w, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "tensor x: 60 of its 64 bytes written"));
    tpi_gguf_writer_free(w);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(tpi_gguf_writer_create(&w, &err), 0);
    tpi_gguf_w_u32(w, "k", 1);
    tpi_gguf_w_str(w, "k", "again");
    assert_int_equal(tpi_gguf_w_begin(w, path, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate key: k"));
    tpi_gguf_writer_free(w);

    char *nodir = tu_path(dir, "no-such-dir/x.gguf");
    assert_int_equal(tpi_gguf_writer_create(&w, &err), 0);
    assert_int_equal(tpi_gguf_w_begin(w, nodir, &err), TPI_EIO);
    assert_non_null(strstr(err.msg, "no-such-dir/x.gguf.part: cannot create: No such file or directory"));
    tpi_gguf_writer_free(w);
    free(nodir);
    free(path);
    free(part);
    tu_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
