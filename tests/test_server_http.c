/* The server's pure parts (src/server/request.c, response.c, metrics.c):
 * request bodies to validated requests, with every bad one a TPI_EINVAL
 * naming its parameter; answers and SSE frames in OpenAI's shapes, checked
 * by parsing them back; /metrics in Prometheus' text format. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/request.h"
#include "server/response.h"

static int parse(srv_api_request *r, int route, const char *body, tpi_error *err)
{
    return srv_request_parse(r, route, body, strlen(body), 512, err);
}

static void completion_all_params(void **state)
{
    (void)state;
    srv_api_request r;
    tpi_error err = {0};
    const char *body = "{\"model\":\"m\",\"prompt\":\"Once\",\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,"
                       "\"top_k\":-1,\"min_p\":0.05,\"repetition_penalty\":1.1,\"presence_penalty\":-2,"
                       "\"frequency_penalty\":2,\"seed\":-1,\"stop\":[\"a\",\"bc\"],\"n\":1,\"user\":\"u\","
                       "\"logprobs\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"echo\":false,\"best_of\":1,\"suffix\":null,\"logit_bias\":{},\"ignore_eos\":true}";
    assert_int_equal(parse(&r, SRV_ROUTE_COMPLETION, body, &err), 0);
    assert_string_equal(r.model, "m");
    assert_string_equal(r.prompt, "Once");
    assert_int_equal(r.p.max_tokens, 7);
    assert_true(r.p.sampling.temperature == 0.5 && r.p.sampling.top_p == 0.9 && r.p.sampling.min_p == 0.05);
    assert_int_equal(r.p.sampling.top_k, 0); /* vLLM's -1: off */
    assert_true(r.p.sampling.repetition_penalty == 1.1);
    assert_true(r.p.presence_penalty == -2 && r.p.frequency_penalty == 2);
    assert_true(r.seed_given && r.p.sampling.seed == UINT64_MAX);
    assert_int_equal(r.p.n_stop, 2);
    assert_string_equal(r.p.stop[0], "a");
    assert_string_equal(r.p.stop[1], "bc");
    assert_true(r.p.logprobs == 1 && r.p.top_logprobs == 3);
    assert_true(r.stream && r.include_usage && r.p.ignore_eos);
    srv_request_free(&r);
}

static void defaults_and_prompt_forms(void **state)
{
    (void)state;
    srv_api_request r;
    tpi_error err = {0};
    assert_int_equal(parse(&r, SRV_ROUTE_COMPLETION, "{\"prompt\":[[5,6,7]]}", &err), 0);
    assert_int_equal(r.n_prompt_ids, 3);
    assert_int_equal(r.prompt_ids[2], 7);
    assert_int_equal(r.p.max_tokens, SRV_COMPLETION_DEFAULT_MAX_TOKENS);
    assert_true(r.p.sampling.temperature == 1 && r.p.sampling.top_p == 1 && r.p.sampling.repetition_penalty == 1);
    assert_false(r.seed_given);
    srv_request_free(&r);
    assert_int_equal(parse(&r, SRV_ROUTE_COMPLETION, " {\"prompt\":[\"x\"], \"stop\":\"s\"}\n", &err), 0);
    assert_string_equal(r.prompt, "x");
    assert_int_equal(r.p.n_stop, 1);
    srv_request_free(&r);
    assert_int_equal(parse(&r, SRV_ROUTE_COMPLETION, "{\"prompt\":[1,511],\"max_tokens\":null}", &err), 0);
    assert_int_equal(r.n_prompt_ids, 2);
    srv_request_free(&r);
}

static void chat_messages(void **state)
{
    (void)state;
    srv_api_request r;
    tpi_error err = {0};
    const char *body = "{\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],"
                       "\"name\":\"ann\"},{\"role\":\"assistant\",\"content\":\"\\u00e9\"}],"
                       "\"max_tokens\":5,\"max_completion_tokens\":9,\"logprobs\":true,\"top_logprobs\":20,"
                       "\"response_format\":{\"type\":\"text\"},\"tool_choice\":\"none\",\"tools\":[]}";
    assert_int_equal(parse(&r, SRV_ROUTE_CHAT, body, &err), 0);
    assert_int_equal(r.n_msgs, 3);
    assert_string_equal(r.roles[0], "system");
    assert_string_equal(r.contents[1], "a\nb");
    assert_string_equal(r.contents[2], "\xc3\xa9");
    assert_string_equal(r.messages_json, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                                         "\"content\":\"a\\nb\",\"name\":\"ann\"},{\"role\":\"assistant\",\"content\":\"\xc3\xa9\"}]");
    assert_int_equal(r.p.max_tokens, 9); /* max_completion_tokens wins */
    assert_true(r.p.logprobs == 1 && r.p.top_logprobs == 20);
    srv_request_free(&r);
    assert_int_equal(parse(&r, SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &err), 0);
    assert_int_equal(r.p.max_tokens, 0); /* the rest of the context */
    srv_request_free(&r);
}

/* Each bad body: TPI_EINVAL, the parameter named in bad_param and in the
 * message with `want`. */
static const struct bad_case {
    int route;
    const char *body, *param, *want;
} bad_cases[] = {
    {SRV_ROUTE_COMPLETION, "", "body", "not valid JSON"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\"} x", "body", "not valid JSON"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",}", "body", "not valid JSON"},
    {SRV_ROUTE_COMPLETION, "[1]", "body", "expected a JSON object, found an array"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"\xff\"}", "body", "not valid UTF-8"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"\xed\xa0\x80\"}", "body", "not valid UTF-8"},
    {SRV_ROUTE_COMPLETION, "{\"max_tokens\":2}", "prompt", "is required"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"a\\u0000b\"}", "body", "NUL characters are not accepted"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"a\\\\u0000b\"}\t", NULL, NULL}, /* an escaped backslash, then text */
    {SRV_ROUTE_COMPLETION, "{\"temperature\\u0000x\":0,\"prompt\":\"a\"}", "body", "NUL characters"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"a\tb\"}", "body", "control character 0x09"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"temperature\":\"0.5\"}", "temperature", "expected a number in [0, 2], found a string"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"temperature\":2.5}", "temperature", "found 2.5"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"temperature\":1e400}", "temperature", "found inf"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"top_p\":0}", "top_p", "(0, 1]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"top_k\":1.5}", "top_k", "expected an integer"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"top_k\":-2}", "top_k", "expected an integer in [-1,"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"min_p\":1.5}", "min_p", "[0, 1]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"repetition_penalty\":0}", "repetition_penalty", "(0, 100]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"presence_penalty\":-2.5}", "presence_penalty", "[-2, 2]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"frequency_penalty\":true}", "frequency_penalty", "found a boolean"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "[1, 2147483648]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":1e300}", "max_tokens", "expected an integer"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", "max_tokens", "found a string"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"seed\":1.5}", "seed", "expected an integer"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"seed\":1e19}", "seed", "2^53"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "at most 4"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stop\":[\"\"]}", "stop", "1 to 256 bytes"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stop\":5}", "stop", "found a number"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"n\":2}", "n", "[1, 1]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stream\":1}", "stream", "true or false"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options", "only with"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"x\":1}}", "stream_options", "unknown field \"x\""},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":6}", "logprobs", "[0, 5]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"echo\":true}", "echo", "not supported"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"best_of\":3}", "best_of", "[1, 1]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":1}}", "logit_bias", "not supported"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"foo\":1}", "foo", "unknown or unsupported parameter"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"prompt\":\"y\"}", "prompt", "given more than once"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":\"a\",\"model\":\"b\"}", "model", "more than once"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":\"x\",\"messages\":[]}", "messages", "unknown or unsupported"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt", "one prompt per request"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":[512]}", "prompt", "token id in [0, 511]"},
    {SRV_ROUTE_COMPLETION, "{\"prompt\":[]}", "prompt", "at least one token"},
    {SRV_ROUTE_CHAT, "{}", "messages", "is required"},
    {SRV_ROUTE_CHAT, "{\"messages\":[]}", "messages", "1 to 4096 messages"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}", "messages[0]", "role: expected"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "found null"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content", "only text"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", "messages[0]", "tool calling"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "top_logprobs", "needs"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":21,\"logprobs\":true}", "top_logprobs", "[0, 20]"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":3}", "logprobs", "true or false"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}", "tools", "not supported"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}", "tool_choice", "not supported"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", "response_format", "only"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"prompt\":\"x\"}", "prompt", "unknown"},
    {SRV_ROUTE_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-1}", "max_completion_tokens", "[1,"},
};

static void bad_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        srv_api_request r;
        tpi_error err = {0};
        int rc = parse(&r, c->route, c->body, &err);
        if (!c->param) { /* a near miss that is fine */
            if (rc)
                fail_msg("body %s: %s", c->body, err.msg);
            srv_request_free(&r);
            continue;
        }
        if (rc != TPI_EINVAL || strcmp(r.bad_param, c->param) || !strstr(err.msg, c->want) ||
            strncmp(err.msg, c->param, strlen(c->param)))
            fail_msg("body %s: rc %d, param \"%s\", message \"%s\"; wanted param \"%s\" and \"%s\"", c->body, rc,
                     r.bad_param, err.msg, c->param, c->want);
        srv_request_free(&r);
    }
}

/* A token's text in the tests: "<id>". */
static char *token_text(void *ctx, int32_t id)
{
    (void)ctx;
    char *s = malloc(16);
    snprintf(s, 16, "<%d>", (int)id);
    return s;
}

static cJSON *parsed(char *s)
{
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

static const char *str_at(const cJSON *j, const char *a, int i, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItem(j, a);
    if (i >= 0)
        x = cJSON_GetArrayItem(x, i);
    if (b)
        x = cJSON_GetObjectItem(x, b);
    if (c)
        x = cJSON_GetObjectItem(x, c);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void whole_answers(void **state)
{
    (void)state;
    srv_resp_meta m;
    srv_resp_meta_init(&m, SRV_ROUTE_CHAT, 42, 1700000000, "tiny", 0);
    assert_string_equal(m.id, "chatcmpl-000000000000002a6553f100");
    srv_logprob lp[2] = {{.id = 7, .logprob = -0.5f, .n_top = 2, .top_ids = {7, 9}, .top_logprobs = {-0.5f, -1.5f}},
                         {.id = 8, .logprob = -0.25f, .n_top = 0}};
    srv_resp_part p = {.text = "hi \"x\"", .len = 6, .lp = lp, .n_lp = 2, .finish = SRV_FINISH_LENGTH,
                       .prompt_tokens = 10, .completion_tokens = 2, .cached_tokens = 4};
    cJSON *j = parsed(srv_completion_json(&m, &p, token_text, NULL));
    assert_string_equal(str_at(j, "object", -1, NULL, NULL), "chat.completion");
    assert_string_equal(str_at(j, "choices", 0, "message", "content"), "hi \"x\"");
    assert_string_equal(str_at(j, "choices", 0, "message", "role"), "assistant");
    assert_string_equal(str_at(j, "choices", 0, "finish_reason", NULL), "length");
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "total_tokens")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "prompt_tokens_details"), "cached_tokens")->valueint, 4);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                                                   "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 2);
    const cJSON *t0 = cJSON_GetArrayItem(content, 0);
    assert_string_equal(cJSON_GetObjectItem(t0, "token")->valuestring, "<7>");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t0, "bytes")), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "top_logprobs"), 1), "token")->valuestring,
                        "<9>");
    cJSON_Delete(j);

    srv_resp_meta_init(&m, SRV_ROUTE_COMPLETION, 1, 5, "tiny", 0);
    p.finish = SRV_FINISH_STOP;
    j = parsed(srv_completion_json(&m, &p, token_text, NULL));
    assert_string_equal(str_at(j, "object", -1, NULL, NULL), "text_completion");
    assert_string_equal(str_at(j, "choices", 0, "text", NULL), "hi \"x\"");
    assert_string_equal(str_at(j, "choices", 0, "finish_reason", NULL), "stop");
    const cJSON *l = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "tokens"), 1)->valuestring, "<8>");
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "text_offset"), 1)->valueint, 3); /* after "<7>" */
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "top_logprobs"), 0), "<9>")->valuedouble == -1.5);
    cJSON_Delete(j);

    j = parsed(srv_error_json(400, "temperature: bad", "temperature"));
    assert_string_equal(str_at(j, "error", -1, "message", NULL), "temperature: bad");
    assert_string_equal(str_at(j, "error", -1, "type", NULL), "invalid_request_error");
    assert_string_equal(str_at(j, "error", -1, "param", NULL), "temperature");
    cJSON_Delete(j);
}

/* Splits SSE text into its events' JSON (the [DONE] marker as NULL). */
static int sse_events(const char *s, cJSON **ev, int cap)
{
    int n = 0;
    while (*s) {
        assert_memory_equal(s, "data: ", 6);
        const char *end = strstr(s, "\n\n");
        assert_non_null(end);
        assert_true(n < cap);
        ev[n++] = strncmp(s + 6, "[DONE]", 6) ? cJSON_ParseWithLength(s + 6, (size_t)(end - s - 6)) : NULL;
        s = end + 2;
    }
    return n;
}

static void stream_frames(void **state)
{
    (void)state;
    srv_resp_meta m;
    srv_resp_meta_init(&m, SRV_ROUTE_CHAT, 1, 5, "tiny", 1);
    cJSON *ev[4];
    char *first = srv_sse_first(&m);
    assert_int_equal(sse_events(first, ev, 4), 1);
    assert_string_equal(str_at(ev[0], "choices", 0, "delta", "role"), "assistant");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ev[0], "usage")));
    cJSON_Delete(ev[0]);
    free(first);
    srv_resp_part p = {.text = "abc", .len = 2, .finish = SRV_FINISH_STOP, .prompt_tokens = 3, .completion_tokens = 1};
    char *t = srv_sse_text(&m, &p, 0, NULL, NULL);
    assert_int_equal(sse_events(t, ev, 4), 1);
    assert_string_equal(str_at(ev[0], "object", -1, NULL, NULL), "chat.completion.chunk");
    assert_string_equal(str_at(ev[0], "choices", 0, "delta", "content"), "ab");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ev[0], "choices"), 0), "finish_reason")));
    cJSON_Delete(ev[0]);
    free(t);
    char *fin = srv_sse_final(&m, &p);
    assert_int_equal(sse_events(fin, ev, 4), 3);
    assert_string_equal(str_at(ev[0], "choices", 0, "finish_reason", NULL), "stop");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ev[1], "choices")), 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ev[1], "usage"), "total_tokens")->valueint, 4);
    assert_null(ev[2]);
    cJSON_Delete(ev[0]);
    cJSON_Delete(ev[1]);
    free(fin);
    m.include_usage = 0;
    fin = srv_sse_final(&m, &p);
    assert_int_equal(sse_events(fin, ev, 4), 2);
    assert_null(cJSON_GetObjectItem(ev[0], "usage"));
    cJSON_Delete(ev[0]);
    free(fin);
}

static void metrics_text(void **state)
{
    (void)state;
    srv_stats s = {.requests = 5, .requests_ok = 3, .requests_cancelled = 1, .prompt_tokens = 40, .generated_tokens = 90,
                   .running = 2, .queued = 1, .kv_positions_used = 77, .kv_positions_total = 2048, .ttft_sum = 0.75};
    for (int i = 0; i < SRV_TTFT_BUCKETS; i++)
        s.ttft_count[i] = i < 3 ? 1 : 4;
    s.steps[SRV_STEP_DECODE] = 12, s.step_tokens[SRV_STEP_DECODE] = 30, s.steps[SRV_STEP_MIXED] = 2;
    s.step_seconds[SRV_STEP_DECODE][SRV_PHASE_FORWARD] = 1.5, s.step_seconds[SRV_STEP_MIXED][SRV_PHASE_SAMPLE] = 0.25;
    srv_http_stats h = {.responses_2xx = 4, .responses_4xx = 7, .disconnects = 1};
    char *t = srv_metrics_text(&s, &h);
    assert_non_null(t);
    const char *want[] = {
        "# TYPE tpinfer_requests_total counter\n", "tpinfer_requests_total{outcome=\"cancelled\"} 1\n",
        "tpinfer_http_responses_total{class=\"4xx\"} 7\n", "tpinfer_prompt_tokens_total 40\n",
        "tpinfer_generation_tokens_total 90\n", "tpinfer_num_requests_running 2\n", "tpinfer_num_requests_waiting 1\n",
        "tpinfer_kv_positions_used 77\n", "# TYPE tpinfer_time_to_first_token_seconds histogram\n",
        "tpinfer_time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n", "tpinfer_time_to_first_token_seconds_count 4\n",
        "tpinfer_time_to_first_token_seconds_sum 0.750000\n", "tpinfer_http_disconnects_total 1\n",
        "# TYPE tpinfer_step_seconds_total counter\n", "tpinfer_steps_total{kind=\"decode\"} 12\n",
        "tpinfer_steps_total{kind=\"mixed\"} 2\n", "tpinfer_step_tokens_total{kind=\"decode\"} 30\n",
        "tpinfer_step_seconds_total{kind=\"decode\",phase=\"forward\"} 1.500000\n",
        "tpinfer_step_seconds_total{kind=\"decode\",phase=\"plan\"} 0.000000\n",
        "tpinfer_step_seconds_total{kind=\"mixed\",phase=\"sample\"} 0.250000\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(t, want[i]))
            fail_msg("missing %s in\n%s", want[i], t);
    /* every line is a comment or "name{labels} value" */
    for (const char *l = t; *l; l = strchr(l, '\n') + 1)
        assert_true(l[0] == '#' || (l[0] >= 'a' && l[0] <= 'z'));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(completion_all_params), cmocka_unit_test(defaults_and_prompt_forms),
        cmocka_unit_test(chat_messages),         cmocka_unit_test(bad_bodies),
        cmocka_unit_test(whole_answers),         cmocka_unit_test(stream_frames),
        cmocka_unit_test(metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
