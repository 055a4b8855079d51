/* interact: button clicks in (issue 16). Slack interactivity (`block_actions`, the form
 * field `payload`, signed with the v0 scheme and replay window of slash commands and verified
 * over the raw bytes before anything is parsed) and Feishu card callbacks
 * (`card.action.trigger`, reached through ing_feishu_event, so verified and decrypted exactly
 * like events). A click on one of our buttons becomes a request envelope whose command is the
 * action's name ("approve", "deny", "confirm", "cancel") and whose text is the request id it
 * acts on, with the optional "action" part (name, value, request id, message) and the clicker
 * as user; the worker decides it like the typed `approve REQ`. Anything else (a link button,
 * another app's button) is acknowledged and nothing is produced. Pure, like slack.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"

#define MAX_FORM_FIELDS 64

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

/* The action names our buttons carry; anything else is not ours. */
bool ing_action_known(const char *name) {
    static const char *const names[] = {"approve", "deny", "confirm", "cancel", NULL};
    for (size_t i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

/* A request id as our buttons carry it: 1..CQ_ENV_MAX_ID bytes of [A-Za-z0-9-]. */
static bool id_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CQ_ENV_MAX_ID) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

/* Fills the click part of a request: command = name, text = request id. */
static bool fill_action(struct cq_request *r, const char *name, const char *value,
                        const char *message) {
    r->command = strdup(name);
    r->text = strdup(value);
    r->action.name = strdup(name);
    r->action.value = strdup(value);
    r->action.request_id = strdup(value);
    r->action.message = dup_or_null(message);
    return r->command && r->text && r->action.name && r->action.value && r->action.request_id &&
           (!message || r->action.message);
}

/* Slack's v0 signature over the raw bytes with the replay window (the same scheme as
 * slack.c's commands); NULL when it holds, else the reason. */
static const char *slack_verify(const struct cq_config *cfg, const struct ing_headers *h,
                                const char *body, size_t len, time_t now) {
    char want[68], *end = NULL;
    const char *ts = h->slack_ts, *sig = h->slack_sig;
    if (!ts || !*ts || !sig || !*sig) return "missing signature headers";
    long long t = strtoll(ts, &end, 10);
    if (end == ts || *end || strlen(ts) > 12 || t < 0) return "bad timestamp";
    long long skew = (long long)now - t;
    if (skew > cfg->limits.replay_window_s || -skew > cfg->limits.replay_window_s)
        return "stale timestamp";
    cq_slack_signature(cfg->slack.signing_secret.value, ts, body, len, want);
    if (!cq_ct_equal(want, strlen(want), sig, strlen(sig))) return "bad signature";
    return NULL;
}

/* The acknowledgement of a click that is not ours (or not a click): 200, nothing queued. */
static void not_ours(struct ing_verdict *out) {
    ing_reply(out, 200, "application/json", strdup("{}"));
}

static void slack_block_actions(const cJSON *p, struct ing_verdict *out) {
    struct cq_request *r = &out->req;
    const cJSON *user = jobj(p, "user"), *team = jobj(p, "team"), *chan = jobj(p, "channel");
    const cJSON *container = jobj(p, "container");
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(p, "actions");
    const cJSON *a = cJSON_IsArray(acts) ? cJSON_GetArrayItem(acts, 0) : NULL;
    const char *uid = jstr(user, "id"), *aid = jstr(a, "action_id");
    const char *value = jstr(a, "value"), *ats = jstr(a, "action_ts");
    const char *mts = jstr(container, "message_ts");
    const char *name = aid && strncmp(aid, "chatops_", 8) == 0 ? aid + 8 : NULL;
    if (!uid || !*uid || !cJSON_IsObject(a)) {
        ing_reject(out, 400, "malformed block_actions", "user.id or actions[0] missing");
        return;
    }
    if (!ing_action_known(name)) { /* a link button, another app's button */
        not_ours(out);
        return;
    }
    if (!id_ok(value) || !ats || !*ats || strlen(ats) > 32) {
        ing_reject(out, 400, "malformed block_actions", "action value or action_ts");
        return;
    }
    if (!fill_action(r, name, value, mts)) {
        ing_reject(out, 500, "out of memory", NULL);
        return;
    }
    /* One click, one key: a platform re-send of the same click keeps it. */
    r->dedupe_key = cq_strprintf("slack:act:%s:%s:%s", uid, ats, name);
    r->platform = strdup("slack");
    r->tenant = dup_or_null(jstr(team, "id"));
    r->channel_id = dup_or_null(jstr(chan, "id"));
    r->channel_name = dup_or_null(jstr(chan, "name"));
    r->user_id = strdup(uid);
    r->user_name =
        dup_or_null(jstr(user, "username") ? jstr(user, "username") : jstr(user, "name"));
    r->reply.response_url = dup_or_null(jstr(p, "response_url"));
    r->reply.chat_id = dup_or_null(jstr(chan, "id"));
    if (!r->dedupe_key || !r->platform || !r->user_id) {
        ing_reject(out, 500, "out of memory", NULL);
        return;
    }
    ing_finish(out);
}

void ing_slack_action(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                      size_t len, time_t now, struct ing_verdict *out) {
    struct ing_form form = {0};
    cJSON *p = NULL;
    memset(out, 0, sizeof(*out));
    if (!cfg->slack.signing_secret.value) {
        ing_reject(out, 404, "slack is not enabled", NULL);
        return;
    }
    const char *why = slack_verify(cfg, h, body, len, now); /* before any parsing */
    if (why) {
        ing_reject(out, 401, why, NULL);
        return;
    }
    enum cq_rc rc = ing_form_parse(body, len, MAX_FORM_FIELDS, &form);
    if (rc != CQ_OK) {
        ing_reject(out, rc == CQ_ENOMEM ? 500 : 400,
                   rc == CQ_ENOMEM ? "out of memory" : "malformed form", NULL);
        goto out;
    }
    const char *payload = ing_form_get(&form, "payload");
    if (!payload) {
        ing_reject(out, 400, "missing payload", NULL);
        goto out;
    }
    if (cq_json_has_nul_escape(payload, strlen(payload)) ||
        !cJSON_IsObject(p = cJSON_Parse(payload))) {
        ing_reject(out, 400, "malformed JSON", "payload");
        goto out;
    }
    const char *type = jstr(p, "type");
    if (!type || strcmp(type, "block_actions") != 0) {
        not_ours(out); /* shortcuts, view submissions: acknowledged, not ours */
        goto out;
    }
    slack_block_actions(p, out);
out:
    cJSON_Delete(p);
    ing_form_clear(&form);
}

/* card.action.trigger (schema 2.0), already verified, decrypted and token-checked by
 * ing_feishu_event. Our buttons carry value {"chatops": NAME, "request_id": ID}. */
void ing_feishu_card(const struct cq_config *cfg, const cJSON *ev, struct ing_verdict *out) {
    struct cq_request *r = &out->req;
    const cJSON *hdr = jobj(ev, "header"), *e = jobj(ev, "event");
    const cJSON *op = jobj(e, "operator"), *act = jobj(e, "action"), *ctx = jobj(e, "context");
    const cJSON *value = jobj(act, "value");
    const char *event_id = jstr(hdr, "event_id"), *open_id = jstr(op, "open_id");
    const char *name = jstr(value, "chatops"), *rid = jstr(value, "request_id");
    const char *msg = jstr(ctx, "open_message_id"), *chat = jstr(ctx, "open_chat_id");
    (void)cfg;
    if (!event_id || !*event_id || !open_id || !*open_id || !act) {
        ing_reject(out, 400, "malformed card action", "header.event_id, operator or action");
        return;
    }
    if (!ing_action_known(name)) {
        not_ours(out);
        return;
    }
    if (!id_ok(rid)) {
        ing_reject(out, 400, "malformed card action", "value.request_id");
        return;
    }
    if (!fill_action(r, name, rid, msg)) {
        ing_reject(out, 500, "out of memory", NULL);
        return;
    }
    r->dedupe_key = cq_strprintf("feishu:%s", event_id); /* re-sent with the same event id */
    r->platform = strdup("feishu");
    r->tenant = dup_or_null(jstr(hdr, "tenant_key"));
    r->channel_id = dup_or_null(chat);
    r->user_id = strdup(open_id);
    r->reply.message_id = dup_or_null(msg);
    r->reply.chat_id = dup_or_null(chat);
    if (!r->dedupe_key || !r->platform || !r->user_id) {
        ing_reject(out, 500, "out of memory", NULL);
        return;
    }
    ing_finish(out);
}
