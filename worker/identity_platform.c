/* identity_platform: the gitlab_email resolver's first half, the chat user's e-mail from the
 * platform: Slack `GET users.info?user=` (bot token; the address is in user.profile.email
 * only with the users:read.email scope) or Feishu `GET contact/v3/users/:open_id
 * ?user_id_type=open_id` with a tenant_access_token (fetched as notifier/feishu_token.c does,
 * kept in this worker's memory only, refreshed 3 min before it expires and once when Feishu
 * refuses it; the address needs contact:user.email:readonly). Then identity.c goes on to
 * GitLab. The address is never logged. */
#include "identity_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service_int.h"
#include "strutil.h"

#define FEISHU_EARLY_MS (3 * 60 * 1000)
#define FEISHU_WAIT_MS 100

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* ---- Slack ---- */

static void on_slack(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    char buf[200], w[64];
    cJSON *b = NULL;
    if (!w_ident_still_wanted(j)) goto out;
    const char *t = w_ident_transport(resp, buf, sizeof buf, "Slack", j->cfg->identity.timeout_ms);
    if (t) {
        w_ident_metric_lookup("slack", "failed");
        w_ident_fail(j, "%s", t);
        goto out;
    }
    b = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *ok = get(b, "ok"), *err = get(b, "error"), *user = get(b, "user");
    if (resp->status != 200 || !cJSON_IsBool(ok)) {
        w_ident_metric_lookup("slack", "failed");
        w_ident_fail(j, "Slack answered %ld to users.info; try again", resp->status);
        goto out;
    }
    if (!cJSON_IsTrue(ok)) {
        w_ident_word(w, sizeof w, cJSON_IsString(err) ? err->valuestring : "unknown_error");
        w_ident_metric_lookup("slack", w);
        if (strcmp(w, "user_not_found") == 0 || strcmp(w, "users_not_found") == 0)
            w_ident_none(j, "Slack does not know your user id");
        else if (strcmp(w, "missing_scope") == 0)
            w_ident_fail(j, "Slack refused users.info: missing_scope (the Slack app needs the "
                            "users:read and users:read.email scopes); ask an admin");
        else if (strcmp(w, "ratelimited") == 0)
            w_ident_fail(j, "Slack is rate-limiting lookups; try again");
        else
            w_ident_fail(j, "Slack refused users.info: %s; ask an admin", w);
        goto out;
    }
    if (cJSON_IsTrue(get(user, "deleted"))) {
        w_ident_metric_lookup("slack", "deactivated");
        w_ident_none(j, "your Slack account is deactivated");
        goto out;
    }
    const cJSON *email = get(get(user, "profile"), "email");
    if (!cJSON_IsString(email) || !email->valuestring[0]) {
        w_ident_metric_lookup("slack", "no_email");
        cq_warn(j->req.id,
                "Slack gave no e-mail address for user %s: the Slack app needs the "
                "users:read.email scope (or the profile has none)",
                j->req.user_id);
        w_ident_none(j, "your Slack profile shows chatops no e-mail address (the Slack app "
                        "needs the users:read.email scope); ask an admin");
        goto out;
    }
    w_ident_metric_lookup("slack", "ok");
    w_ident_have_email(j, email->valuestring);
out:
    cJSON_Delete(b);
    w_job_op_end(j);
}

void w_ident_slack_send(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    if (!cfg->slack.bot_token.value) {
        w_ident_fail(j, "slack.bot_token is not configured; ask an admin");
        return;
    }
    char *u = cq_url_escape(j->req.user_id, strlen(j->req.user_id));
    char *url = u ? cq_strprintf("%s/users.info?user=%s", cfg->slack.api_base, u) : NULL;
    char *auth = cq_strprintf("Authorization: Bearer %s", cfg->slack.bot_token.value);
    const char *h[] = {auth, NULL};
    if (url && auth)
        w_ident_send(j, "GET", url, h, NULL, on_slack, "slack");
    else
        w_job_abandon(j, "out of memory");
    free(u);
    free(url);
    free(auth);
}

/* ---- Feishu ---- */

static bool token_code(long long c) {
    return c == 99991661 || c == 99991663 || c == 99991664 || c == 99991671;
}

static void feishu_contact_send(struct job *j);

static void on_contact(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct w_ident_state *s = j->w->ident;
    char buf[200];
    cJSON *b = NULL;
    if (!w_ident_still_wanted(j)) goto out;
    b = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *code = get(b, "code");
    long long c = cJSON_IsNumber(code) ? (long long)code->valuedouble : -1;
    const char *t = w_ident_transport(resp, buf, sizeof buf, "Feishu", j->cfg->identity.timeout_ms);
    if (t || c == 99991400) {
        w_ident_metric_lookup("feishu", "failed");
        if (t)
            w_ident_fail(j, "%s", t);
        else
            w_ident_fail(j, "Feishu is rate-limiting lookups (code 99991400); try again");
        goto out;
    }
    if (token_code(c)) {
        w_ident_metric_lookup("feishu", "token_refused");
        if (s) {
            free(s->feishu_token);
            s->feishu_token = NULL;
        }
        if (!j->ident->token_retried) {
            j->ident->token_retried = true;
            w_ident_feishu_step(j);
        } else {
            w_ident_fail(j, "Feishu refused the app's token (code %lld); try again", c);
        }
        goto out;
    }
    if (c != 0) {
        w_ident_metric_lookup("feishu", "failed");
        if (c < 0)
            w_ident_fail(j, "Feishu answered %ld to the contact lookup; try again", resp->status);
        else
            w_ident_fail(j,
                         "Feishu refused the contact lookup (code %lld: the app needs the "
                         "contact:user.email:readonly permission and you in its contact "
                         "scope); ask an admin",
                         c);
        goto out;
    }
    const cJSON *user = get(get(b, "data"), "user"), *st = get(user, "status");
    if (cJSON_IsTrue(get(st, "is_frozen")) || cJSON_IsTrue(get(st, "is_resigned"))) {
        w_ident_metric_lookup("feishu", "deactivated");
        w_ident_none(j, "your Feishu account is frozen or has left the organisation");
        goto out;
    }
    const cJSON *email = get(user, "email");
    if (!cJSON_IsString(email) || !email->valuestring[0]) email = get(user, "enterprise_email");
    if (!cJSON_IsString(email) || !email->valuestring[0]) {
        w_ident_metric_lookup("feishu", "no_email");
        cq_warn(j->req.id,
                "Feishu gave no e-mail address for user %s: the app needs the "
                "contact:user.email:readonly permission (or the profile has none)",
                j->req.user_id);
        w_ident_none(j, "your Feishu profile shows chatops no e-mail address (the Feishu app "
                        "needs the contact:user.email:readonly permission); ask an admin");
        goto out;
    }
    w_ident_metric_lookup("feishu", "ok");
    w_ident_have_email(j, email->valuestring);
out:
    cJSON_Delete(b);
    w_job_op_end(j);
}

static void feishu_contact_send(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    struct w_ident_state *s = j->w->ident;
    if (!s || !s->feishu_token) { /* dropped while this job waited for a slot */
        w_ident_feishu_step(j);
        return;
    }
    char *u = cq_url_escape(j->req.user_id, strlen(j->req.user_id));
    char *url =
        u ? cq_strprintf("%s/contact/v3/users/%s?user_id_type=open_id", cfg->feishu.api_base, u)
          : NULL;
    char *auth = cq_strprintf("Authorization: Bearer %s", s->feishu_token);
    const char *h[] = {auth, NULL};
    if (url && auth)
        w_ident_send(j, "GET", url, h, NULL, on_contact, "feishu");
    else
        w_job_abandon(j, "out of memory");
    free(u);
    free(url);
    free(auth);
}

static void on_token(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct w_ident_state *s = j->w->ident;
    char buf[200];
    cJSON *b = NULL;
    if (s) s->feishu_fetching = false;
    if (!w_ident_still_wanted(j)) goto out;
    b = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *code = get(b, "code"), *tok = get(b, "tenant_access_token"),
                *exp = get(b, "expire");
    const char *t = w_ident_transport(resp, buf, sizeof buf, "Feishu", j->cfg->identity.timeout_ms);
    if (t) {
        w_ident_metric_lookup("feishu_token", "failed");
        w_ident_fail(j, "%s", t);
        goto out;
    }
    if (!cJSON_IsNumber(code) || code->valuedouble != 0 || !cJSON_IsString(tok) ||
        !tok->valuestring[0] || !s) {
        w_ident_metric_lookup("feishu_token", "refused");
        w_ident_fail(j, "Feishu refused the app credentials (code %lld); ask an admin",
                     cJSON_IsNumber(code) ? (long long)code->valuedouble : -1LL);
        goto out;
    }
    char *nt = strdup(tok->valuestring);
    if (!nt) {
        w_job_abandon(j, "out of memory");
        goto out;
    }
    free(s->feishu_token);
    s->feishu_token = nt;
    long long secs =
        cJSON_IsNumber(exp) && exp->valuedouble > 0 ? (long long)exp->valuedouble : 7200;
    s->feishu_expire_ms = w_ident_wall_ms() + secs * 1000;
    w_ident_metric_lookup("feishu_token", "ok");
    cq_info(j->req.id,
            "feishu tenant_access_token fetched for identity lookups (expires in %lld s)", secs);
    w_ident_http_step(j, feishu_contact_send);
out:
    cJSON_Delete(b);
    w_job_op_end(j);
}

static bool token_valid(const struct w_ident_state *s) {
    return s && s->feishu_token && w_ident_wall_ms() < s->feishu_expire_ms - FEISHU_EARLY_MS;
}

static void token_send(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    struct w_ident_state *s = w_ident_state_of(j->w);
    if (token_valid(s) || (s && s->feishu_fetching)) { /* another job got there first */
        w_ident_feishu_step(j);
        return;
    }
    if (!s || !cfg->feishu.app_id || !cfg->feishu.app_secret.value) {
        w_ident_fail(j, "feishu.app_id and feishu.app_secret are not configured; ask an admin");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;
    if (o && cJSON_AddStringToObject(o, "app_id", cfg->feishu.app_id) &&
        cJSON_AddStringToObject(o, "app_secret", cfg->feishu.app_secret.value))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *url = cq_strprintf("%s/auth/v3/tenant_access_token/internal", cfg->feishu.api_base);
    const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    if (body && url) {
        s->feishu_fetching = true;
        if (!w_ident_send(j, "POST", url, h, body, on_token, "feishu_token"))
            s->feishu_fetching = false;
    } else {
        w_job_abandon(j, "out of memory");
    }
    free(url);
    cJSON_free(body);
}

static void wait_token(void *arg) {
    w_ident_feishu_step(arg);
}

void w_ident_feishu_step(struct job *j) {
    struct w_ident_state *s = w_ident_state_of(j->w);
    if (token_valid(s)) {
        w_ident_http_step(j, feishu_contact_send);
        return;
    }
    if (!s || !s->feishu_fetching) {
        w_ident_http_step(j, token_send);
        return;
    }
    /* Another job is fetching the token: look again shortly. */
    if (cq_now_ms() - j->ident->t0 > (uint64_t)j->cfg->identity.timeout_ms) {
        w_ident_fail(j, "the Feishu token did not arrive within %d ms; try again",
                     j->cfg->identity.timeout_ms);
        return;
    }
    if (!w_retry_later(j, FEISHU_WAIT_MS, wait_token, j)) w_job_abandon(j, "out of memory");
}
