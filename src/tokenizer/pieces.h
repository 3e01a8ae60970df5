#ifndef TPI_TOKENIZER_PIECES_H
#define TPI_TOKENIZER_PIECES_H
/* Growable buffers the pipeline passes between its stages: bytes, lists of
 * text pieces (each maybe already a token), and id lists. All return 0, or
 * -1 when out of memory. */
#include <stddef.h>
#include <stdint.h>

/* Token ids are below 2^24: tables indexed by id are allocated whole, and
 * the largest real vocabularies hold about 2^18 tokens, so a sparse id like
 * 2e9 is refused rather than turned into a 16 GB table. */
#define TOK_ID_LIMIT (1 << 24)

typedef struct tok_buf {
    char *p;
    size_t len, cap;
} tok_buf;

int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_add(tok_buf *b, const void *data, size_t n);
void tok_buf_free(tok_buf *b);

/* A piece of pieces.text: id >= 0 when it is already a token (an added token);
 * first when it starts at offset 0 of the original input (Metaspace "first"). */
typedef struct tok_span {
    size_t off, len;
    int32_t id;
    int first;
} tok_span;

typedef struct tok_pieces {
    tok_buf text;
    tok_span *v;
    size_t n, cap;
} tok_pieces;

/* Appends a copy of s (which must not point into p->text). */
int tok_pieces_add(tok_pieces *p, const char *s, size_t len, int32_t id, int first);
/* Appends a span of bytes already in p->text. */
int tok_pieces_span(tok_pieces *p, size_t off, size_t len, int32_t id, int first);
/* Pieces that are all empty leave text.p NULL, and NULL + 0 is undefined in C. */
static inline const char *tok_piece_text(const tok_pieces *p, size_t i)
{
    return p->text.p ? p->text.p + p->v[i].off : "";
}
void tok_pieces_reset(tok_pieces *p);
void tok_pieces_free(tok_pieces *p);

typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;

int tok_ids_add(tok_ids *ids, int32_t id);
int tok_ids_addn(tok_ids *ids, const int32_t *v, size_t n);
#endif
