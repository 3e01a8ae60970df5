/* The MPI transport: standard MPI-3 calls only, so Open MPI and MPICH both
 * build it. MPI is used for set-up and collectives; the model never calls it. */
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm.h"
#include "comm/shm_allreduce.h"
#include "comm/watchdog.h"
#include "comm/wire.h"
#include "core/error.h"

typedef struct mpi_impl {
    MPI_Comm comm;
    int we_initialized;
    int *counts, *displs; /* gatherv scratch, one per rank */
    struct tpi_shm *shm;  /* all-reduce through shared memory, or NULL */
    tpi_watchdog wd;
    int wire;              /* enum tpi_wire_kind of the network all-reduce */
    unsigned char *wbuf;   /* its scratch, wcap bytes */
    size_t wcap;
} mpi_impl;

static MPI_Comm world(tpi_comm *c)
{
    return ((mpi_impl *)c->impl)->comm;
}

/* Every collective is MPI's non-blocking one, tested until done, so that a
 * wait can end (tpi_wait_poll: an interrupt, the watchdog) where a blocking
 * call would wait for ever. The wait was begun by the caller. */
static int finish(tpi_wait *w, MPI_Request *req, int rc)
{
    if (rc != MPI_SUCCESS)
        return TPI_ECOMM;
    for (unsigned spins = 0;; spins++) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return TPI_ECOMM;
        if (done)
            return 0;
        int code = tpi_wait_poll(w);
        if (code)
            return code; /* the request stays pending: the job is ending */
        /* A long wait gives the core away, as the shared-memory wait does:
         * ranks that share cores (emulated hosts on one machine, more ranks
         * than cores) otherwise spin while the rank they wait for cannot
         * run. A rank with a core of its own finds the yield returns at once. */
        if (spins >= 2000 && spins < 2200) {
            sched_yield();
        } else if (spins >= 2200) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

static tpi_wait *begin(tpi_wait *w, tpi_comm *c, const char *what)
{
    tpi_wait_begin(w, c, &((mpi_impl *)c->impl)->wd, what, 0);
    return w;
}

static int mpi_barrier(tpi_comm *c)
{
    tpi_wait w;
    MPI_Request req;
    return finish(begin(&w, c, "barrier"), &req, MPI_Ibarrier(world(c), &req));
}

/* MPI counts are int: large buffers go in pieces, within one wait. */
static int bcast_pieces(tpi_wait *w, void *buf, size_t bytes, int root)
{
    int rc = 0;
    for (size_t off = 0; off < bytes && !rc;) {
        size_t n = bytes - off > (1u << 30) ? (1u << 30) : bytes - off;
        MPI_Request req;
        rc = finish(w, &req, MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, world(w->c), &req));
        off += n;
    }
    return rc;
}

static int mpi_bcast(tpi_comm *c, void *buf, size_t bytes, int root)
{
    mpi_impl *m = c->impl;
    tpi_wait w;
    int rc = m->shm ? tpi_shm_bcast(m->shm, buf, bytes, root, begin(&w, c, "bcast")) : 1;
    if (rc == 1)
        rc = bcast_pieces(m->shm ? &w : begin(&w, c, "bcast"), buf, bytes, root);
    return rc;
}

/* Each poll sleeps, up to 2 ms, so an idle rank costs no core and a new
 * message waits at most that long; no time-out. */
static int mpi_bcast_idle(tpi_comm *c, void *buf, size_t bytes, int root)
{
    tpi_wait w;
    tpi_wait_begin(&w, c, &((mpi_impl *)c->impl)->wd, "idle bcast", 1);
    if (bytes > (1u << 30))
        return bcast_pieces(&w, buf, bytes, root);
    MPI_Request req;
    if (MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, world(c), &req) != MPI_SUCCESS)
        return TPI_ECOMM;
    long ns = 20000;
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return TPI_ECOMM;
        if (done)
            return 0;
        int code = tpi_wait_poll(&w);
        if (code)
            return code;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        ns = ns < 2000000 ? ns * 2 : 2000000;
    }
}

/* Values per piece of an encoded all-reduce: bounds its scratch (~3x). */
#define WIRE_PIECE ((int64_t)1 << 21)

/* One piece of an all-reduce with an encoded wire: a reduce-scatter, then
 * an all-gather, as a ring moves 2 (N-1)/N of the data. Each rank owns one
 * chunk: it receives every rank's encoding of that chunk, sums them in rank
 * order in float32 and sends the encoded sum to all. Every rank decodes the
 * same bytes, so all ranks hold bit-identical results. */
static int wire_piece(tpi_comm *c, float *buf, int64_t n, tpi_wait *w)
{
    mpi_impl *m = c->impl;
    int64_t N = c->size, blk = TPI_WIRE_Q8_BLOCK;
    int64_t chunk = ((n + N - 1) / N + blk - 1) / blk * blk;
    size_t cb = tpi_wire_bytes(m->wire, chunk), floats = (size_t)(N + 1) * (size_t)chunk * sizeof(float);
    size_t need = floats + 2 * (size_t)N * cb;
    if (need > m->wcap) {
        unsigned char *p = realloc(m->wbuf, need);
        if (!p)
            return TPI_ENOMEM;
        m->wbuf = p;
        m->wcap = need;
    }
    float *pad = (float *)m->wbuf, *sum = pad + N * chunk;
    unsigned char *send = m->wbuf + floats, *recv = send + N * cb;
    memcpy(pad, buf, (size_t)n * sizeof *buf);
    memset(pad + n, 0, (size_t)(N * chunk - n) * sizeof *pad);
    for (int64_t r = 0; r < N; r++)
        tpi_wire_encode(m->wire, pad + r * chunk, chunk, send + r * cb);
    MPI_Request req;
    int rc = finish(w, &req, MPI_Ialltoall(send, (int)cb, MPI_BYTE, recv, (int)cb, MPI_BYTE, world(c), &req));
    if (rc)
        return rc;
    memset(sum, 0, (size_t)chunk * sizeof *sum);
    for (int64_t q = 0; q < N; q++)
        tpi_wire_add(m->wire, recv + q * cb, chunk, sum);
    tpi_wire_encode(m->wire, sum, chunk, send);
    rc = finish(w, &req, MPI_Iallgather(send, (int)cb, MPI_BYTE, recv, (int)cb, MPI_BYTE, world(c), &req));
    if (rc)
        return rc;
    memset(pad, 0, (size_t)(N * chunk) * sizeof *pad);
    for (int64_t r = 0; r < N; r++)
        tpi_wire_add(m->wire, recv + r * cb, chunk, pad + r * chunk);
    memcpy(buf, pad, (size_t)n * sizeof *buf);
    return 0;
}

static int mpi_allreduce(tpi_comm *c, float *buf, int64_t n)
{
    mpi_impl *m = c->impl;
    tpi_wait w;
    begin(&w, c, "allreduce");
    if (m->shm)
        return tpi_shm_allreduce(m->shm, buf, n, &w);
    int rc = 0;
    for (int64_t off = 0; off < n && !rc;) {
        int64_t k = n - off > (1 << 28) ? (1 << 28) : n - off;
        MPI_Request req;
        rc = finish(&w, &req, MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, world(c), &req));
        off += k;
    }
    return rc;
}

/* Activations: in the wire encoding across machines; through shared memory
 * (f32) when the ranks share one. */
static int mpi_allreduce_act(tpi_comm *c, float *buf, int64_t n)
{
    mpi_impl *m = c->impl;
    if (m->shm || m->wire == TPI_WIRE_F32)
        return mpi_allreduce(c, buf, n);
    tpi_wait w;
    begin(&w, c, "allreduce");
    int rc = 0;
    for (int64_t off = 0; off < n && !rc; off += WIRE_PIECE)
        rc = wire_piece(c, buf + off, n - off < WIRE_PIECE ? n - off : WIRE_PIECE, &w);
    return rc;
}

static int mpi_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root)
{
    mpi_impl *m = c->impl;
    int64_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > INT32_MAX || off > INT32_MAX)
            return TPI_ECOMM;
        m->counts[r] = (int)counts[r];
        m->displs[r] = (int)off;
        off += counts[r];
    }
    tpi_wait w;
    MPI_Request req;
    return finish(begin(&w, c, "gatherv"), &req,
                  MPI_Igatherv(send, m->counts[c->rank], MPI_FLOAT, recv, m->counts, m->displs, MPI_FLOAT, root,
                               m->comm, &req));
}

static int mpi_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n)
{
    mpi_impl *m = c->impl;
    tpi_wait w;
    int shm_rc = m->shm ? tpi_shm_argmax(m->shm, vals, idx, n, begin(&w, c, "argmax")) : 1;
    if (shm_rc != 1)
        return shm_rc;
    if (!m->shm)
        begin(&w, c, "argmax");
    struct { float v; int i; } *pairs = malloc((size_t)n * sizeof *pairs);
    if (!pairs)
        return TPI_ENOMEM;
    for (int64_t k = 0; k < n; k++) {
        pairs[k].v = vals[k];
        pairs[k].i = idx[k];
    }
    MPI_Request req;
    int rc = finish(&w, &req, MPI_Iallreduce(MPI_IN_PLACE, pairs, (int)n, MPI_FLOAT_INT, MPI_MAXLOC, world(c), &req));
    for (int64_t k = 0; k < n && !rc; k++) {
        vals[k] = pairs[k].v;
        idx[k] = pairs[k].i;
    }
    if (!rc) /* else MPI may still write into pairs: the job is ending */
        free(pairs);
    return rc;
}

static int mpi_max_i32(tpi_comm *c, int32_t *buf, int64_t n)
{
    mpi_impl *m = c->impl;
    tpi_wait w;
    int rc = m->shm ? tpi_shm_max_i32(m->shm, buf, n, begin(&w, c, "allreduce max")) : 1;
    if (rc != 1)
        return rc;
    MPI_Request req;
    return finish(m->shm ? &w : begin(&w, c, "allreduce max"), &req,
                  MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT32_T, MPI_MAX, world(c), &req));
}

static void mpi_abort(tpi_comm *c, int code)
{
    MPI_Abort(world(c), code ? code : 1);
    exit(code ? code : 1);
}

static void mpi_free(tpi_comm *c)
{
    mpi_impl *m = c->impl;
    /* Freeing windows and communicators is collective: after a wait ended
     * early the others may never join, so only this rank's memory goes. */
    if (m && c->failure.code) {
        free(m->counts);
        free(m->displs);
        free(m);
    } else if (m) {
        free(m->wbuf);
        tpi_shm_free(m->shm);
        tpi_watchdog_free(&m->wd);
        if (m->comm != MPI_COMM_NULL)
            MPI_Comm_free(&m->comm);
        free(m->counts);
        free(m->displs);
        int fin = 0;
        if (m->we_initialized && MPI_Finalized(&fin) == MPI_SUCCESS && !fin)
            MPI_Finalize();
        free(m);
    }
    free(c);
}

static const tpi_comm_ops mpi_ops = {
    mpi_barrier, mpi_bcast, mpi_allreduce, mpi_gatherv, mpi_argmax, mpi_max_i32, mpi_abort, mpi_free,
    mpi_bcast_idle, mpi_allreduce_act,
};

int tpi_comm_mpi_create(tpi_comm **out, const tpi_comm_opts *opts, int *argc, char ***argv, tpi_error *err)
{
    tpi_comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(argc, argv) != MPI_SUCCESS) {
            free(c);
            free(m);
            return tpi_err(err, TPI_ECOMM, "MPI_Init failed");
        }
        m->we_initialized = 1;
    }
    /* A duplicate keeps our traffic apart from the application's, and errors
     * return codes instead of aborting so we can name them. */
    MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    int wd_rc = tpi_watchdog_init(&m->wd, m->comm, opts->timeout_s);
    m->counts = calloc((size_t)c->size, sizeof *m->counts);
    m->displs = calloc((size_t)c->size, sizeof *m->displs);
    c->impl = m;
    c->ops = &mpi_ops;
    c->kind = "mpi";
    if (wd_rc || !m->counts || !m->displs) {
        mpi_free(c);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    /* Collective: every rank must ask for the same kind (tpinfer.h). */
    if (c->size > 1 && opts->allreduce == TPI_ALLREDUCE_AUTO)
        tpi_shm_create(&m->shm, m->comm);
    static const char *const wires[] = {"mpi", "mpi-bf16", "mpi-q8"};
    m->wire = opts->wire;
    c->wire = m->shm ? TPI_WIRE_F32 : opts->wire;
    c->allreduce = m->shm ? "shm" : wires[m->wire];
    *out = c;
    return 0;
}
