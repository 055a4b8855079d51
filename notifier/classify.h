/* classify: reads a platform's answer to one delivery attempt and decides what happens
 * next: delivered, retry later, fall back to another route (Slack response_url spent or
 * expired), refresh the Feishu token and retry, or give up (dead letter). Pure. */
#ifndef CQ_CLASSIFY_H
#define CQ_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

enum ntf_outcome {
    NTF_OUT_DELIVERED,     /* the platform accepted the message */
    NTF_OUT_RETRY,         /* transient: 5xx, 429, timeout, connection error, rate-limit code */
    NTF_OUT_FALLBACK,      /* Slack response_url expired/used up: use chat.postMessage */
    NTF_OUT_TOKEN_EXPIRED, /* Feishu 99991663/99991664/99991671: refresh token, retry once */
    NTF_OUT_PERMANENT,     /* retrying cannot help: dead-letter */
};

const char *ntf_outcome_str(enum ntf_outcome o);

/* The transport-level facts of one attempt (mirrors cq_http_response). */
struct ntf_attempt_answer {
    enum cq_rc rc;    /* CQ_OK when an HTTP response arrived */
    long status;      /* HTTP status */
    const char *body; /* NUL-terminated, may be NULL */
};

/* Classification; reason (if not NULL) gets a short machine-readable reason such as
 * "http_503", "slack:channel_not_found", "feishu:230002", "timeout". */
enum ntf_outcome ntf_classify_slack_webhook(const struct ntf_attempt_answer *a, char *reason,
                                            size_t reason_len);
enum ntf_outcome ntf_classify_slack_api(const struct ntf_attempt_answer *a, char *reason,
                                        size_t reason_len);
enum ntf_outcome ntf_classify_feishu(const struct ntf_attempt_answer *a, char *reason,
                                     size_t reason_len);
/* tenant_access_token/internal answer: on DELIVERED fills token (new string, caller frees)
 * and *expire_s. */
enum ntf_outcome ntf_classify_feishu_token(const struct ntf_attempt_answer *a, char **token,
                                           long *expire_s, char *reason, size_t reason_len);

/* Slack Web API error codes that a later retry can fix (rate limits, server trouble). */
bool ntf_slack_error_retryable(const char *error);
/* Feishu codes: token expired/invalid (refresh), and rate-limited/transient (retry). */
bool ntf_feishu_code_token_expired(long code);
bool ntf_feishu_code_retryable(long code);

/* chat.postMessage answer: the message ts (new string) when ok, else NULL. */
char *ntf_slack_answer_ts(const char *body);

#endif
