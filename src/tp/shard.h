#ifndef TPI_TP_SHARD_H
#define TPI_TP_SHARD_H
/* Which slice of every weight a rank holds (DESIGN.md "Tensor-parallel
 * plan"): the one table of the weights tpinfer reads, and the arithmetic that
 * deals heads, MLP features and vocabulary rows over ranks, in the spirit of
 * distributed-llama's sliceRowMatmul / sliceColMatmul / sliceKvCache. The
 * plan (plan.c) decides which blocks are split; this file says what that
 * means for rank r. */
#include <stdint.h>

#include "io/config.h"
#include "tpinfer.h"

typedef enum tpi_style {
    TPI_STYLE_REPLICATE = 0, /* every rank holds the whole tensor */
    TPI_STYLE_COLWISE,       /* output features split (rows of [out, in]) */
    TPI_STYLE_ROWWISE,       /* input features split, partial sums all-reduced */
} tpi_style;

/* MLP features are dealt in blocks of this many, so every rank's slice but the
 * last starts on an AVX2 register boundary. */
#define TPI_FF_UNIT 8

/* Every weight tpinfer reads, in the order the loader reads them. */
typedef enum tpi_role {
    TPI_W_EMBED,
    TPI_W_ATTN_NORM, TPI_W_FFN_NORM,
    TPI_W_Q, TPI_W_K, TPI_W_V, TPI_W_O,
    TPI_W_GATE, TPI_W_UP, TPI_W_DOWN,
    TPI_W_Q_BIAS, TPI_W_K_BIAS, TPI_W_V_BIAS, TPI_W_O_BIAS,
    TPI_W_GATE_BIAS, TPI_W_UP_BIAS, TPI_W_DOWN_BIAS,
    TPI_W_Q_NORM, TPI_W_K_NORM,
    TPI_W_FINAL_NORM, TPI_W_LM_HEAD,
    TPI_N_ROLES
} tpi_role;

/* Weights split together or not at all. A norm is never split: it holds one
 * value per feature of the replicated residual stream (or of a whole head). */
typedef enum tpi_block { TPI_BLOCK_NORM, TPI_BLOCK_ATTN, TPI_BLOCK_MLP, TPI_BLOCK_EMBED, TPI_BLOCK_LM_HEAD } tpi_block;

/* One dimension of a weight, named by what a rank holds of it. */
typedef enum tpi_axis {
    TPI_AXIS_NONE,     /* the missing second dimension of a vector */
    TPI_AXIS_HIDDEN,   /* hidden_size, never split */
    TPI_AXIS_HEAD_DIM, /* head_dim, never split */
    TPI_AXIS_Q_HEADS,  /* num_attention_heads * head_dim, in whole heads */
    TPI_AXIS_KV_HEADS, /* num_key_value_heads * head_dim, the KV heads the rank's query heads read */
    TPI_AXIS_FF,       /* intermediate_size, in blocks of TPI_FF_UNIT */
    TPI_AXIS_EMBED,    /* vocab_size rows of the embedding */
    TPI_AXIS_VOCAB,    /* vocab_size rows of lm_head (logits columns) */
} tpi_axis;

/* Which config.json field a weight depends on. */
typedef enum tpi_need { TPI_NEED_ALWAYS, TPI_NEED_QKV_BIAS, TPI_NEED_O_BIAS, TPI_NEED_MLP_BIAS, TPI_NEED_QK_NORM } tpi_need;

typedef struct tpi_weight_spec {
    const char *name;       /* transformers' parameter name, "*" for the layer index */
    tpi_block block;
    tpi_role module;        /* whose plan rule governs it: itself, or the weight a bias belongs to */
    const char *plan_style; /* its style in the built-in "auto" plan; NULL: left out of it */
    tpi_axis rows, cols;    /* shape [rows, cols] as transformers writes it; cols NONE for a vector */
    tpi_need need;
} tpi_weight_spec;

/* The table, indexed by tpi_role. */
extern const tpi_weight_spec tpi_weights[TPI_N_ROLES];

/* 1 when `role` is one tensor per decoder layer, 0 when model-wide. */
int tpi_weight_per_layer(tpi_role role);
/* 1 when the model config.json describes has weight `role` (biases and
 * q/k norms depend on the architecture's fields), else 0. */
int tpi_weight_present(const tpi_config *c, tpi_role role);
/* Writes the name of `role` in layer `layer` (ignored for model-wide weights)
 * into buf; truncates to n bytes. */
void tpi_weight_name(char *buf, size_t n, tpi_role role, int64_t layer);

/* Which blocks the plan splits; the others every rank holds whole. */
typedef struct tpi_shard_blocks {
    int attn, mlp;
    int embed;   /* the embedding by token id range */
    int lm_head; /* lm_head by vocabulary (logits gathered) */
    /* MLP features are dealt in units of this many (0: TPI_FF_UNIT): the
     * block of a quantized down_proj, so that each rank's columns of it are
     * whole blocks (the last rank's run may end short) */
    int64_t ff_unit;
} tpi_shard_blocks;

/* What this rank holds of each split dimension: [x0, x0 + n_x). */
typedef struct tpi_shard {
    int64_t q_head0, n_q_heads;
    int64_t kv_head0, n_kv_heads;
    int64_t ff0, n_ff;
    int64_t vocab0, n_vocab;        /* lm_head rows (logits columns) */
    int64_t embed0, n_embed;        /* embedding rows */
    int attn_split, mlp_split;      /* 0: replicated, no all-reduce */
    int vocab_split;                /* lm_head split by vocabulary */
} tpi_shard;

/* Deals `n` elements over `size` ranks in units of `unit` (a head, a block of
 * MLP features), the last unit possibly short: rank `rank` gets the
 * contiguous run [*begin, *begin + *count) and rank sizes differ by at most
 * one unit, the larger ones first. */
void tpi_shard_deal(int64_t n, int64_t unit, int size, int rank, int64_t *begin, int64_t *count);

/* The KV heads that query heads [q_head0, q_head0 + n_q_heads) read, as
 * [*kv_head0, *kv_head0 + *n_kv): with fewer KV heads than ranks, or query
 * groups cut by an uneven split, a KV head is held by every rank that has one
 * of its query heads (vLLM replicates them the same way). */
void tpi_shard_kv_heads(int64_t n_heads, int64_t n_kv_heads, int64_t q_head0, int64_t n_q_heads, int64_t *kv_head0,
                        int64_t *n_kv);

/* Vocabulary rows rank `rank` holds: a range of ids when `split`, else all. */
void tpi_shard_vocab(int64_t vocab_size, int split, int size, int rank, int64_t *begin, int64_t *count);

/* The most ranks the blocks split can use: a split attention block needs
 * whole query heads on every rank, so num_attention_heads. Returns the
 * config.json field that sets it, or NULL (and *max_ranks 0) when nothing
 * split needs a whole unit per rank (an MLP or vocabulary slice may be
 * empty). */
const char *tpi_shard_max_ranks(const tpi_config *c, const tpi_shard_blocks *blocks, int64_t *max_ranks);

/* Fills *sh for rank `rank` of `size`. A split attention block needs whole
 * query heads on every rank: more ranks than num_attention_heads is
 * TPI_ECONFIG. */
int tpi_shard_init(tpi_shard *sh, const tpi_config *c, const tpi_shard_blocks *blocks, int size, int rank,
                   tpi_error *err);

/* One read: rows [row0, row0 + n_rows) and columns [col0, col0 + n_cols) of
 * the tensor `name`, whose whole shape is [rows, cols] (a vector: n_dims 1,
 * cols and n_cols 1, col0 0). */
typedef struct tpi_slice {
    char name[160];
    int n_dims;
    int64_t rows, cols;
    int64_t row0, n_rows;
    int64_t col0, n_cols;
} tpi_slice;

/* The slice of weight `role` in layer `layer` this rank reads. Returns 0 when
 * the model has no such weight (a bias config.json does not ask for), else 1.
 * A tied lm_head reads the embedding's tensor. */
int tpi_shard_slice(const tpi_shard *sh, const tpi_config *c, tpi_role role, int64_t layer, tpi_slice *out);
#endif
