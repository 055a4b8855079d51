/* slack: verifies Slack's v0 request signature over the raw body (replay window, constant-time
 * compare), then turns a slash command or an app_mention event into a request envelope.
 * Pure: the caller supplies `now`, so the official vector can be checked with its old clock. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"
#include "strutil.h"
#include "utf8.h"

#define MAX_FORM_FIELDS 64

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Returns NULL when the signature is good, else the rejection reason. */
static const char *verify(const struct cq_config *cfg, const struct ing_headers *h,
                          const char *body, size_t len, time_t now) {
    char want[68];
    const char *ts = h->slack_ts, *sig = h->slack_sig;
    if (!ts || !*ts || !sig || !*sig) return "missing signature headers";
    char *end = NULL;
    long long t = strtoll(ts, &end, 10);
    if (end == ts || *end || strlen(ts) > 12 || t < 0) return "bad timestamp";
    long long skew = (long long)now - t;
    if (skew > cfg->limits.replay_window_s || -skew > cfg->limits.replay_window_s)
        return "stale timestamp";
    cq_slack_signature(cfg->slack.signing_secret.value, ts, body, len, want);
    if (!cq_ct_equal(want, strlen(want), sig, strlen(sig))) return "bad signature";
    return NULL;
}

static bool command_allowed(const struct cq_config *cfg, const char *cmd) {
    for (size_t i = 0; cmd && cfg->slack.commands && cfg->slack.commands[i]; i++)
        if (strcmp(cfg->slack.commands[i], cmd) == 0) return true;
    return false;
}

void ing_slack_command(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                       size_t len, time_t now, struct ing_verdict *out) {
    struct cq_request *r = &out->req;
    memset(out, 0, sizeof(*out));
    /* decoded into the verdict: the envelope's fields borrow its strings (no copies) */
    struct ing_form *form = &out->form;
    if (!cfg->slack.signing_secret.value) {
        ing_reject(out, 404, "slack is not enabled", NULL);
        return;
    }
    const char *why = verify(cfg, h, body, len, now);
    if (why) {
        /* ssl_check is Slack's unsigned certificate probe: answer it, produce nothing. */
        if (!h->slack_sig && ing_form_parse(body, len, MAX_FORM_FIELDS, form) == CQ_OK &&
            ing_form_get(form, "ssl_check") && strcmp(ing_form_get(form, "ssl_check"), "1") == 0)
            ing_reply(out, 200, "text/plain", strdup(""));
        else
            ing_reject(out, 401, why, NULL);
        goto out;
    }
    enum cq_rc rc = ing_form_parse(body, len, MAX_FORM_FIELDS, form);
    if (rc != CQ_OK) {
        ing_reject(out, rc == CQ_ENOMEM ? 500 : 400,
                   rc == CQ_ENOMEM ? "out of memory" : "malformed form", NULL);
        goto out;
    }
    const char *ssl = ing_form_get(form, "ssl_check");
    if (ssl && strcmp(ssl, "1") == 0) {
        ing_reply(out, 200, "text/plain", strdup(""));
        goto out;
    }
    const char *user = ing_form_get(form, "user_id");
    const char *trigger = ing_form_get(form, "trigger_id");
    const char *text = ing_form_get(form, "text");
    if (!user || !*user) {
        ing_reject(out, 400, "missing user_id", NULL);
        goto out;
    }
    if (!trigger || !*trigger) {
        ing_reject(out, 400, "missing trigger_id", NULL);
        goto out;
    }
    if (!ing_set_command(cfg, text ? text : "", r, out)) goto out;
    /* Every slash command of the Slack app posts to this URL: run only the configured ones,
     * or /deploy-other would run as /ops. 200 + ephemeral text so the user reads why. Checked
     * once the form is otherwise valid, so malformed input keeps its own 400 reason. */
    const char *cmd = ing_form_get(form, "command");
    if (!command_allowed(cfg, cmd)) {
        char line[200];
        const char *shown = cmd && *cmd ? cmd : "(no command)";
        int n = (int)cq_utf8_prefix(shown, strlen(shown), 64); /* never splits a character */
        snprintf(line, sizeof(line), "%.*s is not a command of this ChatOps app (use %.64s).", n,
                 shown, cfg->slack.commands[0]);
        ing_reply(out, 200, "application/json", ing_slack_ephemeral(line));
        if (out->kind == ING_REPLY) out->reason = "unknown slash command"; /* counted */
        goto out;
    }
    size_t klen = strlen(trigger) + 7;
    r->dedupe_key = malloc(klen);
    out->borrowed |= ING_BORROW_FORM; /* ing_verdict_clear frees none of these */
    r->platform = (char *)"slack";
    r->tenant = (char *)ing_form_get(form, "team_id");
    r->channel_id = (char *)ing_form_get(form, "channel_id");
    r->channel_name = (char *)ing_form_get(form, "channel_name");
    r->user_id = (char *)user;
    r->user_name = (char *)ing_form_get(form, "user_name");
    r->reply.response_url = (char *)ing_form_get(form, "response_url");
    r->reply.chat_id = r->channel_id;
    if (!r->dedupe_key) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    snprintf(r->dedupe_key, klen, "slack:%s", trigger);
    ing_finish(out);
out:; /* the form stays in out until ing_verdict_clear */
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Drops a leading "<@U123>" / "<@U123|name>" mention (the bot being addressed). */
static const char *strip_mention(const char *t) {
    while (*t == ' ')
        t++;
    if (strncmp(t, "<@", 2) == 0) {
        const char *e = strchr(t, '>');
        if (e) t = e + 1;
    }
    return t;
}

void ing_slack_event(const struct cq_config *cfg, const struct ing_headers *h, const char *body,
                     size_t len, time_t now, struct ing_verdict *out) {
    cJSON *root = NULL;
    struct cq_request *r = &out->req;
    memset(out, 0, sizeof(*out));
    if (!cfg->slack.signing_secret.value) {
        ing_reject(out, 404, "slack is not enabled", NULL);
        return;
    }
    const char *why = verify(cfg, h, body, len, now);
    if (why) {
        ing_reject(out, 401, why, NULL);
        goto out;
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
    const char *type = jstr(root, "type");
    if (type && strcmp(type, "url_verification") == 0) {
        const char *ch = jstr(root, "challenge");
        ing_challenge(out, ch);
        goto out;
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "event");
    const char *etype = cJSON_IsObject(ev) ? jstr(ev, "type") : NULL;
    if (!type || strcmp(type, "event_callback") != 0 || !etype ||
        strcmp(etype, "app_mention") != 0 || cJSON_GetObjectItemCaseSensitive(ev, "bot_id")) {
        ing_reply(out, 200, "application/json", strdup("{}")); /* acknowledged, not ours */
        goto out;
    }
    const char *event_id = jstr(root, "event_id"), *user = jstr(ev, "user");
    const char *text = jstr(ev, "text");
    if (!event_id || !*event_id || !user || !*user || !text) {
        ing_reject(out, 400, "malformed event", "event_id, event.user or event.text missing");
        goto out;
    }
    if (!ing_set_command(cfg, strip_mention(text), r, out)) goto out;
    if (h->slack_retry_num) {
        long n = strtol(h->slack_retry_num, NULL, 10);
        r->retry_num = n < 0 ? 0 : n > CQ_ENV_MAX_RETRY_NUM ? CQ_ENV_MAX_RETRY_NUM : (int)n;
    }
    size_t klen = strlen(event_id) + 7;
    const char *thread = jstr(ev, "thread_ts");
    r->dedupe_key = malloc(klen);
    r->platform = strdup("slack");
    r->tenant = dup_or_null(jstr(root, "team_id"));
    r->channel_id = dup_or_null(jstr(ev, "channel"));
    r->user_id = strdup(user);
    r->reply.chat_id = dup_or_null(jstr(ev, "channel"));
    r->reply.thread_ts = dup_or_null(thread ? thread : jstr(ev, "ts"));
    if (!r->dedupe_key || !r->platform || !r->user_id) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    snprintf(r->dedupe_key, klen, "slack:%s", event_id);
    ing_finish(out);
out:
    cJSON_Delete(root);
}
