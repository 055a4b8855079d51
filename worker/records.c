/* records: what the worker writes down about a request: the result envelope, the
 * audit records, the dead-letter record, and the worker's per-outcome metrics. Pure
 * encoders (no I/O but metrics and logs), declared in service_int.h so other worker
 * files (the pipeline tracker included) can share them. */
#include "service.h"
#include "service_int.h"
#include "strutil.h"

#include "admin_http.h"
#include "args.h"
#include "builtins.h"
#include "crypto.h"
#include "envelope.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "redis.h"
#include "template.h"
#include "utf8.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void w_metric_decision(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    cq_metric_inc("chatops_worker_decisions_total", "Permission decisions by outcome", labels);
}

void w_metric_action(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    cq_metric_inc("chatops_worker_actions_total", "Direct actions by outcome", labels);
}

void w_metric_result(const char *status) {
    char labels[64];
    snprintf(labels, sizeof(labels), "status=\"%s\"", status);
    cq_metric_inc("chatops_worker_results_total", "Final results produced by status", labels);
}

void w_metric_inflight(struct cq_worker *w) {
    cq_gauge_set(
        cq_gauge_get("chatops_worker_inflight", "Requests consumed and not yet done", NULL),
        (int64_t)w->n_jobs);
}

/* The audit record: who, where, what, which rule, what happened. Caller frees. */
char *w_audit_json(const struct job *j, const char *kind, const char *decision,
                   const char *result_status, const char *detail) {
    const struct cq_worker *w = j->w;
    char now[32];
    cJSON *a = cJSON_CreateObject(), *who, *where, *args;
    char *out = NULL;
    if (!a) return NULL;
    cq_now_rfc3339(now);
    cJSON_AddNumberToObject(a, "v", 1);
    cJSON_AddStringToObject(a, "kind", kind);
    cJSON_AddStringToObject(a, "time", now);
    cJSON_AddStringToObject(a, "request_id", j->req.id ? j->req.id : "");
    cJSON_AddStringToObject(a, "dedupe_key", j->req.dedupe_key ? j->req.dedupe_key : "");
    who = cJSON_AddObjectToObject(a, "who");
    if (who) {
        cJSON_AddStringToObject(who, "platform", j->req.platform ? j->req.platform : "");
        cJSON_AddStringToObject(who, "user_id", j->req.user_id ? j->req.user_id : "");
        if (j->req.user_name) cJSON_AddStringToObject(who, "user_name", j->req.user_name);
        if (j->person) {
            cJSON_AddStringToObject(who, "person", j->person->name ? j->person->name : "");
            cJSON_AddStringToObject(who, "gitlab_login",
                                    j->person->gitlab_login ? j->person->gitlab_login : "");
        } else {
            cJSON_AddNullToObject(who, "person");
            cJSON_AddNullToObject(who, "gitlab_login");
        }
    }
    where = cJSON_AddObjectToObject(a, "where");
    if (where) {
        cJSON_AddStringToObject(where, "channel_id", j->req.channel_id ? j->req.channel_id : "");
        const char *cn = j->channel && j->channel->name ? j->channel->name : j->req.channel_name;
        if (cn) cJSON_AddStringToObject(where, "channel_name", cn);
        cJSON_AddBoolToObject(where, "configured", j->channel != NULL);
        if (j->req.tenant) cJSON_AddStringToObject(where, "tenant", j->req.tenant);
    }
    cJSON_AddStringToObject(a, "command", w_cmd_name(j));
    cJSON_AddStringToObject(a, "text", j->req.text ? j->req.text : "");
    args = cJSON_AddObjectToObject(a, "args");
    for (size_t i = 0; args && j->args.cmd && i < j->args.n; i++)
        if (j->args.values[i])
            cJSON_AddStringToObject(args, j->args.cmd->args[i].name, j->args.values[i]);
    if (decision) cJSON_AddStringToObject(a, "decision", decision);
    if (j->dec.rule)
        cJSON_AddStringToObject(a, "rule", j->dec.rule);
    else
        cJSON_AddNullToObject(a, "rule");
    if (result_status) cJSON_AddStringToObject(a, "result", result_status);
    if (detail) {
        char cut[600];
        cq_utf8_copy(cut, sizeof(cut), detail, strlen(detail), NULL);
        cJSON_AddStringToObject(a, "detail", cut);
    }
    cJSON_AddStringToObject(a, "worker", w->owner);
    out = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return out;
}

/* "command text" of a request in label (size bytes), cut on a character boundary. */
void w_command_label(const struct cq_request *q, char *label, size_t size) {
    const char *cmd = q->command ? q->command : "";
    size_t n = cq_utf8_copy(label, size, cmd, strlen(cmd), NULL);
    if (q->text && q->text[0] && n + 2 < size) {
        label[n++] = ' ';
        cq_utf8_copy(label + n, size - n, q->text, strlen(q->text), NULL);
    }
}

/* Encodes the final result of j (status, text). Caller frees. A result that cannot be
 * encoded (CQ_EENCODE) becomes a short "failed" result naming the request, so the user is
 * still answered and the offset still moves; NULL only when out of memory. */
char *w_result_json(const struct job *j, const char *status, const char *text) {
    struct cq_result r = {0};
    struct cq_err err = {0};
    char now[32], label[256];
    cq_now_rfc3339(now);
    w_command_label(&j->req, label, sizeof(label));
    r.request_id = j->req.id;
    r.step = (char *)(j->step ? j->step : "final");
    r.status = (char *)status;
    r.pipeline.id = j->pl_id;
    r.pipeline.web_url = j->pl_url;
    r.pipeline.status = j->pl_status;
    r.platform = j->req.platform;
    r.reply = j->req.reply;
    r.text = (char *)text;
    r.outcome_unknown = j->outcome_unknown;
    r.command = label;
    r.user_name = j->req.user_name;
    r.response_type = j->kind == JK_ACTION && j->cmd && j->cmd->response_type
                          ? j->cmd->response_type
                          : (j->kind == JK_ACTION ? "in_channel" : "ephemeral");
    r.produced_at = now;
    char *s = cq_result_encode(&r, &err);
    if (!s && err.code != CQ_ENOMEM) {
        char why[sizeof(err.msg) + 160];
        cq_error(j->req.id, "cannot encode result: %s; answering with a short failed result",
                 err.msg);
        cq_metric_inc("chatops_worker_encode_failures_total",
                      "Results that could not be encoded and were answered as failed", NULL);
        snprintf(why, sizeof(why), "could not encode the result: %s (req %s)", err.msg,
                 j->req.id ? j->req.id : "?");
        r.status = "failed";
        r.text = why;
        r.command = NULL;
        r.pipeline.web_url = r.pipeline.status = NULL; /* from GitLab: may be the cause */
        cq_err_clear(&err);
        s = cq_result_encode(&r, &err);
    }
    if (!s) cq_error(j->req.id, "cannot encode result: %s", err.msg);
    return s;
}

/* The dead-letter record of a message that is not a request envelope: where it was
 * read, why it was refused, and its bytes (base64). Caller frees; NULL when out of
 * memory. */
char *w_dlq_json(const struct cq_message *m, const char *reason) {
    char now[32];
    cq_now_rfc3339(now);
    cJSON *d = cJSON_CreateObject();
    char *b64 = cq_base64_encode(m->payload ? m->payload : "", m->len);
    char *s = NULL;
    if (d && b64) {
        cJSON_AddNumberToObject(d, "v", 1);
        cJSON_AddStringToObject(d, "service", "worker");
        cJSON_AddStringToObject(d, "reason", reason);
        cJSON_AddStringToObject(d, "topic", m->topic);
        cJSON_AddNumberToObject(d, "partition", m->partition);
        cJSON_AddNumberToObject(d, "offset", (double)m->offset);
        cJSON_AddStringToObject(d, "payload_b64", b64);
        cJSON_AddStringToObject(d, "time", now);
        s = cJSON_PrintUnformatted(d);
    }
    cJSON_Delete(d);
    free(b64);
    return s;
}
