#ifndef TPI_TP_PLAN_H
#define TPI_TP_PLAN_H
/* Tensor-parallel plans (DESIGN.md "Tensor-parallel plan"): weight-name
 * patterns mapped to partition styles, in transformers' base_model_tp_plan
 * notation ("layers.*.self_attn.q_proj": "colwise"). */
#include <cjson/cJSON.h>

#include "io/config.h"
#include "tp/shard.h"
#include "tpinfer.h"

typedef struct tpi_plan_rule {
    char *pattern;
    char *style_name; /* as written */
    tpi_style style;
    int used;
} tpi_plan_rule;

typedef struct tpi_plan {
    char source[600]; /* "auto (llama)", "config.json base_model_tp_plan", a file path */
    tpi_plan_rule *rules;
    int n_rules;
} tpi_plan;

/* Picks the plan: the user's file when given, else config.json's
 * base_model_tp_plan when present, else the built-in "auto" plan. */
int tpi_plan_resolve(tpi_plan **out, const char *model_dir, const char *plan_file, const tpi_config *cfg,
                     tpi_error *err);
/* Builds a plan from a JSON object {pattern: style}; `source` names it in messages. */
int tpi_plan_from_json(tpi_plan **out, const cJSON *obj, const char *source, tpi_error *err);
/* The built-in plan: the plan_style column of tpi_weights. */
int tpi_plan_auto(tpi_plan **out, const tpi_config *cfg, tpi_error *err);
void tpi_plan_free(tpi_plan *p);

/* Which blocks plan `p` splits, checked against the weights of `c`: a block
 * is all replicated or every weight in its built-in style (colwise, then
 * rowwise), alike in every layer; norms are replicated; the embedding is
 * split by vocabulary or replicated, lm_head colwise or replicated (always
 * colwise when tied). Every rule must match a weight. Errors are TPI_ECONFIG
 * naming the plan source and the rule. */
int tpi_plan_blocks(tpi_plan *p, const tpi_config *c, tpi_shard_blocks *out, tpi_error *err);
#endif
