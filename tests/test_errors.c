/* Bad input: every case must fail with a message naming the file and the
 * tensor or field plus what was expected — never crash (run under ASan in CI). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/dtype.h"
#include "core/meminfo.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "testutil.h"
#include "tpinfer.h"

static char *tmp;

static const char *path(const char *name)
{
    return tu_in(tmp, name);
}

static void put(const char *name, const char *text)
{
    assert_int_equal(tu_write_file(path(name), text, strlen(text)), 0);
}

/* A 1-layer model small enough to spell out: hidden 8, 2 heads, ff 16, vocab 16. */
static const char *config =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":16,"
    "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":2,\"vocab_size\":16,"
    "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false}";

static const struct { const char *name; int64_t d0, d1; } tensors[] = {
    {"model.embed_tokens.weight", 16, 8},
    {"model.layers.0.input_layernorm.weight", 8, 0},
    {"model.layers.0.self_attn.q_proj.weight", 8, 8},
    {"model.layers.0.self_attn.k_proj.weight", 8, 8},
    {"model.layers.0.self_attn.v_proj.weight", 8, 8},
    {"model.layers.0.self_attn.o_proj.weight", 8, 8},
    {"model.layers.0.post_attention_layernorm.weight", 8, 0},
    {"model.layers.0.mlp.gate_proj.weight", 16, 8},
    {"model.layers.0.mlp.up_proj.weight", 16, 8},
    {"model.layers.0.mlp.down_proj.weight", 8, 16},
    {"model.norm.weight", 8, 0},
    {"lm_head.weight", 16, 8},
};
#define N_TENSORS ((int)(sizeof tensors / sizeof tensors[0]))

/* Writes the model with tensor `skip` left out and `reshape` given a wrong shape. */
static void write_model(const char *file, int skip, int reshape)
{
    static float data[16 * 16];
    for (int i = 0; i < 256; i++)
        data[i] = 0.01f * (float)(i % 17 + 1);
    tpi_st_out out[N_TENSORS];
    int n = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        if (i == skip)
            continue;
        out[n] = (tpi_st_out){.name = tensors[i].name, .dtype = TPI_F32, .n_dims = tensors[i].d1 ? 2 : 1,
                              .shape = {tensors[i].d0, tensors[i].d1}, .data = data};
        if (i == reshape)
            out[n].shape[0] += 1;
        n++;
    }
    tpi_error err = {0};
    assert_int_equal(tpi_st_write(path(file), out, n, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    tmp = tu_mkdtemp();
    return tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmdir(tmp);
    free(tmp);
    return 0;
}

/* Loads tmp and expects failure with every `needles` substring in the message. */
static void expect_load_error(const char *first, ...)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    int rc = tpi_model_load(&m, tmp, NULL, &err);
    printf("  message: %s\n", err.msg);
    assert_true(rc < 0);
    assert_null(m);
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        if (!strstr(err.msg, s))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, s);
    va_end(ap);
}

static void reset(void)
{
    tu_rmdir(tmp);
    free(tmp);
    tmp = tu_mkdtemp();
    assert_non_null(tmp);
}

static void test_valid_baseline(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_model("model.safetensors", -1, -1);
    tpi_model *m = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_model_load(&m, tmp, NULL, &err), 0);
    int32_t ids[] = {1, 2, 3};
    int64_t len = 3;
    float logits[3 * 16];
    assert_int_equal(tpi_model_logits(m, ids, &len, 1, logits, &err), 0);
    /* ids outside the vocabulary */
    int32_t bad[] = {1, 16};
    len = 2;
    assert_int_equal(tpi_model_logits(m, bad, &len, 1, logits, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "token id 16"));
    assert_non_null(strstr(err.msg, "0..15"));
    bad[1] = -3;
    assert_int_equal(tpi_model_logits(m, bad, &len, 1, logits, &err), TPI_EINVAL);
    tpi_model_free(m);
}

static void test_missing_config(void **s)
{
    (void)s;
    reset();
    write_model("model.safetensors", -1, -1);
    expect_load_error("config.json", "missing", NULL);
}

static void test_config_not_json(void **s)
{
    (void)s;
    reset();
    put("config.json", "{\"hidden_size\": 8,,}");
    expect_load_error("config.json", "not valid JSON", NULL);
}

static void test_unknown_architecture(void **s)
{
    (void)s;
    reset();
    put("config.json", "{\"architectures\":[\"GPT2LMHeadModel\"],\"hidden_size\":8}");
    expect_load_error("config.json", "unknown architecture", "GPT2LMHeadModel", "LlamaForCausalLM", NULL);
}

static void test_missing_field(void **s)
{
    (void)s;
    reset();
    put("config.json", "{\"architectures\":[\"LlamaForCausalLM\"],\"intermediate_size\":16,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":2,\"vocab_size\":16}");
    expect_load_error("config.json", "\"hidden_size\"", "missing", "integer", NULL);
}

static void test_bad_field_value(void **s)
{
    (void)s;
    reset();
    put("config.json", "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":16,"
                       "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":16,"
                       "\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":2}}");
    expect_load_error("config.json", "rope_type", "yarn", "llama3", NULL);
}

static void write_raw(const char *name, uint64_t hlen, const char *hdr, size_t data_bytes)
{
    size_t n = strlen(hdr);
    unsigned char *buf = calloc(1, 8 + n + data_bytes);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, hdr, n);
    assert_int_equal(tu_write_file(path(name), buf, 8 + n + data_bytes), 0);
    free(buf);
}

static void st_case(const char *hdr, uint64_t hlen, size_t data_bytes, const char *a, const char *b)
{
    reset();
    put("config.json", config);
    write_raw("model.safetensors", hlen ? hlen : strlen(hdr), hdr, data_bytes);
    expect_load_error("model.safetensors", a, b, NULL);
}

static void test_st_short(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    put("model.safetensors", "abc");
    expect_load_error("model.safetensors", "3 bytes", "8-byte header", NULL);
}

static void test_st_header_past_end(void **s)
{
    (void)s;
    st_case("{}", 1000, 0, "header length 1000", "past the end");
}

static void test_st_header_not_json(void **s)
{
    (void)s;
    st_case("{not json", 0, 0, "header", "not valid JSON");
}

static void test_st_offsets_out_of_range(void **s)
{
    (void)s;
    st_case("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", 0, 16,
            "\"model.norm.weight\"", "out of range");
}

static void test_st_offsets_overlap(void **s)
{
    (void)s;
    st_case("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            0, 32, "overlapping", "\"a\"");
}

static void test_st_size_mismatch(void **s)
{
    (void)s;
    st_case("{\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,32]}}", 0, 32,
            "\"model.norm.weight\"", "needs 16");
}

static void test_st_unsupported_dtype(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    /* A valid file whose embedding is F64: known to the format, not computed with. */
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "{\"model.embed_tokens.weight\":{\"dtype\":\"F64\",\"shape\":[16,8],\"data_offsets\":[0,1024]}}");
    write_raw("model.safetensors", strlen(hdr), hdr, 1024);
    expect_load_error("model.safetensors", "\"model.embed_tokens.weight\"", "dtype F64", NULL);
    st_case("{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2, "\"x\"", "unknown dtype \"Q4\"");
}

static void test_shape_mismatch(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_model("model.safetensors", -1, 7);
    expect_load_error("model.safetensors", "\"model.layers.0.mlp.gate_proj.weight\"", "[17, 8]", "[16, 8]", NULL);
}

static void test_missing_tensor(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_model("model.safetensors", 9, -1);
    expect_load_error("model.safetensors", "\"model.layers.0.mlp.down_proj.weight\"", "missing", "[8, 16]", NULL);
}

/* config.json says 1 layer, the checkpoint holds 2: refused, not truncated. */
static void test_extra_layer(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    static float data[16 * 16];
    tpi_st_out out[N_TENSORS + 1];
    for (int i = 0; i < N_TENSORS; i++)
        out[i] = (tpi_st_out){.name = tensors[i].name, .dtype = TPI_F32, .n_dims = tensors[i].d1 ? 2 : 1,
                              .shape = {tensors[i].d0, tensors[i].d1}, .data = data};
    out[N_TENSORS] = (tpi_st_out){.name = "model.layers.1.input_layernorm.weight", .dtype = TPI_F32, .n_dims = 1,
                                  .shape = {8}, .data = data};
    tpi_error err = {0};
    assert_int_equal(tpi_st_write(path("model.safetensors"), out, N_TENSORS + 1, &err), 0);
    expect_load_error("model.safetensors", "\"model.layers.1.input_layernorm.weight\"", "num_hidden_layers = 1",
                      NULL);
}

static void test_index_missing_shard(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_model("model-00001-of-00002.safetensors", -1, -1);
    put("model.safetensors.index.json",
        "{\"metadata\":{},\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00002.safetensors\","
        "\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_load_error("model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing", NULL);
}

static void test_sharded_ok(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_model("model-00001-of-00002.safetensors", 11, -1); /* all but lm_head */
    /* shard 2: lm_head only */
    static float data[16 * 8];
    for (int i = 0; i < 128; i++)
        data[i] = 0.02f * (float)(i % 5 + 1);
    tpi_st_out head = {.name = "lm_head.weight", .dtype = TPI_F32, .n_dims = 2, .shape = {16, 8}, .data = data};
    tpi_error err = {0};
    assert_int_equal(tpi_st_write(path("model-00002-of-00002.safetensors"), &head, 1, &err), 0);
    char index[4096] = "{\"metadata\":{},\"weight_map\":{";
    for (int i = 0; i < N_TENSORS; i++)
        snprintf(index + strlen(index), sizeof index - strlen(index), "%s\"%s\":\"model-0000%d-of-00002.safetensors\"",
                 i ? "," : "", tensors[i].name, i == 11 ? 2 : 1);
    strcat(index, "}}");
    put("model.safetensors.index.json", index);
    tpi_model *m = NULL;
    assert_int_equal(tpi_model_load(&m, tmp, NULL, &err), 0);
    tpi_model_free(m);
}

/* ---- Strict files: safetensors layout, sharded checkpoints, file types ---- */

/* Like expect_load_error, and the code must be `code`. */
static void expect_load_code(int code, const char *first, ...)
{
    tpi_model *m = NULL;
    tpi_error err = {0};
    int rc = tpi_model_load(&m, tmp, NULL, &err);
    printf("  message: %s\n", err.msg);
    assert_int_equal(rc, code);
    assert_null(m);
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        if (!strstr(err.msg, s))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, s);
    va_end(ap);
}

/* A model directory whose model.safetensors has header `hdr` and `data_bytes`
 * zero bytes of data: loading is TPI_EFORMAT naming the file, a and b. */
static void st_bad(const char *hdr, size_t data_bytes, const char *a, const char *b)
{
    reset();
    put("config.json", config);
    write_raw("model.safetensors", strlen(hdr), hdr, data_bytes);
    expect_load_code(TPI_EFORMAT, "model.safetensors", a, b, NULL);
}

#define F4(name, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" #b "," #e "]}"

static void test_st_layout(void **s)
{
    (void)s;
    st_bad("{" F4("a", 0, 16) "," F4("b", 20, 36) "}", 36, "hole of 4 bytes", "\"a\"");
    st_bad("{" F4("a", 4, 20) "}", 20, "hole of 4 bytes before the first tensor", "\"a\"");
    st_bad("{" F4("a", 0, 16) "}", 20, "4 trailing bytes", "\"a\"");
    st_bad("{}", 8, "8 trailing bytes", "tensors end at 0");
    st_bad("{" F4("b", 16, 32) "," F4("a", 0, 16) "," F4("c", 16, 32) "}", 32, "overlapping", "\"b\"");
    /* A zero-size tensor inside another's bytes is a broken layout too. */
    st_bad("{" F4("a", 0, 16) ",\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 16,
           "overlapping", "\"z\"");
    st_bad("{" F4("a", 0, 4611686018427387904) "}", 16, "\"a\"", "out of range");
}

/* Zero-size tensors at the ends and between others are valid, and found by name. */
static void test_st_zero_size_ok(void **s)
{
    (void)s;
    reset();
    write_raw("z.safetensors", 0, "", 0);
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},\"z0\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                      F4("a", 0, 16) ",\"z1\":{\"dtype\":\"BF16\",\"shape\":[2,0],\"data_offsets\":[16,16]}}";
    write_raw("z.safetensors", strlen(hdr), hdr, 16);
    tpi_st_file *f = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_st_open(&f, path("z.safetensors"), &err), 0);
    assert_int_equal(f->n_tensors, 3);
    assert_non_null(tpi_st_find(f, "z1"));
    assert_int_equal(tpi_st_find(f, "a")->bytes, 16);
    assert_null(tpi_st_find(f, "b"));
    tpi_st_close(f);
}

static void test_st_names(void **s)
{
    (void)s;
    st_bad("{" F4("a", 0, 16) "," F4("a", 16, 32) "}", 32, "\"a\"", "more than once");
    /* cJSON would cut "a\u0000evil" to "a": the NUL must be seen in the raw text. */
    st_bad("{" F4("a", 0, 16) "," F4("a\\u0000evil", 16, 32) "}", 32, "contains NUL", "a\\u0000evil");
    st_bad("{\"a\":{\"dtype\":\"F32\\u0000x\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "contains NUL", "F32");
    /* An escaped backslash before "u0000" is not a NUL. */
    reset();
    const char *ok = "{" F4("a\\\\u0000", 0, 16) "}";
    write_raw("ok.safetensors", strlen(ok), ok, 16);
    tpi_st_file *f = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_st_open(&f, path("ok.safetensors"), &err), 0);
    assert_non_null(tpi_st_find(f, "a\\u0000"));
    tpi_st_close(f);
    st_bad("{" F4("a\xff", 0, 16) "}", 16, "not UTF-8", "0xff");
    st_bad("{" F4("\xc0\x80", 0, 16) "}", 16, "not UTF-8", "0xc0"); /* overlong NUL */
}

static void test_st_header(void **s)
{
    (void)s;
    reset();
    put("config.json", config);
    write_raw("model.safetensors", (uint64_t)1 << 63, "{}", 0);
    expect_load_code(TPI_EFORMAT, "model.safetensors", "header length 9223372036854775808", "100000000", NULL);
    write_raw("model.safetensors", 100000001, "{}", 0);
    expect_load_code(TPI_EFORMAT, "model.safetensors", "over the 100000000-byte limit", NULL);
    st_bad("{" F4("a", 0, 16) "} x", 16, "text after the JSON object", "byte 56");
    st_bad("[1]", 0, "not a JSON object", "header");
    st_bad("{\"__metadata__\":{\"format\":1}}", 0, "\"__metadata__\"", "\"format\"");
    st_bad("{\"__metadata__\":[]}", 0, "\"__metadata__\"", "object of strings");
    st_bad("{" F4("a", 0, 16) ",\"__metadata__\":{},\"__metadata__\":{}}", 16, "\"__metadata__\"", "more than once");
    st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,1]}}",
           1, "\"a\"", "shape overflows");
    st_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, "\"a\"", "dtype F16 x shape needs 6");
}

/* A two-shard checkpoint: shard 1 holds all but lm_head (and `extra1`), shard
 * 2 lm_head (and `extra2`); the index gives lm_head to `head_shard` and adds
 * `more` (JSON members, or ""). */
static void write_shards(const char *extra1, const char *extra2, const char *head_shard, const char *more)
{
    reset();
    put("config.json", config);
    static float data[16 * 16];
    tpi_st_out out[N_TENSORS + 1];
    int n = 0;
    for (int i = 0; i < N_TENSORS - 1; i++)
        out[n++] = (tpi_st_out){.name = tensors[i].name, .dtype = TPI_F32, .n_dims = tensors[i].d1 ? 2 : 1,
                                .shape = {tensors[i].d0, tensors[i].d1}, .data = data};
    if (extra1)
        out[n++] = (tpi_st_out){.name = extra1, .dtype = TPI_F32, .n_dims = 1, .shape = {8}, .data = data};
    tpi_error err = {0};
    assert_int_equal(tpi_st_write(path("model-00001-of-00002.safetensors"), out, n, &err), 0);
    out[0] = (tpi_st_out){.name = "lm_head.weight", .dtype = TPI_F32, .n_dims = 2, .shape = {16, 8}, .data = data};
    if (extra2)
        out[1] = (tpi_st_out){.name = extra2, .dtype = TPI_F32, .n_dims = 1, .shape = {8}, .data = data};
    assert_int_equal(tpi_st_write(path("model-00002-of-00002.safetensors"), out, extra2 ? 2 : 1, &err), 0);
    char index[4096] = "{\"metadata\":{},\"weight_map\":{";
    for (int i = 0; i < N_TENSORS - 1; i++)
        snprintf(index + strlen(index), sizeof index - strlen(index),
                 "\"%s\":\"model-00001-of-00002.safetensors\",", tensors[i].name);
    snprintf(index + strlen(index), sizeof index - strlen(index), "\"lm_head.weight\":\"%s\"%s}}", head_shard, more);
    put("model.safetensors.index.json", index);
}

static void test_index_wrong_shard(void **s)
{
    (void)s;
    /* model.norm.weight in shard 2 too, while the map gives it to shard 1 */
    write_shards(NULL, "model.norm.weight", "model-00002-of-00002.safetensors", "");
    expect_load_code(TPI_EFORMAT, "model-00002-of-00002.safetensors", "\"model.norm.weight\"", "gives it to",
                     "model-00001-of-00002.safetensors", NULL);
    write_shards("stray.weight", NULL, "model-00002-of-00002.safetensors", "");
    expect_load_code(TPI_EFORMAT, "model-00001-of-00002.safetensors", "\"stray.weight\"", "does not list",
                     "model.safetensors.index.json", NULL);
    /* the map gives lm_head to shard 1, which lacks it */
    write_shards(NULL, NULL, "model-00001-of-00002.safetensors", "");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"lm_head.weight\"",
                     "model-00001-of-00002.safetensors", "does not hold it", NULL);
    write_shards(NULL, NULL, "model-00002-of-00002.safetensors", ",\"lm_head.weight\":\"x.safetensors\"");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"lm_head.weight\"", "more than once", NULL);
    write_shards(NULL, NULL, "model-00002-of-00002.safetensors", "");
    tpi_model *m = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_model_load(&m, tmp, NULL, &err), 0);
    tpi_model_free(m);
}

static void test_index_shard_paths(void **s)
{
    (void)s;
    write_shards(NULL, NULL, "../model-00002-of-00002.safetensors", "");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"lm_head.weight\"", "\"..\" component", NULL);
    write_shards(NULL, NULL, "..", "");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"..\" component", NULL);
    write_shards(NULL, NULL, "/etc/passwd", "");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"/etc/passwd\"", "absolute path", NULL);
    write_shards(NULL, NULL, "sub/x.safetensors", "");
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"sub/x.safetensors\"", "file name", NULL);
    /* A symlink inside the directory that leads to a valid shard outside it. */
    char *out = tu_mkdtemp();
    assert_non_null(out);
    write_shards(NULL, NULL, "head.safetensors", "");
    char *target = tu_path(out, "head.safetensors");
    assert_int_equal(rename(path("model-00002-of-00002.safetensors"), target), 0);
    assert_int_equal(symlink(target, path("head.safetensors")), 0);
    expect_load_code(TPI_EFORMAT, "model.safetensors.index.json", "\"head.safetensors\"", "outside the model directory",
                     NULL);
    free(target);
    tu_rmdir(out);
    free(out);
}

/* Every test here must return at once: a FIFO opened for reading without
 * O_NONBLOCK would wait for a writer forever (ctest's TIMEOUT backs this up). */
static void test_file_kinds(void **s)
{
    (void)s;
    reset();
    write_model("model.safetensors", -1, -1);
    assert_int_equal(mkfifo(path("config.json"), 0600), 0);
    expect_load_code(TPI_EIO, "config.json", "is not a regular file (a FIFO)", NULL);
    unlink(path("config.json"));
    assert_int_equal(mkdir(path("config.json"), 0700), 0);
    expect_load_code(TPI_EIO, "config.json", "is a directory", NULL);
    rmdir(path("config.json"));
    assert_int_equal(symlink("config.json", path("config.json")), 0);
    expect_load_code(TPI_EIO, "config.json", "a symlink loop", NULL);
    unlink(path("config.json"));
    put("config.json", config);
    if (geteuid() != 0) { /* root reads any file */
        chmod(path("config.json"), 0);
        expect_load_code(TPI_EIO, "config.json", "permission denied", NULL);
        chmod(path("config.json"), 0600);
    }
    unlink(path("model.safetensors"));
    assert_int_equal(mkdir(path("model.safetensors"), 0700), 0);
    expect_load_code(TPI_EIO, "model.safetensors", "is a directory", NULL);
    rmdir(path("model.safetensors"));
    assert_int_equal(mkfifo(path("model.safetensors.index.json"), 0600), 0);
    expect_load_code(TPI_EIO, "model.safetensors.index.json", "a FIFO", NULL);
    unlink(path("model.safetensors.index.json"));
    write_model("model.safetensors", -1, -1);
    assert_int_equal(mkfifo(path("generation_config.json"), 0600), 0);
    tpi_gen_opts o;
    tpi_error err = {0};
    assert_int_equal(tpi_gen_opts_default(&o, tmp, &err), TPI_EIO);
    assert_non_null(strstr(err.msg, "generation_config.json"));
    assert_non_null(strstr(err.msg, "a FIFO"));
    unlink(path("generation_config.json"));
    assert_int_equal(mkfifo(path("tokenizer.json"), 0600), 0);
    tpi_tokenizer *tk = NULL;
    assert_int_equal(tpi_tokenizer_load(&tk, tmp, &err), TPI_EIO);
    assert_non_null(strstr(err.msg, "tokenizer.json"));
    assert_non_null(strstr(err.msg, "a FIFO"));
}

/* Appends to a growing buffer; the test owns and frees it. */
static void grow(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
}

/* 100k zero-size tensors over 4 shards: open (validation included) and a
 * lookup of each must be O(n log n), well under a second of CPU time (a
 * linear scan per tensor takes minutes). CPU time, not wall time, so that a
 * loaded machine does not fail the test. */
static void test_index_100k(void **s)
{
    (void)s;
    reset();
    enum { N = 100000, SHARDS = 4 };
    char *idx = NULL, *hdr[SHARDS] = {0}, item[160];
    size_t ilen = 0, icap = 0, hlen[SHARDS] = {0}, hcap[SHARDS] = {0};
    grow(&idx, &ilen, &icap, "{\"weight_map\":{", 15);
    for (int k = 0; k < SHARDS; k++)
        grow(&hdr[k], &hlen[k], &hcap[k], "{", 1);
    for (int i = 0; i < N; i++) {
        int k = i % SHARDS;
        int n = snprintf(item, sizeof item, "%s\"t.%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                         hlen[k] > 1 ? "," : "", i);
        grow(&hdr[k], &hlen[k], &hcap[k], item, (size_t)n);
        n = snprintf(item, sizeof item, "%s\"t.%d\":\"s%d.safetensors\"", i ? "," : "", i, k);
        grow(&idx, &ilen, &icap, item, (size_t)n);
    }
    grow(&idx, &ilen, &icap, "}}", 2);
    put("model.safetensors.index.json", idx);
    for (int k = 0; k < SHARDS; k++) {
        grow(&hdr[k], &hlen[k], &hcap[k], "}", 1);
        snprintf(item, sizeof item, "s%d.safetensors", k);
        write_raw(item, hlen[k], hdr[k], 0);
        free(hdr[k]);
    }
    free(idx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    tpi_ckpt *c = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_ckpt_open(&c, tmp, &err), 0);
    for (int i = 0; i < N; i++) {
        const tpi_st_tensor *t;
        const tpi_st_file *f;
        snprintf(item, sizeof item, "t.%d", i);
        assert_int_equal(tpi_ckpt_find(c, item, &t, &f), 0);
        assert_string_equal(t->name, item);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    tpi_ckpt_free(c);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
#if defined(__SANITIZE_ADDRESS__)
    /* ASan with full malloc stacks (LSAN_OPTIONS) costs ~40x on this
     * allocation-heavy parse; the bound is checked by the optimized build. */
    printf("  100k-tensor index: %.3f s of CPU under ASan (not timed)\n", secs);
#else
#if defined(__OPTIMIZE__)
    const double limit = 1.0;
#else
    const double limit = 3.0; /* -O0 */
#endif
    printf("  100k-tensor index: open + 100k lookups in %.3f s of CPU (limit %.1f s)\n", secs, limit);
    assert_true(secs < limit);
#endif
}

/* ==== Sizes, numbers and config: config.json, generation_config.json and
 * tpi_gen_opts values out of range, non-integers, non-finite numbers and
 * products that overflow. Each case is one class of guard (docs/BAD_INPUT.md). */

/* The 1-layer config as key/value pairs, so a case can replace or add fields. */
static const char *const cfg_base[][2] = {
    {"architectures", "[\"LlamaForCausalLM\"]"}, {"hidden_size", "8"}, {"intermediate_size", "16"},
    {"num_hidden_layers", "1"}, {"num_attention_heads", "2"}, {"num_key_value_heads", "2"},
    {"vocab_size", "16"}, {"rms_norm_eps", "1e-5"}, {"tie_word_embeddings", "false"},
};

/* Writes config.json from cfg_base with the (key, value) pairs given (NULL
 * ends them) replacing or adding fields, and the valid weights beside it. */
static void put_config_with(const char *key, ...)
{
    reset();
    char text[4096] = "{";
    const char *keys[16], *vals[16];
    int n = 0;
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k && n < 16; k = va_arg(ap, const char *))
        keys[n] = k, vals[n++] = va_arg(ap, const char *);
    va_end(ap);
    for (size_t i = 0; i < sizeof cfg_base / sizeof cfg_base[0]; i++) {
        const char *v = cfg_base[i][1];
        for (int j = 0; j < n; j++)
            if (keys[j] && !strcmp(keys[j], cfg_base[i][0]))
                v = vals[j], keys[j] = NULL;
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"%s\":%s", i ? "," : "", cfg_base[i][0], v);
    }
    for (int j = 0; j < n; j++)
        if (keys[j])
            snprintf(text + strlen(text), sizeof text - strlen(text), ",\"%s\":%s", keys[j], vals[j]);
    strcat(text, "}");
    put("config.json", text);
    write_model("model.safetensors", -1, -1);
}

/* Every size has a limit, checked before a loop or an allocation uses it:
 * 10^9 layers fail at once rather than spinning in the shard planner. */
static void test_cfg_size_limits(void **s)
{
    (void)s;
    static const char *const cases[][3] = {
        {"num_hidden_layers", "1000000000", "[1, 1024]"},
        {"hidden_size", "2097152", "[1, 1048576]"},
        {"intermediate_size", "8388608", "[1, 4194304]"},
        {"num_attention_heads", "131072", "[1, 65536]"},
        {"num_key_value_heads", "131072", "[1, 65536]"},
        {"head_dim", "32768", "[1, 16384]"},
        {"vocab_size", "2147483648", "[1, 2147483647]"},
        {"max_position_embeddings", "4294967296", "[1, 2147483648]"},
        {"num_hidden_layers", "0", "[1, 1024]"},
        {"hidden_size", "-8", "[1, 1048576]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_config_with(cases[i][0], cases[i][1], NULL);
        expect_load_error("config.json", cases[i][0], cases[i][2], cases[i][1], NULL);
    }
}

/* Products of sizes: heads x head_dim that would wrap (2^32 x 2^32 + 16 is
 * 2^64 + 2^36 = 2^36 mod 2^64) or that pass the limit without wrapping. */
static void test_cfg_size_products(void **s)
{
    (void)s;
    put_config_with("num_attention_heads", "4294967296", "head_dim", "4294967312", NULL);
    expect_load_error("config.json", "num_attention_heads", "[1, 65536]", NULL);
    put_config_with("num_attention_heads", "65536", "head_dim", "16384", NULL);
    expect_load_error("config.json", "num_attention_heads * head_dim", "65536 * 16384", "1048576", NULL);
    /* without head_dim, hidden_size splits evenly over the heads (transformers) */
    put_config_with("hidden_size", "9", NULL);
    expect_load_error("config.json", "hidden_size (9)", "multiple of num_attention_heads (2)", NULL);
    /* the checkpoint's shapes follow the config: head_dim 8 makes q_proj [16, 8] */
    put_config_with("head_dim", "8", NULL);
    expect_load_error("q_proj", NULL);
}

/* Integers are integers, in range before any cast: 2^32 + 5 is not 5. */
static void test_cfg_token_ids(void **s)
{
    (void)s;
    static const char *const cases[][3] = {
        {"bos_token_id", "4294967301", "[-1, 15]"}, {"bos_token_id", "16", "[-1, 15]"},
        {"bos_token_id", "1.5", "[-1, 15]"},        {"pad_token_id", "99", "[-1, 15]"},
        {"eos_token_id", "16", "[0, 15]"},          {"eos_token_id", "[1, 4294967298]", "entry 1"},
        {"eos_token_id", "[1, -1]", "entry 1"},     {"hidden_size", "8.5", "integer"},
        {"eos_token_id", "\"2\"", "a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_config_with(cases[i][0], cases[i][1], NULL);
        expect_load_error("config.json", cases[i][0], cases[i][2], NULL);
    }
    /* generation_config.json's eos ids too */
    put_config_with("eos_token_id", "2", NULL);
    put("generation_config.json", "{\"eos_token_id\":[2, 4294967298]}");
    expect_load_error("generation_config.json", "eos_token_id", "[0, 15]", "4294967298", NULL);
}

/* RoPE and norm constants: positive (and finite: 1e999 parses as infinity). */
static void test_cfg_semantics(void **s)
{
    (void)s;
    static const char *const cases[][3] = {
        {"rope_theta", "0", "rope_theta"},
        {"rope_theta", "-10000", "rope_theta"},
        {"rope_theta", "1e999", "finite"},
        {"rms_norm_eps", "0", "rms_norm_eps"},
        {"sliding_window", "-5", "sliding_window"},
        {"rope_scaling", "{\"rope_type\":\"linear\",\"factor\":-2}", "factor"},
        {"rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":-1,\"high_freq_factor\":4,"
                         "\"original_max_position_embeddings\":8192}", "0 < low_freq_factor < high_freq_factor"},
        {"rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":1,"
                         "\"original_max_position_embeddings\":8192}", "0 < low_freq_factor < high_freq_factor"},
        {"rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4,"
                         "\"original_max_position_embeddings\":0}", "original_max_position_embeddings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_config_with(cases[i][0], cases[i][1], NULL);
        expect_load_error("config.json", cases[i][2], NULL);
    }
    put_config_with("architectures", "[\"Qwen2ForCausalLM\"]", "use_sliding_window", "true", "sliding_window", "4",
                    "max_window_layers", "-1", NULL);
    expect_load_error("config.json", "max_window_layers", "[0, 1024]", NULL);
}

/* generation_config.json: out of range or non-finite values, named with the file. */
static void test_gen_config_values(void **s)
{
    (void)s;
    static const char *const cases[][2] = {
        {"{\"do_sample\":true,\"temperature\":-1}", "temperature"},
        {"{\"temperature\":1e999}", "temperature"},
        {"{\"top_p\":0}", "top_p"},
        {"{\"top_p\":1.5}", "top_p"},
        {"{\"min_p\":2}", "min_p"},
        {"{\"repetition_penalty\":0}", "repetition_penalty"},
        {"{\"top_k\":-1}", "top_k"},
        {"{\"max_new_tokens\":-3}", "max_new_tokens"},
        {"{\"max_new_tokens\":2.5}", "max_new_tokens"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reset();
        put("generation_config.json", cases[i][0]);
        tpi_gen_opts o;
        tpi_error err = {0};
        int rc = tpi_gen_opts_default(&o, tmp, &err);
        printf("  message: %s\n", err.msg);
        assert_true(rc < 0);
        assert_non_null(strstr(err.msg, "generation_config.json"));
        assert_non_null(strstr(err.msg, cases[i][1]));
    }
}

/* tpi_gen_opts from a program: NaN passes every ordered comparison, so each
 * check is written to fail on it; a context that would overflow the KV
 * cache's size is refused before anything is allocated. */
static void test_gen_opts_values(void **s)
{
    (void)s;
    put_config_with("max_position_embeddings", "64", NULL);
    tpi_model *m = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_model_load(&m, tmp, NULL, &err), 0);
    int32_t ids[] = {1, 2};
    int64_t len = 2;
    static const struct { double temp, top_p, min_p, rep; int64_t max_ctx; const char *needle; } cases[] = {
        {NAN, 1, 0, 1, 0, "temperature"},  {INFINITY, 1, 0, 1, 0, "temperature"}, {-1, 1, 0, 1, 0, "temperature"},
        {1, NAN, 0, 1, 0, "top_p"},        {1, 0, 0, 1, 0, "top_p"},              {1, 1, NAN, 1, 0, "min_p"},
        {1, 1, 0, NAN, 0, "repetition"},   {1, 1, 0, INFINITY, 0, "repetition"},
        {0, 1, 0, 1, (int64_t)1 << 57, "max_ctx"}, {0, 1, 0, 1, -1, "max_ctx"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tpi_gen_opts o;
        assert_int_equal(tpi_gen_opts_default(&o, NULL, &err), 0);
        o.sampling.temperature = cases[i].temp, o.sampling.top_p = cases[i].top_p;
        o.sampling.min_p = cases[i].min_p, o.sampling.repetition_penalty = cases[i].rep;
        o.max_ctx = cases[i].max_ctx, o.max_new_tokens = 2;
        tpi_gen_state *st = NULL;
        int rc = tpi_gen_state_create(&st, m, ids, &len, 1, &o, &err);
        printf("  message: %s\n", err.msg);
        assert_int_equal(rc, TPI_EINVAL);
        assert_null(st);
        assert_non_null(strstr(err.msg, cases[i].needle));
    }
    /* the KV cache's bytes: layers x sequences x positions x KV width, checked for overflow */
    tpi_kv *kv = NULL;
    assert_int_equal(tpi_kv_create(&kv, m, 1, (int64_t)1 << 62, &err), TPI_ELIMIT); /* 2^62 x 2 x 4 x 4 bytes */
    assert_non_null(strstr(err.msg, "KV cache"));
    assert_int_equal(tpi_kv_create(&kv, m, 1, (int64_t)1 << 57, &err), TPI_ELIMIT); /* 2^62 bytes: past 2^47 */
    assert_null(kv);
    assert_int_equal(tpi_kv_create(&kv, m, (int64_t)1 << 40, (int64_t)1 << 20, &err), TPI_ELIMIT);
    assert_null(kv);
    tpi_model_free(m);
}
/* ==== end of sizes, numbers and config ==== */

/* ==== memory admission (core/meminfo.c, DESIGN.md "Memory admission") ==== */

/* The test model with an explicit memory limit. Its KV cache takes 64 bytes
 * per position (1 layer x 2 KV heads x head_dim 4 x 4 bytes, keys and values). */
static tpi_model *load_limited(int64_t limit)
{
    reset();
    put("config.json", config);
    write_model("model.safetensors", -1, -1);
    tpi_model *m = NULL;
    tpi_error err = {0};
    tpi_load_opts o = {.mem_limit_bytes = limit};
    assert_int_equal(tpi_model_load(&m, tmp, &o, &err), 0);
    return m;
}

static void test_mem_kv_admission(void **s)
{
    (void)s;
    tpi_model *m = load_limited((int64_t)1 << 20);
    tpi_error err = {0};
    tpi_kv *a = NULL, *b = NULL;
    /* 1 x 20000 positions: 1.2 MiB, over the 1 MiB limit */
    assert_int_equal(tpi_kv_create(&a, m, 1, 20000, &err), TPI_ENOMEM);
    printf("  message: %s\n", err.msg);
    assert_null(a);
    assert_non_null(strstr(err.msg, "KV cache of 1 sequences x 20000 positions needs 1.2 MiB on rank 0, "
                                    "but 1 MiB is available (the limit given, mem_limit_bytes 1 MiB)"));
    /* two caches of 628 KiB each (10000 positions in whole blocks of 64:
     * 10048) fit alone, not together */
    assert_int_equal(tpi_kv_create(&a, m, 1, 10000, &err), 0);
    assert_int_equal(tpi_kv_create(&b, m, 1, 10000, &err), TPI_ENOMEM);
    printf("  message: %s\n", err.msg);
    assert_null(b);
    assert_non_null(strstr(err.msg, "needs 628 KiB on rank 0, but 396 KiB is available"));
    assert_non_null(strstr(err.msg, "628 KiB already reserved"));
    /* freeing the first makes room for the second */
    tpi_kv_free(a);
    assert_int_equal(tpi_kv_create(&b, m, 1, 10000, &err), 0);
    tpi_kv_free(b);
    assert_int_equal(tpi_mem_reserved(), 0);
    tpi_model_free(m);
    /* -1: no check; below -1: a bad option */
    m = load_limited(-1);
    assert_int_equal(tpi_kv_create(&a, m, 1, 20000, &err), 0);
    tpi_kv_free(a);
    tpi_model_free(m);
    tpi_load_opts o = {.mem_limit_bytes = -2};
    assert_int_equal(tpi_model_load(&m, tmp, &o, &err), TPI_EINVAL);
    assert_non_null(strstr(err.msg, "mem_limit_bytes"));
}

/* Generation admits its KV cache, then the activations of a prefill chunk. */
static void test_mem_gen_admission(void **s)
{
    (void)s;
    /* the KV cache at max_ctx 64 is 4 KiB; the activations some hundred bytes more */
    tpi_model *m = load_limited(4096 + 256);
    tpi_error err = {0};
    int32_t ids[] = {1, 2};
    int64_t len = 2;
    tpi_gen_opts o;
    assert_int_equal(tpi_gen_opts_default(&o, NULL, &err), 0);
    o.max_ctx = 64, o.max_new_tokens = 2;
    tpi_gen_state *st = NULL;
    assert_int_equal(tpi_gen_state_create(&st, m, ids, &len, 1, &o, &err), TPI_ENOMEM);
    printf("  message: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "the working memory of generation (a 2-token prefill chunk, logits of 1 sequences) needs 896 B"));
    assert_int_equal(tpi_mem_reserved(), 0); /* the admitted KV cache was freed with the state */
    o.max_ctx = 128;
    assert_int_equal(tpi_gen_state_create(&st, m, ids, &len, 1, &o, &err), TPI_ENOMEM);
    assert_non_null(strstr(err.msg, "KV cache of 1 sequences x 128 positions needs 8 KiB"));
    tpi_model_free(m);
    m = load_limited(1 << 20);
    o.max_ctx = 64;
    assert_int_equal(tpi_gen_state_create(&st, m, ids, &len, 1, &o, &err), 0);
    tpi_gen_state_free(st);
    tpi_model_free(m);
}

/* The probe's parsers on the texts the kernel writes, and the probe itself. */
static void test_mem_probe(void **s)
{
    (void)s;
    int64_t v = 0;
    assert_int_equal(tpi_meminfo_parse("MemTotal:       32768 kB\nMemFree: 1 kB\nMemAvailable:   1024 kB\n", &v), 0);
    assert_int_equal(v, 1024 * 1024);
    assert_int_equal(tpi_meminfo_parse("MemTotal: 32768 kB\nMemFree: 1 kB\n", &v), -1); /* kernels before 3.14 */
    assert_int_equal(tpi_meminfo_parse("XMemAvailable: 5 kB\n", &v), -1);
    assert_int_equal(tpi_cgroup_parse_limit("max\n", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(tpi_cgroup_parse_limit("536870912\n", &v), 0);
    assert_int_equal(v, 536870912);
    assert_int_equal(tpi_cgroup_parse_limit("9223372036854771712\n", &v), 0); /* v1's "no limit" */
    assert_int_equal(v, -1);
    assert_int_equal(tpi_cgroup_parse_limit("", &v), -1); /* an empty or missing file */
    assert_int_equal(tpi_cgroup_parse_limit("12x\n", &v), -1);
    assert_int_equal(tpi_cgroup_parse_limit("-1\n", &v), -1);
    char dir[64];
    int v1 = -1;
    assert_int_equal(tpi_cgroup_parse_self("0::/user.slice/job.scope\n", dir, sizeof dir, &v1), 0);
    assert_string_equal(dir, "/user.slice/job.scope");
    assert_int_equal(v1, 0);
    assert_int_equal(tpi_cgroup_parse_self("5:devices:/\n4:cpu,memory:/docker/abc\n0::/\n", dir, sizeof dir, &v1), 0);
    assert_string_equal(dir, "/docker/abc"); /* hybrid: v1's memory controller limits */
    assert_int_equal(v1, 1);
    assert_int_equal(tpi_cgroup_parse_self("3:cpuset:/\n", dir, sizeof dir, &v1), -1);
    assert_int_equal(tpi_cgroup_parse_self("", dir, sizeof dir, &v1), -1);
    tpi_mem_figures f;
    assert_int_equal(tpi_mem_available(&f), 0);
    printf("  probe: available %lld (MemAvailable %lld, cgroup room %lld, limit %lld)\n", (long long)f.available,
           (long long)f.mem_available, (long long)f.cgroup_room, (long long)f.cgroup_limit);
    assert_true(f.available > 0);
    assert_true(f.available <= f.mem_available || f.mem_available < 0);
}
/* ==== end of memory admission ==== */


/* Found by fuzz_tokenizer: decoding only skipped specials through a Strip
 * decoder gave it empty pieces with no text buffer, and it computed NULL + 0
 * (undefined; clang's UBSan stops there). The decode must be "", in one call
 * and streamed. */
static void test_tok_decode_only_skipped(void **state)
{
    (void)state;
    put("tokenizer.json",
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<s>\",\"special\":true,\"lstrip\":false,"
        "\"rstrip\":false,\"normalized\":false,\"single_word\":false}],"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"<s>\":0,\"a\":1},\"merges\":[]}}");
    tpi_tokenizer *tk = NULL;
    tpi_error err = {0};
    if (tpi_tokenizer_load(&tk, tmp, &err))
        fail_msg("%s", err.msg);
    const int32_t ids[] = {0, 0};
    char *text = NULL;
    assert_int_equal(tpi_tokenizer_decode(tk, ids, 2, 1, &text, NULL, &err), 0);
    assert_string_equal(text, "");
    free(text);
    tpi_detok_stream *s = NULL;
    const char *piece;
    size_t n;
    assert_int_equal(tpi_detok_stream_create(&s, tk, 1, &err), 0);
    assert_int_equal(tpi_detok_stream_push(s, 0, &piece, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tpi_detok_stream_flush(s, &piece, &n, &err), 0);
    assert_int_equal(n, 0);
    tpi_detok_stream_free(s);
    tpi_tokenizer_free(tk);
    unlink(path("tokenizer.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_baseline),     cmocka_unit_test(test_missing_config),
        cmocka_unit_test(test_config_not_json),    cmocka_unit_test(test_unknown_architecture),
        cmocka_unit_test(test_missing_field),      cmocka_unit_test(test_bad_field_value),
        cmocka_unit_test(test_st_short),           cmocka_unit_test(test_st_header_past_end),
        cmocka_unit_test(test_st_header_not_json), cmocka_unit_test(test_st_offsets_out_of_range),
        cmocka_unit_test(test_st_offsets_overlap), cmocka_unit_test(test_st_size_mismatch),
        cmocka_unit_test(test_st_unsupported_dtype), cmocka_unit_test(test_shape_mismatch),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_extra_layer),     cmocka_unit_test(test_index_missing_shard),
        cmocka_unit_test(test_sharded_ok),
        /* strict files */
        cmocka_unit_test(test_st_layout),          cmocka_unit_test(test_st_zero_size_ok),
        cmocka_unit_test(test_st_names),           cmocka_unit_test(test_st_header),
        cmocka_unit_test(test_index_wrong_shard),  cmocka_unit_test(test_index_shard_paths),
        cmocka_unit_test(test_file_kinds),         cmocka_unit_test(test_index_100k),
        /* sizes, numbers and config */
        cmocka_unit_test(test_cfg_size_limits),   cmocka_unit_test(test_cfg_size_products),
        cmocka_unit_test(test_cfg_token_ids),     cmocka_unit_test(test_cfg_semantics),
        cmocka_unit_test(test_gen_config_values), cmocka_unit_test(test_gen_opts_values),
        /* memory admission */
        cmocka_unit_test(test_mem_kv_admission),  cmocka_unit_test(test_mem_gen_admission),
        cmocka_unit_test(test_mem_probe),
        /* found by fuzzing */
        cmocka_unit_test(test_tok_decode_only_skipped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
