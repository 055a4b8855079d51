/* chatops-notifier: delivers results from chatops.results to Slack and Feishu, once per
 * step, with retries, pacing and dead letters. Usage: chatops-notifier --config FILE
 * [--http-port N] (0 = any free port, logged; -1 = none). SIGTERM/SIGINT drain and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_http.h"
#include "config.h"
#include "config_reload.h"
#include "errors.h"
#include "log.h"
#include "loop.h"
#include "notifier.h"

struct app {
    struct ntf_service *n;
    struct cq_admin_http *http;
    uv_timer_t tick;
};

static void usage(FILE *f) {
    fprintf(f, "usage: chatops-notifier --config FILE [--http-port N]\n");
}

/* What /readyz answers: every 5 ms until the notifier is first ready (its broker probe and
 * Redis connection finish within milliseconds; a 500 ms tick would hold it back for half a
 * second), every 500 ms after that. */
#define READY_FIRST_MS 5
#define READY_EVERY_MS 500
static void on_tick(uv_timer_t *t) {
    struct app *a = t->data;
    bool ready = ntf_service_ready(a->n);
    cq_admin_http_set_ready(a->http, ready);
    if (ready && uv_timer_get_repeat(t) != READY_EVERY_MS) uv_timer_set_repeat(t, READY_EVERY_MS);
}

static void apply_config(void *arg, struct cq_config *next) {
    struct app *a = arg;
    ntf_service_set_config(a->n, next);
}

static void stop_tick(void *arg) {
    struct app *a = arg;
    cq_admin_http_set_ready(a->http, false);
    uv_timer_stop(&a->tick);
    uv_close((uv_handle_t *)&a->tick, NULL);
}

int main(int argc, char **argv) {
    /* A peer closing a socket mid-write (Redis, Kafka, an HTTP client) must give EPIPE to
     * the write, which every client library handles, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    const char *config = NULL;
    long http_port = -2; /* -2: from the config */
    struct cq_err err = {0};
    struct cq_config *cfg = NULL;
    struct cq_loop *loop = NULL;
    struct app a = {0};
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--http-port") == 0 && i + 1 < argc) {
            char *end = NULL;
            http_port = strtol(argv[++i], &end, 10);
            if (!end || *end || http_port < -1 || http_port > 65535) {
                fprintf(stderr, "chatops-notifier: --http-port needs a port number\n");
                return 2;
            }
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
    cq_log_init("notifier", CQ_LOG_INFO);
    cfg = cq_config_load(config, &err);
    if (!cfg) {
        fprintf(stderr, "chatops-notifier: %s\n", err.msg);
        goto out;
    }
    cq_log_init("notifier", cq_log_level_parse(cfg->log.level));
    if (http_port == -2) http_port = cfg->notifier.http_port;
    loop = cq_loop_new(&err);
    if (!loop) {
        cq_error(NULL, "cannot create the event loop: %s", err.msg);
        goto out;
    }
    if (http_port >= 0) {
        a.http = cq_admin_http_new(cfg->ingress.listen, (int)http_port, &err);
        if (!a.http) {
            cq_error(NULL, "%s", err.msg);
            goto out;
        }
        cq_info(NULL, "admin http listening on port %d", cq_admin_http_port(a.http));
    }
    uv_timer_init(cq_loop_uv(loop), &a.tick);
    a.tick.data = &a;
    if (cq_loop_on_shutdown(loop, stop_tick, &a) != CQ_OK) goto out;
    a.n = ntf_service_new(loop, cfg, &err);
    if (!a.n) {
        cq_error(NULL, "cannot start: %s", err.msg);
        cq_loop_shutdown(loop);
        cq_loop_run(loop);
        goto out;
    }
    if (!cq_reload_start(loop, "notifier", config, cfg, apply_config, &a, &err)) {
        cq_error(NULL, "cannot start: %s", err.msg);
        cq_loop_shutdown(loop);
        cq_loop_run(loop);
        goto out;
    }
    uv_timer_start(&a.tick, on_tick, 0, READY_FIRST_MS);
    cq_info(NULL, "notifier started: group %s, topic %s", cfg->kafka.notifier_group,
            cfg->kafka.topic_results);
    cq_loop_run(loop);
    cq_info(NULL, "notifier stopped");
    rc = 0;
out:
    ntf_service_free(a.n);
    cq_admin_http_free(a.http);
    cq_loop_free(loop);
    cq_config_unref(cfg); /* the notifier and the reloader dropped theirs */
    return rc;
}
