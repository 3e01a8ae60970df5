#ifndef TPI_TOKENIZER_STRMAP_H
#define TPI_TOKENIZER_STRMAP_H
/* Open-addressing hash maps for the vocabulary (bytes -> id) and the merges
 * ((left id, right id) -> rank, merged id). Keys are copied into an arena. */
#include <stddef.h>
#include <stdint.h>

typedef struct tok_strmap {
    struct tok_strslot { uint64_t hash; size_t off; uint32_t len; int32_t val; } *slots;
    size_t cap, n;     /* cap: power of two */
    char *arena;
    size_t arena_len, arena_cap;
} tok_strmap;

uint64_t tok_hash(const void *data, size_t len);
/* Inserts or overwrites; returns 0, or -1 when out of memory. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val);
/* The value, or -1 when absent. */
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);
void tok_strmap_clear(tok_strmap *m);   /* frees everything, reusable after */

typedef struct tok_pairmap {
    struct tok_pairslot { uint64_t key; int32_t rank, merged; } *slots; /* key 0: empty */
    size_t cap, n;
} tok_pairmap;

int tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* 1 and the rank/merged id when (left, right) merges, else 0. */
int tok_pairmap_get(const tok_pairmap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged);
void tok_pairmap_clear(tok_pairmap *m);
#endif
