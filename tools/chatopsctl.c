/* chatopsctl: the operator's command line. Validates configs with the same code
 * the services run, creates topics, sends signed chat commands to the ingress and shows
 * the replies, lists in-flight pipelines and inspects/replays dead letters.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage error. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "chatopsctl.h"
#include "config.h"
#include "errors.h"
#include "kafka.h"
#include "log.h"

static const char usage_head[] = "usage: chatopsctl [--config FILE] [--env FILE] COMMAND [ARGS]\n"
                                 "\n"
                                 "commands:\n";

static const char usage_tail[] =
    "\n"
    "options:\n"
    "  --config FILE   config to use (default $CHATOPS_CONFIG, else examples/ops.yaml)\n"
    "  --env FILE      KEY=VALUE lines put into the environment when not already set\n"
    "                  (default $CQ_RUN_DIR/env, else .stack/env: written by scripts/run.sh\n"
    "                  with the demo's secrets and addresses)\n"
    "  -h, --help      this text\n"
    "\n"
    "exit codes: 0 ok, 1 the operation failed (one line on stderr), 2 usage error\n";

/* Loads KEY=VALUE lines into the environment without overriding what is set. A missing
 * default file is fine; a missing explicit one is an error. */
static int load_env_file(const char *path, int explicit_file) {
    FILE *f = fopen(path, "r");
    char line[4096];
    if (!f) {
        if (!explicit_file) return 0;
        fprintf(stderr, "chatopsctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq || eq == line) continue;
        *eq = '\0';
        setenv(line, eq + 1, 0);
    }
    fclose(f);
    return 0;
}

static struct cq_config *load_config(const char *path) {
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load(path, &err);
    if (!cfg) fprintf(stderr, "%s\n", err.msg);
    return cfg;
}

static void unresolved_secret(void *arg, const char *msg) {
    ++*(int *)arg;
    fprintf(stderr, "warning: %s (secret not resolved here)\n", msg);
}

/* Everything is validated as the services do; a secret that is not there (unset ${ENV},
 * missing file: - as in CI or on a laptop) is a warning, an error only with strict. */
static int config_check(const char *path, int strict) {
    struct cq_err err = {0};
    int unresolved = 0;
    struct cq_config *cfg = cq_config_load_lenient(path, unresolved_secret, &unresolved, &err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("%s: ok (%zu commands, %zu people, %zu channels, %zu policy rules)", path,
           cfg->n_commands, cfg->n_people, cfg->n_channels, cfg->n_rules);
    if (unresolved) printf(", %d secret(s) not resolved%s", unresolved, strict ? ": --strict" : "");
    printf("\n");
    cq_config_free(cfg);
    return strict && unresolved ? 1 : 0;
}

static int topics_ensure(const struct cq_config *cfg) {
    struct cq_err err = {0};
    const char *topics[] = {cfg->kafka.topic_requests,
                            cfg->kafka.topic_results,
                            cfg->kafka.topic_audit,
                            cfg->kafka.topic_pipeline_events,
                            cfg->kafka.topic_dlq,
                            cfg->kafka.topic_events,
                            NULL};
    if (cq_kafka_ensure_topics_conf(cfg->kafka.brokers, cfg->kafka.client_conf, topics,
                                    cfg->kafka.partitions, cfg->kafka.replication, 15000,
                                    &err) != CQ_OK) {
        fprintf(stderr, "topics ensure: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; topics[i]; i++)
        printf("%s: ok (%d partitions wanted)\n", topics[i], cfg->kafka.partitions);
    if (err.msg[0]) fprintf(stderr, "note: %s\n", err.msg);
    return 0;
}

/* Config check without loading a config the services would: argv starts after "check". */
static int cmd_config_check(const char *config, int argc, char **argv) {
    int k = 0, strict = 0, rc = 0;
    (void)config;
    if (k < argc && !strcmp(argv[k], "--strict")) {
        strict = 1;
        k++;
    }
    if (k >= argc) {
        fprintf(stderr, "chatopsctl: config check needs a FILE (try --help)\n");
        return 2;
    }
    for (; k < argc; k++)
        rc |= config_check(argv[k], strict);
    return rc;
}

static int cmd_topics_ensure(const struct cq_config *cfg, int argc, char **argv) {
    (void)argc;
    (void)argv;
    return topics_ensure(cfg);
}

/* The sub-commands: one row names a command once for the dispatch, its argument check and
 * its lines in --help. name [sub] are the words that select it; the handler gets the
 * arguments after the first `skip` words (approve/deny keep their own name: it is the
 * click's action). `pre` runs without a loaded config (it gets the config's path); else
 * `check` (may be NULL) validates the arguments before the config is read and `run` runs
 * with it. `help` is the command's text in --help (NULL: told in another row's). */
struct ctl_cmd {
    const char *name, *sub;
    int skip;
    int (*pre)(const char *config, int argc, char **argv);
    int (*check)(int argc, char **argv);
    int (*run)(const struct cq_config *cfg, int argc, char **argv);
    const char *help;
};

static const struct ctl_cmd commands[] = {
    {"config", "check", 2, cmd_config_check, NULL, NULL,
     "  config check [--strict] FILE...\n"
     "                        validate each FILE exactly as the services do (errors as\n"
     "                        file:line:col: key: reason); a secret that cannot be resolved\n"
     "                        here (unset ${ENV}, missing file:) is a warning (exit 0), an\n"
     "                        error with --strict\n"},
    {"reload", NULL, 1, cq_ctl_reload, NULL, NULL,
     "  reload [--all]        check the config, then SIGHUP the chatops services of this\n"
     "                        user on this host started with the same config file (--all:\n"
     "                        any config); each reloads it (see docs/operations.md)\n"},
    {"topics", "ensure", 2, NULL, NULL, cmd_topics_ensure,
     "  topics ensure         create missing topics with kafka.partitions/replication\n"},
    {"send", NULL, 1, NULL, cq_ctl_send_usage, cq_ctl_send,
     "  send [OPTIONS] TEXT   send TEXT (e.g. '/ops deploy web staging') to the ingress as the\n"
     "                        platform would, signed, then print the replies the user sees\n"
     "     --as USER          person from the config (alice) or a raw platform user id;\n"
     "                        default: the person with the most roles\n"
     "     --channel C        channel name from the config (ops) or a raw id; default: the\n"
     "                        first channel of the platform\n"
     "     --platform P       slack | feishu | dingtalk | mattermost | discord | webex\n"
     "                        (default: the channel's platform, else slack; discord signs\n"
     "                        with CQ_DISCORD_TEST_PRIVATE_KEY, a test key in hex)\n"
     "     --ingress URL      default http://127.0.0.1:<ingress.port> ($CQ_INGRESS_PORT)\n"
     "     --sink URL         where replies are recorded (GET URL/_log); default: the\n"
     "                        platform's api_base without /api or /open-apis (the demo fakes)\n"
     "     --timeout S        wait at most S seconds for the final reply (default 60)\n"},
    {"gitlab-hook", NULL, 1, NULL, cq_ctl_gitlab_usage, cq_ctl_gitlab,
     "  gitlab-hook KIND [OPTIONS]\n"
     "                        send the ingress a GitLab webhook as GitLab does (KIND: push,\n"
     "                        tag_push, merge_request, pipeline, job, deployment, release,\n"
     "                        issue, note), with a gitlab.hooks token (or webhook_token)\n"
     "     --status S         pipeline/job/deployment status (default failed)\n"
     "     --project P --ref R --env E --action A --title T --id N --project-id N\n"
     "     --hook NAME --uuid U (a re-send: the same uuid) --ingress URL\n"},
    {"click", NULL, 1, NULL, cq_ctl_click_usage, cq_ctl_click,
     "  click [OPTIONS] ACTION REQ\n"
     "                        click a parked request's button as the platform would post it\n"
     "                        (ACTION: approve | deny | confirm | cancel; a signed Slack\n"
     "                        block_actions or an encrypted Feishu card callback), then print\n"
     "                        the reply the clicker gets; options --as, --channel, --platform,\n"
     "                        --ingress, --sink as for send, --timeout S (default 15)\n"},
    {"approve", NULL, 0, NULL, cq_ctl_click_usage, cq_ctl_click,
     "  approve REQ, deny REQ the same as click approve REQ / click deny REQ\n"},
    {"deny", NULL, 0, NULL, cq_ctl_click_usage, cq_ctl_click, NULL},
    {"discord", "register", 2, NULL, NULL, cq_ctl_discord,
     "  discord register [--dry-run]\n"
     "                        create the Discord application commands from the config's\n"
     "                        commands (PUT, discord.bot_token); --dry-run prints them\n"},
    {"pipelines", NULL, 1, NULL, cq_ctl_pipelines_usage, cq_ctl_pipelines,
     "  pipelines             in-flight pipelines from Redis: request, pipeline, status,\n"
     "                        requester, owning worker, age\n"},
    {"dlq", NULL, 1, NULL, cq_ctl_dlq_usage, cq_ctl_dlq,
     "  dlq list [--max N]    dead letters on the DLQ topic: reason, attempts, original\n"
     "  dlq replay P:OFFSET|--all\n"
     "                        re-publish the original message(s) to their original topic\n"},
    {"audit", NULL, 1, NULL, cq_ctl_audit_usage, cq_ctl_audit,
     "  audit list [--max N]  the latest audit records: time, kind, request, who, command,\n"
     "                        decision, rule, result\n"},
    {"identity", NULL, 1, NULL, cq_ctl_identity_usage, cq_ctl_identity,
     "  identity USER [--platform slack|feishu] [--flush]\n"
     "                        what the worker believes about a chat user: people: entry, or\n"
     "                        the cached GitLab login and roles with their sources and age;\n"
     "                        --flush deletes the cached entry (looked up again next time)\n"},
};

static void usage(FILE *out) {
    fputs(usage_head, out);
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (commands[k].help) fputs(commands[k].help, out);
    fputs(usage_tail, out);
}

int main(int argc, char **argv) {
    const char *config = NULL, *env_file = NULL;
    int i = 1, rc = 2;
    struct cq_config *cfg = NULL;
    cq_log_init("chatopsctl", CQ_LOG_WARN);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(argv[i], "--env") && i + 1 < argc) {
            env_file = argv[++i];
        } else {
            fprintf(stderr, "chatopsctl: unknown option %s (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (env_file) {
        if (load_env_file(env_file, 1) != 0) return 1;
    } else {
        const char *run_dir = getenv("CQ_RUN_DIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/env", run_dir && *run_dir ? run_dir : ".stack");
        load_env_file(path, 0);
    }
    if (!config) config = getenv("CHATOPS_CONFIG");
    if (!config || !*config) config = "examples/ops.yaml";

    const char *cmd = argv[i];
    const char *sub = i + 1 < argc ? argv[i + 1] : "";
    const struct ctl_cmd *c = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0] && !c; k++)
        if (!strcmp(cmd, commands[k].name) && (!commands[k].sub || !strcmp(sub, commands[k].sub)))
            c = &commands[k];
    if (!c) goto unknown;
    int c_argc = argc - i - c->skip;
    char **c_argv = argv + i + c->skip;
    if (c->pre) return c->pre(config, c_argc, c_argv);
    if (c->check && c->check(c_argc, c_argv)) return 2;
    if (!(cfg = load_config(config))) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = c->run(cfg, c_argc, c_argv);
    curl_global_cleanup();
    cq_config_free(cfg);
    return rc;
unknown:
    fprintf(stderr, "chatopsctl: unknown command '%s%s%s' (try --help)\n", cmd, *sub ? " " : "",
            sub);
    return 2;
}
