/* feishu: event subscription v2.0 in: checks the SHA-256 signature and its timestamp window
 * first, then decrypts {"encrypt":...} bodies, answers url_verification (token check, no
 * signature by design), checks the verification token of other events, and turns an
 * im.message.receive_v1 text message that @mentions the bot into a request envelope. Pure (no I/O),
 * like slack.c. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jobj(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsObject(v) ? v : NULL;
}

static bool token_ok(const struct cq_config *cfg, const char *token) {
    const char *want = cfg->feishu.verification_token.value;
    return token && want && cq_ct_equal(want, strlen(want), token, strlen(token));
}

/* Removes every mention key ("@_user_1") listed in mentions from text, in place. A key only
 * matches when not followed by another digit, so @_user_1 leaves @_user_10 alone. */
static void strip_keys(char *text, const cJSON *mentions) {
    const cJSON *m;
    cJSON_ArrayForEach(m, mentions) {
        const char *key = jstr(m, "key");
        size_t klen = key ? strlen(key) : 0;
        if (!klen) continue;
        char *p = text;
        while ((p = strstr(p, key)) != NULL) {
            if (isdigit((unsigned char)p[klen])) {
                p += klen;
                continue;
            }
            memmove(p, p + klen, strlen(p + klen) + 1);
        }
    }
}

static bool mentions_bot(const cJSON *mentions, const char *bot) {
    const cJSON *m;
    cJSON_ArrayForEach(m, mentions) {
        const char *id = jstr(jobj(m, "id"), "open_id");
        if (id && strcmp(id, bot) == 0) return true;
    }
    return false;
}

static void message_event(const struct cq_config *cfg, const cJSON *root, struct ing_verdict *out) {
    const cJSON *hdr = jobj(root, "header"), *ev = jobj(root, "event");
    const cJSON *msg = jobj(ev, "message"), *sender = jobj(ev, "sender");
    const char *bot = cfg->feishu.bot_open_id;
    const char *open_id = jstr(jobj(sender, "sender_id"), "open_id");
    const char *event_id = jstr(hdr, "event_id"), *type = jstr(msg, "message_type");
    const char *content = jstr(msg, "content"), *chat_type = jstr(msg, "chat_type");
    const cJSON *mentions = cJSON_GetObjectItemCaseSensitive(msg, "mentions");
    struct cq_request *r = &out->req;
    cJSON *body = NULL;
    char *text = NULL;

    if (!event_id || !*event_id || !msg || !open_id || !*open_id) {
        ing_reject(out, 400, "malformed event", "header.event_id, event.message or sender");
        goto out;
    }
    /* Not a command: the bot's own message, another app, a non-text message, or a group
     * message that does not address the bot. Acknowledged so Feishu does not re-send it. */
    const char *sender_type = jstr(sender, "sender_type");
    bool ignore =
        (bot && strcmp(open_id, bot) == 0) || (sender_type && strcmp(sender_type, "app") == 0) ||
        !type || strcmp(type, "text") != 0 ||
        (bot && !(chat_type && strcmp(chat_type, "p2p") == 0) && !mentions_bot(mentions, bot));
    if (ignore) {
        ing_reply(out, 200, "application/json", strdup("{}"));
        goto out;
    }
    if (content && cq_json_has_nul_escape(content, strlen(content))) {
        ing_reject(out, 400, "malformed message content", "an escaped NUL (\\u0000) in the text");
        goto out;
    }
    body = content ? cJSON_Parse(content) : NULL;
    const char *t = jstr(body, "text");
    if (!t) {
        ing_reject(out, 400, "malformed message content", NULL);
        goto out;
    }
    if (!(text = strdup(t))) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    strip_keys(text, mentions);
    if (!ing_set_command(cfg, text, r, out)) goto out;
    size_t klen = strlen(event_id) + 8;
    r->dedupe_key = malloc(klen);
    r->platform = strdup("feishu");
    r->tenant = dup_or_null(jstr(hdr, "tenant_key"));
    r->channel_id = dup_or_null(jstr(msg, "chat_id"));
    r->user_id = strdup(open_id);
    r->reply.message_id = dup_or_null(jstr(msg, "message_id"));
    r->reply.chat_id = dup_or_null(jstr(msg, "chat_id"));
    if (!r->dedupe_key || !r->platform || !r->user_id) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    snprintf(r->dedupe_key, klen, "feishu:%s", event_id);
    ing_finish(out);
out:
    free(text);
    cJSON_Delete(body);
}

/* Every failure before the sender is authenticated gets this one answer (status and body),
 * so a forger learns nothing from it: not whether a ciphertext decrypted (no padding oracle),
 * parsed, or which check failed. The reason still goes to the log and the metrics. */
#define UNAUTHORIZED "unauthorized"

static void deny(struct ing_verdict *out, const char *reason) {
    ing_reject(out, 401, reason, NULL);
    out->public_reason = UNAUTHORIZED;
}

/* A failure after the signature authenticated the body: a readable 400; before: deny. */
static void bad_input(struct ing_verdict *out, bool authed, const char *reason,
                      const char *detail) {
    if (authed)
        ing_reject(out, 400, reason, detail);
    else
        deny(out, reason);
}

/* The X-Lark-* signature over the raw body with the replay window on its timestamp; NULL
 * when it holds, else the reason. */
static const char *verify(const struct cq_config *cfg, const struct ing_headers *h,
                          const char *body, size_t len, time_t now) {
    const char *key = cfg->feishu.encrypt_key.value;
    char want[65], *end = NULL;
    if (!h->lark_ts || !h->lark_nonce || !h->lark_sig) return "missing signature headers";
    long long t = strtoll(h->lark_ts, &end, 10);
    if (!*h->lark_ts || !end || *end || t <= 0) return "bad timestamp";
    long long skew = (long long)now - t;
    if (skew > cfg->limits.replay_window_s || -skew > cfg->limits.replay_window_s)
        return "stale timestamp";
    cq_feishu_signature(h->lark_ts, h->lark_nonce, key, body, len, want);
    if (!cq_ct_equal(want, strlen(want), h->lark_sig, strlen(h->lark_sig))) return "bad signature";
    return NULL;
}

/* Order: with an encrypt key, a signed request is verified (signature + timestamp window)
 * before its body is decrypted or parsed. The only unsigned request Feishu sends is
 * url_verification (inside "encrypt" too): it is decrypted and accepted on its token alone,
 * and every other unsigned request is refused. Without an encrypt key (only with
 * feishu.require_encrypt_key: false) the verification token in the body is all there is. */
void ing_feishu_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, time_t now, struct ing_verdict *out) {
    cJSON *root = NULL, *inner = NULL;
    char *plain = NULL;
    const char *key = cfg->feishu.encrypt_key.value;
    bool authed = false; /* the signature proved the body comes from Feishu */
    memset(out, 0, sizeof(*out));
    if (!cfg->feishu.verification_token.value) {
        ing_reject(out, 404, "feishu is not enabled", NULL);
        return;
    }
    if (key && (h->lark_ts || h->lark_nonce || h->lark_sig)) {
        const char *why = verify(cfg, h, body, len, now);
        if (why) {
            deny(out, why);
            goto out;
        }
        authed = true;
    }
    if (cq_json_has_nul_escape(body, len)) {
        bad_input(out, authed, "malformed JSON", "an escaped NUL (\\u0000) in a string");
        goto out;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        bad_input(out, authed, "malformed JSON", NULL);
        goto out;
    }
    const cJSON *ev = root;
    const char *enc = jstr(root, "encrypt");
    if (enc) {
        size_t plen = 0;
        if (!key) {
            deny(out, "encrypted body but no encrypt_key configured");
            goto out;
        }
        plain = cq_feishu_decrypt(key, enc, &plen);
        if (!plain) {
            bad_input(out, authed, "cannot decrypt body", NULL);
            goto out;
        }
        if (cq_json_has_nul_escape(plain, plen)) {
            bad_input(out, authed, "malformed JSON",
                      "an escaped NUL (\\u0000) in the decrypted body");
            goto out;
        }
        inner = cJSON_ParseWithLength(plain, plen);
        if (!cJSON_IsObject(inner)) {
            bad_input(out, authed, "malformed JSON", "decrypted body");
            goto out;
        }
        ev = inner;
    }
    const char *type = jstr(ev, "type");
    if (type && strcmp(type, "url_verification") == 0) {
        const char *ch = jstr(ev, "challenge");
        if (!token_ok(cfg, jstr(ev, "token"))) {
            deny(out, "bad token");
            goto out;
        }
        ing_challenge(out, ch);
        goto out;
    }
    if (key && !authed) { /* with an encrypt key every other event is signed */
        deny(out, "missing signature headers");
        goto out;
    }
    const cJSON *hdr = jobj(ev, "header");
    if (!hdr) {
        bad_input(out, authed, "unsupported event schema", "no header (schema 2.0 expected)");
        goto out;
    }
    if (!token_ok(cfg, jstr(hdr, "token"))) {
        deny(out, "bad token");
        goto out;
    }
    const char *etype = jstr(hdr, "event_type");
    if (etype && strcmp(etype, "card.action.trigger") == 0) { /* a button click (interact.c) */
        ing_feishu_card(cfg, ev, out);
        goto out;
    }
    if (!etype || strcmp(etype, "im.message.receive_v1") != 0) {
        ing_reply(out, 200, "application/json", strdup("{}"));
        goto out;
    }
    message_event(cfg, ev, out);
out:
    free(plain);
    cJSON_Delete(inner);
    cJSON_Delete(root);
}
