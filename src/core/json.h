#ifndef TPI_CORE_JSON_H
#define TPI_CORE_JSON_H
/* Thin helpers over cJSON that turn every problem into a tpi_error naming the
 * file and the field. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "tpinfer.h"

/* Reads and parses a JSON file. *out is owned by the caller (cJSON_Delete). */
int tpi_json_load_file(const char *path, cJSON **out, tpi_error *err);
/* Parses `len` bytes of JSON text; `what` names the source in messages. */
int tpi_json_parse(const char *text, size_t len, const char *what, cJSON **out, tpi_error *err);

/* Field getters. `what` names the file for messages. A missing field is an
 * error when `required`, else *out keeps its value and 1 is returned; null
 * counts as missing. A field of the wrong type is always an error. */
int tpi_json_get_int(const cJSON *obj, const char *key, int64_t *out, int required, const char *what,
                     tpi_error *err);
int tpi_json_get_double(const cJSON *obj, const char *key, double *out, int required,
                        const char *what, tpi_error *err);
int tpi_json_get_bool(const cJSON *obj, const char *key, int *out, int required, const char *what,
                      tpi_error *err);
/* *out points into obj (not copied). */
int tpi_json_get_string(const cJSON *obj, const char *key, const char **out, int required,
                        const char *what, tpi_error *err);
/* A JSON number that is an integer in [lo, hi]; else -1. */
int tpi_json_as_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);
#endif
