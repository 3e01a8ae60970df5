#ifndef TPI_GENERATE_SAMPLER_H
#define TPI_GENERATE_SAMPLER_H
/* Choosing the next token from one row of logits (rank 0 only). */
#include <stdint.h>

#include "tpinfer.h"

/* xoshiro256** seeded through splitmix64: the same seed gives the same stream
 * on every machine. */
typedef struct tpi_rng {
    uint64_t s[4];
} tpi_rng;

void tpi_rng_seed(tpi_rng *r, uint64_t seed);
uint64_t tpi_rng_next(tpi_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double tpi_rng_uniform(tpi_rng *r);

/* Scratch for the sampler; sized for a vocabulary on first use. */
typedef struct tpi_sampler {
    tpi_sampling p;
    tpi_rng rng;
    int64_t cap;
    float *work;    /* [vocab] */
    int32_t *idx;   /* [vocab] */
    uint8_t *seen;  /* [vocab] for the repetition penalty */
} tpi_sampler;

int tpi_sampler_init(tpi_sampler *s, const tpi_sampling *p, int64_t vocab, tpi_error *err);
void tpi_sampler_free(tpi_sampler *s);
/* Picks the next id from logits [vocab]; `history` (n_hist ids: prompt and
 * output so far) feeds the repetition penalty. logits are not modified. */
int32_t tpi_sampler_pick(tpi_sampler *s, const float *logits, int64_t vocab, const int32_t *history,
                         int64_t n_hist);
/* 1 when the sampler's choice is always the argmax of the raw logits, so the
 * model may return the argmax without gathering the logits. */
int tpi_sampling_is_plain_greedy(const tpi_sampling *p);
#endif
