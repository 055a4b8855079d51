/* mattermost_send: results to Mattermost. The slash command's response_url while it takes
 * posts (Mattermost: 30 minutes, 5 uses; a refusal falls back), else POST /api/v4/posts
 * with the bot token into the channel (root_id: the thread). Messages cap at 16,383
 * characters. */
#include "notifier_int.h"

#define MM_MESSAGE_CHARS 16383

static void mm_route(struct job *j) {
    const struct cq_config *c = j->s->cfg;
    snprintf(j->pace_key, sizeof j->pace_key, "%s",
             j->r.reply.chat_id && *j->r.reply.chat_id ? j->r.reply.chat_id : j->r.request_id);
    if (j->r.reply.response_url && *j->r.reply.response_url && !j->rurl_spent) {
        j->route = R_MM_RURL;
    } else if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
        ntf_job_dead_letter(j, "permanent", "no response_url and no channel to post to");
        return;
    } else if (!c->mattermost.bot_token.value || !c->mattermost.api_base ||
               !*c->mattermost.api_base) {
        ntf_job_dead_letter(j, "permanent",
                            j->rurl_spent ? "response_url refused and no mattermost.bot_token/"
                                            "api_base for /api/v4/posts"
                                          : "no mattermost.bot_token/api_base for /api/v4/posts");
        return;
    } else {
        j->route = R_MM_POST;
    }
    ntf_job_pace(j);
}

static enum cq_rc mm_build(struct job *j, struct ntf_plat_req *out, struct cq_err *err) {
    const struct cq_config *c = j->s->cfg;
    char *md = ntf_plat_markdown(&j->r, 0, MM_MESSAGE_CHARS);
    cJSON *o = cJSON_CreateObject();
    if (!md || !o) {
        free(md);
        cJSON_Delete(o);
        return cq_err_set(err, CQ_ENOMEM, "out of memory");
    }
    if (j->route == R_MM_RURL) {
        bool eph = j->r.response_type && strcmp(j->r.response_type, "ephemeral") == 0;
        cJSON_AddStringToObject(o, "response_type", eph ? "ephemeral" : "in_channel");
        cJSON_AddStringToObject(o, "text", md);
        snprintf(out->url, sizeof out->url, "%s", j->r.reply.response_url);
    } else {
        cJSON_AddStringToObject(o, "channel_id", j->r.reply.chat_id);
        cJSON_AddStringToObject(o, "message", md);
        if (j->r.reply.thread_ts && *j->r.reply.thread_ts)
            cJSON_AddStringToObject(o, "root_id", j->r.reply.thread_ts);
        snprintf(out->url, sizeof out->url, "%s/api/v4/posts", c->mattermost.api_base);
        snprintf(out->hdr[0], sizeof out->hdr[0], "Authorization: Bearer %s",
                 c->mattermost.bot_token.value);
    }
    free(md);
    out->body = ntf_plat_json(o, err);
    return out->body ? CQ_OK : err->code;
}

static enum ntf_outcome mm_classify(const struct job *j, const struct ntf_attempt_answer *a,
                                    char *why, size_t why_len) {
    enum ntf_outcome o = ntf_plat_http_class(a, why, why_len);
    /* the response_url expired or is used up: post with the bot instead */
    if (o == NTF_OUT_PERMANENT && j->route == R_MM_RURL) return NTF_OUT_FALLBACK;
    return o;
}

const struct ntf_platform ntf_mattermost_platform = {
    .name = "mattermost",
    .id = P_MATTERMOST,
    .route = mm_route,
    .build = mm_build,
    .classify = mm_classify,
};
