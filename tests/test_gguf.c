/* The GGUF reader (core/gguf.c) on llama.cpp's files and on hostile ones
 * written here, and the model loader's refusals of a GGUF whose metadata or
 * tensors do not make a model: each error names the file and the key or
 * tensor. Also: a model split by gguf-split's naming loads as the single
 * file does, and the block decoders reproduce gguf-py's dequantization. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/gguf.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "core/quant.h"
#include "testutil.h"

static const char *shared;
static char *tmp;

/* ---- a GGUF writer: raw key/value entries, tensor infos, aligned data ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void kv_u32(buf *b, const char *key, uint32_t v)
{
    put_str(b, key);
    put_u32(b, TPI_GGUF_U32);
    put_u32(b, v);
}

static void kv_str(buf *b, const char *key, const char *v)
{
    put_str(b, key);
    put_u32(b, TPI_GGUF_STRING);
    put_str(b, v);
}

/* The bytes of one key/value entry of an opened file, as they are in it. */
static void kv_raw(buf *b, const tpi_gguf *g, const tpi_gguf_kv *kv)
{
    const uint8_t *start = (const uint8_t *)kv->key.s - 8, *end = kv->value;
    if (kv->type == TPI_GGUF_STRING) {
        end += 8 + tpi_gguf_kv_str(kv).len;
    } else if (kv->type != TPI_GGUF_ARRAY) {
        static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        end += sizes[kv->type];
    } else if (kv->arr_type == TPI_GGUF_STRING) {
        tpi_gguf_str last = kv->arr_n ? tpi_gguf_arr_str(g, kv, kv->arr_n - 1) : (tpi_gguf_str){0};
        end = kv->arr_n ? (const uint8_t *)last.s + last.len : kv->value;
    } else {
        static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        end += kv->arr_n * sizes[kv->arr_type];
    }
    put(b, start, (size_t)(end - start));
}

typedef struct wtensor {
    char name[96];
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    const void *data; /* NULL: zeros */
    uint64_t bytes;
    int64_t offset;   /* -1: the next aligned place */
} wtensor;

/* Writes header (counts as given), kvs (already encoded), tensor infos and
 * data aligned to 32. */
static void write_gguf(const char *path, uint64_t n_kv, const buf *kvs, const wtensor *t, int64_t n_t,
                       uint64_t n_tensors)
{
    buf b = {0};
    put_u32(&b, 0x46554747u);
    put_u32(&b, 3);
    put_u64(&b, n_tensors);
    put_u64(&b, n_kv);
    put(&b, kvs->p, kvs->n);
    uint64_t at = 0;
    uint64_t *offs = calloc((size_t)n_t + 1, sizeof *offs);
    for (int64_t i = 0; i < n_t; i++) {
        put_str(&b, t[i].name);
        put_u32(&b, (uint32_t)t[i].n_dims);
        for (int d = 0; d < t[i].n_dims; d++)
            put_u64(&b, (uint64_t)t[i].ne[d]);
        put_u32(&b, t[i].type);
        offs[i] = t[i].offset >= 0 ? (uint64_t)t[i].offset : at;
        put_u64(&b, offs[i]);
        if (t[i].offset < 0)
            at = (at + t[i].bytes + 31) / 32 * 32;
    }
    uint8_t zero[32] = {0};
    put(&b, zero, (32 - b.n % 32) % 32);
    size_t data0 = b.n;
    for (int64_t i = 0; i < n_t; i++) {
        while (b.n < data0 + offs[i])
            put(&b, zero, 1);
        if (b.n > data0 + offs[i]) /* an overlapping tensor: written over the previous one */
            b.n = data0 + offs[i];
        if (t[i].data) {
            put(&b, t[i].data, t[i].bytes);
        } else {
            for (uint64_t k = 0; k < t[i].bytes; k++)
                put(&b, zero, 1);
        }
    }
    /* only ever into this test's temp directory, never over ../shared */
    assert_int_equal(strncmp(path, tmp, strlen(tmp)), 0);
    assert_int_equal(tu_write_file(path, b.p, b.n), 0);
    free(offs);
    free(b.p);
}

/* mini-f32.gguf's tensors as writer entries. */
static int64_t list_tensors(const tpi_gguf *g, wtensor *out)
{
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const tpi_gguf_tensor *s = &g->tensors[i];
        wtensor *t = &out[i];
        snprintf(t->name, sizeof t->name, "%s", s->name);
        t->type = s->ggml_type;
        t->n_dims = s->n_dims;
        memcpy(t->ne, s->ne, sizeof t->ne);
        t->data = s->data;
        t->bytes = s->bytes;
        t->offset = -1;
    }
    return g->n_tensors;
}

static tpi_gguf *open_ok(const char *path)
{
    tpi_gguf *g = NULL;
    tpi_error err = {0};
    int rc = tpi_gguf_open(&g, path, &err);
    if (rc)
        fail_msg("%s: %s", path, err.msg);
    return g;
}

/* ../shared/golden/gguf/NAME, in one of 4 rotating buffers. */
static const char *mini(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/golden/gguf/%s", shared, name);
    return b;
}

/* tmp/NAME, kept apart from mini()'s buffers. */
static const char *in_tmp(const char *name)
{
    static char bufs[2][1024];
    static int next;
    char *b = bufs[next++ % 2];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
    return b;
}

/* Opening `path` fails with `code` and a message holding every given part. */
static void expect_open_error(const char *path, int code, ...)
{
    tpi_gguf *g = NULL;
    tpi_error err = {0};
    int rc = tpi_gguf_open(&g, path, &err);
    printf("  %s\n", err.msg);
    assert_int_equal(rc, code);
    assert_null(g);
    assert_non_null(strstr(err.msg, path));
    va_list ap;
    va_start(ap, code);
    for (const char *part; (part = va_arg(ap, const char *));)
        if (!strstr(err.msg, part))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, part);
    va_end(ap);
}

static void expect_load_error(const char *path, int code, ...)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    int rc = tpi_model_load(&m, path, NULL, &err);
    printf("  %s\n", err.msg);
    assert_int_equal(rc, code);
    assert_null(m);
    va_list ap;
    va_start(ap, code);
    for (const char *part; (part = va_arg(ap, const char *));)
        if (!strstr(err.msg, part))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, part);
    va_end(ap);
}

/* ---- llama.cpp's files ---- */

static void test_read_mini(void **s)
{
    (void)s;
    tpi_gguf *g = open_ok(mini("mini-q4_k_m.gguf"));
    tpi_error err = {0};
    int64_t v = 0;
    double eps = 0;
    tpi_gguf_str arch = {0};
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_files, 1);
    assert_int_equal(tpi_gguf_get_i64(g, "llama.block_count", &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(tpi_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err), 0);
    assert_true(eps == (double)1e-5f);
    assert_int_equal(tpi_gguf_get_str(g, "general.architecture", &arch, &err), 0);
    assert_int_equal(arch.len, 5);
    assert_memory_equal(arch.s, "llama", 5);
    assert_int_equal(tpi_gguf_get_i64(g, "no.such.key", &v, &err), 1);
    /* a string read as an integer: the key and both types named */
    assert_int_equal(tpi_gguf_get_i64(g, "general.architecture", &v, &err), TPI_EFORMAT);
    assert_non_null(strstr(err.msg, "\"general.architecture\" is string (expected an integer)"));
    tpi_gguf_type t;
    int64_t n;
    assert_int_equal(tpi_gguf_get_arr(g, "tokenizer.ggml.tokens", &t, &n, &err), 0);
    assert_int_equal(t, TPI_GGUF_STRING);
    assert_int_equal(n, 512);
    tpi_gguf_str tok = tpi_gguf_arr_str(g, tpi_gguf_find(g, "tokenizer.ggml.tokens"), 1);
    assert_int_equal(tok.len, 3);
    assert_memory_equal(tok.s, "<s>", 3);
    /* Q4_K_M mixes Q4_K and Q6_K; shapes in ggml's order */
    const tpi_gguf_tensor *q = tpi_gguf_find_tensor(g, "blk.0.attn_k.weight");
    const tpi_gguf_tensor *d = tpi_gguf_find_tensor(g, "blk.2.ffn_down.weight");
    assert_non_null(q);
    assert_non_null(d);
    assert_int_equal(q->dtype, TPI_Q4_K);
    assert_int_equal(q->ne[0], 256);
    assert_int_equal(q->ne[1], 128);
    assert_int_equal(q->bytes, 128 * 144);
    assert_int_equal(d->dtype, TPI_Q6_K);
    assert_int_equal(d->bytes, 256 * 3 * 210);
    assert_int_equal((uintptr_t)(q->data - (const uint8_t *)g->maps[0]) % 32, 0);
    assert_null(tpi_gguf_find_tensor(g, "blk.3.attn_k.weight"));
    tpi_gguf_close(g);
}

/* gguf-py's dequantization of one tensor per block type, bit for bit. */
static void test_dequant_bits(void **s)
{
    (void)s;
    char *text = tu_read_file(mini("expected.json"), NULL);
    cJSON *e = text ? cJSON_Parse(text) : NULL;
    free(text);
    assert_non_null(e);
    const cJSON *dq = cJSON_GetObjectItem(e, "dequantized"), *it;
    int n = 0;
    cJSON_ArrayForEach(it, dq) {
        tpi_gguf *g = open_ok(mini(cJSON_GetObjectItem(it, "file")->valuestring));
        const tpi_gguf_tensor *t = tpi_gguf_find_tensor(g, cJSON_GetObjectItem(it, "tensor")->valuestring);
        assert_non_null(t);
        size_t bytes = 0;
        float *ref = tu_read_file(mini(cJSON_GetObjectItem(it, "dequantized_file")->valuestring), &bytes);
        assert_int_equal(bytes, (size_t)t->numel * 4);
        float *got = malloc(bytes);
        tpi_dequant_row(t->dtype, t->data, got, t->numel);
        assert_memory_equal(got, ref, bytes);
        printf("  %s: %s of %s, %lld values bit for bit\n", it->string, t->name,
               cJSON_GetObjectItem(it, "file")->valuestring, (long long)t->numel);
        free(got), free(ref);
        tpi_gguf_close(g);
        n++;
    }
    assert_int_equal(n, 4);
    cJSON_Delete(e);
}

/* ---- hostile files ---- */

static void test_truncated(void **s)
{
    (void)s;
    size_t bytes = 0;
    uint8_t *all = tu_read_file(mini("mini-q8_0.gguf"), &bytes);
    assert_non_null(all);
    const char *path = in_tmp("cut.gguf");
    static const struct { size_t len; const char *what; } cuts[] = {
        {3, "magic"}, {10, "tensor count"}, {100, "tensor count 30 is over"}, {3000, "key \"tokenizer.ggml.tokens\""},
        {1, "(info of tensor \""}, {0, "run past the end"},
    };
    tpi_gguf *g = open_ok(mini("mini-q8_0.gguf"));
    const tpi_gguf_tensor *first = g->tensors, *last = g->tensors;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].data > last->data)
            last = &g->tensors[i];
        if (g->tensors[i].data < first->data)
            first = &g->tensors[i];
    }
    size_t infos_end = (size_t)(first->data - (const uint8_t *)g->maps[0]) - 40; /* inside the tensor infos */
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t len = cuts[i].len == 1 ? infos_end : cuts[i].len ? cuts[i].len : bytes - 100;
        assert_int_equal(tu_write_file(path, all, len), 0);
        expect_open_error(path, TPI_EFORMAT, cuts[i].what, NULL);
    }
    /* the last cut names the tensor whose bytes it lost */
    assert_int_equal(tu_write_file(path, all, bytes - 100), 0);
    expect_open_error(path, TPI_EFORMAT, last->name, NULL);
    tpi_gguf_close(g);
    free(all);
}

/* One F32 tensor "a" of 8 values, with the header fields given. */
static void write_small(const char *path, uint64_t n_tensors, uint64_t n_kv, const buf *kvs, wtensor *t, int n_t)
{
    wtensor one = {.name = "a", .type = 0, .n_dims = 1, .ne = {8, 1, 1, 1}, .bytes = 32, .offset = -1};
    write_gguf(path, n_kv, kvs, t ? t : &one, t ? n_t : 1, n_tensors);
}

static void test_hostile_counts(void **s)
{
    (void)s;
    const char *path = in_tmp("h.gguf");
    buf kvs = {0};
    write_small(path, (uint64_t)1 << 40, 0, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "tensor count 1099511627776", NULL);
    write_small(path, 1, (uint64_t)1 << 62, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "metadata count", NULL);
    /* a string length past the file */
    put_str(&kvs, "k");
    put_u32(&kvs, TPI_GGUF_STRING);
    put_u64(&kvs, (uint64_t)1 << 29);
    write_small(path, 1, 1, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "string value", "536870912 bytes", NULL);
    /* an array of 2^60 elements */
    kvs.n = 0;
    put_str(&kvs, "arr");
    put_u32(&kvs, TPI_GGUF_ARRAY);
    put_u32(&kvs, TPI_GGUF_U32);
    put_u64(&kvs, (uint64_t)1 << 60);
    write_small(path, 1, 1, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "\"arr\"", "1152921504606846976 elements", NULL);
    /* dimensions whose product overflows */
    kvs.n = 0;
    wtensor big = {.name = "big", .type = 0, .n_dims = 4, .ne = {1 << 20, 1 << 20, 1 << 20, 1 << 20}, .bytes = 32,
                   .offset = -1};
    write_small(path, 1, 0, &kvs, &big, 1);
    expect_open_error(path, TPI_EFORMAT, "\"big\"", "overflows", NULL);
    free(kvs.p);
}

static void test_hostile_layout(void **s)
{
    (void)s;
    const char *path = in_tmp("h.gguf");
    buf kvs = {0};
    wtensor t[2] = {
        {.name = "first", .type = 0, .n_dims = 2, .ne = {8, 2, 1, 1}, .bytes = 64, .offset = 0},
        {.name = "second", .type = 0, .n_dims = 1, .ne = {8, 1, 1, 1}, .bytes = 32, .offset = 32},
    };
    write_small(path, 2, 0, &kvs, t, 2);
    expect_open_error(path, TPI_EFORMAT, "\"first\" and \"second\" overlap", NULL);
    t[1].offset = 40;
    write_small(path, 2, 0, &kvs, t, 2);
    expect_open_error(path, TPI_EFORMAT, "\"second\"", "offset 40 is not a multiple of the alignment 32", NULL);
    /* the same name twice */
    t[1].offset = 64;
    snprintf(t[1].name, sizeof t[1].name, "first");
    write_small(path, 2, 0, &kvs, t, 2);
    expect_open_error(path, TPI_EFORMAT, "tensor \"first\" appears more than once", NULL);
    /* a type ggml has never had, and a Q8_0 row that is not whole blocks */
    wtensor odd = {.name = "odd", .type = 99, .n_dims = 1, .ne = {32, 1, 1, 1}, .bytes = 34, .offset = -1};
    write_small(path, 1, 0, &kvs, &odd, 1);
    expect_open_error(path, TPI_EFORMAT, "\"odd\"", "unknown ggml type 99", NULL);
    odd.type = 8, odd.ne[0] = 48;
    write_small(path, 1, 0, &kvs, &odd, 1);
    expect_open_error(path, TPI_EFORMAT, "\"odd\"", "48 columns are not a multiple of Q8_0's block of 32", NULL);
    /* a key twice, and a bad alignment */
    kv_u32(&kvs, "x", 1);
    kv_u32(&kvs, "x", 2);
    write_small(path, 1, 2, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "key \"x\" appears more than once", NULL);
    kvs.n = 0;
    kv_u32(&kvs, "general.alignment", 24);
    write_small(path, 1, 1, &kvs, NULL, 0);
    expect_open_error(path, TPI_EFORMAT, "\"general.alignment\" is 24", NULL);
    /* a type that exists but tpinfer does not compute with opens */
    kvs.n = 0;
    wtensor q5 = {.name = "q5", .type = 13, .n_dims = 1, .ne = {256, 1, 1, 1}, .bytes = 176, .offset = -1};
    write_small(path, 1, 0, &kvs, &q5, 1);
    tpi_gguf *g = open_ok(path);
    assert_int_equal(g->tensors[0].type_ok, 0);
    assert_string_equal(tpi_gguf_type_name(g->tensors[0].ggml_type), "Q5_K");
    tpi_gguf_close(g);
    /* a version that is not 2 or 3 */
    size_t bytes;
    uint8_t *raw = tu_read_file(path, &bytes);
    raw[4] = 1;
    tu_write_file(path, raw, bytes);
    expect_open_error(path, TPI_EFORMAT, "GGUF version 1", NULL);
    free(raw);
    free(kvs.p);
}

/* mini-f32 rewritten: every key but `drop_key`, every tensor with `edit`
 * applied to it (by name). */
static void rewrite_mini(const char *path, const char *drop_key, const char *edit, uint32_t type, int64_t ne1,
                         const char *arch)
{
    tpi_gguf *g = open_ok(mini("mini-f32.gguf"));
    buf kvs = {0};
    uint64_t n_kv = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const tpi_gguf_kv *kv = &g->kv[i];
        if (drop_key && (size_t)kv->key.len == strlen(drop_key) && !memcmp(kv->key.s, drop_key, strlen(drop_key)))
            continue;
        kv_raw(&kvs, g, kv);
        n_kv++;
    }
    if (arch) {
        kv_str(&kvs, "general.architecture", arch);
        n_kv++;
    }
    wtensor *t = calloc((size_t)g->n_tensors, sizeof *t);
    int64_t n = list_tensors(g, t);
    for (int64_t i = 0; edit && i < n; i++) {
        if (strcmp(t[i].name, edit))
            continue;
        if (type != t[i].type) { /* Q5_K: 176 bytes per 256 values, written as zeros */
            t[i].type = type;
            t[i].data = NULL;
            t[i].bytes = (uint64_t)(t[i].ne[0] / 256 * 176 * t[i].ne[1]);
        }
        if (ne1) {
            t[i].bytes = t[i].bytes / (uint64_t)t[i].ne[1] * (uint64_t)ne1;
            t[i].ne[1] = ne1;
        }
    }
    write_gguf(path, n_kv, &kvs, t, n, (uint64_t)n);
    free(t);
    free(kvs.p);
    tpi_gguf_close(g);
}

static void test_model_refusals(void **s)
{
    (void)s;
    const char *path = in_tmp("model.gguf");
    rewrite_mini(path, "llama.embedding_length", NULL, 0, 0, NULL);
    expect_load_error(path, TPI_ECONFIG, "required key \"llama.embedding_length\" is missing", NULL);
    rewrite_mini(path, "general.architecture", NULL, 0, 0, NULL);
    expect_load_error(path, TPI_ECONFIG, "\"general.architecture\" is missing", NULL);
    rewrite_mini(path, "general.architecture", NULL, 0, 0, "gpt2");
    expect_load_error(path, TPI_EUNSUPPORTED, "general.architecture is \"gpt2\" (supported: llama, qwen2, qwen3)",
                      NULL);
    rewrite_mini(path, NULL, "blk.1.attn_k.weight", 0, 64, NULL);
    expect_load_error(path, TPI_EFORMAT, "tensor \"blk.1.attn_k.weight\" has shape [64, 256] but the GGUF metadata "
                      "implies [128, 256]", NULL);
    rewrite_mini(path, NULL, "blk.2.ffn_up.weight", 13, 0, NULL);
    expect_load_error(path, TPI_EUNSUPPORTED, "tensor \"blk.2.ffn_up.weight\" has type Q5_K", NULL);
    {
        /* a missing tensor, by its GGUF name */
        tpi_gguf *g = open_ok(mini("mini-f32.gguf"));
        buf kvs = {0};
        for (int64_t i = 0; i < g->n_kv; i++)
            kv_raw(&kvs, g, &g->kv[i]);
        wtensor *t = calloc((size_t)g->n_tensors, sizeof *t);
        int64_t n = list_tensors(g, t), k = 0;
        for (int64_t i = 0; i < n; i++)
            if (strcmp(t[i].name, "blk.0.ffn_norm.weight"))
                t[k++] = t[i];
        write_gguf(path, (uint64_t)g->n_kv, &kvs, t, k, (uint64_t)k);
        free(t), free(kvs.p);
        tpi_gguf_close(g);
    }
    expect_load_error(path, TPI_EFORMAT, "tensor \"blk.0.ffn_norm.weight\" is missing", NULL);
    /* a NaN fp16 scale in a Q8_0 block, found by check_weights */
    size_t bytes = 0;
    uint8_t *raw = tu_read_file(mini("mini-q8_0.gguf"), &bytes);
    tpi_gguf *g = open_ok(mini("mini-q8_0.gguf"));
    const tpi_gguf_tensor *v = tpi_gguf_find_tensor(g, "blk.1.attn_v.weight");
    size_t at = (size_t)(v->data - (const uint8_t *)g->maps[0]) + 2 * (256 / 32) * 34 + 3 * 34; /* row 2, block 3 */
    raw[at] = 0x00, raw[at + 1] = 0x7e;
    tu_write_file(path, raw, bytes);
    tpi_gguf_close(g);
    free(raw);
    tpi_load_opts check = {.check_weights = 1};
    tpi_model *bad = NULL;
    tpi_error e2 = {0};
    assert_int_equal(tpi_model_load(&bad, path, &check, &e2), TPI_ENONFINITE);
    printf("  %s\n", e2.msg);
    assert_non_null(strstr(e2.msg, "blk.1.attn_v.weight: row 2, block 3 has a NaN scale"));
    /* the most ranks, from the metadata alone */
    int64_t max_ranks = 0;
    const char *by = NULL;
    assert_int_equal(tpi_model_max_ranks(mini("mini-f32.gguf"), NULL, &max_ranks, &by, &e2), 0);
    assert_int_equal(max_ranks, 8);
    assert_string_equal(by, "num_attention_heads");
    /* --quant of a GGUF */
    tpi_model *m = NULL;
    tpi_error err = {0};
    tpi_load_opts o = {.quant = "q8_0"};
    assert_int_equal(tpi_model_load(&m, mini("mini-f32.gguf"), &o, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "quant"));
    assert_non_null(strstr(err.msg, "mini-f32.gguf"));
}

/* ---- split files ---- */

/* mini-f32 cut into NAME-0000i-of-00003.gguf by gguf-split's rules: the
 * metadata in the first, split.* keys in each, tensors dealt in order. */
static void write_split(const char *stem, int count, int skip_last)
{
    tpi_gguf *g = open_ok(mini("mini-f32.gguf"));
    wtensor *t = calloc((size_t)g->n_tensors, sizeof *t);
    int64_t n = list_tensors(g, t), per = (n + count - 1) / count;
    for (int f = 0; f < count - skip_last; f++) {
        buf kvs = {0};
        uint64_t n_kv = 3;
        if (!f)
            for (int64_t i = 0; i < g->n_kv; i++, n_kv++)
                kv_raw(&kvs, g, &g->kv[i]);
        put_str(&kvs, "split.no");
        put_u32(&kvs, TPI_GGUF_U16);
        uint16_t no = (uint16_t)f, cnt = (uint16_t)count;
        put(&kvs, &no, 2);
        put_str(&kvs, "split.count");
        put_u32(&kvs, TPI_GGUF_U16);
        put(&kvs, &cnt, 2);
        put_str(&kvs, "split.tensors.count");
        put_u32(&kvs, TPI_GGUF_I32);
        put_u32(&kvs, (uint32_t)n);
        char path[600];
        snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", stem, f + 1, count);
        int64_t b = f * per, e = b + per < n ? b + per : n;
        write_gguf(path, n_kv, &kvs, t + b, e - b, (uint64_t)(e - b));
        free(kvs.p);
    }
    free(t);
    tpi_gguf_close(g);
}

static void test_split(void **s)
{
    (void)s;
    char stem[600], first[700];
    snprintf(stem, sizeof stem, "%s/mini", tmp);
    snprintf(first, sizeof first, "%s-00001-of-00003.gguf", stem);
    write_split(stem, 3, 0);
    tpi_gguf *g = open_ok(first), *one = open_ok(mini("mini-f32.gguf"));
    assert_int_equal(g->n_files, 3);
    assert_int_equal(g->n_tensors, one->n_tensors);
    assert_non_null(tpi_gguf_find_tensor(g, "output.weight")); /* in the last file */
    assert_int_equal(tpi_gguf_find_tensor(g, "output.weight")->file, 2);
    tpi_gguf_close(g), tpi_gguf_close(one);
    /* the same logits as the single file */
    tpi_model *a = NULL, *b = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_model_load(&a, first, NULL, &err), 0);
    assert_int_equal(tpi_model_load(&b, mini("mini-f32.gguf"), NULL, &err), 0);
    int32_t ids[] = {1, 218, 398, 294, 345};
    int64_t len = 5;
    float *la = malloc(5 * 512 * sizeof *la), *lb = malloc(5 * 512 * sizeof *lb);
    assert_int_equal(tpi_model_logits(a, ids, &len, 1, la, &err), 0);
    assert_int_equal(tpi_model_logits(b, ids, &len, 1, lb, &err), 0);
    assert_memory_equal(la, lb, 5 * 512 * sizeof *la);
    tpi_model_info info;
    tpi_model_get_info(a, &info);
    assert_true(info.file_bytes > info.weight_bytes);
    /* only the embedding stays mapped: the matmul weights are repacked
     * copies (their mapped pages given back), the norms widened copies */
    assert_int_equal(info.mapped_bytes, (int64_t)512 * 256 * 4);
    free(la), free(lb);
    tpi_model_free(a), tpi_model_free(b);
    /* a missing part is named */
    snprintf(stem, sizeof stem, "%s/cut", tmp);
    snprintf(first, sizeof first, "%s-00001-of-00003.gguf", stem);
    write_split(stem, 3, 1);
    char missing[700];
    snprintf(missing, sizeof missing, "%s-00003-of-00003.gguf", stem);
    g = NULL;
    assert_int_equal(tpi_gguf_open(&g, first, &err), TPI_EIO);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, missing));
}


/* ---- Hugging Face checkpoints written as llama.cpp's convert_hf_to_gguf.py
 * writes them (F32), loaded back: the same logits ---- */

static void kv_f32(buf *b, const char *key, float v)
{
    put_str(b, key);
    put_u32(b, TPI_GGUF_F32);
    put(b, &v, 4);
}

/* llama.cpp's LlamaModel.permute: within each head, rows i and i + half
 * become rows 2i and 2i + 1 (RoPE over adjacent pairs). */
static void permute_rows(float *w, int64_t rows, int64_t cols, int64_t hd)
{
    float *tmp = malloc((size_t)(hd * cols) * sizeof *tmp);
    for (int64_t h = 0; h < rows / hd; h++) {
        float *head = w + h * hd * cols;
        for (int64_t i = 0; i < hd / 2; i++) {
            memcpy(tmp + 2 * i * cols, head + i * cols, (size_t)cols * sizeof *tmp);
            memcpy(tmp + (2 * i + 1) * cols, head + (i + hd / 2) * cols, (size_t)cols * sizeof *tmp);
        }
        memcpy(head, tmp, (size_t)(hd * cols) * sizeof *tmp);
    }
    free(tmp);
}

/* Llama 3's rope_freqs.weight: the divisor llama.cpp applies to each
 * frequency so that it equals transformers' llama3-scaled one. */
static float *llama3_factors(const tpi_config *c)
{
    int64_t half = c->head_dim / 2;
    float *f = malloc((size_t)half * sizeof *f);
    double old = (double)c->rope_original_max_pos, lo = old / c->rope_low_freq_factor;
    double hi = old / c->rope_high_freq_factor;
    for (int64_t i = 0; i < half; i++) {
        double freq = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim), wl = 2 * M_PI / freq;
        if (wl < hi) {
            f[i] = 1;
        } else if (wl > lo) {
            f[i] = (float)c->rope_factor;
        } else {
            double sm = (old / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
            f[i] = (float)(1 / ((1 - sm) / c->rope_factor + sm));
        }
    }
    return f;
}

static void hf_metadata(buf *kvs, uint64_t *n, const tpi_config *c, const char *arch)
{
    char key[128];
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    kv_str(kvs, "general.architecture", arch);
    kv_u32(kvs, ARCH_KEY("context_length"), (uint32_t)c->max_position_embeddings);
    kv_u32(kvs, ARCH_KEY("embedding_length"), (uint32_t)c->hidden_size);
    kv_u32(kvs, ARCH_KEY("block_count"), (uint32_t)c->n_layers);
    kv_u32(kvs, ARCH_KEY("feed_forward_length"), (uint32_t)c->intermediate_size);
    kv_u32(kvs, ARCH_KEY("attention.head_count"), (uint32_t)c->n_heads);
    kv_u32(kvs, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    kv_u32(kvs, ARCH_KEY("attention.key_length"), (uint32_t)c->head_dim);
    kv_f32(kvs, ARCH_KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
    kv_f32(kvs, ARCH_KEY("rope.freq_base"), (float)c->rope_theta);
    *n += 10;
    if (c->rope_kind == TPI_ROPE_LINEAR) {
        kv_str(kvs, ARCH_KEY("rope.scaling.type"), "linear");
        kv_f32(kvs, ARCH_KEY("rope.scaling.factor"), (float)c->rope_factor);
        *n += 2;
    }
    kv_u32(kvs, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    kv_u32(kvs, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_ids[0]);
    *n += 2;
#undef ARCH_KEY
}

/* Writes the checkpoint in dir as an F32 GGUF of architecture `arch`. */
static void hf_to_gguf(const char *dir, const char *path, const char *arch)
{
    tpi_config c;
    tpi_ckpt *ck = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_config_load(&c, dir, &err), 0);
    assert_int_equal(tpi_ckpt_open(&ck, dir, &err), 0);
    const tpi_st_file *f = ck->files[0];
    buf kvs = {0};
    uint64_t n_kv = 0;
    hf_metadata(&kvs, &n_kv, &c, arch);
    int llama = !strcmp(arch, "llama");
    wtensor *t = calloc((size_t)f->n_tensors + 1, sizeof *t);
    float **vals = calloc((size_t)f->n_tensors + 1, sizeof *vals);
    int64_t n = 0;
    for (int64_t i = 0; i < f->n_tensors; i++, n++) {
        const tpi_st_tensor *s = &f->tensors[i];
        tpi_gguf_name_of(t[n].name, sizeof t[n].name, s->name);
        vals[n] = malloc((size_t)s->numel * sizeof(float) + 1);
        tpi_to_f32(vals[n], s->data, s->dtype, (size_t)s->numel);
        int64_t rows = s->shape[0], cols = s->n_dims == 2 ? s->shape[1] : 1;
        if (llama && (strstr(s->name, "q_proj") || strstr(s->name, "k_proj")))
            permute_rows(vals[n], rows, cols, c.head_dim);
        t[n] = (wtensor){.type = 0, .n_dims = s->n_dims, .ne = {s->n_dims == 2 ? cols : rows, rows, 1, 1},
                         .data = vals[n], .bytes = (uint64_t)s->numel * 4, .offset = -1};
        tpi_gguf_name_of(t[n].name, sizeof t[n].name, s->name);
    }
    if (c.rope_kind == TPI_ROPE_LLAMA3) {
        vals[n] = llama3_factors(&c);
        t[n] = (wtensor){.name = "rope_freqs.weight", .type = 0, .n_dims = 1, .ne = {c.head_dim / 2, 1, 1, 1},
                         .data = vals[n], .bytes = (uint64_t)(c.head_dim / 2) * 4, .offset = -1};
        n++;
    }
    write_gguf(path, n_kv, &kvs, t, n, (uint64_t)n);
    for (int64_t i = 0; i < n; i++)
        free(vals[i]);
    free(vals), free(t), free(kvs.p);
    tpi_ckpt_free(ck);
}

static void test_from_hf(void **s)
{
    (void)s;
    static const struct { const char *name, *arch; } cases[] = {
        {"qwen2-bias", "qwen2"},         /* biases, NeoX halves (no permutation) */
        {"llama3-rope-tied", "llama"},   /* permuted q/k, rope_freqs.weight, no output.weight */
        {"llama-linear-rope", "llama"},  /* rope.scaling.type linear */
        {"llama-uneven", "llama"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/golden/hf/%s", shared, cases[i].name);
        const char *path = in_tmp("from-hf.gguf");
        hf_to_gguf(dir, path, cases[i].arch);
        tpi_model *a = NULL, *b = NULL;
        tpi_error err = {0};
        if (tpi_model_load(&a, path, NULL, &err) || tpi_model_load(&b, dir, NULL, &err))
            fail_msg("%s: %s", cases[i].name, err.msg);
        tpi_model_info info;
        tpi_model_get_info(a, &info);
        int32_t ids[12];
        for (int k = 0; k < 12; k++)
            ids[k] = (int32_t)((k * 37 + 1) % info.vocab_size);
        int64_t len = 12;
        size_t count = (size_t)(12 * info.vocab_size);
        float *la = malloc(count * sizeof *la), *lb = malloc(count * sizeof *lb);
        assert_int_equal(tpi_model_logits(a, ids, &len, 1, la, &err), 0);
        assert_int_equal(tpi_model_logits(b, ids, &len, 1, lb, &err), 0);
        double e = tu_rel_err(la, lb, count);
        printf("  %s as GGUF (%s): logits rel err %.2g vs the checkpoint\n", cases[i].name, cases[i].arch, e);
        assert_true(e <= 1e-5);
        free(la), free(lb);
        tpi_model_free(a), tpi_model_free(b);
    }
}

int main(void)
{
    shared = tu_shared_dir();
    if (!shared)
        return TU_SKIP;
    tmp = tu_mkdtemp();
    assert_non_null(tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_mini),
        cmocka_unit_test(test_dequant_bits),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_hostile_layout),
        cmocka_unit_test(test_model_refusals),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_from_hf),
    };
    int rc = cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
    tu_rmdir(tmp);
    free(tmp);
    return rc;
}
