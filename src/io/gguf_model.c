/* A GGUF model seen as a checkpoint: its tensors under transformers' names,
 * shapes in transformers' order ([rows, cols], ggml's ne reversed), bytes in
 * the GGUF mapping, so that the loader (model/load.c) has one path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/checkpoint.h"

/* llama.cpp's tensor names (gguf-py tensor_mapping.py) and transformers'. */
static const struct { const char *gguf, *hf; } layer_names[] = {
    {"attn_norm", "input_layernorm"},     {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},       {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},       {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},  {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},        {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

static const struct { const char *gguf, *hf; } model_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

void tpi_gguf_hf_name(char *buf, size_t n, const char *name)
{
    for (size_t i = 0; i < sizeof model_names / sizeof model_names[0]; i++)
        if (!strcmp(name, model_names[i].gguf)) {
            snprintf(buf, n, "%s", model_names[i].hf);
            return;
        }
    unsigned layer;
    int at = 0;
    snprintf(buf, n, "%s", name);
    if (sscanf(name, "blk.%u.%n", &layer, &at) != 1 || !at)
        return;
    const char *rest = name + at, *dot = strchr(rest, '.');
    if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias")))
        return;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (strlen(layer_names[i].gguf) == (size_t)(dot - rest) && !strncmp(rest, layer_names[i].gguf,
                                                                             (size_t)(dot - rest))) {
            snprintf(buf, n, "model.layers.%u.%s%s", layer, layer_names[i].hf, dot);
            return;
        }
}

static int present(tpi_st_tensor *t, const tpi_gguf_tensor *g)
{
    char name[256];
    tpi_gguf_hf_name(name, sizeof name, g->name);
    if (!(t->name = strdup(name)))
        return -1;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", tpi_gguf_type_name(g->ggml_type));
    t->dtype_ok = g->type_ok;
    t->dtype = g->dtype;
    t->n_dims = g->n_dims;
    for (int i = 0; i < g->n_dims; i++)
        t->shape[i] = g->ne[g->n_dims - 1 - i];
    t->numel = g->numel;
    t->bytes = g->bytes;
    t->data = g->data;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(tpi_st_tensor *const *)a)->name, (*(tpi_st_tensor *const *)b)->name);
}

/* files[0]: the GGUF's tensors renamed, sorted for tpi_st_find. Two GGUF
 * names that map to one transformers name are refused. */
static int list_tensors(tpi_ckpt *c, tpi_st_file *f, tpi_error *err)
{
    const tpi_gguf *g = c->gguf;
    f->tensors = calloc((size_t)g->n_tensors + 1, sizeof *f->tensors);
    f->by_name = calloc((size_t)g->n_tensors + 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", g->paths[0]);
    for (int64_t i = 0; i < g->n_tensors; i++, f->n_tensors++) {
        if (present(&f->tensors[i], &g->tensors[i]))
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", g->paths[0]);
        f->by_name[i] = &f->tensors[i];
    }
    qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name);
    for (int64_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->by_name[i - 1]->name, f->by_name[i]->name))
            return tpi_err(err, TPI_EFORMAT, "%s: two tensors are both \"%s\" once renamed", g->paths[0],
                           f->by_name[i]->name);
    return 0;
}

int tpi_ckpt_open_gguf(tpi_ckpt *c, const char *path, tpi_error *err)
{
    int rc = tpi_gguf_open(&c->gguf, path, err);
    if (rc)
        return rc;
    tpi_st_file *f = calloc(1, sizeof *f);
    c->files = calloc(1, sizeof *c->files);
    if (!f || !c->files || !(f->path = strdup(path))) {
        free(f);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    c->files[0] = f;
    c->n_files = 1;
    for (int i = 0; i < c->gguf->n_files; i++)
        c->file_bytes += c->gguf->map_bytes[i];
    return list_tensors(c, f, err);
}

void tpi_gguf_name_of(char *buf, size_t n, const char *hf_name)
{
    for (size_t i = 0; i < sizeof model_names / sizeof model_names[0]; i++)
        if (!strcmp(hf_name, model_names[i].hf)) {
            snprintf(buf, n, "%s", model_names[i].gguf);
            return;
        }
    unsigned layer;
    int at = 0;
    snprintf(buf, n, "%s", hf_name);
    if (sscanf(hf_name, "model.layers.%u.%n", &layer, &at) != 1 || !at)
        return;
    const char *rest = hf_name + at, *dot = strrchr(rest, '.');
    for (size_t i = 0; dot && i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (strlen(layer_names[i].hf) == (size_t)(dot - rest) &&
            !strncmp(rest, layer_names[i].hf, (size_t)(dot - rest))) {
            snprintf(buf, n, "blk.%u.%s%s", layer, layer_names[i].gguf, dot);
            return;
        }
}
