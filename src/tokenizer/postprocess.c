#include "tokenizer/postprocess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "post_processor: out of memory");
}

/* Wraps: prefix = pre + prefix, suffix = suffix + post (a later processor in
 * a Sequence sees the output of the earlier ones). */
static int wrap(tok_post *p, const tok_ids *pre, const tok_ids *post)
{
    tok_ids np = {0};
    if (tok_ids_addn(&np, pre->v, pre->n) || tok_ids_addn(&np, p->prefix.v, p->prefix.n) ||
        tok_ids_addn(&p->suffix, post->v, post->n)) {
        free(np.v);
        return -1;
    }
    free(p->prefix.v);
    p->prefix = np;
    return 0;
}

static int template(tok_post *p, const cJSON *j, const char *what, tpi_error *err)
{
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsArray(single))
        return tpi_err(err, TPI_EFORMAT, "%s: TemplateProcessing needs an array \"single\"", what);
    tok_ids pre = {0}, post = {0};
    int seen_a = 0, rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        if (seq) {
            if (seen_a++) {
                rc = tpi_err(err, TPI_EUNSUPPORTED, "%s: \"single\" holds the sequence twice", what);
                break;
            }
            continue;
        }
        const char *name = NULL;
        if (!sp || (rc = tpi_json_get_string(sp, "id", &name, 1, what, err))) {
            if (!rc)
                rc = tpi_err(err, TPI_EFORMAT, "%s: \"single\" items must be SpecialToken or Sequence", what);
            break;
        }
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, name);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
        if (!cJSON_IsArray(ids)) {
            rc = tpi_err(err, TPI_EFORMAT, "%s: special token \"%s\" has no \"ids\" in \"special_tokens\"", what,
                         name);
            break;
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, ids) {
            int64_t id;
            if (tpi_json_as_int(v, 0, INT32_MAX - 1, &id)) {
                rc = tpi_err(err, TPI_EFORMAT, "%s: special token \"%s\": ids must be token ids", what, name);
                break;
            }
            if (tok_ids_add(seen_a ? &post : &pre, (int32_t)id)) {
                rc = oom(err);
                break;
            }
        }
        if (rc)
            break;
    }
    if (!rc && !seen_a)
        rc = tpi_err(err, TPI_EFORMAT, "%s: \"single\" does not hold the sequence ($A)", what);
    if (!rc && wrap(p, &pre, &post))
        rc = oom(err);
    free(pre.v);
    free(post.v);
    return rc;
}

/* BertProcessing/RobertaProcessing: "cls": [token, id], "sep": [token, id]. */
static int cls_sep(tok_post *p, const cJSON *j, const char *what, tpi_error *err)
{
    int64_t ids[2];
    const char *keys[2] = {"cls", "sep"};
    for (int k = 0; k < 2; k++) {
        const cJSON *pair = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
            tpi_json_as_int(cJSON_GetArrayItem(pair, 1), 0, INT32_MAX - 1, &ids[k]))
            return tpi_err(err, TPI_EFORMAT, "%s: \"%s\" must be [token, id]", what, keys[k]);
    }
    int32_t c = (int32_t)ids[0], s = (int32_t)ids[1];
    tok_ids pre = {&c, 1, 1}, post = {&s, 1, 1};
    return wrap(p, &pre, &post) ? oom(err) : 0;
}

static int load(tok_post *p, const cJSON *j, const char *what, tpi_error *err)
{
    const char *type = NULL;
    int rc = tpi_json_get_string(j, "type", &type, 1, what, err);
    if (rc)
        return rc;
    if (!strcmp(type, "ByteLevel"))
        return 0;
    if (!strcmp(type, "TemplateProcessing"))
        return template(p, j, what, err);
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing"))
        return cls_sep(p, j, what, err);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(list))
            return tpi_err(err, TPI_EFORMAT, "%s: Sequence needs an array \"processors\"", what);
        const cJSON *it;
        size_t i = 0;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", what, i++);
            if ((rc = load(p, it, sub, err)))
                return rc;
        }
        return 0;
    }
    return tpi_err(err, TPI_EUNSUPPORTED,
                   "%s: unknown post-processor type \"%s\" (supported: TemplateProcessing, ByteLevel, "
                   "BertProcessing, RobertaProcessing, Sequence)", what, type);
}

int tok_post_load(tok_post *p, const cJSON *j, const char *what, tpi_error *err)
{
    memset(p, 0, sizeof *p);
    if (!j || cJSON_IsNull(j))
        return 0;
    return load(p, j, what, err);
}

void tok_post_clear(tok_post *p)
{
    if (!p)
        return;
    free(p->prefix.v);
    free(p->suffix.v);
    memset(p, 0, sizeof *p);
}
