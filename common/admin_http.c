/* admin_http: /healthz (process alive), /readyz (Redis + Kafka + consumer up) and /metrics
 * (Prometheus text) for the worker and notifier: common/http with no routes of its own and
 * readiness read from an atomic flag the loop thread sets. */
#include "admin_http.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "http.h"

struct cq_admin_http {
    struct cq_http_server *server;
    atomic_bool ready;
};

static bool is_ready(void *arg) {
    struct cq_admin_http *a = arg;
    return atomic_load(&a->ready);
}

struct cq_admin_http *cq_admin_http_new(const char *listen, int port, struct cq_err *err) {
    struct cq_admin_http *a = calloc(1, sizeof *a);
    if (!a) {
        cq_err_set(err, CQ_ENOMEM, "admin http: out of memory");
        return NULL;
    }
    atomic_init(&a->ready, false);
    struct cq_http_options opt = {
        .listen = listen,
        .port = port,
        .threads = 1,
        .max_body = 4096,
        .max_connections = 256,
        .ready = is_ready,
        .ready_arg = a,
    };
    a->server = cq_http_server_new(&opt, NULL, 0, err);
    if (!a->server) {
        free(a);
        return NULL;
    }
    return a;
}

int cq_admin_http_port(const struct cq_admin_http *a) {
    return a ? cq_http_server_port(a->server) : 0;
}

void cq_admin_http_set_ready(struct cq_admin_http *a, bool ready) {
    if (a) atomic_store(&a->ready, ready);
}

void cq_admin_http_free(struct cq_admin_http *a) {
    if (!a) return;
    cq_http_server_free(a->server, 0); /* built-ins answer synchronously: nothing is owed */
    free(a);
}
