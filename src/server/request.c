/* Request bodies to validated requests: one handler per parameter, looked up
 * in a table per route, so an unknown or unsupported parameter is always a
 * 400 that names it and never silently ignored. */
#include "server/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

/* Writes the message, remembers the parameter and returns TPI_EINVAL. */
static int bad(srv_api_request *r, tpi_error *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(srv_api_request *r, tpi_error *err, const char *param, const char *fmt, ...)
{
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->bad_param, sizeof r->bad_param, "%s", param);
    return tpi_err(err, TPI_EINVAL, "%s: %s", param, msg);
}

static const char *type_name(const cJSON *it)
{
    if (cJSON_IsString(it))
        return "a string";
    if (cJSON_IsNumber(it))
        return "a number";
    if (cJSON_IsBool(it))
        return "a boolean";
    if (cJSON_IsArray(it))
        return "an array";
    if (cJSON_IsObject(it))
        return "an object";
    return "null";
}

/* A finite number in [lo, hi], (lo, hi] with lo_open. */
static int get_real(srv_api_request *r, const cJSON *it, const char *name, double lo, int lo_open, double hi,
                    double *out, tpi_error *err)
{
    const char *range = lo_open ? "(" : "[";
    if (!cJSON_IsNumber(it))
        return bad(r, err, name, "expected a number in %s%g, %g], found %s", range, lo, hi, type_name(it));
    double v = it->valuedouble;
    if (!isfinite(v) || v > hi || (lo_open ? v <= lo : v < lo))
        return bad(r, err, name, "expected a number in %s%g, %g], found %g", range, lo, hi, v);
    *out = v;
    return 0;
}

static int get_int(srv_api_request *r, const cJSON *it, const char *name, int64_t lo, int64_t hi, int64_t *out,
                   tpi_error *err)
{
    if (!cJSON_IsNumber(it))
        return bad(r, err, name, "expected an integer in [%lld, %lld], found %s", (long long)lo, (long long)hi,
                   type_name(it));
    if (tpi_json_as_int(it, lo, hi, out))
        return bad(r, err, name, "expected an integer in [%lld, %lld], found %g", (long long)lo, (long long)hi,
                   it->valuedouble);
    return 0;
}

static int get_bool(srv_api_request *r, const cJSON *it, const char *name, int *out, tpi_error *err)
{
    if (!cJSON_IsBool(it))
        return bad(r, err, name, "expected true or false, found %s", type_name(it));
    *out = cJSON_IsTrue(it);
    return 0;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---- the parameters ---- */

typedef int (*field_fn)(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err);

static int f_model(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (!cJSON_IsString(it))
        return bad(r, err, name, "expected a string, found %s", type_name(it));
    r->model = strdup(it->valuestring);
    return r->model ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
}

static int f_stream(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_bool(r, it, name, &r->stream, err);
}

static int f_stream_options(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (!cJSON_IsObject(it))
        return bad(r, err, name, "expected an object such as {\"include_usage\": true}, found %s", type_name(it));
    for (const cJSON *c = it->child; c; c = c->next) {
        if (strcmp(c->string, "include_usage"))
            return bad(r, err, "stream_options", "unknown field \"%.64s\" (only include_usage is supported)",
                       c->string);
        if (!cJSON_IsNull(c) && get_bool(r, c, "stream_options.include_usage", &r->include_usage, err))
            return TPI_EINVAL;
    }
    return 0;
}

static int f_max_tokens(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_int(r, it, name, 1, SRV_MAX_TOKENS_MAX, &r->p.max_tokens, err);
}

static int f_temperature(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, 0, 0, 2, &r->p.sampling.temperature, err);
}

static int f_top_p(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, 0, 1, 1, &r->p.sampling.top_p, err);
}

/* -1 is vLLM's "off", 0 OpenAI-style clients' and ours. */
static int f_top_k(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t k;
    if (get_int(r, it, name, -1, SRV_TOP_K_MAX, &k, err))
        return TPI_EINVAL;
    r->p.sampling.top_k = k < 0 ? 0 : k;
    return 0;
}

static int f_min_p(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, 0, 0, 1, &r->p.sampling.min_p, err);
}

static int f_repetition_penalty(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, 0, 1, 100, &r->p.sampling.repetition_penalty, err);
}

static int f_presence_penalty(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, -2, 0, 2, &r->p.presence_penalty, err);
}

static int f_frequency_penalty(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_real(r, it, name, -2, 0, 2, &r->p.frequency_penalty, err);
}

/* Any 64-bit integer, negative ones taken modulo 2^64 (as vLLM, which
 * passes them to torch); JSON numbers past 2^53 are not exact integers. */
static int f_seed(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    const double lim = 9007199254740992.0; /* 2^53 */
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble != floor(it->valuedouble) ||
        fabs(it->valuedouble) > lim)
        return bad(r, err, name, "expected an integer in [-2^53, 2^53], found %s",
                   cJSON_IsNumber(it) ? "a number outside it or not whole" : type_name(it));
    r->p.sampling.seed = (uint64_t)(int64_t)it->valuedouble;
    r->seed_given = 1;
    return 0;
}

static int add_stop(srv_api_request *r, const cJSON *s, const char *name, tpi_error *err)
{
    if (!cJSON_IsString(s))
        return bad(r, err, name, "expected a string or a list of strings, found %s", type_name(s));
    size_t n = strlen(s->valuestring);
    if (n < 1 || n > SRV_STOP_BYTES)
        return bad(r, err, name, "expected stop strings of 1 to %d bytes, found one of %zu", SRV_STOP_BYTES, n);
    if (r->p.n_stop == SRV_STOP_MAX)
        return bad(r, err, name, "expected at most %d stop strings", SRV_STOP_MAX);
    if (!(r->stop[r->p.n_stop] = strdup(s->valuestring)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    r->p.n_stop++;
    return 0;
}

static int f_stop(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    r->p.stop = (const char *const *)r->stop;
    if (!cJSON_IsArray(it))
        return add_stop(r, it, name, err);
    for (const cJSON *s = it->child; s; s = s->next)
        if (add_stop(r, s, name, err))
            return err ? err->code : TPI_EINVAL;
    return 0;
}

static int f_n(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t n = 0;
    return get_int(r, it, name, 1, 1, &n, err);
}

/* Metadata about the end user: OpenAI uses it for abuse monitoring, which
 * tpinfer does not do. */
static int f_user(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return cJSON_IsString(it) ? 0 : bad(r, err, name, "expected a string, found %s", type_name(it));
}

static int f_ignore_eos(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_bool(r, it, name, &r->p.ignore_eos, err);
}

/* Accepted only where it asks for nothing. */
static int f_logit_bias(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (cJSON_IsObject(it) && !it->child)
        return 0;
    return bad(r, err, name, "is not supported (only {} or null)");
}

static int f_response_format(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    const cJSON *t = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "type") : NULL;
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "text") && !it->child->next)
        return 0;
    return bad(r, err, name, "only {\"type\": \"text\"} is supported");
}

static int f_logprobs_chat(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    return get_bool(r, it, name, &r->p.logprobs, err);
}

static int f_top_logprobs(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t k;
    if (get_int(r, it, name, 0, SRV_TOP_LOGPROBS_MAX, &k, err))
        return TPI_EINVAL;
    r->p.top_logprobs = (int)k;
    return 0;
}

/* The legacy API's logprobs: how many alternatives per token, 0..5. */
static int f_logprobs_completion(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t k;
    if (get_int(r, it, name, 0, 5, &k, err))
        return TPI_EINVAL;
    r->p.logprobs = 1;
    r->p.top_logprobs = (int)k;
    return 0;
}

static int f_echo(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int echo = 0;
    if (get_bool(r, it, name, &echo, err))
        return TPI_EINVAL;
    return echo ? bad(r, err, name, "true is not supported") : 0;
}

static int f_best_of(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t n = 0;
    return get_int(r, it, name, 1, 1, &n, err);
}

static int f_suffix(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (cJSON_IsString(it) && !it->valuestring[0])
        return 0;
    return bad(r, err, name, "is not supported (only \"\" or null)");
}

/* Tool calls would need the output parsed back into tool_calls, which
 * tpinfer does not do; "none" asks for nothing. */
static int f_tool_choice(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (cJSON_IsString(it) && !strcmp(it->valuestring, "none"))
        return 0;
    return bad(r, err, name, "tool calling is not supported (only \"none\" or null)");
}

static int f_tools(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    if (cJSON_IsArray(it) && !it->child)
        return 0;
    return bad(r, err, name, "tool calling is not supported");
}

static int f_parallel_tool_calls(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int v = 0;
    return get_bool(r, it, name, &v, err);
}

/* ---- messages and prompts ---- */

#define SRV_MESSAGES_MAX 4096

/* A message's content: a string, or a list of text parts joined with "\n"
 * (as vLLM joins them). */
static int get_content(srv_api_request *r, const cJSON *c, const char *where, char **out, tpi_error *err)
{
    if (cJSON_IsString(c))
        return (*out = strdup(c->valuestring)) ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
    if (!cJSON_IsArray(c))
        return bad(r, err, where, "expected a string or a list of text parts, found %s", type_name(c));
    size_t len = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x) ||
            cJSON_GetArraySize(p) != 2)
            return bad(r, err, where, "expected parts {\"type\": \"text\", \"text\": \"...\"} (only text is supported)");
        len += strlen(x->valuestring) + 1;
    }
    char *s = malloc(len + 1);
    if (!s)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    size_t at = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const char *x = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t n = strlen(x);
        if (at)
            s[at++] = '\n';
        memcpy(s + at, x, n);
        at += n;
    }
    s[at] = 0;
    *out = s;
    return 0;
}

static const char *message_role(const cJSON *m)
{
    static const char *const roles[] = {"system", "user", "assistant", "developer"};
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    for (int i = 0; cJSON_IsString(role) && i < 4; i++)
        if (!strcmp(role->valuestring, roles[i]))
            return i == 3 ? "system" : roles[i]; /* OpenAI's newer name for system */
    return NULL;
}

/* One message into r->roles/contents[i] and a normalized copy into arr. */
static int parse_message(srv_api_request *r, const cJSON *m, int64_t i, cJSON *arr, tpi_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "messages[%lld]", (long long)i);
    if (!cJSON_IsObject(m))
        return bad(r, err, where, "expected an object with role and content, found %s", type_name(m));
    for (const cJSON *k = m->child; k; k = k->next)
        if (strcmp(k->string, "role") && strcmp(k->string, "content") && strcmp(k->string, "name")) {
            int tool = !strncmp(k->string, "tool_call", 9) || !strcmp(k->string, "function_call");
            return bad(r, err, where, "field \"%.64s\" is not supported%s", k->string,
                       tool ? " (tool calling is not supported)" : "");
        }
    const char *role = message_role(m);
    if (!role)
        return bad(r, err, where, "role: expected \"system\", \"user\", \"assistant\" or \"developer\"");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (name && !cJSON_IsString(name))
        return bad(r, err, where, "name: expected a string, found %s", type_name(name));
    char cwhere[80];
    snprintf(cwhere, sizeof cwhere, "%s.content", where);
    if (!(r->roles[i] = strdup(role)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    r->n_msgs = i + 1; /* freed from here on */
    int rc = get_content(r, cJSON_GetObjectItemCaseSensitive(m, "content"), cwhere, &r->contents[i], err);
    if (rc)
        return rc;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o) || !cJSON_AddStringToObject(o, "role", role) ||
        !cJSON_AddStringToObject(o, "content", r->contents[i]) ||
        (name && !cJSON_AddStringToObject(o, "name", name->valuestring)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    return 0;
}

static int f_messages(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    int64_t n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0;
    if (n < 1 || n > SRV_MESSAGES_MAX)
        return bad(r, err, name, "expected a list of 1 to %d messages, found %s", SRV_MESSAGES_MAX,
                   cJSON_IsArray(it) ? "another length" : type_name(it));
    r->roles = calloc((size_t)n, sizeof *r->roles);
    r->contents = calloc((size_t)n, sizeof *r->contents);
    cJSON *arr = cJSON_CreateArray();
    int rc = r->roles && r->contents && arr ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
    int64_t i = 0;
    for (const cJSON *m = it->child; m && !rc; m = m->next)
        rc = parse_message(r, m, i++, arr, err);
    if (!rc && !(r->messages_json = cJSON_PrintUnformatted(arr)))
        rc = tpi_err(err, TPI_ENOMEM, "out of memory");
    cJSON_Delete(arr);
    return rc;
}

/* Token ids, each in [0, vocab). */
static int get_ids(srv_api_request *r, const cJSON *a, const char *name, tpi_error *err)
{
    int64_t n = cJSON_GetArraySize(a), k = 0;
    if (n < 1)
        return bad(r, err, name, "expected at least one token id");
    if (!(r->prompt_ids = malloc((size_t)n * sizeof *r->prompt_ids)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    for (const cJSON *t = a->child; t; t = t->next) {
        int64_t id;
        if (tpi_json_as_int(t, 0, r->vocab - 1, &id))
            return bad(r, err, name, "token %lld: expected a token id in [0, %lld], found %s", (long long)k,
                       (long long)r->vocab - 1, cJSON_IsNumber(t) ? "a number outside it" : type_name(t));
        r->prompt_ids[k++] = (int32_t)id;
    }
    r->n_prompt_ids = k;
    return 0;
}

/* A string, a list of token ids, or a list holding one of either: one
 * prompt per request, as n is 1. */
static int f_prompt(srv_api_request *r, const cJSON *it, const char *name, tpi_error *err)
{
    const cJSON *one = it;
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 1 && !cJSON_IsNumber(it->child))
        one = it->child;
    if (cJSON_IsString(one)) {
        r->prompt_len = strlen(one->valuestring);
        r->prompt = dup_bytes(one->valuestring, r->prompt_len);
        return r->prompt ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    if (cJSON_IsArray(one) && (!one->child || cJSON_IsNumber(one->child)))
        return get_ids(r, one, name, err);
    return bad(r, err, name, "expected a string or a list of token ids (one prompt per request), found %s",
               type_name(it));
}

typedef struct field {
    const char *name;
    field_fn fn;
} field;

static const field common_fields[] = {
    {"model", f_model},
    {"stream", f_stream},
    {"stream_options", f_stream_options},
    {"max_tokens", f_max_tokens},
    {"temperature", f_temperature},
    {"top_p", f_top_p},
    {"top_k", f_top_k},
    {"min_p", f_min_p},
    {"repetition_penalty", f_repetition_penalty},
    {"presence_penalty", f_presence_penalty},
    {"frequency_penalty", f_frequency_penalty},
    {"seed", f_seed},
    {"stop", f_stop},
    {"n", f_n},
    {"user", f_user},
    {"ignore_eos", f_ignore_eos},
    {"logit_bias", f_logit_bias},
    {NULL, NULL},
};

static const field chat_fields[] = {
    {"messages", f_messages},
    {"max_completion_tokens", f_max_tokens},
    {"logprobs", f_logprobs_chat},
    {"top_logprobs", f_top_logprobs},
    {"response_format", f_response_format},
    {"tools", f_tools},
    {"tool_choice", f_tool_choice},
    {"parallel_tool_calls", f_parallel_tool_calls},
    {NULL, NULL},
};

static const field completion_fields[] = {
    {"prompt", f_prompt},
    {"logprobs", f_logprobs_completion},
    {"echo", f_echo},
    {"best_of", f_best_of},
    {"suffix", f_suffix},
    {NULL, NULL},
};

static const field *find_field(int route, const char *name)
{
    const field *tables[] = {route == SRV_ROUTE_CHAT ? chat_fields : completion_fields, common_fields};
    for (int t = 0; t < 2; t++)
        for (const field *f = tables[t]; f->name; f++)
            if (!strcmp(f->name, name))
                return f;
    return NULL;
}

/* What needs more than one field: max_completion_tokens wins over
 * max_tokens (OpenAI deprecates the latter for chat). */
static int check_together(srv_api_request *r, const cJSON *root, tpi_error *err)
{
    const cJSON *need = cJSON_GetObjectItemCaseSensitive(root, r->route == SRV_ROUTE_CHAT ? "messages" : "prompt");
    if (!need || cJSON_IsNull(need))
        return bad(r, err, r->route == SRV_ROUTE_CHAT ? "messages" : "prompt", "is required");
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    if (r->route == SRV_ROUTE_CHAT && mct && !cJSON_IsNull(mct))
        f_max_tokens(r, mct, "max_completion_tokens", err);
    if (r->include_usage && !r->stream)
        return bad(r, err, "stream_options", "is allowed only with \"stream\": true");
    if (r->route == SRV_ROUTE_CHAT && r->p.top_logprobs && !r->p.logprobs)
        return bad(r, err, "top_logprobs", "needs \"logprobs\": true");
    if (r->route == SRV_ROUTE_COMPLETION && !r->p.max_tokens)
        r->p.max_tokens = SRV_COMPLETION_DEFAULT_MAX_TOKENS;
    return 0;
}

static int parse_root(srv_api_request *r, const cJSON *root, tpi_error *err)
{
    if (!cJSON_IsObject(root))
        return bad(r, err, "body", "expected a JSON object, found %s", type_name(root));
    /* Each known field once: JSON leaves duplicates open, and which one a
     * reader takes differs (cJSON's lookups the first, Python's the last). */
    const field *seen[sizeof common_fields / sizeof common_fields[0] + sizeof chat_fields / sizeof chat_fields[0]];
    int n_seen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        const field *f = find_field(r->route, it->string);
        char name[48];
        snprintf(name, sizeof name, "%s", it->string);
        if (!f)
            return bad(r, err, name, "unknown or unsupported parameter \"%s\"", name);
        for (int i = 0; i < n_seen; i++)
            if (seen[i] == f)
                return bad(r, err, name, "given more than once");
        seen[n_seen++] = f;
        if (!cJSON_IsNull(it) && f->fn(r, it, it->string, err))
            return err ? err->code : TPI_EINVAL;
    }
    return check_together(r, root, err);
}

/* What cJSON would read without a word: raw control characters (RFC 8259
 * wants them escaped) and \u0000, either of which ends a string early where
 * cJSON hands it over as a C string ("temperature\u0000x" would read as
 * "temperature"). */
static int check_bytes(srv_api_request *r, const char *body, size_t len, tpi_error *err)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch < 0x20 && (in_string || (ch != '\t' && ch != '\n' && ch != '\r')))
            return bad(r, err, "body", "control character 0x%02x at byte %zu (JSON strings must escape them)", ch, i);
        if (ch == '"')
            in_string = !in_string;
        if (ch == '\\' && in_string && i + 1 < len) {
            if (len - i >= 6 && !memcmp(body + i + 1, "u0000", 5))
                return bad(r, err, "body", "\\u0000 at byte %zu: NUL characters are not accepted", i);
            i++; /* the escaped character */
        }
    }
    return 0;
}

int srv_request_parse(srv_api_request *r, int route, const char *body, size_t len, int64_t vocab, tpi_error *err)
{
    memset(r, 0, sizeof *r);
    r->route = route;
    r->p.sampling = (tpi_sampling){.temperature = 1, .top_p = 1, .repetition_penalty = 1};
    if (!tok_utf8_valid(body, len))
        return bad(r, err, "body", "is not valid UTF-8");
    if (check_bytes(r, body, len, err))
        return TPI_EINVAL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    size_t at = end && end >= body ? (size_t)(end - body) : 0;
    while (root && at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r'))
        at++;
    if (!root || at < len) {
        cJSON_Delete(root);
        return bad(r, err, "body", "not valid JSON (error near byte %zu of %zu)", at, len);
    }
    r->vocab = vocab;
    int rc = parse_root(r, root, err);
    cJSON_Delete(root);
    return rc;
}

void srv_request_free(srv_api_request *r)
{
    for (int i = 0; i < SRV_STOP_MAX; i++)
        free(r->stop[i]);
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->messages_json);
    for (int64_t i = 0; i < r->n_msgs; i++) {
        if (r->roles)
            free(r->roles[i]);
        if (r->contents)
            free(r->contents[i]);
    }
    free(r->roles);
    free(r->contents);
    memset(r, 0, sizeof *r);
}
