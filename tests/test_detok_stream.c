/* Streaming decode against the full decode on random ids: for each real
 * tokenizer in ../shared/models, 1,000 sequences of 1..24 ids drawn uniformly
 * over the whole vocabulary (added and special tokens included), streamed with
 * skip_special 0 and 1. Invariant (include/tpinfer.h): no push fails, every
 * push ends on a whole character, and the pushes plus the flush equal
 * tpi_tokenizer_decode of all the ids, byte for byte. Then generation's text
 * side (gen_text.c) on the same ids: the echoed text equals the decode of
 * prompt + output with skip_special, cut at the first stop string after the
 * prompt, and on_text receives exactly that text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "generate/gen_text.h"
#include "testutil.h"
#include "tpinfer.h"

enum { N_SEQ = 1000, MAX_LEN = 24 };

static const char *shared;

/* splitmix64: a fixed seed gives the same sequences on every run. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void print_ids(const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? "," : "", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* Streams ids and compares with the full decode; fails naming the ids. */
static void stream_equals_decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special)
{
    tpi_error err = {0};
    char *full;
    size_t len;
    assert_int_equal(tpi_tokenizer_decode(t, ids, n, skip_special, &full, &len, &err), 0);
    tpi_detok_stream *s;
    assert_int_equal(tpi_detok_stream_create(&s, t, skip_special, &err), 0);
    char *acc = malloc(len + 1);
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *piece;
        size_t pl;
        int rc = i < n ? tpi_detok_stream_push(s, ids[i], &piece, &pl, &err)
                       : tpi_detok_stream_flush(s, &piece, &pl, &err);
        if (rc || at + pl > len || memcmp(full + at, piece, pl)) {
            print_ids(ids, i + 1);
            fail_msg("skip_special %d, id %zu of %zu: %s; streamed text is not a prefix of \"%s\"", skip_special, i,
                     n, rc ? err.msg : "no error", full);
        }
        /* Whole characters only: a piece never ends inside a UTF-8 sequence. */
        if (pl && ((unsigned char)piece[pl - 1] & 0xC0) == 0xC0)
            fail_msg("piece ends in a lead byte");
        memcpy(acc + at, piece, pl);
        at += pl;
    }
    if (at != len) {
        print_ids(ids, n);
        fail_msg("skip_special %d: streamed %zu bytes, decode %zu (\"%s\")", skip_special, at, len, full);
    }
    tpi_detok_stream_free(s);
    free(acc);
    free(full);
}

typedef struct sink {
    char buf[4096];
    size_t len;
} sink;

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    sink *k = user;
    (void)seq;
    assert_true(k->len + len < sizeof k->buf);
    memcpy(k->buf + k->len, text, len);
    k->len += len;
}

/* The first occurrence of needle in hay[from..len) (hay may hold NUL bytes). */
static size_t find_from(const char *hay, size_t len, size_t from, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = from; i + m <= len; i++)
        if (!memcmp(hay + i, needle, m))
            return i;
    fail_msg("stop string \"%s\" not in the text", needle);
    return len;
}

/* The text generation gives for prompt ids[0..np) and output ids[np..n),
 * echoed, with a stop string drawn from the output's text. */
static void gen_text_equals_decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, size_t np, uint64_t *seed)
{
    tpi_error err = {0};
    char *full, stop[8] = "";
    size_t len;
    assert_int_equal(tpi_tokenizer_decode(t, ids, n, 1, &full, &len, &err), 0);
    sink k = {.len = 0};
    const char *stops[1] = {stop};
    tpi_gen_opts o = {.tokenizer = t, .echo_prompt = 1, .on_text = on_text, .user = &k, .stop = stops};
    /* A first start, without stop strings, gives the prompt's text length. */
    tpi_gen_text g = {0};
    assert_int_equal(tpi_gen_text_start(&g, &o, 0, ids, (int64_t)np, &err), 0);
    size_t after_prompt = g.len, want = len;
    tpi_gen_text_free(&g);
    k.len = 0;
    if (len > after_prompt && next_rand(seed) % 2) {
        /* A stop string of 1..4 bytes from the output, whole characters. */
        size_t at = after_prompt + next_rand(seed) % (len - after_prompt), sl = 1 + next_rand(seed) % 4;
        while (at > after_prompt && ((unsigned char)full[at] & 0xC0) == 0x80)
            at--;
        size_t end = at + sl < len ? at + sl : len;
        while (end < len && ((unsigned char)full[end] & 0xC0) == 0x80)
            end++;
        if (end - at < sizeof stop) {
            memcpy(stop, full + at, end - at);
            stop[end - at] = 0;
            o.n_stop = 1;
            want = find_from(full, len, after_prompt, stop);
        }
    }
    assert_int_equal(tpi_gen_text_start(&g, &o, 0, ids, (int64_t)np, &err), 0);
    int hit = 0;
    for (size_t i = np; i < n && !hit; i++) {
        assert_int_equal(tpi_gen_text_push(&g, ids[i], &err), 0);
        hit = tpi_gen_text_emit(&g, &o, 0, 0);
    }
    if (!hit) {
        assert_int_equal(tpi_gen_text_flush(&g, &err), 0);
        tpi_gen_text_emit(&g, &o, 0, 1);
    }
    size_t out_len;
    const char *out = tpi_gen_text_output(&g, &out_len);
    if (out_len != want || memcmp(out, full, want) || k.len != want || memcmp(k.buf, full, want)) {
        print_ids(ids, n);
        fail_msg("prompt %zu ids, stop \"%s\": text \"%s\", streamed \"%.*s\", want \"%.*s\"", np, stop, out,
                 (int)k.len, k.buf, (int)want, full);
    }
    tpi_gen_text_free(&g);
    free(full);
}

/* An id outside the vocabulary is TPI_EINVAL and leaves the stream as it was. */
static void bad_ids(const tpi_tokenizer *t)
{
    tpi_error err = {0};
    tpi_detok_stream *s;
    const char *piece;
    size_t pl;
    int32_t bad[2] = {-1, (int32_t)tpi_tokenizer_vocab_size(t)};
    assert_int_equal(tpi_detok_stream_create(&s, t, 0, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tpi_detok_stream_push(s, bad[i], &piece, &pl, &err), TPI_EINVAL);
        assert_non_null(strstr(err.msg, "not in the vocabulary"));
    }
    assert_int_equal(tpi_detok_stream_flush(s, &piece, &pl, &err), 0);
    assert_int_equal(pl, 0);
    tpi_detok_stream_free(s);
}

static void random_streams(const char *model)
{
    char *models = tu_path(shared, "models");
    char *dir = tu_path(models, model);
    char *json = tu_path(dir, "tokenizer.json");
    FILE *f = fopen(json, "rb");
    free(json);
    free(models);
    if (!f) {
        printf("skipped: %s has no tokenizer.json\n", dir);
        free(dir);
        skip();
    }
    fclose(f);
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    if (tpi_tokenizer_load(&t, dir, &err))
        fail_msg("loading %s: %s", dir, err.msg);
    free(dir);
    int64_t n_vocab = tpi_tokenizer_vocab_size(t); /* added tokens included */
    uint64_t seed = 20240601;
    int32_t ids[MAX_LEN];
    for (int k = 0; k < N_SEQ; k++) {
        size_t n = 1 + next_rand(&seed) % MAX_LEN;
        for (size_t i = 0; i < n; i++) {
            /* Resample the holes a vocabulary may have between ids. */
            do
                ids[i] = (int32_t)(next_rand(&seed) % (uint64_t)n_vocab);
            while (!tpi_tokenizer_piece(t, ids[i]));
        }
        stream_equals_decode(t, ids, n, 0);
        stream_equals_decode(t, ids, n, 1);
        gen_text_equals_decode(t, ids, n, 1 + next_rand(&seed) % n, &seed);
    }
    bad_ids(t);
    tpi_tokenizer_free(t);
}

static void test_llama3(void **state)
{
    (void)state;
    random_streams("llama3-tokenizer");
}

static void test_qwen3(void **state)
{
    (void)state;
    random_streams("qwen3-tokenizer");
}

static void test_gpt2(void **state)
{
    (void)state;
    random_streams("gpt2-tokenizer");
}

static void test_mistral(void **state)
{
    (void)state;
    random_streams("mistral-7b-tokenizer");
}

static void test_stories(void **state)
{
    (void)state;
    random_streams("stories260K-hf");
}

int main(void)
{
    shared = tu_shared_dir();
    if (!shared)
        return TU_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3),  cmocka_unit_test(test_qwen3),   cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_mistral), cmocka_unit_test(test_stories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
