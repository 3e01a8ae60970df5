#include "tokenizer/component.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"

int tok_component_type(const cJSON *j, const char *kind, const tok_type_name *names, size_t n, const char *what,
                       int *type, tpi_error *err)
{
    const char *name = NULL;
    int rc = tpi_json_get_string(j, "type", &name, 1, what, err);
    if (rc)
        return rc;
    for (size_t k = 0; k < n; k++)
        if (!strcmp(names[k].name, name)) {
            *type = names[k].type;
            return 0;
        }
    char list[512] = "";
    for (size_t k = 0; k < n; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", names[k].name);
    return tpi_err(err, TPI_EUNSUPPORTED, "%s: unknown %s type \"%s\" (supported: %s)", what, kind, name, list);
}
