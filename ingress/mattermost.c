/* mattermost: a custom slash command in (a Slack-like form POST). The command's `token` is
 * compared in constant time with every configured one (mattermost.tokens: one per team;
 * each compared, no early exit), then the form becomes a request: text, user_id,
 * channel_id, team_id, trigger_id (the dedupe key), response_url and the thread (root_id).
 * Pure, like slack.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ingress.h"

#define MAX_FORM_FIELDS 64

static char *dup_or_null(const char *s) {
    return s && *s ? strdup(s) : NULL;
}

static bool token_ok(const struct cq_config *cfg, const char *token) {
    bool ok = false;
    size_t tl = token ? strlen(token) : 0;
    for (size_t i = 0; tl && i < cfg->mattermost.n_tokens; i++) {
        const char *want = cfg->mattermost.tokens[i].secret.value;
        if (want && cq_ct_equal(want, strlen(want), token, tl)) ok = true;
    }
    return ok;
}

void ing_mattermost_command(const struct cq_config *cfg, const struct ing_headers *h,
                            const char *body, size_t len, time_t now, struct ing_verdict *out) {
    struct ing_form form = {0};
    struct cq_request *r = &out->req;
    (void)h;
    (void)now; /* Mattermost sends no timestamp: the token is all there is */
    memset(out, 0, sizeof(*out));
    if (cfg->mattermost.n_tokens == 0) {
        ing_reject(out, 404, "mattermost is not enabled", NULL);
        return;
    }
    enum cq_rc rc = ing_form_parse(body, len, MAX_FORM_FIELDS, &form);
    if (rc != CQ_OK) {
        /* unauthenticated yet: the same 401 as a bad token unless memory ran out */
        ing_reject(out, rc == CQ_ENOMEM ? 500 : 401,
                   rc == CQ_ENOMEM ? "out of memory" : "malformed form", NULL);
        goto out;
    }
    const char *token = ing_form_get(&form, "token");
    if (!token || !*token) {
        ing_reject(out, 401, "missing token", NULL);
        goto out;
    }
    if (!token_ok(cfg, token)) {
        ing_reject(out, 401, "bad token", NULL);
        goto out;
    }
    const char *user = ing_form_get(&form, "user_id");
    const char *trigger = ing_form_get(&form, "trigger_id");
    const char *channel = ing_form_get(&form, "channel_id");
    const char *text = ing_form_get(&form, "text");
    if (!user || !*user || !trigger || !*trigger || !channel || !*channel) {
        ing_reject(out, 400, "malformed command", "user_id, channel_id or trigger_id missing");
        goto out;
    }
    if (!ing_set_command(cfg, text ? text : "", r, out)) goto out;
    if (!ing_set_identity(r, "mattermost", trigger, out)) goto out;
    r->tenant = dup_or_null(ing_form_get(&form, "team_id"));
    r->channel_id = strdup(channel);
    r->channel_name = dup_or_null(ing_form_get(&form, "channel_name"));
    r->user_id = strdup(user);
    r->user_name = dup_or_null(ing_form_get(&form, "user_name"));
    r->reply.response_url = dup_or_null(ing_form_get(&form, "response_url"));
    r->reply.chat_id = strdup(channel);
    r->reply.thread_ts = dup_or_null(ing_form_get(&form, "root_id"));
    if (!r->channel_id || !r->user_id || !r->reply.chat_id) {
        ing_reject(out, 500, "out of memory", NULL);
        goto out;
    }
    ing_finish(out);
out:
    ing_form_clear(&form);
}
