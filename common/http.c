/* http: libmicrohttpd server with suspend/resume (see http.h). An exchange moves
 * NEW -> HANDLING -> (answered during the handler) or SUSPENDED -> answered from any thread,
 * which resumes the connection; the MHD thread then queues the stored answer. A per-exchange
 * mutex orders "handler returned, suspend" against "answer arrived, resume". */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_MAX_CONNECTIONS 16384u

enum x_state { X_NEW, X_HANDLING, X_SUSPENDED, X_QUEUED };

struct cq_http_exchange {
    struct cq_http_server *s;
    struct MHD_Connection *c;
    const char *method, *path; /* MHD's, valid for the request */
    const struct cq_http_route *route;
    char *body;
    size_t len, cap;
    bool too_big;
    unsigned long long started_ms;
    pthread_mutex_t mu;
    enum x_state state;
    /* the answer */
    bool answered;
    unsigned status;
    char *resp, *ctype, *hname, *hvalue;
    size_t resp_len;
};

struct cq_http_server {
    struct MHD_Daemon *d;
    struct cq_http_route *routes;
    size_t n_routes;
    size_t max_body;
    cq_http_ready_fn ready;
    void *ready_arg;
    const char *(*ready_reason)(void *arg);
    int port;
    atomic_int inflight;
    atomic_bool draining;
    MHD_socket quiesced_fd;
    pthread_mutex_t quiesce_mu;
};

static unsigned long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

static void x_free(struct cq_http_exchange *x) {
    if (!x) return;
    free(x->body);
    free(x->resp);
    free(x->ctype);
    free(x->hname);
    free(x->hvalue);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Stores the answer (caller holds x->mu). Returns false on ENOMEM (then a bare 500 is used). */
static void store_answer(struct cq_http_exchange *x, unsigned status, const char *ctype,
                         const void *body, size_t len, const char *hname, const char *hvalue) {
    x->answered = true;
    x->status = status;
    x->resp = malloc(len ? len : 1);
    x->ctype = strdup(ctype ? ctype : "text/plain");
    if (hname) {
        x->hname = dup_or_null(hname);
        x->hvalue = dup_or_null(hvalue ? hvalue : "");
    }
    if (!x->resp || !x->ctype || (hname && (!x->hname || !x->hvalue))) {
        free(x->resp);
        free(x->hname);
        free(x->hvalue);
        x->resp = NULL;
        x->hname = x->hvalue = NULL;
        x->resp_len = 0;
        x->status = 500;
        return;
    }
    if (len) memcpy(x->resp, body, len);
    x->resp_len = len;
}

/* Queues the stored answer on the MHD thread; the exchange counts as done. */
static enum MHD_Result queue_answer(struct cq_http_exchange *x) {
    struct cq_http_server *s = x->s;
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;
    x->state = X_QUEUED;
    if (x->resp) {
        r = MHD_create_response_from_buffer(x->resp_len, x->resp, MHD_RESPMEM_MUST_FREE);
        if (r) x->resp = NULL; /* MHD owns it now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (r) {
        if (x->ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, x->ctype);
        if (x->hname) MHD_add_response_header(r, x->hname, x->hvalue);
        if (atomic_load(&s->draining))
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        ret = MHD_queue_response(x->c, x->status, r);
        MHD_destroy_response(r);
    }
    atomic_fetch_sub(&s->inflight, 1);
    return ret;
}

static void answer_text(struct cq_http_exchange *x, unsigned status, const char *text) {
    cq_http_respond(x, status, "text/plain", text, strlen(text));
}

static void builtin(struct cq_http_exchange *x, const char *path) {
    struct cq_http_server *s = x->s;
    if (strcmp(path, "/healthz") == 0) {
        answer_text(x, 200, CQ_HTTP_HEALTHZ_BODY);
    } else if (strcmp(path, "/readyz") == 0) {
        bool ok = s->ready ? s->ready(s->ready_arg) : true;
        const char *why = !ok && s->ready_reason ? s->ready_reason(s->ready_arg) : NULL;
        char line[320];
        if (ok && !atomic_load(&s->draining)) {
            answer_text(x, 200, "ready\n");
        } else if (atomic_load(&s->draining)) {
            answer_text(x, 503, "shutting down\n");
        } else {
            snprintf(line, sizeof(line), "not ready%s%s\n", why ? ": " : "", why ? why : "");
            answer_text(x, 503, line);
        }
    } else {
        /* What /readyz would answer now, so an alert can see a pod that is not ready (a
         * scrape reaches the admin port of a pod the Service no longer routes to). */
        bool ok = (s->ready ? s->ready(s->ready_arg) : true) && !atomic_load(&s->draining);
        cq_gauge_set(cq_gauge_get("chatops_ready",
                                  "1 when /readyz answers 200, 0 when it answers 503", NULL),
                     ok ? 1 : 0);
        size_t len = 0;
        char *m = cq_metrics_render(&len);
        if (!m) {
            answer_text(x, 500, "out of memory\n");
            return;
        }
        cq_http_respond(x, 200, "text/plain; version=0.0.4", m, len);
        free(m);
    }
}

static bool is_builtin(const char *path) {
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           strcmp(path, "/metrics") == 0;
}

/* Dispatches a complete request: built-ins, 404, 405 (with Allow), 413, or the handler. */
static void dispatch(struct cq_http_exchange *x) {
    struct cq_http_server *s = x->s;
    if (atomic_load(&s->draining)) {
        answer_text(x, 503, "shutting down: retry on another instance\n");
        return;
    }
    if (x->too_big) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body over the %zu-byte limit\n", s->max_body);
        answer_text(x, 413, msg);
        return;
    }
    if (is_builtin(x->path)) {
        if (strcmp(x->method, "GET") != 0 && strcmp(x->method, "HEAD") != 0) {
            cq_http_respond_h(x, 405, "text/plain", "method not allowed: use GET\n", 28, "Allow",
                              "GET");
            return;
        }
        builtin(x, x->path);
        return;
    }
    if (x->route) {
        x->route->handler(x, x->route->arg);
        return;
    }
    char allow[128] = "";
    size_t off = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, x->path) != 0) continue;
        int n = snprintf(allow + off, sizeof(allow) - off, "%s%s", off ? ", " : "",
                         s->routes[i].method);
        if (n < 0 || (size_t)n >= sizeof(allow) - off) break;
        off += (size_t)n;
    }
    if (off) {
        char msg[192];
        snprintf(msg, sizeof(msg), "method not allowed: use %s\n", allow);
        cq_http_respond_h(x, 405, "text/plain", msg, strlen(msg), "Allow", allow);
        return;
    }
    answer_text(x, 404, "not found\n");
}

static enum MHD_Result first_call(struct cq_http_server *s, struct MHD_Connection *c,
                                  const char *url, const char *method, void **state) {
    struct cq_http_exchange *x = calloc(1, sizeof *x);
    if (!x) return MHD_NO;
    if (pthread_mutex_init(&x->mu, NULL) != 0) {
        free(x);
        return MHD_NO;
    }
    x->s = s;
    x->c = c;
    x->method = method;
    x->path = url;
    x->started_ms = mono_ms();
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, url) == 0 && strcmp(s->routes[i].method, method) == 0) {
            x->route = &s->routes[i];
            break;
        }
    }
    *state = x;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > s->max_body) {
            /* Answer before reading the body (MHD then skips "100 Continue" and closes). */
            char msg[96];
            struct MHD_Response *r;
            enum MHD_Result ret = MHD_NO;
            int len =
                snprintf(msg, sizeof(msg), "request body over the %zu-byte limit\n", s->max_body);
            x->state = X_QUEUED;
            r = MHD_create_response_from_buffer((size_t)len, msg, MHD_RESPMEM_MUST_COPY);
            if (!r) return MHD_NO;
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            ret = MHD_queue_response(c, 413, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (end != cl && n > 0 && x->route) {
            x->body = malloc((size_t)n + 1);
            if (!x->body) return MHD_NO;
            x->cap = (size_t)n + 1;
        }
    }
    return MHD_YES;
}

static bool append(struct cq_http_exchange *x, const char *data, size_t n) {
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 1024;
        while (cap < x->len + n + 1)
            cap *= 2;
        if (cap > x->s->max_body + 1) cap = x->s->max_body + 1;
        char *b = realloc(x->body, cap);
        if (!b) return false;
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = '\0';
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state) {
    struct cq_http_server *s = cls;
    struct cq_http_exchange *x = *state;
    (void)version;
    if (!x) return first_call(s, c, url, method, state);
    if (x->state == X_QUEUED) return MHD_YES; /* early 413: nothing more to do */
    if (*upload_len) {
        size_t n = *upload_len;
        *upload_len = 0;
        if (x->too_big) return MHD_YES; /* discard the rest, answer 413 at the end */
        if (x->len + n > s->max_body) {
            x->too_big = true;
            free(x->body);
            x->body = NULL;
            x->len = x->cap = 0;
            return MHD_YES;
        }
        if (!x->route && !is_builtin(url)) return MHD_YES; /* 404/405 follows: no need to keep */
        return append(x, upload, n) ? MHD_YES : MHD_NO;
    }
    if (x->state == X_NEW) {
        atomic_fetch_add(&s->inflight, 1);
        pthread_mutex_lock(&x->mu);
        x->state = X_HANDLING;
        pthread_mutex_unlock(&x->mu);
        if (!x->body && !append(x, "", 0)) { /* always hand out a NUL-terminated body */
            pthread_mutex_lock(&x->mu);
            if (!x->answered) store_answer(x, 500, "text/plain", "out of memory\n", 14, NULL, NULL);
            pthread_mutex_unlock(&x->mu);
        } else {
            dispatch(x);
        }
        pthread_mutex_lock(&x->mu);
        if (x->answered) {
            enum MHD_Result ret = queue_answer(x);
            pthread_mutex_unlock(&x->mu);
            return ret;
        }
        MHD_suspend_connection(c);
        x->state = X_SUSPENDED;
        pthread_mutex_unlock(&x->mu);
        return MHD_YES;
    }
    /* resumed: the answer is there (we only resume after storing it) */
    pthread_mutex_lock(&x->mu);
    enum MHD_Result ret = x->answered && x->state != X_QUEUED ? queue_answer(x) : MHD_YES;
    pthread_mutex_unlock(&x->mu);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe) {
    struct cq_http_exchange *x = *state;
    (void)cls;
    (void)c;
    (void)toe;
    if (!x) return;
    if (x->state == X_HANDLING || x->state == X_SUSPENDED) {
        /* The connection died with the exchange still owned by a handler: cannot happen
         * while suspended (MHD does not watch suspended sockets); log rather than free. */
        cq_error(NULL, "http: %s %s ended before it was answered", x->method, x->path);
        return;
    }
    x_free(x);
    *state = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char buf[512];
    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    cq_warn(NULL, "http: %s", buf);
}

struct cq_http_server *cq_http_server_new(const struct cq_http_options *opt,
                                          const struct cq_http_route *routes, size_t n_routes,
                                          struct cq_err *err) {
    struct cq_http_server *s = calloc(1, sizeof *s);
    struct sockaddr_in sa = {0};
    const char *listen = opt && opt->listen ? opt->listen : "0.0.0.0";
    int port = opt ? opt->port : 0;
    int threads = opt && opt->threads > 0 ? opt->threads : 1;
    if (!s) {
        cq_err_set(err, CQ_ENOMEM, "http: out of memory");
        return NULL;
    }
    s->quiesced_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&s->quiesce_mu, NULL);
    atomic_init(&s->inflight, 0);
    atomic_init(&s->draining, false);
    s->max_body = opt && opt->max_body ? opt->max_body : DEFAULT_MAX_BODY;
    s->ready = opt ? opt->ready : NULL;
    s->ready_arg = opt ? opt->ready_arg : NULL;
    s->ready_reason = opt ? opt->ready_reason : NULL;
    if (n_routes) {
        s->routes = calloc(n_routes, sizeof *s->routes);
        if (!s->routes) {
            cq_err_set(err, CQ_ENOMEM, "http: out of memory");
            goto out;
        }
        memcpy(s->routes, routes, n_routes * sizeof *routes);
        s->n_routes = n_routes;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port < 0 || port > 65535 || inet_pton(AF_INET, listen, &sa.sin_addr) != 1) {
        cq_err_set(err, CQ_ECONFIG, "http: bad listen address '%s' port %d", listen, port);
        goto out;
    }
    unsigned maxc = opt && opt->max_connections ? opt->max_connections : DEFAULT_MAX_CONNECTIONS;
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s}, /* first, or MHD prints itself */
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)maxc, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, ops,
                            MHD_OPTION_END);
    if (!s->d) {
        cq_err_set(err, CQ_EIO, "http: cannot listen on %s:%d", listen, port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    return s;
out:
    pthread_mutex_destroy(&s->quiesce_mu);
    free(s->routes);
    free(s);
    return NULL;
}

int cq_http_server_port(const struct cq_http_server *s) {
    return s ? s->port : 0;
}

int cq_http_server_inflight(const struct cq_http_server *s) {
    return s ? atomic_load(&((struct cq_http_server *)s)->inflight) : 0;
}

void cq_http_server_quiesce(struct cq_http_server *s) {
    if (!s) return;
    atomic_store(&s->draining, true);
    pthread_mutex_lock(&s->quiesce_mu);
    if (s->quiesced_fd == MHD_INVALID_SOCKET) s->quiesced_fd = MHD_quiesce_daemon(s->d);
    pthread_mutex_unlock(&s->quiesce_mu);
}

void cq_http_server_free(struct cq_http_server *s, int wait_ms) {
    if (!s) return;
    cq_http_server_quiesce(s);
    unsigned long long deadline = mono_ms() + (unsigned long long)(wait_ms > 0 ? wait_ms : 0);
    while (atomic_load(&s->inflight) > 0 && mono_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->inflight) > 0)
        cq_error(NULL, "http: stopping with %d request(s) still unanswered",
                 atomic_load(&s->inflight));
    MHD_stop_daemon(s->d);
    if (s->quiesced_fd != MHD_INVALID_SOCKET) close(s->quiesced_fd);
    pthread_mutex_destroy(&s->quiesce_mu);
    free(s->routes);
    free(s);
}

const char *cq_http_method(const struct cq_http_exchange *x) {
    return x->method;
}
const char *cq_http_path(const struct cq_http_exchange *x) {
    return x->path;
}

const char *cq_http_header(const struct cq_http_exchange *x, const char *name) {
    return MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, name);
}

const char *cq_http_body(const struct cq_http_exchange *x, size_t *len) {
    if (len) *len = x->len;
    return x->body ? x->body : "";
}

unsigned long long cq_http_started_ms(const struct cq_http_exchange *x) {
    return x->started_ms;
}

void cq_http_respond_h(struct cq_http_exchange *x, unsigned status, const char *content_type,
                       const void *body, size_t len, const char *hname, const char *hvalue) {
    pthread_mutex_lock(&x->mu);
    if (x->answered) { /* a second answer is a caller bug: keep the first */
        pthread_mutex_unlock(&x->mu);
        cq_error(NULL, "http: %s %s answered twice", x->method, x->path);
        return;
    }
    store_answer(x, status, content_type, body, len, hname, hvalue);
    if (x->state == X_SUSPENDED) MHD_resume_connection(x->c);
    pthread_mutex_unlock(&x->mu);
}

void cq_http_respond(struct cq_http_exchange *x, unsigned status, const char *content_type,
                     const void *body, size_t len) {
    cq_http_respond_h(x, status, content_type, body, len, NULL, NULL);
}
