/* dingtalk: the enterprise internal robot's HTTP callback in. Headers `timestamp` (Unix ms)
 * and `sign` = base64(HMAC-SHA256(app_secret, timestamp "\n" app_secret)) are checked first
 * (constant time, dingtalk.max_clock_skew_s window), then a text message becomes a request:
 * text.content, senderStaffId, conversationId, msgId (the dedupe key), and the reply route
 * (sessionWebhook until sessionWebhookExpiredTime). Pure, like slack.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"

static char *dup_or_null(const char *s) {
    return s && *s ? strdup(s) : NULL;
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* NULL when the signature holds, else the reason. */
static const char *verify(const struct cq_config *cfg, const struct ing_headers *h, time_t now) {
    const char *ts = h->dingtalk_ts, *sig = h->dingtalk_sign;
    char *end = NULL;
    if (!ts || !*ts || !sig || !*sig) return "missing signature headers";
    long long t = strtoll(ts, &end, 10);
    if (end == ts || *end || strlen(ts) > 16 || t <= 0) return "bad timestamp";
    long long skew = (long long)now * 1000 - t,
              max = (long long)cfg->dingtalk.max_clock_skew_s * 1000;
    if (skew > max || -skew > max) return "stale timestamp";
    char *want = cq_dingtalk_sign(cfg->dingtalk.app_secret.value, ts);
    if (!want) return "out of memory";
    bool ok = cq_ct_equal(want, strlen(want), sig, strlen(sig));
    free(want);
    return ok ? NULL : "bad signature";
}

void ing_dingtalk_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                        size_t len, time_t now, struct ing_verdict *out) {
    cJSON *root = NULL;
    struct cq_request *r = &out->req;
    char when[32];
    memset(out, 0, sizeof(*out));
    if (!cfg->dingtalk.app_secret.value) {
        ing_reject(out, 404, "dingtalk is not enabled", NULL);
        return;
    }
    const char *why = verify(cfg, h, now);
    if (why) {
        ing_reject(out, strcmp(why, "out of memory") == 0 ? 500 : 401, why, NULL);
        return;
    }
    if (cq_json_has_nul_escape(body, len)) {
        ing_reject(out, 400, "malformed JSON", "an escaped NUL (\\u0000) in a string");
        goto out;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        ing_reject(out, 400, "malformed JSON", NULL);
        goto out;
    }
    const char *type = jstr(root, "msgtype");
    if (!type || strcmp(type, "text") != 0) { /* pictures, files, ...: not a command */
        ing_reply(out, 200, "application/json", strdup("{}"));
        goto out;
    }
    const char *msg_id = jstr(root, "msgId"), *conv = jstr(root, "conversationId");
    const char *staff = jstr(root, "senderStaffId"), *sender = jstr(root, "senderId");
    const char *user = staff && *staff ? staff : sender; /* outside the company: no staff id */
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const char *content = jstr(text, "content");
    if (!msg_id || !*msg_id || !conv || !*conv || !user || !*user || !content) {
        ing_reject(out, 400, "malformed message",
                   "msgId, conversationId, senderStaffId/senderId or text.content missing");
        goto out;
    }
    if (!ing_set_command(cfg, content, r, out)) goto out;
    if (!ing_set_identity(r, "dingtalk", msg_id, out)) goto out;
    const char *ctype = jstr(root, "conversationType"); /* "1" one-to-one, "2" group */
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "sessionWebhookExpiredTime");
    r->tenant = dup_or_null(jstr(root, "senderCorpId"));
    r->channel_id = strdup(conv);
    r->channel_name = dup_or_null(jstr(root, "conversationTitle"));
    r->user_id = strdup(user);
    r->user_name = dup_or_null(jstr(root, "senderNick"));
    r->reply.response_url = dup_or_null(jstr(root, "sessionWebhook"));
    r->reply.chat_id = strdup(conv);
    r->reply.message_id = strdup(msg_id);
    r->reply.user_id = dup_or_null(staff);
    r->reply.conversation_type =
        ctype ? strdup(strcmp(ctype, "1") == 0 ? "direct" : "group") : NULL;
    if (cJSON_IsNumber(exp) && exp->valuedouble > 0 && exp->valuedouble < 1e15) {
        ing_rfc3339_ms((long long)exp->valuedouble, when);
        r->reply.expires_at = strdup(when);
    }
    if (!r->channel_id || !r->user_id || !r->reply.chat_id || !r->reply.message_id) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    ing_finish(out);
out:
    cJSON_Delete(root);
}
