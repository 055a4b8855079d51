/* admin_http: /healthz (process alive), /readyz (Redis + Kafka + consumer up) and /metrics
 * (Prometheus text) on libmicrohttpd's internal thread. Anything else is 404. */
#include "admin_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct cq_admin_http {
    struct MHD_Daemon *d;
    atomic_bool ready;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state) {
    struct cq_admin_http *a = cls;
    (void)version;
    (void)upload;
    if (*upload_len) { /* no bodies expected: swallow */
        *upload_len = 0;
        return MHD_YES;
    }
    if (!*state) { /* first call per request: headers only */
        *state = a;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, 405, "text/plain", (char *)"method not allowed\n", 19,
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/healthz") == 0)
        return reply(c, 200, "text/plain", (char *)"ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/readyz") == 0) {
        if (atomic_load(&a->ready))
            return reply(c, 200, "text/plain", (char *)"ready\n", 6, MHD_RESPMEM_PERSISTENT);
        return reply(c, 503, "text/plain", (char *)"not ready\n", 10, MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *m = cq_metrics_render(&len);
        if (!m)
            return reply(c, 500, "text/plain", (char *)"out of memory\n", 14,
                         MHD_RESPMEM_PERSISTENT);
        return reply(c, 200, "text/plain; version=0.0.4", m, len, MHD_RESPMEM_MUST_FREE);
    }
    return reply(c, 404, "text/plain", (char *)"not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

struct cq_admin_http *cq_admin_http_new(const char *listen, int port, struct cq_err *err) {
    struct cq_admin_http *a = calloc(1, sizeof *a);
    struct sockaddr_in sa = {0};
    if (!a) {
        cq_err_set(err, CQ_ENOMEM, "admin http: out of memory");
        return NULL;
    }
    atomic_init(&a->ready, false);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, listen ? listen : "0.0.0.0", &sa.sin_addr) != 1) {
        cq_err_set(err, CQ_ECONFIG, "admin http: bad listen address '%s'", listen);
        free(a);
        return NULL;
    }
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY,
                            (uint16_t)port, NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!a->d) {
        cq_err_set(err, CQ_EIO, "admin http: cannot listen on port %d", port);
        free(a);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : port;
    return a;
}

int cq_admin_http_port(const struct cq_admin_http *a) { return a ? a->port : 0; }

void cq_admin_http_set_ready(struct cq_admin_http *a, bool ready) {
    if (a) atomic_store(&a->ready, ready);
}

void cq_admin_http_free(struct cq_admin_http *a) {
    if (!a) return;
    MHD_stop_daemon(a->d);
    free(a);
}
