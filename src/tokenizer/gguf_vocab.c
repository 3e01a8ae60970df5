/* tpi_tokenizer_load of a .gguf file: the tokenizer.ggml.* keys checked and
 * converted into the tokenizer.json of the Hugging Face tokenizer they came
 * from (as transformers' GGUF integration does), then loaded as one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/utf8.h"

static int oom(const char *path, tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "%s: tokenizer: out of memory", path);
}

tpi_gguf_str tok_gguf_token(const tok_gguf_vocab *v, int64_t i)
{
    return tpi_gguf_arr_str(v->g, v->tokens, i);
}

/* An optional array of n numbers: scores (floats) or token_type (integers). */
static int number_array(const tok_gguf_vocab *v, const char *key, int want_float, const tpi_gguf_kv **out,
                        tpi_error *err)
{
    tpi_gguf_type type;
    int64_t n;
    *out = NULL;
    int rc = tpi_gguf_get_arr(v->g, key, &type, &n, err);
    if (rc)
        return rc > 0 ? 0 : rc;
    int is_float = type == TPI_GGUF_F32 || type == TPI_GGUF_F64;
    int is_int = type <= TPI_GGUF_I32 || type == TPI_GGUF_U64 || type == TPI_GGUF_I64;
    if (want_float ? !is_float : !is_int)
        return tpi_err(err, TPI_EFORMAT, "%s: %s must be an array of %s", v->path, key,
                       want_float ? "floats (F32 or F64)" : "integers");
    if (n != v->n)
        return tpi_err(err, TPI_EFORMAT, "%s: %s has %lld entries but tokenizer.ggml.tokens has %lld", v->path, key,
                       (long long)n, (long long)v->n);
    *out = tpi_gguf_find(v->g, key);
    return 0;
}

/* tokens (required), scores and token_type, and the token -> id map. */
static int read_vocab(tok_gguf_vocab *v, tpi_error *err)
{
    tpi_gguf_type type;
    int rc = tpi_gguf_get_arr(v->g, "tokenizer.ggml.tokens", &type, &v->n, err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.tokens is missing (the file holds no tokenizer)",
                       v->path);
    if (type != TPI_GGUF_STRING)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.tokens must be an array of strings", v->path);
    if (v->n < 1 || v->n > TOK_ID_LIMIT)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.tokens has %lld tokens; expected 1 to %d", v->path,
                       (long long)v->n, TOK_ID_LIMIT);
    v->tokens = tpi_gguf_find(v->g, "tokenizer.ggml.tokens");
    if ((rc = number_array(v, "tokenizer.ggml.scores", 1, &v->scores, err)) ||
        (rc = number_array(v, "tokenizer.ggml.token_type", 0, &v->types, err)))
        return rc;
    for (int64_t i = 0; i < v->n; i++) {
        tpi_gguf_str s = tok_gguf_token(v, i);
        if (memchr(s.s, 0, (size_t)s.len))
            return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.tokens[%lld] holds a NUL byte", v->path,
                           (long long)i);
        int64_t type_i = v->types ? tpi_gguf_arr_i64(v->types, i) : TOK_GGUF_NORMAL;
        if (type_i < 0 || type_i > TOK_GGUF_BYTE)
            return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.token_type[%lld] is %lld; expected 0 to 6",
                           v->path, (long long)i, (long long)type_i);
        if (tok_strmap_put(&v->ids, s.s, (size_t)s.len, (int32_t)i))
            return oom(v->path, err);
    }
    return 0;
}

static int token_type(const tok_gguf_vocab *v, int64_t i)
{
    return v->types ? (int)tpi_gguf_arr_i64(v->types, i) : TOK_GGUF_NORMAL;
}

/* A NUL-terminated copy of token i in tmp. */
static const char *token_cstr(const tok_gguf_vocab *v, int64_t i, tok_buf *tmp)
{
    tpi_gguf_str s = tok_gguf_token(v, i);
    tmp->len = 0;
    return tok_buf_add(tmp, s.s, (size_t)s.len) || tok_buf_add(tmp, "", 1) ? NULL : tmp->p;
}

/* model.vocab and, for unknown, control and user-defined tokens, the added
 * tokens that are matched before pre-tokenization (special unless
 * user-defined; in the raw text, as llama.cpp matches them). */
static int add_vocab(const tok_gguf_vocab *v, cJSON *model, cJSON *added, tpi_error *err)
{
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    tok_buf tmp = {0};
    int rc = vocab ? 0 : oom(v->path, err);
    for (int64_t i = 0; i < v->n && !rc; i++) {
        const char *s = token_cstr(v, i, &tmp);
        if (!s || !cJSON_AddNumberToObject(vocab, s, (double)i)) {
            rc = oom(v->path, err);
            break;
        }
        int type = token_type(v, i);
        if ((type != TOK_GGUF_UNKNOWN && type != TOK_GGUF_CONTROL && type != TOK_GGUF_USER) || !*s ||
            !tok_utf8_valid(s, strlen(s)))
            continue;
        cJSON *a = cJSON_CreateObject();
        if (!a || !cJSON_AddNumberToObject(a, "id", (double)i) || !cJSON_AddStringToObject(a, "content", s) ||
            !cJSON_AddBoolToObject(a, "special", type != TOK_GGUF_USER) ||
            !cJSON_AddBoolToObject(a, "normalized", 0) || !cJSON_AddItemToArray(added, a)) {
            cJSON_Delete(a);
            rc = oom(v->path, err);
        }
    }
    tok_buf_free(&tmp);
    return rc;
}

/* A token id key: absent leaves *id; -1 (as a u32, 0xFFFFFFFF) is "none"
 * as llama.cpp writes it (LLAMA_TOKEN_NULL); outside the vocabulary is an
 * error. */
static int id_key(const tok_gguf_vocab *v, const char *key, int32_t *id, tpi_error *err)
{
    int64_t x;
    int rc = tpi_gguf_get_i64(v->g, key, &x, err);
    if (rc)
        return rc > 0 ? 0 : rc;
    if (x == -1 || x == 0xFFFFFFFF) {
        *id = -1;
        return 0;
    }
    if (x < 0 || x >= v->n)
        return tpi_err(err, TPI_EFORMAT, "%s: %s is %lld, outside the %lld tokens of tokenizer.ggml.tokens", v->path,
                       key, (long long)x, (long long)v->n);
    *id = (int32_t)x;
    return 0;
}

static int bool_key(const tok_gguf_vocab *v, const char *key, int *out, tpi_error *err)
{
    int rc = tpi_gguf_get_bool(v->g, key, out, err);
    return rc > 0 ? 0 : rc;
}

/* The unknown token of a SentencePiece vocabulary: unknown_token_id, else
 * the first token of type unknown, else 0 (llama.cpp's default). */
static int spm_unk(const tok_gguf_vocab *v, int32_t *unk, tpi_error *err)
{
    *unk = -1;
    int rc = id_key(v, "tokenizer.ggml.unknown_token_id", unk, err);
    for (int64_t i = 0; !rc && *unk < 0 && i < v->n; i++)
        if (token_type(v, i) == TOK_GGUF_UNKNOWN)
            *unk = (int32_t)i;
    if (*unk < 0)
        *unk = 0;
    return rc;
}

/* What a model kind implies when the file does not say: llama.cpp's defaults. */
typedef struct kind_defaults {
    int add_bos;
    int32_t bos, eos;
} kind_defaults;

/* "llama": Llama 2's tokenizer.json over the vocabulary, merges by score. */
static int spm_model(const tok_gguf_vocab *v, cJSON *root, cJSON *model, cJSON *merges, kind_defaults *def,
                     tpi_error *err)
{
    int32_t unk;
    int space = 1, rc;
    if (!v->scores)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.scores is missing (a \"llama\" tokenizer merges by "
                       "score)", v->path);
    if ((rc = spm_unk(v, &unk, err)) || (rc = bool_key(v, "tokenizer.ggml.add_space_prefix", &space, err)) ||
        (rc = tok_gguf_spm_merges(v, merges, err)))
        return rc;
    /* llama.cpp's SentencePiece defaults: <unk> 0, <s> 1, </s> 2. */
    def->add_bos = 1;
    def->bos = v->n > 1 ? 1 : -1;
    def->eos = v->n > 2 ? 2 : -1;
    tok_buf tmp = {0};
    const char *unk_s = token_cstr(v, unk, &tmp);
    rc = !unk_s || !cJSON_AddStringToObject(model, "unk_token", unk_s) ||
         !cJSON_AddBoolToObject(model, "fuse_unk", 1) || !cJSON_AddBoolToObject(model, "byte_fallback", 1) ||
         tok_gguf_spm_pipeline(root, space);
    tok_buf_free(&tmp);
    return rc ? oom(v->path, err) : 0;
}

/* "gpt2": a byte-level BPE with the file's merges, pre-tokenized by tokenizer.ggml.pre. */
static int bpe_model(const tok_gguf_vocab *v, cJSON *root, cJSON *model, cJSON *merges, kind_defaults *def,
                     tpi_error *err)
{
    tpi_gguf_str pre = {0};
    char name[64] = "";
    int ignore_merges = 0;
    int rc = tpi_gguf_get_str(v->g, "tokenizer.ggml.pre", &pre, err);
    if (rc < 0)
        return rc;
    snprintf(name, sizeof name, "%.*s", (int)(pre.len < 63 ? pre.len : 63), pre.s ? pre.s : "");
    if ((rc = tok_gguf_bpe_merges(v, merges, err)) ||
        (rc = tok_gguf_bpe_pipeline(root, v->path, pre.s ? name : NULL, &ignore_merges, &def->add_bos, err)))
        return rc;
    return cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges) ? 0 : oom(v->path, err);
}

/* tokenizer.json's "model" (BPE) and its pipeline for tokenizer.ggml.model. */
static int build_model(const tok_gguf_vocab *v, const char *kind, cJSON *root, kind_defaults *def, tpi_error *err)
{
    int llama = !strcmp(kind, "llama"), gpt2 = !strcmp(kind, "gpt2");
    if (!llama && !gpt2)
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: tokenizer.ggml.model \"%s\" is not supported (supported: llama, "
                       "gpt2)", v->path, kind);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON *merges = model ? cJSON_AddArrayToObject(model, "merges") : NULL;
    if (!merges || !cJSON_AddStringToObject(model, "type", "BPE"))
        return oom(v->path, err);
    return llama ? spm_model(v, root, model, merges, def, err) : bpe_model(v, root, model, merges, def, err);
}

/* The tokenizer.json equivalent of the file's tokenizer.ggml.* keys. */
static int build_json(const tok_gguf_vocab *v, cJSON **root, kind_defaults *def, tpi_error *err)
{
    tpi_gguf_str kind_s;
    char kind[64];
    int rc = tpi_gguf_get_str(v->g, "tokenizer.ggml.model", &kind_s, err);
    if (rc)
        return rc < 0 ? rc : tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.model is missing", v->path);
    snprintf(kind, sizeof kind, "%.*s", (int)(kind_s.len < 63 ? kind_s.len : 63), kind_s.s);
    cJSON *added;
    if (!(*root = cJSON_CreateObject()) || !(added = cJSON_AddArrayToObject(*root, "added_tokens")))
        return oom(v->path, err);
    if ((rc = build_model(v, kind, *root, def, err)))
        return rc;
    return add_vocab(v, cJSON_GetObjectItemCaseSensitive(*root, "model"), added, err);
}

/* bos/eos and the ids put around the text (add_bos_token, add_eos_token). */
static int special_ids(tpi_tokenizer *t, const tok_gguf_vocab *v, const kind_defaults *def, tpi_error *err)
{
    int32_t eos = def->eos, eot = -1, eom = -1, pad = -1;
    int add_bos = def->add_bos, add_eos = 0, rc;
    t->bos = def->bos;
    if ((rc = id_key(v, "tokenizer.ggml.bos_token_id", &t->bos, err)) ||
        (rc = id_key(v, "tokenizer.ggml.eos_token_id", &eos, err)) ||
        (rc = id_key(v, "tokenizer.ggml.eot_token_id", &eot, err)) ||
        (rc = id_key(v, "tokenizer.ggml.eom_token_id", &eom, err)) ||
        (rc = id_key(v, "tokenizer.ggml.padding_token_id", &pad, err)) ||
        (rc = bool_key(v, "tokenizer.ggml.add_bos_token", &add_bos, err)) ||
        (rc = bool_key(v, "tokenizer.ggml.add_eos_token", &add_eos, err)))
        return rc;
    if ((add_bos && t->bos < 0) || (add_eos && eos < 0))
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.add_%s_token is true but tokenizer.ggml.%s_token_id is "
                       "missing", v->path, add_bos && t->bos < 0 ? "bos" : "eos", add_bos && t->bos < 0 ? "bos" : "eos");
    tok_add_eos(t, eos);
    tok_add_eos(t, eot);
    tok_add_eos(t, eom);
    t->post.prefix.n = t->post.suffix.n = 0;
    if ((add_bos && tok_ids_add(&t->post.prefix, t->bos)) || (add_eos && tok_ids_add(&t->post.suffix, eos)))
        return oom(v->path, err);
    return 0;
}

/* Every id of the file decodes: a repeated token string keeps only its last
 * id in the vocabulary (as a dict), so the earlier ids get their string
 * here, and the vocabulary size is the file's token count. */
static int fill_holes(tpi_tokenizer *t, const tok_gguf_vocab *v, tpi_error *err)
{
    if (t->n_vocab < v->n) {
        const char **pieces = realloc(t->pieces, (size_t)v->n * sizeof *pieces);
        if (pieces)
            t->pieces = pieces;
        uint8_t *special = realloc(t->special, (size_t)v->n);
        if (!pieces || !special)
            return oom(v->path, err);
        t->special = special;
        memset(pieces + t->n_vocab, 0, (size_t)(v->n - t->n_vocab) * sizeof *pieces);
        memset(special + t->n_vocab, 0, (size_t)(v->n - t->n_vocab));
        t->n_vocab = v->n;
    }
    size_t bytes = 0;
    for (int64_t i = 0; i < v->n; i++)
        bytes += t->pieces[i] ? 0 : (size_t)tok_gguf_token(v, i).len + 1;
    if (!bytes)
        return 0;
    if (!(t->extra_pieces = malloc(bytes)))
        return oom(v->path, err);
    char *p = t->extra_pieces;
    for (int64_t i = 0; i < v->n; i++) {
        if (t->pieces[i])
            continue;
        tpi_gguf_str s = tok_gguf_token(v, i);
        memcpy(p, s.s, (size_t)s.len);
        p[s.len] = 0;
        t->pieces[i] = p;
        p += s.len + 1;
    }
    return 0;
}

int tok_gguf_load(tpi_tokenizer *t, const char *path, tpi_error *err)
{
    tpi_gguf *g = NULL;
    tok_gguf_vocab v = {.path = path};
    cJSON *root = NULL;
    kind_defaults def = {0, -1, -1};
    int rc = tpi_gguf_open(&g, path, err);
    if (!rc) {
        v.g = g;
        rc = read_vocab(&v, err);
    }
    if (!rc)
        rc = build_json(&v, &root, &def, err);
    if (!rc)
        rc = tok_load_root(t, root, path, err);
    if (!rc)
        rc = fill_holes(t, &v, err);
    if (!rc)
        rc = special_ids(t, &v, &def, err);
    cJSON_Delete(root);
    tok_strmap_clear(&v.ids);
    tpi_gguf_close(g);
    return rc;
}
