/* Next-token choice on rank 0, with the semantics of transformers'
 * generation/logits_process.py: RepetitionPenaltyLogitsProcessor, then
 * TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper and
 * MinPLogitsWarper, then a draw from the softmax. */
#include "generate/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tpi_rng_seed(tpi_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tpi_rng_next(tpi_rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tpi_rng_uniform(tpi_rng *r) { return (double)(tpi_rng_next(r) >> 11) * 0x1.0p-53; }

int tpi_sampling_is_plain_greedy(const tpi_sampling *p)
{
    return p->temperature <= 0 && p->repetition_penalty == 1.0;
}

int tpi_sampler_init(tpi_sampler *s, const tpi_sampling *p, int64_t vocab, tpi_error *err)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (p->temperature < 0 || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repetition_penalty > 0))
        return tpi_err(err, TPI_EINVAL,
                       "sampling: expected temperature >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1 and "
                       "repetition_penalty > 0; found %g, %lld, %g, %g, %g",
                       p->temperature, (long long)p->top_k, p->top_p, p->min_p, p->repetition_penalty);
    tpi_rng_seed(&s->rng, p->seed);
    s->cap = vocab;
    s->work = malloc((size_t)vocab * sizeof *s->work);
    s->idx = malloc((size_t)vocab * sizeof *s->idx);
    s->seen = malloc((size_t)vocab);
    if (!s->work || !s->idx || !s->seen) {
        tpi_sampler_free(s);
        return tpi_err(err, TPI_ENOMEM, "sampling: out of memory for a vocabulary of %lld", (long long)vocab);
    }
    return 0;
}

void tpi_sampler_free(tpi_sampler *s)
{
    free(s->work);
    free(s->idx);
    free(s->seen);
    memset(s, 0, sizeof *s);
}

static const float *g_sort_keys;

/* Descending by value, ties to the lower id (as argmax). */
static int by_value_desc(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = g_sort_keys[i], y = g_sort_keys[j];
    if (x != y)
        return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

/* transformers' RepetitionPenaltyLogitsProcessor on w: each id of the
 * history once, positive logits divided by the penalty, negative multiplied. */
static void penalize(tpi_sampler *s, float *w, int64_t vocab, const int32_t *history, int64_t n_hist)
{
    double pen = s->p.repetition_penalty;
    memset(s->seen, 0, (size_t)vocab);
    for (int64_t i = 0; i < n_hist; i++)
        if (history[i] >= 0 && history[i] < vocab && !s->seen[history[i]]) {
            float *x = &w[history[i]];
            *x = *x < 0 ? (float)(*x * pen) : (float)(*x / pen);
            s->seen[history[i]] = 1;
        }
}

/* TopKLogitsWarper over the n candidates s->idx (sorted): removes scores
 * below the k-th, ties with it stay. Returns the candidates left. */
static int64_t keep_top_k(const tpi_sampler *s, const float *w, int64_t n)
{
    float kth = w[s->idx[s->p.top_k - 1]];
    int64_t k = s->p.top_k;
    while (k < n && w[s->idx[k]] == kth)
        k++;
    return k;
}

/* TopPLogitsWarper over the n sorted candidates (sum: their softmax's
 * denominator at max mx): drops a token when the tokens ranked above it
 * already hold top_p of the mass; the first always stays. */
static int64_t keep_top_p(const tpi_sampler *s, const float *w, int64_t n, double mx, double sum)
{
    double above = 0;
    int64_t k = 0;
    while (k < n && (k == 0 || above < s->p.top_p)) {
        above += exp((double)w[s->idx[k]] - mx) / sum;
        k++;
    }
    return k;
}

/* MinPLogitsWarper: drops p < min_p * p_max, i.e. logit < max + log(min_p);
 * the argmax `best` always stays. Compacts s->idx; returns the count. */
static int64_t keep_min_p(tpi_sampler *s, const float *w, int64_t n, double mx, int32_t best)
{
    double floor_logit = mx + log(s->p.min_p);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if ((double)w[s->idx[i]] >= floor_logit || s->idx[i] == best)
            s->idx[k++] = s->idx[i];
    return k;
}

static double mass(const tpi_sampler *s, const float *w, int64_t n, double mx)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)w[s->idx[i]] - mx);
    return sum;
}

int32_t tpi_sampler_pick(tpi_sampler *s, const float *logits, int64_t vocab, const int32_t *history,
                         int64_t n_hist)
{
    float *w = s->work;
    memcpy(w, logits, (size_t)vocab * sizeof *w);
    if (s->p.repetition_penalty != 1.0)
        penalize(s, w, vocab, history, n_hist);
    int32_t best = 0;
    for (int64_t j = 1; j < vocab; j++)
        if (w[j] > w[best])
            best = (int32_t)j;
    if (s->p.temperature <= 0)
        return best;
    double inv_t = 1.0 / s->p.temperature;
    for (int64_t j = 0; j < vocab; j++)
        w[j] = (float)(w[j] * inv_t);
    double mx = w[best];
    /* Candidates in descending order; only sorted when a filter needs ranks. */
    int64_t n = vocab;
    for (int64_t j = 0; j < vocab; j++)
        s->idx[j] = (int32_t)j;
    if ((s->p.top_k > 0 && s->p.top_k < vocab) || s->p.top_p < 1.0) {
        g_sort_keys = w;
        qsort(s->idx, (size_t)vocab, sizeof *s->idx, by_value_desc);
    }
    if (s->p.top_k > 0 && s->p.top_k < n)
        n = keep_top_k(s, w, n);
    if (s->p.top_p < 1.0)
        n = keep_top_p(s, w, n, mx, mass(s, w, n, mx));
    if (s->p.min_p > 0)
        n = keep_min_p(s, w, n, mx, best);
    /* a draw from the softmax of what is left */
    double u = tpi_rng_uniform(&s->rng) * mass(s, w, n, mx), acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += exp((double)w[s->idx[i]] - mx);
        if (u < acc)
            return s->idx[i];
    }
    return s->idx[n - 1];
}
