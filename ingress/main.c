/* chatops-ingress: verified Slack / Feishu / GitLab requests in, Kafka out, answered only after
 * the broker confirmed them.
 * Usage: chatops-ingress --config FILE [--port N] [--admin-port N] [--kafka-conf KEY=VALUE]...
 * (--kafka-conf passes producer tuning such as linger.ms straight to librdkafka).
 * --port (default ingress.port) is the public webhook port (+ /healthz); --admin-port (default
 * ingress.admin_port, on ingress.admin_listen) serves /healthz, /readyz and /metrics.
 * SIGTERM/SIGINT: stop accepting, finish the requests waiting on Kafka, flush, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_reload.h"
#include "errors.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "server.h"

struct app {
    struct cq_config *cfg;
    struct cq_loop *loop;
    struct cq_producer *producer;
    struct ing_server *ingress;
};

#define MAX_KAFKA_CONF 16

static void usage(FILE *f) {
    fprintf(f, "usage: chatops-ingress --config FILE [--port N] [--admin-port N] "
               "[--kafka-conf KEY=VALUE]...\n");
}

/* Last drain step: nothing waits any more; flush what Kafka still holds, then stop HTTP. */
static void on_drained(void *arg) {
    struct app *a = arg;
    cq_producer_free(a->producer); /* flushes; remaining reports answer their connections */
    a->producer = NULL;
    ing_server_free(a->ingress);
    a->ingress = NULL;
    cq_info(NULL, "drained");
}

/* SIGHUP (config_reload.c): the next request is checked with the new secrets and limits. */
static void apply_config(void *arg, struct cq_config *next) {
    struct app *a = arg;
    if (a->ingress) ing_server_set_config(a->ingress, next);
    cq_gauge_set(cq_gauge_get("chatops_ingress_feishu_unsigned_events",
                              "1 when Feishu events are accepted on the verification token "
                              "alone (no encrypt_key)",
                              NULL),
                 next->feishu.enabled && !next->feishu.encrypt_key.value);
}

static void on_shutdown(void *arg) {
    struct app *a = arg;
    if (!a->ingress) return;
    /* a request waits at most the budget plus the guard's margin; allow a second more */
    ing_server_drain(a->ingress, a->cfg->kafka.produce_timeout_ms + 1500, on_drained, a);
}

int main(int argc, char **argv) {
    /* A peer closing a socket mid-write (Redis, Kafka, an HTTP client) must give EPIPE to
     * the write, which every client library handles, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    const char *config = NULL;
    long port = -1, admin_port = -1;
    struct app a = {0};
    struct cq_err err = {0};
    int rc = 1;
    /* Producer defaults for an answer-after-ack front door (bench/ingress/README.md): with
     * every caller waiting on its report, librdkafka's 1 ms linger is pure latency, and Nagle
     * holds back small produce requests while earlier ones are unacknowledged. Sub-ms linger
     * still batches under load. --kafka-conf entries come later and so override these. */
    const char *kconf[2 * (MAX_KAFKA_CONF + 2) + 1] = {"linger.ms", "0.5", "socket.nagle.disable",
                                                       "true", NULL};
    char *kbuf[MAX_KAFKA_CONF] = {NULL};
    int nk = 0;
    const int nk_defaults = 2;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end = NULL;
            port = strtol(argv[++i], &end, 10);
            if (!end || *end || port < 0 || port > 65535) {
                fprintf(stderr, "chatops-ingress: --port needs a port number\n");
                rc = 2;
                goto out;
            }
        } else if (strcmp(argv[i], "--admin-port") == 0 && i + 1 < argc) {
            char *end = NULL;
            admin_port = strtol(argv[++i], &end, 10);
            if (!end || *end || admin_port < 0 || admin_port > 65535) {
                fprintf(stderr, "chatops-ingress: --admin-port needs a port number\n");
                rc = 2;
                goto out;
            }
        } else if (strcmp(argv[i], "--kafka-conf") == 0 && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i] || nk == MAX_KAFKA_CONF) {
                fprintf(stderr, "chatops-ingress: --kafka-conf needs KEY=VALUE (at most %d)\n",
                        MAX_KAFKA_CONF);
                rc = 2;
                goto out;
            }
            if (!(kbuf[nk] = strdup(argv[i]))) goto out;
            kbuf[nk][eq - argv[i]] = '\0';
            kconf[2 * (nk_defaults + nk)] = kbuf[nk];
            kconf[2 * (nk_defaults + nk) + 1] = kbuf[nk] + (eq - argv[i]) + 1;
            nk++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else {
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (!config) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    cq_log_init("ingress", CQ_LOG_INFO);
    a.cfg = cq_config_load(config, &err);
    if (!a.cfg) {
        fprintf(stderr, "chatops-ingress: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    cq_log_init("ingress", cq_log_level_parse(a.cfg->log.level));
    if (!(a.loop = cq_loop_new(&err))) {
        cq_error(NULL, "cannot create the event loop: %s", err.msg);
        goto out;
    }
    /* librdkafka reports a timed-out message up to ~1 s after message.timeout.ms (it scans
     * for timeouts once a second). Its report says whether the message may be in the log;
     * the guard at the budget cannot know and must say "outcome unknown". So the message
     * times out a second before the budget (at least half of it), for the report, with its
     * exact status, to come first. */
    int budget = a.cfg->kafka.produce_timeout_ms;
    int delivery_ms = budget - 1000 > budget / 2 ? budget - 1000 : budget / 2;
    /* the defaults above, then the config's client settings (security, kafka.properties),
     * then the --kafka-conf flags: each later setting wins */
    const char *kdefaults[] = {kconf[0], kconf[1], kconf[2], kconf[3], NULL}; /* nk_defaults */
    const char **kcfg = cq_kafka_conf_join(a.cfg->kafka.client_conf, kconf + 2 * nk_defaults);
    const char **kall = kcfg ? cq_kafka_conf_join(kdefaults, kcfg) : NULL;
    free(kcfg);
    if (!kall) {
        cq_error(NULL, "out of memory");
        goto out;
    }
    a.producer = cq_producer_new(a.cfg->kafka.brokers, delivery_ms, a.loop, kall, &err);
    free(kall);
    if (!a.producer) {
        cq_error(NULL, "cannot create the kafka producer: %s", err.msg);
        goto out;
    }
    if (a.cfg->feishu.enabled && !a.cfg->feishu.encrypt_key.value) {
        /* only possible with feishu.require_encrypt_key: false */
        cq_warn(NULL, "feishu: no encrypt_key: events are not signed and only the verification "
                      "token authenticates them (no replay window); set feishu.encrypt_key");
        cq_gauge_set(cq_gauge_get("chatops_ingress_feishu_unsigned_events",
                                  "1 when Feishu events are accepted on the verification token "
                                  "alone (no encrypt_key)",
                                  NULL),
                     1);
    }
    a.ingress = ing_server_new(a.cfg, port >= 0 ? (int)port : a.cfg->ingress.port,
                               admin_port >= 0 ? (int)admin_port : a.cfg->ingress.admin_port,
                               a.loop, a.producer, &err);
    if (!a.ingress) {
        cq_error(NULL, "cannot start: %s", err.msg);
        goto out;
    }
    if (cq_loop_on_shutdown(a.loop, on_shutdown, &a) != CQ_OK) {
        cq_error(NULL, "cannot register the drain");
        goto out;
    }
    if (!cq_reload_start(a.loop, "ingress", config, a.cfg, apply_config, &a, &err)) {
        cq_error(NULL, "cannot start: %s", err.msg);
        cq_loop_shutdown(a.loop);
        cq_loop_run(a.loop);
        goto out;
    }
    cq_info(NULL, "admin http (/healthz /readyz /metrics) listening on %s:%d",
            a.cfg->ingress.admin_listen, ing_server_admin_port(a.ingress));
    cq_info(NULL, "listening on %s:%d (slack %s, %s; feishu %s; gitlab %s)", a.cfg->ingress.listen,
            ing_server_port(a.ingress), a.cfg->ingress.slack_commands_path,
            a.cfg->ingress.slack_events_path, a.cfg->ingress.feishu_events_path,
            a.cfg->ingress.gitlab_webhook_path);
    cq_loop_run(a.loop);
    cq_info(NULL, "ingress stopped");
    rc = 0;
out:
    if (a.producer) cq_producer_free(a.producer);
    if (a.ingress) ing_server_free(a.ingress);
    cq_loop_free(a.loop);
    cq_config_unref(a.cfg); /* the ingress and the reloader dropped theirs */
    for (int i = 0; i < nk; i++)
        free(kbuf[i]);
    return rc;
}
