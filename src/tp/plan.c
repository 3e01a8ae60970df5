#include "tp/plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

/* transformers has renamed its styles over releases; each maps to the weight
 * partition it implies. The *_rep / *_gather_output / split_input variants
 * differ only in how activations flow, which tpinfer's graph fixes anyway. */
static const struct { const char *name; tpi_style style; } style_names[] = {
    {"colwise", TPI_STYLE_COLWISE},
    {"colwise_rep", TPI_STYLE_COLWISE},
    {"colwise_gather_output", TPI_STYLE_COLWISE},
    {"local_colwise", TPI_STYLE_COLWISE},
    {"packed_colwise", TPI_STYLE_COLWISE},
    {"rowwise", TPI_STYLE_ROWWISE},
    {"rowwise_rep", TPI_STYLE_ROWWISE},
    {"rowwise_split_input", TPI_STYLE_ROWWISE},
    {"local_rowwise", TPI_STYLE_ROWWISE},
    {"packed_rowwise", TPI_STYLE_ROWWISE},
    {"local_packed_rowwise", TPI_STYLE_ROWWISE},
    {"embedding_rowwise", TPI_STYLE_ROWWISE},
    {"vocab_parallel_rowwise", TPI_STYLE_ROWWISE},
    {"replicate", TPI_STYLE_REPLICATE},
    {"replicated", TPI_STYLE_REPLICATE},
    {"replicated_with_grad_allreduce", TPI_STYLE_REPLICATE},
    {"sequence_parallel", TPI_STYLE_REPLICATE},
    {"local", TPI_STYLE_REPLICATE},
    {"isolated", TPI_STYLE_REPLICATE},
};

static int parse_style(const char *s, tpi_style *out)
{
    for (size_t i = 0; i < sizeof style_names / sizeof style_names[0]; i++)
        if (!strcmp(s, style_names[i].name)) {
            *out = style_names[i].style;
            return 0;
        }
    return -1;
}

void tpi_plan_free(tpi_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_rules; i++) {
        free(p->rules[i].pattern);
        free(p->rules[i].style_name);
    }
    free(p->rules);
    free(p);
}

static int add_rule(tpi_plan *p, const char *pattern, const char *style, const char *source, tpi_error *err)
{
    tpi_style st;
    if (parse_style(style, &st))
        return tpi_err(err, TPI_ECONFIG,
                       "%s: plan key \"%s\" has unknown style \"%s\" (known: colwise, rowwise, colwise_rep, "
                       "colwise_gather_output, rowwise_rep, rowwise_split_input, local_colwise, local_rowwise, "
                       "embedding_rowwise, replicate, sequence_parallel, ...)", source, pattern, style);
    tpi_plan_rule *r = realloc(p->rules, (size_t)(p->n_rules + 1) * sizeof *r);
    if (!r)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    p->rules = r;
    r = &p->rules[p->n_rules];
    r->pattern = strdup(pattern);
    r->style_name = strdup(style);
    r->style = st;
    r->used = 0;
    if (!r->pattern || !r->style_name) {
        free(r->pattern);
        free(r->style_name);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    p->n_rules++;
    return 0;
}

int tpi_plan_from_json(tpi_plan **out, const cJSON *obj, const char *source, tpi_error *err)
{
    *out = NULL;
    if (!cJSON_IsObject(obj))
        return tpi_err(err, TPI_ECONFIG, "%s: a tensor-parallel plan must be a JSON object {pattern: style}", source);
    tpi_plan *p = calloc(1, sizeof *p);
    if (!p)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    snprintf(p->source, sizeof p->source, "%s", source);
    int rc = 0;
    for (const cJSON *e = obj->child; e && !rc; e = e->next) {
        if (!cJSON_IsString(e))
            rc = tpi_err(err, TPI_ECONFIG, "%s: plan key \"%s\": style must be a string", source, e->string);
        else
            rc = add_rule(p, e->string, e->valuestring, source, err);
    }
    if (rc) {
        tpi_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int tpi_plan_auto(tpi_plan **out, const tpi_config *cfg, tpi_error *err)
{
    /* transformers' base_model_tp_plan for llama/mistral/qwen2/qwen3, plus
     * the lm_head of the CausalLM class's _tp_plan and a vocabulary-split
     * embedding (DESIGN.md). */
    static const char *const rules[][2] = {
        {"embed_tokens", "embedding_rowwise"},
        {"layers.*.self_attn.q_proj", "colwise"},
        {"layers.*.self_attn.k_proj", "colwise"},
        {"layers.*.self_attn.v_proj", "colwise"},
        {"layers.*.self_attn.o_proj", "rowwise"},
        {"layers.*.mlp.gate_proj", "colwise"},
        {"layers.*.mlp.up_proj", "colwise"},
        {"layers.*.mlp.down_proj", "rowwise"},
        {"lm_head", "colwise_rep"},
    };
    char source[600];
    snprintf(source, sizeof source, "built-in auto plan (%s)", cfg->arch_name);
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i][0], "lm_head") || !cfg->tie_word_embeddings)
            cJSON_AddStringToObject(obj, rules[i][0], rules[i][1]);
    int rc = tpi_plan_from_json(out, obj, source, err);
    cJSON_Delete(obj);
    return rc;
}

int tpi_plan_resolve(tpi_plan **out, const char *model_dir, const char *plan_file, const tpi_config *cfg,
                     tpi_error *err)
{
    *out = NULL;
    cJSON *root = NULL;
    int rc;
    if (plan_file) {
        if ((rc = tpi_json_load_file(plan_file, &root, err)))
            return rc;
        /* Accept a bare {pattern: style} object or one wrapped like config.json. */
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(root, "base_model_tp_plan");
        char source[600];
        snprintf(source, sizeof source, "%s", plan_file);
        rc = tpi_plan_from_json(out, inner ? inner : root, source, err);
        cJSON_Delete(root);
        return rc;
    }
    char *cfg_path = tpi_path_join(model_dir, "config.json");
    if (!cfg_path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    rc = tpi_json_load_file(cfg_path, &root, err);
    const cJSON *plan = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "base_model_tp_plan");
    if (!rc && plan && !cJSON_IsNull(plan)) {
        char source[700];
        snprintf(source, sizeof source, "%s: base_model_tp_plan", cfg_path);
        rc = tpi_plan_from_json(out, plan, source, err);
    } else if (!rc) {
        rc = tpi_plan_auto(out, cfg, err);
    }
    cJSON_Delete(root);
    free(cfg_path);
    return rc;
}

/* transformers generalises a parameter name by replacing each run of digits
 * with "*" and drops the model's base prefix; a rule may name the module
 * ("layers.*.mlp.up_proj") or the parameter ("layers.*.mlp.up_proj.weight"). */
static int rule_matches(const char *pattern, const char *name)
{
    char gen[512];
    size_t n = 0;
    const char *s = name;
    if (!strncmp(s, "model.", 6) && strncmp(pattern, "model.", 6))
        s += 6;
    while (*s && n < sizeof gen - 2) {
        if (isdigit((unsigned char)*s)) {
            gen[n++] = '*';
            while (isdigit((unsigned char)*s))
                s++;
        } else {
            gen[n++] = *s++;
        }
    }
    gen[n] = 0;
    size_t plen = strlen(pattern);
    if (strncmp(gen, pattern, plen))
        return 0;
    return gen[plen] == 0 || !strcmp(gen + plen, ".weight") || !strcmp(gen + plen, ".bias");
}

tpi_style tpi_plan_style(tpi_plan *p, const char *name, tpi_style dflt, const char **rule)
{
    *rule = NULL;
    for (int i = 0; i < p->n_rules; i++)
        if (rule_matches(p->rules[i].pattern, name)) {
            p->rules[i].used = 1;
            *rule = p->rules[i].pattern;
            return p->rules[i].style;
        }
    return dflt;
}

int tpi_plan_check_unused(const tpi_plan *p, tpi_error *err)
{
    for (int i = 0; i < p->n_rules; i++)
        if (!p->rules[i].used)
            return tpi_err(err, TPI_ECONFIG, "%s: plan key \"%s\" matches no weight of this model", p->source,
                           p->rules[i].pattern);
    return 0;
}
