/* Generation through tpi_generate: greedy equals the golden continuations and
 * repeated full forward passes, stories260K text equals the llama2.c /
 * llama.cpp reference, batches equal prompts alone, the step-by-step state
 * equals tpi_generate, seeded sampling, stop strings and the context limit.
 * MPI-aware like test_golden.c: failures are collected and agreed on with
 * g_finish, never asserted between collectives. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "generate/sampler.h"
#include "golden.h"
#include "testutil.h"

static golden_ctx G;
static const int32_t no_eos[1] = {-1};

static int rank0(void) { return tpi_comm_rank(G.comm) == 0; }

static void expect_ids(const char *what, const int32_t *got, int64_t n_got, const int32_t *want, int64_t n)
{
    if (n_got != n) {
        g_fail(&G, "%s: %lld tokens, expected %lld", what, (long long)n_got, (long long)n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            g_fail(&G, "%s: token %lld is %d, expected %d", what, (long long)i, got[i], want[i]);
            return;
        }
    if (rank0())
        printf("ok: %s (%lld tokens)\n", what, (long long)n);
}

/* Greedy options without eos: the golden continuations run their full length. */
static tpi_gen_opts greedy_opts(int64_t n)
{
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = n;
    o.eos_ids = no_eos;
    o.n_eos = 1;
    return o;
}

/* Runs tpi_generate on one prompt; 0 or -1 after g_fail. */
static int gen1(tpi_model *m, const int32_t *prompt, int64_t n, const tpi_gen_opts *o, tpi_gen_result *r)
{
    tpi_error err = {0};
    if (tpi_generate(m, prompt, &n, 1, o, r, &err)) {
        g_fail(&G, "generate: %s", err.msg);
        return -1;
    }
    return 0;
}

/* Every golden case: generation equals new_ids and repeated full forward. */
static void test_golden_cases(void **state)
{
    (void)state;
    char *golden = tu_path(G.shared, "golden");
    cJSON *list = g_read_json(golden, "cases.json");
    assert_non_null(list);
    for (const cJSON *e = list->child; e; e = e->next) {
        char *dir = tu_path(golden, e->valuestring);
        cJSON *cfg = g_read_json(dir, "config.json"), *exp = g_read_json(dir, "expected.json");
        int heads = cfg ? cJSON_GetObjectItem(cfg, "num_attention_heads")->valueint : 0;
        if (!exp || heads < tpi_comm_size(G.comm)) {
            if (!exp)
                g_fail(&G, "%s: no expected.json", dir);
            else if (rank0())
                printf("skip: %s has %d heads < %d ranks\n", e->valuestring, heads, tpi_comm_size(G.comm));
            cJSON_Delete(cfg), cJSON_Delete(exp), free(dir);
            continue;
        }
        const cJSON *gr = cJSON_GetObjectItem(exp, "greedy");
        int64_t np, nn;
        int32_t *prompt = g_json_ids(cJSON_GetObjectItem(gr, "prompt_ids"), &np);
        int32_t *want = g_json_ids(cJSON_GetObjectItem(gr, "new_ids"), &nn);
        int32_t *full = calloc((size_t)nn, sizeof *full);
        tpi_model *m = g_load(&G, dir, 0);
        if (m) {
            char what[160];
            tpi_gen_opts o = greedy_opts(nn);
            tpi_gen_result r;
            if (!gen1(m, prompt, np, &o, &r)) {
                snprintf(what, sizeof what, "%s generate greedy vs new_ids", e->valuestring);
                expect_ids(what, r.ids, r.n_ids, want, nn);
                if (!g_greedy_full(&G, m, prompt, np, nn, full)) {
                    snprintf(what, sizeof what, "%s generate greedy vs full forward", e->valuestring);
                    expect_ids(what, r.ids, r.n_ids, full, nn);
                }
                tpi_gen_result_free(&r);
            }
            /* The logits path (gathered on rank 0, sampler, broadcast). */
            o.sampling.temperature = 0.7;
            o.sampling.top_k = 1;
            if (!gen1(m, prompt, np, &o, &r)) {
                snprintf(what, sizeof what, "%s top_k=1 vs new_ids", e->valuestring);
                expect_ids(what, r.ids, r.n_ids, want, nn);
                tpi_gen_result_free(&r);
            }
        }
        tpi_model_free(m);
        free(prompt), free(want), free(full), free(dir);
        cJSON_Delete(cfg), cJSON_Delete(exp);
    }
    cJSON_Delete(list);
    free(golden);
    g_finish(&G);
}

/* stories260K-hf and its tokenizer, shared by the tests below. */
static tpi_model *S_model;
static tpi_tokenizer *S_tok;
static char *S_dir;

static int32_t *encode(const char *text, int64_t *n)
{
    int32_t *ids = NULL;
    size_t k = 0;
    tpi_error err = {0};
    if (tpi_tokenizer_encode(S_tok, text, strlen(text), 1, &ids, &k, &err))
        g_fail(&G, "encode \"%s\": %s", text, err.msg);
    *n = (int64_t)k;
    return ids;
}

/* The fenced text under '## Prompt "Once upon a time", 64 new tokens'. */
static char *stories_reference_text(void)
{
    char *models = tu_path(G.shared, "models"), *ref = tu_path(models, "stories260K");
    char *md = tu_path(ref, "greedy-reference.md");
    char *text = tu_read_file(md, NULL), *out = NULL;
    char *at = text ? strstr(text, "## Prompt \"Once upon a time\", 64 new tokens") : NULL;
    at = at ? strstr(at, "```\n") : NULL;
    char *end = at ? strstr(at + 4, "\n```") : NULL;
    if (end) {
        out = strndup(at + 4, (size_t)(end - at - 4));
    }
    free(text), free(md), free(ref), free(models);
    return out;
}

typedef struct stream_cap {
    char buf[4096];
    size_t len;
    int calls, done_calls, done_reason;
} stream_cap;

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    stream_cap *c = user;
    (void)seq;
    if (c->len + len < sizeof c->buf) {
        memcpy(c->buf + c->len, text, len);
        c->len += len;
    }
    c->calls++;
}

static void on_done(void *user, int64_t seq, int reason)
{
    stream_cap *c = user;
    (void)seq;
    c->done_calls++;
    c->done_reason = reason;
}

static void test_stories_text(void **state)
{
    (void)state;
    char *want = stories_reference_text();
    assert_non_null(want);
    int64_t n;
    int32_t *prompt = encode("Once upon a time", &n);
    const int32_t ref_ids[5] = {1, 403, 407, 261, 378};
    expect_ids("encode \"Once upon a time\" with BOS", prompt, n, ref_ids, 5);
    if (n == 5) {
        tpi_gen_opts o;
        tpi_error err = {0};
        if (tpi_gen_opts_default(&o, S_dir, &err))
            g_fail(&G, "defaults: %s", err.msg);
        stream_cap cap = {0};
        o.max_new_tokens = 64;
        o.tokenizer = S_tok;
        o.echo_prompt = 1;
        o.on_text = on_text;
        o.on_done = on_done;
        o.user = &cap;
        tpi_gen_result r;
        if (!gen1(S_model, prompt, n, &o, &r)) {
            if (rank0()) {
                cap.buf[cap.len] = 0;
                if (!r.text || strcmp(r.text, want))
                    g_fail(&G, "stories text:\n%s\nexpected:\n%s", r.text ? r.text : "(null)", want);
                else if (strcmp(cap.buf, want))
                    g_fail(&G, "stories streamed text:\n%s\nexpected:\n%s", cap.buf, want);
                else if (cap.calls < 32 || cap.done_calls != 1 || cap.done_reason != TPI_STOP_LENGTH)
                    g_fail(&G, "stories: %d text calls, %d done calls (reason %d); expected one per token, one done",
                           cap.calls, cap.done_calls, cap.done_reason);
                else
                    printf("ok: stories260K text byte-identical to the reference (%zu bytes, %d stream calls)\n",
                           cap.len, cap.calls);
            }
            if (r.n_ids != 64 || r.stop_reason != TPI_STOP_LENGTH)
                g_fail(&G, "stories: %lld tokens, stop %d; expected 64, length", (long long)r.n_ids, r.stop_reason);
            tpi_gen_result_free(&r);
        }
        /* A stop string: the text ends just before it, the string not included. */
        o = greedy_opts(64);
        o.tokenizer = S_tok;
        const char *stop[] = {"zzz", "Lily"};
        o.stop = stop;
        o.n_stop = 2;
        if (!gen1(S_model, prompt, n, &o, &r)) {
            const char *exp = ", there was a little girl named ";
            if (r.stop_reason != TPI_STOP_STRING)
                g_fail(&G, "stop string: reason %d, expected %d", r.stop_reason, TPI_STOP_STRING);
            else if (rank0() && (!r.text || strcmp(r.text, exp)))
                g_fail(&G, "stop string: text \"%s\", expected \"%s\"", r.text ? r.text : "(null)", exp);
            else if (rank0())
                printf("ok: stop string \"Lily\" after %lld tokens: \"%s\"\n", (long long)r.n_ids, r.text);
            tpi_gen_result_free(&r);
        }
    }
    free(prompt), free(want);
    g_finish(&G);
}

/* A batch of 3 prompts of different lengths, greedy and through the logits
 * path, equals each prompt alone. */
static void test_batch(void **state)
{
    (void)state;
    const char *texts[3] = {"Once upon a time", "Lily", "The little dog was very happy because he"};
    int32_t *p[3], all[256];
    int64_t lens[3], total = 0;
    for (int i = 0; i < 3; i++) {
        p[i] = encode(texts[i], &lens[i]);
        memcpy(all + total, p[i], (size_t)lens[i] * sizeof *all);
        total += lens[i];
    }
    for (int path = 0; path < 2; path++) {
        tpi_gen_opts o = greedy_opts(24);
        o.eos_ids = NULL; /* the model's eos: sequences may end at different steps */
        if (path)
            o.sampling.temperature = 1.0, o.sampling.top_k = 1;
        tpi_gen_result rb[3], r1;
        tpi_error err = {0};
        if (tpi_generate(S_model, all, lens, 3, &o, rb, &err)) {
            g_fail(&G, "batch: %s", err.msg);
            continue;
        }
        for (int i = 0; i < 3; i++) {
            if (!gen1(S_model, p[i], lens[i], &o, &r1)) {
                char what[128];
                snprintf(what, sizeof what, "%s batch of 3: sequence %d (%lld prompt tokens) vs alone",
                         path ? "top_k=1" : "greedy", i, (long long)lens[i]);
                expect_ids(what, rb[i].ids, rb[i].n_ids, r1.ids, r1.n_ids);
                tpi_gen_result_free(&r1);
            }
            tpi_gen_result_free(&rb[i]);
        }
    }
    for (int i = 0; i < 3; i++)
        free(p[i]);
    g_finish(&G);
}

/* Per-sequence text that on_text streamed, for the step-by-step test. */
typedef struct seq_caps {
    char buf[3][1024];
    size_t len[3];
} seq_caps;

static void on_seq_text(void *user, int64_t seq, const char *text, size_t len)
{
    seq_caps *c = user;
    if (seq >= 0 && seq < 3 && c->len[seq] + len < sizeof c->buf[seq]) {
        memcpy(c->buf[seq] + c->len[seq], text, len);
        c->len[seq] += len;
    }
}

/* Drives st to the end one step at a time, checking each step: a running
 * sequence gains exactly one id, a stopped one none, and the step returns 1
 * exactly while a sequence still runs. Returns the number of steps that ran
 * a forward, or -1 after g_fail. */
static int64_t drive_steps(tpi_gen_state *st, int64_t n_seq, const char *what)
{
    int64_t before[3], steps = 0;
    tpi_error err = {0};
    for (;;) {
        for (int64_t s = 0; s < n_seq; s++) {
            const int32_t *ids;
            before[s] = tpi_gen_state_ids(st, s, &ids);
        }
        int rc = tpi_gen_state_step(st, &err);
        if (rc < 0) {
            g_fail(&G, "%s: step %lld: %s", what, (long long)steps, err.msg);
            return -1;
        }
        int running = 0, grew = 0;
        for (int64_t s = 0; s < n_seq; s++) {
            const int32_t *ids;
            int64_t n = tpi_gen_state_ids(st, s, &ids), d = n - before[s];
            int reason = tpi_gen_state_stop_reason(st, s);
            running |= reason == TPI_STOP_NONE;
            grew |= d != 0;
            if (d < 0 || d > 1 || (reason == TPI_STOP_NONE && d != 1 && steps > 0)) {
                g_fail(&G, "%s: step %lld: sequence %lld went from %lld to %lld ids (stop %d)", what, (long long)steps,
                       (long long)s, (long long)before[s], (long long)n, reason);
                return -1;
            }
        }
        if (rc != running) {
            g_fail(&G, "%s: step %lld returned %d with %s running", what, (long long)steps, rc,
                   running ? "sequences" : "none");
            return -1;
        }
        steps += grew;
        if (!rc)
            break;
    }
    if (tpi_gen_state_step(st, &err) != 0)
        g_fail(&G, "%s: a step after the end did not return 0", what);
    return steps;
}

/* tpi_gen_state driven step by step gives exactly tpi_generate's ids, stop
 * reasons and text (and on_text streams that text), for a batch whose
 * sequences stop at different steps (model eos, a stop string, the token
 * limit), greedy and sampled. */
static void test_gen_state_steps(void **state)
{
    (void)state;
    const char *texts[3] = {"Once upon a time", "Lily", "The little dog was very happy because he"};
    int32_t all[256];
    int64_t lens[3], total = 0;
    for (int i = 0; i < 3; i++) {
        int32_t *p = encode(texts[i], &lens[i]);
        memcpy(all + total, p, (size_t)lens[i] * sizeof *all);
        total += lens[i];
        free(p);
    }
    const char *stop[] = {"park"};
    const int32_t eos[1] = {tpi_tokenizer_token_id(S_tok, ".")};
    for (int path = 0; path < 2; path++) {
        const char *what = path ? "gen_state sampled" : "gen_state greedy";
        tpi_gen_opts o = greedy_opts(path ? 8 : 40);
        o.eos_ids = eos; /* a full stop: an eos that comes */
        o.n_eos = 1;
        o.tokenizer = S_tok;
        o.stop = stop;
        o.n_stop = 1;
        if (path)
            o.sampling = (tpi_sampling){.temperature = 1.0, .top_p = 0.95, .repetition_penalty = 1.1, .seed = 42};
        tpi_gen_result ref[3], got;
        tpi_error err = {0};
        if (tpi_generate(S_model, all, lens, 3, &o, ref, &err)) {
            g_fail(&G, "%s: tpi_generate: %s", what, err.msg);
            continue;
        }
        seq_caps caps = {0};
        o.on_text = on_seq_text;
        o.user = &caps;
        tpi_gen_state *st;
        if (tpi_gen_state_create(&st, S_model, all, lens, 3, &o, &err)) {
            g_fail(&G, "%s: create: %s", what, err.msg);
        } else if (drive_steps(st, 3, what) >= 0) {
            for (int64_t s = 0; s < 3; s++) {
                if (tpi_gen_state_result(st, s, &got, &err)) {
                    g_fail(&G, "%s: result %lld: %s", what, (long long)s, err.msg);
                    continue;
                }
                char w[128];
                snprintf(w, sizeof w, "%s sequence %lld (stop %d) vs tpi_generate", what, (long long)s,
                         got.stop_reason);
                expect_ids(w, got.ids, got.n_ids, ref[s].ids, ref[s].n_ids);
                if (got.stop_reason != ref[s].stop_reason)
                    g_fail(&G, "%s: stop %d, tpi_generate's %d", w, got.stop_reason, ref[s].stop_reason);
                if (rank0() && (!got.text || !ref[s].text || strcmp(got.text, ref[s].text)))
                    g_fail(&G, "%s: text \"%s\", tpi_generate's \"%s\"", w, got.text ? got.text : "(null)",
                           ref[s].text ? ref[s].text : "(null)");
                if (rank0() && got.text && (caps.len[s] != got.text_len || memcmp(caps.buf[s], got.text, got.text_len)))
                    g_fail(&G, "%s: on_text streamed \"%.*s\", the result is \"%s\"", w, (int)caps.len[s],
                           caps.buf[s], got.text);
                tpi_gen_result_free(&got);
            }
        }
        tpi_gen_state_free(st);
        for (int i = 0; i < 3; i++)
            tpi_gen_result_free(&ref[i]);
    }
    g_finish(&G);
}

static void test_sampling(void **state)
{
    (void)state;
    int64_t n;
    int32_t *prompt = encode("Once upon a time", &n);
    tpi_gen_opts o = greedy_opts(40);
    tpi_gen_result greedy, a, b, c, k1;
    int ok = !gen1(S_model, prompt, n, &o, &greedy);
    o.sampling = (tpi_sampling){.temperature = 1.0, .top_k = 0, .top_p = 0.95, .min_p = 0.02,
                                .repetition_penalty = 1.1, .seed = 42};
    ok = ok && !gen1(S_model, prompt, n, &o, &a);
    ok = ok && !gen1(S_model, prompt, n, &o, &b);
    o.sampling.seed = 43;
    ok = ok && !gen1(S_model, prompt, n, &o, &c);
    o.sampling = (tpi_sampling){.temperature = 1.5, .top_k = 1, .top_p = 1, .repetition_penalty = 1, .seed = 7};
    ok = ok && !gen1(S_model, prompt, n, &o, &k1);
    if (ok) {
        expect_ids("seed 42 twice", a.ids, a.n_ids, b.ids, b.n_ids);
        int same = a.n_ids == c.n_ids && !memcmp(a.ids, c.ids, (size_t)a.n_ids * sizeof *a.ids);
        if (same)
            g_fail(&G, "seeds 42 and 43 gave the same %lld tokens", (long long)a.n_ids);
        else if (rank0())
            printf("ok: seeds 42 and 43 differ\n");
        int same_g = a.n_ids == greedy.n_ids && !memcmp(a.ids, greedy.ids, (size_t)a.n_ids * sizeof *a.ids);
        if (same_g)
            g_fail(&G, "sampling at temperature 1 gave the greedy tokens");
        expect_ids("top_k=1 at temperature 1.5 vs greedy", k1.ids, k1.n_ids, greedy.ids, greedy.n_ids);
        tpi_gen_result_free(&greedy), tpi_gen_result_free(&a), tpi_gen_result_free(&b);
        tpi_gen_result_free(&c), tpi_gen_result_free(&k1);
    }
    free(prompt);
    g_finish(&G);
}

/* The sampler's filters on small hand-made rows (local to each rank). */
static void test_sampler_rules(void **state)
{
    (void)state;
    tpi_sampler s;
    tpi_sampling p = {.temperature = 0, .top_k = 0, .top_p = 1, .min_p = 0, .repetition_penalty = 2, .seed = 1};
    /* transformers' penalty: positive logits divided, negative multiplied. */
    const float l1[3] = {3.0f, -1.0f, 2.5f};
    const int32_t h1[1] = {0};
    assert_int_equal(tpi_sampler_init(&s, &p, 3, NULL), 0);
    assert_int_equal(tpi_sampler_pick(&s, l1, 3, h1, 1), 2);
    assert_int_equal(tpi_sampler_pick(&s, l1, 3, NULL, 0), 0);
    const float l2[2] = {-1.0f, -1.5f};
    assert_int_equal(tpi_sampler_pick(&s, l2, 2, h1, 1), 1);
    tpi_sampler_free(&s);
    /* top_k=2 never picks the third; top_p=0.5 with p0 > 0.5 always the first;
     * min_p=0.5 drops tokens under half the top probability. */
    const float l3[4] = {2.0f, 1.9f, 1.8f, -5.0f};
    int counts[3][4] = {{0}};
    tpi_sampling ps[3] = {{.temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1, .seed = 5},
                          {.temperature = 0.1, .top_k = 0, .top_p = 0.5, .repetition_penalty = 1, .seed = 5},
                          {.temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0.5, .repetition_penalty = 1, .seed = 5}};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tpi_sampler_init(&s, &ps[k], 4, NULL), 0);
        for (int i = 0; i < 2000; i++)
            counts[k][tpi_sampler_pick(&s, l3, 4, NULL, 0)]++;
        tpi_sampler_free(&s);
    }
    assert_int_equal(counts[0][2] + counts[0][3], 0);
    assert_true(counts[0][0] > 800 && counts[0][1] > 800);
    assert_int_equal(counts[1][0], 2000);
    assert_int_equal(counts[2][3], 0);
    assert_true(counts[2][2] > 300);
    /* Bad parameters are an error, not a silent fallback. */
    tpi_sampling bad = {.temperature = 1, .top_p = 0, .repetition_penalty = 1};
    tpi_error err = {0};
    assert_int_equal(tpi_sampler_init(&s, &bad, 4, &err), TPI_EINVAL);
}

static void test_context_limit(void **state)
{
    (void)state;
    int64_t n;
    int32_t *prompt = encode("Once upon a time there was a little girl", &n);
    tpi_gen_opts o = greedy_opts(64);
    o.max_ctx = n - 2;
    tpi_gen_result r;
    tpi_error err = {0};
    char want[128];
    snprintf(want, sizeof want, "has %lld tokens, longer than the context of %lld tokens", (long long)n,
             (long long)(n - 2));
    int rc = tpi_generate(S_model, prompt, &n, 1, &o, &r, &err);
    if (rc != TPI_ELIMIT || !strstr(err.msg, want))
        g_fail(&G, "prompt over the context: rc %d \"%s\", expected TPI_ELIMIT with \"%s\"", rc, err.msg, want);
    else if (rank0())
        printf("ok: %s\n", err.msg);
    if (!rc)
        tpi_gen_result_free(&r);
    /* Reaching the context stops the sequence: prompt + output = context. */
    o.max_ctx = n + 7;
    o.tokenizer = S_tok;
    if (!gen1(S_model, prompt, n, &o, &r)) {
        if (r.stop_reason != TPI_STOP_CONTEXT || r.n_ids != 7)
            g_fail(&G, "context %lld: %lld tokens, stop %d; expected 7, %d", (long long)o.max_ctx,
                   (long long)r.n_ids, r.stop_reason, TPI_STOP_CONTEXT);
        else if (rank0())
            printf("ok: context of %lld reached after 7 new tokens\n", (long long)o.max_ctx);
        tpi_gen_result_free(&r);
    }
    /* A prompt exactly as long as the context: nothing to generate. */
    o.max_ctx = n;
    if (!gen1(S_model, prompt, n, &o, &r)) {
        if (r.stop_reason != TPI_STOP_CONTEXT || r.n_ids != 0)
            g_fail(&G, "prompt = context: %lld tokens, stop %d", (long long)r.n_ids, r.stop_reason);
        tpi_gen_result_free(&r);
    }
    free(prompt);
    g_finish(&G);
}

static void test_chat_formats(void **state)
{
    (void)state;
    const char *roles[3] = {"system", "user", "assistant"}, *msgs[3] = {"Be brief.", "Hi", "Hello"};
    const char *roles4[4] = {"system", "user", "assistant", "user"}, *msgs4[4] = {"S", "A", "B", "C"};
    char *t = NULL;
    assert_int_equal(tpi_chat_format_apply(TPI_CHAT_LLAMA3, roles, msgs, 2, &t, NULL), 0);
    assert_string_equal(t, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(t);
    assert_int_equal(tpi_chat_format_apply(TPI_CHAT_CHATML, roles, msgs, 3, &t, NULL), 0);
    assert_string_equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                           "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n");
    free(t);
    assert_int_equal(tpi_chat_format_apply(TPI_CHAT_LLAMA2, roles4, msgs4, 4, &t, NULL), 0);
    assert_string_equal(t, "[INST] <<SYS>>\nS\n<</SYS>>\n\nA [/INST] B </s><s>[INST] C [/INST]");
    free(t);
    assert_int_equal(tpi_chat_format_apply(TPI_CHAT_MISTRAL, roles4 + 1, msgs4 + 1, 3, &t, NULL), 0);
    assert_string_equal(t, "[INST] A [/INST]B</s>[INST] C [/INST]");
    free(t);
    char *models = tu_path(G.shared, "models"), *d;
    tpi_chat_format f;
    tpi_error err = {0};
    d = tu_path(models, "llama3-tokenizer");
    assert_int_equal(tpi_chat_format_detect(d, &f, &err), 0);
    assert_int_equal(f, TPI_CHAT_LLAMA3);
    free(d);
    d = tu_path(models, "qwen3-tokenizer");
    assert_int_equal(tpi_chat_format_detect(d, &f, &err), 0);
    assert_int_equal(f, TPI_CHAT_CHATML);
    free(d);
    d = tu_path(models, "gpt2-tokenizer");
    assert_int_equal(tpi_chat_format_detect(d, &f, &err), TPI_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "llama3"));
    assert_non_null(strstr(err.msg, "chatml"));
    free(d);
    free(models);
}

static int stories_setup(void **state)
{
    (void)state;
    char *models = tu_path(G.shared, "models");
    S_dir = tu_path(models, "stories260K-hf");
    free(models);
    tpi_error err = {0};
    S_model = g_load(&G, S_dir, 0);
    if (tpi_tokenizer_load(&S_tok, S_dir, &err))
        g_fail(&G, "tokenizer: %s", err.msg);
    int32_t f = !S_model || !S_tok;
    tpi_comm_allreduce_max_i32(G.comm, &f, 1);
    return f ? -1 : 0;
}

static int stories_teardown(void **state)
{
    (void)state;
    tpi_model_free(S_model);
    tpi_tokenizer_free(S_tok);
    free(S_dir);
    return 0;
}

int main(int argc, char **argv)
{
    int rc0 = g_init(&G, &argc, &argv);
    if (rc0)
        return rc0;
    /* TPI_GEN_ONLY=stories runs the stories260K tests only (the 3-rank run). */
    const char *only = getenv("TPI_GEN_ONLY");
    int all = !only || strcmp(only, "stories");
    const struct CMUnitTest golden[] = {
        cmocka_unit_test(test_sampler_rules),
        cmocka_unit_test(test_chat_formats),
        cmocka_unit_test(test_golden_cases),
    };
    const struct CMUnitTest stories[] = {
        cmocka_unit_test(test_stories_text),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_gen_state_steps),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_context_limit),
    };
    char group[64];
    int rc = 0;
    if (all) {
        snprintf(group, sizeof group, "generate TP=%d", tpi_comm_size(G.comm));
        rc |= _cmocka_run_group_tests(group, golden, sizeof golden / sizeof golden[0], NULL, NULL);
    }
    snprintf(group, sizeof group, "generate stories260K TP=%d", tpi_comm_size(G.comm));
    rc |= _cmocka_run_group_tests(group, stories, sizeof stories / sizeof stories[0], stories_setup,
                                  stories_teardown);
    tpi_comm_free(G.comm);
    return rc;
}
