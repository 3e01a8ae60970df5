/* Streaming decode against the full decode on random ids: for each real
 * tokenizer in ../shared/models, 1,000 sequences of 1..24 ids drawn uniformly
 * over the whole vocabulary (added and special tokens included), streamed with
 * skip_special 0 and 1. Invariant (include/tpinfer.h): no push fails, every
 * push ends on a whole character, and the pushes plus the flush equal
 * tpi_tokenizer_decode of all the ids, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    }
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
