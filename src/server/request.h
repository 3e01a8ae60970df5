#ifndef TPI_SERVER_REQUEST_H
#define TPI_SERVER_REQUEST_H
/* OpenAI request bodies (POST /v1/chat/completions, /v1/completions) to a
 * validated request: strict JSON types, ranges, and every field known
 * (docs/SERVING.md "Parameters"). Pure: no I/O, no engine, so it is unit
 * tested and fuzzed (tests/fuzz/fuzz_http_request.c) on its own. */
#include <stddef.h>
#include <stdint.h>

#include "server/engine.h"
#include "tpinfer.h"

enum srv_route {
    SRV_ROUTE_CHAT = 1,       /* /v1/chat/completions */
    SRV_ROUTE_COMPLETION = 2, /* /v1/completions */
};

#define SRV_STOP_MAX 4          /* OpenAI's limit on `stop` */
#define SRV_STOP_BYTES 256      /* one stop string */
#define SRV_MAX_TOKENS_MAX ((int64_t)1 << 31)
#define SRV_TOP_K_MAX ((int64_t)1 << 31)
#define SRV_COMPLETION_DEFAULT_MAX_TOKENS 16 /* OpenAI's legacy completions default */

typedef struct srv_api_request {
    int route;                /* enum srv_route */
    int stream, include_usage;
    srv_params p;             /* p.stop points into stop; p.max_tokens 0: the rest of the context */
    int seed_given;           /* else the server picks a seed */
    char *stop[SRV_STOP_MAX];
    char *model;              /* as given (not checked against the served name), or NULL */
    /* completions: the prompt as text (prompt, prompt_len) or as token ids */
    char *prompt;
    size_t prompt_len;
    int32_t *prompt_ids;
    int64_t n_prompt_ids;
    /* chat: the messages with string contents, as a JSON array of
     * {role, content[, name]} for a template, and as arrays for the
     * built-in formats */
    char *messages_json;
    int64_t n_msgs;
    char **roles, **contents;
    int64_t vocab;            /* token ids of a prompt are below it */
    /* on failure: the parameter at fault, for the error object's "param" */
    char bad_param[64];
} srv_api_request;

/* Parses and validates `len` bytes of a request body for `route` into *r
 * (which the caller frees with srv_request_free, failed or not). Token ids
 * of a prompt must be below vocab. Returns 0 or TPI_EINVAL (answered 400)
 * with a message naming the parameter and what it takes; TPI_ENOMEM. */
int srv_request_parse(srv_api_request *r, int route, const char *body, size_t len, int64_t vocab, tpi_error *err);
void srv_request_free(srv_api_request *r);

#endif
