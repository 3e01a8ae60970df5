#ifndef TPI_SERVER_RESPONSE_H
#define TPI_SERVER_RESPONSE_H
/* The JSON the server answers with, in the shapes of OpenAI's API: error
 * objects, whole completions, streamed chunks and their SSE framing, the
 * model list, and /metrics in Prometheus' text format. Pure: every function
 * returns a malloc'd NUL-terminated string (NULL when out of memory). */
#include <stddef.h>
#include <stdint.h>

#include "server/engine.h"

/* What every answer of one request repeats. */
typedef struct srv_resp_meta {
    int route;         /* enum srv_route */
    char id[48];       /* "chatcmpl-..." or "cmpl-..." */
    int64_t created;   /* Unix seconds */
    const char *model; /* the served model's name */
    int include_usage; /* stream_options.include_usage */
} srv_resp_meta;

/* A token's text for logprobs (malloc'd; NULL is read as ""). */
typedef char *(*srv_token_text_fn)(void *ctx, int32_t id);

/* What a request produced, for the whole answer or one chunk. */
typedef struct srv_resp_part {
    const char *text;
    size_t len;
    const srv_logprob *lp; /* the tokens of text, or NULL without logprobs */
    int n_lp;
    int finish;            /* enum srv_finish, 0 while running */
    int64_t prompt_tokens, completion_tokens, cached_tokens;
} srv_resp_part;

/* Fills m->id from the route and a number unique to this server. */
void srv_resp_meta_init(srv_resp_meta *m, int route, uint64_t unique, int64_t created, const char *model,
                        int include_usage);

/* {"error": {"message", "type", "param", "code"}}; param NULL or "" is null. */
char *srv_error_json(int status, const char *message, const char *param);
/* The whole non-streamed answer. */
char *srv_completion_json(const srv_resp_meta *m, const srv_resp_part *p, srv_token_text_fn tt, void *ctx);
/* SSE frames: the first chunk (chat: the assistant role), a text chunk
 * (text_offset: bytes of text streamed before it, for legacy logprobs), the
 * final chunk with finish_reason and, with include_usage, the usage chunk,
 * then "data: [DONE]". An error during the stream is one frame with an error
 * object. Each ends in a blank line. */
char *srv_sse_first(const srv_resp_meta *m);
char *srv_sse_text(const srv_resp_meta *m, const srv_resp_part *p, size_t text_offset, srv_token_text_fn tt,
                   void *ctx);
char *srv_sse_final(const srv_resp_meta *m, const srv_resp_part *p);
char *srv_sse_error(const char *message);

/* GET /v1/models. */
char *srv_models_json(const char *model, int64_t created, int64_t max_model_len);

/* Counts the HTTP layer keeps beside the engine's. */
typedef struct srv_http_stats {
    int64_t responses_2xx, responses_4xx, responses_5xx;
    int64_t rejected_queue_full; /* 503 with Retry-After */
    int64_t disconnects;         /* clients gone before their answer ended */
} srv_http_stats;

/* GET /metrics in Prometheus' text exposition format. */
char *srv_metrics_text(const srv_stats *s, const srv_http_stats *h);

#endif
