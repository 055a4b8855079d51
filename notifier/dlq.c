/* dlq: dead letters. A result that cannot be delivered (invalid, refused for good, retries
 * exhausted) is produced to chatops.dlq with the reason, the platform's last answer, its
 * source offset and the original result (or its bytes); on the broker's report its claim is
 * released and the offset committed. A refused or failed produce retries on a timer. */
#include "notifier_int.h"

/* ------------------------------------------------------------------ dead letters */

static void on_dlq_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                          int64_t offset) {
    struct job *j = opaque;
    (void)partition;
    (void)offset;
    if (j->abandoned) {
        ntf_job_unlink(j);
        return;
    }
    if (rc != CQ_OK) {
        cq_error(j->decoded ? j->r.request_id : NULL, "dlq produce failed (%s); retrying",
                 errstr ? errstr : cq_rc_str(rc));
        j->settling = false;
        ntf_job_wait(j, 1000, N_DLQ);
        return;
    }
    cq_metric_inc("chatops_notifier_dlq_total", "Results sent to the dead-letter topic",
                  j->dlq_reason_class
                      ? (strcmp(j->dlq_reason_class, "invalid") == 0     ? "class=\"invalid\""
                         : strcmp(j->dlq_reason_class, "exhausted") == 0 ? "class=\"exhausted\""
                                                                         : "class=\"permanent\"")
                      : "class=\"permanent\"");
    if (j->claimed && j->s->redis) { /* a replay of this result may try again */
        const char *argv[] = {"EVAL", NTF_RELEASE_LUA, "1", j->once_key, j->owner};
        cq_redis_commandargv(j->s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
    }
    ntf_job_finish(j, "dead_lettered");
}

void ntf_job_dead_letter(struct job *j, const char *cls, const char *reason) {
    struct cq_notifier *s = j->s;
    char *out = NULL, at[32];
    cJSON *d = cJSON_CreateObject(), *ans = NULL, *src = NULL;
    struct cq_err err = {0};
    if (reason != j->reason)
        cq_utf8_copy(j->reason, sizeof j->reason, reason, strlen(reason), NULL);
    j->dlq_reason_class = (char *)cls;
    cq_now_rfc3339(at);
    if (!d) goto retry;
    cJSON_AddNumberToObject(d, "v", 1);
    if (j->decoded) {
        cJSON_AddStringToObject(d, "request_id", j->r.request_id);
        cJSON_AddStringToObject(d, "step", j->r.step);
        cJSON_AddNumberToObject(d, "seq", j->r.seq);
        cJSON_AddStringToObject(d, "platform", j->r.platform);
    }
    cJSON_AddStringToObject(d, "reason", j->reason);
    cJSON_AddNumberToObject(d, "attempts", j->attempts);
    if (j->route != R_NONE) cJSON_AddStringToObject(d, "route", ntf_route_name[j->route]);
    if (j->last_body || j->last_status) {
        ans = cJSON_AddObjectToObject(d, "answer");
        if (ans) {
            cJSON_AddNumberToObject(ans, "status", (double)j->last_status);
            cJSON_AddStringToObject(ans, "body", j->last_body ? j->last_body : "");
        }
    }
    cJSON_AddStringToObject(d, "failed_at", at);
    if ((src = cJSON_AddObjectToObject(d, "source"))) {
        cJSON_AddStringToObject(src, "topic", j->topic);
        cJSON_AddNumberToObject(src, "partition", j->partition);
        cJSON_AddNumberToObject(src, "offset", (double)j->offset);
    }
    cJSON *orig = cJSON_ParseWithLength(j->payload, j->len);
    if (orig)
        cJSON_AddItemToObject(d, "result", orig);
    else {
        char *raw = cq_utf8_clean(j->payload, j->len, 0); /* any bytes: valid JSON text */
        if (raw) {
            cJSON_AddStringToObject(d, "raw", raw);
            free(raw);
        }
    }
    out = cJSON_PrintUnformatted(d);
    if (!out) goto retry;
    const char *key = j->decoded ? j->r.request_id : "";
    {
        const char *kv[] = {"reason", j->reason, "class", cls, NULL};
        cq_log_kv(CQ_LOG_WARN, j->decoded ? j->r.request_id : NULL, "dead-lettering result", kv);
    }
    j->wait = W_OP;
    j->settling = true;
    if (cq_producer_send(s->prod, s->cfg->kafka.topic_dlq, key, strlen(key), out, strlen(out), NULL,
                         on_dlq_report, j, &err) != CQ_OK) {
        cq_error(j->decoded ? j->r.request_id : NULL, "dlq produce refused: %s", err.msg);
        j->settling = false;
        goto retry;
    }
    cJSON_Delete(d);
    free(out);
    return;
retry:
    cJSON_Delete(d);
    free(out);
    ntf_job_wait(j, 1000, N_DLQ);
}
