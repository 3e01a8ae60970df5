/* tpi_chat_template_*: finding a model's chat template, parsing it once, and
 * rendering conversations with the variables transformers'
 * apply_chat_template gives (messages, add_generation_prompt, bos_token,
 * eos_token, tools, and the caller's extra ones). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/jinja.h"
#include "core/error.h"
#include "core/file.h"
#include "core/gguf.h"
#include "core/json.h"

struct tpi_chat_template {
    jj_template t;
};

/* Templates are a few KiB; this bounds what a hostile file can make the parser hold. */
enum { MAX_SOURCE = 4 << 20, MAX_PARSE_ARENA = 64 << 20 };

int tpi_chat_template_parse(tpi_chat_template **out, const char *src, size_t len, const char *name,
                            tpi_error *err)
{
    *out = NULL;
    if (!name)
        name = "chat template";
    if (!src)
        return tpi_err(err, TPI_EINVAL, "%s: no template source", name);
    if (len > MAX_SOURCE)
        return tpi_err(err, TPI_ELIMIT, "%s: %zu bytes; templates are limited to %d MiB", name, len,
                       MAX_SOURCE >> 20);
    tpi_chat_template *ct = calloc(1, sizeof *ct);
    if (!ct)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", name);
    ct->t.arena.cap = MAX_PARSE_ARENA;
    size_t name_n = strlen(name);
    ct->t.name = jj_alloc(&ct->t.arena, name_n + 1);
    if (!ct->t.name) {
        tpi_chat_template_free(ct);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", name);
    }
    memcpy(ct->t.name, name, name_n);
    jj_tok *toks;
    size_t n_toks;
    int rc = jj_lex(&ct->t.arena, ct->t.name, src, len, &toks, &n_toks, err);
    if (!rc)
        rc = jj_parse(&ct->t, toks, n_toks, err);
    if (rc) {
        tpi_chat_template_free(ct);
        return rc;
    }
    *out = ct;
    return 0;
}

void tpi_chat_template_free(tpi_chat_template *t)
{
    if (!t)
        return;
    jj_arena_free(&t->t.arena);
    free(t);
}

/* tokenizer_config.json's (or chat_template.json's) chat_template: a string,
 * or a list of {name, template} of which "default" is taken. NULL if none. */
static const char *pick_template(const cJSON *j)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    if (cJSON_IsArray(t)) {
        const cJSON *pick = NULL;
        for (const cJSON *e = t->child; e; e = e->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
                pick = e;
        }
        t = pick ? cJSON_GetObjectItemCaseSensitive(pick, "template") : NULL;
    }
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int load_json(tpi_chat_template **out, const char *path, tpi_error *err)
{
    cJSON *j = NULL;
    int rc = tpi_json_load_file(path, &j, err);
    if (rc)
        return rc;
    const char *src = pick_template(j);
    if (src) {
        char *name = malloc(strlen(path) + 16);
        if (!name) {
            cJSON_Delete(j);
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
        }
        strcpy(name, path);
        strcat(name, ":chat_template");
        rc = tpi_chat_template_parse(out, src, strlen(src), name, err);
        free(name);
    }
    cJSON_Delete(j);
    return rc;
}

/* A .jinja file, its size checked before it is read. */
static int read_source(const char *path, char **src, size_t *len, tpi_error *err)
{
    int fd;
    size_t bytes;
    int rc = tpi_file_open(path, &fd, &bytes, err);
    if (rc)
        return rc;
    close(fd);
    if (bytes > MAX_SOURCE)
        return tpi_err(err, TPI_ELIMIT, "%s: %zu bytes; templates are limited to %d MiB", path, bytes,
                       MAX_SOURCE >> 20);
    return tpi_file_read(path, src, len, err);
}

/* A GGUF file's tokenizer.chat_template (the default one; the named
 * tokenizer.chat_template.NAME are not read). */
static int load_gguf(tpi_chat_template **out, const char *path, tpi_error *err)
{
    tpi_gguf *g = NULL;
    tpi_gguf_str src = {0};
    int rc = tpi_gguf_open(&g, path, err);
    if (!rc && !(rc = tpi_gguf_get_str(g, "tokenizer.chat_template", &src, err))) {
        char *name = malloc(strlen(path) + 32);
        if (!name)
            rc = tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
        else {
            strcpy(name, path);
            strcat(name, ":tokenizer.chat_template");
            rc = tpi_chat_template_parse(out, src.s, (size_t)src.len, name, err);
            free(name);
        }
    }
    tpi_gguf_close(g);
    return rc > 0 ? 0 : rc;
}

int tpi_chat_template_load(tpi_chat_template **out, const char *dir, tpi_error *err)
{
    static const char *const files[] = {"chat_template.jinja", "chat_template.json", "tokenizer_config.json"};
    *out = NULL;
    if (!dir)
        return tpi_err(err, TPI_EINVAL, "chat template: no model directory");
    if (tpi_gguf_is_path(dir))
        return load_gguf(out, dir, err);
    int rc = 0;
    for (int i = 0; i < 3 && !rc && !*out; i++) {
        char *path = tpi_path_join(dir, files[i]);
        if (!path)
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", dir);
        if (tpi_file_exists(path)) {
            if (i == 0) {
                char *src;
                size_t len;
                rc = read_source(path, &src, &len, err);
                if (!rc) {
                    rc = tpi_chat_template_parse(out, src, len, path, err);
                    free(src);
                }
            } else {
                rc = load_json(out, path, err);
            }
        }
        free(path);
    }
    return rc;
}

/* The render's variables: extra_json's first, so that the named options win. */
static int set_vars(jj_ctx *c, const char *messages_json, size_t len, const tpi_chat_render_opts *o)
{
    jv v;
    int rc = 0;
    if (o->extra_json) {
        if ((rc = jj_json_parse(c, o->extra_json, strlen(o->extra_json), "extra variables", &v)))
            return rc;
        if (v.t != JV_DICT)
            return tpi_err(c->err, TPI_EINVAL, "extra variables: expected a JSON object, found %s", jv_type_name(v));
        for (size_t i = 0; i < v.u.d->n && !rc; i++) {
            jv k = v.u.d->k[i];
            char *name = jj_new(c, k.u.s.n + 1);
            if (!name)
                return jj_oom(c);
            memcpy(name, k.u.s.p, k.u.s.n);
            rc = jj_set_var(c, name, v.u.d->v[i]);
        }
    }
    if (!rc && o->tools_json) {
        if ((rc = jj_json_parse(c, o->tools_json, strlen(o->tools_json), "tools", &v)))
            return rc;
        if (v.t != JV_LIST && v.t != JV_NONE)
            return tpi_err(c->err, TPI_EINVAL, "tools: expected a JSON array, found %s", jv_type_name(v));
        rc = jj_set_var(c, "tools", v);
    }
    if (!rc && (rc = jj_json_parse(c, messages_json, len, "messages", &v)) == 0) {
        if (v.t != JV_LIST)
            return tpi_err(c->err, TPI_EINVAL, "messages: expected a JSON array of message objects, found %s",
                           jv_type_name(v));
        rc = jj_set_var(c, "messages", v);
    }
    if (!rc)
        rc = jj_set_var(c, "add_generation_prompt", jv_bool(o->add_generation_prompt));
    if (!rc && o->bos_token)
        rc = jj_set_var(c, "bos_token", jv_str(o->bos_token, strlen(o->bos_token)));
    if (!rc && o->eos_token)
        rc = jj_set_var(c, "eos_token", jv_str(o->eos_token, strlen(o->eos_token)));
    return rc;
}

int tpi_chat_template_render(const tpi_chat_template *t, const char *messages_json, size_t len,
                             const tpi_chat_render_opts *o, char **text, size_t *text_len, tpi_error *err)
{
    static const tpi_chat_render_opts defaults = {0};
    *text = NULL;
    if (text_len)
        *text_len = 0;
    if (!t || !messages_json)
        return tpi_err(err, TPI_EINVAL, "chat template render: no template or no messages");
    if (!o)
        o = &defaults;
    jj_ctx c = {.arena = {.cap = JJ_MAX_ARENA}, .err = err, .name = t->t.name, .now = o->now};
    if (!c.now)
        c.now = (int64_t)time(NULL);
    jj_buf out;
    jj_buf_init(&out, &c);
    c.out = &out;
    int rc = jj_root_init(&c);
    if (!rc)
        rc = set_vars(&c, messages_json, len, o);
    if (!rc)
        rc = jj_render(&c, &t->t);
    if (!rc) {
        *text = malloc(out.n + 1);
        if (!*text) {
            rc = tpi_err(err, TPI_ENOMEM, "%s: out of memory", t->t.name);
        } else {
            if (out.n)
                memcpy(*text, out.p, out.n);
            (*text)[out.n] = 0;
            if (text_len)
                *text_len = out.n;
        }
    }
    jj_arena_free(&c.arena);
    return rc;
}
