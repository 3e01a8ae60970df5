#include "tokenizer/added_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

static int new_node(tok_added *a, uint8_t byte)
{
    if (a->n_nodes == a->cap_nodes) {
        size_t cap = a->cap_nodes ? a->cap_nodes * 2 : 256;
        tok_trie_node *v = realloc(a->nodes, cap * sizeof *v);
        if (!v)
            return -1;
        a->nodes = v;
        a->cap_nodes = cap;
    }
    a->nodes[a->n_nodes] = (tok_trie_node){-1, -1, -1, byte};
    return (int)a->n_nodes++;
}

static int trie_insert(tok_added *a, int root, size_t token)
{
    const tok_added_token *t = &a->v[token];
    int32_t node = root;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t b = (uint8_t)t->content[i];
        int32_t c = a->nodes[node].child;
        while (c >= 0 && a->nodes[c].byte != b)
            c = a->nodes[c].sibling;
        if (c < 0) {
            int k = new_node(a, b);
            if (k < 0)
                return -1;
            a->nodes[k].sibling = a->nodes[node].child;
            a->nodes[node].child = k;
            c = k;
        }
        node = c;
    }
    /* A later duplicate of the same content wins, as in tokenizers' map. */
    a->nodes[node].token = (int32_t)token;
    return 0;
}

int tok_added_load(tok_added *a, const cJSON *list, const char *what, tpi_error *err)
{
    memset(a, 0, sizeof *a);
    if (new_node(a, 0) < 0 || new_node(a, 0) < 0)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", what);
    if (!list || cJSON_IsNull(list))
        return 0;
    if (!cJSON_IsArray(list))
        return tpi_err(err, TPI_EFORMAT, "%s: must be an array", what);
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (!(a->v = calloc(n ? n : 1, sizeof *a->v)))
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", what);
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s[%zu]", what, a->n);
        tok_added_token *t = &a->v[a->n];
        const char *content = NULL;
        int64_t id;
        int rc = tpi_json_get_string(it, "content", &content, 1, sub, err);
        if (!rc)
            rc = tpi_json_get_int(it, "id", &id, 1, sub, err);
        if (rc)
            return rc;
        if (id < 0 || id >= TOK_ID_LIMIT)
            return tpi_err(err, TPI_EFORMAT, "%s: id %lld is outside [0, 2^24) (tpinfer's limit)", sub, (long long)id);
        if (!*content)
            return tpi_err(err, TPI_EFORMAT, "%s: empty \"content\"", sub);
        if (!tok_utf8_valid(content, strlen(content)))
            return tpi_err(err, TPI_EFORMAT, "%s: \"content\" is not valid UTF-8", sub);
        t->id = (int32_t)id;
        const struct { const char *key; int *out; } flags[] = {
            {"special", &t->special}, {"lstrip", &t->lstrip}, {"rstrip", &t->rstrip},
            {"normalized", &t->normalized}, {"single_word", &t->single_word},
        };
        /* tokenizers' AddedToken default: normalized = !special. */
        for (size_t k = 0; k < 5; k++)
            if ((rc = tpi_json_get_bool(it, flags[k].key, flags[k].out, 0, sub, err)) < 0)
                return rc;
        if (!cJSON_GetObjectItemCaseSensitive(it, "normalized"))
            t->normalized = !t->special;
        if (!(t->content = strdup(content)))
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", sub);
        t->len = strlen(content);
        a->n++;
        if (trie_insert(a, t->normalized ? 1 : 0, a->n - 1))
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", sub);
    }
    return 0;
}

void tok_added_clear(tok_added *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].content);
    free(a->v);
    free(a->nodes);
    memset(a, 0, sizeof *a);
}

const tok_added_token *tok_added_find(const tok_added *a, int32_t id)
{
    for (size_t i = a->n; i-- > 0;)
        if (a->v[i].id == id)
            return &a->v[i];
    return NULL;
}

/* Longest token of the trie at s, or -1. */
static int32_t longest_at(const tok_added *a, int root, const char *s, size_t len, size_t *match_len)
{
    int32_t node = root, best = -1;
    for (size_t i = 0; i < len; i++) {
        int32_t c = a->nodes[node].child;
        while (c >= 0 && a->nodes[c].byte != (uint8_t)s[i])
            c = a->nodes[c].sibling;
        if (c < 0)
            break;
        node = c;
        if (a->nodes[node].token >= 0) {
            best = a->nodes[node].token;
            *match_len = i + 1;
        }
    }
    return best;
}

static int is_word_char(uint32_t cp)
{
    if (cp == '_')
        return 1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Start of the character that ends at s[end]. */
static size_t char_before(const char *s, size_t lo, size_t end)
{
    size_t st = end - 1;
    while (st > lo && ((uint8_t)s[st] & 0xC0) == 0x80)
        st--;
    return st;
}

int tok_added_split(const tok_added *a, int normalized, const char *s, size_t len, int first, tok_pieces *out)
{
    int root = normalized ? 1 : 0;
    size_t done = 0; /* end of the last emitted piece */
    if (a->nodes[root].child < 0)
        return len ? tok_pieces_add(out, s, len, -1, first) : 0;
    for (size_t i = 0; i < len;) {
        size_t mlen = 0;
        int32_t t = longest_at(a, root, s + i, len - i, &mlen);
        if (t < 0) {
            i++;
            continue;
        }
        const tok_added_token *tok = &a->v[t];
        size_t start = i, stop = i + mlen;
        uint32_t cp;
        if (tok->single_word) {
            int word_before = 0, word_after = 0;
            if (start > 0) {
                size_t st = char_before(s, 0, start);
                word_before = tok_utf8_next(s + st, start - st, &cp) && is_word_char(cp);
            }
            if (stop < len)
                word_after = tok_utf8_next(s + stop, len - stop, &cp) && is_word_char(cp);
            if (word_before || word_after) {
                i = stop;
                continue;
            }
        }
        if (tok->lstrip)
            while (start > done) {
                size_t st = char_before(s, done, start);
                if (!tok_utf8_next(s + st, start - st, &cp) || !tok_is_space(cp))
                    break;
                start = st;
            }
        if (tok->rstrip)
            while (stop < len) {
                size_t k = tok_utf8_next(s + stop, len - stop, &cp);
                if (!k || !tok_is_space(cp))
                    break;
                stop += k;
            }
        if (start > done && tok_pieces_add(out, s + done, start - done, -1, first && done == 0))
            return -1;
        if (tok_pieces_add(out, s + start, stop - start, tok->id, first && start == 0))
            return -1;
        done = i = stop;
    }
    if (len > done && tok_pieces_add(out, s + done, len - done, -1, first && done == 0))
        return -1;
    return 0;
}
