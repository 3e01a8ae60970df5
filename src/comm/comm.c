#include "comm/comm.h"

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
    self_barrier, self_bcast, self_allreduce, self_gatherv, self_argmax, self_max_i32, self_abort, self_free,
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
    *out = c;
    return 0;
}

/* ---- public entry points ---- */

int tpi_comm_create(tpi_comm **out, const char *kind, int *argc, char ***argv, tpi_error *err)
{
    *out = NULL;
    if (!kind || !strcmp(kind, "auto"))
        kind = tpi_comm_mpi_launched() ? "mpi" : "self";
    if (!strcmp(kind, "self"))
        return tpi_comm_self_create(out, err);
    if (!strcmp(kind, "mpi"))
        return tpi_comm_mpi_create(out, argc, argv, err);
    return tpi_err(err, TPI_EINVAL, "unknown communicator \"%s\" (expected self, mpi or auto)", kind);
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
