/* platform: turns a verified Slack command/event or a Feishu event body into a request
 * envelope (or a verdict: ignore, challenge, bad input, not run). Pure functions over bytes,
 * no I/O, so the unit tests feed them real-shaped payloads. The HTTP side is service.c. */
#ifndef CQ_INGRESS_PLATFORM_H
#define CQ_INGRESS_PLATFORM_H

#include <stddef.h>

#include "envelope.h"
#include "verify.h"

enum cq_in_kind {
    CQ_IN_REQUEST,   /* req is filled (all but id and received_at): produce it */
    CQ_IN_IGNORE,    /* valid, nothing to run (other event types, the bot's own message) */
    CQ_IN_CHALLENGE, /* url_verification: echo challenge */
    CQ_IN_BAD,       /* 400 malformed */
    CQ_IN_UNAUTH,    /* 401 signature / token */
    CQ_IN_REFUSED,   /* well-formed but not runnable (text over the limit): tell the user */
    CQ_IN_ERROR      /* out of memory: 503, the platform may retry */
};

struct cq_in_outcome {
    enum cq_in_kind kind;
    char reason[32];  /* metric label: "malformed_json", "bad_token", "text_too_long" ... */
    char detail[200]; /* one line for the answer body and the log; never a secret */
    char *challenge;  /* CQ_IN_CHALLENGE, owned */
    struct cq_request req; /* CQ_IN_REQUEST, owned */
};

/* Frees what the outcome owns; safe on a zeroed one. */
void cq_in_outcome_clear(struct cq_in_outcome *o);

/* Splits chat text into its first word (command) and the rest (trimmed); empty text gives
 * "help" and "". New strings into *cmd and *rest (caller frees); CQ_ENOMEM. */
enum cq_rc cq_in_split_command(const char *text, char **cmd, char **rest);

/* Characters (UTF-8 code points) in s. */
size_t cq_in_utf8_chars(const char *s);

/* Slack slash command form body (already signature-checked). */
void cq_slack_command_parse(const char *body, size_t len, int max_text, int retry_num,
                            struct cq_in_outcome *o);
/* Slack Events API JSON body (already signature-checked): url_verification, app_mention. */
void cq_slack_event_parse(const char *body, size_t len, int max_text, int retry_num,
                          struct cq_in_outcome *o);

struct cq_feishu_conf {
    const char *verification_token; /* required */
    const char *encrypt_key;        /* NULL = plain bodies, no signatures */
    const char *bot_open_id;        /* NULL = any @mention addresses the bot */
    int max_text;
};
struct cq_feishu_headers {
    const char *ts, *nonce, *sig; /* X-Lark-Request-Timestamp/-Nonce, X-Lark-Signature */
};
/* A Feishu event callback body, raw: signature, decryption, token and normalisation. */
void cq_feishu_event_parse(const struct cq_feishu_conf *c, const struct cq_feishu_headers *h,
                           const char *body, size_t len, struct cq_in_outcome *o);

/* GitLab Pipeline Hook body: validates it is a JSON object with project.id and
 * object_attributes.id and writes "project:pipeline" into key. 0 or -1 (detail in o). */
int cq_gitlab_pipeline_key(const char *body, size_t len, char *key, size_t keylen,
                           struct cq_in_outcome *o);

#endif
