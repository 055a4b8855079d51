/* classify: platform answers -> next step (see classify.h). Slack's Web API answers 200
 * with {"ok":false,"error":...}; response_url answers plain "ok" or an error word with a
 * 4xx; Feishu answers {"code":N,"msg":...} with 200 or 4xx. Transport failures and 5xx are
 * always retried: both platforms dedupe (Feishu by uuid, Slack not, see docs). */
#include "classify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "utf8.h"

const char *ntf_outcome_str(enum ntf_outcome o) {
    switch (o) {
    case NTF_OUT_DELIVERED:
        return "delivered";
    case NTF_OUT_RETRY:
        return "retry";
    case NTF_OUT_FALLBACK:
        return "fallback";
    case NTF_OUT_TOKEN_EXPIRED:
        return "token_expired";
    case NTF_OUT_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

/* Type-checked by the compiler (the format attribute), so a reason and its argument
 * cannot drift apart. */
__attribute__((format(printf, 3, 4))) static void set_reason(char *reason, size_t len,
                                                             const char *fmt, ...) {
    va_list ap;
    char wide[512];
    if (!reason || len == 0) return;
    va_start(ap, fmt);
    int n = vsnprintf(wide, sizeof wide, fmt, ap);
    va_end(ap);
    /* platform error strings: cut on a character and made valid UTF-8 (they reach the DLQ) */
    size_t wl = n < 0 ? 0 : (size_t)n < sizeof wide ? (size_t)n : sizeof wide - 1;
    cq_utf8_copy(reason, len, wide, wl, NULL);
}

/* Shared transport rules: false when the HTTP answer needs a closer look. */
static bool transport(const struct ntf_attempt_answer *a, enum ntf_outcome *o, char *reason,
                      size_t len) {
    if (a->rc != CQ_OK) {
        *o = NTF_OUT_RETRY;
        set_reason(reason, len, "%s", a->rc == CQ_ETIMEOUT ? "timeout" : "connection_error");
        return true;
    }
    if (a->status == 429 || a->status == 408 || a->status >= 500) {
        *o = NTF_OUT_RETRY;
        set_reason(reason, len, "http_%ld", a->status);
        return true;
    }
    return false;
}

bool ntf_slack_error_retryable(const char *e) {
    static const char *retry[] = {"ratelimited",       "rate_limited",           "internal_error",
                                  "fatal_error",       "service_unavailable",    "request_timeout",
                                  "team_added_to_org", "message_limit_exceeded", NULL};
    if (!e) return false;
    for (const char **p = retry; *p; p++)
        if (strcmp(*p, e) == 0) return true;
    return false;
}

enum ntf_outcome ntf_classify_slack_webhook(const struct ntf_attempt_answer *a, char *reason,
                                            size_t len) {
    enum ntf_outcome o;
    if (transport(a, &o, reason, len)) return o;
    const char *b = a->body ? a->body : "";
    if (a->status >= 200 && a->status < 300) {
        /* "ok" (plain) or {"ok":true}; a JSON {"ok":false,...} is an error even with 200 */
        cJSON *j = cJSON_Parse(b);
        cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
        if (j && cJSON_IsFalse(ok)) {
            cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
            const char *err = cJSON_IsString(e) ? e->valuestring : "unknown";
            if (strcmp(err, "expired_url") == 0 || strcmp(err, "used_url") == 0)
                o = NTF_OUT_FALLBACK;
            else
                o = ntf_slack_error_retryable(err) ? NTF_OUT_RETRY : NTF_OUT_PERMANENT;
            set_reason(reason, len, "slack:%.100s", err);
        } else {
            o = NTF_OUT_DELIVERED;
            set_reason(reason, len, "%s", "ok");
        }
        cJSON_Delete(j);
        return o;
    }
    /* 404 / 410 (expired_url, used_url) and 403 (too many uses) mean this url is spent */
    if (a->status == 404 || a->status == 410 || strstr(b, "expired_url") || strstr(b, "used_url") ||
        (a->status == 403 && strstr(b, "too_many")))
        o = NTF_OUT_FALLBACK;
    else
        o = NTF_OUT_PERMANENT;
    set_reason(reason, len, "http_%ld", a->status);
    return o;
}

enum ntf_outcome ntf_classify_slack_api(const struct ntf_attempt_answer *a, char *reason,
                                        size_t len) {
    enum ntf_outcome o;
    if (transport(a, &o, reason, len)) return o;
    if (a->status < 200 || a->status >= 300) {
        set_reason(reason, len, "http_%ld", a->status);
        return NTF_OUT_PERMANENT;
    }
    cJSON *j = cJSON_Parse(a->body ? a->body : "");
    cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
    if (cJSON_IsTrue(ok)) {
        o = NTF_OUT_DELIVERED;
        set_reason(reason, len, "%s", "ok");
    } else if (!j || !cJSON_IsBool(ok)) {
        o = NTF_OUT_RETRY; /* a proxy's garbage page: worth another try */
        set_reason(reason, len, "%s", "bad_answer");
    } else {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *err = cJSON_IsString(e) ? e->valuestring : "unknown";
        o = ntf_slack_error_retryable(err) ? NTF_OUT_RETRY : NTF_OUT_PERMANENT;
        set_reason(reason, len, "slack:%.100s", err);
    }
    cJSON_Delete(j);
    return o;
}

bool ntf_feishu_code_token_expired(long c) {
    return c == 99991663 || c == 99991664 || c == 99991671;
}

bool ntf_feishu_code_retryable(long c) {
    /* 99991400: app request rate limit; 230020: chat send-rate limit; 1000004/1000005:
     * internal errors ("retry later"). Permission and content codes stay permanent. */
    return c == 99991400 || c == 230020 || c == 1000004 || c == 1000005;
}

static bool feishu_code(const char *body, long *code) {
    cJSON *j = cJSON_Parse(body ? body : "");
    cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
    bool ok = cJSON_IsNumber(c);
    if (ok) *code = (long)c->valuedouble;
    cJSON_Delete(j);
    return ok;
}

enum ntf_outcome ntf_classify_feishu(const struct ntf_attempt_answer *a, char *reason, size_t len) {
    enum ntf_outcome o;
    long code = 0;
    bool has_code = a->rc == CQ_OK && feishu_code(a->body, &code);
    /* an expired token may come back as 400/401 with the code: look at the code first */
    if (has_code && ntf_feishu_code_token_expired(code)) {
        set_reason(reason, len, "feishu:%ld", code);
        return NTF_OUT_TOKEN_EXPIRED;
    }
    if (transport(a, &o, reason, len)) return o;
    if (has_code && code == 0 && a->status >= 200 && a->status < 300) {
        set_reason(reason, len, "%s", "ok");
        return NTF_OUT_DELIVERED;
    }
    if (has_code) {
        set_reason(reason, len, "feishu:%ld", code);
        return ntf_feishu_code_retryable(code) ? NTF_OUT_RETRY : NTF_OUT_PERMANENT;
    }
    set_reason(reason, len, "http_%ld", a->status);
    return a->status >= 200 && a->status < 300 ? NTF_OUT_RETRY : NTF_OUT_PERMANENT;
}

enum ntf_outcome ntf_classify_feishu_token(const struct ntf_attempt_answer *a, char **token,
                                           long *expire_s, char *reason, size_t len) {
    enum ntf_outcome o = ntf_classify_feishu(a, reason, len);
    if (token) *token = NULL;
    if (o != NTF_OUT_DELIVERED) return o == NTF_OUT_TOKEN_EXPIRED ? NTF_OUT_PERMANENT : o;
    cJSON *j = cJSON_Parse(a->body);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tenant_access_token");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expire");
    if (!cJSON_IsString(t) || !*t->valuestring || !cJSON_IsNumber(e)) {
        set_reason(reason, len, "%s", "feishu:token_missing");
        o = NTF_OUT_RETRY;
    } else if (token && !(*token = strdup(t->valuestring))) {
        set_reason(reason, len, "%s", "out_of_memory");
        o = NTF_OUT_RETRY;
    } else if (expire_s) {
        *expire_s = (long)e->valuedouble;
    }
    cJSON_Delete(j);
    return o;
}

char *ntf_slack_answer_ts(const char *body) {
    cJSON *j = cJSON_Parse(body ? body : "");
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts");
    char *out = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")) && cJSON_IsString(ts)
                    ? strdup(ts->valuestring)
                    : NULL;
    cJSON_Delete(j);
    return out;
}
