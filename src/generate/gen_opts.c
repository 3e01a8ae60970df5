/* Generation options: transformers' defaults and a model's
 * generation_config.json. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

/* A number field of generation_config.json in [lo, hi] ((lo, hi] with
 * lo_open), `want` saying so: kept when absent; NaN and infinity never pass
 * (tpi_json_get_double). */
static int get_real(const cJSON *j, const char *key, double lo, int lo_open, double hi, const char *want,
                    double *out, const char *path, tpi_error *err)
{
    int rc = tpi_json_get_double(j, key, out, 0, path, err);
    if (rc)
        return rc < 0 ? rc : 0;
    if (lo_open ? *out > lo : *out >= lo) {
        if (*out <= hi)
            return 0;
    }
    return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be %s, found %g", path, key, want, *out);
}

/* A count field: kept when absent, else an integer >= 0. */
static int get_count(const cJSON *j, const char *key, int64_t *out, const char *path, tpi_error *err)
{
    int64_t v = *out;
    int rc = tpi_json_get_int(j, key, &v, 0, path, err);
    if (rc)
        return rc < 0 ? rc : 0;
    if (v < 0)
        return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be an integer >= 0, found %lld", path, key,
                       (long long)v);
    *out = v;
    return 0;
}

/* The fields of generation_config.json that tpinfer applies. The ranges are
 * those of transformers' logits processors (TopPLogitsWarper: 0 < top_p <= 1,
 * MinPLogitsWarper: 0 <= min_p <= 1, RepetitionPenaltyLogitsProcessor:
 * penalty > 0). */
static int read_config(tpi_gen_opts *o, const cJSON *j, const char *path, tpi_error *err)
{
    int rc, do_sample = 0;
    double temperature = 1.0;
    tpi_sampling *p = &o->sampling;
    if ((rc = tpi_json_get_bool(j, "do_sample", &do_sample, 0, path, err)) < 0 ||
        (rc = get_real(j, "temperature", 0, 0, DBL_MAX, "a finite number >= 0", &temperature, path, err)) ||
        (rc = get_count(j, "top_k", &p->top_k, path, err)) ||
        (rc = get_real(j, "top_p", 0, 1, 1, "a number in (0, 1]", &p->top_p, path, err)) ||
        (rc = get_real(j, "min_p", 0, 0, 1, "a number in [0, 1]", &p->min_p, path, err)) ||
        (rc = get_real(j, "repetition_penalty", 0, 1, DBL_MAX, "a finite number > 0",
                             &p->repetition_penalty, path, err)) ||
        (rc = get_count(j, "max_new_tokens", &o->max_new_tokens, path, err)))
        return rc;
    /* transformers: without do_sample the warpers are ignored (greedy). */
    p->temperature = do_sample ? temperature : 0;
    return 0;
}

int tpi_gen_opts_default(tpi_gen_opts *o, const char *dir, tpi_error *err)
{
    memset(o, 0, sizeof *o);
    o->sampling = (tpi_sampling){.temperature = 0, .top_k = 50, .top_p = 1, .min_p = 0, .repetition_penalty = 1};
    o->max_new_tokens = 64;
    if (!dir)
        return 0;
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    snprintf(path, n, "%s/generation_config.json", dir);
    if (!tpi_file_exists(path)) {
        free(path);
        return 0;
    }
    cJSON *j = NULL;
    int rc = tpi_json_load_file(path, &j, err);
    if (!rc)
        rc = read_config(o, j, path, err);
    cJSON_Delete(j);
    free(path);
    return rc;
}
