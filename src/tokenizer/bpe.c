#include "tokenizer/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

/* Words shorter than this are cached, as tokenizers' MAX_LENGTH = 256. */
#define CACHE_WORD_BYTES 256
/* The cache is emptied when it reaches this many words (tokenizers keeps
 * 10000 and then stops adding; emptying keeps it tracking the current text). */
#define CACHE_WORDS 65536

struct tok_bpe_cache {
    pthread_mutex_t lock;
    tok_strmap index;   /* word -> offset in ids: ids[off] = count, then the ids */
    tok_ids ids;
};

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "BPE: out of memory");
}

static int opt_string(const cJSON *j, const char *key, char **out, size_t *len, const char *what, tpi_error *err)
{
    const char *s = NULL;
    int rc = tpi_json_get_string(j, key, &s, 0, what, err);
    if (rc < 0)
        return rc;
    *out = NULL;
    if (len)
        *len = 0;
    if (!s)
        return 0;
    if (!(*out = strdup(s)))
        return oom(err);
    if (len)
        *len = strlen(s);
    return 0;
}

static int load_merges(tok_bpe *m, const cJSON *merges, const char *what, tpi_error *err)
{
    const cJSON *it;
    int32_t rank = 0;
    tok_buf joined = {0};
    int rc = 0;
    int n = cJSON_GetArraySize(merges);
    if (!(m->merged_of_rank = malloc((size_t)(n > 0 ? n : 1) * sizeof *m->merged_of_rank)))
        return oom(err);
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            /* "a b": tokenizers requires exactly one space. */
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                rc = tpi_err(err, TPI_EFORMAT, "%s: merges[%d] \"%s\" is not two tokens separated by one space",
                             what, rank, s);
                break;
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(sp + 1);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring, la = strlen(a);
            b = cJSON_GetArrayItem(it, 1)->valuestring, lb = strlen(b);
        } else {
            rc = tpi_err(err, TPI_EFORMAT, "%s: merges[%d] must be \"a b\" or [\"a\", \"b\"]", what, rank);
            break;
        }
        int32_t ia = tok_strmap_get(&m->vocab, a, la), ib = tok_strmap_get(&m->vocab, b, lb);
        /* The merged token drops the right part's continuing_subword_prefix. */
        size_t skip = m->prefix_len <= lb ? m->prefix_len : lb;
        joined.len = 0;
        if (tok_buf_add(&joined, a, la) || tok_buf_add(&joined, b + skip, lb - skip)) {
            rc = oom(err);
            break;
        }
        int32_t merged = tok_strmap_get(&m->vocab, joined.p, joined.len);
        if (ia < 0 || ib < 0 || merged < 0) {
            rc = tpi_err(err, TPI_EFORMAT, "%s: merges[%d]: token \"%.*s\" is not in the vocabulary", what, rank,
                         ia < 0 ? (int)la : ib < 0 ? (int)lb : (int)joined.len,
                         ia < 0 ? a : ib < 0 ? b : joined.p);
            break;
        }
        /* A repeated pair keeps its last rank, as tokenizers' HashMap collect. */
        m->merged_of_rank[rank] = merged;
        if (tok_pairmap_put(&m->merges, ia, ib, rank, merged)) {
            rc = oom(err);
            break;
        }
        rank++;
    }
    tok_buf_free(&joined);
    return rc;
}

int tok_bpe_load(tok_bpe *m, const cJSON *model, const char *what, tpi_error *err)
{
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    int rc;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab))
        return tpi_err(err, TPI_EFORMAT, "%s: \"vocab\" must be an object of token -> id", what);
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return tpi_err(err, TPI_EFORMAT, "%s: \"merges\" must be an array", what);
    if ((rc = opt_string(model, "continuing_subword_prefix", &m->prefix, &m->prefix_len, what, err)) ||
        (rc = opt_string(model, "end_of_word_suffix", &m->suffix, &m->suffix_len, what, err)) ||
        (rc = opt_string(model, "unk_token", &m->unk_token, NULL, what, err)))
        return rc;
    if ((rc = tpi_json_get_bool(model, "byte_fallback", &m->byte_fallback, 0, what, err)) < 0 ||
        (rc = tpi_json_get_bool(model, "fuse_unk", &m->fuse_unk, 0, what, err)) < 0 ||
        (rc = tpi_json_get_bool(model, "ignore_merges", &m->ignore_merges, 0, what, err)) < 0)
        return rc;
    double dropout = 0;
    if ((rc = tpi_json_get_double(model, "dropout", &dropout, 0, what, err)) < 0)
        return rc;
    if (dropout > 0)
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: BPE dropout %g is not supported (inference is deterministic)",
                       what, dropout);
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int64_t id;
        if (tpi_json_as_int(it, 0, TOK_ID_LIMIT - 1, &id))
            return tpi_err(err, TPI_EFORMAT, "%s: vocab[\"%s\"] must be an id in [0, 2^24) (tpinfer's limit)", what,
                           it->string);
        if (tok_strmap_put(&m->vocab, it->string, strlen(it->string), (int32_t)id))
            return oom(err);
    }
    if (merges && cJSON_IsArray(merges) && (rc = load_merges(m, merges, what, err)))
        return rc;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = tok_strmap_get(&m->vocab, name, 6);
    }
    if (m->unk_token)
        m->unk_id = tok_strmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
    if (!(m->cache = calloc(1, sizeof *m->cache)))
        return oom(err);
    pthread_mutex_init(&m->cache->lock, NULL);
    return 0;
}

void tok_bpe_clear(tok_bpe *m)
{
    if (!m)
        return;
    tok_strmap_clear(&m->vocab);
    tok_pairmap_clear(&m->merges);
    free(m->unk_token);
    free(m->prefix);
    free(m->suffix);
    free(m->merged_of_rank);
    if (m->cache) {
        pthread_mutex_destroy(&m->cache->lock);
        tok_strmap_clear(&m->cache->index);
        free(m->cache->ids.v);
        free(m->cache);
    }
    memset(m, 0, sizeof *m);
}

/* ---- merging (tokenizers' Word::merge_all) ------------------------------ */

typedef struct symbol {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    size_t len;         /* bytes of the word; 0 once merged into its left */
} symbol;

/* Queue entries are (rank << 32 | pos): one integer compare orders them by
 * lowest rank, then leftmost position, as tokenizers' Merge ordering. A
 * 4-ary heap of 8-byte keys keeps long words (one 1 MB "word") cache-friendly. */
typedef struct heap {
    uint64_t *v;
    size_t n, cap;
} heap;

static void sift_down(uint64_t *v, size_t n, size_t i)
{
    uint64_t x = v[i];
    for (;;) {
        size_t c = 4 * i + 1, best = c;
        if (c >= n)
            break;
        size_t end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (v[k] < v[best])
                best = k;
        if (v[best] >= x)
            break;
        v[i] = v[best];
        i = best;
    }
    v[i] = x;
}

static int heap_push(heap *h, uint64_t key)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        uint64_t *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && key < h->v[(i - 1) / 4]) {
        h->v[i] = h->v[(i - 1) / 4];
        i = (i - 1) / 4;
    }
    h->v[i] = key;
    return 0;
}

static uint64_t heap_pop(heap *h)
{
    uint64_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    if (h->n)
        sift_down(h->v, h->n, 0);
    return top;
}

static uint64_t key_of(int32_t rank, int32_t pos)
{
    return (uint64_t)(uint32_t)rank << 32 | (uint32_t)pos;
}

typedef struct word {
    symbol *s;
    size_t n, cap;
} word;

static int word_add(word *w, int32_t id, size_t len)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        symbol *s = realloc(w->s, cap * sizeof *s);
        if (!s)
            return -1;
        w->s = s;
        w->cap = cap;
    }
    int32_t i = (int32_t)w->n;
    w->s[w->n++] = (symbol){id, i - 1, -1, len};
    if (i > 0)
        w->s[i - 1].next = i;
    return 0;
}

static int merge_all(const tok_bpe *m, word *w)
{
    heap h = {0};
    int32_t rank, merged;
    if (w->n < 2)
        return 0;
    if (!(h.v = malloc(w->n * sizeof *h.v)))
        return -1;
    h.cap = w->n;
    for (size_t i = 0; i + 1 < w->n; i++)
        if (tok_pairmap_get(&m->merges, w->s[i].id, w->s[i + 1].id, &rank, &merged))
            h.v[h.n++] = key_of(rank, (int32_t)i);
    for (size_t i = h.n / 4 + 1; i-- > 0;)
        if (i < h.n)
            sift_down(h.v, h.n, i);
    int rc = 0;
    while (!rc && h.n) {
        uint64_t top = heap_pop(&h);
        int32_t pos = (int32_t)(uint32_t)top, top_rank = (int32_t)(top >> 32);
        symbol *cur = &w->s[pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        symbol *right = &w->s[cur->next];
        /* A stale entry: the pair at pos no longer merges into what it did
         * when queued (tokenizers compares the merged ids). */
        if (!tok_pairmap_get(&m->merges, cur->id, right->id, &rank, &merged) ||
            merged != m->merged_of_rank[top_rank])
            continue;
        cur->id = merged;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0)
            w->s[cur->next].prev = pos;
        if (cur->prev >= 0 && tok_pairmap_get(&m->merges, w->s[cur->prev].id, cur->id, &rank, &merged))
            rc = heap_push(&h, key_of(rank, cur->prev));
        if (!rc && cur->next >= 0 && tok_pairmap_get(&m->merges, cur->id, w->s[cur->next].id, &rank, &merged))
            rc = heap_push(&h, key_of(rank, pos));
    }
    free(h.v);
    return rc;
}

/* tokenizers' BPE::merge_word: characters (with prefix/suffix), byte
 * fallback, then the unknown token, fused when fuse_unk. */
static int split_word(const tok_bpe *m, const char *s, size_t len, word *w, tok_buf *tmp, tpi_error *err)
{
    int32_t unk = -1;
    size_t unk_len = 0;
    for (size_t i = 0; i < len;) {
        size_t k = tok_utf8_next(s + i, len - i, NULL);
        if (!k)
            k = 1;
        const char *c = s + i;
        size_t cl = k;
        if ((i > 0 && m->prefix_len) || (i + k == len && m->suffix_len)) {
            tmp->len = 0;
            if ((i > 0 && tok_buf_add(tmp, m->prefix, m->prefix_len)) || tok_buf_add(tmp, s + i, k) ||
                (i + k == len && tok_buf_add(tmp, m->suffix, m->suffix_len)))
                return oom(err);
            c = tmp->p, cl = tmp->len;
        }
        int32_t id = tok_strmap_get(&m->vocab, c, cl);
        i += k;
        if (id >= 0) {
            if (unk >= 0 && word_add(w, unk, unk_len))
                return oom(err);
            unk = -1;
            if (word_add(w, id, k))
                return oom(err);
            continue;
        }
        if (m->byte_fallback) {
            size_t b = 0;
            while (b < cl && m->byte_ids[(uint8_t)c[b]] >= 0)
                b++;
            if (b == cl) {
                for (b = 0; b < cl; b++)
                    if (word_add(w, m->byte_ids[(uint8_t)c[b]], 1))
                        return oom(err);
                continue;
            }
        }
        if (!m->unk_token)
            continue; /* tokenizers drops the character silently */
        if (m->unk_id < 0)
            return tpi_err(err, TPI_EFORMAT, "BPE: unk_token \"%s\" is not in the vocabulary", m->unk_token);
        if (unk >= 0 && m->fuse_unk)
            unk_len += k;
        else {
            if (unk >= 0 && word_add(w, unk, unk_len))
                return oom(err);
            unk = m->unk_id, unk_len = k;
        }
    }
    if (unk >= 0 && word_add(w, unk, unk_len))
        return oom(err);
    return 0;
}

static int cache_get(const tok_bpe *m, const char *s, size_t len, tok_ids *out)
{
    tok_bpe_cache *c = m->cache;
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    int32_t off = tok_strmap_get(&c->index, s, len);
    if (off >= 0)
        hit = tok_ids_addn(out, c->ids.v + off + 1, (size_t)c->ids.v[off]) ? -1 : 1;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(const tok_bpe *m, const char *s, size_t len, const int32_t *ids, size_t n)
{
    tok_bpe_cache *c = m->cache;
    pthread_mutex_lock(&c->lock);
    if (c->index.n >= CACHE_WORDS || c->ids.n > INT32_MAX / 2) {
        tok_strmap_clear(&c->index);
        c->ids.n = 0;
    }
    size_t off = c->ids.n;
    /* A failed insert only costs a future miss. */
    if (!tok_ids_add(&c->ids, (int32_t)n) && !tok_ids_addn(&c->ids, ids, n)) {
        if (tok_strmap_put(&c->index, s, len, (int32_t)off))
            c->ids.n = off;
    } else
        c->ids.n = off;
    pthread_mutex_unlock(&c->lock);
}

int tok_bpe_encode(const tok_bpe *m, const char *s, size_t len, tok_ids *out, tpi_error *err)
{
    if (len == 0)
        return 0;
    if (m->ignore_merges) {
        int32_t id = tok_strmap_get(&m->vocab, s, len);
        if (id >= 0)
            return tok_ids_add(out, id) ? oom(err) : 0;
    }
    int cacheable = len < CACHE_WORD_BYTES;
    if (cacheable) {
        int hit = cache_get(m, s, len, out);
        if (hit)
            return hit < 0 ? oom(err) : 0;
    }
    word w = {0};
    tok_buf tmp = {0};
    int rc = split_word(m, s, len, &w, &tmp, err);
    if (!rc && merge_all(m, &w))
        rc = oom(err);
    size_t start = out->n;
    for (size_t i = 0; !rc && i < w.n; i++)
        if (w.s[i].len && tok_ids_add(out, w.s[i].id))
            rc = oom(err);
    /* a word of empty pieces adds nothing (out->v may still be NULL) */
    if (!rc && cacheable && out->n > start)
        cache_put(m, s, len, out->v + start, out->n - start);
    free(w.s);
    tok_buf_free(&tmp);
    return rc;
}
