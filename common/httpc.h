/* httpc: outbound HTTP(S) on the service's libuv loop (curl multi driven by
 * uv_poll_t / uv_timer_t, the pattern of curl's multi-uv example). The worker
 * calls APIs and triggers pipelines with it; the notifier posts to Slack/Feishu. */
#ifndef CQ_HTTPC_H
#define CQ_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "loop.h"

struct cq_httpc;

struct cq_http_request {
    const char *method;         /* "GET", "POST", "PUT", ...; NULL = GET */
    const char *url;            /* http:// or https:// only; redirects are not followed */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    int timeout_ms;      /* whole request; 0 = 30000 */
    size_t max_response; /* body bytes; 0 = 1 MiB */
};

struct cq_http_response {
    long status; /* 0 when no response */
    char *body;  /* NUL-terminated, never NULL ("" when empty or none) */
    size_t body_len;
    char *retry_after;     /* Retry-After header value or NULL */
    char *ratelimit_reset; /* x-ogw-ratelimit-reset header value or NULL */
    enum cq_rc rc;         /* CQ_OK: an HTTP response (any status) arrived; CQ_ETIMEOUT;
                              CQ_EHTTP: connect/TLS/protocol error or response too large;
                              CQ_ESHUTDOWN: cq_httpc_free with the request pending */
    char errmsg[256];      /* "" when rc == CQ_OK */
    bool unsent;           /* rc != CQ_OK and the request certainly never reached the server
                              (name resolution or connect failed, or the time ran out before
                              it was sent): a non-idempotent request may be sent again */
    double total_s;
};

/* Called exactly once per accepted request, from the loop (never from inside
 * cq_httpc_request). resp and everything it points to is borrowed for the call. */
typedef void (*cq_http_cb)(void *opaque, const struct cq_http_response *resp);

/* Returns a new client on loop; max_connections caps open connections (<= 0: 64),
 * requests beyond it wait in curl's queue (their timeout runs while waiting). */
struct cq_httpc *cq_httpc_new(struct cq_loop *loop, int max_connections, struct cq_err *err);

/* Starts a request; copies everything it needs from req before returning. On CQ_OK
 * cb will be called exactly once; on any other return (CQ_EINVAL: bad method/URL/
 * header line with CR or LF; CQ_ENOMEM; CQ_ESHUTDOWN) it will not. */
enum cq_rc cq_httpc_request(struct cq_httpc *h, const struct cq_http_request *req, cq_http_cb cb,
                            void *opaque, struct cq_err *err);

/* Requests accepted and not yet called back. */
int cq_httpc_inflight(const struct cq_httpc *h);

/* Cancels every pending request (each callback once, rc CQ_ESHUTDOWN, before this
 * returns unless called from inside a callback of this client, then right after it).
 * Memory is released once the loop runs the close callbacks. NULL is a no-op. */
void cq_httpc_free(struct cq_httpc *h);

/* URL-encodes s[0..len) (RFC 3986 unreserved kept). Returns a new string; caller
 * frees with free(). NULL on out of memory. */
char *cq_url_escape(const char *s, size_t len);

#endif
