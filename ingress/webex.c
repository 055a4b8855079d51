/* webex: the webhook in. X-Spark-Signature = hex(HMAC-SHA1(webhook secret, raw body)) is
 * checked first (constant time; Webex writes lower-case hex, upper case is accepted). A
 * messages/created notification carries ids only, never the text, and the ingress answers
 * without calling Webex (its answer path holds no outside call): the request goes to Kafka
 * with text_source "webex" and the message id in reply.message_id, and the worker reads the
 * text (GET /messages/{id}, bot token) before it decides (docs/platforms.md). The bot's own
 * messages (webex.bot_person_id / bot_email) and other resources are acknowledged and
 * dropped. Pure, like slack.c. */
#include <cjson/cJSON.h>
#include <ctype.h>
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

static const char *verify(const struct cq_config *cfg, const struct ing_headers *h,
                          const char *body, size_t len) {
    char want[41], got[41];
    const char *sig = h->webex_sig;
    if (!sig || !*sig) return "missing signature header";
    size_t n = strlen(sig);
    if (n != 40) return "bad signature";
    for (size_t i = 0; i <= n; i++)
        got[i] = (char)tolower((unsigned char)sig[i]);
    if (cq_hmac_sha1_hex(cfg->webex.webhook_secret.value, body, len, want) != CQ_OK)
        return "out of memory";
    return cq_ct_equal(want, 40, got, 40) ? NULL : "bad signature";
}

static bool same(const char *a, const char *b) {
    return a && b && *a && strcmp(a, b) == 0;
}

void ing_webex_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, time_t now, struct ing_verdict *out) {
    cJSON *root = NULL;
    struct cq_request *r = &out->req;
    (void)now; /* Webex signs no timestamp: a replay is caught by the message id's dedupe */
    memset(out, 0, sizeof(*out));
    if (!cfg->webex.webhook_secret.value) {
        ing_reject(out, 404, "webex is not enabled", NULL);
        return;
    }
    const char *why = verify(cfg, h, body, len);
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
    const char *resource = jstr(root, "resource"), *event = jstr(root, "event");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const char *person = jstr(data, "personId"), *email = jstr(data, "personEmail");
    if (!same(resource, "messages") || !same(event, "created") ||
        same(person, cfg->webex.bot_person_id) || same(email, cfg->webex.bot_email)) {
        ing_reply(out, 200, "application/json", strdup("{}")); /* not a command for us */
        goto out;
    }
    const char *msg = jstr(data, "id"), *room = jstr(data, "roomId");
    const char *parent = jstr(data, "parentId"), *rtype = jstr(data, "roomType");
    if (!msg || !*msg || !room || !*room || !person || !*person) {
        ing_reject(out, 400, "malformed notification", "data.id, data.roomId or data.personId");
        goto out;
    }
    /* the text is the worker's to read: "help" is what a worker that cannot read it answers */
    if (!ing_set_command(cfg, "", r, out)) goto out;
    if (!ing_set_identity(r, "webex", msg, out)) goto out;
    r->text_source = strdup("webex");
    r->tenant = dup_or_null(jstr(root, "orgId"));
    r->channel_id = strdup(room);
    r->user_id = strdup(person);
    r->user_name = dup_or_null(email);
    r->reply.chat_id = strdup(room);
    r->reply.message_id = strdup(msg);
    r->reply.thread_ts = strdup(parent && *parent ? parent : msg);
    r->reply.conversation_type = rtype ? strdup(same(rtype, "direct") ? "direct" : "group") : NULL;
    if (!r->text_source || !r->channel_id || !r->user_id || !r->reply.chat_id ||
        !r->reply.message_id || !r->reply.thread_ts) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    ing_finish(out);
out:
    cJSON_Delete(root);
}
