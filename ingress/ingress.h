/* ingress: what the HTTP layer (server.c) asks of the platform modules (slack.c, feishu.c,
 * gitlab.c). Each platform function is pure: raw body + header values + `now` in, an
 * outcome out (reject, answer directly, or produce this message). No I/O, no clock, so the
 * official vectors can be tested with an injected time. */
#ifndef CQ_INGRESS_H
#define CQ_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "envelope.h"

/* application/x-www-form-urlencoded, percent- and '+'-decoded. Values are NUL-free. */
struct ing_form_field {
    char *name, *value; /* both point into buf */
};
struct ing_form {
    struct ing_form_field *f;
    size_t n;
    char *buf; /* every decoded name and value, NUL-terminated: two allocations per body */
};

enum ing_kind {
    ING_REJECT,   /* answer status with the one-line reason as text/plain; nothing produced */
    ING_REPLY,    /* answer status with body (content_type) now; nothing produced */
    ING_REQUEST,  /* produce req to kafka.topic_requests, answer after the delivery report */
    ING_PIPELINE, /* produce raw (the body) to kafka.topic_pipeline_events with key */
    ING_EVENT     /* produce body (an event record) to kafka.topic_events with key, answer
                     after its delivery report; when track_key is set, the raw hook also goes
                     to kafka.topic_pipeline_events with track_key (fire and forget) */
};

struct ing_verdict {
    enum ing_kind kind;
    int status;                      /* REJECT / REPLY */
    const char *reason;              /* REJECT: static one-line reason (also the metric label);
                                        REPLY: set when the reply refuses (counted as rejected) */
    const char *public_reason;       /* REJECT: the body instead of reason when set (one uniform
                                        answer for every failure before authentication) */
    char detail[160];                /* REJECT: optional extra for the log (never a secret) */
    char *body;                      /* REPLY: the answer; REQUEST: the encoded envelope. Owned */
    const char *content_type;        /* REPLY: static */
    struct cq_request req;           /* REQUEST: strings owned (cq_request_clear), except those
                                        that borrowed says point into form / stamp */
    unsigned borrowed;               /* ING_BORROW_* bits */
    struct ing_form form;            /* a Slack command's decoded form (ING_BORROW_FORM). Owned */
    char stamp_id[40], stamp_at[32]; /* req.id and req.received_at (ING_BORROW_STAMP) */
    char key[96];                    /* PIPELINE: "<project.id>:<object_attributes.id>";
                                        EVENT: the project id */
    char track_key[96];              /* EVENT: a Pipeline Hook's tracking key, or "" */
};

/* Which req strings a verdict borrows, so ing_verdict_clear does not free them: id and
 * received_at (in stamp_id / stamp_at, set by ing_finish); a Slack command's platform
 * (static), tenant, channel_id, channel_name, user_id, user_name, reply.response_url and
 * reply.chat_id (in form). A verdict is not copied: its fields point into itself. */
#define ING_BORROW_STAMP 1u
#define ING_BORROW_FORM 2u

/* Frees what an outcome owns and zeroes it. */
void ing_verdict_clear(struct ing_verdict *o);

/* Header values a route may need (NULL when absent). Borrowed. */
struct ing_headers {
    const char *slack_ts, *slack_sig, *slack_retry_num;
    const char *lark_ts, *lark_nonce, *lark_sig;
    const char *gitlab_event, *gitlab_token;
    const char *dingtalk_ts, *dingtalk_sign; /* issue 18: timestamp, sign */
    const char *discord_sig, *discord_ts;    /* X-Signature-Ed25519, X-Signature-Timestamp */
    const char *webex_sig;                   /* X-Spark-Signature */
    const char *gitlab_instance, *gitlab_uuid, *idempotency_key; /* GitLab events (issue 15) */
};

/* POST slash command (application/x-www-form-urlencoded). Verifies the v0 signature over the
 * raw bytes first (replay window limits.replay_window_s around now), then parses. */
void ing_slack_command(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                       size_t len, time_t now, struct ing_verdict *out);
/* POST Events API (application/json): url_verification, event_callback/app_mention. */
void ing_slack_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, time_t now, struct ing_verdict *out);
/* POST Feishu event subscription v2.0 (plain or {"encrypt":...}). */
void ing_feishu_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, time_t now, struct ing_verdict *out);
/* POST GitLab webhook: Pipeline Hook with X-Gitlab-Token. */
void ing_gitlab_hook(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, struct ing_verdict *out);

/* issue 18 (docs/platforms.md): DingTalk robot callback (JSON), Mattermost slash command
 * (form), Discord interaction (JSON), Webex webhook (JSON). Same contract as the above. */
void ing_dingtalk_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                        size_t len, time_t now, struct ing_verdict *out);
void ing_mattermost_command(const struct cq_config *cfg, const struct ing_headers *h,
                            const char *body, size_t len, time_t now, struct ing_verdict *out);
void ing_discord_interaction(const struct cq_config *cfg, const struct ing_headers *h,
                             const char *body, size_t len, time_t now, struct ing_verdict *out);
void ing_webex_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, time_t now, struct ing_verdict *out);

/* Helpers of the issue-18 modules (platform_util.c): "<prefix>:<id>" into r->dedupe_key, the
 * platform name into r->platform (false when out of memory, out rejected); Unix ms as RFC 3339
 * (out needs 32 bytes). */
bool ing_set_identity(struct cq_request *r, const char *platform, const char *id,
                      struct ing_verdict *out);
void ing_rfc3339_ms(long long ms, char out[32]);
/* POST GitLab webhook with events.enabled (gitlab_events.c): Push, Tag Push, Merge Request,
 * Pipeline, Job, Deployment, Release, Issue and Note hooks from project, group and system
 * hooks, authenticated by gitlab.hooks (per instance/hook token) or gitlab.webhook_token,
 * become an ING_EVENT (the Pipeline Hook also keeps its tracking copy). Without
 * events.enabled it is ing_gitlab_hook. */
void ing_gitlab_route(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, struct ing_verdict *out);
/* Button clicks (interact.c, issue 16). POST Slack interactivity: form field `payload`,
 * verified like a slash command before parsing; a block_actions click on one of our buttons
 * (action_id "chatops_<name>", value = the request id) becomes a request with its action. */
void ing_slack_action(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, time_t now, struct ing_verdict *out);
/* A Feishu card.action.trigger callback ev (schema 2.0, verified, decrypted and token-checked by
 * ing_feishu_event): value {"chatops": name, "request_id": id} becomes a request. */
struct cJSON;
void ing_feishu_card(const struct cq_config *cfg, const struct cJSON *ev, struct ing_verdict *out);
/* Whether name is one of the actions our buttons carry (approve, deny, confirm, cancel). */
bool ing_action_known(const char *name);

/* Parses body into form (caller calls ing_form_clear). CQ_EPARSE on a bad escape, a NUL
 * byte or more than max_fields fields; CQ_ENOMEM. */
enum cq_rc ing_form_parse(const char *body, size_t len, size_t max_fields, struct ing_form *form);
/* Borrowed value of the first field called name, or NULL. */
const char *ing_form_get(const struct ing_form *form, const char *name);
void ing_form_clear(struct ing_form *form);

/* Splits chat text into a command (first word) and the rest, both trimmed; an empty text gives
 * command "help". Returns new strings in *command and *rest (caller frees); CQ_ENOMEM. */
enum cq_rc ing_split(const char *text, char **command, char **rest);

/* Fills req->id (UUIDv4) and received_at (now, RFC 3339). CQ_OK or an error code. */
enum cq_rc ing_stamp(struct cq_request *req);

/* Checks limits.max_text and splits text into r->command / r->text; on failure rejects out. */
bool ing_set_command(const struct cq_config *cfg, const char *text, struct cq_request *r,
                     struct ing_verdict *out);
/* Stamps out->req (id, received_at), encodes it into out->body, sets kind = ING_REQUEST; on
 * failure rejects out (400 with the field in detail, or 500). */
void ing_finish(struct ing_verdict *out);

/* Helpers for the platform modules: a rejection / a JSON reply. */
void ing_reject(struct ing_verdict *out, int status, const char *reason, const char *detail);
void ing_reply(struct ing_verdict *out, int status, const char *content_type, char *body);
/* The url_verification answer both platforms expect: 200 {"challenge": ch}; 400 when ch is NULL. */
void ing_challenge(struct ing_verdict *out, const char *ch);

/* How a handed-over request ended, as far as the ingress can know (answers.c). */
enum ing_outcome {
    ING_QUEUED,  /* Kafka acknowledged it */
    ING_NOT_RUN, /* certainly not in the log (never sent, or refused): safe to retry */
    ING_UNKNOWN  /* sent but not acknowledged in time: it may be in the log and may run */
};
/* The answer body for a request's outcome (malloc'd; NULL on ENOMEM) with its status and
 * content type. why: the failure reason (unused for ING_QUEUED). */
char *ing_answer_text(enum ing_outcome out, bool slack_command, const char *cmdline,
                      const char *req_id, const char *why, int *status, const char **ctype);
/* {"response_type":"ephemeral","text":text} as one allocation (text JSON-escaped as cJSON
 * does: quote, backslash and control characters; UTF-8 as is); NULL when out of memory. */
char *ing_slack_ephemeral(const char *text);

#endif
