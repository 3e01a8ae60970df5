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
    /* transformers names a rule by its module: "model.layers.*.mlp.up_proj.weight"
     * becomes "layers.*.mlp.up_proj", which also covers the bias. */
    char source[600];
    snprintf(source, sizeof source, "built-in auto plan (%s)", cfg->arch_name);
    cJSON *obj = cJSON_CreateObject();
    for (int r = 0; r < TPI_N_ROLES; r++) {
        const tpi_weight_spec *w = &tpi_weights[r];
        if (!w->plan_style || !tpi_weight_present(cfg, r) || (r == TPI_W_LM_HEAD && cfg->tie_word_embeddings))
            continue;
        const char *name = strncmp(w->name, "model.", 6) ? w->name : w->name + 6;
        char module[160];
        snprintf(module, sizeof module, "%.*s", (int)(strlen(name) - strlen(".weight")), name);
        cJSON_AddStringToObject(obj, module, w->plan_style);
    }
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

/* Style of the module holding tensor `name`; `dflt` when no rule matches.
 * Marks the matching rule used; *rule receives its pattern or NULL. */
static tpi_style plan_style(tpi_plan *p, const char *name, tpi_style dflt, const char **rule)
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

static int check_unused(const tpi_plan *p, tpi_error *err)
{
    for (int i = 0; i < p->n_rules; i++)
        if (!p->rules[i].used)
            return tpi_err(err, TPI_ECONFIG, "%s: plan key \"%s\" matches no weight of this model", p->source,
                           p->rules[i].pattern);
    return 0;
}

static int inconsistent(const tpi_plan *p, const char *rule, const char *name, const char *why, tpi_error *err)
{
    return tpi_err(err, TPI_ECONFIG, "%s: plan key \"%s\" (for %s) gives an inconsistent split: %s", p->source,
                   rule ? rule : "(none)", name, why);
}

/* Block `b` of layer `l` must be all replicated, or every weight in its
 * built-in style: colwise then rowwise, the Megatron pairing that needs one
 * all-reduce. *split: 1 split, 0 replicated. */
static int block_split(tpi_plan *p, tpi_block b, int64_t l, int *split, tpi_error *err)
{
    tpi_role member[TPI_N_ROLES];
    tpi_style st[TPI_N_ROLES];
    const char *rules[TPI_N_ROLES];
    char names[TPI_N_ROLES][160];
    int n = 0, any = 0;
    for (int r = 0; r < TPI_N_ROLES; r++) {
        if (tpi_weights[r].block != b || tpi_weights[r].module != (tpi_role)r)
            continue; /* a bias follows its weight's rule */
        member[n] = r;
        tpi_weight_name(names[n], sizeof names[n], r, l);
        st[n] = plan_style(p, names[n], TPI_STYLE_REPLICATE, &rules[n]);
        any |= st[n] != TPI_STYLE_REPLICATE;
        n++;
    }
    *split = any;
    for (int i = 0; i < n && any; i++) {
        tpi_style want = TPI_STYLE_REPLICATE;
        parse_style(tpi_weights[member[i]].plan_style, &want);
        if (st[i] == want)
            continue;
        const char *culprit = rules[i];
        for (int j = 0; !culprit && j < n; j++)
            culprit = st[j] != TPI_STYLE_REPLICATE ? rules[j] : NULL;
        return inconsistent(p, culprit, names[i],
                            want == TPI_STYLE_COLWISE ? "this projection must be colwise when its block is split"
                                                      : "this projection must be rowwise when its block is split",
                            err);
    }
    return 0;
}

/* The norms of layer `l` (model-wide ones when l < 0) must be replicated. */
static int norms_replicated(tpi_plan *p, const tpi_config *c, int64_t l, tpi_error *err)
{
    for (int r = 0; r < TPI_N_ROLES; r++) {
        if (tpi_weights[r].block != TPI_BLOCK_NORM || tpi_weight_per_layer(r) != (l >= 0) ||
            !tpi_weight_present(c, r))
            continue;
        char name[160];
        const char *rule;
        tpi_weight_name(name, sizeof name, r, l);
        if (plan_style(p, name, TPI_STYLE_REPLICATE, &rule) != TPI_STYLE_REPLICATE)
            return inconsistent(p, rule, name, "norm weights can only be replicated", err);
    }
    return 0;
}

static int vocab_blocks(tpi_plan *p, const tpi_config *c, tpi_shard_blocks *out, tpi_error *err)
{
    const char *embed = tpi_weights[TPI_W_EMBED].name, *head = tpi_weights[TPI_W_LM_HEAD].name, *rule;
    tpi_style st = plan_style(p, embed, TPI_STYLE_REPLICATE, &rule);
    if (st == TPI_STYLE_COLWISE)
        return inconsistent(p, rule, embed,
                            "an embedding can be split by vocabulary (rowwise, embedding_rowwise) or replicated", err);
    out->embed = st == TPI_STYLE_ROWWISE;
    /* A tied head is split by vocabulary like transformers' lm_head, and an
     * untied one unless the plan says otherwise. */
    st = c->tie_word_embeddings ? TPI_STYLE_COLWISE : plan_style(p, head, TPI_STYLE_COLWISE, &rule);
    if (st == TPI_STYLE_ROWWISE)
        return inconsistent(p, rule, head, "lm_head can be split by vocabulary (colwise) or replicated", err);
    out->lm_head = st == TPI_STYLE_COLWISE;
    return 0;
}

int tpi_plan_blocks(tpi_plan *p, const tpi_config *c, tpi_shard_blocks *out, tpi_error *err)
{
    memset(out, 0, sizeof *out);
    int attn = -1, mlp = -1, rc;
    for (int64_t l = 0; l < c->n_layers; l++) {
        int a, m;
        if ((rc = block_split(p, TPI_BLOCK_ATTN, l, &a, err)) || (rc = block_split(p, TPI_BLOCK_MLP, l, &m, err)))
            return rc;
        if ((attn >= 0 && a != attn) || (mlp >= 0 && m != mlp))
            return tpi_err(err, TPI_ECONFIG, "%s: the plan splits layer %lld differently from layer 0; tpinfer "
                           "needs every layer split alike", p->source, (long long)l);
        attn = a, mlp = m;
        if ((rc = norms_replicated(p, c, l, err)))
            return rc;
    }
    if ((rc = norms_replicated(p, c, -1, err)) || (rc = vocab_blocks(p, c, out, err)))
        return rc;
    out->attn = attn > 0;
    out->mlp = mlp > 0;
    return check_unused(p, err);
}
