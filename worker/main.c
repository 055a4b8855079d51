/* chatops-worker: consumes chatops.requests, checks and runs commands, produces
 * results and audit records. Usage: chatops-worker --config FILE [--http-port N]
 * [--id OWNER]. --http-port (default worker.http_port, env CQ_WORKER_HTTP_PORT) serves
 * /healthz /readyz /metrics; 0 = any free port (logged), -1 = none. SIGTERM/SIGINT drain
 * in-flight requests and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_reload.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "service.h"

static void usage(FILE *f) {
    fprintf(f, "usage: chatops-worker --config FILE [--http-port N] [--id OWNER]\n");
}

int main(int argc, char **argv) {
    /* A peer closing a socket mid-write (Redis, Kafka, an HTTP client) must give EPIPE to
     * the write, which every client library handles, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    const char *config = NULL;
    struct w_service_opts opts = {0};
    struct cq_err err = {0};
    struct cq_config *cfg = NULL;
    struct cq_loop *loop = NULL;
    struct w_worker *w = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--http-port") == 0 && i + 1 < argc) {
            char *end = NULL;
            long p = strtol(argv[++i], &end, 10);
            if (!end || *end || p < -1 || p > 65535) {
                fprintf(stderr, "chatops-worker: --http-port needs a port number\n");
                return 2;
            }
            opts.http_port = (int)p;
            opts.http_any_port = p == 0;
        } else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
            opts.owner_id = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    cq_log_init("worker", CQ_LOG_INFO);
    cfg = cq_config_load(config, &err);
    if (!cfg) {
        fprintf(stderr, "chatops-worker: %s\n", err.msg);
        goto out;
    }
    cq_log_init("worker", cq_log_level_parse(cfg->log.level));
    opts.config_path = config;
    loop = cq_loop_new(&err);
    if (!loop) {
        cq_error(NULL, "cannot create the event loop: %s", err.msg);
        goto out;
    }
    w = w_service_new(cfg, loop, &opts, &err);
    if (!w) {
        cq_error(NULL, "cannot start: %s", err.msg);
        cq_loop_run(loop); /* lets the partly started worker close its handles */
        goto out;
    }
    cq_loop_run(loop);
    cq_info(NULL, "worker stopped");
    rc = 0;
out:
    w_service_free(w);
    cq_loop_free(loop);
    cq_config_unref(cfg); /* the worker dropped its own reference when it ended */
    return rc;
}
