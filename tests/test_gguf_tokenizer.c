/* The tokenizer of a GGUF file against references: llama.cpp's vocabulary
 * test vectors (golden/gguf/vocab: ids from the Hugging Face tokenizer),
 * stories260K.gguf against the same vocabulary's tokenizer.json, GGUF files
 * written here from the shared tokenizer.json files (gpt-2, llama-bpe and
 * qwen2 pre-tokenizers) against transformers' ids, merge order by score on
 * a hand-made vocabulary, hostile metadata, and tokenizer.chat_template
 * found by the chat functions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "testutil.h"
#include "tokenizer/tokenizer.h"
#include "tpinfer.h"

static const char *shared;

/* ---- a GGUF writer (metadata only, no tensors) ---------------------------- */

typedef struct gw {
    uint8_t *p;
    size_t len, cap;
    uint64_t n_kv;
} gw;

static void put(gw *w, const void *d, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 256;
        w->p = realloc(w->p, w->cap);
        assert_non_null(w->p);
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void put_u32(gw *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(gw *w, uint64_t v) { put(w, &v, 8); }
static void put_strn(gw *w, const char *s, size_t n) { put_u64(w, n); put(w, s, n); }
static void put_str(gw *w, const char *s) { put_strn(w, s, strlen(s)); }

static void gw_init(gw *w)
{
    memset(w, 0, sizeof *w);
    put(w, "GGUF", 4);
    put_u32(w, 3);
    put_u64(w, 0); /* tensors */
    put_u64(w, 0); /* kv count, patched by gw_save */
}

static void key(gw *w, const char *k, uint32_t type)
{
    put_str(w, k);
    put_u32(w, type);
    w->n_kv++;
}

static void kv_str(gw *w, const char *k, const char *v) { key(w, k, 8); put_str(w, v); }
static void kv_u32(gw *w, const char *k, uint32_t v) { key(w, k, 4); put_u32(w, v); }
static void kv_i32(gw *w, const char *k, int32_t v) { key(w, k, 5); put(w, &v, 4); }
static void kv_bool(gw *w, const char *k, int v) { key(w, k, 7); uint8_t b = (uint8_t)v; put(w, &b, 1); }

static void arr_head(gw *w, const char *k, uint32_t type, uint64_t n)
{
    key(w, k, 9);
    put_u32(w, type);
    put_u64(w, n);
}

static void kv_strs(gw *w, const char *k, const char *const *v, size_t n)
{
    arr_head(w, k, 8, n);
    for (size_t i = 0; i < n; i++)
        put_str(w, v[i]);
}

static void kv_f32s(gw *w, const char *k, const float *v, size_t n) { arr_head(w, k, 6, n); put(w, v, 4 * n); }
static void kv_i32s(gw *w, const char *k, const int32_t *v, size_t n) { arr_head(w, k, 5, n); put(w, v, 4 * n); }

/* Writes the file into dir (padded to the 32-byte alignment) and frees w. */
static const char *gw_save(gw *w, const char *dir, const char *name)
{
    memcpy(w->p + 16, &w->n_kv, 8);
    static const uint8_t zero[32] = {0};
    put(w, zero, (32 - w->len % 32) % 32);
    const char *path = tu_in(dir, name);
    assert_int_equal(tu_write_file(path, w->p, w->len), 0);
    free(w->p);
    return path;
}

/* ---- helpers ------------------------------------------------------------- */

static tpi_tokenizer *load_path(const char *path)
{
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    if (tpi_tokenizer_load(&t, path, &err))
        fail_msg("loading %s: %s", path, err.msg);
    return t;
}

static tpi_tokenizer *load_shared(const char *rel)
{
    char *p = tu_path(shared, rel);
    tpi_tokenizer *t = load_path(p);
    free(p);
    return t;
}

static int32_t *encode(const tpi_tokenizer *t, const char *s, size_t len, int add_special, size_t *n)
{
    int32_t *ids;
    tpi_error err = {0};
    if (tpi_tokenizer_encode(t, s, len, add_special, &ids, n, &err))
        fail_msg("encode: %s", err.msg);
    return ids;
}

static char *decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special, size_t *len)
{
    char *s;
    tpi_error err = {0};
    if (tpi_tokenizer_decode(t, ids, n, skip_special, &s, len, &err))
        fail_msg("decode: %s", err.msg);
    return s;
}

static cJSON *load_json(const char *rel)
{
    char *p = tu_path(shared, rel);
    size_t n;
    char *raw = tu_read_file(p, &n);
    if (!raw)
        fail_msg("cannot read %s", p);
    /* cJSON cuts a string at "\u0000": such texts are read as U+E000 and skipped. */
    for (char *q = raw; (q = strstr(q, "\\u0000"));)
        memcpy(q, "\\ue000", 6);
    cJSON *j = cJSON_ParseWithLength(raw, n);
    if (!j)
        fail_msg("%s: not valid JSON", p);
    free(raw);
    free(p);
    return j;
}

/* 1 when ids (n) equal the numbers of a JSON array or of a space-separated line. */
static int ids_equal_json(const int32_t *ids, size_t n, const cJSON *want)
{
    if ((size_t)cJSON_GetArraySize(want) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble != ids[i])
            return 0;
    return 1;
}

static int ids_equal_line(const int32_t *ids, size_t n, const char *line)
{
    size_t k = 0;
    for (char *end; *line; line = end, k++) {
        long v = strtol(line, &end, 10);
        if (end == line)
            break;
        if (k >= n || v != ids[k])
            return 0;
    }
    return k == n;
}

/* ---- llama.cpp's vocabulary test vectors ---------------------------------- */

static void vocab_vectors(const char *name, int32_t bos_added)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/gguf/vocab/%s", name);
    char *path = tu_path(shared, rel);
    size_t inp_len, out_len;
    char inp_name[512], out_name[512];
    snprintf(inp_name, sizeof inp_name, "%s.inp", path);
    snprintf(out_name, sizeof out_name, "%s.out", path);
    char *inp = tu_read_file(inp_name, &inp_len), *out = tu_read_file(out_name, &out_len);
    assert_non_null(inp);
    assert_non_null(out);
    tpi_tokenizer *t = load_path(path);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int n = 0, ok = 0, round = 0;
    char *s = inp, *line = out;
    for (char *end; (end = strstr(s, sep)); s = end + strlen(sep), n++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        size_t len = (size_t)(end - s), n_ids, back_len;
        int32_t *ids = encode(t, s, len, 0, &n_ids);
        int good = ids_equal_line(ids, n_ids, line);
        if (!good)
            printf("  %s case %d \"%.*s\": ids differ from \"%s\"\n", name, n, (int)len, s, line);
        ok += good;
        char *back = decode(t, ids, n_ids, 0, &back_len);
        int same = back_len == len && !memcmp(back, s, len);
        if (!same)
            printf("  %s case %d: decodes to \"%s\"\n", name, n, back);
        round += same;
        /* add_special puts the BOS (or nothing) before the same ids. */
        size_t n_sp;
        int32_t *sp = encode(t, s, len, 1, &n_sp);
        assert_int_equal(n_sp, n_ids + (bos_added >= 0));
        if (bos_added >= 0)
            assert_int_equal(sp[0], bos_added);
        assert_memory_equal(sp + (bos_added >= 0), ids, n_ids * sizeof *ids);
        free(sp);
        free(back);
        free(ids);
        line = nl + 1;
    }
    printf("%s: ids %d/%d, round trips %d/%d\n", name, ok, n, round, n);
    assert_int_equal(n, 46);
    assert_int_equal(ok, n);
    assert_int_equal(round, n);
    tpi_tokenizer_free(t);
    free(inp);
    free(out);
    free(path);
}

static void test_vocab_llama_spm(void **state) { (void)state; vocab_vectors("ggml-vocab-llama-spm.gguf", 1); }
static void test_vocab_gpt2(void **state) { (void)state; vocab_vectors("ggml-vocab-gpt-2.gguf", -1); }

/* ---- stories260K.gguf against stories260K-hf's tokenizer.json ------------- */

/* Every case text of a golden file, encoded (with and without special
 * tokens) and decoded by both tokenizers. Returns the cases compared. */
static int same_on_cases(const tpi_tokenizer *a, const tpi_tokenizer *b, const cJSON *cases)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *s = cJSON_GetObjectItem(c, "text")->valuestring;
        for (int sp = 0; sp < 2; sp++) {
            size_t na, nb, la, lb;
            int32_t *ia = encode(a, s, strlen(s), sp, &na), *ib = encode(b, s, strlen(s), sp, &nb);
            if (na != nb || memcmp(ia, ib, na * sizeof *ia))
                fail_msg("\"%s\" (add_special %d): the GGUF tokenizer gives other ids", s, sp);
            char *da = decode(a, ia, na, sp, &la), *db = decode(b, ib, nb, sp, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(da, db, la);
            free(da), free(db), free(ia), free(ib);
        }
        n++;
    }
    return n;
}

static void test_stories_gguf(void **state)
{
    (void)state;
    tpi_tokenizer *g = load_shared("models/stories260K/stories260K.gguf");
    tpi_tokenizer *h = load_shared("models/stories260K-hf");
    assert_int_equal(tpi_tokenizer_vocab_size(g), 512);
    assert_int_equal(tpi_tokenizer_vocab_size(h), 512);
    assert_int_equal(tpi_tokenizer_bos(g), tpi_tokenizer_bos(h));
    const int32_t *eg, *eh;
    assert_int_equal(tpi_tokenizer_eos(g, &eg), 1);
    assert_int_equal(tpi_tokenizer_eos(h, &eh), 1);
    assert_int_equal(eg[0], eh[0]);
    for (int32_t id = 0; id < 512; id++) {
        assert_string_equal(tpi_tokenizer_piece(g, id), tpi_tokenizer_piece(h, id));
        assert_int_equal(tpi_tokenizer_is_special(g, id), tpi_tokenizer_is_special(h, id));
    }
    /* The merges derived from the scores rank tokenizer.json's merges in its order. */
    cJSON *tj = load_json("models/stories260K-hf/tokenizer.json");
    const cJSON *m;
    int32_t prev = -1, n_merges = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(cJSON_GetObjectItem(tj, "model"), "merges")) {
        const char *sp = strchr(m->valuestring, ' ');
        char left[64];
        snprintf(left, sizeof left, "%.*s", (int)(sp - m->valuestring), m->valuestring);
        int32_t rank, merged;
        assert_true(tok_pairmap_get(&g->bpe.merges, tpi_tokenizer_token_id(g, left),
                                    tpi_tokenizer_token_id(g, sp + 1), &rank, &merged));
        if (rank <= prev)
            fail_msg("merge \"%s\" has rank %d, after %d", m->valuestring, rank, prev);
        prev = rank;
        n_merges++;
    }
    assert_int_equal(n_merges, 165);
    cJSON_Delete(tj);
    cJSON *hf = load_json("golden/hf/tokenizers/stories260K.json");
    cJSON *ours = load_json("golden/tokenizers/stories260K-hf.json");
    int n = same_on_cases(g, h, cJSON_GetObjectItem(hf, "cases")) + same_on_cases(g, h, ours);
    printf("stories260K.gguf: %d texts tokenize and decode as stories260K-hf\n", n);
    assert_true(n > 200);
    cJSON_Delete(hf);
    cJSON_Delete(ours);
    tpi_tokenizer_free(g);
    tpi_tokenizer_free(h);
}

/* ---- byte-level GGUF files written from tokenizer.json --------------------- */

/* A GGUF of a byte-level tokenizer.json: tokens by id, added tokens typed
 * control (special) or user-defined, the merges as "left right". */
static const char *bytelevel_gguf(const char *dir, const char *model, const char *pre, int32_t bos, int32_t eos)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/tokenizer.json", model);
    cJSON *tj = load_json(rel);
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(tj, "model"), "vocab");
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(tj, "model"), "merges");
    const cJSON *added = cJSON_GetObjectItem(tj, "added_tokens"), *it;
    int n = 0;
    cJSON_ArrayForEach(it, vocab) n = (int)it->valuedouble >= n ? (int)it->valuedouble + 1 : n;
    cJSON_ArrayForEach(it, added) n = (int)cJSON_GetObjectItem(it, "id")->valuedouble >= n
                                          ? (int)cJSON_GetObjectItem(it, "id")->valuedouble + 1 : n;
    const char **tokens = calloc((size_t)n, sizeof *tokens);
    int32_t *types = calloc((size_t)n, sizeof *types);
    cJSON_ArrayForEach(it, vocab) {
        tokens[(int)it->valuedouble] = it->string;
        types[(int)it->valuedouble] = 1;
    }
    cJSON_ArrayForEach(it, added) {
        int id = (int)cJSON_GetObjectItem(it, "id")->valuedouble;
        tokens[id] = cJSON_GetObjectItem(it, "content")->valuestring;
        types[id] = cJSON_IsTrue(cJSON_GetObjectItem(it, "special")) ? 3 : 4;
    }
    for (int i = 0; i < n; i++)
        assert_non_null(tokens[i]);
    int n_merges = cJSON_GetArraySize(merges), k = 0;
    char **ms = calloc((size_t)n_merges, sizeof *ms);
    cJSON_ArrayForEach(it, merges) {
        const char *a = cJSON_IsString(it) ? it->valuestring : cJSON_GetArrayItem(it, 0)->valuestring;
        const char *b = cJSON_IsString(it) ? "" : cJSON_GetArrayItem(it, 1)->valuestring;
        ms[k] = malloc(strlen(a) + strlen(b) + 2);
        sprintf(ms[k++], cJSON_IsString(it) ? "%s%s" : "%s %s", a, b);
    }
    gw w;
    gw_init(&w);
    kv_str(&w, "general.architecture", "llama");
    kv_str(&w, "tokenizer.ggml.model", "gpt2");
    kv_str(&w, "tokenizer.ggml.pre", pre);
    kv_strs(&w, "tokenizer.ggml.tokens", tokens, (size_t)n);
    kv_i32s(&w, "tokenizer.ggml.token_type", types, (size_t)n);
    kv_strs(&w, "tokenizer.ggml.merges", (const char *const *)ms, (size_t)n_merges);
    kv_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    kv_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    snprintf(rel, sizeof rel, "%s.gguf", model);
    const char *path = gw_save(&w, dir, rel);
    for (int i = 0; i < n_merges; i++)
        free(ms[i]);
    free(ms);
    free(tokens);
    free(types);
    cJSON_Delete(tj);
    return path;
}

/* The ids of golden/tokenizers/NAME.json (transformers'), with and without
 * special tokens, from a GGUF written from models/MODEL. */
static void bytelevel(const char *name, const char *model, const char *pre, int32_t bos, int32_t eos)
{
    char *dir = tu_mkdtemp();
    tpi_tokenizer *t = load_path(bytelevel_gguf(dir, model, pre, bos, eos));
    char rel[256];
    snprintf(rel, sizeof rel, "golden/tokenizers/%s.json", name);
    cJSON *cases = load_json(rel);
    const cJSON *c;
    int n = 0, ok = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *s = cJSON_GetObjectItem(c, "text")->valuestring;
        if (strstr(s, "\xEE\x80\x80"))
            continue; /* a NUL in the text (load_json) */
        size_t n0, n1;
        int32_t *i0 = encode(t, s, strlen(s), 0, &n0), *i1 = encode(t, s, strlen(s), 1, &n1);
        int good = ids_equal_json(i0, n0, cJSON_GetObjectItem(c, "ids")) &&
                   ids_equal_json(i1, n1, cJSON_GetObjectItem(c, "ids_with_special"));
        if (!good)
            printf("  %s via GGUF (pre %s): \"%s\" gives other ids\n", name, pre, s);
        ok += good;
        n++;
        free(i0), free(i1);
    }
    printf("%s via GGUF (pre %s): %d/%d cases\n", name, pre, ok, n);
    assert_true(n >= 20);
    assert_int_equal(ok, n);
    assert_int_equal(tpi_tokenizer_bos(t), bos);
    cJSON_Delete(cases);
    tpi_tokenizer_free(t);
    tu_rmdir(dir);
    free(dir);
}

static void test_pre_gpt2(void **state) { (void)state; bytelevel("gpt2", "gpt2-tokenizer", "gpt-2", 50256, 50256); }
static void test_pre_llama3(void **state) { (void)state; bytelevel("llama3", "llama3-tokenizer", "llama-bpe", 128000, 128009); }
static void test_pre_qwen2(void **state) { (void)state; bytelevel("qwen3", "qwen3-tokenizer", "qwen2", 151643, 151645); }

/* ---- a hand-made SentencePiece vocabulary ---------------------------------- */

enum { BASE_SCORES = 1, BASE_TYPES = 2, BASE_IDS = 4 };

static const char *const spm_tokens[] = {"<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁a",
                                         "<0x63>", "<ctl>"};
static const int32_t spm_types[] = {2, 3, 3, 1, 1, 1, 1, 1, 6, 3};

/* The hand-made vocabulary's keys, leaving out the parts named by `skip`. */
static void spm_base(gw *w, const float *scores, int skip)
{
    gw_init(w);
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_strs(w, "tokenizer.ggml.tokens", spm_tokens, 10);
    if (!(skip & BASE_SCORES))
        kv_f32s(w, "tokenizer.ggml.scores", scores, 10);
    if (!(skip & BASE_TYPES))
        kv_i32s(w, "tokenizer.ggml.token_type", spm_types, 10);
    if (!(skip & BASE_IDS)) {
        kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
        kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    }
}

static void expect_ids(const tpi_tokenizer *t, const char *s, int add_special, const int32_t *want, size_t n_want)
{
    size_t n;
    int32_t *ids = encode(t, s, strlen(s), add_special, &n);
    if (n != n_want || memcmp(ids, want, n * sizeof *ids)) {
        printf("  \"%s\":", s);
        for (size_t i = 0; i < n; i++)
            printf(" %d", ids[i]);
        printf("\n");
        fail_msg("\"%s\" gives other ids", s);
    }
    free(ids);
}

/* "ab" is "▁ab": the pair of the higher-scored token merges first. */
static void test_spm_score_order(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    float scores[10] = {0, 0, 0, -1, -2, -3, -5, -4, 0, 0};
    gw w;
    spm_base(&w, scores, 0);
    tpi_tokenizer *t = load_path(gw_save(&w, dir, "a.gguf"));
    expect_ids(t, "ab", 1, (const int32_t[]){1, 7, 5}, 3);             /* ▁a (-4) before ab (-5) */
    /* byte fallback; a control token, after which the text gets its own
     * "▁" (the Prepend normalizer of Llama's legacy tokenizer.json) */
    expect_ids(t, "c<ctl>a", 0, (const int32_t[]){3, 8, 9, 7}, 4);
    expect_ids(t, "d", 0, (const int32_t[]){3, 0}, 2);                 /* no byte token: <unk> */
    size_t len;
    char *s = decode(t, (const int32_t[]){1, 7, 5, 8, 9}, 5, 1, &len);
    assert_string_equal(s, "abc");
    free(s);
    tpi_tokenizer_free(t);
    scores[6] = -3.5f; /* now ab outranks ▁a */
    spm_base(&w, scores, 0);
    t = load_path(gw_save(&w, dir, "b.gguf"));
    expect_ids(t, "ab", 1, (const int32_t[]){1, 3, 6}, 3);
    tpi_tokenizer_free(t);
    tu_rmdir(dir);
    free(dir);
}

/* ---- hostile metadata ------------------------------------------------------ */

static void expect_error(const char *path, const char *needle)
{
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    int rc = tpi_tokenizer_load(&t, path, &err);
    if (rc >= 0 || t || !strstr(err.msg, needle))
        fail_msg("%s: expected an error naming \"%s\", got rc %d \"%s\"", path, needle, rc, err.msg);
    printf("  ok: %s\n", err.msg);
}

static void test_hostile(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    const float scores[10] = {0};
    const float nan_scores[10] = {0, 0, 0, NAN};
    gw w;
    spm_base(&w, scores, 0);
    tpi_tokenizer_free(load_path(gw_save(&w, dir, "ok.gguf")));

    spm_base(&w, scores, BASE_SCORES);
    kv_f32s(&w, "tokenizer.ggml.scores", scores, 9);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.scores has 9 entries but tokenizer.ggml.tokens has 10");
    spm_base(&w, scores, BASE_TYPES);
    kv_i32s(&w, "tokenizer.ggml.token_type", spm_types, 3);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.token_type has 3 entries");
    spm_base(&w, scores, BASE_TYPES);
    kv_strs(&w, "tokenizer.ggml.token_type", spm_tokens, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.token_type must be an array of integers");
    spm_base(&w, scores, BASE_TYPES);
    kv_i32s(&w, "tokenizer.ggml.token_type", (const int32_t[]){1, 1, 1, 1, 1, 9, 1, 1, 1, 1}, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.token_type[5] is 9");
    spm_base(&w, scores, BASE_IDS);
    kv_u32(&w, "tokenizer.ggml.bos_token_id", 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.bos_token_id is 10, outside the 10 tokens");
    spm_base(&w, scores, BASE_IDS);
    kv_i32(&w, "tokenizer.ggml.eos_token_id", -5);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.eos_token_id is -5");
    spm_base(&w, scores, BASE_IDS);
    kv_str(&w, "tokenizer.ggml.eos_token_id", "2");
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.eos_token_id");
    spm_base(&w, scores, BASE_SCORES);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.scores is missing");
    spm_base(&w, nan_scores, 0);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.scores[3] is NaN");

    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "llama");
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.tokens is missing");
    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "llama");
    kv_i32s(&w, "tokenizer.ggml.tokens", spm_types, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.tokens must be an array of strings");
    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "llama");
    kv_strs(&w, "tokenizer.ggml.tokens", spm_tokens, 0);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.tokens has 0 tokens");
    gw_init(&w); /* a count of 2^40 strings in a file of a few bytes */
    kv_str(&w, "tokenizer.ggml.model", "llama");
    arr_head(&w, "tokenizer.ggml.tokens", 8, (uint64_t)1 << 40);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.tokens");
    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "llama");
    kv_strs(&w, "tokenizer.ggml.tokens", (const char *const[]){"a", "b"}, 2);
    w.p[w.len - 1] = 0; /* the last token, "b", becomes a NUL byte */
    kv_f32s(&w, "tokenizer.ggml.scores", scores, 2);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.tokens[1] holds a NUL byte");

    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "bert");
    kv_strs(&w, "tokenizer.ggml.tokens", spm_tokens, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.model \"bert\" is not supported");
    gw_init(&w);
    kv_u32(&w, "tokenizer.ggml.model", 1);
    kv_strs(&w, "tokenizer.ggml.tokens", spm_tokens, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.model");
    gw_init(&w);
    kv_strs(&w, "tokenizer.ggml.tokens", spm_tokens, 10);
    expect_error(gw_save(&w, dir, "x.gguf"), "tokenizer.ggml.model is missing");

    static const char *const bl_tokens[] = {"a", "b", "ab", "<|end|>"};
    for (int k = 0; k < 4; k++) {
        gw_init(&w);
        kv_str(&w, "tokenizer.ggml.model", "gpt2");
        kv_str(&w, "tokenizer.ggml.pre", k == 0 ? "tekken-x" : "default");
        kv_strs(&w, "tokenizer.ggml.tokens", bl_tokens, 4);
        if (k != 1)
            kv_strs(&w, "tokenizer.ggml.merges", (const char *const[]){k == 2 ? "a zz" : "a b"}, 1);
        if (k == 3)
            kv_bool(&w, "tokenizer.ggml.add_eos_token", 1);
        static const char *const want[] = {"tokenizer.ggml.pre \"tekken-x\" is not supported",
                                           "tokenizer.ggml.merges is missing",
                                           "tokenizer.ggml.merges[0] \"a zz\": its right part",
                                           "tokenizer.ggml.add_eos_token is true but"};
        expect_error(gw_save(&w, dir, "x.gguf"), want[k]);
    }
    tu_rmdir(dir);
    free(dir);
}

/* A repeated token string: the last id encodes (as a dict keeps it), every id decodes. */
static void test_repeated_token(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    gw w;
    gw_init(&w);
    kv_str(&w, "tokenizer.ggml.model", "gpt2");
    kv_strs(&w, "tokenizer.ggml.tokens", (const char *const[]){"a", "b", "ab", "a", "b"}, 5);
    kv_strs(&w, "tokenizer.ggml.merges", (const char *const[]){"a b"}, 1);
    tpi_tokenizer *t = load_path(gw_save(&w, dir, "dup.gguf"));
    assert_int_equal(tpi_tokenizer_vocab_size(t), 5);
    expect_ids(t, "aab", 0, (const int32_t[]){3, 2}, 2);
    size_t len;
    char *s = decode(t, (const int32_t[]){0, 1, 2, 3, 4}, 5, 0, &len);
    assert_string_equal(s, "ababab");
    free(s);
    tpi_tokenizer_free(t);
    tu_rmdir(dir);
    free(dir);
}

/* ---- tokenizer.chat_template ----------------------------------------------- */

static void test_chat_template(void **state)
{
    (void)state;
    static const char tmpl[] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    char *dir = tu_mkdtemp();
    const float scores[10] = {0};
    gw w;
    spm_base(&w, scores, 0);
    kv_str(&w, "tokenizer.chat_template", tmpl);
    const char *path = gw_save(&w, dir, "chat.gguf");
    tpi_chat_template *ct = NULL;
    tpi_error err = {0};
    assert_int_equal(tpi_chat_template_load(&ct, path, &err), 0);
    assert_non_null(ct);
    static const char msgs[] = "[{\"role\": \"user\", \"content\": \"hi\"}]";
    tpi_chat_render_opts o = {.add_generation_prompt = 1};
    char *text;
    assert_int_equal(tpi_chat_template_render(ct, msgs, strlen(msgs), &o, &text, NULL, &err), 0);
    assert_string_equal(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(text);
    tpi_chat_template_free(ct);
    tpi_chat_format fmt;
    assert_int_equal(tpi_chat_format_detect(path, &fmt, &err), 0);
    assert_int_equal(fmt, TPI_CHAT_CHATML);
    /* none in the file: no template, and no format to detect */
    char *vocab = tu_path(shared, "golden/gguf/vocab/ggml-vocab-llama-spm.gguf");
    assert_int_equal(tpi_chat_template_load(&ct, vocab, &err), 0);
    assert_null(ct);
    assert_int_equal(tpi_chat_format_detect(vocab, &fmt, &err), TPI_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "no chat_template"));
    free(vocab);
    /* a template of another type is an error naming the key */
    spm_base(&w, scores, 0);
    kv_u32(&w, "tokenizer.chat_template", 7);
    path = gw_save(&w, dir, "bad.gguf");
    assert_int_equal(tpi_chat_template_load(&ct, path, &err), TPI_EFORMAT);
    assert_non_null(strstr(err.msg, "tokenizer.chat_template"));
    tu_rmdir(dir);
    free(dir);
}

int main(void)
{
    shared = tu_shared_dir();
    if (!shared)
        return TU_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_llama_spm), cmocka_unit_test(test_vocab_gpt2),
        cmocka_unit_test(test_stories_gguf),    cmocka_unit_test(test_pre_gpt2),
        cmocka_unit_test(test_pre_llama3),      cmocka_unit_test(test_pre_qwen2),
        cmocka_unit_test(test_spm_score_order), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_repeated_token),  cmocka_unit_test(test_chat_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
