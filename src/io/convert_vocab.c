/* The tokenizer.* keys of a GGUF from tokenizer.json and tokenizer_config.json,
 * as llama.cpp reads them (docs/gguf.md "Tokenizer"): a BPE model with
 * byte_fallback (SentencePiece converted by transformers) becomes "llama",
 * tokens with scores; a byte-level BPE becomes "gpt2", tokens with merges and
 * the pre-tokenizer named by tokenizer.ggml.pre. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "io/convert.h"

/* llama.cpp's token types (llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct by_text {
    const char *s;
    int32_t id;
} by_text;

typedef struct vocab {
    int64_t n;
    const char **tok;   /* id -> text, into the JSON or pads */
    char *pads;         /* "[PAD<id>]" texts of ids the tokenizer leaves out */
    int32_t *type;
    float *scores;
    by_text *sorted;    /* for lookups by text */
    const char *what;   /* tokenizer.json's path, for messages */
} vocab;

static int cmp_text(const void *a, const void *b)
{
    return strcmp(((const by_text *)a)->s, ((const by_text *)b)->s);
}

static int32_t find_id(const vocab *v, const char *s)
{
    by_text key = {s, 0};
    const by_text *f = bsearch(&key, v->sorted, (size_t)v->n, sizeof key, cmp_text);
    return f ? f->id : -1;
}

static void vocab_free(vocab *v)
{
    free(v->tok);
    free(v->pads);
    free(v->type);
    free(v->scores);
    free(v->sorted);
}

static int set_token(vocab *v, int64_t id, const char *s, int type)
{
    if (id < 0 || id >= v->n)
        return -1;
    v->tok[id] = s;
    v->type[id] = type;
    return 0;
}

/* "<0x0A>": SentencePiece's byte pieces. */
static int is_byte_piece(const char *s)
{
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>';
}

static int fill_tokens(vocab *v, const cJSON *model, const cJSON *added, int byte_fallback, tpi_error *err)
{
    const cJSON *it, *map = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(map))
        return tpi_err(err, TPI_EFORMAT, "%s: model.vocab: expected an object", v->what);
    cJSON_ArrayForEach(it, map) {
        int64_t id;
        int type = byte_fallback && is_byte_piece(it->string) ? TT_BYTE : TT_NORMAL;
        if (tpi_json_as_int(it, 0, INT32_MAX, &id) || set_token(v, id, it->string, type))
            return tpi_err(err, TPI_EFORMAT, "%s: model.vocab \"%s\": id outside [0, vocab_size %lld)", v->what,
                           it->string, (long long)v->n);
    }
    cJSON_ArrayForEach(it, added) {
        int64_t id = -1;
        const char *content = NULL;
        int special = 0;
        if (tpi_json_get_int(it, "id", &id, 1, v->what, err) < 0 ||
            tpi_json_get_string(it, "content", &content, 1, v->what, err) < 0 ||
            tpi_json_get_bool(it, "special", &special, 0, v->what, err) < 0)
            return err ? err->code : TPI_EFORMAT;
        if (set_token(v, id, content, special ? TT_CONTROL : TT_USER_DEFINED))
            return tpi_err(err, TPI_EFORMAT, "%s: added token \"%s\": id %lld outside [0, vocab_size %lld)",
                           v->what, content, (long long)id, (long long)v->n);
    }
    const char *unk = NULL;
    if (tpi_json_get_string(model, "unk_token", &unk, 0, v->what, err) < 0)
        return err->code;
    for (int64_t i = 0; unk && i < v->n; i++)
        if (v->tok[i] && !strcmp(v->tok[i], unk))
            v->type[i] = TT_UNKNOWN;
    return 0;
}

/* Ids the tokenizer leaves out (embedding rows past it) become "[PAD<id>]",
 * unused, as llama.cpp's converter names them. */
static int fill_pads(vocab *v, tpi_error *err)
{
    int64_t missing = 0;
    for (int64_t i = 0; i < v->n; i++)
        missing += !v->tok[i];
    if (missing && !(v->pads = malloc((size_t)missing * 32)))
        return tpi_err(err, TPI_ENOMEM, "out of memory for %lld pad tokens", (long long)missing);
    char *p = v->pads;
    for (int64_t i = 0; i < v->n; i++)
        if (!v->tok[i]) {
            snprintf(p, 32, "[PAD%lld]", (long long)i);
            v->tok[i] = p;
            v->type[i] = TT_UNUSED;
            p += 32;
        }
    if (!(v->sorted = malloc((size_t)v->n * sizeof *v->sorted)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    for (int64_t i = 0; i < v->n; i++)
        v->sorted[i] = (by_text){v->tok[i], (int32_t)i};
    qsort(v->sorted, (size_t)v->n, sizeof *v->sorted, cmp_text);
    return 0;
}

/* A merge as its two parts: "a b" or ["a", "b"]. */
static int merge_parts(const cJSON *m, const char **a, size_t *a_len, const char **b)
{
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp)
            return -1;
        *a = m->valuestring;
        *a_len = (size_t)(sp - m->valuestring);
        *b = sp + 1;
        return 0;
    }
    const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(x) || !cJSON_IsString(y))
        return -1;
    *a = x->valuestring;
    *a_len = strlen(x->valuestring);
    *b = y->valuestring;
    return 0;
}

/* The merges as "a b" texts, all in one allocation: *texts [n] points into
 * *store. */
static int merge_texts(const vocab *v, const cJSON *merges, char ***texts, char **store, int64_t *n,
                       tpi_error *err)
{
    const cJSON *m;
    size_t total = 0;
    *n = cJSON_GetArraySize(merges);
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t a_len;
        if (merge_parts(m, &a, &a_len, &b))
            return tpi_err(err, TPI_EFORMAT, "%s: model.merges: expected \"a b\" or [\"a\", \"b\"]", v->what);
        total += a_len + strlen(b) + 2;
    }
    *texts = malloc((size_t)(*n ? *n : 1) * sizeof **texts);
    *store = malloc(total ? total : 1);
    if (!*texts || !*store)
        return tpi_err(err, TPI_ENOMEM, "out of memory for %lld merges", (long long)*n);
    char *p = *store;
    int64_t i = 0;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t a_len;
        merge_parts(m, &a, &a_len, &b);
        (*texts)[i++] = p;
        p += sprintf(p, "%.*s %s", (int)a_len, a, b) + 1;
    }
    return 0;
}

/* SentencePiece merges by piece score; transformers ordered the BPE merges by
 * the merged piece's score, so rank r becomes score -r and llama.cpp's SPM
 * tokenizer merges in the same order. Pieces no merge makes score 0. */
static int spm_scores(vocab *v, char *const *texts, int64_t n_merges)
{
    for (int64_t r = n_merges - 1; r >= 0; r--) {
        char joined[1024];
        const char *sp = strchr(texts[r], ' ');
        int len = snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - texts[r]), texts[r], sp + 1);
        int32_t id = len < (int)sizeof joined ? find_id(v, joined) : -1;
        if (id >= 0)
            v->scores[id] = -(float)r;
    }
    return 0;
}

/* The regexes of the Split pre-tokenizers llama.cpp knows by name. */
static const struct {
    const char *pre, *regex;
} known_pre[] = {
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* The first Split regex in the pre-tokenizer (a Sequence or one), or NULL;
 * *byte_level is set when a ByteLevel step splits with GPT-2's regex. */
static const char *split_regex(const cJSON *pre, int *byte_level)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *it;
    if (seq) {
        const char *found = NULL;
        cJSON_ArrayForEach(it, seq) {
            const char *r = split_regex(it, byte_level);
            found = found ? found : r;
        }
        return found;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type))
        return NULL;
    if (!strcmp(type->valuestring, "ByteLevel")) {
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
        *byte_level = !cJSON_IsFalse(use);
        return NULL;
    }
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pre, "pattern"), "Regex");
    return !strcmp(type->valuestring, "Split") && cJSON_IsString(re) ? re->valuestring : NULL;
}

static int pick_pre(const vocab *v, const cJSON *root, const char **pre, tpi_error *err)
{
    int byte_level = 0;
    const char *re = split_regex(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &byte_level);
    if (!re && byte_level) {
        *pre = "gpt-2";
        return 0;
    }
    for (size_t i = 0; re && i < sizeof known_pre / sizeof known_pre[0]; i++)
        if (!strcmp(re, known_pre[i].regex)) {
            *pre = known_pre[i].pre;
            return 0;
        }
    return tpi_err(err, TPI_EUNSUPPORTED,
                   "%s: pre_tokenizer: %s%.200s%s is not one llama.cpp names (GPT-2's ByteLevel, Llama 3's "
                   "llama-bpe, Qwen2's qwen2)", v->what, re ? "the Split regex \"" : "no Split or ByteLevel step",
                   re ? re : "", re ? "\"" : "");
}

/* A tokenizer_config.json token: "text" or {"content": "text"}; NULL when absent. */
static const char *config_token(const cJSON *tc, const char *key)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (cJSON_IsObject(t))
        t = cJSON_GetObjectItemCaseSensitive(t, "content");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Whether the post-processor's single template starts with a special token
 * (transformers then adds BOS): the fallback when tokenizer_config.json does
 * not say add_bos_token. */
static int post_adds_bos(const cJSON *post)
{
    const cJSON *it, *seq = cJSON_GetObjectItemCaseSensitive(post, "processors");
    cJSON_ArrayForEach(it, seq)
        if (post_adds_bos(it))
            return 1;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, 0), "SpecialToken") != NULL;
}

static void special_ids(tpi_gguf_writer *w, const vocab *v, const cJSON *tc, const tpi_config *cfg)
{
    static const char *const keys[][2] = {
        {"bos_token", "tokenizer.ggml.bos_token_id"}, {"eos_token", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "tokenizer.ggml.unknown_token_id"}, {"pad_token", "tokenizer.ggml.padding_token_id"},
    };
    for (int i = 0; i < 4; i++) {
        const char *s = config_token(tc, keys[i][0]);
        int64_t id = s ? find_id(v, s) : -1;
        if (id < 0 && i == 0)
            id = cfg->bos_id;
        if (id < 0 && i == 1 && cfg->n_eos)
            id = cfg->eos_ids[0];
        if (id >= 0)
            tpi_gguf_w_u32(w, keys[i][1], (uint32_t)id);
    }
}

static void flags_and_template(tpi_gguf_writer *w, const cJSON *root, const cJSON *tc)
{
    const cJSON *add_bos = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
    const cJSON *add_eos = cJSON_GetObjectItemCaseSensitive(tc, "add_eos_token");
    tpi_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsBool(add_bos) ? cJSON_IsTrue(add_bos)
                                                       : post_adds_bos(cJSON_GetObjectItemCaseSensitive(root, "post_processor")));
    tpi_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(add_eos));
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(tc, "chat_template"), *it;
    if (cJSON_IsArray(tmpl)) /* named templates: llama.cpp's key holds "default" */
        cJSON_ArrayForEach(it, tmpl) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
                tmpl = cJSON_GetObjectItemCaseSensitive(it, "template");
        }
    if (cJSON_IsString(tmpl))
        tpi_gguf_w_str(w, "tokenizer.chat_template", tmpl->valuestring);
}

static int write_vocab(tpi_gguf_writer *w, vocab *v, const cJSON *root, const cJSON *tc, const tpi_config *cfg,
                       char *kind, size_t kind_len, tpi_error *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: model.type \"%s\": convert writes BPE tokenizers only", v->what,
                       cJSON_IsString(type) ? type->valuestring : "?");
    int byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    const char *pre = NULL;
    int rc;
    if ((rc = fill_tokens(v, model, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), byte_fallback, err)) ||
        (rc = fill_pads(v, err)) || (!byte_fallback && (rc = pick_pre(v, root, &pre, err))))
        return rc;
    char **texts = NULL, *store = NULL;
    int64_t n_merges = 0;
    if (!(rc = merge_texts(v, cJSON_IsArray(merges) ? merges : NULL, &texts, &store, &n_merges, err))) {
        tpi_gguf_w_str(w, "tokenizer.ggml.model", byte_fallback ? "llama" : "gpt2");
        if (pre)
            tpi_gguf_w_str(w, "tokenizer.ggml.pre", pre);
        tpi_gguf_w_arr_str(w, "tokenizer.ggml.tokens", v->tok, v->n);
        if (byte_fallback) {
            spm_scores(v, texts, n_merges);
            tpi_gguf_w_arr(w, "tokenizer.ggml.scores", TPI_GGUF_F32, v->scores, v->n);
        }
        tpi_gguf_w_arr(w, "tokenizer.ggml.token_type", TPI_GGUF_I32, v->type, v->n);
        if (!byte_fallback)
            tpi_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)texts, n_merges);
        special_ids(w, v, tc, cfg);
        flags_and_template(w, root, tc);
        if (pre)
            snprintf(kind, kind_len, "gpt2 (%s)", pre);
        else
            snprintf(kind, kind_len, "llama");
    }
    free(texts);
    free(store);
    return rc;
}

int tpi_convert_vocab(tpi_gguf_writer *w, const tpi_config *cfg, const char *model_dir, char *kind,
                      size_t kind_len, tpi_error *err)
{
    char *path = tpi_path_join(model_dir, "tokenizer.json");
    char *tc_path = tpi_path_join(model_dir, "tokenizer_config.json");
    vocab v = {.n = cfg->vocab_size, .what = path};
    cJSON *root = NULL, *tc = NULL;
    int rc = !path || !tc_path ? tpi_err(err, TPI_ENOMEM, "out of memory") : 0;
    if (!rc && !(rc = tpi_json_load_file(path, &root, err)) &&
        (!tpi_file_exists(tc_path) || !(rc = tpi_json_load_file(tc_path, &tc, err)))) {
        v.tok = calloc((size_t)v.n, sizeof *v.tok);
        v.type = calloc((size_t)v.n, sizeof *v.type);
        v.scores = calloc((size_t)v.n, sizeof *v.scores);
        rc = !v.tok || !v.type || !v.scores ? tpi_err(err, TPI_ENOMEM, "out of memory for the vocabulary")
                                            : write_vocab(w, &v, root, tc, cfg, kind, kind_len, err);
    }
    vocab_free(&v);
    cJSON_Delete(root);
    cJSON_Delete(tc);
    free(path);
    free(tc_path);
    return rc;
}
