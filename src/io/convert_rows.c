/* The bytes of a converted GGUF's tensors, row by row: a source row widened
 * to float32, then narrowed or quantized to the stored type, so the whole
 * conversion holds one row. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/quant.h"
#include "io/convert.h"

/* n float32 values into type t at dst. */
static int encode(tpi_dtype t, const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    switch (t) {
    case TPI_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case TPI_F16: for (int64_t i = 0; i < n; i++) h[i] = tpi_f32_to_f16(src[i]); return 0;
    case TPI_BF16: for (int64_t i = 0; i < n; i++) h[i] = tpi_f32_to_bf16(src[i]); return 0;
    default: return tpi_quant_row(t, src, dst, n);
    }
}

/* The source row that output row r comes from. Transformers rotates the
 * halves of a head: row i of a half pairs with row i of the other. The
 * output interleaves them, head h's row 2i + j being its half j's row i. */
static int64_t source_row(int64_t r, int64_t rows, int64_t heads)
{
    if (!heads)
        return r;
    int64_t hd = rows / heads, h = r / hd, rem = r % hd;
    return h * hd + (rem % 2) * (hd / 2) + rem / 2;
}

static int write_tensor(const tpi_cv_tensor *t, float *row, uint8_t *out, tpi_gguf_writer *w, tpi_error *err)
{
    /* a permuted bias is a column of one-element rows */
    int64_t rows = t->rows ? t->rows : t->permute_heads ? t->cols : 1;
    int64_t cols = t->rows ? t->cols : t->permute_heads ? 1 : t->cols;
    int64_t out_bytes = tpi_dtype_row_bytes(t->type, cols);
    size_t src_bytes = t->src ? tpi_dtype_size(t->src->dtype) * (size_t)cols : 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t s = source_row(r, rows, t->permute_heads);
        if (t->src)
            tpi_to_f32(row, t->src->data + (size_t)s * src_bytes, t->src->dtype, (size_t)cols);
        else
            memcpy(row, t->gen + s * cols, (size_t)cols * sizeof *row);
        if (encode(t->type, row, out, cols))
            return tpi_err(err, TPI_EUNSUPPORTED, "tensor %s: quantization to %s is not available",
                           t->gguf_name, tpi_dtype_name(t->type));
        int rc = tpi_gguf_w_data(w, out, (size_t)out_bytes, err);
        if (rc)
            return rc;
    }
    return 0;
}

int tpi_cv_plan_write(const tpi_cv_plan *p, tpi_gguf_writer *w, tpi_error *err)
{
    int64_t max_cols = 1;
    for (int64_t i = 0; i < p->n; i++)
        max_cols = p->t[i].cols > max_cols ? p->t[i].cols : max_cols;
    /* 4 bytes per element bounds every stored type's row */
    float *row = malloc((size_t)max_cols * sizeof *row);
    uint8_t *out = malloc((size_t)max_cols * 4);
    int rc = !row || !out ? tpi_err(err, TPI_ENOMEM, "out of memory for a row of %lld", (long long)max_cols) : 0;
    for (int64_t i = 0; !rc && i < p->n; i++)
        rc = write_tensor(&p->t[i], row, out, w, err);
    free(row);
    free(out);
    return rc;
}
