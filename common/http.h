/* http: a thin libmicrohttpd server (epoll, internal thread pool, suspend/resume) shared by
 * the services. It accumulates each request body up to a bound, dispatches method + path to
 * a handler, and lets the handler answer later from ANY thread: the connection is suspended
 * meanwhile, so thousands of requests can wait (e.g. for a Kafka delivery report) without
 * holding a thread each. Built in: GET /healthz, /readyz (readiness callback), /metrics.
 * Used for every service's admin port (the ingress's directly, with its not-ready reason; the
 * worker's and notifier's via admin_http.h), so /readyz and /metrics are answered here only.
 * The ingress's platform port does not use it: ingress/server.c drives libmicrohttpd from the
 * event loop (ingress.threads = 1) with its own body buffering and a public /healthz, which
 * answers CQ_HTTP_HEALTHZ_BODY like the built-in one. */
#ifndef CQ_HTTP_H
#define CQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

/* What GET /healthz answers (200, text/plain) on every port of every service: the process
 * is alive. One definition, so a liveness probe reads the same on the admin and public ports. */
#define CQ_HTTP_HEALTHZ_BODY "ok\n"

struct cq_http_server;
/* One request/response. Owned by the server; valid from the handler call until the handler
 * (or anyone it handed x to) calls cq_http_respond, and not after. */
struct cq_http_exchange;

/* Runs on an MHD thread. Must eventually call cq_http_respond(x, ...) exactly once, either
 * before returning or later from any thread. Must not block for long. */
typedef void (*cq_http_handler)(struct cq_http_exchange *x, void *arg);
/* Readiness for GET /readyz; runs on an MHD thread, must not block. */
typedef bool (*cq_http_ready_fn)(void *arg);

struct cq_http_route {
    const char *method; /* "POST", "GET", ... */
    const char *path;   /* exact match, query string excluded */
    cq_http_handler handler;
    void *arg;
};

struct cq_http_options {
    const char *listen;       /* IPv4 address, NULL = 0.0.0.0 */
    int port;                 /* 0 = an ephemeral port (see cq_http_server_port) */
    int threads;              /* MHD thread pool size, >= 1 */
    size_t max_body;          /* bodies over this get 413 (0 = 64 KiB) */
    unsigned max_connections; /* 0 = 16384 */
    cq_http_ready_fn ready;   /* NULL = always ready */
    void *ready_arg;
    /* Optional: why not ready (one line, no newline), appended to /readyz's 503 body as
     * "not ready: <reason>". Runs on an MHD thread right after ready() said false; must not
     * block; the string must stay valid (static or set once). NULL = no reason. */
    const char *(*ready_reason)(void *arg);
};

/* Starts listening. routes (n_routes entries) are copied (the strings are borrowed and must
 * outlive the server; the built-in paths must not be reused). Returns a new server or NULL
 * with err set (bad address, port in use, ENOMEM). */
struct cq_http_server *cq_http_server_new(const struct cq_http_options *opt,
                                          const struct cq_http_route *routes, size_t n_routes,
                                          struct cq_err *err);
/* The bound port (useful with port 0). */
int cq_http_server_port(const struct cq_http_server *s);
/* Exchanges handed to handlers (or waiting to be queued) and not yet answered. Thread-safe. */
int cq_http_server_inflight(const struct cq_http_server *s);
/* Graceful stop, step 1: stops accepting connections (MHD_quiesce_daemon); requests that
 * arrive afterwards on kept-alive connections get 503 "shutting down" without reaching a
 * handler; every later answer carries Connection: close. Exchanges already handed out must
 * still be answered. Idempotent; any thread. */
void cq_http_server_quiesce(struct cq_http_server *s);
/* Step 2: quiesces, waits up to wait_ms for cq_http_server_inflight to reach 0 (it logs an
 * error if it does not: answers still owed then would crash MHD, so callers first make sure
 * every exchange was answered), stops the threads and frees. NULL is a no-op. */
void cq_http_server_free(struct cq_http_server *s, int wait_ms);

/* Request accessors (borrowed; valid until cq_http_respond). */
const char *cq_http_method(const struct cq_http_exchange *x);
const char *cq_http_path(const struct cq_http_exchange *x);
/* Header value by case-insensitive name, NULL when absent. */
const char *cq_http_header(const struct cq_http_exchange *x, const char *name);
/* The raw body, NUL-terminated for convenience (the NUL is not counted in *len). */
const char *cq_http_body(const struct cq_http_exchange *x, size_t *len);
/* Monotonic ms when the request's headers arrived. */
unsigned long long cq_http_started_ms(const struct cq_http_exchange *x);

/* Answers x; copies body (len bytes) and content_type (NULL = text/plain). Thread-safe; call
 * exactly once per exchange: x is invalid afterwards. */
void cq_http_respond(struct cq_http_exchange *x, unsigned status, const char *content_type,
                     const void *body, size_t len);
/* The same with one extra response header (name/value copied; name NULL = none). */
void cq_http_respond_h(struct cq_http_exchange *x, unsigned status, const char *content_type,
                       const void *body, size_t len, const char *hname, const char *hvalue);

#endif
