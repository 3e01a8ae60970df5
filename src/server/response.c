/* Answers in OpenAI's shapes (the API reference's chat.completion,
 * chat.completion.chunk and text_completion objects), built with cJSON so
 * every string is escaped. */
#include "server/response.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"

void srv_resp_meta_init(srv_resp_meta *m, int route, uint64_t unique, int64_t created, const char *model,
                        int include_usage)
{
    memset(m, 0, sizeof *m);
    m->route = route;
    m->created = created;
    m->model = model;
    m->include_usage = include_usage;
    snprintf(m->id, sizeof m->id, "%s-%016llx%08llx", route == SRV_ROUTE_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)unique, (unsigned long long)(created & 0xffffffff));
}

/* cJSON_PrintUnformatted, then the tree freed; NULL for a NULL tree. */
static char *print_free(cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *srv_error_json(int status, const char *message, const char *param)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (!e)
        return print_free(root);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param && param[0])
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    cJSON_AddNumberToObject(e, "code", status);
    return print_free(root);
}

static const char *finish_name(int finish)
{
    switch (finish) {
    case SRV_FINISH_STOP: return "stop";
    case SRV_FINISH_LENGTH: return "length";
    case SRV_FINISH_CANCELLED: return "abort";
    default: return NULL;
    }
}

/* A text of len bytes (not NUL-terminated) as a JSON string. */
static cJSON *add_text(cJSON *obj, const char *key, const char *text, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, text ? text : "", len);
    s[len] = 0;
    cJSON *j = cJSON_AddStringToObject(obj, key, s);
    free(s);
    return j;
}

static void add_usage(cJSON *obj, const srv_resp_part *p)
{
    cJSON *u = cJSON_AddObjectToObject(obj, "usage");
    if (!u)
        return;
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)p->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)p->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(p->prompt_tokens + p->completion_tokens));
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    if (d)
        cJSON_AddNumberToObject(d, "cached_tokens", (double)p->cached_tokens);
}

static cJSON *object_head(const srv_resp_meta *m, const char *object)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", m->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)m->created);
    cJSON_AddStringToObject(root, "model", m->model ? m->model : "");
    return root;
}

/* {"token", "logprob", "bytes"} of one id, as the chat API's logprobs. */
static cJSON *chat_token(int32_t id, float logprob, srv_token_text_fn tt, void *ctx)
{
    char *t = tt ? tt(ctx, id) : NULL;
    const char *s = t ? t : "";
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", s);
    cJSON_AddNumberToObject(o, "logprob", logprob);
    cJSON *b = cJSON_AddArrayToObject(o, "bytes");
    for (const unsigned char *c = (const unsigned char *)s; b && *c; c++)
        cJSON_AddItemToArray(b, cJSON_CreateNumber(*c));
    free(t);
    return o;
}

static cJSON *chat_logprobs(const srv_resp_part *p, srv_token_text_fn tt, void *ctx)
{
    cJSON *lp = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(lp, "content");
    for (int i = 0; content && i < p->n_lp; i++) {
        const srv_logprob *l = &p->lp[i];
        cJSON *o = chat_token(l->id, l->logprob, tt, ctx), *top = cJSON_AddArrayToObject(o, "top_logprobs");
        for (int k = 0; top && k < l->n_top && k < SRV_TOP_LOGPROBS_MAX; k++)
            cJSON_AddItemToArray(top, chat_token(l->top_ids[k], l->top_logprobs[k], tt, ctx));
        cJSON_AddItemToArray(content, o);
    }
    return lp;
}

/* The legacy completions API's logprobs: parallel arrays. */
static cJSON *completion_logprobs(const srv_resp_part *p, size_t text_offset, srv_token_text_fn tt, void *ctx)
{
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens"), *lps = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs"), *offs = cJSON_AddArrayToObject(lp, "text_offset");
    if (!tokens || !lps || !tops || !offs)
        return lp;
    for (int i = 0; i < p->n_lp; i++) {
        const srv_logprob *l = &p->lp[i];
        char *t = tt ? tt(ctx, l->id) : NULL;
        cJSON_AddItemToArray(tokens, cJSON_CreateString(t ? t : ""));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(l->logprob));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)text_offset));
        text_offset += t ? strlen(t) : 0;
        free(t);
        cJSON *top = cJSON_CreateObject();
        for (int k = 0; k < l->n_top && k < SRV_TOP_LOGPROBS_MAX; k++) {
            char *tk = tt ? tt(ctx, l->top_ids[k]) : NULL;
            if (!cJSON_GetObjectItemCaseSensitive(top, tk ? tk : "")) /* two ids may decode alike */
                cJSON_AddNumberToObject(top, tk ? tk : "", l->top_logprobs[k]);
            free(tk);
        }
        cJSON_AddItemToArray(tops, top);
    }
    return lp;
}

/* One choice: message, delta or text, logprobs, finish_reason. */
static cJSON *choice(const srv_resp_meta *m, const srv_resp_part *p, int stream, size_t text_offset,
                     srv_token_text_fn tt, void *ctx)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (m->route == SRV_ROUTE_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, stream ? "delta" : "message");
        if (msg && !stream)
            cJSON_AddStringToObject(msg, "role", "assistant");
        if (msg && (p->len || !stream))
            add_text(msg, "content", p->text, p->len);
    } else {
        add_text(c, "text", p->text, p->len);
    }
    if (p->lp && p->n_lp)
        cJSON_AddItemToObject(c, "logprobs", m->route == SRV_ROUTE_CHAT ? chat_logprobs(p, tt, ctx)
                                                                         : completion_logprobs(p, text_offset, tt, ctx));
    else
        cJSON_AddNullToObject(c, "logprobs");
    const char *f = finish_name(p->finish);
    if (f)
        cJSON_AddStringToObject(c, "finish_reason", f);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

char *srv_completion_json(const srv_resp_meta *m, const srv_resp_part *p, srv_token_text_fn tt, void *ctx)
{
    cJSON *root = object_head(m, m->route == SRV_ROUTE_CHAT ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (choices)
        cJSON_AddItemToArray(choices, choice(m, p, 0, 0, tt, ctx));
    add_usage(root, p);
    return print_free(root);
}

/* "data: JSON\n\n" of a chunk object (freed). */
static char *frame(cJSON *j)
{
    char *s = print_free(j);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *f = malloc(n + 9);
    if (f) {
        memcpy(f, "data: ", 6);
        memcpy(f + 6, s, n);
        memcpy(f + 6 + n, "\n\n", 3);
    }
    free(s);
    return f;
}

static cJSON *chunk(const srv_resp_meta *m, const srv_resp_part *p, size_t text_offset, srv_token_text_fn tt,
                    void *ctx)
{
    cJSON *root = object_head(m, m->route == SRV_ROUTE_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (choices)
        cJSON_AddItemToArray(choices, choice(m, p, 1, text_offset, tt, ctx));
    if (m->include_usage) /* OpenAI: null on every chunk but the last */
        cJSON_AddNullToObject(root, "usage");
    return root;
}

char *srv_sse_first(const srv_resp_meta *m)
{
    srv_resp_part none = {0};
    cJSON *j = chunk(m, &none, 0, NULL, NULL);
    if (m->route == SRV_ROUTE_CHAT) {
        cJSON *delta = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "delta");
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
    }
    return frame(j);
}

char *srv_sse_text(const srv_resp_meta *m, const srv_resp_part *p, size_t text_offset, srv_token_text_fn tt,
                   void *ctx)
{
    srv_resp_part q = *p;
    q.finish = 0;
    return frame(chunk(m, &q, text_offset, tt, ctx));
}

char *srv_sse_final(const srv_resp_meta *m, const srv_resp_part *p)
{
    srv_resp_part q = {.finish = p->finish};
    char *fin = frame(chunk(m, &q, 0, NULL, NULL)), *usage = NULL;
    if (fin && m->include_usage) {
        cJSON *root = object_head(m, m->route == SRV_ROUTE_CHAT ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(root, "choices");
        add_usage(root, p);
        usage = frame(root);
    }
    static const char done[] = "data: [DONE]\n\n";
    size_t a = fin ? strlen(fin) : 0, b = usage ? strlen(usage) : 0;
    char *all = fin && (usage || !m->include_usage) ? malloc(a + b + sizeof done) : NULL;
    if (all) {
        memcpy(all, fin, a);
        if (b)
            memcpy(all + a, usage, b);
        memcpy(all + a + b, done, sizeof done);
    }
    free(fin);
    free(usage);
    return all;
}

char *srv_sse_error(const char *message)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", "server_error");
    cJSON_AddNullToObject(e, "param");
    cJSON_AddNumberToObject(e, "code", 500);
    return frame(root);
}

char *srv_models_json(const char *model, int64_t created, int64_t max_model_len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", model);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "tpinfer");
    cJSON_AddNumberToObject(m, "max_model_len", (double)max_model_len);
    if (!data || !cJSON_AddItemToArray(data, m))
        cJSON_Delete(m);
    return print_free(root);
}
