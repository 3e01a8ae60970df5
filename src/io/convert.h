#ifndef TPI_IO_CONVERT_H
#define TPI_IO_CONVERT_H
/* tpi_convert's parts (tpinfer.h): the metadata of the model and of its
 * tokenizer, and the tensors, each adding to one GGUF writer. Key names and
 * meanings are llama.cpp's (gguf-py constants.py, docs/gguf.md "Standardized
 * key-value pairs"). */
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/gguf_write.h"

/* general.* and ARCH.* hyperparameters (and rope_freqs.weight for
 * rope_scaling "llama3", declared here, its data written by the tensors). */
int tpi_convert_meta(tpi_gguf_writer *w, const tpi_config *cfg, const char *gguf_arch, tpi_dtype type,
                     const char *model_dir, tpi_error *err);

/* tokenizer.* from model_dir's tokenizer.json and tokenizer_config.json;
 * `kind` receives "llama" or "gpt2 (PRE)". */
int tpi_convert_vocab(tpi_gguf_writer *w, const tpi_config *cfg, const char *model_dir, char *kind,
                      size_t kind_len, tpi_error *err);

/* The tensors to write, in file order, with their types. */
typedef struct tpi_cv_tensor {
    char gguf_name[96];
    const tpi_st_tensor *src;  /* NULL for a generated tensor (rope_freqs) */
    const float *gen;          /* its values when generated */
    tpi_dtype type;
    int64_t rows, cols;        /* as written: ne = {cols, rows}, 1-D when rows == 0 */
    int64_t permute_heads;     /* > 0: rows permuted for adjacent-pair rotation over this many heads */
} tpi_cv_tensor;

typedef struct tpi_cv_plan {
    tpi_cv_tensor *t;
    int64_t n;
    float *rope_freqs;         /* owned */
    int64_t n_rope_freqs;
    int n_fallback;
    char fallback[512];
} tpi_cv_plan;

/* Maps every checkpoint tensor to its GGUF name and type and declares them
 * on w; an unknown tensor name or a matrix no block of `type` fits is an
 * error naming it. */
int tpi_cv_plan_make(tpi_cv_plan *p, const tpi_ckpt *ck, const tpi_config *cfg, tpi_dtype type,
                     tpi_gguf_writer *w, tpi_error *err);
/* Streams the tensors' bytes (after tpi_gguf_w_begin). */
int tpi_cv_plan_write(const tpi_cv_plan *p, tpi_gguf_writer *w, tpi_error *err);
void tpi_cv_plan_free(tpi_cv_plan *p);
#endif
