/* classify: reads a platform's answer to one delivery attempt and decides what happens
 * next: delivered, retry later, fall back to another route (Slack response_url spent or
 * expired), refresh the Feishu token and retry, or give up (dead letter). Pure. */
#ifndef CQ_CLASSIFY_H
#define CQ_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

enum cq_outcome {
    CQ_OUT_DELIVERED,     /* the platform accepted the message */
    CQ_OUT_RETRY,         /* transient: 5xx, 429, timeout, connection error, rate-limit code */
    CQ_OUT_FALLBACK,      /* Slack response_url expired/used up: use chat.postMessage */
    CQ_OUT_TOKEN_EXPIRED, /* Feishu 99991663/99991664/99991671: refresh token, retry once */
    CQ_OUT_PERMANENT,     /* retrying cannot help: dead-letter */
};

const char *cq_outcome_str(enum cq_outcome o);

/* The transport-level facts of one attempt (mirrors cq_http_response). */
struct cq_attempt_answer {
    enum cq_rc rc;    /* CQ_OK when an HTTP response arrived */
    long status;      /* HTTP status */
    const char *body; /* NUL-terminated, may be NULL */
};

/* Classification; reason (if not NULL) gets a short machine-readable reason such as
 * "http_503", "slack:channel_not_found", "feishu:230002", "timeout". */
enum cq_outcome cq_classify_slack_webhook(const struct cq_attempt_answer *a, char *reason,
                                          size_t reason_len);
enum cq_outcome cq_classify_slack_api(const struct cq_attempt_answer *a, char *reason,
                                      size_t reason_len);
enum cq_outcome cq_classify_feishu(const struct cq_attempt_answer *a, char *reason,
                                   size_t reason_len);
/* tenant_access_token/internal answer: on DELIVERED fills token (new string, caller frees)
 * and *expire_s. */
enum cq_outcome cq_classify_feishu_token(const struct cq_attempt_answer *a, char **token,
                                         long *expire_s, char *reason, size_t reason_len);

/* Slack Web API error codes that a later retry can fix (rate limits, server trouble). */
bool cq_slack_error_retryable(const char *error);
/* Feishu codes: token expired/invalid (refresh), and rate-limited/transient (retry). */
bool cq_feishu_code_token_expired(long code);
bool cq_feishu_code_retryable(long code);

/* chat.postMessage answer: the message ts (new string) when ok, else NULL. */
char *cq_slack_answer_ts(const char *body);

#endif
