/* webex_send: results to Webex. POST {webex.api_base}/messages {roomId, parentId, markdown}
 * with the bot token: parentId is the thread (the message's own id when it started none);
 * a message carries at most 7,439 bytes; 429 waits for Retry-After. */
#include "notifier_int.h"

#define WX_MESSAGE_BYTES 7439

static void wx_route(struct job *j) {
    if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
        ntf_job_dead_letter(j, "permanent", "no roomId to post to");
        return;
    }
    if (!j->s->cfg->webex.bot_token.value) {
        ntf_job_dead_letter(j, "permanent", "no webex.bot_token configured");
        return;
    }
    j->route = R_WX_MESSAGE;
    snprintf(j->pace_key, sizeof j->pace_key, "%s", j->r.reply.chat_id);
    ntf_job_pace(j);
}

static enum cq_rc wx_build(struct job *j, struct ntf_plat_req *out, struct cq_err *err) {
    const struct cq_config *c = j->s->cfg;
    char *md = ntf_plat_markdown(&j->r, WX_MESSAGE_BYTES, 0);
    cJSON *o = cJSON_CreateObject();
    if (!md || !o) {
        free(md);
        cJSON_Delete(o);
        return cq_err_set(err, CQ_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(o, "roomId", j->r.reply.chat_id);
    if (j->r.reply.thread_ts && *j->r.reply.thread_ts)
        cJSON_AddStringToObject(o, "parentId", j->r.reply.thread_ts);
    cJSON_AddStringToObject(o, "markdown", md);
    free(md);
    snprintf(out->url, sizeof out->url, "%s/messages", c->webex.api_base);
    snprintf(out->hdr[0], sizeof out->hdr[0], "Authorization: Bearer %s", c->webex.bot_token.value);
    out->body = ntf_plat_json(o, err);
    return out->body ? CQ_OK : err->code;
}

static enum ntf_outcome wx_classify(const struct job *j, const struct ntf_attempt_answer *a,
                                    char *why, size_t why_len) {
    (void)j;
    return ntf_plat_http_class(a, why, why_len);
}

const struct ntf_platform ntf_webex_platform = {
    .name = "webex",
    .id = P_WEBEX,
    .route = wx_route,
    .build = wx_build,
    .classify = wx_classify,
};
