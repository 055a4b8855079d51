/* admin_http: a service's /healthz, /readyz and /metrics on libmicrohttpd's own thread (worker,
 * notifier). Readiness is a flag the loop thread sets (atomic), so the MHD thread never touches the
 * service's state. The ingress's admin port uses common/http.h directly (it adds a not-ready
 * reason); its platform port is ingress/server.c. */
#ifndef CQ_ADMIN_HTTP_H
#define CQ_ADMIN_HTTP_H

#include <stdbool.h>

#include "errors.h"

struct cq_admin_http;

/* Listens on listen:port (port 0 = any free port; see cq_admin_http_port). */
struct cq_admin_http *cq_admin_http_new(const char *listen, int port, struct cq_err *err);
int cq_admin_http_port(const struct cq_admin_http *a);
/* Thread-safe: what /readyz answers (200 when true, 503 otherwise). */
void cq_admin_http_set_ready(struct cq_admin_http *a, bool ready);
/* Stops the server thread and frees. NULL is a no-op. */
void cq_admin_http_free(struct cq_admin_http *a);

#endif
