#include "comm/comm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- self: a world of one; every collective is the identity ---- */

static int self_barrier(tpi_comm *c)
{
    (void)c;
    return 0;
}

static int self_bcast(tpi_comm *c, void *buf, size_t bytes, int root)
{
    (void)c, (void)buf, (void)bytes, (void)root;
    return 0;
}

static int self_allreduce(tpi_comm *c, float *buf, int64_t n)
{
    (void)c, (void)buf, (void)n;
    return 0;
}

static int self_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root)
{
    (void)c, (void)root;
    if (recv != send)
        memcpy(recv, send, (size_t)counts[0] * sizeof *recv);
    return 0;
}

static int self_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n)
{
    (void)c, (void)vals, (void)idx, (void)n;
    return 0;
}

static int self_max_i32(tpi_comm *c, int32_t *buf, int64_t n)
{
    (void)c, (void)buf, (void)n;
    return 0;
}

static void self_abort(tpi_comm *c, int code)
{
    (void)c;
    exit(code ? code : 1);
}

static void self_free(tpi_comm *c)
{
    free(c);
}

static const tpi_comm_ops self_ops = {
    self_barrier, self_bcast, self_allreduce, self_gatherv, self_argmax, self_max_i32, self_abort, self_free, NULL, NULL,
};

int tpi_comm_self_create(tpi_comm **out, tpi_error *err)
{
    tpi_comm *c = calloc(1, sizeof *c);
    if (!c)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    c->rank = 0;
    c->size = 1;
    c->ops = &self_ops;
    c->kind = "self";
    c->allreduce = "none";
    *out = c;
    return 0;
}

/* ---- public entry points ---- */

int tpi_comm_create(tpi_comm **out, const tpi_comm_opts *opts, int *argc, char ***argv, tpi_error *err)
{
    *out = NULL;
    tpi_comm_opts none = {0};
    if (!opts)
        opts = &none;
    if (opts->allreduce != TPI_ALLREDUCE_AUTO && opts->allreduce != TPI_ALLREDUCE_MPI)
        return tpi_err(err, TPI_EINVAL,
                       "tpi_comm_opts.allreduce: expected TPI_ALLREDUCE_AUTO or TPI_ALLREDUCE_MPI, found %d",
                       opts->allreduce);
    if (opts->wire != TPI_WIRE_F32 && opts->wire != TPI_WIRE_BF16 && opts->wire != TPI_WIRE_Q8)
        return tpi_err(err, TPI_EINVAL,
                       "tpi_comm_opts.wire: expected TPI_WIRE_F32, TPI_WIRE_BF16 or TPI_WIRE_Q8, found %d", opts->wire);
    if (!isfinite(opts->timeout_s) || opts->timeout_s < 0)
        return tpi_err(err, TPI_EINVAL, "tpi_comm_opts.timeout_s: expected a finite number of seconds >= 0 (0: no "
                       "watchdog), found %g", opts->timeout_s);
    if (!opts->kind || !strcmp(opts->kind, "self"))
        return tpi_comm_self_create(out, err);
    if (!strcmp(opts->kind, "mpi"))
        return tpi_comm_mpi_create(out, opts, argc, argv, err);
    return tpi_err(err, TPI_EINVAL, "tpi_comm_opts.kind: expected \"self\" or \"mpi\", found \"%s\"", opts->kind);
}

int tpi_comm_rank(const tpi_comm *c)
{
    return c ? c->rank : 0;
}

int tpi_comm_size(const tpi_comm *c)
{
    return c ? c->size : 1;
}

void tpi_comm_abort(tpi_comm *c, int code)
{
    if (c)
        c->ops->abort(c, code);
    exit(code ? code : 1);
}

void tpi_comm_free(tpi_comm *c)
{
    if (c)
        c->ops->free(c);
}

int tpi_comm_fail(tpi_comm *c, int code, const char *fmt, ...)
{
    if (c->failure.code)
        return c->failure.code; /* the first cause is the one to report */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->failure.msg, sizeof c->failure.msg, fmt, ap);
    va_end(ap);
    c->failure.code = code;
    return code;
}

/* A lock-free atomic store: async-signal-safe. */
void tpi_comm_interrupt(tpi_comm *c, int code)
{
    if (c)
        atomic_store(&c->interrupt, code ? code : 1);
}

int tpi_comm_status(const tpi_comm *c, tpi_error *err)
{
    if (!c)
        return 0;
    tpi_error e = c->failure;
    int code = atomic_load(&c->interrupt);
    if (!e.code && code) {
        e.code = TPI_EINTR;
        snprintf(e.msg, sizeof e.msg, "interrupted (code %d)", code);
    }
    if (err && e.code)
        *err = e;
    return e.code;
}

/* Every collective starts here: a failed communicator fails at once, and an
 * interrupt is seen even by a rank whose collectives never wait. */
static int usable(tpi_comm *c)
{
    if (!c)
        return 0;
    if (c->failure.code)
        return c->failure.code;
    int code = atomic_load_explicit(&c->interrupt, memory_order_relaxed);
    return code ? tpi_comm_fail(c, TPI_EINTR, "interrupted (code %d)", code) : 0;
}

static int bad_root(const tpi_comm *c, int root)
{
    return root < 0 || root >= tpi_comm_size(c);
}

int tpi_comm_bcast(tpi_comm *c, void *buf, size_t bytes, int root)
{
    if (bad_root(c, root))
        return TPI_EINVAL;
    int rc = usable(c);
    return !rc && c && c->size > 1 ? c->ops->bcast(c, buf, bytes, root) : rc;
}

int tpi_comm_bcast_idle(tpi_comm *c, void *buf, size_t bytes, int root)
{
    if (bad_root(c, root))
        return TPI_EINVAL;
    int rc = usable(c);
    if (rc || !c || c->size == 1)
        return rc;
    return c->ops->bcast_idle ? c->ops->bcast_idle(c, buf, bytes, root) : c->ops->bcast(c, buf, bytes, root);
}

/* The transports move float32 words (gatherv), so the bytes travel in whole
 * words, unchanged: MPI converts nothing between ranks of one architecture. */
int tpi_comm_gather(tpi_comm *c, const void *send, size_t bytes, void *recv, int root)
{
    if (bad_root(c, root))
        return TPI_EINVAL;
    int size = tpi_comm_size(c), is_root = tpi_comm_rank(c) == root, rc = usable(c);
    if (rc)
        return rc;
    if (size == 1) {
        if (bytes && recv != send)
            memmove(recv, send, bytes);
        return 0;
    }
    size_t words = (bytes + sizeof(float) - 1) / sizeof(float);
    float *mine = calloc(words + 1, sizeof *mine);
    float *all = is_root ? malloc(((size_t)size * words + 1) * sizeof *all) : NULL;
    int64_t *counts = malloc((size_t)size * sizeof *counts);
    rc = mine && counts && (all || !is_root) ? 0 : TPI_ENOMEM;
    if (!rc) {
        memcpy(mine, send, bytes);
        for (int r = 0; r < size; r++)
            counts[r] = (int64_t)words;
        rc = c->ops->gatherv(c, mine, all, counts, root);
    }
    for (int r = 0; !rc && is_root && r < size; r++)
        memcpy((char *)recv + (size_t)r * bytes, all + (size_t)r * words, bytes);
    free(mine);
    free(all);
    free(counts);
    return rc;
}

int tpi_comm_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root)
{
    if (bad_root(c, root))
        return TPI_EINVAL;
    for (int r = 0; r < tpi_comm_size(c); r++)
        if (counts[r] < 0)
            return TPI_EINVAL;
    int rc = usable(c);
    if (rc)
        return rc;
    if (!c) {
        if (counts[0] && recv != send)
            memmove(recv, send, (size_t)counts[0] * sizeof *recv);
        return 0;
    }
    return c->ops->gatherv(c, send, recv, counts, root);
}

int tpi_comm_barrier(tpi_comm *c)
{
    int rc = usable(c);
    return !rc && c && c->size > 1 ? c->ops->barrier(c) : rc;
}

int tpi_comm_allreduce_sum_f32(tpi_comm *c, float *buf, int64_t n)
{
    if (n < 0)
        return TPI_EINVAL;
    int rc = usable(c);
    return !rc && c && c->size > 1 ? c->ops->allreduce_sum(c, buf, n) : rc;
}

int tpi_comm_allreduce_act(tpi_comm *c, float *buf, int64_t n)
{
    if (n < 0)
        return TPI_EINVAL;
    int rc = usable(c);
    if (rc || !c || c->size == 1)
        return rc;
    if (c->wire != TPI_WIRE_F32 && c->ops->allreduce_act)
        return c->ops->allreduce_act(c, buf, n);
    return c->ops->allreduce_sum(c, buf, n);
}

int tpi_comm_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n)
{
    if (n < 0)
        return TPI_EINVAL;
    int rc = usable(c);
    return !rc && c && c->size > 1 ? c->ops->argmax(c, vals, idx, n) : rc;
}

int tpi_comm_allreduce_max_i32(tpi_comm *c, int32_t *buf, int64_t n)
{
    if (n < 0)
        return TPI_EINVAL;
    int rc = usable(c);
    return !rc && c && c->size > 1 ? c->ops->allreduce_max_i32(c, buf, n) : rc;
}
