/* Generation options: transformers' defaults and a model's
 * generation_config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

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
    int do_sample = 0;
    double temperature = 1.0;
    if (!rc)
        rc = tpi_json_get_bool(j, "do_sample", &do_sample, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "temperature", &temperature, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_int(j, "top_k", &o->sampling.top_k, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "top_p", &o->sampling.top_p, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "min_p", &o->sampling.min_p, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "repetition_penalty", &o->sampling.repetition_penalty, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_int(j, "max_new_tokens", &o->max_new_tokens, 0, path, err) < 0;
    cJSON_Delete(j);
    free(path);
    if (rc)
        return err ? (err->code ? err->code : TPI_ECONFIG) : TPI_ECONFIG;
    /* transformers: without do_sample the warpers are ignored (greedy). */
    o->sampling.temperature = do_sample ? temperature : 0;
    return 0;
}
