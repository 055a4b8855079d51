/* test_config: examples/ops.yaml loads with the values and defaults it promises;
 * every kind of mistake is reported as exactly "file:line:col: key.path: reason";
 * secrets resolve from the environment and from files and never appear in any
 * message; JSON input and the CQ_* environment overrides work. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cqtest.h"

/* Values the secret references resolve to: no error may ever contain them. */
#define SIGNING "SIGNING-s3cr3t-value-1"
#define TOKEN "TOKEN-s3cr3t-value-2"
#define INLINE "INLINE-s3cr3t-value-3"
#define FILEVAL "FILE-s3cr3t-value-4"

static char tmpdir[256];

static void set_secrets_env(void) {
    setenv("CQT_SIGNING", SIGNING, 1);
    setenv("CQT_TOK", TOKEN, 1);
    setenv("CQT_EMPTY", "", 1);
    unsetenv("CQT_NOPE");
}

static void no_secret_in(const char *msg) {
    CHECK(strstr(msg, SIGNING) == NULL);
    CHECK(strstr(msg, TOKEN) == NULL);
    CHECK(strstr(msg, INLINE) == NULL);
    CHECK(strstr(msg, FILEVAL) == NULL);
}

/* A valid base (lines 1-7) that every error case extends. */
#define BASE                                                                                       \
    "kafka:\n"                                                                                     \
    "  brokers: \"127.0.0.1:9092\"\n"                                                              \
    "slack:\n"                                                                                     \
    "  enabled: true\n"                                                                            \
    "  signing_secret: \"${CQT_SIGNING}\"\n"                                                       \
    "secrets:\n"                                                                                   \
    "  tok: \"${CQT_TOK}\"\n"

static int n_errors_checked;

static void expect_error(const char *yaml, const char *want) {
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("t.yaml", yaml, strlen(yaml), &err);
    CHECK(cfg == NULL);
    CHECK(err.code != CQ_OK);
    CHECK_STR(err.msg, want);
    no_secret_in(err.msg);
    cq_config_free(cfg);
    n_errors_checked++;
}

static struct cq_config *load_ok(const char *yaml) {
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("t.yaml", yaml, strlen(yaml), &err);
    CHECK(cfg != NULL);
    if (!cfg) fprintf(stderr, "  unexpected error: %s\n", err.msg);
    return cfg;
}

TEST(example_loads) {
    const char *src = getenv("CQ_SOURCE_DIR");
    char path[1024];
    struct cq_err err = {0};
    static const char *const vars[] = {"SLACK_SIGNING_SECRET",     "SLACK_BOT_TOKEN",
                                       "FEISHU_APP_SECRET",        "FEISHU_VERIFICATION_TOKEN",
                                       "FEISHU_ENCRYPT_KEY",       "GITLAB_API_TOKEN",
                                       "GITLAB_WEBHOOK_TOKEN",     "LB_TRIGGER_TOKEN",
                                       "DEPLOY_TRIGGER_TOKEN",     "DINGTALK_APP_SECRET",
                                       "MATTERMOST_COMMAND_TOKEN", "MATTERMOST_BOT_TOKEN",
                                       "DISCORD_BOT_TOKEN",        "WEBEX_WEBHOOK_SECRET",
                                       "WEBEX_BOT_TOKEN",          NULL};
    for (int i = 0; vars[i]; i++) {
        char v[64];
        snprintf(v, sizeof(v), "demo-%d", i);
        setenv(vars[i], v, 1);
    }
    snprintf(path, sizeof(path), "%s/examples/ops.yaml", src ? src : "../..");
    struct cq_config *cfg = cq_config_load(path, &err);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_STR(cfg->path, path);
    CHECK_STR(cfg->log.level, "info");
    CHECK_STR(cfg->kafka.brokers, "127.0.0.1:9092");
    CHECK(cfg->kafka.partitions == 6);
    CHECK_STR(cfg->kafka.topic_pipeline_events, "chatops.pipeline-events");
    CHECK_STR(cfg->kafka.worker_group, "chatops-worker");
    CHECK(cfg->redis.password.value == NULL && cfg->redis.password.ref == NULL);
    CHECK(cfg->limits.max_body == 65536);
    CHECK(cfg->limits.max_envelope == 262144);
    CHECK(cfg->slack.enabled && cfg->feishu.enabled);
    CHECK_STR(cfg->slack.signing_secret.value, "demo-0");
    CHECK_STR(cfg->slack.signing_secret.ref, "${SLACK_SIGNING_SECRET}");
    CHECK_STR(cfg->feishu.encrypt_key.value, "demo-4");
    CHECK_STR(cfg->gitlab.webhook_token.value, "demo-6");
    CHECK_STR(cq_config_secret(cfg, "deploy_trigger"), "demo-8");
    CHECK(cq_config_secret(cfg, "nope") == NULL);
    CHECK(cfg->worker.cancel_roles && !strcmp(cfg->worker.cancel_roles[0], "sre") &&
          cfg->worker.cancel_roles[1] == NULL);

    CHECK(cfg->n_commands == 5);
    const struct cq_command *get = cq_config_command(cfg, "flag get");
    CHECK(get && get->mode == CQ_MODE_DIRECT);
    if (get) {
        CHECK_STR(get->http.method, "GET");
        CHECK_STR(get->http.base_url, "http://127.0.0.1:18080"); /* from gitlab.base_url */
        CHECK_STR(get->http.path, "/api/v4/features");
        CHECK(get->http.n_headers == 1);
        CHECK_STR(get->http.headers[0].name, "PRIVATE-TOKEN");
        CHECK_STR(get->http.headers[0].value, "{{secrets.gitlab_api}}");
        CHECK_STR(get->http.body_type, "json");
        CHECK(get->http.idempotent);
        CHECK(get->http.n_success_status == 0);
        CHECK(get->n_args == 1 && get->args[0].max_len == 64);
        CHECK(get->args[0].min == LLONG_MIN && get->args[0].max == LLONG_MAX);
    }
    const struct cq_command *set = cq_config_command(cfg, "flag set");
    CHECK(set && set->n_args == 2 && set->args[1].type == CQ_ARG_STRING);
    if (set && set->n_args == 2) {
        /* What GitLab's Features API takes: true, false or a percentage. */
        CHECK_STR(set->args[1].regex, "true|false|100|[1-9]?[0-9]");
        CHECK(set->http.n_success_status == 2 && set->http.success_status[1] == 201);
        CHECK_STR(set->http.body_type, "form");
    }
    const struct cq_command *lb = cq_config_command(cfg, "lb weight");
    CHECK(lb && lb->mode == CQ_MODE_TRIGGER_AND_WAIT);
    if (lb) {
        CHECK(lb->args[1].type == CQ_ARG_INT && lb->args[1].min == 0 && lb->args[1].max == 100);
        CHECK_STR(lb->pipeline.trigger_token_name, "lb_trigger");
        CHECK(lb->pipeline.n_variables == 4);
        CHECK_STR(lb->pipeline.variables[1].name, "LB_PERCENT");
        CHECK(lb->pipeline.timeout_s == 900 && lb->pipeline.cancel_on_timeout);
        CHECK(lb->pipeline.manual_job == NULL);
    }
    const struct cq_command *dep = cq_config_command(cfg, "deploy");
    CHECK(dep && dep->mode == CQ_MODE_TRIGGER_AND_RETURN);
    if (dep) {
        CHECK_STR(dep->pipeline.manual_job, "deploy");
        CHECK(dep->pipeline.progress_interval_s == 30); /* default */
        CHECK_STR(dep->response_type, "in_channel");
    }
    CHECK(cq_config_command(cfg, "flag") == NULL);

    const struct cq_person *bob = cq_config_person(cfg, "slack", "U0BOB00001");
    CHECK(bob && !strcmp(bob->name, "bob") && !strcmp(bob->roles[0], "sre"));
    const struct cq_person *carol = cq_config_person(cfg, "feishu", "ou_carol0001");
    CHECK(carol && !strcmp(carol->name, "carol") && !strcmp(carol->roles[1], "sre"));
    CHECK(cq_config_person(cfg, "feishu", "U0BOB00001") == NULL);
    const struct cq_channel *ch = cq_config_channel(cfg, "slack", "C0OPSPROD1");
    CHECK(ch && !strcmp(ch->name, "ops-prod") && !strcmp(ch->environment, "production"));
    CHECK(cq_config_channel(cfg, "feishu", "C0OPSPROD1") == NULL);

    CHECK(cfg->n_rules == 8); /* 7th: locks (issue 16); 8th: sre-subscriptions (issue 15) */
    CHECK(cfg->events.enabled && cfg->n_subscriptions == 2);
    /* issue 16: the deploy's lock and rate limit; other commands have neither */
    CHECK(dep && dep->lock && !strcmp(dep->lock, "env:{{args.env}}"));
    CHECK(dep && dep->limit.count == 5 && dep->limit.window_s == 3600 &&
          dep->limit.per == CQ_LIMIT_USER);
    CHECK(cfg->commands[0].lock == NULL && cfg->commands[0].limit.count == 0);
    CHECK(cfg->worker.lock_lease_ms == 30000 && cfg->worker.lock_max_s == 7200 &&
          cfg->worker.lock_force_roles && !strcmp(cfg->worker.lock_force_roles[0], "sre"));
    const struct cq_rule *prod = &cfg->rules[5];
    CHECK_STR(prod->name, "deploy-production");
    CHECK(prod->n_args == 1 && !strcmp(prod->args[0].arg, "env") &&
          !strcmp(prod->args[0].values[0], "production") && prod->args[0].values[1] == NULL);
    CHECK(cfg->rules[1].channels == NULL); /* no channels: any channel */
    cq_config_free(cfg);
    printf("  example: %zu commands, %zu people, %zu channels, %zu rules checked\n", (size_t)5,
           (size_t)3, (size_t)5, (size_t)6);
}

TEST(defaults) {
    set_secrets_env();
    struct cq_config *cfg = load_ok(BASE "commands:\n"
                                         "  ping:\n"
                                         "    mode: direct\n"
                                         "    http: {base_url: \"http://x\", path: /ping}\n");
    if (!cfg) return;
    CHECK_STR(cfg->log.level, "info");
    CHECK(cfg->kafka.partitions == 6 && cfg->kafka.replication == 1);
    CHECK(cfg->kafka.produce_timeout_ms == 2000);
    CHECK_STR(cfg->kafka.topic_requests, "chatops.requests");
    CHECK_STR(cfg->kafka.topic_dlq, "chatops.dlq");
    CHECK_STR(cfg->kafka.notifier_group, "chatops-notifier");
    CHECK_STR(cfg->redis.host, "127.0.0.1");
    CHECK(cfg->redis.port == 6379 && cfg->redis.dedupe_ttl_s == 28800);
    CHECK_STR(cfg->redis.prefix, "chatops:");
    CHECK_STR(cfg->ingress.listen, "0.0.0.0");
    CHECK(cfg->ingress.port == 8080 && cfg->ingress.threads == 1);
    CHECK_STR(cfg->ingress.gitlab_webhook_path, "/gitlab/webhook");
    CHECK(cfg->worker.http_port == 8081 && cfg->worker.lease_ms == 15000);
    CHECK(cfg->worker.poll_min_ms == 2000 && cfg->worker.poll_max_ms == 30000);
    CHECK(cfg->worker.cancel_roles == NULL);
    CHECK(cfg->notifier.http_port == 8082 && cfg->notifier.max_attempts == 8);
    CHECK(cfg->notifier.feishu_chat_interval_ms == 200);
    CHECK(cfg->notifier.max_inflight == 10000 && cfg->notifier.max_sends == 64);
    CHECK(cfg->notifier.http_timeout_ms == 10000);
    CHECK(cfg->limits.max_body == 65536 && cfg->limits.max_text == 4000);
    CHECK(cfg->limits.max_args == 32 && cfg->limits.max_arg_len == 256);
    CHECK(cfg->limits.replay_window_s == 300);
    CHECK_STR(cfg->slack.api_base, "https://slack.com/api");
    CHECK_STR(cfg->slack.command, "/ops");
    CHECK(!cfg->feishu.enabled && cfg->feishu.app_secret.value == NULL);
    CHECK_STR(cfg->feishu.api_base, "https://open.feishu.cn/open-apis");
    CHECK(cfg->gitlab.base_url == NULL);
    CHECK_STR(cfg->slack.signing_secret.value, SIGNING);
    CHECK_STR(cq_config_secret(cfg, "tok"), TOKEN);
    const struct cq_command *p = cq_config_command(cfg, "ping");
    CHECK(p && p->http.timeout_ms == 10000 && !strcmp(p->http.method, "GET"));
    CHECK(p && p->response_type == NULL && p->n_args == 0 && p->args == NULL);
    cq_config_free(cfg);
}

TEST(error_positions) {
    set_secrets_env();
    /* unknown key with did-you-mean: points at the key */
    expect_error(BASE "redis:\n  prot: 1\n",
                 "t.yaml:9:3: redis.prot: unknown key (did you mean 'port'?)");
    expect_error("kafka:\n  brokerz: x\n",
                 "t.yaml:2:3: kafka.brokerz: unknown key (did you mean 'brokers'?)");
    expect_error(BASE "limitz: {}\n", "t.yaml:8:1: limitz: unknown key (did you mean 'limits'?)");
    expect_error(BASE "zzzzzz: 1\n", "t.yaml:8:1: zzzzzz: unknown key");
    /* bad enum: points at the value */
    expect_error(BASE "commands:\n  deploy:\n    mode: deplyo\n",
                 "t.yaml:10:11: commands.deploy.mode: expected one of direct, "
                 "trigger_and_wait, trigger_and_return");
    expect_error(BASE "log: {level: verbose}\n",
                 "t.yaml:8:14: log.level: expected one of debug, info, warn, error");
    /* out of bounds */
    expect_error(BASE "limits:\n  max_body: 0\n",
                 "t.yaml:9:13: limits.max_body: 0 is below the minimum 1024");
    expect_error(BASE "notifier: {max_inflight: 0}\n",
                 "t.yaml:8:26: notifier.max_inflight: 0 is below the minimum 1");
    expect_error(BASE "notifier:\n  max_sends: 5000\n",
                 "t.yaml:9:14: notifier.max_sends: 5000 is above the maximum 4096");
    expect_error(BASE "kafka2: 1\n", "t.yaml:8:1: kafka2: unknown key (did you mean 'kafka'?)");
    expect_error(BASE "redis: {port: 70000}\n",
                 "t.yaml:8:15: redis.port: 70000 is above the maximum 65535");
    /* wrong type */
    expect_error(BASE "redis:\n  port: abc\n",
                 "t.yaml:9:9: redis.port: expected an integer, got 'abc'");
    expect_error(BASE "worker:\n  max_inflight: [1]\n",
                 "t.yaml:9:17: worker.max_inflight: expected an integer, got a list");
    expect_error(BASE "ingress: 5\n", "t.yaml:8:10: ingress: expected a mapping, got a string");
    expect_error(BASE "people:\n  bob: {roles: sre}\n",
                 "t.yaml:9:16: people.bob.roles: expected a list, got a string");
    expect_error(BASE "slack2: {enabled: yes}\n",
                 "t.yaml:8:1: slack2: unknown key (did you mean 'slack'?)");
    expect_error("kafka: {brokers: x}\nfeishu: {enabled: yes}\n",
                 "t.yaml:2:19: feishu.enabled: expected true or false, got 'yes'");
    /* missing required: points at the parent mapping */
    expect_error(BASE "channels:\n  ops:\n    platform: slack\n",
                 "t.yaml:10:5: channels.ops.id: required key is missing");
    expect_error("redis: {port: 1}\n", "t.yaml:1:1: kafka.brokers: required key is missing");
    /* a quoted value is cut on a character, with "…" */
    expect_error("kafka: {brokers: x}\nredis:\n  port: "
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\n",
                 "t.yaml:3:9: redis.port: expected an integer, got '"
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                 "\xe2\x82\xac\xe2\x82\xac\xe2\x80\xa6'");
    /* present but empty (quoted, folded/literal block with no text, blanks): as missing */
    expect_error("kafka:\n  brokers: >\n", "t.yaml:2:12: kafka.brokers: required key is empty");
    expect_error("kafka:\n  brokers: |\n", "t.yaml:2:12: kafka.brokers: required key is empty");
    expect_error("kafka: {brokers: \"  \"}\n", "t.yaml:1:18: kafka.brokers: required key is empty");
    expect_error(BASE "channels:\n  ops: {platform: slack, id: ''}\n",
                 "t.yaml:9:30: channels.ops.id: required key is empty");
    expect_error("kafka: {brokers: x}\nslack: {enabled: true}\n",
                 "t.yaml:2:8: slack.signing_secret: required when slack.enabled is true");
    /* duplicate key: points at the second one */
    expect_error(BASE "redis:\n  port: 1\n  host: h\n  port: 2\n",
                 "t.yaml:11:3: redis.port: duplicate key (first at line 9)");
    expect_error(BASE "secrets:\n  x: \"${CQT_TOK}\"\n",
                 "t.yaml:8:1: secrets: duplicate key (first at line 6)");
    /* YAML syntax: libyaml's problem at its mark */
    expect_error(BASE "redis:\n  port: [1, 2\n",
                 "t.yaml:10:1: YAML syntax error: did not find expected ',' or ']' while "
                 "parsing a flow sequence");
    expect_error("a: b\n c: d\n",
                 "t.yaml:2:3: YAML syntax error: mapping values are not allowed in this "
                 "context");
    expect_error(BASE "x: &a 1\ny: *a\n", "t.yaml:9:4: YAML aliases (*name) are not supported");
    expect_error(BASE "---\nb: 1\n", "t.yaml:8:1: only one YAML document is allowed");
    expect_error("- 1\n", "t.yaml:1:1: (top level): expected a mapping at the top level, got a "
                          "list");
    printf("  %d exact error messages checked\n", n_errors_checked);
}

TEST(secret_errors) {
    set_secrets_env();
    expect_error("kafka: {brokers: x}\nslack:\n  signing_secret: " INLINE "\n",
                 "t.yaml:3:19: slack.signing_secret: secrets must be ${ENV_VAR} or file:/path");
    expect_error(BASE "redis: {password: \"$CQT_TOK\"}\n",
                 "t.yaml:8:19: redis.password: secrets must be ${ENV_VAR} or file:/path");
    expect_error(BASE "gitlab:\n  api_token: \"${CQT_NOPE}\"\n",
                 "t.yaml:9:14: gitlab.api_token: environment variable CQT_NOPE is not set");
    expect_error(BASE "gitlab:\n  api_token: \"${CQT_EMPTY}\"\n",
                 "t.yaml:9:14: gitlab.api_token: environment variable CQT_EMPTY is empty");
    expect_error(BASE "gitlab:\n  api_token: file:/nonexistent/cqt-secret\n",
                 "t.yaml:9:14: gitlab.api_token: cannot read secret file "
                 "/nonexistent/cqt-secret: No such file or directory");
    expect_error(BASE "secrets:\n  t2: {a: b}\n",
                 "t.yaml:8:1: secrets: duplicate key (first at line 6)");
    expect_error("kafka: {brokers: x}\nsecrets:\n  t2: " INLINE "\n",
                 "t.yaml:3:7: secrets.t2: secrets must be ${ENV_VAR} or file:/path");
    expect_error("kafka: {brokers: x}\nsecrets:\n  t2: {a: b}\n",
                 "t.yaml:3:7: secrets.t2: expected a string, got a mapping");
}

TEST(cross_checks) {
    set_secrets_env();
#define CMDS                                                                                       \
    "people:\n"                                                                                    \
    "  alice: {slack: [UA], roles: [sre]}\n"                                                       \
    "channels:\n"                                                                                  \
    "  ops: {platform: slack, id: C1}\n"                                                           \
    "commands:\n"                                                                                  \
    "  deploy:\n"                                                                                  \
    "    mode: trigger_and_return\n"                                                               \
    "    args:\n"                                                                                  \
    "      - {name: env, type: enum, values: [staging, production]}\n"                             \
    "    pipeline: {project: p, trigger_token: tok, variables: {E: \"{{args.env}}\"}}\n"
    /* lines 8-17 */
    struct cq_config *ok = load_ok(BASE CMDS);
    CHECK(ok && ok->commands[0].pipeline.n_variables == 1);
    cq_config_free(ok);
    expect_error(BASE CMDS "policy:\n  - {name: r, roles: [sre], commands: [deplyo]}\n",
                 "t.yaml:19:40: policy[0].commands[0]: unknown command 'deplyo' (did you "
                 "mean 'deploy'?)");
    expect_error(BASE CMDS "policy:\n  - {name: r, roles: [sre], commands: [whoamii]}\n",
                 "t.yaml:19:40: policy[0].commands[0]: unknown command 'whoamii' (did you "
                 "mean 'whoami'?)");
    expect_error(BASE CMDS "policy:\n  - {name: r, roles: [sr], commands: [deploy]}\n",
                 "t.yaml:19:23: policy[0].roles[0]: no person has role 'sr' (did you mean "
                 "'sre'?)");
    expect_error(BASE CMDS
                 "policy:\n  - {name: r, roles: [sre], commands: [deploy], args: {envv: [x]}}\n",
                 "t.yaml:19:56: policy[0].args.envv: command 'deploy' has no argument 'envv' "
                 "(did you mean 'env'?)");
    expect_error(BASE CMDS
                 "policy:\n  - {name: r, roles: [sre], commands: [deploy], args: {env: [prod]}}\n",
                 "t.yaml:19:62: policy[0].args.env[0]: 'prod' is not a value of deploy.env");
    expect_error(BASE CMDS
                 "policy:\n  - {name: r, roles: [sre], commands: [deploy], channels: [opz]}\n",
                 "t.yaml:19:60: policy[0].channels[0]: no channel 'opz' in channels (did you "
                 "mean 'ops'?)");
    expect_error(BASE CMDS "policy:\n  - {name: r, commands: [deploy]}\n",
                 "t.yaml:19:5: policy[0]: a rule needs 'roles' or 'people'");
    expect_error(BASE "commands:\n  x:\n    mode: trigger_and_wait\n"
                      "    pipeline: {project: p, trigger_token: tokk}\n",
                 "t.yaml:11:43: commands.x.pipeline.trigger_token: no secret 'tokk' in "
                 "secrets (did you mean 'tok'?)");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n",
                 "t.yaml:10:11: commands.x: mode direct needs an 'http' section");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"http://h\", "
                      "path: /, body: \"{{secrets.tokk}}\"}\n",
                 "t.yaml:11:49: commands.x.http.body: {{secrets.tokk}}: no secret 'tokk' in "
                 "secrets (did you mean 'tok'?)");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"http://h\", "
                      "path: /, reply_template: \"{{secrets.tok}}\"}\n",
                 "t.yaml:11:59: commands.x.http.reply_template: reply_template may not use "
                 "{{secrets.tok}} (secrets stay out of chat)");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {path: /}\n",
                 "t.yaml:11:11: commands.x.http: base_url is missing and gitlab.base_url is "
                 "not set");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    args: [{name: n, regex: \"a(\"}]\n"
                      "    http: {base_url: \"http://h\", path: /}\n",
                 "t.yaml:11:29: commands.x.args[0].regex: does not compile: Unmatched ( or "
                 "\\(");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n"
                      "    args: [{name: n, type: int, min: 5, max: 1}]\n"
                      "    http: {base_url: \"http://h\", path: /}\n",
                 "t.yaml:11:38: commands.x.args[0].min: 5 is above max 1");
    expect_error(BASE "commands:\n  Flag Get:\n    mode: direct\n",
                 "t.yaml:9:3: commands[\"Flag Get\"]: command names are words of a-z, 0-9, - "
                 "and _ separated by single spaces");
    expect_error(BASE "channels:\n  a: {platform: slack, id: C1}\n  b: {platform: slack, id: C1}\n",
                 "t.yaml:10:28: channels.b.id: slack C1 is also channel a");
    expect_error(BASE "channels:\n  a: {platform: irc, id: C1}\n",
                 "t.yaml:9:17: channels.a.platform: expected one of slack, feishu, dingtalk, "
                 "mattermost, discord, webex");
}

/* A pipeline variable the worker sets itself (CHAT_INPUT, ..., CHATOPS_REQUEST_ID) would be
 * dropped or would override the chat context: refused where it is written. */
TEST(reserved_pipeline_variables) {
    set_secrets_env();
#define RESERVED_CMD(name)                                                                         \
    BASE "commands:\n"                                                                             \
         "  x:\n"                                                                                  \
         "    mode: trigger_and_wait\n"                                                            \
         "    pipeline:\n"                                                                         \
         "      project: p\n"                                                                      \
         "      trigger_token: tok\n"                                                              \
         "      variables:\n"                                                                      \
         "        OK_VAR: a\n"                                                                     \
         "        " name ": b\n"
    static const char *const reserved[] = {"CHAT_INPUT",      "CHAT_CHANNEL",
                                           "CHAT_USER_ID",    "GITLAB_USER_LOGIN",
                                           "CHATOPS_COMMAND", "CHATOPS_REQUEST_ID"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char yaml[1024], want[256];
        snprintf(yaml, sizeof(yaml), RESERVED_CMD("%s"), reserved[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:16:9: commands.x.pipeline.variables.%s: reserved name: the worker "
                 "sets %s on every trigger; use another name",
                 reserved[i], reserved[i]);
        expect_error(yaml, want);
        CHECK(cq_config_var_reserved(reserved[i]));
    }
    /* Names differ by case in GitLab: these are the user's own. */
    struct cq_config *ok = load_ok(RESERVED_CMD("chat_input"));
    CHECK(ok && ok->commands[0].pipeline.n_variables == 2);
    cq_config_free(ok);
    CHECK(!cq_config_var_reserved("OK_VAR") && !cq_config_var_reserved(NULL));
#undef RESERVED_CMD
}

TEST(more_checks) {
    set_secrets_env();
    expect_error(BASE "people:\n  a: {slack: [U1]}\n  b: {slack: [U2, U1]}\n",
                 "t.yaml:10:19: people.b.slack[1]: U1 already belongs to a");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"http://h\", "
                      "path: \"/{{user.nmae}}\"}\n",
                 "t.yaml:11:40: commands.x.http.path: unknown template variable {{user.nmae}} "
                 "(did you mean 'user.name'?)");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"http://h\", "
                      "path: /, success_status: [200, 99]}\n",
                 "t.yaml:11:65: commands.x.http.success_status[1]: 99 is outside 100..599");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"ftp://h\", "
                      "path: /}\n",
                 "t.yaml:11:22: commands.x.http.base_url: must start with http:// or https://");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n"
                      "    args: [{name: e, type: enum, values: [a], default: b}]\n"
                      "    http: {base_url: \"http://h\", path: /}\n",
                 "t.yaml:11:56: commands.x.args[0].default: 'b' is not one of the values");
    expect_error(BASE "worker: {poll_min_ms: 5000, poll_max_ms: 1000}\n",
                 "t.yaml:8:23: worker.poll_min_ms: 5000 is above worker.poll_max_ms 1000");
    expect_error(BASE "worker: {cancel_roles: [admn]}\npeople: {a: {roles: [admin]}}\n",
                 "t.yaml:8:25: worker.cancel_roles[0]: no person has role 'admn' (did you mean "
                 "'admin'?)");
    expect_error(BASE "commands:\n  help:\n    mode: direct\n",
                 "t.yaml:9:3: commands.help: 'help' is a built-in command");
}

/* Issue 19: the ingress's budget fits Slack's 3 s, the slash commands it accepts, the Feishu
 * encrypt key it requires, its admin listener. */
TEST(ingress_checks) {
    set_secrets_env();
    struct cq_config *cfg = load_ok(BASE);
    CHECK(cfg && cfg->slack.commands && cfg->slack.commands[0] && !cfg->slack.commands[1]);
    if (cfg) CHECK_STR(cfg->slack.commands[0], "/ops");
    CHECK(cfg && cfg->feishu.require_encrypt_key);
    CHECK(cfg && cfg->ingress.admin_port == 8083);
    if (cfg) CHECK_STR(cfg->ingress.admin_listen, "127.0.0.1");
    cq_config_free(cfg);
    cfg = load_ok("kafka: {brokers: \"h:1\", produce_timeout_ms: 2500}\n"
                  "slack: {enabled: true, signing_secret: \"${CQT_SIGNING}\",\n"
                  "  command: /x, commands: [/ops, /ops-eu]}\n");
    CHECK(cfg && cfg->kafka.produce_timeout_ms == 2500);
    CHECK(cfg && cfg->slack.commands[1] && !cfg->slack.commands[2]);
    if (cfg) CHECK_STR(cfg->slack.commands[1], "/ops-eu");
    cq_config_free(cfg);
    expect_error("kafka: {brokers: \"h:1\", produce_timeout_ms: 2501}\n",
                 "t.yaml:1:45: kafka.produce_timeout_ms: 2501 is above the maximum 2500");
    expect_error("kafka: {brokers: \"h:1\"}\nslack: {commands: [ops]}\n",
                 "t.yaml:2:20: slack.commands[0]: 'ops' must start with '/' (as Slack sends it, "
                 "e.g. /ops)");
    expect_error("kafka: {brokers: \"h:1\"}\n"
                 "feishu: {enabled: true, verification_token: \"${CQT_TOK}\"}\n",
                 "t.yaml:2:9: feishu.encrypt_key: required when feishu.require_encrypt_key is "
                 "true (the default): without it events are not signed and only the "
                 "verification token authenticates");
    cfg = load_ok("kafka: {brokers: \"h:1\"}\n"
                  "feishu: {enabled: true, verification_token: \"${CQT_TOK}\",\n"
                  "  require_encrypt_key: false}\n");
    CHECK(cfg && !cfg->feishu.require_encrypt_key && !cfg->feishu.encrypt_key.value);
    cq_config_free(cfg);
}

/* A secret may go into a header or a body, never into a URL part (path, query, pipeline
 * ref, base_url user info): URLs are quoted in logs, replies, claims and audit records. */
TEST(secrets_only_in_headers_and_bodies) {
    set_secrets_env();
#define DIRECT BASE "commands:\n  x:\n    mode: direct\n    http: {base_url: \"http://h/api\", "
    expect_error(DIRECT "path: \"/v1/{{secrets.tok}}\"}\n",
                 "t.yaml:11:44: commands.x.http.path: {{secrets.tok}} may not appear in the URL "
                 "(it is shown in logs, replies and audit records); pass secrets in a header or "
                 "the body");
    expect_error(DIRECT "path: /v1, query: \"key={{ secrets.tok }}\"}\n",
                 "t.yaml:11:56: commands.x.http.query: {{secrets.tok}} may not appear in the "
                 "URL (it is shown in logs, replies and audit records); pass secrets in a header "
                 "or the body");
    expect_error(BASE "commands:\n  x:\n    mode: trigger_and_wait\n"
                      "    pipeline: {project: p, trigger_token: tok, ref: \"{{secrets.tok}}\"}\n",
                 "t.yaml:11:53: commands.x.pipeline.ref: {{secrets.tok}} may not appear in a "
                 "pipeline ref (it is shown in logs, replies and audit records); pass secrets in "
                 "a header or the body");
    expect_error(BASE "commands:\n  x:\n    mode: direct\n"
                      "    http: {base_url: \"https://u:p@h/api\", path: /}\n",
                 "t.yaml:11:22: commands.x.http.base_url: may not hold user:password@ (the URL "
                 "is shown in logs and replies); pass credentials in a header");
    /* the allowed places load */
    const char *ok = DIRECT "path: \"/v1/{{args.n}}\", query: \"q={{args.n}}\",\n"
                            "           headers: {Authorization: \"Bearer {{secrets.tok}}\"},\n"
                            "           body: \"{\\\"k\\\": \\\"{{secrets.tok}}\\\"}\"}\n"
                            "    args: [{name: n}]\n";
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load_string("t.yaml", ok, strlen(ok), &err);
    if (!cfg) fprintf(stderr, "%s\n", err.msg);
    CHECK(cfg != NULL);
    /* and cq_config_redact takes every configured secret value out of a text */
    char *t = cq_config_redact(cfg, strdup("a " TOKEN " b " SIGNING TOKEN "."));
    CHECK_STR(t, "a [redacted] b [redacted][redacted].");
    free(t);
    cq_config_free(cfg);
#undef DIRECT
}

/* Every error path, with secrets in play, must keep their values out of err.msg. */
TEST(secrets_never_echoed) {
    set_secrets_env();
    static const char *const bad[] = {
        BASE "slack: {bot_token: " INLINE "}\n",
        BASE "redis:\n  password: \"" INLINE "\"\n",
        BASE "secrets: {a: \"file:" INLINE "\"}\n",
        BASE "secrets: {a: \"${" INLINE "}\"}\n",
        BASE "secrets:\n  " INLINE ": [1]\n",
        "kafka: {brokers: x}\nsecrets: {a: \"${CQT_TOK}\", b: " INLINE "}\n",
        BASE "redis: {port: \"${CQT_TOK}\"}\n",
        BASE "commands: {x: {mode: direct, http: {base_url: \"http://h\", path: "
             "\"{{secrets.tok}}{{args.nope}}\"}}}\n",
        BASE "commands: {x: {mode: trigger_and_wait, pipeline: {project: p, trigger_token: "
             "\"${CQT_TOK}\"}}}\n",
        BASE "redis: [\n",
        BASE "slack: {signing_secret: \"${CQT_SIGNING\"}\n",
        BASE "feishu: {enabled: true, app_secret: \"${CQT_TOK}\"}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cq_err err = {0};
        struct cq_config *cfg = cq_config_load_string("t.yaml", bad[i], strlen(bad[i]), &err);
        CHECK(cfg == NULL);
        CHECK(err.msg[0] != '\0');
        no_secret_in(err.msg);
        cq_config_free(cfg);
    }
    printf("  %zu bad files: no secret value in any message\n", sizeof(bad) / sizeof(bad[0]));
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

TEST(secret_files) {
    char cfgp[512], sec[512], empty[512];
    set_secrets_env();
    snprintf(cfgp, sizeof(cfgp), "%s/c.yaml", tmpdir);
    snprintf(sec, sizeof(sec), "%s/secret.txt", tmpdir);
    snprintf(empty, sizeof(empty), "%s/empty.txt", tmpdir);
    write_file(sec, FILEVAL "\n");
    write_file(empty, "\n\n");
    /* relative to the config's directory, trailing newline trimmed; absolute works too */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: x}\nsecrets:\n  rel: file:secret.txt\n  abs: \"file:%s\"\n"
             "  env: \"${CQT_TOK}\"\n",
             sec);
    write_file(cfgp, yaml);
    struct cq_err err = {0};
    struct cq_config *cfg = cq_config_load(cfgp, &err);
    CHECK(cfg != NULL);
    if (!cfg) fprintf(stderr, "  %s\n", err.msg);
    CHECK_STR(cq_config_secret(cfg, "rel"), FILEVAL);
    CHECK_STR(cq_config_secret(cfg, "abs"), FILEVAL);
    CHECK_STR(cq_config_secret(cfg, "env"), TOKEN);
    CHECK(cfg && !strcmp(cfg->secrets[0].secret.ref, "file:secret.txt"));
    cq_config_free(cfg);

    write_file(cfgp, "kafka: {brokers: x}\nsecrets:\n  e: file:empty.txt\n");
    cfg = cq_config_load(cfgp, &err);
    CHECK(cfg == NULL);
    char want[1024];
    snprintf(want, sizeof(want), "%s:3:6: secrets.e: secret file %s/empty.txt is empty", cfgp,
             tmpdir);
    CHECK_STR(err.msg, want);

    write_file(cfgp, "kafka: {brokers: x}\nsecrets:\n  m: file:missing.txt\n");
    cfg = cq_config_load(cfgp, &err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof(want),
             "%s:3:6: secrets.m: cannot read secret file %s/missing.txt: No such file or "
             "directory",
             cfgp, tmpdir);
    CHECK_STR(err.msg, want);

    /* the file itself: missing */
    snprintf(want, sizeof(want), "%s/nope.yaml", tmpdir);
    cfg = cq_config_load(want, &err);
    CHECK(cfg == NULL && err.code == CQ_EIO);
    CHECK_CONTAINS(err.msg, "nope.yaml: cannot open: No such file or directory");
    unlink(sec);
    unlink(empty);
    unlink(cfgp);
}

TEST(json_input) {
    set_secrets_env();
    const char *json =
        "{\"kafka\": {\"brokers\": \"k:1\", \"partitions\": 12},\n"
        " \"limits\": {\"max_body\": 2048},\n"
        " \"secrets\": {\"tok\": \"${CQT_TOK}\"},\n"
        " \"people\": {\"al\": {\"slack\": [\"UA\"], \"roles\": [\"dev\"]}},\n"
        " \"commands\": {\"ping\": {\"mode\": \"direct\", \"http\": {\"base_url\": \"http://h\","
        " \"path\": \"/p\", \"success_status\": [200, 202]}}},\n"
        " \"policy\": [{\"name\": \"all\", \"roles\": [\"dev\"], \"commands\": [\"*\"]}]}\n";
    struct cq_config *cfg = load_ok(json);
    if (cfg) {
        CHECK(cfg->kafka.partitions == 12 && cfg->limits.max_body == 2048);
        CHECK_STR(cq_config_secret(cfg, "tok"), TOKEN);
        CHECK(cfg->n_commands == 1 && cfg->commands[0].http.n_success_status == 2);
        CHECK(cfg->n_rules == 1 && !strcmp(cfg->rules[0].commands[0], "*"));
        CHECK(cq_config_person(cfg, "slack", "UA") == &cfg->people[0]);
    }
    cq_config_free(cfg);
    expect_error("{\"kafka\": {\"brokers\": \"k\", \"partitions\": 0}}",
                 "t.yaml:1:42: kafka.partitions: 0 is below the minimum 1");
    expect_error("{\"kafka\": {\"brokers\": \"k\",}", /* trailing comma, no closing brace */
                 "t.yaml:2:1: YAML syntax error: did not find expected ',' or '}' while "
                 "parsing a flow mapping");
}

TEST(sizes_and_env_overrides) {
    set_secrets_env();
    struct cq_config *cfg = load_ok(BASE "limits: {max_body: 64k, max_envelope: 1MiB}\n");
    CHECK(cfg && cfg->limits.max_body == 65536 && cfg->limits.max_envelope == 1048576);
    cq_config_free(cfg);
    expect_error(BASE "limits: {max_body: 64q}\n",
                 "t.yaml:8:20: limits.max_body: expected a size in bytes (e.g. 65536 or 64k), "
                 "got '64q'");

    setenv("CQ_INGRESS_PORT", "18001", 1);
    setenv("CQ_WORKER_HTTP_PORT", "18002", 1);
    setenv("CQ_NOTIFIER_HTTP_PORT", "0", 1);
    setenv("CQ_KAFKA_BROKERS", "10.0.0.1:9093,10.0.0.2:9093", 1);
    setenv("CQ_REDIS_HOST", "redis.local", 1);
    setenv("CQ_REDIS_PORT", "16379", 1);
    setenv("CQ_GITLAB_BASE_URL", "http://127.0.0.1:19999", 1);
    /* kafka.brokers is required but the environment supplies it */
    cfg = load_ok("redis: {port: 1}\ncommands:\n  x:\n    mode: direct\n    http: {path: /}\n");
    if (cfg) {
        CHECK(cfg->ingress.port == 18001);
        CHECK(cfg->worker.http_port == 18002);
        CHECK(cfg->notifier.http_port == 0);
        CHECK_STR(cfg->kafka.brokers, "10.0.0.1:9093,10.0.0.2:9093");
        CHECK_STR(cfg->redis.host, "redis.local");
        CHECK(cfg->redis.port == 16379);
        CHECK_STR(cfg->gitlab.base_url, "http://127.0.0.1:19999");
        CHECK_STR(cfg->commands[0].http.base_url, "http://127.0.0.1:19999");
    }
    cq_config_free(cfg);
    setenv("CQ_REDIS_PORT", "sixtythree", 1);
    expect_error(BASE, "t.yaml: redis.port: from CQ_REDIS_PORT: expected an integer, got "
                       "'sixtythree'");
    setenv("CQ_REDIS_PORT", "0", 1);
    expect_error(BASE, "t.yaml: redis.port: from CQ_REDIS_PORT: 0 is below the minimum 1");
    /* the file's own value is still validated */
    unsetenv("CQ_REDIS_PORT");
    setenv("CQ_INGRESS_PORT", "", 1); /* empty = not set */
    cfg = load_ok(BASE "ingress: {port: 9000}\n");
    CHECK(cfg && cfg->ingress.port == 9000);
    cq_config_free(cfg);
    const char *vars[] = {"CQ_INGRESS_PORT",  "CQ_WORKER_HTTP_PORT", "CQ_NOTIFIER_HTTP_PORT",
                          "CQ_KAFKA_BROKERS", "CQ_REDIS_HOST",       "CQ_GITLAB_BASE_URL"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

int main(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cqt-config-XXXXXX");
    if (!mkdtemp(tmpdir)) cqtest_fatal("mkdtemp failed");
    /* the CQ_* overrides must not leak in from the caller's environment */
    const char *vars[] = {"CQ_INGRESS_PORT",    "CQ_WORKER_HTTP_PORT", "CQ_NOTIFIER_HTTP_PORT",
                          "CQ_KAFKA_BROKERS",   "CQ_REDIS_HOST",       "CQ_REDIS_PORT",
                          "CQ_GITLAB_BASE_URL", "CQ_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    RUN(example_loads);
    RUN(defaults);
    RUN(error_positions);
    RUN(secret_errors);
    RUN(cross_checks);
    RUN(reserved_pipeline_variables);
    RUN(more_checks);
    RUN(ingress_checks);
    RUN(secrets_never_echoed);
    RUN(secrets_only_in_headers_and_bodies);
    RUN(secret_files);
    RUN(json_input);
    RUN(sizes_and_env_overrides);
    rmdir(tmpdir);
    return cqtest_done();
}
