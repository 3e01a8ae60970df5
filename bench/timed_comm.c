#include "timed_comm.h"

#include "core/clock.h"

#define INNER(c) (((timed_comm *)(c)->impl)->inner)

/* Runs one forwarded call and adds its seconds to the wrapper's total. */
#define TIMED(c, call)                                                                                                 \
    do {                                                                                                               \
        timed_comm *t_ = (c)->impl;                                                                                    \
        double t0_ = tpi_seconds();                                                                                    \
        int rc_ = (call);                                                                                              \
        t_->seconds += tpi_seconds() - t0_;                                                                            \
        return rc_;                                                                                                    \
    } while (0)

static int timed_barrier(tpi_comm *c)
{
    TIMED(c, INNER(c)->ops->barrier(INNER(c)));
}

static int timed_bcast(tpi_comm *c, void *buf, size_t bytes, int root)
{
    TIMED(c, INNER(c)->ops->bcast(INNER(c), buf, bytes, root));
}

static int timed_allreduce(tpi_comm *c, float *buf, int64_t n)
{
    TIMED(c, INNER(c)->ops->allreduce_sum(INNER(c), buf, n));
}

static int timed_allreduce_act(tpi_comm *c, float *buf, int64_t n)
{
    TIMED(c, tpi_comm_allreduce_act(INNER(c), buf, n));
}

static int timed_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root)
{
    TIMED(c, INNER(c)->ops->gatherv(INNER(c), send, recv, counts, root));
}

static int timed_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n)
{
    TIMED(c, INNER(c)->ops->argmax(INNER(c), vals, idx, n));
}

static int timed_max_i32(tpi_comm *c, int32_t *buf, int64_t n)
{
    TIMED(c, INNER(c)->ops->allreduce_max_i32(INNER(c), buf, n));
}

static void timed_abort(tpi_comm *c, int code)
{
    INNER(c)->ops->abort(INNER(c), code);
}

/* The wrapper owns nothing: the caller frees the inner communicator. */
static void timed_free(tpi_comm *c)
{
    (void)c;
}

static const tpi_comm_ops timed_ops = {
    timed_barrier, timed_bcast, timed_allreduce, timed_gatherv, timed_argmax, timed_max_i32, timed_abort, timed_free,
    NULL, timed_allreduce_act,
};

void timed_comm_init(timed_comm *t, tpi_comm *inner)
{
    t->comm = (tpi_comm){.rank = inner->rank, .size = inner->size, .ops = &timed_ops, .impl = t, .kind = inner->kind,
                       .wire = inner->wire};
    t->inner = inner;
    t->seconds = 0;
}
