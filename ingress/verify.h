/* verify: who may knock. Slack v0 signatures (with the replay window, the clock passed in so
 * tests can use Slack's official vector), Feishu event signatures and shared tokens (Feishu
 * verification token, GitLab X-Gitlab-Token). Every compare is constant time. */
#ifndef CQ_INGRESS_VERIFY_H
#define CQ_INGRESS_VERIFY_H

#include <stddef.h>

#define CQ_VERIFY_LIST(X)                                                      \
    X(OK, "ok", "ok")                                                          \
    X(MISSING_SIGNATURE, "missing_signature", "missing signature header")       \
    X(MISSING_TIMESTAMP, "missing_timestamp", "missing timestamp header")       \
    X(BAD_TIMESTAMP, "bad_timestamp", "timestamp header is not a number")      \
    X(STALE_TIMESTAMP, "stale_timestamp", "timestamp older than the replay window") \
    X(FUTURE_TIMESTAMP, "future_timestamp", "timestamp ahead of the replay window") \
    X(BAD_SIGNATURE, "bad_signature", "signature does not match")              \
    X(MISSING_TOKEN, "missing_token", "missing token")                         \
    X(BAD_TOKEN, "bad_token", "token does not match")

enum cq_verify {
#define CQ_VERIFY_ENUM(name, label, text) CQ_VERIFY_##name,
    CQ_VERIFY_LIST(CQ_VERIFY_ENUM)
#undef CQ_VERIFY_ENUM
};

/* Metric label ("bad_signature") and one-line reason for a verdict; static strings. */
const char *cq_verify_label(enum cq_verify v);
const char *cq_verify_text(enum cq_verify v);

/* Slack v0: ts and sig are the X-Slack-Request-Timestamp / X-Slack-Signature header values
 * (NULL when absent); body is the raw body; now is the Unix time to judge the timestamp by;
 * a timestamp more than window_s away from now (either direction) is refused. */
enum cq_verify cq_verify_slack(const char *secret, const char *ts, const char *sig,
                               const void *body, size_t len, long long now, int window_s);

/* Feishu: X-Lark-Request-Timestamp, -Nonce and X-Lark-Signature over the raw body. No
 * replay window (Feishu re-sends old events on purpose; event_id dedupe covers replays). */
enum cq_verify cq_verify_feishu(const char *encrypt_key, const char *ts, const char *nonce,
                                const char *sig, const void *body, size_t len);

/* A shared secret token: got (may be NULL) against expected. */
enum cq_verify cq_verify_token(const char *expected, const char *got);

#endif
