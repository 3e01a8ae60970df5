#ifndef TPI_TP_PLAN_H
#define TPI_TP_PLAN_H
/* Tensor-parallel plans (DESIGN.md "Tensor-parallel plan"): weight-name
 * patterns mapped to partition styles, in transformers' base_model_tp_plan
 * notation ("layers.*.self_attn.q_proj": "colwise"). */
#include <cjson/cJSON.h>

#include "io/config.h"
#include "tpinfer.h"

typedef enum tpi_style {
    TPI_STYLE_REPLICATE = 0, /* every rank holds the whole tensor */
    TPI_STYLE_COLWISE,       /* output features split (rows of [out, in]) */
    TPI_STYLE_ROWWISE,       /* input features split, partial sums all-reduced */
} tpi_style;

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
int tpi_plan_auto(tpi_plan **out, const tpi_config *cfg, tpi_error *err);
void tpi_plan_free(tpi_plan *p);

/* Style of the module holding tensor `name` ("model.layers.3.mlp.up_proj.weight").
 * `dflt` when no rule matches; marks the matching rule used. *rule receives the
 * rule's pattern (for messages) or NULL. */
tpi_style tpi_plan_style(tpi_plan *p, const char *name, tpi_style dflt, const char **rule);
/* Error naming the first rule that matched no weight, or 0. */
int tpi_plan_check_unused(const tpi_plan *p, tpi_error *err);
#endif
