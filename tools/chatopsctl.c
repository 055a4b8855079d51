/* chatopsctl: the operator's command line. Validates configs with the same code
 * the services run, creates topics, and (see --help) inspects the running stack.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "kafka.h"
#include "log.h"

static const char usage_text[] =
    "usage: chatopsctl [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  config check FILE   validate FILE exactly as the services do (errors as file:line:col)\n"
    "  topics ensure       create missing topics with kafka.partitions/replication from config\n"
    "\n"
    "options:\n"
    "  --config FILE       config to use (default $CHATOPS_CONFIG, else examples/ops.yaml)\n"
    "  -h, --help          this text\n";

static int config_check(const char *path) {
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load(path, &err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("%s: ok (%zu commands, %zu people, %zu channels, %zu policy rules)\n", path,
           cfg->n_commands, cfg->n_people, cfg->n_channels, cfg->n_rules);
    cq_config_free(cfg);
    return 0;
}

static int topics_ensure(const char *path) {
    struct cq_err err = {0};
    int rc = 1;
    struct cq_config *cfg = cq_config_load(path, &err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *topics[] = {cfg->kafka.topic_requests, cfg->kafka.topic_results,
                            cfg->kafka.topic_audit,    cfg->kafka.topic_pipeline_events,
                            cfg->kafka.topic_dlq,      NULL};
    if (cq_kafka_ensure_topics(cfg->kafka.brokers, topics, cfg->kafka.partitions,
                               cfg->kafka.replication, 15000, &err) != CQ_OK) {
        fprintf(stderr, "topics ensure: %s\n", err.msg);
        goto out;
    }
    for (int i = 0; topics[i]; i++)
        printf("%s: ok (%d partitions wanted)\n", topics[i], cfg->kafka.partitions);
    if (err.msg[0]) fprintf(stderr, "note: %s\n", err.msg);
    rc = 0;
out:
    cq_config_free(cfg);
    return rc;
}

int main(int argc, char **argv) {
    const char *config = getenv("CHATOPS_CONFIG");
    int i = 1;
    cq_log_init("chatopsctl", CQ_LOG_WARN);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else {
            fprintf(stderr, "chatopsctl: unknown option %s (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (!config) config = "examples/ops.yaml";
    if (i >= argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[i];
    const char *sub = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(cmd, "config") && !strcmp(sub, "check")) {
        if (i + 2 >= argc) {
            fprintf(stderr, "chatopsctl: config check needs a FILE\n");
            return 2;
        }
        int rc = 0;
        for (int k = i + 2; k < argc; k++) rc |= config_check(argv[k]);
        return rc;
    }
    if (!strcmp(cmd, "topics") && !strcmp(sub, "ensure")) return topics_ensure(config);
    fprintf(stderr, "chatopsctl: unknown command '%s%s%s' (try --help)\n", cmd, *sub ? " " : "",
            sub);
    return 2;
}
