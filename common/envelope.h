/* envelope: the versioned JSON records the services exchange, see docs/architecture.md:
 * requests (ingress -> worker on chatops.requests, "v":1), results (worker -> notifier on
 * chatops.results, "v":1), audit records (worker -> chatops.audit, "v":1) and dead letters
 * (worker or notifier -> chatops.dlq, "v":2; version 1 letters are still decoded). One
 * encoder and one decoder per record. Encode/decode with cJSON
 * and strict validation: every field checked for type, presence and length,
 * with the reason in err->msg. All strings are owned by the struct. */
#ifndef CQ_ENVELOPE_H
#define CQ_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CQ_ENVELOPE_VERSION 1

/* Bounds checked on encode and decode, in bytes of UTF-8 (a longer field is rejected with
 * its name, never truncated; producers that may exceed one, e.g. a log tail in text, must
 * shorten it first). */
#define CQ_ENVELOPE_MAX_LEN (256 * 1024) /* default total message bound (max_len == 0) */
#define CQ_ENV_MAX_ID 128                /* ids: request, user, channel, chat, message, ts */
#define CQ_ENV_MAX_NAME 256              /* display names */
#define CQ_ENV_MAX_TIME 64               /* RFC 3339 timestamps */
#define CQ_ENV_MAX_KEY 256               /* dedupe_key */
#define CQ_ENV_MAX_COMMAND 128           /* request.command (one word) */
#define CQ_ENV_MAX_COMMAND_LINE 4096     /* result.command ("deploy web production") */
#define CQ_ENV_MAX_URL 2048              /* response_url, pipeline.web_url */
#define CQ_ENV_MAX_TEXT (64 * 1024)      /* request.text, result.text */
#define CQ_ENV_MAX_RETRY_NUM 1000        /* request.retry_num */

struct cq_reply_route {
    char *response_url; /* Slack */
    char *message_id;   /* Feishu: the triggering message (reply target) */
    char *chat_id;      /* Feishu chat id / Slack channel id for postMessage */
    char *thread_ts;    /* Slack thread, optional */
    /* issue 18 (docs/platforms.md has the mapping per platform), all optional: */
    char *expires_at;        /* RFC 3339: until when response_url takes replies (DingTalk
                                sessionWebhookExpiredTime, Discord received + 15 min) */
    char *conversation_type; /* "group" | "direct" */
    char *user_id;           /* the user to answer one-to-one (DingTalk senderStaffId) */
    char *app_id;            /* Discord application id */
};

struct cq_request {
    char *id;          /* UUIDv4, required */
    char *received_at; /* RFC 3339, required */
    char *platform;    /* "slack" | "feishu" | "dingtalk" | "mattermost" | "discord" |
                          "webex", required */
    char *tenant;      /* team_id / tenant_key */
    char *channel_id, *channel_name;
    char *user_id, *user_name;
    char *command; /* first word, required (may be "" only for empty invocations? no: required
                      non-empty) */
    char *text;    /* the rest, may be "" */
    struct cq_reply_route reply;
    char *dedupe_key;  /* "slack:<trigger_id>" | "feishu:<event_id>", required */
    int retry_num;     /* platform retry counter (X-Slack-Retry-Num), 0 when first delivery */
    char *text_source; /* optional, issue 18: "webex" = the text is not in the envelope (command
                          "help", text ""): the worker reads it from the platform by
                          reply.message_id before deciding */
    /* optional "action": a button click (Slack block_actions, Feishu card.action.trigger):
     * the action's name ("approve", "deny", "confirm", "cancel"), its value, the request it
     * acts on, and the platform message the button was on (Slack ts / Feishu message id).
     * The clicker is user. All NULL for a typed command. */
    struct cq_request_action {
        char *name, *value, *request_id, *message;
    } action;
};

struct cq_pipeline_ref {
    long long id; /* 0 = absent */
    char *web_url;
    char *status;
};

struct cq_result {
    char *request_id; /* required */
    char *step;       /* "ack" | "progress" | "final", required */
    char *status;     /* "ok" | "denied" | "invalid" | "failed" | "timeout", required */
    char *platform;   /* required */
    struct cq_reply_route reply;
    char *text;           /* required, may be "" */
    char *command;        /* optional: "deploy web production" for formatting */
    char *user_name;      /* optional: who ran it */
    char *response_type;  /* optional: "ephemeral" | "in_channel" */
    int seq;              /* progress sequence number within (request, step), default 0 */
    bool outcome_unknown; /* optional "outcome_unknown": true: a final saying the outcome is
                             unknown, which a true final for the same request supersedes */
    struct cq_pipeline_ref pipeline;
    char *produced_at; /* RFC 3339 with ms, set by the producer, optional */
    /* optional "event": a GitLab event notification (issue 15) for the formatters: its kind
     * (cq_event_kinds), the word its look follows (a status, "fixed"/"broken", or an
     * action) and the page it links to; absent for command results */
    char *event_kind, *event_status, *event_url;
    char *event_project, *event_ref, *event_author, *event_env; /* shown as fields */
    /* optional "buttons" (issue 16): {"kind": "approval" (Approve / Deny) | "confirm"
     * (Confirm / Cancel) | "done" (their outcome: no buttons; on Feishu it updates the card
     * that had them), "request_id": the request they act on}; the notifier renders them */
    char *buttons_kind, *buttons_request_id;
};

/* Encode: returns a new JSON string (caller frees); NULL with err: CQ_EINVAL for a missing
 * field or an out-of-range number, CQ_EENCODE for a value that cannot be carried (invalid
 * UTF-8, over its bound, not an allowed word: shorten/repair it with common/utf8.h first),
 * CQ_ENOMEM. */
char *cq_request_encode(const struct cq_request *r, struct cq_err *err);
char *cq_result_encode(const struct cq_result *r, struct cq_err *err);

/* Required on the wire: request: v, id, received_at, platform (slack|feishu), user.id,
 * command (non-empty), text (may be ""), dedupe_key; result: v, request_id, step
 * (ack|progress|final), status (ok|denied|invalid|failed|timeout), platform, text (may be "").
 * Encode writes a NULL text as "" and omits every other NULL field (and "pipeline" when its
 * id is 0 and its strings NULL); it validates like decode so nothing unreadable is produced.
 * Decode ignores unknown fields (forward compatible: a newer producer may add fields
 * within "v":1), requires valid UTF-8 and rejects NUL characters (raw or JSON-escaped), since
 * the struct holds C strings and a silently truncated command must never run. */
/* Decode: json need not be NUL-terminated; max_len 0 means CQ_ENVELOPE_MAX_LEN. Rejects
 * len > max_len (CQ_ETOOBIG), non-JSON or not an object (CQ_EPARSE), a numeric "v" != 1
 * (CQ_EVERSION), missing/mistyped/over-long fields, "v" included (CQ_EPARSE, with the field
 * name in err->msg, e.g. "request: field 'command' is missing"). On success fills *out
 * (caller calls *_clear); on failure *out is left zeroed. */
enum cq_rc cq_request_decode(const char *json, size_t len, size_t max_len, struct cq_request *out,
                             struct cq_err *err);
enum cq_rc cq_result_decode(const char *json, size_t len, size_t max_len, struct cq_result *out,
                            struct cq_err *err);

/* Frees the strings inside (not the struct itself); safe on a zeroed struct. */
void cq_request_clear(struct cq_request *r);
void cq_result_clear(struct cq_result *r);

/* Current UTC time as RFC 3339 with milliseconds into out (needs 32 bytes). */
void cq_now_rfc3339(char out[32]);

/* Parses an RFC 3339 time ("2026-01-02T03:04:05Z", fractions and +hh:mm offsets allowed)
 * into Unix milliseconds. False (and *ms untouched) when s is not one. */
bool cq_rfc3339_parse_ms(const char *s, int64_t *ms);

/* ---- audit records (chatops.audit, "v":1) ----
 * One record per decision and per outcome of a request (kind "decision", "outcome",
 * "trigger", ...): who, where, what, which rule, what happened. Required on the wire: v,
 * kind, time, request_id; everything else is optional, so the records of every writer (the
 * decision step, a direct action, the pipeline tracker's outcome) share this one shape.
 * Encode writes who.person, who.gitlab_login and rule as null when NULL, and "args" always
 * (an object, maybe empty); "where" only when where_channel_id is set, "pipeline" only when
 * pipeline_id != 0. Secrets never go in: the caller passes no secret value. */
#define CQ_AUDIT_VERSION 1
#define CQ_ENV_MAX_DETAIL 4096 /* audit detail (writers cut it shorter) */

struct cq_audit_arg {
    char *name, *value;
};

struct cq_audit {
    char *kind, *time, *request_id, *dedupe_key; /* kind, time, request_id required */
    char *platform, *user_id, *user_name;        /* "who" */
    char *person, *gitlab_login; /* who.person / who.gitlab_login, null if unknown */
    char *where_channel_id, *where_channel_name, *where_tenant; /* "where" */
    bool where_configured;                                      /* where.configured */
    char *command, *text;
    struct cq_audit_arg *args; /* n_args of them ("args": {"name": "value"}) */
    size_t n_args;
    char *decision, *rule, *result, *detail;
    long long pipeline_id; /* "pipeline": {"id", "status"}, 0 = absent */
    char *pipeline_status;
    char *worker;    /* the owner id of the writing worker */
    char *approvers; /* optional: who approved the request ("bob,dave"), issue 16 */
    /* who.identity_source / who.roles_source (issue 17, optional): where the GitLab login
     * and the roles came from ("static", "gitlab_email (slack users.info)", ...) */
    char *identity_source, *roles_source;
};

char *cq_audit_encode(const struct cq_audit *a, struct cq_err *err);
/* max_len 0 means CQ_ENVELOPE_MAX_LEN; errors as cq_result_decode. */
enum cq_rc cq_audit_decode(const char *json, size_t len, size_t max_len, struct cq_audit *out,
                           struct cq_err *err);
void cq_audit_clear(struct cq_audit *a);

/* ---- dead letters (chatops.dlq, "v":2) ----
 * A message a stage could not process or deliver: which stage ("service": "worker" |
 * "notifier"), why ("class": "invalid" (not a readable envelope) | "permanent" (refused for
 * good) | "exhausted" (retries used up), and "reason", a one-line text), where the original
 * was read ("topic", "partition", "offset"), the original's bytes ("payload_b64") and, when
 * known, the request it belongs to (request_id, step, seq, platform), the delivery attempts,
 * the notifier's route and the platform's last answer ({"status", "body"}). The notifier also
 * writes a readable copy of the original: "result" (the JSON) or "raw" (its text).
 * Required on the wire: v, service, reason, topic, payload_b64 (v2).
 * Decode also accepts version 1 letters: the worker's {"service":"worker", "topic",
 * "partition", "offset", "payload_b64", "time"} and the notifier's {"request_id", ...,
 * "failed_at", "source": {"topic", ...}, "result" | "raw"}; for those, class is NULL, and
 * topic is NULL when the notifier letter named no source. */
#define CQ_DLQ_VERSION 2
#define CQ_DLQ_MAX_LEN (64u * 1024 * 1024) /* decode bound suggested for tools */

struct cq_dlq {
    int version; /* decoded: 1 or 2; encode always writes CQ_DLQ_VERSION */
    char *service, *cls, *reason, *failed_at; /* cls: "class" on the wire */
    char *topic;                              /* where the original was read */
    int partition;
    long long offset;
    char *request_id, *step, *platform; /* optional */
    int seq, attempts;
    char *route;     /* notifier route, optional */
    bool has_answer; /* "answer": the platform's last answer */
    int answer_status;
    char *answer_body;
    char *payload; /* the original bytes (not NUL-terminated data; a NUL is appended) */
    size_t payload_len;
};

char *cq_dlq_encode(const struct cq_dlq *d, struct cq_err *err);
enum cq_rc cq_dlq_decode(const char *json, size_t len, size_t max_len, struct cq_dlq *out,
                         struct cq_err *err);
void cq_dlq_clear(struct cq_dlq *d);

/* ---- GitLab events (chatops.events, "v":1) ----
 * One webhook GitLab sent (a project, group or system hook), as the ingress verified it:
 * its kind ("push", "tag_push", "merge_request", "pipeline", "job", "deployment",
 * "release", "issue", "note"), the configured hook/instance name that authenticated it, the
 * dedupe uuid (Idempotency-Key, else X-Gitlab-Event-UUID, else a hash of the body), when it
 * arrived, and the hook's JSON body as a string (bounded by CQ_ENV_MAX_EVENT_BODY). Keyed by
 * project id on the topic, so one project's events stay ordered. Required: v, kind, uuid,
 * received_at, body. The worker's event router (worker/events.c) reads it. */
#define CQ_EVENT_VERSION 1
#define CQ_ENV_MAX_EVENT_BODY (192 * 1024)

struct cq_event {
    char *kind;        /* required, one of the kinds above */
    char *instance;    /* the gitlab.hooks entry's name ("default" for gitlab.webhook_token) */
    char *uuid;        /* required: dedupe key */
    char *received_at; /* required, RFC 3339 */
    char *body;        /* required: the hook's JSON, verbatim */
};

/* The kind names, NULL-terminated (what the decoder accepts). */
extern const char *const cq_event_kinds[];
char *cq_event_encode(const struct cq_event *e, struct cq_err *err);
/* max_len 0 means CQ_ENVELOPE_MAX_LEN; errors as cq_result_decode. */
enum cq_rc cq_event_decode(const char *json, size_t len, size_t max_len, struct cq_event *out,
                           struct cq_err *err);
void cq_event_clear(struct cq_event *e);

#endif
