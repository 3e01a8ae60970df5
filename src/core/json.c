#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

int tpi_json_parse(const char *text, size_t len, const char *what, cJSON **out, tpi_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return tpi_err(err, TPI_EFORMAT, "%s: not valid JSON (parse error near byte %zu)", what, at);
    }
    *out = root;
    return 0;
}

int tpi_json_load_file(const char *path, cJSON **out, tpi_error *err)
{
    size_t len;
    char *text;
    int rc = tpi_file_read(path, &text, &len, err);
    if (rc)
        return rc;
    rc = tpi_json_parse(text, len, path, out, err);
    free(text);
    return rc;
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

static int missing(int required, const char *key, const char *what, const char *type, tpi_error *err)
{
    if (required)
        return tpi_err(err, TPI_ECONFIG, "%s: required field \"%s\" is missing (expected %s)", what,
                       key, type);
    return 1;
}

int tpi_json_as_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return -1;
    *out = (int64_t)d;
    return 0;
}

int tpi_json_get_int(const cJSON *obj, const char *key, int64_t *out, int required, const char *what,
                     tpi_error *err)
{
    const cJSON *it = field(obj, key);
    if (!it)
        return missing(required, key, what, "an integer", err);
    if (tpi_json_as_int(it, INT32_MIN, (int64_t)1 << 53, out))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be an integer, found %s", what, key,
                       cJSON_IsNumber(it) ? "a non-integer number" : "another JSON type");
    return 0;
}

int tpi_json_get_double(const cJSON *obj, const char *key, double *out, int required,
                        const char *what, tpi_error *err)
{
    const cJSON *it = field(obj, key);
    if (!it)
        return missing(required, key, what, "a number", err);
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be a finite number", what, key);
    *out = it->valuedouble;
    return 0;
}

int tpi_json_get_bool(const cJSON *obj, const char *key, int *out, int required, const char *what,
                      tpi_error *err)
{
    const cJSON *it = field(obj, key);
    if (!it)
        return missing(required, key, what, "true or false", err);
    if (!cJSON_IsBool(it))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be true or false", what, key);
    *out = cJSON_IsTrue(it);
    return 0;
}

int tpi_json_get_string(const cJSON *obj, const char *key, const char **out, int required,
                        const char *what, tpi_error *err)
{
    const cJSON *it = field(obj, key);
    if (!it)
        return missing(required, key, what, "a string", err);
    if (!cJSON_IsString(it))
        return tpi_err(err, TPI_ECONFIG, "%s: field \"%s\" must be a string", what, key);
    *out = it->valuestring;
    return 0;
}
