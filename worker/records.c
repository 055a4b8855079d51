/* records: what the worker writes down about a request: the result envelope, the
 * audit records, the dead-letter record (all shaped by common/envelope: one schema, one
 * encoder each), and the worker's per-outcome metrics. Pure encoders (no I/O but metrics
 * and logs): the job-bound ones declared in service_int.h, the ones the pipeline tracker
 * shares in records.h. */
#include "records.h"
#include "service.h"
#include "service_int.h"
#include "strutil.h"

#include "admin_http.h"
#include "args.h"
#include "builtins.h"
#include "crypto.h"
#include "envelope.h"
#include "httpc.h"
#include "identity.h"
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

void w_metric_inflight(struct w_worker *w) {
    cq_gauge_set(
        cq_gauge_get("chatops_worker_inflight", "Requests consumed and not yet done", NULL),
        (int64_t)w->n_jobs);
}

/* Encodes an audit record. One that cannot be encoded (a value over its bound or not
 * UTF-8) is written without its free-form fields and with the reason in detail, so the
 * request still goes on (a NULL here would leave it for redelivery); NULL only when out of
 * memory. Caller frees. */
char *w_audit_encode(const struct cq_audit *a) {
    struct cq_err err = {0};
    char *s = cq_audit_encode(a, &err);
    if (!s && err.code != CQ_ENOMEM) {
        char why[sizeof(err.msg) + 64];
        struct cq_audit m = {.kind = a->kind,
                             .time = a->time,
                             .request_id = a->request_id,
                             .decision = a->decision,
                             .result = a->result,
                             .pipeline_id = a->pipeline_id,
                             .worker = a->worker};
        cq_error(a->request_id, "cannot encode audit record: %s; writing a short one", err.msg);
        snprintf(why, sizeof(why), "could not encode the audit record: %s", err.msg);
        m.detail = why;
        cq_err_clear(&err);
        s = cq_audit_encode(&m, &err);
    }
    if (!s) cq_error(a->request_id, "cannot encode audit record: %s", err.msg);
    return s;
}

/* The audit record of a request step: who, where, what, which rule, what happened.
 * Caller frees. */
char *w_audit_json(const struct job *j, const char *kind, const char *decision,
                   const char *result_status, const char *detail) {
    const struct w_worker *w = j->w;
    char now[32], cut[600];
    struct cq_audit_arg args[32];
    struct cq_audit a = {0};
    cq_now_rfc3339(now);
    a.kind = (char *)kind;
    a.time = now;
    a.request_id = j->req.id ? j->req.id : "";
    a.dedupe_key = j->req.dedupe_key ? j->req.dedupe_key : "";
    a.platform = j->req.platform ? j->req.platform : "";
    a.user_id = j->req.user_id ? j->req.user_id : "";
    a.user_name = j->req.user_name;
    if (j->person) {
        a.person = j->person->name ? j->person->name : "";
        a.gitlab_login = j->person->gitlab_login ? j->person->gitlab_login : "";
    }
    a.identity_source = (char *)w_identity_source(j); /* issue 17 */
    a.roles_source = (char *)w_identity_roles_source(j);
    a.where_channel_id = j->req.channel_id ? j->req.channel_id : "";
    a.where_channel_name = j->channel && j->channel->name ? j->channel->name : j->req.channel_name;
    a.where_configured = j->channel != NULL;
    a.where_tenant = j->req.tenant;
    a.command = (char *)w_cmd_name(j);
    a.text = j->req.text ? j->req.text : "";
    for (size_t i = 0; j->args.cmd && i < j->args.n && a.n_args < sizeof args / sizeof *args; i++)
        if (j->args.values[i])
            args[a.n_args++] = (struct cq_audit_arg){j->args.cmd->args[i].name, j->args.values[i]};
    a.args = args;
    a.decision = (char *)decision;
    a.rule = (char *)j->dec.rule;
    a.result = (char *)result_status;
    if (detail) {
        cq_utf8_copy(cut, sizeof(cut), detail, strlen(detail), NULL);
        a.detail = cut;
    }
    a.worker = (char *)w->owner;
    a.approvers = j->approvers;
    return w_audit_encode(&a);
}

/* The outcome audit record of a tracked pipeline (its trigger was audited by the worker
 * that triggered it): the request q, its command line, the final result's status and text,
 * the pipeline. Caller frees. */
char *w_audit_outcome_json(const struct cq_request *q, const char *command, const char *status,
                           const char *text, long long pipeline_id, const char *pipeline_status,
                           const char *owner) {
    char now[32], cut[600];
    struct cq_audit a = {0};
    cq_now_rfc3339(now);
    a.kind = "outcome";
    a.time = now;
    a.request_id = q->id;
    a.dedupe_key = q->dedupe_key ? q->dedupe_key : "";
    a.platform = q->platform ? q->platform : "";
    a.user_id = q->user_id ? q->user_id : "";
    a.user_name = q->user_name;
    a.command = (char *)(command ? command : "");
    a.decision = "allowed";
    a.result = (char *)(status ? status : "");
    if (text) {
        cq_utf8_copy(cut, sizeof(cut), text, strlen(text), NULL);
        a.detail = cut;
    }
    a.pipeline_id = pipeline_id;
    a.pipeline_status = (char *)(pipeline_status ? pipeline_status : "");
    a.worker = (char *)owner;
    return w_audit_encode(&a);
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

/* Encodes r. A result that cannot be encoded (CQ_EENCODE) becomes a short result naming
 * the request ("failed" when it is a final or always_failed), without the command line and the
 * pipeline's strings (from GitLab: maybe the cause), so the user is still answered and the
 * offset still moves; NULL only when out of memory. r is modified in that case. */
char *w_result_encode(struct cq_result *r, bool always_failed) {
    struct cq_err err = {0};
    char *s = cq_result_encode(r, &err);
    if (!s && err.code != CQ_ENOMEM) {
        char why[sizeof(err.msg) + 160];
        cq_error(r->request_id, "cannot encode result: %s; answering with a short failed result",
                 err.msg);
        cq_metric_inc("chatops_worker_encode_failures_total",
                      "Results that could not be encoded and were answered as failed", NULL);
        snprintf(why, sizeof(why), "could not encode the result: %s (req %s)", err.msg,
                 r->request_id ? r->request_id : "?");
        if (always_failed || (r->step && strcmp(r->step, "final") == 0)) r->status = "failed";
        r->text = why;
        r->command = NULL;
        r->pipeline.web_url = r->pipeline.status = NULL;
        cq_err_clear(&err);
        s = cq_result_encode(r, &err);
    }
    if (!s) cq_error(r->request_id, "cannot encode result: %s", err.msg);
    return s;
}

/* Encodes the final result of j (status, text). Caller frees; see w_result_encode. */
char *w_result_json(const struct job *j, const char *status, const char *text) {
    struct cq_result r = {0};
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
    r.seq = j->seq;
    r.buttons_kind = (char *)j->buttons; /* issue 16: Approve / Deny, Confirm / Cancel */
    r.buttons_request_id = j->buttons ? j->req.id : NULL;
    if (j->buttons && strcmp(j->buttons, "confirm") == 0) r.response_type = "ephemeral";
    return w_result_encode(&r, true);
}

/* The dead-letter record of a message that is not a request envelope: the worker
 * refused it as "invalid", why, where it was read and its bytes. Caller frees; NULL when
 * out of memory. */
char *w_dlq_json(const struct cq_message *m, const char *reason) {
    char now[32];
    struct cq_err err = {0};
    struct cq_dlq d = {0};
    cq_now_rfc3339(now);
    d.service = "worker";
    d.cls = "invalid";
    d.reason = (char *)reason;
    d.failed_at = now;
    d.topic = (char *)m->topic;
    d.partition = m->partition;
    d.offset = m->offset;
    d.payload = (char *)m->payload;
    d.payload_len = m->payload ? m->len : 0;
    char *s = cq_dlq_encode(&d, &err);
    if (!s) cq_error(NULL, "cannot encode dead letter: %s", err.msg);
    return s;
}
