/* config: loads the one YAML/JSON file every service reads at start. yamltree.c
 * turns the text into nodes with line/column marks; the static tables below
 * (key, type, default, bounds, required, env override, offset) drive parsing,
 * defaults and freeing; config_check.c then relates sections to each other
 * (commands, templates, policy, people/channel ids).
 * About 900 lines: the key table (~330 lines of F(...) rows) stays next to the
 * engine that walks it; the checks that are not table-driven live in config_check.c,
 * secret references and redaction in config_secret.c, the lookups on a loaded config in
 * config_lookup.c, the keys a reload keeps until a restart in config_restart.c. Every error is
 * "file:line:col: key.path: reason"; secret values never appear. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "strutil.h"
#include "utf8.h"
#include "yamltree.h"

#define MAX_FILE_BYTES (4u << 20)

/* ---- the declarative tables ------------------------------------------------ */

#define SCHEMA(arr, ...)                                                                           \
    { .fields = (arr), .n = sizeof(arr) / sizeof((arr)[0]), __VA_ARGS__ }
#define F(k, t, T, m, ...)                                                                         \
    { .key = (k), .type = (t), .off = offsetof(T, m), __VA_ARGS__ }
#define NOLIMIT .min = LLONG_MIN, .max = LLONG_MAX

static const char *const LOG_LEVELS[] = {"debug", "info", "warn", "error", NULL};
const char *const cq_cfg_modes[] = {"direct", "trigger_and_wait", "trigger_and_return", NULL};
static const char *const ARG_TYPES[] = {"string", "int", "enum", NULL};
static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
static const char *const BODY_TYPES[] = {"json", "form", NULL};
static const char *const RESPONSE_TYPES[] = {"ephemeral", "in_channel", NULL};
static const char *const PLATFORMS[] = {"slack",   "feishu", "dingtalk", "mattermost",
                                        "discord", "webex",  NULL};

typedef struct cq_arg_spec ARG;
static const struct field arg_fields[] = {
    F("name", F_STR, ARG, name, .required = true),
    F("type", F_ENUM, ARG, type, .choices = ARG_TYPES, .def_i = CQ_ARG_STRING),
    F("required", F_BOOL, ARG, required, .def_i = 0),
    F("default", F_STR, ARG, default_value),
    F("values", F_STRLIST, ARG, enum_values),
    F("regex", F_STR, ARG, regex),
    F("min", F_LLONG, ARG, min, .def_i = LLONG_MIN, NOLIMIT),
    F("max", F_LLONG, ARG, max, .def_i = LLONG_MAX, NOLIMIT),
    F("max_len", F_INT, ARG, max_len, .def_i = 0, .min = 0, .max = 65536),
    F("flag", F_STR, ARG, flag),
};
static const struct schema arg_schema = SCHEMA(arg_fields, .size = sizeof(ARG));

/* headers {H: tpl} and variables {NAME: tpl} share the {name, value} layout. */
_Static_assert(offsetof(struct cq_header_tpl, value) == offsetof(struct cq_var_tpl, value) &&
                   sizeof(struct cq_header_tpl) == sizeof(struct cq_var_tpl),
               "header and variable templates share one table");
static const struct field tpl_fields[] = {
    F(NULL, F_STR, struct cq_header_tpl, value),
};
static const struct schema tpl_schema = SCHEMA(tpl_fields, .size = sizeof(struct cq_header_tpl),
                                               .name_off = offsetof(struct cq_header_tpl, name));

typedef struct cq_command CMD;
static const struct field http_fields[] = {
    F("method", F_STR, CMD, http.method, .def = "GET", .choices = METHODS),
    F("base_url", F_STR, CMD, http.base_url), /* default: gitlab.base_url */
    F("path", F_STR, CMD, http.path, .required = true),
    F("query", F_STR, CMD, http.query),
    F("headers", F_DICT, CMD, http.headers, .n_off = offsetof(CMD, http.n_headers),
      .sub = &tpl_schema),
    F("body", F_STR, CMD, http.body),
    F("body_type", F_STR, CMD, http.body_type, .def = "json", .choices = BODY_TYPES),
    F("timeout_ms", F_INT, CMD, http.timeout_ms, .def_i = 10000, .min = 100, .max = 600000),
    F("success_status", F_INTLIST, CMD, http.success_status,
      .n_off = offsetof(CMD, http.n_success_status), .min = 100, .max = 599),
    F("reply_pointer", F_STR, CMD, http.reply_pointer),
    F("reply_template", F_STR, CMD, http.reply_template),
    F("idempotent", F_BOOL, CMD, http.idempotent, .def_i = 0),
};
static const struct schema http_schema = SCHEMA(http_fields);

static const struct field pipeline_fields[] = {
    F("project", F_STR, CMD, pipeline.project, .required = true),
    F("ref", F_STR, CMD, pipeline.ref, .def = "main"),
    F("trigger_token", F_STR, CMD, pipeline.trigger_token_name, .required = true),
    F("variables", F_DICT, CMD, pipeline.variables, .n_off = offsetof(CMD, pipeline.n_variables),
      .sub = &tpl_schema),
    F("timeout_s", F_INT, CMD, pipeline.timeout_s, .def_i = 1800, .min = 1, .max = 86400),
    F("cancel_on_timeout", F_BOOL, CMD, pipeline.cancel_on_timeout, .def_i = 0),
    F("manual_job", F_STR, CMD, pipeline.manual_job),
    F("progress_interval_s", F_INT, CMD, pipeline.progress_interval_s, .def_i = 30, .min = 0,
      .max = 3600),
};
static const struct schema pipeline_schema = SCHEMA(pipeline_fields);

/* confirm / approval (issue 16): on commands and on policy rules */
#define APPROVAL_FIELDS(T)                                                                         \
    F("roles", F_STRLIST, T, approval.roles, .required = true, .min = 1),                          \
        F("count", F_INT, T, approval.count, .def_i = 1, .min = 1, .max = 20),                     \
        F("expires_s", F_INT, T, approval.expires_s, .def_i = 3600, .min = 10, .max = 86400)
static const struct field cmd_approval_fields[] = {APPROVAL_FIELDS(CMD)};
static const struct schema cmd_approval_schema = SCHEMA(cmd_approval_fields);

/* limit (issue 16) */
static const char *const LIMIT_PER[] = {"user", "channel", "global", NULL};
static const struct field limit_fields[] = {
    F("count", F_INT, CMD, limit.count, .required = true, .min = 1, .max = 1000000),
    F("window_s", F_INT, CMD, limit.window_s, .required = true, .min = 1, .max = 86400 * 31),
    F("per", F_ENUM, CMD, limit.per, .choices = LIMIT_PER, .def_i = CQ_LIMIT_USER),
};
static const struct schema limit_schema = SCHEMA(limit_fields);

static const struct field command_fields[] = {
    F("description", F_STR, CMD, description),
    F("usage", F_STR, CMD, usage),
    F("mode", F_ENUM, CMD, mode, .choices = cq_cfg_modes, .required = true),
    F("args", F_LIST, CMD, args, .n_off = offsetof(CMD, n_args), .sub = &arg_schema),
    F("http", F_MAP, CMD, http, .sub = &http_schema, .optional_section = true),
    F("pipeline", F_MAP, CMD, pipeline, .sub = &pipeline_schema, .optional_section = true),
    F("response_type", F_STR, CMD, response_type, .choices = RESPONSE_TYPES),
    F("confirm", F_BOOL, CMD, confirm, .def_i = 0),
    F("approval", F_MAP, CMD, approval, .sub = &cmd_approval_schema, .optional_section = true),
    F("lock", F_STR, CMD, lock),
    F("limit", F_MAP, CMD, limit, .sub = &limit_schema, .optional_section = true),
};
static const struct schema command_schema =
    SCHEMA(command_fields, .size = sizeof(CMD), .name_off = offsetof(CMD, name));

typedef struct cq_person PERSON;
static const struct field person_fields[] = {
    F("gitlab_login", F_STR, PERSON, gitlab_login),
    F("slack", F_STRLIST, PERSON, slack_ids),
    F("feishu", F_STRLIST, PERSON, feishu_ids),
    F("dingtalk", F_STRLIST, PERSON, dingtalk_ids),
    F("mattermost", F_STRLIST, PERSON, mattermost_ids),
    F("discord", F_STRLIST, PERSON, discord_ids),
    F("webex", F_STRLIST, PERSON, webex_ids),
    F("roles", F_STRLIST, PERSON, roles),
};
static const struct schema person_schema =
    SCHEMA(person_fields, .size = sizeof(PERSON), .name_off = offsetof(PERSON, name));

typedef struct cq_channel CHAN;
static const struct field channel_fields[] = {
    F("platform", F_STR, CHAN, platform, .choices = PLATFORMS, .required = true),
    F("id", F_STR, CHAN, id, .required = true),
    F("environment", F_STR, CHAN, environment),
};
static const struct schema channel_schema =
    SCHEMA(channel_fields, .size = sizeof(CHAN), .name_off = offsetof(CHAN, name));

static const struct field match_fields[] = {
    F(NULL, F_STRLIST, struct cq_arg_match, values, .min = 1),
};
static const struct schema match_schema = SCHEMA(match_fields, .size = sizeof(struct cq_arg_match),
                                                 .name_off = offsetof(struct cq_arg_match, arg));

typedef struct cq_rule RULE;
static const struct field rule_approval_fields[] = {APPROVAL_FIELDS(RULE)};
static const struct schema rule_approval_schema = SCHEMA(rule_approval_fields);
static const struct field rule_fields[] = {
    F("name", F_STR, RULE, name, .required = true),
    F("roles", F_STRLIST, RULE, roles),
    F("people", F_STRLIST, RULE, people),
    F("commands", F_STRLIST, RULE, commands, .required = true, .min = 1),
    F("channels", F_STRLIST, RULE, channels, .min = 1),
    F("args", F_DICT, RULE, args, .n_off = offsetof(RULE, n_args), .sub = &match_schema),
    F("confirm", F_BOOL, RULE, confirm, .def_i = 0),
    F("approval", F_MAP, RULE, approval, .sub = &rule_approval_schema, .optional_section = true),
};
static const struct schema rule_schema = SCHEMA(rule_fields, .size = sizeof(RULE));

typedef struct cq_gitlab_hook HOOK;
static const struct field hook_fields[] = {
    F("name", F_STR, HOOK, name, .required = true),
    F("token", F_SECRET, HOOK, token, .required = true),
    F("instance", F_STR, HOOK, instance),
};
static const struct schema hook_schema = SCHEMA(hook_fields, .size = sizeof(HOOK));

typedef struct cq_subscription SUB;
static const struct field sub_fields[] = {
    F("name", F_STR, SUB, name, .required = true),
    F("projects", F_STRLIST, SUB, projects, .min = 1),
    F("kinds", F_STRLIST, SUB, kinds, .min = 1),
    F("statuses", F_STRLIST, SUB, statuses, .min = 1),
    F("refs", F_STRLIST, SUB, refs, .min = 1),
    F("environments", F_STRLIST, SUB, environments, .min = 1),
    F("actions", F_STRLIST, SUB, actions, .min = 1),
    F("labels", F_STRLIST, SUB, labels, .min = 1),
    F("channels", F_STRLIST, SUB, channels, .required = true, .min = 1),
};
static const struct schema sub_schema = SCHEMA(sub_fields, .size = sizeof(SUB));
/* identity (issue 17; checked in config_identity.c) */
static const char *const ACCESS_LEVELS[] = {"guest",      "reporter", "developer",
                                            "maintainer", "owner",    NULL};
typedef struct cq_role_rule RROLE;
static const struct field role_rule_fields[] = {
    F("group", F_STR, RROLE, group, .required = true),
    F("min_access", F_ENUM, RROLE, min_access, .choices = ACCESS_LEVELS, .def_i = 2),
    F("role", F_STR, RROLE, role, .required = true),
};
static const struct schema role_rule_schema = SCHEMA(role_rule_fields, .size = sizeof(RROLE));

static const struct field named_secret_fields[] = {
    F(NULL, F_SECRET, struct cq_named_secret, secret),
};
static const struct schema named_secret_schema =
    SCHEMA(named_secret_fields, .size = sizeof(struct cq_named_secret),
           .name_off = offsetof(struct cq_named_secret, name));

typedef struct cq_config CFG;
static const struct field log_fields[] = {
    F("level", F_STR, CFG, log.level, .def = "info", .choices = LOG_LEVELS, .env = "CQ_LOG_LEVEL"),
};
static const struct field topics_fields[] = {
    F("requests", F_STR, CFG, kafka.topic_requests, .def = "chatops.requests"),
    F("results", F_STR, CFG, kafka.topic_results, .def = "chatops.results"),
    F("audit", F_STR, CFG, kafka.topic_audit, .def = "chatops.audit"),
    F("pipeline_events", F_STR, CFG, kafka.topic_pipeline_events, .def = "chatops.pipeline-events"),
    F("dlq", F_STR, CFG, kafka.topic_dlq, .def = "chatops.dlq"),
    F("events", F_STR, CFG, kafka.topic_events, .def = "chatops.events"),
};
static const struct field groups_fields[] = {
    F("worker", F_STR, CFG, kafka.worker_group, .def = "chatops-worker"),
    F("notifier", F_STR, CFG, kafka.notifier_group, .def = "chatops-notifier"),
    F("events", F_STR, CFG, kafka.events_group, .def = "chatops-events"),
};
static const struct schema topics_schema = SCHEMA(topics_fields);
static const struct schema groups_schema = SCHEMA(groups_fields);
/* kafka security and librdkafka properties (issue 14; checked in config_kafka.c) */
static const char *const KAFKA_PROTOCOLS[] = {"plaintext",      "ssl",       "sasl_plaintext",
                                              "sasl_ssl",       "PLAINTEXT", "SSL",
                                              "SASL_PLAINTEXT", "SASL_SSL",  NULL};
static const char *const SASL_MECHANISMS[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
static const struct field sasl_fields[] = {
    F("mechanism", F_STR, CFG, kafka.sasl_mechanism, .choices = SASL_MECHANISMS),
    F("username", F_STR, CFG, kafka.sasl_username),
    F("password", F_SECRET, CFG, kafka.sasl_password),
};
static const struct field ssl_fields[] = {
    F("ca_location", F_STR, CFG, kafka.ssl_ca_location),
    F("certificate_location", F_STR, CFG, kafka.ssl_certificate_location),
    F("key_location", F_STR, CFG, kafka.ssl_key_location),
    F("key_password", F_SECRET, CFG, kafka.ssl_key_password),
};
static const struct field kprop_fields[] = {
    F(NULL, F_PROPVAL, struct cq_kafka_property, value),
};
static const struct schema sasl_schema = SCHEMA(sasl_fields);
static const struct schema ssl_schema = SCHEMA(ssl_fields);
static const struct schema kprop_schema =
    SCHEMA(kprop_fields, .size = sizeof(struct cq_kafka_property),
           .name_off = offsetof(struct cq_kafka_property, name));
static const struct field kafka_fields[] = {
    F("brokers", F_STR, CFG, kafka.brokers, .required = true, .env = "CQ_KAFKA_BROKERS"),
    F("partitions", F_INT, CFG, kafka.partitions, .def_i = 6, .min = 1, .max = 1024),
    F("replication", F_INT, CFG, kafka.replication, .def_i = 1, .min = 1, .max = 16),
    /* at most 2500: the ingress answers a request no later than this budget plus its 200 ms
     * guard (+50 ms tick), and Slack gives up on a slash command after 3 s */
    F("produce_timeout_ms", F_INT, CFG, kafka.produce_timeout_ms, .def_i = 2000, .min = 100,
      .max = 2500),
    F("max_poll_interval_ms", F_INT, CFG, kafka.max_poll_interval_ms, .def_i = 300000, .min = 10000,
      .max = 86400000),
    F("report_delay_ms", F_INT, CFG, kafka.report_delay_ms, .def_i = 5, .min = 0, .max = 1000),
    F("topics", F_MAP, CFG, kafka, .sub = &topics_schema),
    F("groups", F_MAP, CFG, kafka, .sub = &groups_schema),
    F("security_protocol", F_STR, CFG, kafka.security_protocol, .def = "plaintext",
      .choices = KAFKA_PROTOCOLS),
    F("sasl", F_MAP, CFG, kafka, .sub = &sasl_schema),
    F("ssl", F_MAP, CFG, kafka, .sub = &ssl_schema),
    F("properties", F_DICT, CFG, kafka.properties, .n_off = offsetof(CFG, kafka.n_properties),
      .sub = &kprop_schema),
};
static const struct field redis_fields[] = {
    F("host", F_STR, CFG, redis.host, .def = "127.0.0.1", .env = "CQ_REDIS_HOST"),
    F("port", F_INT, CFG, redis.port, .def_i = 6379, .min = 1, .max = 65535,
      .env = "CQ_REDIS_PORT"),
    F("password", F_SECRET, CFG, redis.password),
    F("connect_timeout_ms", F_INT, CFG, redis.connect_timeout_ms, .def_i = 1000, .min = 10,
      .max = 60000),
    F("command_timeout_ms", F_INT, CFG, redis.command_timeout_ms, .def_i = 1000, .min = 10,
      .max = 60000),
    F("prefix", F_STR, CFG, redis.prefix, .def = "chatops:"),
    F("dedupe_ttl_s", F_INT, CFG, redis.dedupe_ttl_s, .def_i = 28800, .min = 27000, .max = 604800),
    /* ACL, database, Sentinel, TLS (issue 14; checked in config_check.c) */
    F("username", F_STR, CFG, redis.username),
    F("db", F_INT, CFG, redis.db, .def_i = 0, .min = 0, .max = 65535),
    F("sentinels", F_STRLIST, CFG, redis.sentinels),
    F("master_name", F_STR, CFG, redis.master_name),
    F("tls", F_BOOL, CFG, redis.tls, .def_i = 0),
};
static const struct field paths_fields[] = {
    F("slack_commands", F_STR, CFG, ingress.slack_commands_path, .def = "/slack/commands"),
    F("slack_events", F_STR, CFG, ingress.slack_events_path, .def = "/slack/events"),
    F("feishu_events", F_STR, CFG, ingress.feishu_events_path, .def = "/feishu/events"),
    F("gitlab_webhook", F_STR, CFG, ingress.gitlab_webhook_path, .def = "/gitlab/webhook"),
    F("dingtalk_events", F_STR, CFG, ingress.dingtalk_events_path, .def = "/dingtalk/events"),
    F("mattermost_commands", F_STR, CFG, ingress.mattermost_commands_path,
      .def = "/mattermost/commands"),
    F("discord_interactions", F_STR, CFG, ingress.discord_interactions_path,
      .def = "/discord/interactions"),
    F("webex_events", F_STR, CFG, ingress.webex_events_path, .def = "/webex/events"),
    /* button clicks (issue 16): Slack interactivity, Feishu card callbacks */
    F("slack_actions", F_STR, CFG, ingress.slack_actions_path, .def = "/slack/actions"),
    F("feishu_cards", F_STR, CFG, ingress.feishu_cards_path, .def = "/feishu/cards"),
};
const struct schema cq_cfg_paths_schema = SCHEMA(paths_fields);
static const struct field ingress_fields[] = {
    F("listen", F_STR, CFG, ingress.listen, .def = "0.0.0.0"),
    F("port", F_INT, CFG, ingress.port, .def_i = 8080, .min = 0, .max = 65535,
      .env = "CQ_INGRESS_PORT"),
    F("admin_listen", F_STR, CFG, ingress.admin_listen, .def = "127.0.0.1"),
    F("admin_port", F_INT, CFG, ingress.admin_port, .def_i = 8083, .min = 0, .max = 65535,
      .env = "CQ_INGRESS_ADMIN_PORT"),
    F("threads", F_INT, CFG, ingress.threads, .def_i = 1, .min = 1, .max = 64),
    F("max_connections", F_INT, CFG, ingress.max_connections, .def_i = 10000, .min = 1,
      .max = 1000000),
    F("idle_timeout_s", F_INT, CFG, ingress.idle_timeout_s, .def_i = 30, .min = 1, .max = 3600),
    F("connection_memory", F_SIZE, CFG, ingress.connection_memory, .def_i = 8192, .min = 4096,
      .max = 1 << 20),
    F("paths", F_MAP, CFG, ingress, .sub = &cq_cfg_paths_schema),
};
static const struct field worker_fields[] = {
    F("http_port", F_INT, CFG, worker.http_port, .def_i = 8081, .min = 0, .max = 65535,
      .env = "CQ_WORKER_HTTP_PORT"),
    F("max_inflight", F_INT, CFG, worker.max_inflight, .def_i = 10000, .min = 1, .max = 1000000),
    F("lease_ms", F_INT, CFG, worker.lease_ms, .def_i = 15000, .min = 500, .max = 600000),
    F("max_request_age_s", F_INT, CFG, worker.max_request_age_s, .def_i = 3600, .min = 10,
      .max = 26000),
    F("duplicate_wait_s", F_INT, CFG, worker.duplicate_wait_s, .def_i = 120, .min = 1,
      .max = 86400),
    F("poll_min_ms", F_INT, CFG, worker.poll_min_ms, .def_i = 2000, .min = 100, .max = 600000),
    F("poll_max_ms", F_INT, CFG, worker.poll_max_ms, .def_i = 30000, .min = 100, .max = 3600000),
    F("log_tail_lines", F_INT, CFG, worker.log_tail_lines, .def_i = 20, .min = 0, .max = 1000),
    F("log_tail_bytes", F_INT, CFG, worker.log_tail_bytes, .def_i = 4000, .min = 0, .max = 65536),
    F("cancel_roles", F_STRLIST, CFG, worker.cancel_roles),
    F("confirm_expires_s", F_INT, CFG, worker.confirm_expires_s, .def_i = 600, .min = 10,
      .max = 86400),
    /* locks (issue 16) */
    F("lock_lease_ms", F_INT, CFG, worker.lock_lease_ms, .def_i = 30000, .min = 1000,
      .max = 600000),
    F("lock_max_s", F_INT, CFG, worker.lock_max_s, .def_i = 7200, .min = 10, .max = 86400 * 7),
    F("lock_manual_s", F_INT, CFG, worker.lock_manual_s, .def_i = 86400, .min = 10,
      .max = 86400 * 31),
    F("lock_force_roles", F_STRLIST, CFG, worker.lock_force_roles),
};
static const struct field notifier_fields[] = {
    F("http_port", F_INT, CFG, notifier.http_port, .def_i = 8082, .min = 0, .max = 65535,
      .env = "CQ_NOTIFIER_HTTP_PORT"),
    F("max_attempts", F_INT, CFG, notifier.max_attempts, .def_i = 8, .min = 1, .max = 100),
    F("backoff_base_ms", F_INT, CFG, notifier.backoff_base_ms, .def_i = 500, .min = 10,
      .max = 60000),
    F("backoff_max_ms", F_INT, CFG, notifier.backoff_max_ms, .def_i = 30000, .min = 10,
      .max = 3600000),
    F("slack_channel_interval_ms", F_INT, CFG, notifier.slack_channel_interval_ms, .def_i = 1000,
      .min = 0, .max = 60000),
    F("feishu_chat_interval_ms", F_INT, CFG, notifier.feishu_chat_interval_ms, .def_i = 200,
      .min = 0, .max = 60000),
    F("max_inflight", F_INT, CFG, notifier.max_inflight, .def_i = 10000, .min = 1, .max = 1000000),
    F("max_sends", F_INT, CFG, notifier.max_sends, .def_i = 64, .min = 1, .max = 4096),
    F("http_timeout_ms", F_INT, CFG, notifier.http_timeout_ms, .def_i = 10000, .min = 100,
      .max = 300000),
    F("claim_lease_ms", F_INT, CFG, notifier.claim_lease_ms, .def_i = 60000, .min = 1000,
      .max = 3600000),
    F("drain_ms", F_INT, CFG, notifier.drain_ms, .def_i = 0, .min = 0, .max = 900000),
};
static const struct field limits_fields[] = {
    F("max_body", F_SIZE, CFG, limits.max_body, .def_i = 65536, .min = 1024, .max = 16 << 20),
    F("max_text", F_INT, CFG, limits.max_text, .def_i = 4000, .min = 1, .max = 1000000),
    F("max_args", F_INT, CFG, limits.max_args, .def_i = 32, .min = 1, .max = 1024),
    F("max_arg_len", F_INT, CFG, limits.max_arg_len, .def_i = 256, .min = 1, .max = 65536),
    F("replay_window_s", F_INT, CFG, limits.replay_window_s, .def_i = 300, .min = 1, .max = 86400),
    F("max_envelope", F_SIZE, CFG, limits.max_envelope, .def_i = 262144, .min = 4096,
      .max = 16 << 20),
};
static const struct field slack_fields[] = {
    F("enabled", F_BOOL, CFG, slack.enabled, .def_i = 0),
    F("signing_secret", F_SECRET, CFG, slack.signing_secret),
    F("bot_token", F_SECRET, CFG, slack.bot_token),
    F("api_base", F_STR, CFG, slack.api_base, .def = "https://slack.com/api"),
    F("command", F_STR, CFG, slack.command, .def = "/ops"),
    F("commands", F_STRLIST, CFG, slack.commands, .min = 1),
};
static const struct field feishu_fields[] = {
    F("enabled", F_BOOL, CFG, feishu.enabled, .def_i = 0),
    F("app_id", F_STR, CFG, feishu.app_id),
    F("app_secret", F_SECRET, CFG, feishu.app_secret),
    F("verification_token", F_SECRET, CFG, feishu.verification_token),
    F("encrypt_key", F_SECRET, CFG, feishu.encrypt_key),
    F("require_encrypt_key", F_BOOL, CFG, feishu.require_encrypt_key, .def_i = 1),
    F("bot_open_id", F_STR, CFG, feishu.bot_open_id),
    F("api_base", F_STR, CFG, feishu.api_base, .def = "https://open.feishu.cn/open-apis"),
};
static const struct field gitlab_fields[] = {
    F("base_url", F_STR, CFG, gitlab.base_url, .env = "CQ_GITLAB_BASE_URL"),
    F("api_token", F_SECRET, CFG, gitlab.api_token),
    F("webhook_token", F_SECRET, CFG, gitlab.webhook_token),
    F("trigger_lookup_attempts", F_INT, CFG, gitlab.trigger_lookup_attempts, .def_i = 3, .min = 1,
      .max = 10),
    F("trigger_lookup_candidates", F_INT, CFG, gitlab.trigger_lookup_candidates, .def_i = 20,
      .min = 1, .max = 100),
    F("hooks", F_LIST, CFG, gitlab.hooks, .n_off = offsetof(CFG, gitlab.n_hooks),
      .sub = &hook_schema),
};
/* issue 18 (docs/platforms.md) */
static const struct field dingtalk_fields[] = {
    F("enabled", F_BOOL, CFG, dingtalk.enabled, .def_i = 0),
    F("app_secret", F_SECRET, CFG, dingtalk.app_secret),
    F("max_clock_skew_s", F_INT, CFG, dingtalk.max_clock_skew_s, .def_i = 3600, .min = 1,
      .max = 86400),
    F("api_base", F_STR, CFG, dingtalk.api_base, .def = "https://api.dingtalk.com"),
    F("app_key", F_STR, CFG, dingtalk.app_key),
    F("robot_code", F_STR, CFG, dingtalk.robot_code),
    F("messages_per_minute", F_INT, CFG, dingtalk.messages_per_minute, .def_i = 20, .min = 1,
      .max = 6000),
};
static const struct field mattermost_fields[] = {
    F("enabled", F_BOOL, CFG, mattermost.enabled, .def_i = 0),
    F("tokens", F_DICT, CFG, mattermost.tokens, .n_off = offsetof(CFG, mattermost.n_tokens),
      .sub = &named_secret_schema),
    F("api_base", F_STR, CFG, mattermost.api_base),
    F("bot_token", F_SECRET, CFG, mattermost.bot_token),
};
static const struct field discord_fields[] = {
    F("enabled", F_BOOL, CFG, discord.enabled, .def_i = 0),
    F("public_key", F_STR, CFG, discord.public_key),
    F("application_id", F_STR, CFG, discord.application_id),
    F("api_base", F_STR, CFG, discord.api_base, .def = "https://discord.com/api/v10"),
    F("bot_token", F_SECRET, CFG, discord.bot_token),
    F("max_clock_skew_s", F_INT, CFG, discord.max_clock_skew_s, .def_i = 300, .min = 1,
      .max = 86400),
};
static const struct field webex_fields[] = {
    F("enabled", F_BOOL, CFG, webex.enabled, .def_i = 0),
    F("webhook_secret", F_SECRET, CFG, webex.webhook_secret),
    F("bot_token", F_SECRET, CFG, webex.bot_token),
    F("bot_person_id", F_STR, CFG, webex.bot_person_id),
    F("bot_email", F_STR, CFG, webex.bot_email),
    F("bot_name", F_STR, CFG, webex.bot_name),
    F("api_base", F_STR, CFG, webex.api_base, .def = "https://webexapis.com/v1"),
};
static const struct schema dingtalk_schema = SCHEMA(dingtalk_fields);
static const struct schema mattermost_schema = SCHEMA(mattermost_fields);
static const struct schema discord_schema = SCHEMA(discord_fields);
static const struct schema webex_schema = SCHEMA(webex_fields);
static const struct field events_fields[] = {
    F("enabled", F_BOOL, CFG, events.enabled, .def_i = 0),
    F("dedupe_ttl_s", F_INT, CFG, events.dedupe_ttl_s, .def_i = 86400, .min = 60,
      .max = 30 * 86400),
    F("status_ttl_s", F_INT, CFG, events.status_ttl_s, .def_i = 30 * 86400, .min = 3600,
      .max = 365 * 86400),
    F("coalesce_ms", F_INT, CFG, events.coalesce_ms, .def_i = 2000, .min = 0, .max = 60000),
    F("coalesce_max", F_INT, CFG, events.coalesce_max, .def_i = 5, .min = 1, .max = 1000),
    F("max_chat_subscriptions", F_INT, CFG, events.max_chat_subscriptions, .def_i = 50, .min = 0,
      .max = 1000),
    F("max_inflight", F_INT, CFG, events.max_inflight, .def_i = 1000, .min = 1, .max = 100000),
};
static const struct schema events_schema = SCHEMA(events_fields);
static const struct field identity_fields[] = {
    F("resolvers", F_STRLIST, CFG, identity.resolvers, .min = 1),
    F("cache_ttl_s", F_INT, CFG, identity.cache_ttl_s, .def_i = 300, .min = 1, .max = 86400),
    F("negative_ttl_s", F_INT, CFG, identity.negative_ttl_s, .def_i = 60, .min = 1, .max = 86400),
    F("lookups_per_s", F_INT, CFG, identity.lookups_per_s, .def_i = 20, .min = 1, .max = 10000),
    F("timeout_ms", F_INT, CFG, identity.timeout_ms, .def_i = 5000, .min = 100, .max = 60000),
    F("gitlab_token", F_SECRET, CFG, identity.gitlab_token),
    F("roles_from_gitlab", F_LIST, CFG, identity.role_rules,
      .n_off = offsetof(CFG, identity.n_role_rules), .sub = &role_rule_schema),
};
static const struct schema identity_schema = SCHEMA(identity_fields);
static const struct schema log_schema = SCHEMA(log_fields);
static const struct schema kafka_schema = SCHEMA(kafka_fields);
static const struct schema redis_schema = SCHEMA(redis_fields);
static const struct schema ingress_schema = SCHEMA(ingress_fields);
static const struct schema worker_schema = SCHEMA(worker_fields);
static const struct schema notifier_schema = SCHEMA(notifier_fields);
static const struct schema limits_schema = SCHEMA(limits_fields);
static const struct schema slack_schema = SCHEMA(slack_fields);
static const struct schema feishu_schema = SCHEMA(feishu_fields);
static const struct schema gitlab_schema = SCHEMA(gitlab_fields);

static const struct field config_fields[] = {
    F("log", F_MAP, CFG, log, .sub = &log_schema),
    F("kafka", F_MAP, CFG, kafka, .sub = &kafka_schema),
    F("redis", F_MAP, CFG, redis, .sub = &redis_schema),
    F("ingress", F_MAP, CFG, ingress, .sub = &ingress_schema),
    F("worker", F_MAP, CFG, worker, .sub = &worker_schema),
    F("notifier", F_MAP, CFG, notifier, .sub = &notifier_schema),
    F("limits", F_MAP, CFG, limits, .sub = &limits_schema),
    F("slack", F_MAP, CFG, slack, .sub = &slack_schema),
    F("feishu", F_MAP, CFG, feishu, .sub = &feishu_schema),
    F("gitlab", F_MAP, CFG, gitlab, .sub = &gitlab_schema),
    F("dingtalk", F_MAP, CFG, dingtalk, .sub = &dingtalk_schema),
    F("mattermost", F_MAP, CFG, mattermost, .sub = &mattermost_schema),
    F("discord", F_MAP, CFG, discord, .sub = &discord_schema),
    F("webex", F_MAP, CFG, webex, .sub = &webex_schema),
    F("events", F_MAP, CFG, events, .sub = &events_schema),
    F("subscriptions", F_LIST, CFG, subscriptions, .n_off = offsetof(CFG, n_subscriptions),
      .sub = &sub_schema),
    F("secrets", F_DICT, CFG, secrets, .n_off = offsetof(CFG, n_secrets),
      .sub = &named_secret_schema),
    F("people", F_DICT, CFG, people, .n_off = offsetof(CFG, n_people), .sub = &person_schema),
    F("channels", F_DICT, CFG, channels, .n_off = offsetof(CFG, n_channels),
      .sub = &channel_schema),
    F("commands", F_DICT, CFG, commands, .n_off = offsetof(CFG, n_commands),
      .sub = &command_schema),
    F("policy", F_LIST, CFG, rules, .n_off = offsetof(CFG, n_rules), .sub = &rule_schema),
    F("identity", F_MAP, CFG, identity, .sub = &identity_schema),
};
const struct schema cq_cfg_schema = SCHEMA(config_fields);

/* ---- context, key paths and messages --------------------------------------- */

bool cq_cfg_plain_key(const char *k) {
    if (!*k) return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-') return false;
    return true;
}

/* Appends ".key" (or ["key"] when it has spaces or dots); returns the old length. */
size_t cq_cfg_push_key(struct ctx *c, const char *key) {
    size_t old = c->plen;
    int n;
    if (cq_cfg_plain_key(key))
        n = snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);
    else
        n = snprintf(c->path + old, sizeof(c->path) - old, "[\"%s\"]", key);
    c->plen = n < 0 ? old : old + (size_t)n;
    if (c->plen >= sizeof(c->path)) c->plen = sizeof(c->path) - 1;
    return old;
}

size_t cq_cfg_push_index(struct ctx *c, size_t i) {
    size_t old = c->plen;
    int n = snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
    c->plen = n < 0 ? old : old + (size_t)n;
    if (c->plen >= sizeof(c->path)) c->plen = sizeof(c->path) - 1;
    return old;
}

void cq_cfg_pop(struct ctx *c, size_t old) {
    c->plen = old;
    c->path[old] = '\0';
}

enum cq_rc cq_cfg_fail(struct ctx *c, const struct cq_ynode *at, const char *fmt, ...) {
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    const char *path = c->plen ? c->path : "(top level)";
    if (c->env)
        return cq_err_set(c->err, CQ_ECONFIG, "%s: %s: from %s: %s", c->name, path, c->env, reason);
    return cq_err_set(c->err, CQ_ECONFIG, "%s:%d:%d: %s: %s", c->name, at ? at->line : 1,
                      at ? at->col : 1, path, reason);
}

enum cq_rc cq_cfg_nomem(struct ctx *c) {
    return cq_err_set(c->err, CQ_ENOMEM, "%s: out of memory while loading", c->name);
}

/* A value quoted for a message: at most 40 bytes, cut on a character with "…", control bytes
 * shown as '?'. */
const char *cq_cfg_shown(const char *v, char buf[64]) {
    cq_utf8_copy(buf, 41, v, strlen(v), NULL);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    return buf;
}

/* ---- did you mean ---------------------------------------------------------- */

void cq_cfg_sugg_add(struct sugg *s, const char *cand) {
    if (!cand) return;
    size_t d = cq_levenshtein(s->word, cand);
    size_t len = strlen(s->word);
    size_t limit = (len + 2) / 3;
    if (limit < 1) limit = 1;
    if (limit > 3) limit = 3;
    if (d <= limit && (!s->best || d < s->dist)) {
        s->best = cand;
        s->dist = d;
    }
}

/* " (did you mean 'x'?)" or "" into buf. */
const char *cq_cfg_sugg_hint(const struct sugg *s, char buf[96]) {
    buf[0] = '\0';
    if (s->best) snprintf(buf, 96, " (did you mean '%s'?)", s->best);
    return buf;
}

/* ---- scalars ----------------------------------------------------------------- */

bool cq_cfg_parse_ll(const char *s, long long *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* Sizes: a count of bytes with an optional k/m/g suffix (1024-based; kb, KiB also). */
static bool parse_size(const char *s, long long *out) {
    char *end;
    if (!isdigit((unsigned char)*s)) return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return false;
    unsigned shift = 0;
    if (*end) {
        char u = (char)tolower((unsigned char)*end);
        const char *rest = end + 1;
        if (u == 'k')
            shift = 10;
        else if (u == 'm')
            shift = 20;
        else if (u == 'g')
            shift = 30;
        else
            return false;
        if (*rest && strcasecmp(rest, "b") != 0 && strcasecmp(rest, "ib") != 0) return false;
    }
    if (v > ((unsigned long long)LLONG_MAX >> shift)) return false;
    *out = (long long)(v << shift);
    return true;
}

/* ---- table-driven defaults, filling and freeing ---------------------------- */

static void free_fields(const struct schema *s, void *base);

void cq_cfg_free_field(const struct field *f, void *base) {
    switch (f->type) {
    case F_STR:
        free(*MEMBER(base, f->off, char *));
        *MEMBER(base, f->off, char *) = NULL;
        break;
    case F_SECRET:
    case F_PROPVAL:
        cq_cfg_secret_clear(MEMBER(base, f->off, struct cq_secret));
        break;
    case F_STRLIST: {
        char **l = *MEMBER(base, f->off, char **);
        for (size_t i = 0; l && l[i]; i++)
            free(l[i]);
        free(l);
        *MEMBER(base, f->off, char **) = NULL;
        break;
    }
    case F_INTLIST:
        free(*MEMBER(base, f->off, int *));
        *MEMBER(base, f->off, int *) = NULL;
        *MEMBER(base, f->n_off, size_t) = 0;
        break;
    case F_MAP:
        free_fields(f->sub, base);
        break;
    case F_LIST:
    case F_DICT: {
        char *arr = *MEMBER(base, f->off, char *);
        size_t n = *MEMBER(base, f->n_off, size_t);
        for (size_t i = 0; arr && i < n; i++) {
            void *el = arr + i * f->sub->size;
            if (f->type == F_DICT) free(*MEMBER(el, f->sub->name_off, char *));
            free_fields(f->sub, el);
        }
        free(arr);
        *MEMBER(base, f->off, char *) = NULL;
        *MEMBER(base, f->n_off, size_t) = 0;
        break;
    }
    default:
        break;
    }
}

static void free_fields(const struct schema *s, void *base) {
    for (size_t i = 0; i < s->n; i++)
        cq_cfg_free_field(&s->fields[i], base);
}

static enum cq_rc set_defaults(struct ctx *c, const struct schema *s, void *base) {
    for (size_t i = 0; i < s->n; i++) {
        const struct field *f = &s->fields[i];
        switch (f->type) {
        case F_STR:
            if (f->def && !(*MEMBER(base, f->off, char *) = strdup(f->def))) return cq_cfg_nomem(c);
            break;
        case F_INT:
        case F_ENUM:
            *MEMBER(base, f->off, int) = (int)f->def_i;
            break;
        case F_LLONG:
            *MEMBER(base, f->off, long long) = f->def_i;
            break;
        case F_SIZE:
            *MEMBER(base, f->off, size_t) = (size_t)f->def_i;
            break;
        case F_BOOL:
            *MEMBER(base, f->off, bool) = f->def_i != 0;
            break;
        case F_MAP:
            if (set_defaults(c, f->sub, base) != CQ_OK) return c->err->code;
            break;
        default:
            break;
        }
    }
    return CQ_OK;
}

static enum cq_rc fill_map(struct ctx *c, const struct schema *s, void *base,
                           const struct cq_ynode *map, const struct cq_ynode *at);

static const char *choices_text(const char *const *ch, char buf[160]) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; ch[i]; i++) {
        int n = snprintf(buf + used, 160 - used, "%s%s", i ? ", " : "", ch[i]);
        if (n < 0 || (size_t)n >= 160 - used) break;
        used += (size_t)n;
    }
    return buf;
}

int cq_cfg_choice_index(const char *const *ch, const char *v) {
    for (int i = 0; ch[i]; i++)
        if (strcmp(ch[i], v) == 0) return i;
    return -1;
}

/* Keys must be scalars and unique; unknown keys get a did-you-mean (when s != NULL). */
static enum cq_rc check_keys(struct ctx *c, const struct cq_ynode *map, const struct schema *s) {
    for (size_t i = 0; i < map->n; i++) {
        const struct cq_ynode *k = map->items[2 * i];
        if (k->kind != CQ_YNODE_SCALAR)
            return cq_cfg_fail(c, k, "keys must be plain strings, not %s", cq_ynode_kind_name(k));
        for (size_t j = 0; j < i; j++) {
            const struct cq_ynode *prev = map->items[2 * j];
            if (prev->kind == CQ_YNODE_SCALAR && strcmp(prev->value, k->value) == 0) {
                size_t old = cq_cfg_push_key(c, k->value);
                enum cq_rc rc = cq_cfg_fail(c, k, "duplicate key (first at line %d)", prev->line);
                cq_cfg_pop(c, old);
                return rc;
            }
        }
        if (!s) continue;
        bool known = false;
        struct sugg sg = {.word = k->value};
        for (size_t f = 0; f < s->n && !known; f++) {
            known = strcmp(s->fields[f].key, k->value) == 0;
            cq_cfg_sugg_add(&sg, s->fields[f].key);
        }
        if (!known) {
            char hint[96];
            size_t old = cq_cfg_push_key(c, k->value);
            enum cq_rc rc = cq_cfg_fail(c, k, "unknown key%s", cq_cfg_sugg_hint(&sg, hint));
            cq_cfg_pop(c, old);
            return rc;
        }
    }
    return CQ_OK;
}

static enum cq_rc fill_number(struct ctx *c, const struct field *f, void *base,
                              const struct cq_ynode *v) {
    long long x;
    char b[64];
    bool ok = f->type == F_SIZE ? parse_size(v->value, &x) : cq_cfg_parse_ll(v->value, &x);
    if (!ok)
        return cq_cfg_fail(c, v, "expected %s, got '%s'",
                           f->type == F_SIZE ? "a size in bytes (e.g. 65536 or 64k)" : "an integer",
                           cq_cfg_shown(v->value, b));
    if (x < f->min) return cq_cfg_fail(c, v, "%lld is below the minimum %lld", x, f->min);
    if (x > f->max) return cq_cfg_fail(c, v, "%lld is above the maximum %lld", x, f->max);
    if (f->type == F_INT)
        *MEMBER(base, f->off, int) = (int)x;
    else if (f->type == F_LLONG)
        *MEMBER(base, f->off, long long) = x;
    else
        *MEMBER(base, f->off, size_t) = (size_t)x;
    return CQ_OK;
}

static enum cq_rc fill_field(struct ctx *c, const struct field *f, void *base,
                             const struct cq_ynode *v) {
    char b[64], chb[160];
    bool scalar = v->kind == CQ_YNODE_SCALAR && !cq_ynode_is_null(v);
    bool want_scalar = f->type <= F_SECRET;

    if (want_scalar && !scalar) {
        static const char *const what[] = {"a string",      "an integer", "an integer", "a size",
                                           "true or false", "a string",   "a string"};
        return cq_cfg_fail(c, v, "expected %s, got %s", what[f->type], cq_ynode_kind_name(v));
    }
    switch (f->type) {
    case F_STR: {
        if (f->choices && cq_cfg_choice_index(f->choices, v->value) < 0)
            return cq_cfg_fail(c, v, "expected one of %s", choices_text(f->choices, chb));
        /* `key: ""`, `key: >` (an empty block scalar) or blanks: present, yet nothing to
         * use, which for a required key is the same as missing */
        if (f->required && v->value[strspn(v->value, " \t\r\n")] == '\0')
            return cq_cfg_fail(c, v, "required key is empty");
        char *dup = strdup(v->value);
        if (!dup) return cq_cfg_nomem(c);
        free(*MEMBER(base, f->off, char *));
        *MEMBER(base, f->off, char *) = dup;
        return CQ_OK;
    }
    case F_ENUM: {
        int i = cq_cfg_choice_index(f->choices, v->value);
        if (i < 0) return cq_cfg_fail(c, v, "expected one of %s", choices_text(f->choices, chb));
        *MEMBER(base, f->off, int) = i;
        return CQ_OK;
    }
    case F_INT:
    case F_LLONG:
    case F_SIZE:
        return fill_number(c, f, base, v);
    case F_BOOL:
        if (strcmp(v->value, "true") == 0)
            *MEMBER(base, f->off, bool) = true;
        else if (strcmp(v->value, "false") == 0)
            *MEMBER(base, f->off, bool) = false;
        else
            return cq_cfg_fail(c, v, "expected true or false, got '%s'", cq_cfg_shown(v->value, b));
        return CQ_OK;
    case F_SECRET:
        return cq_cfg_resolve_secret(c, v, MEMBER(base, f->off, struct cq_secret));
    case F_PROPVAL: { /* kafka.properties: "${ENV}" / "file:" resolve as secrets */
        struct cq_secret *out = MEMBER(base, f->off, struct cq_secret);
        if (!scalar) return cq_cfg_fail(c, v, "expected a string, got %s", cq_ynode_kind_name(v));
        if (strncmp(v->value, "${", 2) == 0 || strncmp(v->value, "file:", 5) == 0)
            return cq_cfg_resolve_secret(c, v, out);
        cq_cfg_secret_clear(out);
        return (out->value = strdup(v->value)) ? CQ_OK : cq_cfg_nomem(c);
    }
    case F_STRLIST:
    case F_INTLIST: {
        if (v->kind != CQ_YNODE_SEQ)
            return cq_cfg_fail(c, v, "expected a list, got %s", cq_ynode_kind_name(v));
        if (f->type == F_STRLIST && (long long)v->n < f->min)
            return cq_cfg_fail(c, v, "needs at least %lld item%s", f->min, f->min == 1 ? "" : "s");
        cq_cfg_free_field(f, base);
        if (f->type == F_STRLIST) {
            char **l = calloc(v->n + 1, sizeof(*l));
            if (!l) return cq_cfg_nomem(c);
            *MEMBER(base, f->off, char **) = l;
        } else {
            int *l = calloc(v->n ? v->n : 1, sizeof(*l));
            if (!l) return cq_cfg_nomem(c);
            *MEMBER(base, f->off, int *) = l;
            *MEMBER(base, f->n_off, size_t) = v->n;
        }
        for (size_t i = 0; i < v->n; i++) {
            const struct cq_ynode *it = v->items[i];
            size_t old = cq_cfg_push_index(c, i);
            enum cq_rc rc = CQ_OK;
            if (it->kind != CQ_YNODE_SCALAR || cq_ynode_is_null(it)) {
                rc = cq_cfg_fail(c, it, "expected %s, got %s",
                                 f->type == F_STRLIST ? "a string" : "an integer",
                                 cq_ynode_kind_name(it));
            } else if (f->type == F_STRLIST) {
                char **l = *MEMBER(base, f->off, char **);
                if (!(l[i] = strdup(it->value))) rc = cq_cfg_nomem(c);
            } else {
                long long x;
                if (!cq_cfg_parse_ll(it->value, &x))
                    rc = cq_cfg_fail(c, it, "expected an integer, got '%s'",
                                     cq_cfg_shown(it->value, b));
                else if (x < f->min || x > f->max)
                    rc = cq_cfg_fail(c, it, "%lld is outside %lld..%lld", x, f->min, f->max);
                else
                    (*MEMBER(base, f->off, int *))[i] = (int)x;
            }
            cq_cfg_pop(c, old);
            if (rc != CQ_OK) return rc;
        }
        return CQ_OK;
    }
    case F_MAP:
        return fill_map(c, f->sub, base, v, v);
    case F_LIST:
    case F_DICT: {
        bool dict = f->type == F_DICT;
        if (v->kind != (dict ? CQ_YNODE_MAP : CQ_YNODE_SEQ))
            return cq_cfg_fail(c, v, "expected %s, got %s", dict ? "a mapping" : "a list",
                               cq_ynode_kind_name(v));
        if (dict && check_keys(c, v, NULL) != CQ_OK) return c->err->code;
        cq_cfg_free_field(f, base);
        char *arr = calloc(v->n ? v->n : 1, f->sub->size);
        if (!arr) return cq_cfg_nomem(c);
        *MEMBER(base, f->off, char *) = arr;
        *MEMBER(base, f->n_off, size_t) = v->n;
        for (size_t i = 0; i < v->n; i++) {
            void *el = arr + i * f->sub->size;
            const struct cq_ynode *item = dict ? v->items[2 * i + 1] : v->items[i];
            size_t old =
                dict ? cq_cfg_push_key(c, v->items[2 * i]->value) : cq_cfg_push_index(c, i);
            enum cq_rc rc = set_defaults(c, f->sub, el);
            if (rc == CQ_OK && dict &&
                !(*MEMBER(el, f->sub->name_off, char *) = strdup(v->items[2 * i]->value)))
                rc = cq_cfg_nomem(c);
            if (rc == CQ_OK) {
                if (f->sub->fields[0].key == NULL) /* the value itself: {NAME: value} */
                    rc = fill_field(c, &f->sub->fields[0], el, item);
                else
                    rc = fill_map(c, f->sub, el, item, item);
            }
            cq_cfg_pop(c, old);
            if (rc != CQ_OK) return rc;
        }
        return CQ_OK;
    }
    }
    return CQ_OK;
}

/* Fills the fields of s from map (NULL or null = section absent: defaults stay, but
 * required keys and environment overrides still apply; `at` is where to point). */
static enum cq_rc fill_map(struct ctx *c, const struct schema *s, void *base,
                           const struct cq_ynode *map, const struct cq_ynode *at) {
    if (map && cq_ynode_is_null(map)) map = NULL;
    if (map && map->kind != CQ_YNODE_MAP)
        return cq_cfg_fail(c, map, "expected a mapping, got %s", cq_ynode_kind_name(map));
    if (map && check_keys(c, map, s) != CQ_OK) return c->err->code;
    for (size_t i = 0; i < s->n; i++) {
        const struct field *f = &s->fields[i];
        const struct cq_ynode *v = cq_ynode_get(map, f->key);
        const char *ev = f->env ? getenv(f->env) : NULL;
        size_t old = cq_cfg_push_key(c, f->key);
        enum cq_rc rc = CQ_OK;
        if (v && cq_ynode_is_null(v)) v = NULL;
        if (v)
            rc = fill_field(c, f, base, v);
        else if (f->type == F_MAP && !f->optional_section)
            rc = fill_map(c, f->sub, base, NULL, at);
        else if (f->required && !(ev && *ev))
            rc = cq_cfg_fail(c, at, "required key is missing");
        if (rc == CQ_OK && ev && *ev) {
            struct cq_ynode tmp = {
                .kind = CQ_YNODE_SCALAR, .value = (char *)ev, .len = strlen(ev), .plain = true};
            c->env = f->env;
            rc = fill_field(c, f, base, &tmp);
            c->env = NULL;
        }
        cq_cfg_pop(c, old);
        if (rc != CQ_OK) return rc;
    }
    return CQ_OK;
}

/* ---- public API -------------------------------------------------------------- */

static struct cq_config *load(const char *name, const char *dir, const char *text, size_t len,
                              struct ctx c) {
    struct cq_err *err = c.err;
    struct cq_config *cfg = NULL;
    struct cq_ynode *root = cq_yaml_parse(name, text, len, err);
    bool ok = false;

    if (!root) return NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (cfg) cfg->refs = 1;
    if (!cfg || !(cfg->path = strdup(name)) || (dir && !(c.dir = strdup(dir)))) {
        cq_cfg_nomem(&c);
        goto out;
    }
    if (set_defaults(&c, &cq_cfg_schema, cfg) != CQ_OK) goto out;
    if (root->kind != CQ_YNODE_MAP) {
        cq_cfg_fail(&c, root, "expected a mapping at the top level, got %s",
                    cq_ynode_kind_name(root));
        goto out;
    }
    if (fill_map(&c, &cq_cfg_schema, cfg, root, root) != CQ_OK) goto out;
    if (cq_cfg_cross_check(&c, cfg, root) != CQ_OK) goto out;
    if (cq_cfg_kafka_check(&c, cfg, root) != CQ_OK) goto out;
    if (cq_cfg_events_check(&c, cfg, root) != CQ_OK) goto out;
    ok = true;
out:
    cq_ynode_free(root);
    free(c.dir);
    if (!ok) {
        cq_config_free(cfg);
        cfg = NULL;
    } else {
        cq_err_clear(err);
    }
    return cfg;
}

struct cq_config *cq_config_load_string(const char *name, const char *yaml, size_t len,
                                        struct cq_err *err) {
    if (!name || !yaml) {
        cq_err_set(err, CQ_EINVAL, "cq_config_load_string: name and yaml are required");
        return NULL;
    }
    return load(name, NULL, yaml, len, (struct ctx){.name = name, .err = err});
}

static struct cq_config *load_file(const char *path, struct cq_err *err,
                                   void (*unresolved)(void *arg, const char *msg), void *arg) {
    struct cq_config *cfg = NULL;
    char *text = NULL, *dir = NULL;
    FILE *f = NULL;

    if (!path) {
        cq_err_set(err, CQ_EINVAL, "cq_config_load: no path");
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        cq_err_set(err, CQ_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    text = malloc(MAX_FILE_BYTES + 1);
    if (!text) {
        cq_err_set(err, CQ_ENOMEM, "%s: out of memory while loading", path);
        goto out;
    }
    size_t n = fread(text, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        cq_err_set(err, CQ_EIO, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (n > MAX_FILE_BYTES) {
        cq_err_set(err, CQ_ETOOBIG, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
        goto out;
    }
    const char *slash = strrchr(path, '/');
    dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) {
        cq_err_set(err, CQ_ENOMEM, "%s: out of memory while loading", path);
        goto out;
    }
    cfg = load(
        path, dir, text, n,
        (struct ctx){.name = path, .err = err, .unresolved = unresolved, .unresolved_arg = arg});
out:
    if (f) fclose(f);
    free(text);
    free(dir);
    return cfg;
}

struct cq_config *cq_config_load(const char *path, struct cq_err *err) {
    return load_file(path, err, NULL, NULL);
}

struct cq_config *cq_config_load_lenient(const char *path,
                                         void (*unresolved)(void *arg, const char *msg), void *arg,
                                         struct cq_err *err) {
    return load_file(path, err, unresolved, arg);
}

void cq_config_free(struct cq_config *cfg) {
    if (!cfg) return;
    free_fields(&cq_cfg_schema, cfg);
    free(cfg->kafka.client_conf);
    free(cfg->path);
    free(cfg);
}
