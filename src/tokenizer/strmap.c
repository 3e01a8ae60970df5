#include "tokenizer/strmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over 8-byte words, then a 64-bit finaliser (murmur3 fmix64): keys are
 * short token strings, so speed matters more than strength. */
uint64_t tok_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8, len -= 8;
    }
    while (len--)
        h = (h ^ *p++) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static int strmap_grow(tok_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct tok_strslot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct tok_strslot *s = &m->slots[i];
        if (!s->hash)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].hash)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* A slot is used when hash != 0; hashes of 0 are bumped to 1. */
static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = tok_hash(key, len);
    return h ? h : 1;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return -1;
    uint64_t h = key_hash(key, len);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const struct tok_strslot *s = &m->slots[j];
        if (!s->hash)
            return -1;
        if (s->hash == h && s->len == len && !memcmp(m->arena + s->off, key, len))
            return s->val;
    }
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val)
{
    if (len > UINT32_MAX)
        return -1;
    if ((m->n + 1) * 4 > m->cap * 3 && strmap_grow(m))
        return -1;
    uint64_t h = key_hash(key, len);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        struct tok_strslot *s = &m->slots[j];
        if (!s->hash)
            break;
        if (s->hash == h && s->len == len && !memcmp(m->arena + s->off, key, len)) {
            s->val = val;
            return 0;
        }
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len + 1)
            cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = 0;
    m->slots[j] = (struct tok_strslot){h, m->arena_len, (uint32_t)len, val};
    m->arena_len += len + 1;
    m->n++;
    return 0;
}

void tok_strmap_clear(tok_strmap *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static uint64_t pair_key(int32_t l, int32_t r)
{
    /* +1 keeps key 0 free as the empty marker (ids are >= 0). */
    return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
}

static size_t pair_slot(uint64_t key, size_t cap)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 17) & (cap - 1);
}

int tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        struct tok_pairslot *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key)
                continue;
            size_t j = pair_slot(m->slots[i].key, cap);
            while (slots[j].key)
                j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    uint64_t key = pair_key(left, right);
    size_t j = pair_slot(key, m->cap);
    while (m->slots[j].key && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].key)
        m->n++;
    m->slots[j] = (struct tok_pairslot){key, rank, merged};
    return 0;
}

int tok_pairmap_get(const tok_pairmap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged)
{
    if (!m->cap)
        return 0;
    uint64_t key = pair_key(left, right);
    for (size_t j = pair_slot(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
        if (!m->slots[j].key)
            return 0;
        if (m->slots[j].key == key) {
            *rank = m->slots[j].rank;
            *merged = m->slots[j].merged;
            return 1;
        }
    }
}

void tok_pairmap_clear(tok_pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
