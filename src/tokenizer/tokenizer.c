/* Loading: tokenizer.json (required) and tokenizer_config.json /
 * generation_config.json (optional) from one directory; a .gguf path goes to
 * gguf_vocab.c, which builds the same tokenizer.json in memory. */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/gguf.h"
#include "core/json.h"
#include "tokenizer/gguf_vocab.h"

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "tokenizer: out of memory");
}

int32_t tpi_tokenizer_token_id(const tpi_tokenizer *t, const char *piece)
{
    if (!t || !piece)
        return -1;
    size_t len = strlen(piece);
    for (size_t i = t->added.n; i-- > 0;)
        if (t->added.v[i].len == len && !memcmp(t->added.v[i].content, piece, len))
            return t->added.v[i].id;
    return tok_strmap_get(&t->bpe.vocab, piece, len);
}

/* A special token field of tokenizer_config.json: "text", {"content": "text"}
 * or null. *id = -1 when absent; an unknown token is an error. */
static int config_token(const tpi_tokenizer *t, const cJSON *cfg, const char *key, int32_t *id, const char *what,
                        tpi_error *err)
{
    *id = -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return tpi_err(err, TPI_EFORMAT, "%s: \"%s\" must be a string or {\"content\": string}", what, key);
    *id = tpi_tokenizer_token_id(t, v->valuestring);
    if (*id < 0)
        return tpi_err(err, TPI_EFORMAT, "%s: %s \"%s\" is not in the vocabulary", what, key, v->valuestring);
    return 0;
}

void tok_add_eos(tpi_tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eos; i++)
        if (t->eos[i] == id)
            return;
    if (id >= 0 && t->n_eos < TOK_MAX_EOS)
        t->eos[t->n_eos++] = id;
}

/* transformers' LlamaTokenizerFast (and Gemma/CodeLlama) rebuild the
 * post-processor from add_bos_token/add_eos_token in update_post_processor(),
 * whatever tokenizer.json says; other classes use tokenizer.json's. */
static int rebuilds_template(const char *cls)
{
    static const char *names[] = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                                  "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"};
    for (size_t i = 0; cls && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(cls, names[i]))
            return 1;
    return 0;
}

static int load_config(tpi_tokenizer *t, const char *dir, tpi_error *err)
{
    char *path = tpi_path_join(dir, "tokenizer_config.json");
    if (!path)
        return oom(err);
    cJSON *cfg = NULL;
    int rc = 0;
    int32_t eos = -1;
    if (tpi_file_exists(path)) {
        rc = tpi_json_load_file(path, &cfg, err);
        if (!rc)
            rc = config_token(t, cfg, "bos_token", &t->bos, path, err);
        if (!rc)
            rc = config_token(t, cfg, "eos_token", &eos, path, err);
        const char *cls = NULL;
        if (!rc && (rc = tpi_json_get_string(cfg, "tokenizer_class", &cls, 0, path, err)) > 0)
            rc = 0;
        if (!rc && rebuilds_template(cls)) {
            int add_bos = 1, add_eos = 0;
            if ((rc = tpi_json_get_bool(cfg, "add_bos_token", &add_bos, 0, path, err)) > 0)
                rc = 0;
            if (!rc && (rc = tpi_json_get_bool(cfg, "add_eos_token", &add_eos, 0, path, err)) > 0)
                rc = 0;
            if (!rc && ((add_bos && t->bos < 0) || (add_eos && eos < 0)))
                rc = tpi_err(err, TPI_ECONFIG, "%s: add_%s_token is true but %s_token is not set", path,
                             add_bos && t->bos < 0 ? "bos" : "eos", add_bos && t->bos < 0 ? "bos" : "eos");
            if (!rc) {
                t->post.prefix.n = t->post.suffix.n = 0;
                if ((add_bos && tok_ids_add(&t->post.prefix, t->bos)) ||
                    (add_eos && tok_ids_add(&t->post.suffix, eos)))
                    rc = oom(err);
            }
        }
    }
    tok_add_eos(t, eos);
    cJSON_Delete(cfg);
    free(path);
    if (rc || !(path = tpi_path_join(dir, "generation_config.json")))
        return rc ? rc : oom(err);
    if (tpi_file_exists(path) && !(rc = tpi_json_load_file(path, &cfg, err))) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "eos_token_id"), *it;
        int64_t id;
        if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(it, v) if (!tpi_json_as_int(it, 0, t->n_vocab - 1, &id)) tok_add_eos(t, (int32_t)id);
        } else if (v && !tpi_json_as_int(v, 0, t->n_vocab - 1, &id))
            tok_add_eos(t, (int32_t)id);
        cJSON_Delete(cfg);
    }
    free(path);
    return rc;
}

/* id -> piece table over the model vocabulary and the added tokens. */
static int build_pieces(tpi_tokenizer *t, tpi_error *err)
{
    int64_t n = 0;
    const tok_strmap *v = &t->bpe.vocab;
    for (size_t i = 0; i < v->cap; i++)
        if (v->slots[i].hash && v->slots[i].val >= n)
            n = (int64_t)v->slots[i].val + 1;
    for (size_t i = 0; i < t->added.n; i++)
        if (t->added.v[i].id >= n)
            n = (int64_t)t->added.v[i].id + 1;
    t->n_vocab = n;
    t->pieces = calloc((size_t)(n ? n : 1), sizeof *t->pieces);
    t->special = calloc((size_t)(n ? n : 1), 1);
    if (!t->pieces || !t->special)
        return oom(err);
    for (size_t i = 0; i < v->cap; i++)
        if (v->slots[i].hash)
            t->pieces[v->slots[i].val] = v->arena + v->slots[i].off;
    for (size_t i = 0; i < t->added.n; i++) {
        t->pieces[t->added.v[i].id] = t->added.v[i].content;
        t->special[t->added.v[i].id] = (uint8_t)t->added.v[i].special;
    }
    return 0;
}

/* A nullable pipeline stage: allocates *out and loads it, or leaves NULL. */
#define LOAD_STAGE(field, key, loader, type)                                                     \
    do {                                                                                         \
        const cJSON *j_ = cJSON_GetObjectItemCaseSensitive(root, key);                           \
        if (j_ && !cJSON_IsNull(j_)) {                                                           \
            if (!(t->field = calloc(1, sizeof(type))))                                           \
                return oom(err);                                                                 \
            snprintf(what, sizeof what, "%s: %s", path, key);                                    \
            if ((rc = loader(t->field, j_, what, err)))                                          \
                return rc;                                                                       \
        }                                                                                        \
    } while (0)

static int load_json(tpi_tokenizer *t, const cJSON *root, const char *path, tpi_error *err)
{
    char what[1024];
    int rc;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = "BPE";
    snprintf(what, sizeof what, "%s: model", path);
    if (!cJSON_IsObject(model))
        return tpi_err(err, TPI_EFORMAT, "%s: \"model\" must be an object", path);
    /* Older files omit model.type; tokenizers then infers BPE from "merges". */
    if ((rc = tpi_json_get_string(model, "type", &type, 0, what, err)) < 0)
        return rc;
    if (strcmp(type, "BPE"))
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: unknown model type \"%s\" (supported: BPE)", what, type);
    if ((rc = tok_bpe_load(&t->bpe, model, what, err)))
        return rc;
    snprintf(what, sizeof what, "%s: added_tokens", path);
    if ((rc = tok_added_load(&t->added, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), what, err)))
        return rc;
    LOAD_STAGE(normalizer, "normalizer", tok_normalizer_load, tok_normalizer);
    LOAD_STAGE(pretok, "pre_tokenizer", tok_pretok_load, tok_pretok);
    LOAD_STAGE(decoder, "decoder", tok_decoder_load, tok_decoder);
    snprintf(what, sizeof what, "%s: post_processor", path);
    if ((rc = tok_post_load(&t->post, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), what, err)))
        return rc;
    return build_pieces(t, err);
}

int tok_load_root(tpi_tokenizer *t, const cJSON *root, const char *what, tpi_error *err)
{
    int rc = load_json(t, root, what, err);
    /* Checked after load: post-processor ids must be tokens. */
    for (size_t i = 0; !rc && i < t->post.prefix.n + t->post.suffix.n; i++) {
        int32_t id = i < t->post.prefix.n ? t->post.prefix.v[i] : t->post.suffix.v[i - t->post.prefix.n];
        if (id >= t->n_vocab)
            rc = tpi_err(err, TPI_EFORMAT, "%s: post_processor: id %d is not in the vocabulary (size %lld)", what,
                         (int)id, (long long)t->n_vocab);
    }
    return rc;
}

static int load_dir(tpi_tokenizer *t, const char *dir, tpi_error *err)
{
    char *path = tpi_path_join(dir, "tokenizer.json");
    if (!path)
        return oom(err);
    cJSON *root = NULL;
    int rc;
    if (!tpi_file_exists(path))
        rc = tpi_err(err, TPI_EIO, "%s: not found (a tokenizer directory needs tokenizer.json)", path);
    else if (!(rc = tpi_json_load_file(path, &root, err)))
        rc = tok_load_root(t, root, path, err);
    cJSON_Delete(root);
    free(path);
    return rc ? rc : load_config(t, dir, err);
}

int tpi_tokenizer_load(tpi_tokenizer **out, const char *dir, tpi_error *err)
{
    *out = NULL;
    if (!dir)
        return tpi_err(err, TPI_EINVAL, "tokenizer: no model path");
    tpi_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return oom(err);
    t->bos = -1;
    int rc = tpi_gguf_is_path(dir) ? tok_gguf_load(t, dir, err) : load_dir(t, dir, err);
    if (rc) {
        tpi_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void tpi_tokenizer_free(tpi_tokenizer *t)
{
    if (!t)
        return;
    tok_bpe_clear(&t->bpe);
    tok_added_clear(&t->added);
    tok_normalizer_clear(t->normalizer);
    free(t->normalizer);
    tok_pretok_clear(t->pretok);
    free(t->pretok);
    tok_decoder_clear(t->decoder);
    free(t->decoder);
    tok_post_clear(&t->post);
    free(t->pieces);
    free(t->special);
    free(t->extra_pieces);
    free(t);
}

const char *tpi_tokenizer_piece(const tpi_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab ? t->pieces[id] : NULL;
}

int64_t tpi_tokenizer_vocab_size(const tpi_tokenizer *t)
{
    return t ? t->n_vocab : 0;
}

int32_t tpi_tokenizer_bos(const tpi_tokenizer *t)
{
    return t ? t->bos : -1;
}

int tpi_tokenizer_eos(const tpi_tokenizer *t, const int32_t **ids)
{
    if (ids)
        *ids = t ? t->eos : NULL;
    return t ? t->n_eos : 0;
}

int tpi_tokenizer_is_special(const tpi_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab && t->special[id];
}
