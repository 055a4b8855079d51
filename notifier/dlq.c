/* dlq: dead letters. A result that cannot be delivered (invalid, refused for good, retries
 * exhausted) is produced to chatops.dlq (the one dead-letter schema of common/envelope.h,
 * "service":"notifier") with the class and reason, the platform's last answer, its source
 * offset and the original result's bytes (and a readable copy); on the broker's report its claim is
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
    ntf_metric_dlq(j->dlq_reason_class);
    if (j->claimed && j->s->redis) { /* a replay of this result may try again */
        const char *argv[] = {"EVAL", NTF_RELEASE_LUA, "1", j->once_key, j->owner};
        cq_redis_commandargv(j->s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
    }
    ntf_job_finish(j, "dead_lettered");
}

/* The dead letter of j (common/envelope: one schema for both stages). Caller frees; NULL
 * when it cannot be encoded (logged). */
static char *dlq_record(const struct job *j, const char *cls, const char *at) {
    struct cq_dlq d = {0};
    struct cq_err err = {0};
    d.service = "notifier";
    d.cls = (char *)cls;
    d.reason = (char *)j->reason;
    d.failed_at = (char *)at;
    d.topic = (char *)j->topic;
    d.partition = j->partition;
    d.offset = j->offset;
    if (j->decoded) {
        d.request_id = j->r.request_id;
        d.step = j->r.step;
        d.seq = j->r.seq;
        d.platform = j->r.platform;
    }
    d.attempts = j->attempts;
    if (j->route != R_NONE) d.route = (char *)ntf_route_name[j->route];
    if (j->last_body || j->last_status) {
        d.has_answer = true;
        d.answer_status = (int)j->last_status;
        d.answer_body = j->last_body ? j->last_body : "";
    }
    d.payload = j->payload;
    d.payload_len = j->len;
    char *out = cq_dlq_encode(&d, &err);
    if (!out)
        cq_error(j->decoded ? j->r.request_id : NULL, "cannot encode dead letter: %s", err.msg);
    return out;
}

void ntf_job_dead_letter(struct job *j, const char *cls, const char *reason) {
    struct ntf_service *s = j->s;
    char *out = NULL, at[32];
    struct cq_err err = {0};
    bool sent = false; /* false at out: try again in a second */
    if (reason != j->reason)
        cq_utf8_copy(j->reason, sizeof j->reason, reason, strlen(reason), NULL);
    j->dlq_reason_class = (char *)cls;
    cq_now_rfc3339(at);
    out = dlq_record(j, cls, at);
    if (!out) goto out;
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
        goto out;
    }
    sent = true;
out:
    free(out);
    if (!sent) ntf_job_wait(j, 1000, N_DLQ);
}
