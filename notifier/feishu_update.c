/* feishu_update: quiet updates on Feishu (issue 15). A GitLab event's later states come as
 * "progress" results of one request id (worker/events.c); the first is sent to the chat as an
 * interactive card and its message_id kept in Redis (notify:feishu_msg:<request_id>, 1 day);
 * the next ones PATCH /open-apis/im/v1/messages/:message_id with the new card (Feishu updates
 * only cards in place). A PATCH refused for good falls back to a new message (service.c). */
#include "notifier_int.h"

#define KEEP_S 86400

/* An event result that may be updated in place: a progress step rendered as a card. */
bool ntf_feishu_updatable(const struct job *j) {
    const struct cq_result *r = &j->r;
    return j->plat == P_FEISHU && r->event_kind && r->step && strcmp(r->step, "progress") == 0 &&
           ((r->event_url && *r->event_url) || (r->pipeline.web_url && *r->pipeline.web_url));
}

static void msg_key(const struct job *j, char *key, size_t n) {
    snprintf(key, n, "%snotify:feishu_msg:%s", j->s->key_prefix, j->r.request_id);
}

static void on_msg_id(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (ntf_job_gone(j)) return;
    if (!err && reply && reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        free(j->update_ts);
        j->update_ts = strdup(reply->str); /* the card's message_id */
        if (j->update_ts) j->route = R_FS_PATCH;
    }
    ntf_job_pace(j);
}

void ntf_feishu_update_route(struct job *j) {
    char key[512];
    msg_key(j, key, sizeof key);
    const char *argv[] = {"GET", key};
    j->wait = W_OP;
    if (cq_redis_commandargv(j->s->redis, on_msg_id, j, 2, argv, NULL) != CQ_OK) ntf_job_pace(j);
}

void ntf_feishu_remember(struct job *j) {
    cJSON *a = cJSON_Parse(j->last_body ? j->last_body : "");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(a, "data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "message_id");
    if (cJSON_IsString(id) && id->valuestring[0]) {
        char key[512], ttl[16];
        msg_key(j, key, sizeof key);
        snprintf(ttl, sizeof ttl, "%d", KEEP_S);
        const char *argv[] = {"SET", key, id->valuestring, "EX", ttl};
        cq_redis_commandargv(j->s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
    }
    cJSON_Delete(a);
}

char *ntf_feishu_patch_body(const struct cq_result *r, struct cq_err *err) {
    const char *type = NULL;
    char *content = ntf_feishu_content(r, 0, &type, NULL, err), *out = NULL;
    cJSON *b = NULL;
    if (!content) return NULL;
    if (!type || strcmp(type, "interactive") != 0) {
        cq_err_set(err, CQ_EINVAL, "feishu: only a card can be updated in place");
        goto out;
    }
    b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "content", content) || !(out = cJSON_PrintUnformatted(b)))
        cq_err_set(err, CQ_ENOMEM, "feishu format: out of memory");
out:
    cJSON_Delete(b);
    free(content);
    return out;
}
