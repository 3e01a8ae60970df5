#ifndef TPI_IO_CONFIG_H
#define TPI_IO_CONFIG_H
/* The architecture as config.json describes it (transformers' LlamaConfig,
 * MistralConfig, Qwen2Config, Qwen3Config field names). */
#include <stdint.h>

#include "tpinfer.h"

typedef enum tpi_arch { TPI_ARCH_LLAMA, TPI_ARCH_MISTRAL, TPI_ARCH_QWEN2, TPI_ARCH_QWEN3 } tpi_arch;
typedef enum tpi_rope_kind { TPI_ROPE_DEFAULT, TPI_ROPE_LINEAR, TPI_ROPE_LLAMA3 } tpi_rope_kind;

#define TPI_MAX_EOS 8

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
    int32_t bos_id;           /* -1: none */
    int32_t eos_ids[TPI_MAX_EOS];
    int n_eos;
    char torch_dtype[16];
} tpi_config;

/* Parses dir/config.json (and dir/generation_config.json for eos ids, when
 * present). Unknown architectures, activations and rope types are errors. */
int tpi_config_load(tpi_config *cfg, const char *dir, tpi_error *err);
/* Window for layer l (0 = full causal). */
int64_t tpi_config_window(const tpi_config *cfg, int64_t layer);
#endif
