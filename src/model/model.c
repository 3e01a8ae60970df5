/* Model lifetime: config, plan, weights, RoPE frequencies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "comm/comm.h"
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

/* Llama 3 GGUFs carry their RoPE scaling as per-frequency divisors in the
 * tensor rope_freqs.weight (llama.cpp's rope "freq_factors"). */
static int rope_freq_factors(tpi_model *m, tpi_error *err)
{
    const tpi_st_tensor *t;
    const tpi_st_file *f;
    int64_t half = m->cfg.head_dim / 2;
    if (!m->ckpt->gguf || tpi_ckpt_find(m->ckpt, "rope_freqs.weight", &t, &f))
        return 0;
    if (t->dtype != TPI_F32 || !t->dtype_ok || t->numel != half)
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"rope_freqs.weight\" is %s of %lld elements (expected F32 of "
                       "head_dim / 2 = %lld)", f->path, t->dtype_name, (long long)t->numel, (long long)half);
    for (int64_t i = 0; i < half; i++) {
        float d;
        memcpy(&d, t->data + 4 * i, 4);
        if (!(d > 0) || d > 1e30f)
            return tpi_err(err, TPI_EFORMAT, "%s: tensor \"rope_freqs.weight\" element %lld is %g (expected a "
                           "positive divisor)", f->path, (long long)i, d);
        m->inv_freq[i] /= d;
    }
    return 0;
}

/* Config, plan and checkpoint of a model directory or a .gguf file (whose
 * metadata is its config; its plan is the built-in one unless a file is
 * given). */
static int open_model(tpi_model *m, const char *dir, const char *plan_file, tpi_error *err)
{
    int rc;
    if (!tpi_gguf_is_path(dir)) {
        if ((rc = tpi_config_load(&m->cfg, dir, err)) ||
            (rc = tpi_plan_resolve(&m->plan, dir, plan_file, &m->cfg, err)))
            return rc;
        return tpi_ckpt_open(&m->ckpt, dir, err);
    }
    if (m->quant >= 0)
        return tpi_err(err, TPI_EINVAL, "quant: %s is a GGUF file, whose weights are stored as they are computed "
                       "with; --quant quantizes a safetensors checkpoint", dir);
    if ((rc = tpi_ckpt_open(&m->ckpt, dir, err)) || (rc = tpi_config_from_gguf(&m->cfg, m->ckpt->gguf, err)))
        return rc;
    return plan_file ? tpi_plan_resolve(&m->plan, dir, plan_file, &m->cfg, err) : tpi_plan_auto(&m->plan, &m->cfg, err);
}

/* Kernel threads of this rank: the caller's count, else the machine's cores
 * shared by the ranks on it (DESIGN.md "Process model"). */
static int thread_count(const tpi_load_opts *o, const tpi_comm *comm)
{
    if (o->n_threads > 0)
        return o->n_threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long t = cores / (o->local_ranks > 0 ? o->local_ranks : tpi_comm_size(comm));
    return t < 1 ? 1 : (int)t;
}

/* tpi_load_opts.quant: -1 for none, else the block type. */
static int parse_quant(const char *s, int *out)
{
    static const struct { const char *name; tpi_dtype t; } types[] = {
        {"q8_0", TPI_Q8_0}, {"q4_0", TPI_Q4_0}, {"q4_k", TPI_Q4_K},
    };
    *out = -1;
    if (!s || !*s)
        return 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) {
            *out = (int)types[i].t;
            return 0;
        }
    return -1;
}

/* The options this rank can check alone. */
static int check_opts(tpi_model *m, const tpi_load_opts *o, tpi_error *err)
{
    if (tpi_backend_cpu_select(o->kernels, &m->be))
        return tpi_err(err, TPI_EINVAL, "kernels: expected auto, ref, avx2 or avx512, found \"%s\"", o->kernels);
    if (o->n_threads < 0)
        return tpi_err(err, TPI_EINVAL, "n_threads: expected 0 (the default) or more, found %d", o->n_threads);
    if (o->local_ranks < 0)
        return tpi_err(err, TPI_EINVAL, "local_ranks: expected 0 (the default) or more, found %d", o->local_ranks);
    if (o->prefill_chunk < 0 || o->prefill_chunk > INT32_MAX)
        return tpi_err(err, TPI_EINVAL,
                       "prefill_chunk: expected 0 (the default, %d) or a positive number of tokens, found %lld",
                       TPI_PREFILL_CHUNK_DEFAULT, (long long)o->prefill_chunk);
    if (parse_quant(o->quant, &m->quant))
        return tpi_err(err, TPI_EINVAL, "quant: expected q8_0, q4_0 or q4_k (or none), found \"%s\"", o->quant);
    if (o->mem_limit_bytes < -1)
        return tpi_err(err, TPI_EINVAL, "mem_limit_bytes: expected 0 (measure the machine), -1 (no check) or a "
                       "positive number of bytes, found %lld", (long long)o->mem_limit_bytes);
    return 0;
}

/* Every rank must cut the same prefill chunks (they all-reduce each one), so
 * the ranks check that they were given one value, and fail together when
 * any of them was given a bad option (no rank waits in a collective for one
 * that returned). */
static int agree_opts(tpi_model *m, const tpi_load_opts *o, tpi_error *err)
{
    int rc = check_opts(m, o, err);
    int32_t chunk = rc ? 0 : (int32_t)(o->prefill_chunk ? o->prefill_chunk : TPI_PREFILL_CHUNK_DEFAULT);
    int32_t check = o->check_weights != 0;
    int32_t agree[5] = {rc != 0, chunk, -chunk, check, -check}; /* max of each */
    if (tpi_comm_allreduce_max_i32(m->comm, agree, 5))
        return tpi_err(err, TPI_ECOMM, "agreeing on the load options failed (a rank died?)");
    if (rc)
        return rc;
    if (agree[0])
        return tpi_err(err, TPI_EINVAL, "another rank was given a bad load option");
    if (agree[1] != -agree[2])
        return tpi_err(err, TPI_EINVAL, "prefill_chunk: the ranks were given different values (%d to %d tokens)",
                       -agree[2], agree[1]);
    /* the ranks that check agree on the outcome in a collective the others
     * would never join */
    if (agree[3] != -agree[4])
        return tpi_err(err, TPI_EINVAL, "check_weights: some ranks were given 1, others 0");
    m->check_weights = check;
    m->mem_limit = o->mem_limit_bytes;
    m->prefill_chunk = chunk;
    m->n_threads = thread_count(o, m->comm);
    tpi_backend_set_threads(m->n_threads);
    return 0;
}

/* With check_weights, a bad weight is found only by the rank holding it:
 * every rank learns the outcome, and the lowest failing rank's error (code
 * and message) becomes every rank's, so whichever rank reports it names the
 * tensor. Covers any failure after the options were agreed. Collective. */
static int agree_loaded(tpi_model *m, int rc, tpi_error *err)
{
    return tpi_model_agree_error(m->comm, rc, err);
}

int tpi_model_agree_error(tpi_comm *c, int rc, tpi_error *err)
{
    int32_t first = rc ? c->size - c->rank : 0; /* max: the lowest failing rank */
    if (tpi_comm_allreduce_max_i32(c, &first, 1))
        return tpi_err(err, TPI_ECOMM, "agreeing on an outcome failed (a rank died?)");
    if (!first)
        return 0;
    tpi_error shared = {0};
    if (rc && err)
        shared = *err;
    shared.code = rc; /* only the root's is broadcast, and it failed */
    if (tpi_comm_bcast(c, &shared, sizeof shared, c->size - first))
        return tpi_err(err, TPI_ECOMM, "sharing a rank's error failed (a rank died?)");
    if (err)
        *err = shared;
    return shared.code;
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
        rc = agree_opts(m, opts, err);
    if (!rc)
        rc = open_model(m, dir, opts->tp_plan_file, err);
    if (!rc)
        rc = tpi_model_load_weights(m, err);
    if (m->check_weights)
        rc = agree_loaded(m, rc, err);
    if (!rc) {
        m->inv_freq = malloc((size_t)(m->cfg.head_dim / 2) * sizeof *m->inv_freq);
        if (!m->inv_freq)
            rc = tpi_err(err, TPI_ENOMEM, "out of memory");
        else
            rope_inv_freq(&m->cfg, m->inv_freq);
        if (m->inv_freq)
            rc = rope_freq_factors(m, err);
    }
    if (rc) {
        tpi_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int tpi_model_max_ranks(const char *dir, const char *tp_plan_file, int64_t *max_ranks, const char **limited_by,
                        tpi_error *err)
{
    *max_ranks = 0;
    *limited_by = NULL;
    tpi_config cfg;
    tpi_plan *plan = NULL;
    tpi_shard_blocks blocks;
    int rc;
    if (tpi_gguf_is_path(dir)) {
        tpi_gguf *g = NULL;
        rc = tpi_gguf_open(&g, dir, err);
        if (!rc)
            rc = tpi_config_from_gguf(&cfg, g, err);
        tpi_gguf_close(g);
        if (!rc)
            rc = tp_plan_file ? tpi_plan_resolve(&plan, dir, tp_plan_file, &cfg, err) : tpi_plan_auto(&plan, &cfg, err);
    } else {
        rc = tpi_config_load(&cfg, dir, err);
        if (!rc)
            rc = tpi_plan_resolve(&plan, dir, tp_plan_file, &cfg, err);
    }
    if (!rc)
        rc = tpi_plan_blocks(plan, &cfg, &blocks, err);
    if (!rc)
        *limited_by = tpi_shard_max_ranks(&cfg, &blocks, max_ranks);
    tpi_plan_free(plan);
    return rc;
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
    info->intermediate_size = c->intermediate_size;
    info->weight_bytes = m->weight_bytes;
    info->mapped_bytes = m->mapped_bytes;
    info->copied_bytes = m->weight_bytes - m->mapped_bytes;
    info->file_bytes = m->ckpt ? (int64_t)m->ckpt->file_bytes : 0;
    info->streamed_bytes = m->weight_bytes;
    int64_t block = tpi_dtype_block(m->embed.dtype);
    if (m->embed.data != m->lm_head.data)
        info->streamed_bytes -= m->embed.rows * tpi_dtype_row_bytes(m->embed.dtype,
                                                                    (m->embed.cols + block - 1) / block * block);
    info->kernels = tpi_backend_cpu_set(m->be);
    info->n_threads = m->n_threads;
    info->prefill_chunk = m->prefill_chunk;
}
