#include "comm/watchdog.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"

/* A wait this long starts answering censuses: shorter ones never call MPI
 * beyond their own test. */
#define ANSWER_AFTER_S 1e-3
/* How long a census waits for answers: every waiting rank answers within a
 * poll (microseconds to a few ms), so silence this long means not waiting. */
#define GRACE_S 0.5

enum { TAG_ASK = 1, TAG_ANSWER0 = 2 };

/* Answers of census `round` carry their own tag, so one that comes after
 * its census gave up is never read as the answer to a later one. */
static int answer_tag(uint64_t round)
{
    return TAG_ANSWER0 + (int)(round % 30000);
}

int tpi_watchdog_init(tpi_watchdog *wd, MPI_Comm world, double timeout_s)
{
    int size;
    *wd = (tpi_watchdog){.census = MPI_COMM_NULL, .timeout_s = timeout_s};
    MPI_Comm_size(world, &size);
    wd->heard = calloc((size_t)size, sizeof *wd->heard);
    wd->reqs = calloc((size_t)size, sizeof *wd->reqs);
    int ok = wd->heard && wd->reqs && MPI_Comm_dup(world, &wd->census) == MPI_SUCCESS;
    return ok ? 0 : TPI_ENOMEM;
}

void tpi_watchdog_free(tpi_watchdog *wd)
{
    if (wd->census != MPI_COMM_NULL)
        MPI_Comm_free(&wd->census);
    free(wd->heard);
    free(wd->reqs);
    *wd = (tpi_watchdog){.census = MPI_COMM_NULL};
}

void tpi_wait_begin(tpi_wait *w, tpi_comm *c, tpi_watchdog *wd, const char *what, int idle)
{
    wd->n_coll++;
    *w = (tpi_wait){.c = c, .wd = wd, .what = what, .mask = idle ? 0 : TPI_WATCH_POLLS - 1, .idle = idle};
}

/* Tells every rank that asks which collective this one waits in. */
static void answer(tpi_watchdog *wd)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, wd->census, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        uint64_t ask[2]; /* the asker's collective and census round */
        MPI_Request req;
        MPI_Recv(ask, 2, MPI_UINT64_T, st.MPI_SOURCE, TAG_ASK, wd->census, MPI_STATUS_IGNORE);
        MPI_Isend(&wd->n_coll, 1, MPI_UINT64_T, st.MPI_SOURCE, answer_tag(ask[1]), wd->census, &req);
        MPI_Request_free(&req);
    }
}

/* Asks every other rank which collective it waits in; heard[q] is its
 * answer, 0 for silence. Answers others' censuses meanwhile, so ranks that
 * time out together hear each other. */
static void census(tpi_wait *w)
{
    tpi_watchdog *wd = w->wd;
    int me = w->c->rank, size = w->c->size;
    static uint64_t ask[2]; /* read by sends that may outlive this call */
    ask[0] = wd->n_coll;
    ask[1] = ++wd->round;
    for (int q = 0; q < size; q++) {
        wd->heard[q] = 0;
        wd->reqs[q] = MPI_REQUEST_NULL;
        if (q != me)
            MPI_Irecv(&wd->heard[q], 1, MPI_UINT64_T, q, answer_tag(ask[1]), wd->census, &wd->reqs[q]);
    }
    for (int q = 0; q < size; q++) {
        MPI_Request req;
        if (q != me && MPI_Isend(ask, 2, MPI_UINT64_T, q, TAG_ASK, wd->census, &req) == MPI_SUCCESS)
            MPI_Request_free(&req);
    }
    double end = tpi_seconds() + (wd->timeout_s / 2 < GRACE_S ? wd->timeout_s / 2 : GRACE_S);
    for (int all = 0; !all && tpi_seconds() < end;) {
        answer(wd);
        MPI_Testall(size, wd->reqs, &all, MPI_STATUSES_IGNORE);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    for (int q = 0; q < size; q++) {
        if (wd->reqs[q] == MPI_REQUEST_NULL)
            continue;
        MPI_Status st;
        int cancelled = 0;
        MPI_Cancel(&wd->reqs[q]);
        MPI_Wait(&wd->reqs[q], &st);
        MPI_Test_cancelled(&st, &cancelled);
        if (cancelled)
            wd->heard[q] = 0;
    }
}

/* Appends ", q" (or "q" first) for each rank whose answer is 0, up to a
 * dozen; returns how many there are. */
static int list_silent(const tpi_wait *w, char *buf, size_t cap)
{
    int n = 0;
    size_t len = 0;
    buf[0] = 0;
    for (int q = 0; q < w->c->size; q++) {
        if (q == w->c->rank || w->wd->heard[q])
            continue;
        if (n < 12 && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%d", n ? ", " : "", q);
        else if (n == 12 && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, ", ...");
        n++;
    }
    return n;
}

/* The census after a time-out: names the silent ranks, or says that every
 * rank is alive but elsewhere. A lower rank that answered reports instead
 * (it waits too, so it times out too); this one waits one more time-out. */
static int judge(tpi_wait *w)
{
    tpi_comm *c = w->c;
    tpi_watchdog *wd = w->wd;
    census(w);
    int lowest = c->rank, other = -1;
    for (int q = c->size - 1; q >= 0; q--) {
        if (q != c->rank && wd->heard[q]) {
            lowest = q < lowest ? q : lowest;
            other = wd->heard[q] != wd->n_coll ? q : other;
        }
    }
    if (lowest < c->rank && !w->deferred) {
        w->deferred = 1;
        return 0;
    }
    char ranks[160];
    unsigned long long n = (unsigned long long)wd->n_coll;
    int silent = list_silent(w, ranks, sizeof ranks);
    if (silent)
        return tpi_comm_fail(c, TPI_ETIMEDOUT, "rank%s %s did not reach collective #%llu (%s) within %g s",
                             silent > 1 ? "s" : "", ranks, n, w->what, wd->timeout_s);
    if (other >= 0)
        return tpi_comm_fail(c, TPI_ETIMEDOUT,
                             "collective #%llu (%s) waited %g s on rank %d while rank %d waits in collective "
                             "#%llu: the ranks called different collectives",
                             n, w->what, wd->timeout_s, c->rank, other, (unsigned long long)wd->heard[other]);
    return tpi_comm_fail(c, TPI_ETIMEDOUT, "collective #%llu (%s): every rank waits in it after %g s (the transport "
                         "is stuck)", n, w->what, wd->timeout_s);
}

int tpi_wait_check(tpi_wait *w)
{
    tpi_comm *c = w->c;
    int code = atomic_load_explicit(&c->interrupt, memory_order_relaxed);
    if (code)
        return tpi_comm_fail(c, TPI_EINTR, "interrupted (code %d) in collective #%llu (%s)", code,
                             (unsigned long long)w->wd->n_coll, w->what);
    double now = tpi_seconds();
    if (!w->start) {
        w->start = now;
        return 0;
    }
    if (now - w->start < ANSWER_AFTER_S)
        return 0;
    answer(w->wd);
    double limit = w->wd->timeout_s * (1 + w->deferred);
    if (w->idle || w->wd->timeout_s <= 0 || now - w->start < limit)
        return 0;
    return judge(w);
}
