/* httpc: curl multi on the libuv loop (see httpc.h). curl tells us which sockets
 * to watch (on_socket -> one uv_poll_t each) and when to wake it (on_curl_timer ->
 * one uv_timer_t); we feed events back with curl_multi_socket_action and hand
 * finished transfers to their callbacks in dispatch().
 * A socket's uv_poll_t lives as long as the socket (curl closes it through
 * on_close_socket), not as long as one transfer: curl drops a kept-alive connection from
 * its watch list after every transfer and asks for it again on the next, and a new
 * uv_poll_t per transfer cost ~7 epoll_ctl/ioctl calls. Between transfers the socket stays
 * registered for reading ("parked"); an event there (the server closed it) stops the watch,
 * and curl finds the connection dead when it next checks it. */
#include "httpc.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (1024u * 1024u)
#define DEFAULT_MAX_CONNECTIONS 64
#define MAX_CONNECT_TIMEOUT_MS 10000

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct cq_httpc *h;
    struct sock *prev, *next;
    int events;  /* the mask the poll handle runs with (0: stopped) */
    bool parked; /* curl is not watching it now (between two transfers) */
};

struct xfer {
    struct xfer *prev, *next;
    struct cq_httpc *h;
    CURL *easy;
    struct curl_slist *hdrs;
    cq_http_cb cb;
    void *opaque;
    char *buf;
    size_t len, cap, max;
    int timeout_ms;
    bool too_big, oom;
    char errbuf[CURL_ERROR_SIZE];
};

struct cq_httpc {
    uv_loop_t *uv;
    CURLM *multi;
    uv_timer_t timer;
    struct xfer *xfers;
    struct sock *socks;
    struct sock **byfd; /* socket -> its record, for a socket curl asks for again */
    bool *opened;       /* socket -> opened by on_open_socket (closed by on_close_socket) */
    size_t nbyfd;
    int inflight;
    int dispatching;
    bool closing;
    bool free_requested;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool curl_ready(void) {
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK;
}

static void real_free(struct cq_httpc *h);

/* ---- finishing a transfer ---- */

static char *header_dup(CURL *easy, const char *name) {
    struct curl_header *hd = NULL;
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd->value)
        return NULL;
    return strdup(hd->value); /* NULL on out of memory: reported as an absent header */
}

static void xfer_unlink(struct cq_httpc *h, struct xfer *x) {
    if (x->prev)
        x->prev->next = x->next;
    else
        h->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
    h->inflight--;
}

static void xfer_free(struct xfer *x) {
    if (!x) return;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->buf);
    free(x);
}

/* Calls x's callback with the outcome and frees x. x must already be out of the multi
 * handle. shutdown: cancelled by cq_httpc_free. */
static void finish(struct cq_httpc *h, struct xfer *x, CURLcode result, bool shutdown) {
    static char empty[1];
    struct cq_http_response resp;
    memset(&resp, 0, sizeof(resp));
    xfer_unlink(h, x);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &resp.total_s);
    if (x->buf) {
        x->buf[x->len] = '\0';
        resp.body = x->buf;
        resp.body_len = x->len;
    } else {
        empty[0] = '\0';
        resp.body = empty;
    }
    /* Certainly not sent: no connection, or the time ran out before the request went
     * out (pre-transfer time is set just before it is sent). Anything else may have
     * reached the server. */
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    resp.unsent = result == CURLE_COULDNT_RESOLVE_HOST || result == CURLE_COULDNT_RESOLVE_PROXY ||
                  result == CURLE_COULDNT_CONNECT ||
                  ((result == CURLE_OPERATION_TIMEDOUT || shutdown) && pretransfer == 0);
    if (shutdown) {
        resp.rc = CQ_ESHUTDOWN;
        snprintf(resp.errmsg, sizeof(resp.errmsg), "http client shutting down");
    } else if (result == CURLE_OK) {
        resp.rc = CQ_OK;
        resp.retry_after = header_dup(x->easy, "Retry-After");
        resp.ratelimit_reset = header_dup(x->easy, "x-ogw-ratelimit-reset");
    } else if (result == CURLE_OPERATION_TIMEDOUT) {
        resp.rc = CQ_ETIMEOUT;
        snprintf(resp.errmsg, sizeof(resp.errmsg), "http request timed out after %d ms",
                 x->timeout_ms);
    } else if (x->too_big || result == CURLE_FILESIZE_EXCEEDED) {
        resp.rc = CQ_EHTTP;
        snprintf(resp.errmsg, sizeof(resp.errmsg), "response too large (limit %zu bytes)", x->max);
    } else if (x->oom) {
        resp.rc = CQ_ENOMEM;
        snprintf(resp.errmsg, sizeof(resp.errmsg), "out of memory reading the response");
    } else {
        resp.rc = CQ_EHTTP;
        snprintf(resp.errmsg, sizeof(resp.errmsg), "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(result));
    }
    x->cb(x->opaque, &resp);
    free(resp.retry_after);
    free(resp.ratelimit_reset);
    xfer_free(x);
}

static void dispatch(struct cq_httpc *h) {
    CURLMsg *msg;
    int left;
    h->dispatching++;
    while (!h->free_requested && (msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result; /* msg is invalid after remove_handle */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        curl_multi_remove_handle(h->multi, easy);
        if (priv) finish(h, (struct xfer *)priv, result, false);
    }
    h->dispatching--;
    if (h->dispatching == 0 && h->free_requested) real_free(h);
}

/* ---- curl <-> libuv ---- */

static void on_poll(uv_poll_t *p, int status, int events) {
    struct sock *k = p->data;
    struct cq_httpc *h = k->h;
    int flags = 0, running;
    if (k->parked || status < 0) {
        /* parked: EOF or stray bytes on an idle connection, which curl's check before reuse
         * will find; an error stopped the handle (libuv did): say so to curl below */
        uv_poll_stop(&k->poll);
        k->events = 0;
        if (k->parked) return;
    }
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(h->multi, k->fd, flags, &running);
    dispatch(h);
}

static void on_uv_timeout(uv_timer_t *t) {
    struct cq_httpc *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    dispatch(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    struct cq_httpc *h = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0 fires on the next loop turn, never re-entrantly */
        uv_timer_start(&h->timer, on_uv_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void sock_closed(uv_handle_t *hd) {
    free(hd->data);
}

static void sock_close(struct cq_httpc *h, struct sock *k) {
    if (k->prev)
        k->prev->next = k->next;
    else
        h->socks = k->next;
    if (k->next) k->next->prev = k->prev;
    if (k->fd >= 0 && (size_t)k->fd < h->nbyfd && h->byfd[k->fd] == k) h->byfd[k->fd] = NULL;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, sock_closed);
}

/* libuv's uv_poll_start takes the fd out of epoll and puts it back even for the same mask */
static void sock_watch(struct sock *k, int events) {
    if (events == k->events) return;
    k->events = events;
    if (events)
        uv_poll_start(&k->poll, events, on_poll);
    else
        uv_poll_stop(&k->poll);
}

static bool fd_room(struct cq_httpc *h, curl_socket_t s) {
    if (s < 0) return false;
    if ((size_t)s < h->nbyfd) return true;
    size_t n = h->nbyfd ? h->nbyfd : 64;
    while (n <= (size_t)s)
        n *= 2;
    struct sock **v = realloc(h->byfd, n * sizeof(*v));
    if (!v) return false;
    h->byfd = v;
    bool *o = realloc(h->opened, n * sizeof(*o));
    if (!o) return false; /* byfd grew: harmless, nbyfd still says the old size */
    h->opened = o;
    memset(v + h->nbyfd, 0, (n - h->nbyfd) * sizeof(*v));
    memset(o + h->nbyfd, 0, (n - h->nbyfd) * sizeof(*o));
    h->nbyfd = n;
    return true;
}

static struct sock *sock_new(struct cq_httpc *h, curl_socket_t s) {
    if (!fd_room(h, s)) return NULL;
    struct sock *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    if (uv_poll_init_socket(h->uv, &k->poll, s) != 0) {
        free(k);
        return NULL;
    }
    k->fd = s;
    k->h = h;
    k->poll.data = k;
    k->next = h->socks;
    if (h->socks) h->socks->prev = k;
    h->socks = k;
    h->byfd[s] = k;
    return k;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    struct cq_httpc *h = userp;
    struct sock *k = socketp;
    (void)easy;
    if (!k && s >= 0 && (size_t)s < h->nbyfd) k = h->byfd[s]; /* a parked connection */
    if (what == CURL_POLL_REMOVE) {
        if (k && !h->opened[s]) {
            /* not a connection (the resolver's socketpair): curl closes it without telling */
            sock_close(h, k);
            curl_multi_assign(h->multi, s, NULL);
        } else if (k) {
            /* Parked until curl asks again or closes it (on_close_socket); readable only, so
             * an idle socket's writability does not wake the loop. */
            k->parked = true;
            uv_unref((uv_handle_t *)&k->poll); /* an idle connection keeps no loop alive */
            sock_watch(k, k->events & UV_READABLE);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (!k && !(k = sock_new(h, s))) return -1;
    if (k->parked || !socketp) curl_multi_assign(h->multi, s, k);
    if (k->parked) uv_ref((uv_handle_t *)&k->poll);
    k->parked = false;
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    sock_watch(k, events);
    return 0;
}

/* A connection's socket: curl closes it through on_close_socket, so its watch may outlive a
 * transfer. Other sockets (the threaded resolver's socketpair) are closed without a word. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
    struct cq_httpc *h = clientp;
    (void)purpose;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s >= 0 && fd_room(h, s)) h->opened[s] = true;
    return s;
}

/* curl closes a socket (a connection it no longer keeps): the watch goes first. */
static int on_close_socket(void *clientp, curl_socket_t s) {
    struct cq_httpc *h = clientp;
    if (s >= 0 && (size_t)s < h->nbyfd) {
        if (h->byfd[s]) sock_close(h, h->byfd[s]);
        h->opened[s] = false;
    }
    return close(s);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    if (n > x->max - x->len) {
        x->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        if (cap > x->max + 1) cap = x->max + 1;
        char *b = realloc(x->buf, cap);
        if (!b) {
            x->oom = true;
            return 0;
        }
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, ptr, n);
    x->len += n;
    return n;
}

/* ---- public API ---- */

struct cq_httpc *cq_httpc_new(struct cq_loop *loop, int max_connections, struct cq_err *err) {
    struct cq_httpc *h = NULL;
    if (!loop) {
        cq_err_set(err, CQ_EINVAL, "httpc: loop required");
        return NULL;
    }
    if (!curl_ready()) {
        cq_err_set(err, CQ_EHTTP, "httpc: curl_global_init failed");
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h || !(h->multi = curl_multi_init())) {
        free(h);
        cq_err_set(err, CQ_ENOMEM, "httpc: out of memory");
        return NULL;
    }
    h->uv = cq_loop_uv(loop);
    uv_timer_init(h->uv, &h->timer);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    long maxc = max_connections > 0 ? max_connections : DEFAULT_MAX_CONNECTIONS;
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxc);
    /* Keep as many idle connections as may be open: curl's default cache (4 x the handles
     * added at the moment) shrinks whenever the load dips, closing connections that the next
     * burst must open again (a TCP, and against a real API a TLS, handshake each). */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxc);
    return h;
}

static bool valid_method(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n > 16) return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z') return false;
    return true;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(x->easy, opt, val) != CURLE_OK) {                                     \
            rc = cq_err_set(err, CQ_EHTTP, "httpc: cannot set %s", #opt);                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

enum cq_rc cq_httpc_request(struct cq_httpc *h, const struct cq_http_request *req, cq_http_cb cb,
                            void *opaque, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    struct xfer *x = NULL;
    if (!h || !req || !req->url || !cb)
        return cq_err_set(err, CQ_EINVAL, "httpc: client, request, url and callback required");
    if (h->closing) return cq_err_set(err, CQ_ESHUTDOWN, "httpc: client shutting down");
    const char *method = req->method ? req->method : "GET";
    if (!valid_method(method)) return cq_err_set(err, CQ_EINVAL, "httpc: invalid method");
    if (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0)
        return cq_err_set(err, CQ_EINVAL, "httpc: only http:// and https:// URLs are allowed");
    if (req->body_len > 0 && !req->body)
        return cq_err_set(err, CQ_EINVAL, "httpc: body_len without body");

    x = calloc(1, sizeof(*x));
    if (!x || !(x->easy = curl_easy_init())) {
        rc = cq_err_set(err, CQ_ENOMEM, "httpc: out of memory");
        goto out;
    }
    x->h = h;
    x->cb = cb;
    x->opaque = opaque;
    x->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    for (const char *const *hl = req->headers; hl && *hl; hl++) {
        if (strpbrk(*hl, "\r\n")) {
            rc = cq_err_set(err, CQ_EINVAL, "httpc: header line contains CR or LF");
            goto out;
        }
        struct curl_slist *n = curl_slist_append(x->hdrs, *hl);
        if (!n) {
            rc = cq_err_set(err, CQ_ENOMEM, "httpc: out of memory");
            goto out;
        }
        x->hdrs = n;
    }
    if (req->body) { /* no "Expect: 100-continue" round trip for larger bodies */
        struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:");
        if (!n) {
            rc = cq_err_set(err, CQ_ENOMEM, "httpc: out of memory");
            goto out;
        }
        x->hdrs = n;
    }

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
           (long)(x->timeout_ms < MAX_CONNECT_TIMEOUT_MS ? x->timeout_ms : MAX_CONNECT_TIMEOUT_MS));
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, x);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(x->max > LLONG_MAX ? LLONG_MAX : x->max));
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_PRIVATE, (void *)x);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SETOPT(CURLOPT_OPENSOCKETDATA, (void *)h);
    SETOPT(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SETOPT(CURLOPT_CLOSESOCKETDATA, (void *)h); /* kept by the connection: h, not x */
    if (x->hdrs) SETOPT(CURLOPT_HTTPHEADER, x->hdrs);
    if (req->body || strcmp(method, "POST") == 0) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : ""); /* copies body_len bytes */
        if (strcmp(method, "POST") != 0) SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }

    x->next = h->xfers;
    if (h->xfers) h->xfers->prev = x;
    h->xfers = x;
    h->inflight++;
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
        xfer_unlink(h, x);
        rc = cq_err_set(err, CQ_EHTTP, "httpc: cannot start the transfer");
        goto out;
    }
    return CQ_OK;
out:
    xfer_free(x);
    return rc;
}

int cq_httpc_inflight(const struct cq_httpc *h) {
    return h ? h->inflight : 0;
}

static void client_closed(uv_handle_t *hd) {
    free(hd->data);
}

static void real_free(struct cq_httpc *h) {
    h->free_requested = false;
    h->dispatching++; /* callbacks below must not re-enter real_free */
    while (h->xfers) {
        struct xfer *x = h->xfers;
        curl_multi_remove_handle(h->multi, x->easy);
        finish(h, x, CURLE_ABORTED_BY_CALLBACK, true);
    }
    curl_multi_cleanup(h->multi); /* may still report sockets to remove */
    h->multi = NULL;
    while (h->socks)
        sock_close(h, h->socks);
    free(h->byfd);
    h->byfd = NULL;
    free(h->opened);
    h->opened = NULL;
    h->nbyfd = 0;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, client_closed);
}

void cq_httpc_free(struct cq_httpc *h) {
    if (!h || h->closing) return;
    h->closing = true;
    if (h->dispatching)
        h->free_requested = true; /* dispatch() finishes it when the callback returns */
    else
        real_free(h);
}

char *cq_url_escape(const char *s, size_t len) {
    if (!s || len > INT_MAX || !curl_ready()) return NULL;
    char *e = curl_easy_escape(NULL, s, (int)len);
    if (!e) return NULL;
    char *out = strdup(e);
    curl_free(e);
    return out;
}
