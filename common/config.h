/* config: the one YAML file (JSON is YAML too) every service loads at start.
 * Parsed with libyaml, validated against a declarative table of keys (type,
 * default, bounds, required), then copied into the typed structs below.
 * Errors name file:line:col and the key path; secret values never appear in
 * any message. Ownership: cq_config_load returns a new config; cq_config_free. */
#ifndef CQ_CONFIG_H
#define CQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

/* A secret is written in the file as "${ENV_VAR}" or "file:/path" (never inline).
 * ref is that text (safe to print); value is the resolved secret (never print). */
struct cq_secret {
    char *ref;   /* NULL when the key was absent */
    char *value; /* NULL when absent; "" is never produced (empty secret = error) */
};

enum cq_mode { CQ_MODE_DIRECT, CQ_MODE_TRIGGER_AND_WAIT, CQ_MODE_TRIGGER_AND_RETURN };

enum cq_arg_type { CQ_ARG_STRING, CQ_ARG_INT, CQ_ARG_ENUM };

struct cq_arg_spec {
    char *name;
    char *flag; /* "--env" style flag name without dashes, NULL = positional */
    enum cq_arg_type type;
    bool required;
    char *default_value; /* NULL = none */
    char **enum_values;  /* NULL-terminated, for CQ_ARG_ENUM */
    char *regex;         /* POSIX extended regex, anchored by the checker; NULL = none */
    long long min, max;  /* for CQ_ARG_INT; defaults LLONG_MIN/LLONG_MAX */
    int max_len;         /* 0 = the global limits.max_arg_len */
};

struct cq_header_tpl {
    char *name;
    char *value; /* template; may reference {{secrets.NAME}} */
};

struct cq_http_action { /* direct mode */
    char *method;       /* GET, POST, PUT, PATCH, DELETE */
    char *base_url;     /* scheme://host[:port][/prefix]: the only reachable origin */
    char *path;         /* template appended to base_url */
    char *query;        /* template, optional */
    struct cq_header_tpl *headers;
    size_t n_headers;
    char *body;      /* template, optional */
    char *body_type; /* "json" or "form" (decides escaping); default json */
    int timeout_ms;
    int *success_status; /* list; default {200,201,204} */
    size_t n_success_status;
    char *reply_pointer;  /* JSON pointer into the response, optional */
    char *reply_template; /* template with {{response.<pointer>}}, optional */
    bool idempotent;      /* safe to retry after an unknown outcome (reads) */
};

struct cq_var_tpl {
    char *name;
    char *value; /* template */
};

struct cq_pipeline_action {   /* trigger_and_wait / trigger_and_return */
    char *project;            /* GitLab project id or url-encoded path */
    char *ref;                /* fixed ref, or a template such as {{args.ref}} */
    char *trigger_token_name; /* key into secrets */
    struct cq_var_tpl *variables;
    size_t n_variables;
    int timeout_s; /* trigger_and_wait: give up after this long */
    bool cancel_on_timeout;
    char *manual_job; /* trigger_and_return: job a person must click, optional */
    int progress_interval_s;
};

/* approval: {roles, count, expires_s} on a command or a policy rule (issue 16). */
struct cq_approval {
    char **roles;  /* NULL-terminated approver roles; NULL = no approval needed */
    int count;     /* distinct approvers needed, default 1 */
    int expires_s; /* the request ends unapproved after this, default 3600 */
};

/* limit: {count, window_s, per} on a command (issue 16): at most count runs in window_s
 * seconds per user, channel or in all. count 0 = no limit. */
enum cq_limit_per { CQ_LIMIT_USER, CQ_LIMIT_CHANNEL, CQ_LIMIT_GLOBAL };
struct cq_limit {
    int count;
    int window_s;
    enum cq_limit_per per;
};

struct cq_command {
    char *name; /* may contain spaces for sub-commands: "flag get", "lb weight" */
    char *description;
    char *usage;
    enum cq_mode mode;
    struct cq_arg_spec *args;
    size_t n_args;
    struct cq_http_action http;         /* mode == DIRECT */
    struct cq_pipeline_action pipeline; /* other modes */
    char *response_type;                /* "ephemeral" or "in_channel" (Slack) */
    bool confirm;                       /* the requester confirms with a button first */
    struct cq_approval approval;        /* others approve first (roles NULL = no) */
    char *lock;                         /* named lock template, "env:{{args.env}}"; NULL = none */
    struct cq_limit limit;              /* rate limit (count 0 = none) */
};

struct cq_person {
    char *name;
    char *gitlab_login;
    char **slack_ids;  /* NULL-terminated */
    char **feishu_ids; /* open_ids, NULL-terminated */
    /* issue 18: one list per platform, NULL-terminated */
    char **dingtalk_ids;   /* senderStaffId */
    char **mattermost_ids; /* user_id */
    char **discord_ids;    /* user id (snowflake) */
    char **webex_ids;      /* personId */
    char **roles;          /* NULL-terminated */
};

struct cq_channel {
    char *name;        /* e.g. "ops-prod" */
    char *platform;    /* "slack" | "feishu" | "dingtalk" | "mattermost" | "discord" | "webex" */
    char *id;          /* platform channel/chat id */
    char *environment; /* optional label */
};

struct cq_arg_match {
    char *arg;
    char **values; /* NULL-terminated allowed values */
};

struct cq_rule {
    char *name;
    char **roles;    /* NULL-terminated; "*" = everyone, known or not */
    char **people;   /* NULL-terminated person names */
    char **commands; /* NULL-terminated command names; "*" = all */
    char **channels; /* NULL-terminated channel names; NULL = any channel */
    struct cq_arg_match *args;
    size_t n_args;
    bool confirm;                /* what this rule allows needs the requester's confirmation */
    struct cq_approval approval; /* ... or others' approval (roles NULL = no) */
};

/* gitlab.hooks: one GitLab instance or hook (project, group or system) with its own token. */
struct cq_gitlab_hook {
    char *name;             /* shown as the event's instance */
    struct cq_secret token; /* X-Gitlab-Token, required */
    char *instance;         /* X-Gitlab-Instance it must come from (e.g. https://gitlab.com);
                               NULL = any */
};

/* subscriptions: which GitLab events go to which channels (worker/events_match.c). Every
 * list is optional (NULL = anything) except channels; project/ref globs use fnmatch. */
struct cq_subscription {
    char *name;
    char **projects;     /* project path globs; a plain group path "ops" matches "ops/..." */
    char **kinds;        /* push, tag_push, merge_request, pipeline, job, deployment, ... */
    char **statuses;     /* pipeline/job/deployment status, or "fixed" / "broken" */
    char **refs;         /* ref / branch globs */
    char **environments; /* deployment environment globs */
    char **actions;      /* MR / issue actions: open, merge, close, update, ... */
    char **labels;       /* MR / issue labels (any of) */
    char **channels;     /* names in channels: (required, platform + id) */
};

/* identity.roles_from_gitlab: members of group with at least min_access get role. */
struct cq_role_rule {
    char *group;    /* GitLab group id or full path ("ops/sre") */
    int min_access; /* index into guest, reporter, developer, maintainer, owner (10..50) */
    char *role;
};

struct cq_named_secret {
    char *name;
    struct cq_secret secret;
};

/* kafka.properties: one librdkafka property. A value written as "${ENV}" or "file:path" is
 * a secret (value.ref set, never printed); any other value is plain (value.ref NULL). */
struct cq_kafka_property {
    char *name;
    struct cq_secret value;
};

struct cq_config {
    char *path;
    int refs; /* 1 from cq_config_load; cq_config_ref/unref (config_reload.h) */

    struct {
        char *level; /* debug|info|warn|error, default info */
    } log;

    struct {
        char *brokers;               /* required, "host:port,..." */
        int partitions;              /* default 6, 1..1024 */
        int replication;             /* default 1, 1..16 */
        int produce_timeout_ms;      /* delivery budget, default 2000, 100..2500 */
        char *topic_requests;        /* default chatops.requests */
        char *topic_results;         /* default chatops.results */
        char *topic_audit;           /* default chatops.audit */
        char *topic_pipeline_events; /* default chatops.pipeline-events */
        char *topic_dlq;             /* default chatops.dlq */
        char *topic_events;          /* default chatops.events (GitLab events) */
        char *events_group;          /* default chatops-events (the worker's router) */
        char *worker_group;          /* default chatops-worker */
        char *notifier_group;        /* default chatops-notifier */
        int max_poll_interval_ms;    /* consumer max.poll.interval.ms, default 300000 */
        int report_delay_ms;         /* worker: delivery reports ride other wake-ups, default 5 */
        /* Security and tuning for every librdkafka client (common/config_kafka.c). */
        char *security_protocol;              /* plaintext|ssl|sasl_plaintext|sasl_ssl */
        char *sasl_mechanism;                 /* PLAIN|SCRAM-SHA-256|SCRAM-SHA-512, optional */
        char *sasl_username;                  /* optional */
        struct cq_secret sasl_password;       /* optional */
        char *ssl_ca_location;                /* CA bundle (PEM) to verify brokers, optional */
        char *ssl_certificate_location;       /* client certificate (PEM), optional */
        char *ssl_key_location;               /* client key (PEM), optional */
        struct cq_secret ssl_key_password;    /* optional */
        struct cq_kafka_property *properties; /* kafka.properties: any librdkafka property */
        size_t n_properties;
        const char **client_conf; /* all of the above as NULL-terminated "key","value" pairs
                                   * (values borrowed; secrets resolved): what every client
                                   * is given. Never print it. */
    } kafka;

    struct {
        char *host; /* default 127.0.0.1 */
        int port;   /* default 6379 */
        struct cq_secret password;
        int connect_timeout_ms; /* default 1000 */
        int command_timeout_ms; /* default 1000 */
        char *prefix;           /* key prefix, default "chatops:" */
        int dedupe_ttl_s;       /* default 28800 (8 h), min 27000 (7.5 h) */
        /* ACL, database, Sentinel, TLS (issue 14) */
        char *username;    /* AUTH username password (Redis 6 ACL); NULL = AUTH password */
        int db;            /* SELECT on every connect, default 0 */
        char **sentinels;  /* "host:port", NULL-terminated; NULL = connect to host:port */
        char *master_name; /* required with sentinels */
        bool tls;          /* refused at load: this build's hiredis has no TLS */
    } redis;

    struct {
        char *listen;                    /* default 0.0.0.0 */
        int port;                        /* default 8080 */
        char *admin_listen;              /* /healthz /readyz /metrics, default 127.0.0.1 */
        int admin_port;                  /* default 8083 */
        char *slack_commands_path;       /* default /slack/commands */
        char *slack_events_path;         /* default /slack/events */
        char *feishu_events_path;        /* default /feishu/events */
        char *gitlab_webhook_path;       /* default /gitlab/webhook */
        char *dingtalk_events_path;      /* default /dingtalk/events */
        char *mattermost_commands_path;  /* default /mattermost/commands */
        char *discord_interactions_path; /* default /discord/interactions */
        char *webex_events_path;         /* default /webex/events */
        char *slack_actions_path;        /* Slack interactivity (block_actions), /slack/actions */
        char *feishu_cards_path;         /* Feishu card.action.trigger callbacks, /feishu/cards */
        int threads;                     /* MHD threads, default 1 */
        int max_connections;             /* open HTTP connections at once, default 10000 */
        int idle_timeout_s;              /* an idle keep-alive connection is closed, default 30 */
        size_t connection_memory;        /* per-connection buffer (headers), bytes, default 8192 */
    } ingress;

    struct {
        int http_port;         /* /healthz /readyz /metrics, default 8081 */
        int max_inflight;      /* default 10000 */
        int lease_ms;          /* pipeline owner lease, default 15000 */
        int max_request_age_s; /* older requests are answered "expired", default 3600 */
        int duplicate_wait_s;  /* a duplicate waits this long for a live owner, 120 */
        int poll_min_ms;       /* default 2000 */
        int poll_max_ms;       /* default 30000 */
        int log_tail_lines;    /* default 20 */
        int log_tail_bytes;    /* default 4000 */
        char **cancel_roles;   /* roles that may cancel others' pipelines */
        int confirm_expires_s; /* a confirmation waits this long, default 600 (issue 16) */

        /* locks (issue 16): an action's lock lapses lock_lease_ms after its worker died, is
         * held at most lock_max_s; `lock NAME REASON` holds it lock_manual_s; the roles of
         * lock_force_roles may `unlock --force` others' locks */
        int lock_lease_ms;
        int lock_max_s;
        int lock_manual_s;
        char **lock_force_roles;
    } worker;

    struct {
        int http_port;                 /* default 8082 */
        int max_attempts;              /* default 8 */
        int backoff_base_ms;           /* default 500 */
        int backoff_max_ms;            /* default 30000 */
        int slack_channel_interval_ms; /* default 1000 */
        int feishu_chat_interval_ms;   /* default 200 */
        int max_inflight;              /* results held at once; default 10000 */
        int max_sends;                 /* concurrent platform requests; default 64 */
        int http_timeout_ms;           /* one platform request; default 10000 */
        int claim_lease_ms;            /* once-claim lease, renewed while held; default 60000 */
        int drain_ms; /* SIGTERM drain bound; 0 (default): http_timeout_ms + 5000 */
    } notifier;

    struct {
        size_t max_body;     /* bytes, default 65536 */
        int max_text;        /* chars of command text, default 4000 */
        int max_args;        /* default 32 */
        int max_arg_len;     /* default 256 */
        int replay_window_s; /* default 300 */
        size_t max_envelope; /* bytes, default 262144 */
    } limits;

    struct {
        bool enabled;
        struct cq_secret signing_secret; /* required when enabled */
        struct cq_secret bot_token;
        char *api_base;  /* default https://slack.com/api */
        char *command;   /* slash command name, default /ops */
        char **commands; /* accepted slash commands, default [command] */
    } slack;

    struct {
        bool enabled;
        char *app_id;
        struct cq_secret app_secret;
        struct cq_secret verification_token; /* required when enabled */
        struct cq_secret encrypt_key;        /* enables signature + AES */
        bool require_encrypt_key;            /* default true: encrypt_key required */
        char *bot_open_id; /* the bot's own open_id (ignored sender, stripped mention) */
        char *api_base;    /* default https://open.feishu.cn/open-apis */
    } feishu;

    /* issue 18: the ingress side of four more platforms (docs/platforms.md) */
    struct {
        bool enabled;
        struct cq_secret app_secret; /* signs the callback's timestamp; required when enabled */
        int max_clock_skew_s;        /* callback timestamp window, default 3600 */
        /* notifier side (notifier/dingtalk_send.c) */
        char *api_base;          /* default https://api.dingtalk.com (robot OpenAPI) */
        char *app_key;           /* the app's AppKey: with app_secret, the access token */
        char *robot_code;        /* the robot's robotCode for OpenAPI sends */
        int messages_per_minute; /* per conversation, default 20 (DingTalk's robot limit) */
    } dingtalk;

    struct {
        bool enabled;
        struct cq_named_secret *tokens; /* {team: "${TOKEN}"}: a slash command token each */
        size_t n_tokens;
        /* notifier side (notifier/mattermost_send.c) */
        char *api_base;             /* the server, e.g. https://mattermost.example.com */
        struct cq_secret bot_token; /* POST /api/v4/posts when there is no response_url */
    } mattermost;

    struct {
        bool enabled;
        char *public_key;           /* the application's Ed25519 public key, 64 hex digits */
        char *application_id;       /* the application (client) id */
        char *api_base;             /* default https://discord.com/api/v10 */
        struct cq_secret bot_token; /* "Bot ..." for chatopsctl discord register */
        int max_clock_skew_s;       /* X-Signature-Timestamp window, default 300 */
    } discord;

    struct {
        bool enabled;
        struct cq_secret webhook_secret; /* X-Spark-Signature key; required when enabled */
        struct cq_secret bot_token;      /* reads the message text (GET /messages/{id}) */
        char *bot_person_id;             /* the bot's own personId: its messages are ignored */
        char *bot_email;                 /* the same by e-mail */
        char *bot_name;                  /* its display name, cut from a message's front */
        char *api_base;                  /* default https://webexapis.com/v1 */
    } webex;

    struct {
        char *base_url;                 /* e.g. https://gitlab.example.com */
        struct cq_secret api_token;     /* PRIVATE-TOKEN for status/jobs/trace/cancel */
        struct cq_secret webhook_token; /* X-Gitlab-Token for pipeline hooks */
        int trigger_lookup_attempts;    /* looks for a pipeline whose trigger answer was lost */
        int trigger_lookup_candidates;  /* newest pipelines of the ref checked per look */
        struct cq_gitlab_hook *hooks;   /* gitlab.hooks: per instance/hook tokens */
        size_t n_hooks;
    } gitlab;

    struct {              /* GitLab events -> subscribed channels (issue 15) */
        bool enabled;     /* ingress publishes hooks to kafka.topics.events; worker routes */
        int dedupe_ttl_s; /* a re-sent hook (same uuid) is dropped this long, 86400 */
        int status_ttl_s; /* last pipeline status per project+ref kept, 30 days */
        int coalesce_ms;  /* push burst window, default 2000 */
        int coalesce_max; /* more pushes than this in a window: one summary, default 5 */
        int max_chat_subscriptions; /* per channel, default 50 */
        int max_inflight;           /* events held at once before the consumer pauses, 1000 */
    } events;
    struct cq_subscription *subscriptions;
    size_t n_subscriptions;

    struct cq_named_secret *secrets; /* secrets: {NAME: "${ENV}"} for templates/triggers */
    size_t n_secrets;

    struct cq_command *commands;
    size_t n_commands;
    struct cq_person *people;
    size_t n_people;
    struct cq_channel *channels;
    size_t n_channels;
    struct cq_rule *rules;
    size_t n_rules;

    /* identity (issue 17): who a chat user is when people: does not name them */
    struct {
        char **resolvers;                /* static|gitlab_email|roles_from_gitlab; NULL = static */
        int cache_ttl_s;                 /* a resolved identity is reused this long, 300 */
        int negative_ttl_s;              /* "no GitLab account" is reused this long, 60 */
        int lookups_per_s;               /* outbound lookups (all platforms), 20 */
        int timeout_ms;                  /* one lookup request; also the wait for a slot, 5000 */
        struct cq_secret gitlab_token;   /* admin PRIVATE-TOKEN for /users?search=; optional:
                                            gitlab.api_token when absent */
        struct cq_role_rule *role_rules; /* roles_from_gitlab */
        size_t n_role_rules;
    } identity;
};

/* GitLab's access level of a cq_role_rule.min_access (guest 10 ... owner 50). */
#define CQ_ACCESS_LEVEL(min_access) (((min_access) + 1) * 10)

/* Loads and validates path. On error returns NULL and fills err->msg with
 * "path:line:col: key.path: reason" (did-you-mean for unknown keys). */
struct cq_config *cq_config_load(const char *path, struct cq_err *err);

/* `chatopsctl config check` where the secrets are not (CI, a laptop): validates like
 * cq_config_load, but a secret that cannot be resolved (unset or empty ${ENV}, unreadable
 * or empty file:) is left unresolved (ref set, value NULL) and reported through
 * unresolved(arg, "file:line:col: key: reason") instead of failing. A malformed reference
 * still fails. The result is for checking only: never give it to a service. */
struct cq_config *cq_config_load_lenient(const char *path,
                                         void (*unresolved)(void *arg, const char *msg), void *arg,
                                         struct cq_err *err);

/* Same, from a string; name is used in messages in place of the path. */
struct cq_config *cq_config_load_string(const char *name, const char *yaml, size_t len,
                                        struct cq_err *err);

void cq_config_free(struct cq_config *cfg);

/* Live reload: gives next the current value of every key a running service reads only at
 * start (listeners, Kafka and Redis clients, topics, groups; the list is RESTART_KEYS in
 * config.c and the table in docs/configuration.md) and calls changed(arg, "kafka.brokers")
 * for each such key the file changed. Key names only: values are never passed on. */
enum cq_rc cq_config_keep_restart_keys(struct cq_config *next, const struct cq_config *cur,
                                       void (*changed)(void *arg, const char *key), void *arg,
                                       struct cq_err *err);

/* Borrowed look-ups; NULL when absent. */
const struct cq_command *cq_config_command(const struct cq_config *cfg, const char *name);
const char *cq_config_secret(const struct cq_config *cfg, const char *name);

/* True for the pipeline variable names the worker sets on every trigger (CHAT_INPUT,
 * CHAT_CHANNEL, CHAT_USER_ID, GITLAB_USER_LOGIN, CHATOPS_COMMAND, CHATOPS_REQUEST_ID):
 * a configured variable may not use them. */
bool cq_config_var_reserved(const char *name);

/* The policy role that matches users no `people` entry names ("*" matches only people who
 * are configured: an unknown user is allowed nothing unless a rule says so). */
#define CQ_ROLE_UNKNOWN "@unknown"

/* Replaces every occurrence of a configured secret value (secrets:, tokens and signing
 * secrets) in text with "[redacted]". Takes ownership of text and returns it or a new
 * string (NULL only when text was NULL or memory ran out; text is then freed). For any
 * text that may quote what a secret went into: API answers, error bodies. */
char *cq_config_redact(const struct cq_config *cfg, char *text);
const struct cq_person *cq_config_person(const struct cq_config *cfg, const char *platform,
                                         const char *user_id);
/* The person's id list for platform (NULL-terminated, borrowed), NULL when none or the
 * platform is unknown. */
char **cq_person_ids(const struct cq_person *p, const char *platform);
const struct cq_channel *cq_config_channel(const struct cq_config *cfg, const char *platform,
                                           const char *channel_id);

#endif
