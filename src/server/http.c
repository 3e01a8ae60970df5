/* The HTTP side on rank 0, over libmicrohttpd in thread-per-connection mode:
 * each connection has its own thread, which may block waiting for the
 * engine's events (a non-streamed answer, the next SSE chunk) without
 * stalling other clients; the connection limit bounds the threads. The
 * engine calls on_event on its thread; a call's mutex and condition variable
 * hand the text over, and the call is freed when its last holder lets go
 * (the connection, the engine until its final event, a streamed response). */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "server/server.h"

#define WAIT_SLICE_MS 100 /* how often a waiting connection looks for a vanished client */
/* A stream with nothing to send for this long sends an SSE comment, so a
 * request waiting in the queue is not taken for an idle client. */
#define KEEPALIVE_MS 5000
#define DRAIN_MS 5000     /* how long stopping waits for open answers to be sent */

typedef struct srv_call {
    tpi_server *s;
    struct MHD_Connection *conn;
    int route, refs;
    char *body;
    size_t len, cap;
    int too_big;
    srv_api_request req;
    srv_resp_meta meta;
    uint64_t id;
    int submitted;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* from the engine, under mu: text and logprobs not yet taken */
    char *text;
    size_t text_len, text_cap;
    srv_logprob *lp;
    int n_lp, lp_cap;
    int ended, finish;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    char *error;
    /* the streamed answer: frames not yet sent, and how far it got */
    char *out;
    size_t out_len, out_at, text_sent;
    int sent_first, sent_final, gone;
} srv_call;

static srv_call *call_new(tpi_server *s, struct MHD_Connection *conn)
{
    srv_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->conn = conn;
    c->refs = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void call_release(srv_call *c)
{
    pthread_mutex_lock(&c->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    srv_request_free(&c->req);
    free(c->body);
    free(c->text);
    free(c->lp);
    free(c->error);
    free(c->out);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = need * 2 + 64;
    void *q = realloc(*p, cap2 * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

/* The engine's thread: keep what came and wake the connection. */
static void on_event(void *user, const srv_event *ev)
{
    srv_call *c = user;
    pthread_mutex_lock(&c->mu);
    if (ev->kind == SRV_EV_TEXT) {
        size_t lcap = (size_t)c->lp_cap;
        if (grow((void **)&c->text, &c->text_cap, c->text_len + ev->len + 1, 1) ||
            grow((void **)&c->lp, &lcap, (size_t)c->n_lp + (size_t)ev->n_lp, sizeof *c->lp)) {
            if (!c->error)
                c->error = strdup("out of memory keeping the output");
        } else {
            c->lp_cap = (int)lcap;
            memcpy(c->text + c->text_len, ev->text, ev->len);
            c->text_len += ev->len;
            if (ev->lp && ev->n_lp)
                memcpy(c->lp + c->n_lp, ev->lp, (size_t)ev->n_lp * sizeof *c->lp);
            c->n_lp += ev->lp ? ev->n_lp : 0;
        }
    } else {
        c->ended = 1;
        c->finish = ev->kind == SRV_EV_DONE ? ev->finish : 0;
        c->prompt_tokens = ev->prompt_tokens;
        c->completion_tokens = ev->completion_tokens;
        c->cached_tokens = ev->cached_tokens;
        if (ev->kind == SRV_EV_ERROR && !c->error)
            c->error = strdup(ev->error ? ev->error : "generation failed");
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (ev->kind != SRV_EV_TEXT)
        call_release(c);
}

/* 1 when the client closed or reset its end (a read would give EOF). */
static int client_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Waits (mu held) until the engine sent something or the request ended; 0,
 * 1 when max_ms passed first (max_ms > 0), or -1 when the client went away
 * (the request is then cancelled). */
static int wait_event(srv_call *c, size_t have_text, int max_ms)
{
    for (int waited = 0; !c->ended && c->text_len == have_text && !c->error; waited += WAIT_SLICE_MS) {
        if (max_ms > 0 && waited >= max_ms)
            return 1;
        if (atomic_load(&c->s->engine_done)) { /* stopped before it reported: never will */
            c->ended = 1;
            c->finish = SRV_FINISH_CANCELLED;
            break;
        }
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += WAIT_SLICE_MS * 1000000L;
        t.tv_sec += t.tv_nsec / 1000000000L;
        t.tv_nsec %= 1000000000L;
        if (pthread_cond_timedwait(&c->cv, &c->mu, &t) == ETIMEDOUT && client_gone(c->conn)) {
            c->gone = 1;
            return -1;
        }
    }
    return 0;
}

static void cancel_gone(srv_call *c)
{
    srv_engine_cancel(c->s->engine, c->id);
    pthread_mutex_lock(&c->s->mu);
    c->s->hs.disconnects++;
    pthread_mutex_unlock(&c->s->mu);
}

static void count_status(tpi_server *s, unsigned status)
{
    pthread_mutex_lock(&s->mu);
    if (status < 300)
        s->hs.responses_2xx++;
    else if (status < 500)
        s->hs.responses_4xx++;
    else
        s->hs.responses_5xx++;
    if (status == 503)
        s->hs.rejected_queue_full++;
    pthread_mutex_unlock(&s->mu);
}

/* Queues body (taken; NULL is an out-of-memory 500) with its status. */
static enum MHD_Result answer(srv_call *c, unsigned status, const char *type, char *body)
{
    static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":500}}";
    struct MHD_Response *r;
    if (body) {
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    } else {
        status = 500;
        type = "application/json";
        r = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 503)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ok = MHD_queue_response(c->conn, status, r);
    MHD_destroy_response(r);
    count_status(c->s, status);
    return ok;
}

static enum MHD_Result answer_error(srv_call *c, unsigned status, const char *msg, const char *param)
{
    return answer(c, status, "application/json", srv_error_json((int)status, msg, param));
}

/* ---- streaming ---- */

/* Appends the n bytes of f (taken) to the frames to send. */
static int out_add(srv_call *c, char *f)
{
    if (!f)
        return -1;
    size_t n = strlen(f), cap = c->out_len + 1;
    if (c->out_at == c->out_len)
        c->out_at = c->out_len = 0;
    int rc = grow((void **)&c->out, &cap, c->out_len + n + 1, 1);
    if (!rc) {
        memcpy(c->out + c->out_len, f, n);
        c->out_len += n;
    }
    free(f);
    return rc;
}

/* Waits for the next events and turns them into frames. -1 ends the stream
 * with an error (the client went away, out of memory). */
static int stream_next(srv_call *c)
{
    if (!c->sent_first) { /* chat's first chunk names the role; completions have none */
        c->sent_first = 1;
        if (c->route == SRV_ROUTE_CHAT)
            return out_add(c, srv_sse_first(&c->meta));
    }
    pthread_mutex_lock(&c->mu);
    int w = wait_event(c, c->text_sent, KEEPALIVE_MS);
    if (w < 0) {
        pthread_mutex_unlock(&c->mu);
        cancel_gone(c);
        return -1;
    }
    if (w > 0) { /* queued or behind long prompts: an SSE comment keeps the connection from timing out */
        pthread_mutex_unlock(&c->mu);
        return out_add(c, strdup(": keep-alive\n\n"));
    }
    srv_resp_part p = {.text = c->text + c->text_sent, .len = c->text_len - c->text_sent, .lp = c->lp,
                       .n_lp = c->n_lp, .finish = c->finish, .prompt_tokens = c->prompt_tokens,
                       .completion_tokens = c->completion_tokens, .cached_tokens = c->cached_tokens};
    int rc = 0, ended = c->ended || c->error;
    if (p.len || p.n_lp)
        rc = out_add(c, srv_sse_text(&c->meta, &p, c->text_sent, srv_token_text, c->s));
    c->text_sent = c->text_len;
    c->n_lp = 0;
    if (!rc && ended && c->error) {
        rc = out_add(c, srv_sse_error(c->error));
        if (!rc)
            rc = out_add(c, strdup("data: [DONE]\n\n"));
        c->sent_final = 1;
    } else if (!rc && c->ended) {
        rc = out_add(c, srv_sse_final(&c->meta, &p));
        c->sent_final = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_call *c = cls;
    while (c->out_at == c->out_len) {
        if (c->sent_final)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (stream_next(c))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->out_len - c->out_at < max ? c->out_len - c->out_at : max;
    memcpy(buf, c->out + c->out_at, n);
    c->out_at += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    call_release(cls);
}

static enum MHD_Result answer_stream(srv_call *c)
{
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, c, stream_free);
    if (!r)
        return MHD_NO;
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ok = MHD_queue_response(c->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    count_status(c->s, 200);
    return ok;
}

/* ---- a whole answer ---- */

static enum MHD_Result answer_whole(srv_call *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->ended && !c->error)
        if (wait_event(c, c->text_len, 0) < 0) {
            pthread_mutex_unlock(&c->mu);
            cancel_gone(c);
            return MHD_NO; /* nobody to answer */
        }
    srv_resp_part p = {.text = c->text, .len = c->text_len, .lp = c->lp, .n_lp = c->n_lp, .finish = c->finish,
                       .prompt_tokens = c->prompt_tokens, .completion_tokens = c->completion_tokens,
                       .cached_tokens = c->cached_tokens};
    char *body = c->error ? NULL : srv_completion_json(&c->meta, &p, srv_token_text, c->s);
    char msg[600];
    snprintf(msg, sizeof msg, "%s", c->error ? c->error : "");
    pthread_mutex_unlock(&c->mu);
    if (msg[0])
        return answer_error(c, 500, msg, NULL);
    return answer(c, 200, "application/json", body);
}

/* ---- completions and chat ---- */

static unsigned submit_status(int rc)
{
    return rc == TPI_ELIMIT ? 503 : rc == TPI_EINVAL ? 400 : 500;
}

static enum MHD_Result handle_generate(srv_call *c)
{
    tpi_server *s = c->s;
    tpi_error err = {0};
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = srv_request_parse(&c->req, c->route, c->body ? c->body : "", c->len, s->vocab, &err);
    if (!rc)
        rc = srv_prompt_ids(s, &c->req, &ids, &n, &err);
    srv_params *p = &c->req.p;
    if (!rc && n + (p->max_tokens ? p->max_tokens : 1) > s->ctx)
        rc = tpi_err(&err, TPI_EINVAL, "the prompt (%lld tokens) plus max_tokens (%lld) exceed the context of %lld tokens",
                     (long long)n, (long long)(p->max_tokens ? p->max_tokens : 1), (long long)s->ctx);
    if (rc) {
        free(ids);
        return answer_error(c, rc == TPI_ENOMEM ? 500 : 400, err.msg, c->req.bad_param);
    }
    if (!p->max_tokens)
        p->max_tokens = s->ctx - n;
    uint64_t unique = atomic_fetch_add(&s->unique, 1);
    if (!c->req.seed_given)
        p->sampling.seed = unique * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    srv_resp_meta_init(&c->meta, c->route, unique, (int64_t)time(NULL), s->model_name, c->req.include_usage);
    pthread_mutex_lock(&c->mu);
    c->refs++; /* the engine's, until its final event */
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&s->mu);
    rc = s->closing ? tpi_err(&err, TPI_ELIMIT, "the server is shutting down")
                    : srv_engine_submit(s->engine, ids, n, p, on_event, c, &c->id, &err);
    pthread_mutex_unlock(&s->mu);
    free(ids);
    if (rc) {
        call_release(c);
        return answer_error(c, submit_status(rc), err.msg, rc == TPI_EINVAL ? "max_tokens" : NULL);
    }
    c->submitted = 1;
    atomic_fetch_add(&s->open_calls, 1);
    return c->req.stream ? answer_stream(c) : answer_whole(c);
}

/* ---- routing ---- */

/* Constant time in the key's length, so the time taken tells nothing of
 * how much of a guess was right. */
static int key_ok(const char *given, const char *key)
{
    size_t n = strlen(key), g = given ? strlen(given) : 0;
    unsigned char d = g != n;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(key[i] ^ (i < g ? given[i] : 0));
    return !d;
}

static int authorized(srv_call *c)
{
    if (!c->s->api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return h && !strncmp(h, "Bearer ", 7) && key_ok(h + 7, c->s->api_key);
}

static enum MHD_Result answer_get(srv_call *c, const char *url)
{
    tpi_server *s = c->s;
    if (!strcmp(url, "/health"))
        return answer(c, 200, "application/json", strdup("{\"status\":\"ok\"}"));
    if (!strcmp(url, "/v1/models"))
        return answer(c, 200, "application/json", srv_models_json(s->model_name, s->created, s->ctx));
    srv_stats st;
    srv_engine_stats(s->engine, &st);
    pthread_mutex_lock(&s->mu);
    srv_http_stats hs = s->hs;
    pthread_mutex_unlock(&s->mu);
    return answer(c, 200, "text/plain; version=0.0.4", srv_metrics_text(&st, &hs));
}

/* The route of url and whether method fits it: 1 GET, 2 POST; 0 unknown
 * path (404), -1 a known path with another method (405). */
static int route_of(const char *url, const char *method, int *route)
{
    static const struct { const char *url; int post, route; } routes[] = {
        {"/health", 0, 0}, {"/v1/models", 0, 0}, {"/metrics", 0, 0},
        {"/v1/chat/completions", 1, SRV_ROUTE_CHAT}, {"/v1/completions", 1, SRV_ROUTE_COMPLETION},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].url)) {
            *route = routes[i].route;
            if (!strcmp(method, routes[i].post ? "POST" : "GET"))
                return routes[i].post ? 2 : 1;
            return -1;
        }
    return 0;
}

/* The first call, on the headers: everything that needs no body. Returns
 * 1 when it answered (*res set), 0 to read the body. */
static int on_headers(srv_call *c, const char *url, const char *method, enum MHD_Result *res)
{
    char msg[160];
    int kind = route_of(url, method, &c->route);
    if (kind <= 0) {
        snprintf(msg, sizeof msg, kind ? "%.16s is not allowed on %.64s" : "no route %.16s %.64s", method, url);
        *res = answer_error(c, kind ? 405 : 404, msg, NULL);
        return 1;
    }
    if (!strncmp(url, "/v1/", 4) && !authorized(c)) {
        *res = answer_error(c, 401, "a valid API key is required (Authorization: Bearer KEY)", NULL);
        return 1;
    }
    if (kind == 1) {
        *res = answer_get(c, url);
        return 1;
    }
    /* A client that waits for "100 Continue" is told at once; one that sends
     * anyway is read to the end first (on_body), so that it reads the 413
     * rather than a reset. */
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *expect = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if (cl && expect && strtoull(cl, NULL, 10) > (unsigned long long)c->s->max_body) {
        snprintf(msg, sizeof msg, "the request body (%.24s bytes) is over the limit of %lld bytes", cl,
                 (long long)c->s->max_body);
        *res = answer_error(c, 413, msg, NULL);
        return 1;
    }
    return 0;
}

/* A chunk of the body: kept up to the limit; past it, read and dropped
 * until the end (MHD cannot answer mid-upload), then 413; past 16 times the
 * limit the connection is closed. */
static int on_body(srv_call *c, const char *data, size_t n)
{
    if (c->too_big || c->len + n > (size_t)c->s->max_body) {
        c->too_big = 1;
        c->len += n;
        return c->len > 16 * (size_t)c->s->max_body ? -1 : 0; /* a flood: close the connection */
    }
    if (grow((void **)&c->body, &c->cap, c->len + n + 1, 1))
        return -1;
    memcpy(c->body + c->len, data, n);
    c->len += n;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    srv_call *c = *con_cls;
    if (!c) {
        if (!(c = call_new(cls, conn)))
            return MHD_NO;
        *con_cls = c;
        enum MHD_Result res;
        return on_headers(c, url, method, &res) ? res : MHD_YES;
    }
    if (*upload_data_size) {
        int rc = on_body(c, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc ? MHD_NO : MHD_YES;
    }
    if (c->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is over the limit of %lld bytes", (long long)c->s->max_body);
        return answer_error(c, 413, msg, NULL);
    }
    return handle_generate(c);
}

/* The request ended: normally, or the client went away or timed out, which
 * cancels what it asked for. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn;
    srv_call *c = *con_cls;
    if (!c)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && c->submitted) {
        pthread_mutex_lock(&c->mu);
        int open = !c->ended && !c->gone;
        pthread_mutex_unlock(&c->mu);
        if (open)
            cancel_gone(c);
    }
    if (c->submitted)
        atomic_fetch_sub(&c->s->open_calls, 1);
    *con_cls = NULL;
    call_release(c);
}

static int resolve(tpi_server *s, struct sockaddr_storage *addr, socklen_t *len, tpi_error *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port < 0 ? 0 : s->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(s->host, port, &hints, &ai);
    if (rc || !ai)
        return tpi_err(err, TPI_EINVAL, "host \"%s\": %s", s->host, rc ? gai_strerror(rc) : "no address");
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int srv_http_start(tpi_server *s, tpi_error *err)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int rc = resolve(s, &addr, &alen, err);
    if (rc)
        return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO | MHD_USE_ITC;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)s->max_connections, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_END);
    if (!s->mhd)
        return tpi_err(err, TPI_EIO, "cannot listen on %s:%d (address in use, or not this machine's?)", s->host,
                       s->port < 0 ? 0 : s->port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (di)
        s->port = di->port;
    return 0;
}

void srv_http_stop(tpi_server *s)
{
    if (!s->mhd)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    /* Stopping the daemon shuts every socket down: let the answers the
     * engine has ended (their last chunk, [DONE]) reach their clients. */
    for (int i = 0; i < DRAIN_MS / 10 && atomic_load(&s->open_calls) > 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
    MHD_stop_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->mhd = NULL;
}
