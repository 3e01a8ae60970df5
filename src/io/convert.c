/* tpi_convert: an HF checkpoint to one GGUF file with llama.cpp's metadata. */
#include "io/convert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

/* The type names --type takes, in tpi_dtype order of nothing in particular. */
static const struct {
    const char *name;
    tpi_dtype t;
    uint32_t file_type; /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
} types[] = {
    {"f32", TPI_F32, 0},   {"f16", TPI_F16, 1},   {"bf16", TPI_BF16, 32}, {"q8_0", TPI_Q8_0, 7},
    {"q4_0", TPI_Q4_0, 2}, {"q4_k", TPI_Q4_K, 14}, /* MOSTLY_Q4_K_S: every matrix Q4_K */
    {"q6_k", TPI_Q6_K, 18},
};

static int parse_type(const char *s, tpi_dtype *t, uint32_t *file_type)
{
    for (size_t i = 0; s && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) {
            *t = types[i].t;
            *file_type = types[i].file_type;
            return 0;
        }
    return -1;
}

/* Hyperparameters fit llama.cpp's u32 keys: config.c bounds them far below. */
static void arch_keys(tpi_gguf_writer *w, const tpi_config *c, const char *a)
{
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    tpi_gguf_w_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
    tpi_gguf_w_u32(w, KEY("context_length"), (uint32_t)c->max_position_embeddings);
    tpi_gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->hidden_size);
    tpi_gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    tpi_gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)c->intermediate_size);
    tpi_gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    tpi_gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    tpi_gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
    tpi_gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
    tpi_gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
    tpi_gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
    tpi_gguf_w_f32(w, KEY("rope.freq_base"), (float)c->rope_theta);
    if (c->sliding_window) /* Mistral's; llama.cpp's llama ignores it, tpinfer's loader reads it */
        tpi_gguf_w_u32(w, KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
    if (c->rope_kind == TPI_ROPE_LINEAR) {
        tpi_gguf_w_str(w, KEY("rope.scaling.type"), "linear");
        tpi_gguf_w_f32(w, KEY("rope.scaling.factor"), (float)c->rope_factor);
    }
#undef KEY
}

int tpi_convert_meta(tpi_gguf_writer *w, const tpi_config *cfg, const char *gguf_arch, tpi_dtype type,
                     const char *model_dir, tpi_error *err)
{
    (void)err;
    uint32_t file_type = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].t == type)
            file_type = types[i].file_type;
    const char *name = strrchr(model_dir, '/');
    name = name && name[1] ? name + 1 : model_dir;
    tpi_gguf_w_str(w, "general.architecture", gguf_arch);
    tpi_gguf_w_str(w, "general.name", name);
    tpi_gguf_w_u32(w, "general.file_type", file_type);
    tpi_gguf_w_u32(w, "general.quantization_version", 2); /* ggml's QK block layouts */
    arch_keys(w, cfg, gguf_arch);
    return 0;
}

static int convert(const tpi_convert_opts *o, tpi_convert_info *info, tpi_gguf_writer *w, tpi_error *err)
{
    tpi_dtype type;
    uint32_t file_type;
    if (parse_type(o->type, &type, &file_type))
        return tpi_err(err, TPI_EINVAL, "--type \"%s\": expected f32, f16, bf16, q8_0, q4_0, q4_k or q6_k",
                       o->type ? o->type : "");
    tpi_config cfg;
    int rc = tpi_config_load(&cfg, o->model_dir, err);
    if (rc)
        return rc;
    /* Mistral is a Llama to llama.cpp (its sliding window is not in the file) */
    const char *arch = cfg.arch == TPI_ARCH_QWEN2 ? "qwen2" : cfg.arch == TPI_ARCH_QWEN3 ? "qwen3" : "llama";
    if ((rc = tpi_convert_meta(w, &cfg, arch, type, o->model_dir, err)) ||
        (rc = tpi_convert_vocab(w, &cfg, o->model_dir, info->tokenizer, sizeof info->tokenizer, err)))
        return rc;
    tpi_ckpt *ck = NULL;
    tpi_cv_plan plan = {0};
    if (!(rc = tpi_ckpt_open(&ck, o->model_dir, err)) && !(rc = tpi_cv_plan_make(&plan, ck, &cfg, type, w, err)) &&
        !(rc = tpi_gguf_w_begin(w, o->out_path, err)) && !(rc = tpi_cv_plan_write(&plan, w, err)))
        rc = tpi_gguf_w_finish(w, err);
    info->n_tensors = plan.n;
    info->n_fallback = plan.n_fallback;
    memcpy(info->fallback, plan.fallback, sizeof info->fallback);
    tpi_cv_plan_free(&plan);
    tpi_ckpt_free(ck);
    return rc;
}

int tpi_convert(const tpi_convert_opts *opts, tpi_convert_info *info, tpi_error *err)
{
    tpi_convert_info scratch;
    info = info ? info : &scratch;
    memset(info, 0, sizeof *info);
    if (!opts || !opts->model_dir || !opts->out_path)
        return tpi_err(err, TPI_EINVAL, "the model directory and the output path are required");
    tpi_gguf_writer *w;
    int rc = tpi_gguf_writer_create(&w, err);
    if (!rc)
        rc = convert(opts, info, w, err);
    tpi_gguf_writer_free(w);
    struct stat st;
    if (!rc && !stat(opts->out_path, &st))
        info->bytes = (uint64_t)st.st_size;
    return rc;
}
