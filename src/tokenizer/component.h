#ifndef TPI_TOKENIZER_COMPONENT_H
#define TPI_TOKENIZER_COMPONENT_H
/* tokenizer.json components (normalizer, pre-tokenizer, decoder) are objects
 * whose "type" selects one of a fixed set of kinds. */
#include <cjson/cJSON.h>
#include <stddef.h>

#include "tpinfer.h"

typedef struct tok_type_name {
    const char *name; /* as tokenizer.json spells it */
    int type;         /* the component's enum value */
} tok_type_name;

/* Reads j's "type" and looks it up in names[0..n). An unknown type is an
 * error naming `kind` ("decoder", ...) and listing the supported names. */
int tok_component_type(const cJSON *j, const char *kind, const tok_type_name *names, size_t n, const char *what,
                       int *type, tpi_error *err);
#endif
