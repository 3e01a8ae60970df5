/* Chat formats of the instruct model families tpinfer knows, recognised from
 * tokenizer_config.json's chat_template (a GGUF file's tokenizer.chat_template)
 * by the markers each family's template writes. The texts follow those templates for a system prompt and
 * alternating user/assistant turns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/gguf.h"
#include "core/json.h"

static const char supported[] = "llama3 (<|start_header_id|>), llama2 ([INST] with <<SYS>>), "
                                "mistral ([INST] without <<SYS>>), chatml/qwen (<|im_start|>)";

/* The family of a template source s (from `where`, named in messages). */
static int classify(const char *s, size_t len, const char *where, tpi_chat_format *fmt, tpi_error *err)
{
    /* The markers are ASCII: search a NUL-terminated copy. */
    char *c = s ? malloc(len + 1) : NULL;
    if (s && !c)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    if (c) {
        memcpy(c, s, len);
        c[len] = 0;
    }
    int rc = 0;
    if (!c)
        rc = tpi_err(err, TPI_EUNSUPPORTED, "%s: no chat_template; chat supports the formats of %s", where,
                     supported);
    else if (strstr(c, "<|start_header_id|>"))
        *fmt = TPI_CHAT_LLAMA3;
    else if (strstr(c, "<|im_start|>"))
        *fmt = TPI_CHAT_CHATML;
    else if (strstr(c, "[INST]") && strstr(c, "<<SYS>>"))
        *fmt = TPI_CHAT_LLAMA2;
    else if (strstr(c, "[INST]"))
        *fmt = TPI_CHAT_MISTRAL;
    else
        rc = tpi_err(err, TPI_EUNSUPPORTED, "%s: chat_template of an unknown family; chat supports %s", where,
                     supported);
    free(c);
    return rc;
}

/* A GGUF file's tokenizer.chat_template. */
static int detect_gguf(const char *path, tpi_chat_format *fmt, tpi_error *err)
{
    tpi_gguf *g = NULL;
    tpi_gguf_str s = {0};
    int rc = tpi_gguf_open(&g, path, err);
    if (!rc && (rc = tpi_gguf_get_str(g, "tokenizer.chat_template", &s, err)) >= 0)
        rc = classify(s.s, (size_t)s.len, path, fmt, err);
    tpi_gguf_close(g);
    return rc;
}

int tpi_chat_format_detect(const char *dir, tpi_chat_format *fmt, tpi_error *err)
{
    *fmt = TPI_CHAT_NONE;
    if (tpi_gguf_is_path(dir))
        return detect_gguf(dir, fmt, err);
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    snprintf(path, n, "%s/tokenizer_config.json", dir);
    cJSON *j = NULL;
    int rc = tpi_json_load_file(path, &j, err);
    if (rc) {
        free(path);
        return rc;
    }
    const cJSON *t = cJSON_GetObjectItem(j, "chat_template");
    if (cJSON_IsArray(t)) { /* named templates: [{"name": "default", "template": ...}] */
        const cJSON *pick = NULL;
        for (const cJSON *e = t->child; e; e = e->next) {
            const cJSON *name = cJSON_GetObjectItem(e, "name");
            if (!pick || (cJSON_IsString(name) && !strcmp(name->valuestring, "default")))
                pick = e;
        }
        t = pick ? cJSON_GetObjectItem(pick, "template") : NULL;
    }
    const char *s = cJSON_IsString(t) ? t->valuestring : NULL;
    rc = classify(s, s ? strlen(s) : 0, path, fmt, err);
    cJSON_Delete(j);
    free(path);
    return rc;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2 + 64;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

int tpi_chat_format_apply(tpi_chat_format fmt, const char *const *roles, const char *const *contents,
                          int64_t n_msgs, char **text, tpi_error *err)
{
    sbuf b = {0};
    *text = NULL;
    put(&b, "");
    const char *sys = NULL;
    int64_t i = 0;
    if (n_msgs > 0 && !strcmp(roles[0], "system"))
        sys = contents[0], i = 1;
    for (int64_t k = i; k < n_msgs; k++)
        if (strcmp(roles[k], (k - i) % 2 ? "assistant" : "user")) {
            free(b.p);
            return tpi_err(err, TPI_EINVAL, "chat: message %lld has role \"%s\", expected \"%s\" (turns alternate)",
                           (long long)k, roles[k], (k - i) % 2 ? "assistant" : "user");
        }
    switch (fmt) {
    case TPI_CHAT_LLAMA3:
    case TPI_CHAT_CHATML:
        for (int64_t k = 0; k < n_msgs; k++) {
            put(&b, fmt == TPI_CHAT_LLAMA3 ? "<|start_header_id|>" : "<|im_start|>");
            put(&b, roles[k]);
            put(&b, fmt == TPI_CHAT_LLAMA3 ? "<|end_header_id|>\n\n" : "\n");
            put(&b, contents[k]);
            put(&b, fmt == TPI_CHAT_LLAMA3 ? "<|eot_id|>" : "<|im_end|>\n");
        }
        put(&b, fmt == TPI_CHAT_LLAMA3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "<|im_start|>assistant\n");
        break;
    case TPI_CHAT_LLAMA2:
    case TPI_CHAT_MISTRAL:
        /* The first BOS comes from the tokenizer; later turns write </s><s>. */
        for (int64_t k = i; k < n_msgs; k++) {
            if ((k - i) % 2 == 0) {
                if (k > i)
                    put(&b, fmt == TPI_CHAT_LLAMA2 ? " </s><s>" : "</s>");
                put(&b, "[INST] ");
                if (k == i && sys) {
                    if (fmt == TPI_CHAT_LLAMA2) {
                        put(&b, "<<SYS>>\n");
                        put(&b, sys);
                        put(&b, "\n<</SYS>>\n\n");
                    } else {
                        put(&b, sys);
                        put(&b, "\n\n");
                    }
                }
                put(&b, contents[k]);
                put(&b, " [/INST]");
            } else {
                put(&b, fmt == TPI_CHAT_LLAMA2 ? " " : "");
                put(&b, contents[k]);
            }
        }
        break;
    default:
        free(b.p);
        return tpi_err(err, TPI_EUNSUPPORTED, "chat: unknown format %d; supported: %s", (int)fmt, supported);
    }
    if (b.oom) {
        free(b.p);
        return tpi_err(err, TPI_ENOMEM, "chat: out of memory");
    }
    *text = b.p;
    return 0;
}
