/* Fuzzes the server's request bodies (src/server/request.c), no network:
 * the first input byte picks the route (bit 0: chat, else completions), the
 * rest is the body. A body that parses must hold only values in the ranges
 * docs/SERVING.md gives; its answer (response.c) must be JSON that parses
 * back. A failure must say why (naming the parameter, or "body"). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "server/response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ranges(const srv_api_request *r)
{
    const srv_params *p = &r->p;
    const tpi_sampling *s = &p->sampling;
    if (s->temperature < 0 || s->temperature > 2 || s->top_p <= 0 || s->top_p > 1 || s->top_k < 0 ||
        s->min_p < 0 || s->min_p > 1 || s->repetition_penalty <= 0 || s->repetition_penalty > 100 ||
        p->presence_penalty < -2 || p->presence_penalty > 2 || p->frequency_penalty < -2 || p->frequency_penalty > 2 ||
        p->max_tokens < 0 || p->max_tokens > SRV_MAX_TOKENS_MAX || p->n_stop < 0 || p->n_stop > SRV_STOP_MAX ||
        p->top_logprobs < 0 || p->top_logprobs > SRV_TOP_LOGPROBS_MAX)
        abort();
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i][0] || strlen(p->stop[i]) > SRV_STOP_BYTES)
            abort();
    if (r->route == SRV_ROUTE_CHAT) {
        cJSON *m = r->messages_json ? cJSON_Parse(r->messages_json) : NULL;
        if (r->n_msgs < 1 || cJSON_GetArraySize(m) != r->n_msgs)
            abort();
        cJSON_Delete(m);
    }
    for (int64_t i = 0; i < r->n_prompt_ids; i++)
        if (r->prompt_ids[i] < 0 || r->prompt_ids[i] >= 512)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int route = data[0] & 1 ? SRV_ROUTE_CHAT : SRV_ROUTE_COMPLETION;
    srv_api_request r;
    tpi_error err = {0};
    int rc = srv_request_parse(&r, route, (const char *)data + 1, size - 1, 512, &err);
    if (rc && (rc != TPI_EINVAL || !err.msg[0]))
        abort();
    if (!rc) {
        check_ranges(&r);
        srv_resp_meta m;
        srv_resp_meta_init(&m, route, 1, 2, r.model ? r.model : "m", r.include_usage);
        const char *text = route == SRV_ROUTE_CHAT ? r.contents[r.n_msgs - 1] : r.prompt ? r.prompt : "";
        srv_resp_part p = {.text = text, .len = strlen(text), .finish = SRV_FINISH_STOP, .prompt_tokens = 1};
        char *j = srv_completion_json(&m, &p, NULL, NULL);
        cJSON *back = j ? cJSON_Parse(j) : NULL;
        if (j && !back)
            abort();
        cJSON_Delete(back);
        free(j);
    }
    srv_request_free(&r);
    return 0;
}
