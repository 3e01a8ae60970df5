/* Model lifetime: config, plan, weights, RoPE frequencies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "model/model.h"
#include "model/tuning.h"

/* Inverse RoPE frequencies, transformers' modeling_rope_utils: default
 * theta^(-2i/d), "linear" divides by factor, "llama3" scales low frequencies
 * by 1/factor and blends the band between low_freq and high_freq wavelengths. */
static void rope_inv_freq(const tpi_config *c, double *f)
{
    int64_t half = c->head_dim / 2;
    for (int64_t i = 0; i < half; i++)
        f[i] = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
    if (c->rope_kind == TPI_ROPE_LINEAR) {
        for (int64_t i = 0; i < half; i++)
            f[i] /= c->rope_factor;
    } else if (c->rope_kind == TPI_ROPE_LLAMA3) {
        double old = (double)c->rope_original_max_pos;
        double low_wl = old / c->rope_low_freq_factor, high_wl = old / c->rope_high_freq_factor;
        for (int64_t i = 0; i < half; i++) {
            double wl = 2 * M_PI / f[i];
            if (wl < high_wl)
                continue;
            if (wl > low_wl) {
                f[i] /= c->rope_factor;
            } else {
                double s = (old / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f[i] = (1 - s) * f[i] / c->rope_factor + s * f[i];
            }
        }
    }
}

static int default_threads(const tpi_comm *comm)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* Ranks sharing this machine share its cores (DESIGN.md "Process model"). */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!local)
        local = getenv("MPI_LOCALNRANKS");
    long per = local ? atol(local) : comm->size;
    if (per < 1)
        per = 1;
    long t = cores / per;
    return t < 1 ? 1 : (int)t;
}

/* Tokens per pass of a forward (forward.c): TPI_PREFILL_CHUNK_DEFAULT, or TPI_PREFILL_CHUNK.
 * Every rank must cut the same chunks (they all-reduce each one), so the
 * ranks agree on the value, and on failing when one of them cannot read it. */
static int prefill_chunk(tpi_model *m, tpi_error *err)
{
    const char *e = getenv("TPI_PREFILL_CHUNK");
    char *end = NULL;
    long long v = e ? strtoll(e, &end, 10) : TPI_PREFILL_CHUNK_DEFAULT;
    int32_t agree[2] = {e && (end == e || *end || v < 1 || v > INT32_MAX), 0};
    agree[1] = agree[0] ? 0 : (int32_t)v;
    if (m->comm->ops->allreduce_max_i32(m->comm, agree, 2))
        return tpi_err(err, TPI_ECOMM, "agreeing on the prefill chunk failed (a rank died?)");
    if (agree[0] && e)
        return tpi_err(err, TPI_EINVAL, "TPI_PREFILL_CHUNK: expected a positive number of tokens, found \"%s\"", e);
    if (agree[0])
        return tpi_err(err, TPI_EINVAL, "TPI_PREFILL_CHUNK: another rank's value is not a positive number of tokens");
    m->prefill_chunk = agree[1];
    return 0;
}

int tpi_model_load(tpi_model **out, const char *dir, const tpi_load_opts *opts, tpi_error *err)
{
    *out = NULL;
    tpi_load_opts none = {0};
    if (!opts)
        opts = &none;
    tpi_model *m = calloc(1, sizeof *m);
    if (!m)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    int rc = 0;
    if (opts->comm) {
        m->comm = opts->comm;
    } else {
        rc = tpi_comm_self_create(&m->comm, err);
        m->own_comm = 1;
    }
    if (!rc)
        rc = tpi_config_load(&m->cfg, dir, err);
    if (!rc) {
        m->be = tpi_backend_cpu();
        tpi_backend_set_threads(opts->n_threads > 0 ? opts->n_threads : default_threads(m->comm));
        rc = tpi_plan_resolve(&m->plan, dir, opts->tp_plan_file, &m->cfg, err);
    }
    if (!rc)
        rc = tpi_ckpt_open(&m->ckpt, dir, err);
    if (!rc)
        rc = tpi_model_load_weights(m, err);
    if (!rc)
        rc = prefill_chunk(m, err);
    if (!rc) {
        m->inv_freq = malloc((size_t)(m->cfg.head_dim / 2) * sizeof *m->inv_freq);
        if (!m->inv_freq)
            rc = tpi_err(err, TPI_ENOMEM, "out of memory");
        else
            rope_inv_freq(&m->cfg, m->inv_freq);
    }
    if (rc) {
        tpi_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void tpi_model_free(tpi_model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int64_t l = 0; l < m->cfg.n_layers; l++) {
            tpi_layer_weights *L = &m->layers[l];
            tpi_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                tpi_weight_release(ws[i]);
            float *vs[] = {L->attn_norm, L->ffn_norm, L->q_norm, L->k_norm, L->bq, L->bk, L->bv,
                           L->bo, L->bg, L->bu, L->bd};
            for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
                free(vs[i]);
        }
        free(m->layers);
    }
    tpi_run_state_free(m->state);
    tpi_weight_release(&m->lm_head);
    tpi_weight_release(&m->embed);
    free(m->final_norm);
    free(m->inv_freq);
    tpi_ckpt_free(m->ckpt);
    tpi_plan_free(m->plan);
    if (m->own_comm)
        tpi_comm_free(m->comm);
    free(m);
}

void tpi_model_get_info(const tpi_model *m, tpi_model_info *info)
{
    const tpi_config *c = &m->cfg;
    memset(info, 0, sizeof *info);
    info->architecture = c->arch_name;
    info->vocab_size = c->vocab_size;
    info->hidden_size = c->hidden_size;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->n_kv_heads = c->n_kv_heads;
    info->head_dim = c->head_dim;
    info->max_position_embeddings = c->max_position_embeddings;
    info->bos_id = c->bos_id;
    info->n_eos = c->n_eos;
    memcpy(info->eos_ids, c->eos_ids, sizeof info->eos_ids);
    info->weight_bytes = m->weight_bytes;
}
