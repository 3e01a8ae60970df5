#ifndef TPI_IO_CONFIG_H
#define TPI_IO_CONFIG_H
/* The architecture as config.json describes it (transformers' LlamaConfig,
 * MistralConfig, Qwen2Config, Qwen3Config field names). */
#include <stdint.h>

#include "tpinfer.h"

typedef enum tpi_arch { TPI_ARCH_LLAMA, TPI_ARCH_MISTRAL, TPI_ARCH_QWEN2, TPI_ARCH_QWEN3 } tpi_arch;
typedef enum tpi_rope_kind { TPI_ROPE_DEFAULT, TPI_ROPE_LINEAR, TPI_ROPE_LLAMA3 } tpi_rope_kind;

#define TPI_MAX_EOS 8

/* Upper limits on config.json's sizes, a few times the largest released
 * models' (Llama 3.1 405B: 126 layers, hidden 16384, 128 heads of 128, ff
 * 53248; vocabularies up to ~256k), so a crafted value fails at once rather
 * than driving a loop or an allocation. Token ids are int32. */
#define TPI_MAX_LAYERS 1024
#define TPI_MAX_HIDDEN ((int64_t)1 << 20)
#define TPI_MAX_HEADS ((int64_t)1 << 16)
#define TPI_MAX_HEAD_DIM ((int64_t)1 << 14)
#define TPI_MAX_FF ((int64_t)1 << 22)
#define TPI_MAX_VOCAB ((int64_t)INT32_MAX)
#define TPI_MAX_POSITIONS ((int64_t)1 << 31)
/* num_attention_heads * head_dim: the width of q, as hidden_size's. */
#define TPI_MAX_ATTN_WIDTH TPI_MAX_HIDDEN

typedef struct tpi_config {
    tpi_arch arch;
    char arch_name[64];
    int64_t hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim, vocab_size;
    int64_t max_position_embeddings;
    double rms_norm_eps, rope_theta;
    tpi_rope_kind rope_kind;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_original_max_pos;
    int tie_word_embeddings;
    int qkv_bias;  /* q/k/v projections have biases (Qwen2 always, Llama attention_bias) */
    int o_bias;    /* o_proj has a bias (Llama attention_bias) */
    int mlp_bias;  /* gate/up/down have biases (Llama mlp_bias) */
    int qk_norm;   /* per-head RMSNorm of q and k before RoPE (Qwen3) */
    int64_t sliding_window;   /* 0: none */
    int64_t max_window_layers; /* Qwen2: layers >= this use the window; else 0 */
    /* q/k rows as llama.cpp writes a Llama GGUF: each head's rotation pairs
     * are adjacent (x[2i], x[2i+1]) instead of transformers' halves */
    int rope_interleaved;
    int32_t bos_id;           /* -1: none */
    int32_t eos_ids[TPI_MAX_EOS];
    int n_eos;
    char torch_dtype[16];
} tpi_config;

/* Parses dir/config.json (and dir/generation_config.json for eos ids, when
 * present). Unknown architectures, activations and rope types are errors, as
 * is a size past the limits above, a product of sizes past them, a token id
 * outside the vocabulary and a non-positive rope or norm constant. */
int tpi_config_load(tpi_config *cfg, const char *dir, tpi_error *err);
struct tpi_gguf;
/* The same from a GGUF file's metadata (io/gguf_config.c): ARCH.* keys for
 * general.architecture llama, qwen2 or qwen3, the vocabulary from
 * token_embd.weight's shape, tie when output.weight is absent, biases when
 * blk.0's bias tensors are present, bos/eos from tokenizer.ggml.*. A missing
 * key is TPI_ECONFIG naming it. */
int tpi_config_from_gguf(tpi_config *cfg, const struct tpi_gguf *g, tpi_error *err);
/* Window for layer l (0 = full causal). */
int64_t tpi_config_window(const tpi_config *cfg, int64_t layer);
#endif
