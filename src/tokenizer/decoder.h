#ifndef TPI_TOKENIZER_DECODER_H
#define TPI_TOKENIZER_DECODER_H
/* tokenizer.json "decoder": Sequence, ByteLevel, Metaspace, ByteFallback,
 * Fuse, Strip, Replace. Each maps a list of token strings to a list of
 * strings (tokenizers' decode_chain); decoding joins the last list. */
#include <cjson/cJSON.h>

#include "tokenizer/pieces.h"
#include "tokenizer/regex.h"
#include "tpinfer.h"

enum tok_dec_type { DEC_SEQUENCE, DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE };

typedef struct tok_decoder {
    enum tok_dec_type type;
    pcre2_code *re;          /* Replace pattern */
    char *text;              /* Replace content; Strip/Metaspace character (UTF-8) */
    size_t text_len;
    uint32_t cp;             /* Strip content / Metaspace replacement */
    int64_t start, stop;     /* Strip */
    int prepend;             /* Metaspace: prepend_scheme != never */
    struct tok_decoder *seq;
    size_t n_seq;
} tok_decoder;

int tok_decoder_load(tok_decoder *d, const cJSON *j, const char *what, tpi_error *err);
/* Runs d on the strings of `in`, writing the result list into out (reset first). */
int tok_decode_chain(const tok_decoder *d, const tok_pieces *in, tok_pieces *out, tpi_error *err);
void tok_decoder_clear(tok_decoder *d);
#endif
