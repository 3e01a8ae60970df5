/* The merges of a GGUF vocabulary: derived from a SentencePiece vocabulary's
 * scores, or read from tokenizer.ggml.merges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/gguf_vocab.h"

/* Bytes hashed while looking for the splits of every token: a few 1e8 for
 * the largest real vocabularies, so this stops only crafted files (a long
 * token costs its length squared). */
#define SPLIT_WORK_LIMIT ((int64_t)1 << 32)

typedef struct cand {
    double score;       /* the merged token's */
    int32_t left, right;
    uint32_t lchars, rchars;
    int64_t order;      /* token order, then (left id, right id) */
} cand;

typedef struct cands {
    cand *v;
    size_t n, cap;
} cands;

static int oom(const tok_gguf_vocab *v, tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "%s: tokenizer: out of memory", v->path);
}

/* Code points, as Python's len(): every byte that does not continue a sequence. */
static uint32_t chars(const char *s, size_t len)
{
    uint32_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

static int by_pair(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return x->right < y->right ? -1 : x->right > y->right;
}

/* Highest score first, then longer left, then longer right, then order:
 * Python's stable sort with reverse=True on (score, len(left), len(right)). */
static int by_rank(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->lchars != y->lchars)
        return x->lchars > y->lchars ? -1 : 1;
    if (x->rchars != y->rchars)
        return x->rchars > y->rchars ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The splits of token i into two tokens, sorted by (left id, right id). */
static int split_token(const tok_gguf_vocab *v, int64_t i, double score, cands *c, int64_t *work, tpi_error *err)
{
    tpi_gguf_str s = tok_gguf_token(v, i);
    size_t first = c->n;
    uint32_t total = chars(s.s, (size_t)s.len);
    *work += s.len * (total ? (int64_t)total - 1 : 0);
    if (*work > SPLIT_WORK_LIMIT)
        return tpi_err(err, TPI_ELIMIT, "%s: tokenizer.ggml.tokens: too many long tokens to derive merges from "
                                        "(token %lld, %lld bytes)", v->path, (long long)i, (long long)s.len);
    uint32_t lchars = 0;
    for (size_t k = 1; k < (size_t)s.len; k++) {
        if (((uint8_t)s.s[k] & 0xC0) == 0x80)
            continue;
        lchars++;
        int32_t l = tok_strmap_get(&v->ids, s.s, k), r = tok_strmap_get(&v->ids, s.s + k, (size_t)s.len - k);
        if (l < 0 || r < 0)
            continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 4096;
            cand *p = realloc(c->v, cap * sizeof *p);
            if (!p)
                return oom(v, err);
            c->v = p, c->cap = cap;
        }
        c->v[c->n++] = (cand){score, l, r, lchars, total - lchars, 0};
    }
    if (c->n - first > 1)
        qsort(c->v + first, c->n - first, sizeof *c->v, by_pair);
    return 0;
}

static cJSON *pair(const char *a, size_t la, const char *b, size_t lb, tok_buf *tmp)
{
    cJSON *p = cJSON_CreateArray(), *x = NULL, *y = NULL;
    tmp->len = 0;
    if (p && !tok_buf_add(tmp, a, la) && !tok_buf_add(tmp, "", 1) && (x = cJSON_CreateString(tmp->p)) &&
        cJSON_AddItemToArray(p, x)) {
        tmp->len = 0;
        if (!tok_buf_add(tmp, b, lb) && !tok_buf_add(tmp, "", 1) && (y = cJSON_CreateString(tmp->p)) &&
            cJSON_AddItemToArray(p, y))
            return p;
        cJSON_Delete(y);
    } else {
        cJSON_Delete(x);
    }
    cJSON_Delete(p);
    return NULL;
}

static int add_pair(cJSON *merges, const char *a, size_t la, const char *b, size_t lb, tok_buf *tmp)
{
    cJSON *p = pair(a, la, b, lb, tmp);
    if (!p || !cJSON_AddItemToArray(merges, p)) {
        cJSON_Delete(p);
        return -1;
    }
    return 0;
}

int tok_gguf_spm_merges(const tok_gguf_vocab *v, cJSON *merges, tpi_error *err)
{
    cands c = {0};
    tok_buf tmp = {0};
    int64_t work = 0;
    int rc = 0;
    for (int64_t i = 0; i < v->n && !rc; i++) {
        double score = tpi_gguf_arr_f64(v->scores, i);
        if (isnan(score))
            rc = tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.scores[%lld] is NaN", v->path, (long long)i);
        else
            rc = split_token(v, i, score, &c, &work, err);
    }
    for (size_t k = 0; k < c.n; k++)
        c.v[k].order = (int64_t)k;
    if (!rc && c.n > 1)
        qsort(c.v, c.n, sizeof *c.v, by_rank);
    for (size_t k = 0; k < c.n && !rc; k++) {
        tpi_gguf_str l = tok_gguf_token(v, c.v[k].left), r = tok_gguf_token(v, c.v[k].right);
        if (add_pair(merges, l.s, (size_t)l.len, r.s, (size_t)r.len, &tmp))
            rc = oom(v, err);
    }
    free(c.v);
    tok_buf_free(&tmp);
    return rc;
}

/* One "left right" merge: split at the first space after the first byte,
 * as llama.cpp reads them. */
static int bpe_merge(const tok_gguf_vocab *v, int64_t i, tpi_gguf_str m, cJSON *merges, tok_buf *tmp,
                     tpi_error *err)
{
    const char *sp = m.len > 1 ? memchr(m.s + 1, ' ', (size_t)m.len - 1) : NULL;
    if (!sp || memchr(m.s, 0, (size_t)m.len))
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.merges[%lld] \"%.*s\" is not two tokens separated by a "
                       "space", v->path, (long long)i, (int)(m.len > 64 ? 64 : m.len), m.s);
    size_t la = (size_t)(sp - m.s), lb = (size_t)m.len - la - 1;
    tmp->len = 0;
    if (tok_buf_add(tmp, m.s, la) || tok_buf_add(tmp, sp + 1, lb))
        return oom(v, err);
    const char *bad = tok_strmap_get(&v->ids, m.s, la) < 0 ? "left part"
                      : tok_strmap_get(&v->ids, sp + 1, lb) < 0 ? "right part"
                      : tok_strmap_get(&v->ids, tmp->p, la + lb) < 0 ? "merged token" : NULL;
    if (bad)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.merges[%lld] \"%.*s\": its %s is not in "
                       "tokenizer.ggml.tokens", v->path, (long long)i, (int)(m.len > 64 ? 64 : m.len), m.s, bad);
    return add_pair(merges, m.s, la, sp + 1, lb, tmp) ? oom(v, err) : 0;
}

int tok_gguf_bpe_merges(const tok_gguf_vocab *v, cJSON *merges, tpi_error *err)
{
    tpi_gguf_type type;
    int64_t n = 0;
    int rc = tpi_gguf_get_arr(v->g, "tokenizer.ggml.merges", &type, &n, err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.merges is missing (a \"gpt2\" tokenizer needs its "
                       "merges)", v->path);
    if (type != TPI_GGUF_STRING)
        return tpi_err(err, TPI_EFORMAT, "%s: tokenizer.ggml.merges must be an array of strings", v->path);
    if (n >= TOK_ID_LIMIT)
        return tpi_err(err, TPI_ELIMIT, "%s: tokenizer.ggml.merges has %lld entries; at most %d", v->path,
                       (long long)n, TOK_ID_LIMIT - 1);
    const tpi_gguf_kv *kv = tpi_gguf_find(v->g, "tokenizer.ggml.merges");
    tok_buf tmp = {0};
    for (int64_t i = 0; i < n && !rc; i++)
        rc = bpe_merge(v, i, tpi_gguf_arr_str(v->g, kv, i), merges, &tmp, err);
    tok_buf_free(&tmp);
    return rc;
}
