/* dingtalk_send: results to DingTalk. While the session webhook lives (reply.expires_at):
 * POST it {"msgtype":"markdown"}; after it (or when DingTalk says it expired): the robot
 * OpenAPI with the app's access token (POST /v1.0/oauth2/accessToken {appKey, appSecret},
 * cached in this process until shortly before expireIn) - groupMessages/send into the group
 * (openConversationId) or oToMessages/batchSend to the user of a one-to-one chat. The session
 * webhook answers errors as HTTP 200 {"errcode": != 0}. Pacing: dingtalk.messages_per_minute
 * per conversation (service.c's pacer). */
#include "notifier_int.h"

#define DT_TEXT_CHARS 5000
#define DT_TOKEN_MARGIN_MS (5 * 60 * 1000)

static bool dt_openapi_ready(const struct cq_config *c) {
    return c->dingtalk.app_key && c->dingtalk.app_secret.value && c->dingtalk.robot_code;
}

static void dt_route(struct job *j) {
    const struct cq_config *c = j->s->cfg;
    bool direct =
        j->r.reply.conversation_type && strcmp(j->r.reply.conversation_type, "direct") == 0;
    const char *conv = j->r.reply.chat_id && *j->r.reply.chat_id ? j->r.reply.chat_id
                       : j->r.reply.user_id                      ? j->r.reply.user_id
                                                                 : j->r.request_id;
    snprintf(j->pace_key, sizeof j->pace_key, "%s", conv);
    if (j->r.reply.response_url && *j->r.reply.response_url && !j->rurl_spent &&
        !ntf_plat_expired(&j->r)) {
        j->route = R_DT_WEBHOOK;
    } else if (!dt_openapi_ready(c)) {
        ntf_job_dead_letter(j, "permanent",
                            "session webhook expired and dingtalk.app_key/app_secret/robot_code "
                            "not configured");
        return;
    } else if (direct) {
        if (!j->r.reply.user_id || !*j->r.reply.user_id) {
            ntf_job_dead_letter(j, "permanent", "session webhook expired and no user_id");
            return;
        }
        j->route = R_DT_DIRECT;
    } else {
        if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
            ntf_job_dead_letter(j, "permanent", "session webhook expired and no chat_id");
            return;
        }
        j->route = R_DT_GROUP;
    }
    ntf_job_pace(j);
}

static enum cq_rc dt_build(struct job *j, struct ntf_plat_req *out, struct cq_err *err) {
    const struct cq_config *c = j->s->cfg;
    char *md = ntf_plat_markdown(&j->r, 0, DT_TEXT_CHARS);
    char title[64]; /* the notification's title: the command, cut on a character */
    const char *cmd = j->r.command && *j->r.command ? j->r.command : "ChatOps";
    cq_utf8_copy(title, sizeof title, cmd, strlen(cmd), NULL);
    cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (!md || !o || !m) {
        free(md);
        cJSON_Delete(o);
        cJSON_Delete(m);
        return cq_err_set(err, CQ_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(m, "title", title);
    cJSON_AddStringToObject(m, "text", md);
    free(md);
    if (j->route == R_DT_WEBHOOK) {
        cJSON_AddStringToObject(o, "msgtype", "markdown");
        cJSON_AddItemToObject(o, "markdown", m);
        snprintf(out->url, sizeof out->url, "%s", j->r.reply.response_url);
    } else {
        char *param = ntf_plat_json(m, err); /* msgParam is a JSON string */
        if (!param) {
            cJSON_Delete(o);
            return err->code;
        }
        cJSON_AddStringToObject(o, "robotCode", c->dingtalk.robot_code);
        if (j->route == R_DT_GROUP) {
            cJSON_AddStringToObject(o, "openConversationId", j->r.reply.chat_id);
            snprintf(out->url, sizeof out->url, "%s/v1.0/robot/groupMessages/send",
                     c->dingtalk.api_base);
        } else {
            cJSON *ids = cJSON_AddArrayToObject(o, "userIds");
            if (ids) cJSON_AddItemToArray(ids, cJSON_CreateString(j->r.reply.user_id));
            snprintf(out->url, sizeof out->url, "%s/v1.0/robot/oToMessages/batchSend",
                     c->dingtalk.api_base);
        }
        cJSON_AddStringToObject(o, "msgKey", "sampleMarkdown");
        cJSON_AddStringToObject(o, "msgParam", param);
        free(param);
        snprintf(out->hdr[0], sizeof out->hdr[0], "x-acs-dingtalk-access-token: %s",
                 j->used_token ? j->used_token : "");
    }
    out->body = ntf_plat_json(o, err);
    return out->body ? CQ_OK : err->code;
}

/* session webhook errcodes: 130101 or 410100 sending too fast, -1 system busy: retry; 300001
 * (session expired / invalid): the OpenAPI takes over; others: permanent */
static enum ntf_outcome dt_classify(const struct job *j, const struct ntf_attempt_answer *a,
                                    char *why, size_t why_len) {
    enum ntf_outcome o = ntf_plat_http_class(a, why, why_len);
    cJSON *b = a->rc == CQ_OK && a->body ? cJSON_Parse(a->body) : NULL;
    if (j->route == R_DT_WEBHOOK) {
        if (o == NTF_OUT_PERMANENT && (a->status == 404 || a->status == 403)) o = NTF_OUT_FALLBACK;
        const cJSON *ec = b ? cJSON_GetObjectItemCaseSensitive(b, "errcode") : NULL;
        if (o == NTF_OUT_DELIVERED && cJSON_IsNumber(ec) && ec->valuedouble != 0) {
            const cJSON *em = cJSON_GetObjectItemCaseSensitive(b, "errmsg");
            long code = (long)ec->valuedouble;
            snprintf(why, why_len, "errcode_%ld: %.80s", code,
                     cJSON_IsString(em) ? em->valuestring : "");
            o = code == 130101 || code == 410100 || code == -1 ? NTF_OUT_RETRY
                : code == 300001                               ? NTF_OUT_FALLBACK
                                                               : NTF_OUT_PERMANENT;
        }
    } else {
        const cJSON *code = b ? cJSON_GetObjectItemCaseSensitive(b, "code") : NULL;
        const char *cs = cJSON_IsString(code) ? code->valuestring : "";
        if (a->status == 401 || strcmp(cs, "InvalidAuthentication") == 0)
            o = NTF_OUT_TOKEN_EXPIRED;
        else if (strstr(cs, "Throttling") || strstr(cs, "ServiceUnavailable"))
            o = NTF_OUT_RETRY;
        if (cs[0]) snprintf(why, why_len, "http_%ld: %.80s", a->status, cs);
    }
    cJSON_Delete(b);
    return o;
}

static bool dt_needs_token(const struct job *j) {
    return j->route == R_DT_GROUP || j->route == R_DT_DIRECT;
}

/* ------------------------------------------------------------------ access token */

static void dt_token_fail(struct ntf_service *s, bool permanent, const char *why) {
    struct job *w = s->dtok.waiters;
    s->dtok.waiters = NULL;
    s->dtok.failures++;
    while (w) {
        struct job *nx = w->tok_next;
        w->tok_next = NULL;
        w->wait = W_OP;
        if (permanent) {
            ntf_job_dead_letter(w, "permanent", why);
        } else if (++w->attempts >= s->cfg->notifier.max_attempts) {
            ntf_job_dead_letter(w, "exhausted", why);
        } else {
            cq_utf8_copy(w->reason, sizeof w->reason, why, strlen(why), NULL);
            ntf_job_wait(w,
                         ntf_backoff_ms(s->dtok.failures, s->cfg->notifier.backoff_base_ms,
                                        s->cfg->notifier.backoff_max_ms, ntf_rnd64()),
                         N_SEND);
        }
        w = nx;
    }
}

static void on_token(void *opaque, const struct cq_http_response *resp) {
    struct ntf_service *s = opaque;
    s->dtok.busy = false;
    if (resp->rc == CQ_ESHUTDOWN || s->finished) return;
    cJSON *b = resp->rc == CQ_OK ? cJSON_Parse(resp->body) : NULL;
    const cJSON *tok = b ? cJSON_GetObjectItemCaseSensitive(b, "accessToken") : NULL;
    const cJSON *exp = b ? cJSON_GetObjectItemCaseSensitive(b, "expireIn") : NULL;
    const char *tv = cJSON_GetStringValue(tok);
    if (resp->status == 200 && tv && *tv) {
        free(s->dtok.token);
        s->dtok.token = strdup(tv);
        long long life = cJSON_IsNumber(exp) ? (long long)exp->valuedouble * 1000 : 7200000;
        s->dtok.fetched_ms = ntf_wall_ms();
        s->dtok.expire_ms = s->dtok.fetched_ms + life;
        s->dtok.failures = 0;
        ntf_metric_token_fetch("ok");
        cJSON_Delete(b);
        struct job *w = s->dtok.waiters;
        s->dtok.waiters = NULL;
        while (w) {
            struct job *nx = w->tok_next;
            w->tok_next = NULL;
            w->wait = W_OP;
            free(w->used_token);
            w->used_token = s->dtok.token ? strdup(s->dtok.token) : NULL;
            if (w->used_token)
                ntf_job_send(w);
            else
                ntf_job_wait(w, 1000, N_SEND);
            w = nx;
        }
        return;
    }
    const cJSON *code = b ? cJSON_GetObjectItemCaseSensitive(b, "code") : NULL;
    char why[160];
    snprintf(why, sizeof why, "dingtalk access token: %s %ld %.60s",
             resp->rc == CQ_OK ? "http" : "no answer", resp->status,
             cJSON_IsString(code) ? code->valuestring : "");
    cJSON_Delete(b);
    ntf_metric_token_fetch("error");
    /* a 4xx is a wrong app_key/app_secret: retrying cannot help */
    dt_token_fail(
        s, resp->rc == CQ_OK && resp->status >= 400 && resp->status < 500 && resp->status != 429,
        why);
}

static void dt_token_get(struct job *j) {
    struct ntf_service *s = j->s;
    const struct cq_config *c = s->cfg;
    if (s->dtok.token && s->dtok.expire_ms - DT_TOKEN_MARGIN_MS > ntf_wall_ms()) {
        free(j->used_token);
        j->used_token = strdup(s->dtok.token);
        if (!j->used_token) {
            ntf_job_wait(j, 1000, N_SEND);
            return;
        }
        ntf_job_send(j);
        return;
    }
    j->wait = W_TOKEN;
    j->tok_next = s->dtok.waiters;
    s->dtok.waiters = j;
    if (s->dtok.busy) return;
    cJSON *o = cJSON_CreateObject();
    struct cq_err err = {0};
    if (o) {
        cJSON_AddStringToObject(o, "appKey", c->dingtalk.app_key);
        cJSON_AddStringToObject(o, "appSecret", c->dingtalk.app_secret.value);
    }
    char *body = ntf_plat_json(o, &err);
    char url[1024];
    snprintf(url, sizeof url, "%s/v1.0/oauth2/accessToken", c->dingtalk.api_base);
    const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    struct cq_http_request req = {.method = "POST",
                                  .url = url,
                                  .headers = h,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .timeout_ms = c->notifier.http_timeout_ms,
                                  .max_response = 16 * 1024};
    if (body && cq_httpc_request(s->http, &req, on_token, s, &err) == CQ_OK)
        s->dtok.busy = true;
    else
        dt_token_fail(s, false, "dingtalk access token: request not started");
    free(body);
}

static void dt_token_drop(struct job *j) {
    struct ntf_service *s = j->s;
    if (j->used_token && s->dtok.token && strcmp(s->dtok.token, j->used_token) == 0) {
        free(s->dtok.token);
        s->dtok.token = NULL;
    }
    free(j->used_token);
    j->used_token = NULL;
}

const struct ntf_platform ntf_dingtalk_platform = {
    .name = "dingtalk",
    .id = P_DINGTALK,
    .route = dt_route,
    .build = dt_build,
    .classify = dt_classify,
    .needs_token = dt_needs_token,
    .token_get = dt_token_get,
    .token_drop = dt_token_drop,
};
