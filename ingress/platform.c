/* platform: Slack and Feishu payloads -> request envelopes (see platform.h). Everything
 * here reads untrusted JSON/form bytes: each field is type-checked and bounded, and any
 * surprise becomes a verdict with a reason, never a crash or a guess. */
#include "platform.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "form.h"

#define MAX_FORM_FIELDS 64

__attribute__((format(printf, 4, 5))) static void verdict(struct cq_in_outcome *o,
                                                          enum cq_in_kind kind,
                                                          const char *reason, const char *fmt,
                                                          ...) {
    va_list ap;
    o->kind = kind;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    va_start(ap, fmt);
    vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
    va_end(ap);
    /* one line: the detail may quote input */
    for (char *p = o->detail; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static void nomem(struct cq_in_outcome *o) {
    cq_request_clear(&o->req);
    verdict(o, CQ_IN_ERROR, "no_memory", "out of memory");
}

void cq_in_outcome_clear(struct cq_in_outcome *o) {
    if (!o) return;
    free(o->challenge);
    o->challenge = NULL;
    cq_request_clear(&o->req);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

enum cq_rc cq_in_split_command(const char *text, char **cmd, char **rest) {
    const char *p = text ? text : "";
    *cmd = *rest = NULL;
    while (is_space(*p)) p++;
    const char *w = p;
    while (*p && !is_space(*p)) p++;
    size_t wl = (size_t)(p - w);
    while (is_space(*p)) p++;
    size_t rl = strlen(p);
    while (rl && is_space(p[rl - 1])) rl--;
    *cmd = wl ? strndup(w, wl) : strdup("help");
    *rest = strndup(p, rl);
    if (!*cmd || !*rest) {
        free(*cmd);
        free(*rest);
        *cmd = *rest = NULL;
        return CQ_ENOMEM;
    }
    return CQ_OK;
}

size_t cq_in_utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Fills req->command/text from the user's text, checking the limits. 0 or -1 (verdict set). */
static int set_command(struct cq_in_outcome *o, const char *text, int max_text) {
    if (max_text > 0 && cq_in_utf8_chars(text) > (size_t)max_text) {
        verdict(o, CQ_IN_REFUSED, "text_too_long",
                "command text is longer than %d characters", max_text);
        return -1;
    }
    if (cq_in_split_command(text, &o->req.command, &o->req.text) != CQ_OK) {
        nomem(o);
        return -1;
    }
    if (strlen(o->req.command) > CQ_ENV_MAX_COMMAND) {
        verdict(o, CQ_IN_REFUSED, "command_too_long",
                "the command word is longer than %d bytes", CQ_ENV_MAX_COMMAND);
        return -1;
    }
    return 0;
}

/* strdup of an optional string; sets *ok = 0 on ENOMEM. */
static char *opt_dup(const char *s, int *ok) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = 0;
    return d;
}

static char *prefixed(const char *prefix, const char *id, int *ok) {
    size_t n = strlen(prefix) + strlen(id) + 1;
    char *s = malloc(n);
    if (!s) {
        *ok = 0;
        return NULL;
    }
    snprintf(s, n, "%s%s", prefix, id);
    return s;
}

/* ---- Slack ----------------------------------------------------------------------------- */

void cq_slack_command_parse(const char *body, size_t len, int max_text, int retry_num,
                            struct cq_in_outcome *o) {
    struct cq_form f;
    struct cq_err err = {0};
    int ok = 1;
    memset(o, 0, sizeof *o);
    enum cq_rc rc = cq_form_parse(body, len, MAX_FORM_FIELDS, &f, &err);
    if (rc == CQ_ENOMEM) {
        nomem(o);
        goto out;
    }
    if (rc != CQ_OK) {
        verdict(o, CQ_IN_BAD, "malformed_form", "malformed form body: %s", err.msg);
        goto out;
    }
    static const char *const required[] = {"user_id", "channel_id", "trigger_id", NULL};
    for (size_t i = 0; required[i]; i++) {
        const char *v = cq_form_get(&f, required[i]);
        if (!v || !*v) {
            verdict(o, CQ_IN_BAD, "missing_field", "form field '%s' is missing", required[i]);
            goto out;
        }
    }
    const char *text = cq_form_get(&f, "text");
    if (set_command(o, text ? text : "", max_text) != 0) goto out;
    o->req.platform = opt_dup("slack", &ok);
    o->req.tenant = opt_dup(cq_form_get(&f, "team_id"), &ok);
    o->req.channel_id = opt_dup(cq_form_get(&f, "channel_id"), &ok);
    o->req.channel_name = opt_dup(cq_form_get(&f, "channel_name"), &ok);
    o->req.user_id = opt_dup(cq_form_get(&f, "user_id"), &ok);
    o->req.user_name = opt_dup(cq_form_get(&f, "user_name"), &ok);
    o->req.reply.response_url = opt_dup(cq_form_get(&f, "response_url"), &ok);
    o->req.reply.chat_id = opt_dup(cq_form_get(&f, "channel_id"), &ok);
    o->req.dedupe_key = prefixed("slack:", cq_form_get(&f, "trigger_id"), &ok);
    o->req.retry_num = retry_num;
    if (!ok) {
        nomem(o);
        goto out;
    }
    o->kind = CQ_IN_REQUEST;
out:
    cq_form_clear(&f);
}

static const char *jstr(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "<@U123>" or "<@U123|name>" at the start of text: returns what follows it. */
static const char *strip_leading_mention(const char *t) {
    const char *p = t;
    while (is_space(*p)) p++;
    if (p[0] == '<' && p[1] == '@') {
        const char *end = strchr(p, '>');
        if (end) return end + 1;
    }
    return t;
}

void cq_slack_event_parse(const char *body, size_t len, int max_text, int retry_num,
                          struct cq_in_outcome *o) {
    int ok = 1;
    memset(o, 0, sizeof *o);
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        verdict(o, CQ_IN_BAD, "malformed_json", "body is not a JSON object");
        goto out;
    }
    const char *type = jstr(root, "type");
    if (!type) {
        verdict(o, CQ_IN_BAD, "missing_field", "field 'type' is missing");
        goto out;
    }
    if (strcmp(type, "url_verification") == 0) {
        const char *ch = jstr(root, "challenge");
        if (!ch) {
            verdict(o, CQ_IN_BAD, "missing_field", "field 'challenge' is missing");
            goto out;
        }
        o->challenge = strdup(ch);
        if (!o->challenge) {
            nomem(o);
            goto out;
        }
        verdict(o, CQ_IN_CHALLENGE, "challenge", "url_verification");
        goto out;
    }
    if (strcmp(type, "event_callback") != 0) {
        verdict(o, CQ_IN_IGNORE, "other_type", "callback type '%.40s' ignored", type);
        goto out;
    }
    const char *event_id = jstr(root, "event_id");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "event");
    if (!event_id || !*event_id || !cJSON_IsObject(ev)) {
        verdict(o, CQ_IN_BAD, "missing_field", "event_callback without event_id or event");
        goto out;
    }
    const char *etype = jstr(ev, "type");
    if (!etype || strcmp(etype, "app_mention") != 0) {
        verdict(o, CQ_IN_IGNORE, "other_event", "event '%.40s' ignored", etype ? etype : "?");
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(ev, "bot_id")) {
        verdict(o, CQ_IN_IGNORE, "bot_message", "message from a bot ignored");
        goto out;
    }
    const char *user = jstr(ev, "user"), *channel = jstr(ev, "channel");
    const char *text = jstr(ev, "text"), *ts = jstr(ev, "ts");
    if (!user || !*user || !channel || !*channel || !text) {
        verdict(o, CQ_IN_BAD, "missing_field", "app_mention without user, channel or text");
        goto out;
    }
    if (set_command(o, strip_leading_mention(text), max_text) != 0) goto out;
    const char *team = jstr(root, "team_id");
    const char *thread = jstr(ev, "thread_ts");
    o->req.platform = opt_dup("slack", &ok);
    o->req.tenant = opt_dup(team ? team : jstr(ev, "team"), &ok);
    o->req.channel_id = opt_dup(channel, &ok);
    o->req.user_id = opt_dup(user, &ok);
    o->req.reply.chat_id = opt_dup(channel, &ok);
    o->req.reply.thread_ts = opt_dup(thread ? thread : ts, &ok);
    o->req.dedupe_key = prefixed("slack:", event_id, &ok);
    o->req.retry_num = retry_num;
    if (!ok) {
        nomem(o);
        goto out;
    }
    o->kind = CQ_IN_REQUEST;
out:
    cJSON_Delete(root);
}

/* ---- Feishu ---------------------------------------------------------------------------- */

/* Removes every mention key ("@_user_1") from text in place; a key only matches when the
 * next character cannot continue it ("@_user_1" never eats the start of "@_user_12"). */
static void strip_keys(char *text, const cJSON *mentions) {
    const cJSON *m;
    cJSON_ArrayForEach(m, mentions) {
        const char *key = jstr(m, "key");
        size_t kl = key ? strlen(key) : 0;
        if (kl == 0) continue;
        char *p = text;
        while ((p = strstr(p, key)) != NULL) {
            char next = p[kl];
            if ((next >= '0' && next <= '9') || (next >= 'a' && next <= 'z') ||
                (next >= 'A' && next <= 'Z') || next == '_') {
                p += kl;
                continue;
            }
            memmove(p, p + kl, strlen(p + kl) + 1);
        }
    }
}

static void feishu_message(const struct cq_feishu_conf *c, const cJSON *hdr, const cJSON *ev,
                           struct cq_in_outcome *o) {
    int ok = 1;
    char *text = NULL;
    cJSON *content = NULL;
    const cJSON *sender = cJSON_GetObjectItemCaseSensitive(ev, "sender");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(sender, "sender_id");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ev, "message");
    const char *open_id = jstr(sid, "open_id");
    const char *event_id = jstr(hdr, "event_id");
    if (!cJSON_IsObject(msg) || !open_id || !*open_id) {
        verdict(o, CQ_IN_BAD, "missing_field", "im.message.receive_v1 without message or sender");
        goto out;
    }
    if (c->bot_open_id && strcmp(open_id, c->bot_open_id) == 0) {
        verdict(o, CQ_IN_IGNORE, "own_message", "the bot's own message ignored");
        goto out;
    }
    const char *mtype = jstr(msg, "message_type");
    if (!mtype || strcmp(mtype, "text") != 0) {
        verdict(o, CQ_IN_IGNORE, "not_text", "message type '%.20s' ignored", mtype ? mtype : "?");
        goto out;
    }
    const cJSON *mentions = cJSON_GetObjectItemCaseSensitive(msg, "mentions");
    int addressed = 0;
    const cJSON *m, *list = cJSON_IsArray(mentions) ? mentions : NULL;
    cJSON_ArrayForEach(m, list) {
        const char *mid = jstr(cJSON_GetObjectItemCaseSensitive(m, "id"), "open_id");
        if (!c->bot_open_id || (mid && strcmp(mid, c->bot_open_id) == 0)) addressed = 1;
    }
    if (!addressed) {
        verdict(o, CQ_IN_IGNORE, "not_addressed", "message does not mention the bot");
        goto out;
    }
    const char *message_id = jstr(msg, "message_id"), *chat_id = jstr(msg, "chat_id");
    const char *raw = jstr(msg, "content");
    if (!message_id || !chat_id || !raw) {
        verdict(o, CQ_IN_BAD, "missing_field", "message without message_id, chat_id or content");
        goto out;
    }
    content = cJSON_Parse(raw);
    const char *t = jstr(content, "text");
    if (!t) {
        verdict(o, CQ_IN_BAD, "malformed_json", "message content is not {\"text\":...}");
        goto out;
    }
    text = strdup(t);
    if (!text) {
        nomem(o);
        goto out;
    }
    if (cJSON_IsArray(mentions)) strip_keys(text, mentions);
    if (set_command(o, text, c->max_text) != 0) goto out;
    o->req.platform = opt_dup("feishu", &ok);
    o->req.tenant = opt_dup(jstr(hdr, "tenant_key"), &ok);
    o->req.channel_id = opt_dup(chat_id, &ok);
    o->req.user_id = opt_dup(open_id, &ok);
    o->req.reply.message_id = opt_dup(message_id, &ok);
    o->req.reply.chat_id = opt_dup(chat_id, &ok);
    o->req.dedupe_key = prefixed("feishu:", event_id, &ok);
    if (!ok) {
        nomem(o);
        goto out;
    }
    o->kind = CQ_IN_REQUEST;
out:
    cJSON_Delete(content);
    free(text);
}

static void unauth(struct cq_in_outcome *o, enum cq_verify v, const char *what) {
    verdict(o, CQ_IN_UNAUTH, cq_verify_label(v), "%s: %s", what, cq_verify_text(v));
}

void cq_feishu_event_parse(const struct cq_feishu_conf *c, const struct cq_feishu_headers *h,
                           const char *body, size_t len, struct cq_in_outcome *o) {
    cJSON *outer = NULL, *inner = NULL;
    char *plain = NULL;
    int signed_ok = 0;
    memset(o, 0, sizeof *o);
    if (c->encrypt_key && h->sig) { /* signature first, over the raw bytes */
        enum cq_verify v = cq_verify_feishu(c->encrypt_key, h->ts, h->nonce, h->sig, body, len);
        if (v != CQ_VERIFY_OK) {
            unauth(o, v, "feishu signature");
            goto out;
        }
        signed_ok = 1;
    }
    outer = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(outer)) {
        verdict(o, CQ_IN_BAD, "malformed_json", "body is not a JSON object");
        goto out;
    }
    const cJSON *payload = outer;
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(outer, "encrypt");
    if (enc) {
        size_t plen = 0;
        if (!c->encrypt_key) {
            verdict(o, CQ_IN_BAD, "unexpected_encrypt",
                    "encrypted body but no encrypt_key is configured");
            goto out;
        }
        if (!cJSON_IsString(enc) ||
            !(plain = cq_feishu_decrypt(c->encrypt_key, enc->valuestring, &plen))) {
            verdict(o, CQ_IN_BAD, "undecryptable", "cannot decrypt 'encrypt' with the encrypt key");
            goto out;
        }
        inner = cJSON_ParseWithLength(plain, plen);
        if (!cJSON_IsObject(inner)) {
            verdict(o, CQ_IN_BAD, "malformed_json", "decrypted body is not a JSON object");
            goto out;
        }
        payload = inner;
    }
    const char *type = jstr(payload, "type");
    if (type && strcmp(type, "url_verification") == 0) {
        /* Unsigned by design: the verification token proves it comes from Feishu. */
        enum cq_verify v = cq_verify_token(c->verification_token, jstr(payload, "token"));
        if (v != CQ_VERIFY_OK) {
            unauth(o, v, "feishu verification token");
            goto out;
        }
        const char *ch = jstr(payload, "challenge");
        if (!ch) {
            verdict(o, CQ_IN_BAD, "missing_field", "field 'challenge' is missing");
            goto out;
        }
        o->challenge = strdup(ch);
        if (!o->challenge) {
            nomem(o);
            goto out;
        }
        verdict(o, CQ_IN_CHALLENGE, "challenge", "url_verification");
        goto out;
    }
    if (c->encrypt_key && !signed_ok) {
        unauth(o, CQ_VERIFY_MISSING_SIGNATURE, "feishu signature");
        goto out;
    }
    const cJSON *hdr = cJSON_GetObjectItemCaseSensitive(payload, "header");
    if (!cJSON_IsObject(hdr)) {
        verdict(o, CQ_IN_BAD, "missing_field", "no 'header' object (event schema 2.0 expected)");
        goto out;
    }
    enum cq_verify v = cq_verify_token(c->verification_token, jstr(hdr, "token"));
    if (v != CQ_VERIFY_OK) {
        unauth(o, v, "feishu header.token");
        goto out;
    }
    const char *event_id = jstr(hdr, "event_id"), *etype = jstr(hdr, "event_type");
    if (!event_id || !*event_id || !etype) {
        verdict(o, CQ_IN_BAD, "missing_field", "header without event_id or event_type");
        goto out;
    }
    if (strcmp(etype, "im.message.receive_v1") != 0) {
        verdict(o, CQ_IN_IGNORE, "other_event", "event '%.60s' ignored", etype);
        goto out;
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(payload, "event");
    if (!cJSON_IsObject(ev)) {
        verdict(o, CQ_IN_BAD, "missing_field", "no 'event' object");
        goto out;
    }
    feishu_message(c, hdr, ev, o);
out:
    cJSON_Delete(outer);
    cJSON_Delete(inner);
    free(plain);
}

/* ---- GitLab ---------------------------------------------------------------------------- */

int cq_gitlab_pipeline_key(const char *body, size_t len, char *key, size_t keylen,
                           struct cq_in_outcome *o) {
    int rc = -1;
    memset(o, 0, sizeof *o);
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        verdict(o, CQ_IN_BAD, "malformed_json", "body is not a JSON object");
        goto out;
    }
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "project"), "id");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "object_attributes"), "id");
    if (!cJSON_IsNumber(pid) || !cJSON_IsNumber(id)) {
        verdict(o, CQ_IN_BAD, "missing_field", "pipeline hook without project.id or object_attributes.id");
        goto out;
    }
    snprintf(key, keylen, "%.0f:%.0f", pid->valuedouble, id->valuedouble);
    o->kind = CQ_IN_REQUEST;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
