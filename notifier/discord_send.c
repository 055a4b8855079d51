/* discord_send: results to Discord. While the interaction token lives (reply.expires_at,
 * 15 minutes): the request's first message edits the deferred answer (PATCH
 * {response_url}/messages/@original), later ones are follow-ups (POST {response_url}); after
 * it, or when Discord refuses the webhook: POST {discord.api_base}/channels/{id}/messages
 * with the bot token. Content is at most 2,000 characters; 429 waits for the body's
 * retry_after. */
#include "notifier_int.h"

#define DC_CONTENT_CHARS 2000
#define DC_TOKEN_LIFE_MS (16 * 60 * 1000)

static void dc_channel_route(struct job *j) {
    if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
        ntf_job_dead_letter(j, "permanent", "interaction token expired and no channel_id");
        return;
    }
    if (!j->s->cfg->discord.bot_token.value) {
        ntf_job_dead_letter(j, "permanent",
                            "interaction token expired and no discord.bot_token configured");
        return;
    }
    j->route = R_DC_CHANNEL;
    ntf_job_pace(j);
}

static void on_first(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (ntf_job_gone(j)) return;
    if (err || !reply || reply->type == REDIS_REPLY_ERROR) {
        cq_warn(j->r.request_id, "discord original-message mark unavailable: %s",
                err ? err->msg : "bad reply");
        ntf_job_wait(j, 1000, N_ROUTE);
        return;
    }
    /* SET NX: OK the first time (edit the deferred answer), nil after (a follow-up) */
    j->route = reply->type == REDIS_REPLY_STATUS ? R_DC_ORIGINAL : R_DC_FOLLOWUP;
    ntf_job_pace(j);
}

static void dc_route(struct job *j) {
    struct ntf_service *s = j->s;
    snprintf(j->pace_key, sizeof j->pace_key, "%s",
             j->r.reply.chat_id && *j->r.reply.chat_id ? j->r.reply.chat_id : j->r.request_id);
    if (!j->r.reply.response_url || !*j->r.reply.response_url || j->rurl_spent ||
        ntf_plat_expired(&j->r)) {
        dc_channel_route(j);
        return;
    }
    if (j->route == R_DC_ORIGINAL || j->route == R_DC_FOLLOWUP) { /* decided before a wait */
        ntf_job_pace(j);
        return;
    }
    char key[512], ttl[16];
    snprintf(key, sizeof key, "%snotify:discord_original:%s", s->key_prefix, j->r.request_id);
    snprintf(ttl, sizeof ttl, "%d", DC_TOKEN_LIFE_MS);
    const char *argv[] = {"SET", key, j->owner, "NX", "PX", ttl};
    j->wait = W_OP;
    if (cq_redis_commandargv(s->redis, on_first, j, 6, argv, NULL) != CQ_OK)
        ntf_job_wait(j, 1000, N_ROUTE);
}

static enum cq_rc dc_build(struct job *j, struct ntf_plat_req *out, struct cq_err *err) {
    const struct cq_config *c = j->s->cfg;
    char *md = ntf_plat_markdown(&j->r, 0, DC_CONTENT_CHARS);
    cJSON *o = cJSON_CreateObject();
    cJSON *am = cJSON_CreateObject();
    if (!md || !o || !am) {
        free(md);
        cJSON_Delete(o);
        cJSON_Delete(am);
        return cq_err_set(err, CQ_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(o, "content", md);
    free(md);
    cJSON_AddItemToObject(am, "parse", cJSON_CreateArray()); /* no pings from tool output */
    cJSON_AddItemToObject(o, "allowed_mentions", am);
    switch (j->route) {
    case R_DC_ORIGINAL:
        out->method = "PATCH";
        snprintf(out->url, sizeof out->url, "%s/messages/@original", j->r.reply.response_url);
        break;
    case R_DC_FOLLOWUP:
        snprintf(out->url, sizeof out->url, "%s", j->r.reply.response_url);
        break;
    default: {
        char *id = cq_url_escape(j->r.reply.chat_id, strlen(j->r.reply.chat_id));
        if (!id) {
            cJSON_Delete(o);
            return cq_err_set(err, CQ_ENOMEM, "out of memory");
        }
        snprintf(out->url, sizeof out->url, "%s/channels/%s/messages", c->discord.api_base, id);
        free(id);
        snprintf(out->hdr[0], sizeof out->hdr[0], "Authorization: Bot %s",
                 c->discord.bot_token.value);
    }
    }
    out->body = ntf_plat_json(o, err);
    return out->body ? CQ_OK : err->code;
}

static enum ntf_outcome dc_classify(const struct job *j, const struct ntf_attempt_answer *a,
                                    char *why, size_t why_len) {
    enum ntf_outcome o = ntf_plat_http_class(a, why, why_len);
    /* 401 Invalid Webhook Token (50027) / 404 Unknown Webhook (10015): the interaction
     * token is gone, the bot posts into the channel */
    if (o == NTF_OUT_PERMANENT && j->route != R_DC_CHANNEL &&
        (a->status == 401 || a->status == 404))
        return NTF_OUT_FALLBACK;
    return o;
}

static int64_t dc_retry_hint(const struct cq_http_response *resp) {
    cJSON *b = cJSON_Parse(resp->body);
    const cJSON *ra = b ? cJSON_GetObjectItemCaseSensitive(b, "retry_after") : NULL;
    int64_t ms = -1;
    if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 && ra->valuedouble < 900)
        ms = (int64_t)(ra->valuedouble * 1000.0 + 0.999);
    cJSON_Delete(b);
    if (ms < 0) ms = ntf_retry_after_ms(resp->retry_after, ntf_wall_ms() / 1000, 15 * 60 * 1000);
    return ms;
}

const struct ntf_platform ntf_discord_platform = {
    .name = "discord",
    .id = P_DISCORD,
    .route = dc_route,
    .build = dc_build,
    .classify = dc_classify,
    .retry_hint_ms = dc_retry_hint,
};
