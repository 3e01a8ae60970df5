#ifndef TPI_SERVER_SERVER_H
#define TPI_SERVER_SERVER_H
/* The server's state (server.c) and the HTTP side over libmicrohttpd
 * (http.c, rank 0 only). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "server/engine.h"
#include "server/request.h"
#include "server/response.h"
#include "tpinfer.h"

struct MHD_Daemon;

struct tpi_server {
    tpi_model *m;
    tpi_comm *comm;
    int rank;
    int64_t ctx, vocab;
    srv_engine *engine;
    /* rank 0 */
    tpi_tokenizer *tok;
    tpi_chat_template *tmpl;   /* the model's template, else NULL */
    tpi_chat_format fmt;       /* the built-in format when there is no template */
    char no_chat[1200];       /* why chat answers 400 when neither */
    char *bos, *eos;           /* token strings the template may write */
    char *host, *api_key, *model_name;
    int port;                  /* the port bound */
    int64_t max_body;
    int timeout_s, max_connections;
    int64_t created;           /* Unix seconds, for ids and /v1/models */
    struct MHD_Daemon *mhd;
    void (*on_log)(void *user, const char *line);
    void *user;
    atomic_int engine_done;    /* srv_engine_run returned: nothing more comes */
    atomic_uint_fast64_t unique;
    atomic_int open_calls;     /* submitted requests whose HTTP request has not completed */
    pthread_mutex_t mu;        /* closing and hs */
    int closing;               /* no more submits */
    srv_http_stats hs;
};

/* Rank 0's log line, printf-style, through opts.on_log. */
void srv_log(tpi_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts libmicrohttpd on s->host:s->port (port -1: any free port; s->port
 * gets the one bound). TPI_EIO naming the address when it cannot bind. */
int srv_http_start(tpi_server *s, tpi_error *err);
/* Stops accepting, then waits for every connection to end. */
void srv_http_stop(tpi_server *s);

/* A request's prompt as token ids (malloc'd): the chat rendered with the
 * template or the built-in format, or the completion's text or ids.
 * TPI_EINVAL (a 400) naming what is wrong. */
int srv_prompt_ids(tpi_server *s, const srv_api_request *r, int32_t **ids, int64_t *n, tpi_error *err);
/* A token's text for logprobs (srv_token_text_fn; ctx is the server). */
char *srv_token_text(void *ctx, int32_t id);

#endif
