#ifndef TPI_TOKENIZER_POSTPROCESS_H
#define TPI_TOKENIZER_POSTPROCESS_H
/* tokenizer.json "post_processor" for single sequences, reduced to the ids
 * put before and after the text: TemplateProcessing, BertProcessing,
 * RobertaProcessing, ByteLevel (no ids), Sequence. */
#include <cjson/cJSON.h>

#include "tokenizer/pieces.h"
#include "tpinfer.h"

typedef struct tok_post {
    tok_ids prefix, suffix;
} tok_post;

int tok_post_load(tok_post *p, const cJSON *j, const char *what, tpi_error *err);
void tok_post_clear(tok_post *p);
#endif
