#ifndef TPI_MODEL_MODEL_H
#define TPI_MODEL_MODEL_H
/* The model as one rank holds it: its slices of every weight, the sizes of
 * those slices, and what the forward pass needs (DESIGN.md "Tensor-parallel
 * plan"). Structs named as in llama2.c's run.c. */
#include "backend/backend.h"
#include "comm/comm.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "tp/plan.h"
#include "tp/shard.h"

typedef struct tpi_layer_weights {
    float *attn_norm, *ffn_norm;  /* [hidden] */
    float *q_norm, *k_norm;       /* [head_dim], Qwen3 only */
    tpi_weight wq, wk, wv;        /* [local heads * head_dim, hidden] */
    tpi_weight wo;                /* [hidden, local q heads * head_dim] */
    tpi_weight wg, wu;            /* [local ff, hidden] */
    tpi_weight wd;                /* [hidden, local ff] */
    float *bq, *bk, *bv;          /* local slices, or NULL */
    float *bo, *bg, *bu, *bd;     /* bo/bd whole (added after the all-reduce) */
} tpi_layer_weights;

struct tpi_model {
    tpi_config cfg;
    tpi_comm *comm;
    int own_comm;
    tpi_ckpt *ckpt;
    tpi_plan *plan;
    const tpi_backend *be;
    tpi_shard sh;
    tpi_weight embed;      /* [n_embed, hidden] */
    tpi_weight lm_head;    /* [n_vocab, hidden]; its data may alias embed's (tied) */
    float *final_norm;
    tpi_layer_weights *layers;
    double *inv_freq;      /* [head_dim / 2] */
    int64_t weight_bytes;
    int64_t mapped_bytes;  /* of weight_bytes, those read in place from the file mapping */
    int quant;             /* tpi_load_opts.quant: -1 none, else the tpi_dtype to quantize to */
    struct tpi_run_state *state; /* activations kept between forwards (forward.c) */
    int64_t prefill_chunk;       /* tokens per pass of a forward (forward.c); tpi_load_opts sets it */
    int n_threads;               /* kernel threads of this rank */
    int check_weights;           /* tpi_load_opts: scan each slice for NaN and infinity as it loads (load.c) */
    int64_t mem_limit;           /* tpi_load_opts.mem_limit_bytes (core/meminfo.h) */
};

/* Every rank learns whether any failed (rc != 0), and the lowest failing
 * rank's error (code and message) becomes every rank's. Collective. */
int tpi_model_agree_error(tpi_comm *c, int rc, tpi_error *err);
/* Admits `bytes` of `what` on this rank (core/meminfo.h), collectively: a
 * refusal on any rank is every rank's TPI_ENOMEM, naming that rank and both
 * figures. On success the caller owns the reservation (tpi_mem_release). */
int tpi_model_admit(const tpi_model *m, int64_t bytes, const char *what, tpi_error *err);

/* Bytes a forward of n_tok tokens per chunk, giving `rows` rows of logits,
 * allocates on this rank (forward.c), for admission. Sizes are bounded by
 * the config's limits, so the products fit in int64_t for any n_tok and
 * rows up to 2^31. */
int64_t tpi_model_activation_bytes(const tpi_model *m, int64_t n_tok, int64_t rows);

/* Loads this rank's weights per the plan (load.c). */
int tpi_model_load_weights(tpi_model *m, tpi_error *err);
void tpi_weight_release(tpi_weight *w);
void tpi_run_state_free(struct tpi_run_state *s);
/* The vocabulary range rank r holds of the lm_head. */
void tpi_model_vocab_range(const tpi_model *m, int rank, int64_t *begin, int64_t *count);
#endif
