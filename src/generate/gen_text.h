#ifndef TPI_GENERATE_GEN_TEXT_H
#define TPI_GENERATE_GEN_TEXT_H
/* Rank 0's text of one generated sequence: the detokenizer stream, the text
 * so far, how much of it went to on_text, and the search for stop strings
 * (generate.c). */
#include <stddef.h>
#include <stdint.h>

#include "tpinfer.h"

typedef struct tpi_gen_text {
    tpi_detok_stream *ds;
    char *buf;      /* NUL-terminated once started */
    size_t len, cap;
    size_t base;    /* text before base is the prompt's, not output */
    size_t emitted; /* text before emitted went to on_text */
} tpi_gen_text;

/* Starts the text of sequence `seq` (t zeroed by the caller): a stream of
 * o->tokenizer primed with the n prompt ids, since a SentencePiece decoder,
 * for one, drops the leading space of the first token only. With
 * o->echo_prompt the prompt's text counts as output and goes to on_text now. */
int tpi_gen_text_start(tpi_gen_text *t, const tpi_gen_opts *o, int64_t seq, const int32_t *prompt, int64_t n,
                       tpi_error *err);
/* Appends the text of token id (nothing while a character is incomplete). */
int tpi_gen_text_push(tpi_gen_text *t, int32_t id, tpi_error *err);
/* Appends what the stream still holds back, at the end of the sequence. */
int tpi_gen_text_flush(tpi_gen_text *t, tpi_error *err);
/* Looks for a stop string in the output not yet emitted; returns 1 and cuts
 * the text there when found. Else sends to on_text what can no longer be the
 * start of a stop string (all of it when `final`) and returns 0. */
int tpi_gen_text_emit(tpi_gen_text *t, const tpi_gen_opts *o, int64_t seq, int final);
/* The output text (after base): its bytes and length, owned by t. */
const char *tpi_gen_text_output(const tpi_gen_text *t, size_t *len);
void tpi_gen_text_free(tpi_gen_text *t);
#endif
