/* route: a result to its platform sender. Slack: response_url while it has uses left
 * (counted across copies in Redis), else chat.postMessage, or chat.update of the request's
 * earlier progress message; Feishu: reply to the message, else send to the chat. Then the
 * platform request is built and sent on curl multi (the answer goes to service.c). */
#include "buttons.h"
#include "notifier_int.h"

#define RURL_MAX_USES 5
#define RURL_TTL_MS (30 * 60 * 1000)

/* uses(key, ttl_ms): counts response_url uses across copies; the window starts at use 1 */
static const char USES_LUA[] = "local n = redis.call('INCR', KEYS[1])\n"
                               "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
                               "return n\n";

/* ------------------------------------------------------------------ sending */

static void job_send_http_m(struct job *j, const char *method, const char *url,
                            const char *const *headers, char *body) {
    struct ntf_service *s = j->s;
    struct cq_err err = {0};
    struct cq_http_request req = {.method = method,
                                  .url = url,
                                  .headers = headers,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .timeout_ms = s->cfg->notifier.http_timeout_ms,
                                  .max_response = 64 * 1024};
    j->attempts++;
    j->wait = W_OP;
    if (cq_httpc_request(s->http, &req, ntf_on_answer, j, &err) != CQ_OK) {
        free(body);
        j->attempts--;
        ntf_job_dead_letter(j, "permanent", err.msg);
        return;
    }
    s->sending++;
    free(body);
}

static void job_send_http(struct job *j, const char *url, const char *const *headers, char *body) {
    job_send_http_m(j, j->route == R_FS_PATCH ? "PATCH" : "POST", url, headers, body);
}

/* issue 18's platforms: the row builds the request (platforms.c, <platform>_send.c) */
static void job_send_plat(struct job *j) {
    struct cq_err err = {0};
    struct ntf_plat_req *pr = calloc(1, sizeof *pr);
    if (!pr) {
        ntf_job_wait(j, 1000, N_SEND);
        return;
    }
    if (j->pt->build(j, pr, &err) != CQ_OK) {
        free(pr->body);
        free(pr);
        if (err.code == CQ_ENOMEM)
            ntf_job_wait(j, 1000, N_SEND);
        else
            ntf_job_dead_letter(j, "permanent", err.msg);
        return;
    }
    const char *h[5];
    size_t n = 0;
    h[n++] = "Content-Type: application/json; charset=utf-8";
    for (size_t i = 0; i < 3; i++)
        if (pr->hdr[i][0]) h[n++] = pr->hdr[i];
    h[n] = NULL;
    job_send_http_m(j, pr->method ? pr->method : "POST", pr->url, h, pr->body);
    free(pr);
}

void ntf_job_send(struct job *j) {
    struct ntf_service *s = j->s;
    struct cq_err err = {0};
    char *body = NULL, url[CQ_ENV_MAX_URL + CQ_ENV_MAX_ID + 128], auth[1024];
    if (j->claim_lost) { /* another copy may own it now: ask again (busy/delivered/own) */
        j->claim_lost = false;
        j->claimed = false;
        cq_warn(j->r.request_id, "once-claim lost while waiting; claiming again before sending");
        ntf_job_claim(j);
        return;
    }
    if (j->plat == P_FEISHU && !j->used_token) {
        ntf_token_get(j);
        return;
    }
    if (j->pt && j->pt->needs_token && j->pt->needs_token(j) && !j->used_token) {
        j->pt->token_get(j);
        return;
    }
    if (s->sending >=
        s->cfg->notifier.max_sends) { /* wait for a slot; the timeout then measures the platform */
        if (s->stopping) {
            ntf_job_abandon(j);
            return;
        }
        j->wait = W_SLOT;
        j->slot_next = NULL;
        if (s->slot_tail)
            s->slot_tail->slot_next = j;
        else
            s->slot_head = j;
        s->slot_tail = j;
        return;
    }
    if (j->pt && j->pt->build) {
        job_send_plat(j);
        return;
    }
    switch (j->route) {
    case R_RURL: {
        struct ntf_slack_msg_opts o = {.target = NTF_SLACK_RESPONSE_URL,
                                       .replace_original = strcmp(j->r.step, "progress") == 0};
        body = ntf_slack_format(&j->r, &o, NULL, &err);
        if (!body) break;
        const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
        job_send_http(j, j->r.reply.response_url, h, body);
        return;
    }
    case R_POST:
    case R_UPDATE: {
        struct ntf_slack_msg_opts o = {.target = j->route == R_POST ? NTF_SLACK_POST_MESSAGE
                                                                    : NTF_SLACK_UPDATE,
                                       .channel = j->r.reply.chat_id,
                                       .ts = j->update_ts,
                                       .thread_ts = j->r.reply.thread_ts};
        body = ntf_slack_format(&j->r, &o, NULL, &err);
        if (!body) break;
        snprintf(url, sizeof url, "%s/%s", s->cfg->slack.api_base,
                 j->route == R_POST ? "chat.postMessage" : "chat.update");
        snprintf(auth, sizeof auth, "Authorization: Bearer %s",
                 s->cfg->slack.bot_token.value ? s->cfg->slack.bot_token.value : "");
        const char *h[] = {"Content-Type: application/json; charset=utf-8", auth, NULL};
        job_send_http(j, url, h, body);
        return;
    }
    case R_FS_PATCH: { /* a GitLab event's card, updated in place (feishu_update.c) */
        body = ntf_feishu_patch_body(&j->r, &err);
        if (!body) break;
        char *id = cq_url_escape(j->update_ts, strlen(j->update_ts));
        if (!id) {
            cq_err_set(&err, CQ_ENOMEM, "out of memory");
            break;
        }
        snprintf(url, sizeof url, "%s/im/v1/messages/%s", s->cfg->feishu.api_base, id);
        free(id);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->used_token);
        const char *h[] = {"Content-Type: application/json; charset=utf-8", auth, NULL};
        job_send_http(j, url, h, body);
        return;
    }
    case R_FS_REPLY:
    case R_FS_SEND: {
        body = ntf_feishu_body(&j->r, j->route == R_FS_REPLY, 0, &err);
        if (!body) break;
        if (j->route == R_FS_REPLY) {
            char *id = cq_url_escape(j->r.reply.message_id, strlen(j->r.reply.message_id));
            if (!id) {
                cq_err_set(&err, CQ_ENOMEM, "out of memory");
                break;
            }
            snprintf(url, sizeof url, "%s/im/v1/messages/%s/reply", s->cfg->feishu.api_base, id);
            free(id);
        } else {
            snprintf(url, sizeof url, "%s/im/v1/messages?receive_id_type=chat_id",
                     s->cfg->feishu.api_base);
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->used_token);
        const char *h[] = {"Content-Type: application/json; charset=utf-8", auth, NULL};
        job_send_http(j, url, h, body);
        return;
    }
    default:
        cq_err_set(&err, CQ_EINVAL, "no route");
        break;
    }
    free(body);
    if (err.code == CQ_ENOMEM)
        ntf_job_wait(j, 1000, N_SEND);
    else
        ntf_job_dead_letter(j, "permanent", err.msg);
}

/* ------------------------------------------------------------------ routes */

static void on_slack_ts(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (ntf_job_gone(j)) return;
    if (!err && reply && reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        j->update_ts = strdup(reply->str);
        if (j->update_ts) j->route = R_UPDATE;
    }
    ntf_job_pace(j);
}

static void slack_api_route(struct job *j) {
    struct ntf_service *s = j->s;
    if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
        ntf_job_dead_letter(j, "permanent",
                            j->rurl_spent ? "response_url spent and no channel for chat.postMessage"
                                          : "no response_url and no channel to post to");
        return;
    }
    if (!s->cfg->slack.bot_token.value) {
        ntf_job_dead_letter(j, "permanent", "no slack.bot_token configured for chat.postMessage");
        return;
    }
    j->route = R_POST;
    snprintf(j->pace_key, sizeof j->pace_key, "%s", j->r.reply.chat_id);
    if (strcmp(j->r.step, "progress") == 0 && !j->update_failed) {
        char key[512];
        snprintf(key, sizeof key, "%snotify:slack_ts:%s", s->key_prefix, j->r.request_id);
        const char *argv[] = {"GET", key};
        j->wait = W_OP;
        if (cq_redis_commandargv(s->redis, on_slack_ts, j, 2, argv, NULL) == CQ_OK) return;
    }
    ntf_job_pace(j);
}

static void on_uses(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (ntf_job_gone(j)) return;
    if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
        cq_warn(j->r.request_id, "response_url use count unavailable: %s",
                err ? err->msg : "bad reply");
        ntf_job_wait(j,
                     ntf_backoff_ms(2, j->s->cfg->notifier.backoff_base_ms,
                                    j->s->cfg->notifier.backoff_max_ms, ntf_rnd64()),
                     N_ROUTE);
        return;
    }
    if (reply->integer <= RURL_MAX_USES) {
        j->route = R_RURL;
        snprintf(j->pace_key, sizeof j->pace_key, "%s",
                 j->r.reply.chat_id ? j->r.reply.chat_id : j->r.request_id);
        ntf_job_pace(j);
        return;
    }
    cq_info(j->r.request_id, "response_url used %lld times; using chat.postMessage",
            reply->integer);
    j->rurl_spent = true;
    slack_api_route(j);
}

void ntf_job_route(struct job *j) {
    struct ntf_service *s = j->s;
    if (j->pt && j->pt->route) { /* issue 18's platforms: the table's route choice */
        j->pt->route(j);
        return;
    }
    if (j->plat == P_SLACK) {
        if (j->r.reply.response_url && *j->r.reply.response_url && !j->rurl_spent) {
            char key[512], ttl[16];
            snprintf(key, sizeof key, "%snotify:rurl:%s", s->key_prefix, j->r.request_id);
            snprintf(ttl, sizeof ttl, "%d", RURL_TTL_MS);
            const char *argv[] = {"EVAL", USES_LUA, "1", key, ttl};
            j->wait = W_OP;
            if (cq_redis_commandargv(s->redis, on_uses, j, 5, argv, NULL) != CQ_OK)
                ntf_job_wait(j, 1000, N_ROUTE);
            return;
        }
        slack_api_route(j);
        return;
    }
    if (j->r.reply.message_id && *j->r.reply.message_id)
        j->route = R_FS_REPLY;
    else if (j->r.reply.chat_id && *j->r.reply.chat_id)
        j->route = R_FS_SEND;
    else {
        ntf_job_dead_letter(j, "permanent", "no message_id or chat_id to reply to");
        return;
    }
    snprintf(j->pace_key, sizeof j->pace_key, "%s",
             j->r.reply.chat_id && *j->r.reply.chat_id ? j->r.reply.chat_id
                                                       : j->r.reply.message_id);
    if (!s->cfg->feishu.app_id || !s->cfg->feishu.app_secret.value) {
        ntf_job_dead_letter(j, "permanent", "feishu.app_id/app_secret not configured");
        return;
    }
    if (!j->update_failed && ntf_buttons_resolved(j)) {
        ntf_feishu_update_route(j); /* the card with the buttons: PATCH it (buttons_route.c) */
        return;
    }
    if (j->route == R_FS_SEND && !j->update_failed && ntf_feishu_updatable(j)) {
        ntf_feishu_update_route(j); /* an earlier card of this event: PATCH it */
        return;
    }
    ntf_job_pace(j);
}
