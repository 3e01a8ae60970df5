#include "io/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

static const struct { const char *name; tpi_arch arch; } archs[] = {
    {"LlamaForCausalLM", TPI_ARCH_LLAMA},
    {"MistralForCausalLM", TPI_ARCH_MISTRAL},
    {"Qwen2ForCausalLM", TPI_ARCH_QWEN2},
    {"Qwen3ForCausalLM", TPI_ARCH_QWEN3},
};

static int parse_arch(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!a)
        return tpi_err(err, TPI_ECONFIG, "%s: required field \"architectures\" is missing (expected e.g. "
                       "[\"LlamaForCausalLM\"])", path);
    const cJSON *first = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (!cJSON_IsString(first))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"architectures\" must be a non-empty array of strings", path);
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(first->valuestring, archs[i].name)) {
            c->arch = archs[i].arch;
            snprintf(c->arch_name, sizeof c->arch_name, "%s", archs[i].name);
            return 0;
        }
    return tpi_err(err, TPI_EUNSUPPORTED,
                   "%s: unknown architecture \"%s\" in \"architectures\" (supported: LlamaForCausalLM, "
                   "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)", path, first->valuestring);
}

static int parse_rope(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    c->rope_kind = TPI_ROPE_DEFAULT;
    c->rope_theta = 10000.0;
    int rc = tpi_json_get_double(root, "rope_theta", &c->rope_theta, 0, path, err);
    if (rc < 0)
        return rc;
    if (!(c->rope_theta > 0))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"rope_theta\" must be positive, found %g", path, c->rope_theta);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs))
        return 0;
    if (!cJSON_IsObject(rs))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"rope_scaling\" must be an object or null", path);
    const char *type = NULL, *what = "config.json rope_scaling";
    char where[600];
    snprintf(where, sizeof where, "%s: rope_scaling", path);
    what = where;
    /* transformers reads "rope_type" and, from older configs, "type". */
    if (tpi_json_get_string(rs, "rope_type", &type, 0, what, err) < 0 ||
        (!type && tpi_json_get_string(rs, "type", &type, 0, what, err) < 0))
        return err ? err->code : TPI_ECONFIG;
    if (!type)
        return tpi_err(err, TPI_ECONFIG, "%s: field \"rope_type\" is missing", what);
    if (!strcmp(type, "default"))
        return 0;
    if (!strcmp(type, "linear"))
        c->rope_kind = TPI_ROPE_LINEAR;
    else if (!strcmp(type, "llama3"))
        c->rope_kind = TPI_ROPE_LLAMA3;
    else
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: field \"rope_type\" is \"%s\" (supported: default, linear, llama3)",
                       what, type);
    if ((rc = tpi_json_get_double(rs, "factor", &c->rope_factor, 1, what, err)) < 0)
        return rc;
    if (!(c->rope_factor > 0))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"factor\" must be positive, found %g", what, c->rope_factor);
    if (c->rope_kind == TPI_ROPE_LLAMA3) {
        if ((rc = tpi_json_get_double(rs, "low_freq_factor", &c->rope_low_freq_factor, 1, what, err)) < 0 ||
            (rc = tpi_json_get_double(rs, "high_freq_factor", &c->rope_high_freq_factor, 1, what, err)) < 0 ||
            (rc = tpi_json_get_int(rs, "original_max_position_embeddings", &c->rope_original_max_pos, 1, what,
                                   err)) < 0)
            return rc;
        /* transformers' _compute_llama3_parameters divides by each of them */
        if (!(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
            c->rope_original_max_pos <= 0 || c->rope_original_max_pos > TPI_MAX_POSITIONS)
            return tpi_err(err, TPI_ECONFIG, "%s: needs 0 < low_freq_factor < high_freq_factor and 0 < "
                           "original_max_position_embeddings <= %lld, found %g, %g and %lld", what,
                           (long long)TPI_MAX_POSITIONS, c->rope_low_freq_factor, c->rope_high_freq_factor,
                           (long long)c->rope_original_max_pos);
    }
    return 0;
}

/* What a JSON value is, for a message: the number itself, else its type. */
static const char *describe(const cJSON *it, char *buf, size_t size)
{
    if (cJSON_IsNumber(it))
        snprintf(buf, size, "%.17g", it->valuedouble);
    else
        snprintf(buf, size, "%s", cJSON_IsString(it) ? "a string" : cJSON_IsBool(it) ? "a boolean"
                                  : cJSON_IsArray(it) ? "an array" : "an object");
    return buf;
}

/* An integer field in [lo, hi], checked before any cast: 0 when read, 1 when
 * absent and not required (*out kept), else an error naming the field, the
 * range and what the file holds (2^32 + 5 is not 5, 1.5 is not 1). */
static int get_int_in(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int required, int64_t *out,
                      const char *path, tpi_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (required)
            return tpi_err(err, TPI_ECONFIG, "%s: required field \"%s\" is missing (expected an integer in "
                           "[%lld, %lld])", path, key, (long long)lo, (long long)hi);
        return 1;
    }
    if (!tpi_json_as_int(it, lo, hi, out))
        return 0;
    char found[64];
    return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be an integer in [%lld, %lld], found %s", path, key,
                   (long long)lo, (long long)hi, describe(it, found, sizeof found));
}

/* A token id field (bos_token_id, pad_token_id): an integer id of the
 * vocabulary, or null; -1, which older configs write for "none", is kept as
 * none. *out keeps its value when absent. */
static int get_token_id(const tpi_config *c, const cJSON *obj, const char *key, int32_t *out, const char *path,
                        tpi_error *err)
{
    int64_t v;
    int rc = get_int_in(obj, key, -1, c->vocab_size - 1, 0, &v, path, err);
    if (rc == 0)
        *out = (int32_t)v;
    return rc < 0 ? rc : 0;
}

/* eos_token_id may be an integer or a list of integers, each an id of the
 * vocabulary (read after vocab_size). */
static int parse_eos(tpi_config *c, const cJSON *obj, const char *path, tpi_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
    if (!e || cJSON_IsNull(e))
        return 0;
    int64_t v, hi = c->vocab_size - 1;
    char found[64];
    c->n_eos = 0;
    if (!cJSON_IsArray(e)) {
        if (tpi_json_as_int(e, 0, hi, &v))
            return tpi_err(err, TPI_ECONFIG, "%s: field \"eos_token_id\" must be an integer in [0, %lld] or a list "
                           "of them, found %s", path, (long long)hi, describe(e, found, sizeof found));
        c->eos_ids[c->n_eos++] = (int32_t)v;
        return 0;
    }
    for (const cJSON *it = e->child; it; it = it->next) {
        if (c->n_eos == TPI_MAX_EOS)
            return tpi_err(err, TPI_ECONFIG, "%s: field \"eos_token_id\" has more than %d ids", path, TPI_MAX_EOS);
        if (tpi_json_as_int(it, 0, hi, &v))
            return tpi_err(err, TPI_ECONFIG, "%s: field \"eos_token_id\" entry %d must be an integer in [0, %lld], "
                           "found %s", path, c->n_eos, (long long)hi, describe(it, found, sizeof found));
        c->eos_ids[c->n_eos++] = (int32_t)v;
    }
    return 0;
}

/* The required sizes, each within its limit (config.h). */
static int parse_required_sizes(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    static const struct { const char *key; size_t off; int64_t max; } req[] = {
        {"hidden_size", offsetof(tpi_config, hidden_size), TPI_MAX_HIDDEN},
        {"intermediate_size", offsetof(tpi_config, intermediate_size), TPI_MAX_FF},
        {"num_hidden_layers", offsetof(tpi_config, n_layers), TPI_MAX_LAYERS},
        {"num_attention_heads", offsetof(tpi_config, n_heads), TPI_MAX_HEADS},
        {"vocab_size", offsetof(tpi_config, vocab_size), TPI_MAX_VOCAB},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        int rc = get_int_in(root, req[i].key, 1, req[i].max, 1, (int64_t *)((char *)c + req[i].off), path, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The sizes of the model: required, or defaulted as transformers'
 * LlamaConfig does, and consistent with one another. */
static int parse_sizes(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    int rc;
    if ((rc = parse_required_sizes(c, root, path, err)))
        return rc;
    c->n_kv_heads = c->n_heads;
    c->max_position_embeddings = 2048;
    c->rms_norm_eps = 1e-6;
    int head_dim_absent;
    if ((rc = get_int_in(root, "num_key_value_heads", 1, TPI_MAX_HEADS, 0, &c->n_kv_heads, path, err)) < 0 ||
        (rc = head_dim_absent = get_int_in(root, "head_dim", 1, TPI_MAX_HEAD_DIM, 0, &c->head_dim, path, err)) < 0 ||
        (rc = get_int_in(root, "max_position_embeddings", 1, TPI_MAX_POSITIONS, 0, &c->max_position_embeddings,
                         path, err)) < 0 ||
        (rc = tpi_json_get_double(root, "rms_norm_eps", &c->rms_norm_eps, 0, path, err)) < 0 ||
        (rc = tpi_json_get_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, 0, path, err)) < 0)
        return rc;
    /* Without head_dim, transformers splits hidden_size evenly over the heads. */
    if (head_dim_absent == 1 && c->hidden_size % c->n_heads)
        return tpi_err(err, TPI_ECONFIG, "%s: hidden_size (%lld) must be a multiple of num_attention_heads (%lld) "
                       "when head_dim is not given", path, (long long)c->hidden_size, (long long)c->n_heads);
    if (head_dim_absent == 1)
        c->head_dim = c->hidden_size / c->n_heads;
    int64_t width;
    if (tpi_mul_overflow(c->n_heads, c->head_dim, &width) || width > TPI_MAX_ATTN_WIDTH)
        return tpi_err(err, TPI_ECONFIG, "%s: num_attention_heads * head_dim (%lld * %lld) must be at most %lld",
                       path, (long long)c->n_heads, (long long)c->head_dim, (long long)TPI_MAX_ATTN_WIDTH);
    if (c->n_heads % c->n_kv_heads)
        return tpi_err(err, TPI_ECONFIG, "%s: num_attention_heads (%lld) must be a multiple of "
                       "num_key_value_heads (%lld)", path, (long long)c->n_heads, (long long)c->n_kv_heads);
    if (c->head_dim % 2)
        return tpi_err(err, TPI_ECONFIG, "%s: head_dim must be even for RoPE, found %lld", path,
                       (long long)c->head_dim);
    if (!(c->rms_norm_eps > 0))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"rms_norm_eps\" must be a positive finite number, found %g",
                       path, c->rms_norm_eps);
    return 0;
}

/* Which projections carry a bias, and Qwen3's q/k norms, per architecture. */
static int parse_biases(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    int rc, attn_bias = 0;
    if ((rc = tpi_json_get_bool(root, "attention_bias", &attn_bias, 0, path, err)) < 0 ||
        (rc = tpi_json_get_bool(root, "mlp_bias", &c->mlp_bias, 0, path, err)) < 0)
        return rc;
    switch (c->arch) {
    case TPI_ARCH_QWEN2: /* Qwen2Attention: q/k/v always biased, o_proj never */
        c->qkv_bias = 1;
        c->mlp_bias = 0;
        break;
    case TPI_ARCH_QWEN3: /* Qwen3Attention: attention_bias on q/k/v/o, plus q_norm/k_norm */
        c->qkv_bias = c->o_bias = attn_bias;
        c->qk_norm = 1;
        c->mlp_bias = 0;
        break;
    case TPI_ARCH_MISTRAL:
        c->mlp_bias = 0;
        break;
    case TPI_ARCH_LLAMA:
        c->qkv_bias = c->o_bias = attn_bias;
        break;
    }
    return 0;
}

/* Sliding-window attention: Mistral's whenever sliding_window is set;
 * Qwen2/3's only with use_sliding_window, from layer max_window_layers on. */
static int parse_window(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    int rc;
    int64_t window = 0;
    if ((rc = get_int_in(root, "sliding_window", 1, TPI_MAX_POSITIONS, 0, &window, path, err)) < 0)
        return rc;
    if (c->arch != TPI_ARCH_MISTRAL && c->arch != TPI_ARCH_QWEN2 && c->arch != TPI_ARCH_QWEN3)
        return 0;
    int use = c->arch == TPI_ARCH_MISTRAL;
    if (c->arch != TPI_ARCH_MISTRAL && (rc = tpi_json_get_bool(root, "use_sliding_window", &use, 0, path, err)) < 0)
        return rc;
    if (use && window > 0) {
        c->sliding_window = window;
        if (c->arch != TPI_ARCH_MISTRAL &&
            (rc = get_int_in(root, "max_window_layers", 0, TPI_MAX_LAYERS, 0, &c->max_window_layers, path, err)) < 0)
            return rc;
    }
    return 0;
}

static int parse(tpi_config *c, const cJSON *root, const char *path, tpi_error *err)
{
    int rc;
    if (!cJSON_IsObject(root))
        return tpi_err(err, TPI_ECONFIG, "%s: expected a JSON object", path);
    if ((rc = parse_arch(c, root, path, err)) || (rc = parse_sizes(c, root, path, err)))
        return rc;
    const char *act = "silu";
    if ((rc = tpi_json_get_string(root, "hidden_act", &act, 0, path, err)) < 0)
        return rc;
    if (strcmp(act, "silu"))
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: field \"hidden_act\" is \"%s\" (supported: silu)", path, act);
    if ((rc = parse_rope(c, root, path, err)) || (rc = parse_biases(c, root, path, err)) ||
        (rc = parse_window(c, root, path, err)))
        return rc;
    /* pad_token_id goes unused, but a wrong one says the file is not for this vocabulary */
    int32_t pad = -1;
    c->bos_id = -1;
    if ((rc = get_token_id(c, root, "bos_token_id", &c->bos_id, path, err)) ||
        (rc = get_token_id(c, root, "pad_token_id", &pad, path, err)) || (rc = parse_eos(c, root, path, err)))
        return rc;
    const char *dt = "float32";
    if ((rc = tpi_json_get_string(root, "torch_dtype", &dt, 0, path, err)) < 0)
        return rc;
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt);
    return 0;
}

int tpi_config_load(tpi_config *cfg, const char *dir, tpi_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    char *path = tpi_path_join(dir, "config.json");
    if (!path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    cJSON *root = NULL;
    int rc;
    if (!tpi_file_exists(path))
        rc = tpi_err(err, TPI_EIO, "%s: missing (a model directory needs config.json)", path);
    else if (!(rc = tpi_json_load_file(path, &root, err)))
        rc = parse(cfg, root, path, err);
    cJSON_Delete(root);
    free(path);
    if (rc)
        return rc;
    /* generation_config.json wins for eos, as transformers' generate() does. */
    path = tpi_path_join(dir, "generation_config.json");
    if (path && tpi_file_exists(path)) {
        root = NULL;
        if (!(rc = tpi_json_load_file(path, &root, err)))
            rc = parse_eos(cfg, root, path, err);
        cJSON_Delete(root);
    }
    free(path);
    return rc;
}

int64_t tpi_config_window(const tpi_config *cfg, int64_t layer)
{
    if (!cfg->sliding_window || layer < cfg->max_window_layers)
        return 0;
    return cfg->sliding_window;
}
