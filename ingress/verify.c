/* verify: signature and token checks for the ingress routes (see verify.h). Nothing here
 * parses the body: signatures are computed over the raw bytes as received. */
#include "verify.h"

#include <string.h>

#include "crypto.h"

static const char *const labels[] = {
#define CQ_VERIFY_LABEL(name, label, text) label,
    CQ_VERIFY_LIST(CQ_VERIFY_LABEL)
#undef CQ_VERIFY_LABEL
};
static const char *const texts[] = {
#define CQ_VERIFY_TEXT(name, label, text) text,
    CQ_VERIFY_LIST(CQ_VERIFY_TEXT)
#undef CQ_VERIFY_TEXT
};

const char *cq_verify_label(enum cq_verify v) {
    return (size_t)v < sizeof(labels) / sizeof(labels[0]) ? labels[v] : "unknown";
}

const char *cq_verify_text(enum cq_verify v) {
    return (size_t)v < sizeof(texts) / sizeof(texts[0]) ? texts[v] : "unknown";
}

/* Unix seconds from a header: 1..12 decimal digits, nothing else. */
static int parse_ts(const char *s, long long *out) {
    long long v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 12) return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0) return -1;
    *out = v;
    return 0;
}

enum cq_verify cq_verify_slack(const char *secret, const char *ts, const char *sig,
                               const void *body, size_t len, long long now, int window_s) {
    char want[68];
    long long t;
    if (!sig || !*sig) return CQ_VERIFY_MISSING_SIGNATURE;
    if (!ts || !*ts) return CQ_VERIFY_MISSING_TIMESTAMP;
    if (parse_ts(ts, &t) != 0) return CQ_VERIFY_BAD_TIMESTAMP;
    if (now - t > window_s) return CQ_VERIFY_STALE_TIMESTAMP;
    if (t - now > window_s) return CQ_VERIFY_FUTURE_TIMESTAMP;
    cq_slack_signature(secret ? secret : "", ts, body, len, want);
    if (!cq_ct_equal(want, strlen(want), sig, strlen(sig))) return CQ_VERIFY_BAD_SIGNATURE;
    return CQ_VERIFY_OK;
}

enum cq_verify cq_verify_feishu(const char *encrypt_key, const char *ts, const char *nonce,
                                const char *sig, const void *body, size_t len) {
    char want[65];
    if (!sig || !*sig || !nonce) return CQ_VERIFY_MISSING_SIGNATURE;
    if (!ts || !*ts) return CQ_VERIFY_MISSING_TIMESTAMP;
    cq_feishu_signature(ts, nonce, encrypt_key ? encrypt_key : "", body, len, want);
    if (!cq_ct_equal(want, strlen(want), sig, strlen(sig))) return CQ_VERIFY_BAD_SIGNATURE;
    return CQ_VERIFY_OK;
}

enum cq_verify cq_verify_token(const char *expected, const char *got) {
    if (!got || !*got) return CQ_VERIFY_MISSING_TOKEN;
    if (!expected || !cq_ct_equal(expected, strlen(expected), got, strlen(got)))
        return CQ_VERIFY_BAD_TOKEN;
    return CQ_VERIFY_OK;
}
