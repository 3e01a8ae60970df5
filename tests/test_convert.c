/* tpi_convert end to end: a checkpoint converted to GGUF and loaded back
 * gives the logits of the checkpoint itself.
 * - F32: stories260K-hf and the golden Llama (q/k permuted for llama.cpp's
 *   adjacent-pair RoPE), Llama 3 rope scaling (rope_freqs.weight), Qwen2
 *   (biases, no permutation), Qwen3 (q/k norms): max|gguf - hf| <= 1e-5 *
 *   max|hf| (the same weights; only the order of float sums may differ).
 * - Q8_0 and Q4_0: the converted file against the checkpoint loaded with
 *   tpi_load_opts.quant of the same type, which must quantize to the same
 *   blocks: the same 1e-5 bound.
 * - The tokenizer written into stories260K's GGUF encodes as tokenizer.json.
 * Needs the GGUF model loader (tpi_model_load of a .gguf) and the GGUF
 * tokenizer; the golden checkpoints lack a tokenizer, so each is converted
 * with a byte-level one written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "testutil.h"
#include "tpinfer.h"

static const char *shared;
static const int32_t ids[] = {1, 58, 215, 237, 214, 160, 34, 246, 62, 140, 24, 179};
#define N_IDS ((int64_t)(sizeof ids / sizeof ids[0]))

/* tokenizer.json of n byte-level tokens and no merges (GPT-2's pre-tokenizer). */
static void write_tokenizer(const char *dir, int n)
{
    size_t cap = 64 + (size_t)n * 24 + 256;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s\"t%d\": %d", i ? ", " : "", i, i);
    p += sprintf(p, "}, \"merges\": []}, \"added_tokens\": [], "
                    "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}}");
    assert_int_equal(tu_write_file(tu_in(dir, "tokenizer.json"), s, (size_t)(p - s)), 0);
    free(s);
}

/* A directory holding links to golden/NAME's checkpoint and a tokenizer. */
static char *golden_dir(const char *name)
{
    char *dir = tu_mkdtemp(), *src = tu_path(shared, "golden");
    char *model = tu_path(src, name);
    assert_int_equal(symlink(tu_in(model, "config.json"), tu_in(dir, "config.json")), 0);
    assert_int_equal(symlink(tu_in(model, "model.safetensors"), tu_in(dir, "model.safetensors")), 0);
    write_tokenizer(dir, 256);
    free(model);
    free(src);
    return dir;
}

/* Logits [N_IDS, vocab] of the model at path, loaded with quant; *vocab set. */
static float *logits(const char *path, const char *quant, int64_t *vocab)
{
    tpi_load_opts o = {.n_threads = 1, .quant = quant};
    tpi_model *m = NULL;
    tpi_error err = {0};
    if (tpi_model_load(&m, path, &o, &err))
        fail_msg("loading %s: %s", path, err.msg);
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    *vocab = info.vocab_size;
    float *out = malloc((size_t)(N_IDS * info.vocab_size) * sizeof *out);
    int64_t len = N_IDS;
    if (tpi_model_logits(m, ids, &len, 1, out, &err))
        fail_msg("logits of %s: %s", path, err.msg);
    tpi_model_free(m);
    return out;
}

static void convert(const char *dir, const char *type, const char *out)
{
    tpi_convert_opts o = {.model_dir = dir, .type = type, .out_path = out};
    tpi_error err = {0};
    if (tpi_convert(&o, NULL, &err))
        fail_msg("convert %s --type %s: %s", dir, type, err.msg);
}

/* Converts dir to `type` and compares its logits with dir's loaded with `quant`. */
static void check(const char *what, const char *dir, const char *type, const char *quant)
{
    char *tmp = tu_mkdtemp(), *gguf = tu_path(tmp, "model.gguf");
    convert(dir, type, gguf);
    int64_t v_ref, v_got;
    float *ref = logits(dir, quant, &v_ref), *got = logits(gguf, NULL, &v_got);
    assert_int_equal(v_got, v_ref);
    double rel = tu_rel_err(got, ref, (size_t)(N_IDS * v_ref));
    printf("%-28s %-5s max|gguf - hf| / max|hf| = %.2e\n", what, type, rel);
    if (!(rel <= 1e-5))
        fail_msg("%s converted to %s: logits differ by %.3g relative (bound 1e-5)", what, type, rel);
    free(ref);
    free(got);
    free(gguf);
    tu_rmdir(tmp);
    free(tmp);
}

static void test_f32_stories(void **state)
{
    (void)state;
    char *dir = tu_path(shared, "models/stories260K-hf");
    check("stories260K-hf", dir, "f32", NULL);
    free(dir);
}

static void test_f32_golden(void **state)
{
    (void)state;
    static const char *const names[] = {"llama-gqa", "llama3-rope-tied", "qwen2-bias", "qwen3-qknorm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *dir = golden_dir(names[i]);
        check(names[i], dir, "f32", NULL);
        tu_rmdir(dir);
        free(dir);
    }
}

static void test_quant_matches_load_quant(void **state)
{
    (void)state;
    static const char *const names[] = {"llama-gqa", "qwen2-bias"};
    static const char *const types[] = {"q8_0", "q4_0"};
    for (size_t i = 0; i < 2; i++) {
        char *dir = golden_dir(names[i]);
        for (size_t t = 0; t < 2; t++)
            check(names[i], dir, types[t], types[t]);
        tu_rmdir(dir);
        free(dir);
    }
}

/* Q4_K on 64 columns: every matrix falls back to Q4_0, and info says so. */
static void test_k_fallback(void **state)
{
    (void)state;
    char *dir = golden_dir("llama-gqa"), *tmp = tu_mkdtemp(), *gguf = tu_path(tmp, "k.gguf");
    tpi_convert_opts o = {.model_dir = dir, .type = "q4_k", .out_path = gguf};
    tpi_convert_info info;
    tpi_error err = {0};
    if (tpi_convert(&o, &info, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(info.n_fallback, 1 + 3 * 7 + 1); /* the embedding, 7 matrices a layer, the head */
    assert_non_null(strstr(info.fallback, "token_embd.weight: 64 columns, Q4_0 (not Q4_K)"));
    assert_string_equal(info.tokenizer, "gpt2 (gpt-2)");
    free(gguf);
    tu_rmdir(tmp);
    free(tmp);
    tu_rmdir(dir);
    free(dir);
}

static void test_tokenizer_stories(void **state)
{
    (void)state;
    static const char text[] = "Once upon a time, there was a little girl named Lily. She loved <s> candy!";
    char *dir = tu_path(shared, "models/stories260K-hf"), *tmp = tu_mkdtemp(), *gguf = tu_path(tmp, "s.gguf");
    convert(dir, "f32", gguf);
    tpi_tokenizer *a = NULL, *b = NULL;
    tpi_error err = {0};
    if (tpi_tokenizer_load(&a, dir, &err) || tpi_tokenizer_load(&b, gguf, &err))
        fail_msg("tokenizer: %s", err.msg);
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    assert_int_equal(tpi_tokenizer_encode(a, text, sizeof text - 1, 1, &x, &nx, &err), 0);
    assert_int_equal(tpi_tokenizer_encode(b, text, sizeof text - 1, 1, &y, &ny, &err), 0);
    assert_int_equal(ny, nx);
    assert_memory_equal(y, x, nx * sizeof *x);
    free(x);
    free(y);
    tpi_tokenizer_free(a);
    tpi_tokenizer_free(b);
    free(dir);
    free(gguf);
    tu_rmdir(tmp);
    free(tmp);
}

int main(void)
{
    if (!(shared = tu_shared_dir()))
        return TU_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_fallback),
        cmocka_unit_test(test_tokenizer_stories),
        cmocka_unit_test(test_f32_stories),
        cmocka_unit_test(test_f32_golden),
        cmocka_unit_test(test_quant_matches_load_quant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
