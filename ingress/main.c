/* chatops-ingress: the HTTP door. Loads the config, starts the loop, the producer and the
 * HTTP server, runs until SIGTERM/SIGINT and drains (see service.h).
 *   chatops-ingress --config FILE [--port N] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"
#include "service.h"

static void usage(void) { fprintf(stderr, "usage: chatops-ingress --config FILE [--port N]\n"); }

int main(int argc, char **argv) {
    const char *path = NULL;
    int port = -1, rc = 1;
    struct cq_err err = {0};
    struct cq_config *cfg = NULL;
    struct cq_loop *loop = NULL;
    struct cq_ingress *in = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 65535) {
                usage();
                return 2;
            }
            port = (int)v;
        } else {
            usage();
            return 2;
        }
    }
    if (!path) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* every waiting request holds a socket: allow as many as the hard limit */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    cq_log_init("ingress", CQ_LOG_INFO);
    cfg = cq_config_load(path, &err);
    if (!cfg) {
        cq_error(NULL, "config: %s", err.msg);
        goto out;
    }
    cq_log_init("ingress", cq_log_level_parse(cfg->log.level));
    loop = cq_loop_new(&err);
    if (!loop) {
        cq_error(NULL, "loop: %s", err.msg);
        goto out;
    }
    const char *topics[] = {cfg->kafka.topic_requests, cfg->kafka.topic_pipeline_events, NULL};
    if (cq_kafka_ensure_topics(cfg->kafka.brokers, topics, cfg->kafka.partitions,
                               cfg->kafka.replication, 5000, &err) != CQ_OK)
        cq_warn(NULL, "topics not ensured (continuing; /readyz tells when Kafka is back): %s",
                err.msg);
    in = cq_ingress_new(cfg, loop, port, &err);
    if (!in) {
        cq_error(NULL, "ingress: %s", err.msg);
        goto out;
    }
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%d", cq_ingress_port(in));
    cq_log_kv(CQ_LOG_INFO, NULL, "listening",
              (const char *const[]){"port", portbuf, "brokers", cfg->kafka.brokers, NULL});
    cq_loop_run(loop);
    rc = 0;
out:
    cq_ingress_free(in);
    cq_loop_free(loop);
    cq_config_free(cfg);
    return rc;
}
