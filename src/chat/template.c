/* Chat templates: placeholder until the Jinja subset lands. load finds no
 * template, so callers fall back to the built-in formats. */
#include <stddef.h>

#include "core/error.h"
#include "tpinfer.h"

int tpi_chat_template_parse(tpi_chat_template **out, const char *src, size_t len, const char *name, tpi_error *err)
{
    (void)src, (void)len;
    *out = NULL;
    return tpi_err(err, TPI_EUNSUPPORTED, "%s: chat templates are not supported yet", name ? name : "template");
}

int tpi_chat_template_load(tpi_chat_template **out, const char *dir, tpi_error *err)
{
    (void)dir, (void)err;
    *out = NULL;
    return 0;
}

void tpi_chat_template_free(tpi_chat_template *t)
{
    (void)t;
}

int tpi_chat_template_render(const tpi_chat_template *t, const char *messages_json, size_t len,
                             const tpi_chat_render_opts *o, char **text, size_t *text_len, tpi_error *err)
{
    (void)t, (void)messages_json, (void)len, (void)o;
    *text = NULL;
    if (text_len)
        *text_len = 0;
    return tpi_err(err, TPI_EUNSUPPORTED, "chat templates are not supported yet");
}
