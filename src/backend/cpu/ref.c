/* Plain C kernels: the reference the fast kernels are tested against, and the
 * fallback on processors without AVX2. Threads over independent rows only. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/quant_kernels.h"

static float weight_at(const tpi_weight *w, int64_t r, int64_t c)
{
    const uint8_t *p = (const uint8_t *)w->data + ((size_t)r * (size_t)w->cols + (size_t)c) * tpi_dtype_size(w->dtype);
    if (w->dtype == TPI_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    return w->dtype == TPI_BF16 ? tpi_bf16_to_f32(h) : tpi_f16_to_f32(h);
}

static void ref_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    if (tpi_dtype_is_quant(w->dtype)) {
        tpi_qmatmul_ref(y, x, n, w);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < w->rows; o++) {
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * w->cols;
            float acc = 0;
            for (int64_t c = 0; c < w->cols; c++)
                acc += xi[c] * weight_at(w, o, c);
            y[i * w->rows + o] = acc;
        }
    }
}

static void ref_rmsnorm(float *y, const float *x, const float *g, int64_t n, int64_t dim, float eps)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        float *yi = y + i * dim;
        double ss = 0;
        for (int64_t d = 0; d < dim; d++)
            ss += (double)xi[d] * xi[d];
        float r = (float)(1.0 / sqrt(ss / (double)dim + eps));
        for (int64_t d = 0; d < dim; d++)
            yi[d] = xi[d] * r * g[d];
    }
}

static void ref_rope(float *x, int64_t n, int64_t stride, int64_t n_heads, int64_t head_dim, const float *cos,
                     const float *sin)
{
    int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *c = cos + i * half, *s = sin + i * half;
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + i * stride + h * head_dim;
            for (int64_t d = 0; d < half; d++) {
                float a = v[d], b = v[d + half];
                v[d] = a * c[d] - b * s[d];
                v[d + half] = b * c[d] + a * s[d];
            }
        }
    }
}

static void ref_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                          const float *const *v, const tpi_attn_shape *s)
{
    int64_t qdim = s->n_heads * s->head_dim, ctx = 0;
    for (int64_t i = 0; i < n; i++)
        if (pos[i] + 1 > ctx)
            ctx = pos[i] + 1;
#pragma omp parallel
    {
        float *sc = malloc((size_t)ctx * sizeof *sc);
#pragma omp for collapse(2) schedule(static)
        for (int64_t i = 0; i < n; i++)
            for (int64_t h = 0; h < s->n_heads; h++) {
                const float *qi = q + i * qdim + h * s->head_dim;
                int64_t kvh = (s->q_head0 + h) / s->group - s->kv_head0;
                int64_t j0 = s->window && pos[i] - s->window + 1 > 0 ? pos[i] - s->window + 1 : 0;
                float mx = -INFINITY;
                for (int64_t j = j0; j <= pos[i]; j++) {
                    const float *kj = tpi_attn_kv_row(k, s, kvh, j);
                    float d = 0;
                    for (int64_t e = 0; e < s->head_dim; e++)
                        d += qi[e] * kj[e];
                    sc[j] = d * s->scale;
                    if (sc[j] > mx)
                        mx = sc[j];
                }
                float sum = 0;
                for (int64_t j = j0; j <= pos[i]; j++) {
                    sc[j] = expf(sc[j] - mx);
                    sum += sc[j];
                }
                float *oi = out + i * qdim + h * s->head_dim;
                memset(oi, 0, (size_t)s->head_dim * sizeof *oi);
                for (int64_t j = j0; j <= pos[i]; j++) {
                    const float *vj = tpi_attn_kv_row(v, s, kvh, j);
                    float p = sc[j] / sum;
                    for (int64_t e = 0; e < s->head_dim; e++)
                        oi[e] += p * vj[e];
                }
            }
        free(sc);
    }
}

static void ref_silu_mul(float *g, const float *u, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void ref_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    for (int i = 0; i < count; i++)
        ref_matmul(ys[i], x, n, ws[i]);
}

static const tpi_backend ref = {
    .name = "cpu-ref",
    .prepare_weight = NULL,
    .matmul = ref_matmul,
    .matmul_multi = ref_matmul_multi,
    .rmsnorm = ref_rmsnorm,
    .rope = ref_rope,
    .attention = ref_attention,
    .silu_mul = ref_silu_mul,
};

const tpi_backend *tpi_backend_cpu_ref(void)
{
    return &ref;
}

void tpi_backend_set_threads(int n)
{
    if (n > 0)
        omp_set_num_threads(n);
}
