/* service: the chatops-worker process: consumes chatops.requests, decides (args,
 * identity, policy), claims the request in Redis so its side effect runs once,
 * runs the action, and produces results and audit records; offsets are marked done
 * only after every message a request produced was acknowledged by Kafka. */
#ifndef CQ_WORKER_SERVICE_H
#define CQ_WORKER_SERVICE_H

#include <stdbool.h>

#include "config.h"
#include "errors.h"
#include "loop.h"

struct w_worker;

struct w_service_opts {
    int http_port;        /* /healthz /readyz /metrics; 0 = cfg->worker.http_port, -1 = none */
    bool http_any_port;   /* listen on any free port (logged), whatever http_port says */
    const char *owner_id; /* identity in claims and leases; NULL = a fresh UUID */
    int drain_timeout_ms; /* in-flight work gets this long after SIGTERM; 0 = 15000 */
    /* SIGHUP reloads this file (config_reload.h); NULL = no reload */
    const char *config_path;
};

/* Connects to Kafka and Redis and starts consuming on loop. The worker takes a reference
 * to cfg (cq_config_ref) and drops it when freed; loop is borrowed and must outlive it. On
 * SIGTERM/SIGINT (or cq_loop_shutdown) it drains and tears itself down, and the loop run
 * returns; the caller then frees it with w_service_free. Returns NULL with err on a setup
 * failure: what was started is closed (and freed) while the caller runs the loop once more. */
struct w_worker *w_service_new(const struct cq_config *cfg, struct cq_loop *loop,
                               const struct w_service_opts *opts, struct cq_err *err);

/* Readiness (also what /readyz answers): Kafka producer's broker probe answered, the
 * consumer exists, Redis connected, not draining. Loop thread only. */
bool w_service_ready(const struct w_worker *w);

/* Frees the worker after cq_loop_run returned (tearing it down first when the loop ended
 * without a drain). NULL is a no-op. */
void w_service_free(struct w_worker *w);

#endif
