/* direct: direct-mode actions: the command's HTTP call (rendered from its template),
 * its answer turned into the reply text, after the claim says "calling". */
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

static void on_http_done(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    const struct cq_http_action *a = &j->cmd->http;
    double secs = (double)(cq_now_ms() - j->call_t0) / 1000.0;
    char *text = NULL;
    const char *status = "failed";

    w_metric_action_seconds(secs);
    if (resp->rc == CQ_ESHUTDOWN || j->w->torn_down) {
        w_job_abandon(j, "stopped during the call");
        w_job_op_end(j);
        return;
    }
    /* The side effect is over: the conversation's next command may start now. Its order is
     * the order of the calls; waiting for this result to be stored and produced too would
     * only add Redis and Kafka round trips to every command of a busy conversation. */
    w_job_release_conv(j);
    if (resp->rc == CQ_ETIMEOUT) {
        status = "timeout";
        text = cq_strprintf("`%s` timed out: no answer from %s within %d ms; the outcome is "
                            "unknown, check it there before running it again",
                            j->cmd->name, j->target, a->timeout_ms > 0 ? a->timeout_ms : 30000);
    } else if (resp->rc != CQ_OK) {
        text = cq_strprintf("`%s` failed: could not reach %s (%s)", j->cmd->name, j->target,
                            resp->errmsg);
    } else {
        bool ok = false;
        if (a->n_success_status == 0)
            ok = resp->status == 200 || resp->status == 201 || resp->status == 204;
        for (size_t i = 0; i < a->n_success_status; i++)
            if (resp->status == a->success_status[i]) ok = true;
        cJSON *body = cJSON_ParseWithLength(resp->body, resp->body_len);
        if (!ok) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "message");
            if (!m) m = cJSON_GetObjectItemCaseSensitive(body, "error");
            char *msg = m ? w_json_text(m) : NULL;
            char snippet[201]; /* the body from outside: cut and made valid UTF-8 */
            cq_utf8_copy(snippet, sizeof(snippet), resp->body, resp->body_len, NULL);
            for (char *p = snippet; *p; p++)
                if (*p == '\n' || *p == '\r') *p = ' ';
            text = cq_strprintf("`%s` failed: %s answered HTTP %ld%s%s", j->cmd->name, j->target,
                                resp->status, (msg && *msg) || snippet[0] ? ": " : "",
                                msg && *msg ? msg : snippet);
            free(msg);
        } else {
            status = "ok";
            if (a->reply_template && a->reply_template[0]) {
                struct cq_err err = {0};
                struct cq_tpl_vars v = w_job_tpl_vars(j);
                v.response = body;
                text = w_template_expand(a->reply_template, CQ_TPL_TEXT, &v, &err);
                if (!text)
                    text = cq_strprintf("`%s` done (HTTP %ld), but the reply template failed: %s",
                                        j->cmd->name, resp->status, err.msg);
            } else if (a->reply_pointer && a->reply_pointer[0]) {
                const cJSON *node = w_json_pointer(body, a->reply_pointer);
                text = node ? w_json_text(node)
                            : cq_strprintf("`%s` done (HTTP %ld); the answer has no %s",
                                           j->cmd->name, resp->status, a->reply_pointer);
            } else if (resp->body_len > 0) {
                text = strdup(resp->body);
            } else {
                text = cq_strprintf("`%s` done (HTTP %ld)", j->cmd->name, resp->status);
            }
        }
        cJSON_Delete(body);
    }
    w_metric_action(status);
    cq_info(j->req.id, "%s -> %s (%ld, %.3f s)", j->target, status, resp->status, secs);
    w_finish_with(j, status, text);
    w_job_op_end(j);
}

void w_start_call(struct job *j) {
    const struct cq_http_action *a = &j->cmd->http;
    struct cq_err err = {0};
    const char *hdrs[66];
    size_t n = 0;
    for (size_t i = 0; i < j->call.n_headers && n < 64; i++)
        hdrs[n++] = j->call.headers[i];
    char ct[80];
    if (j->call.content_type && n < 65) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", j->call.content_type);
        hdrs[n++] = ct;
    }
    hdrs[n] = NULL;
    struct cq_http_request req = {.method = j->call.method,
                                  .url = j->call.url,
                                  .headers = hdrs,
                                  .body = j->call.body,
                                  .body_len = j->call.body ? strlen(j->call.body) : 0,
                                  .timeout_ms = a->timeout_ms};
    j->call_t0 = cq_now_ms();
    w_job_op_begin(j);
    if (cq_httpc_request(j->w->httpc, &req, on_http_done, j, &err) != CQ_OK) {
        j->ops--;
        w_metric_action("failed");
        w_finish_with(
            j, "failed",
            cq_strprintf("`%s` failed: the request could not be sent (%s)", j->cmd->name, err.msg));
    }
}

void w_direct_start(struct job *j) {
    struct cq_err err = {0};
    struct cq_tpl_vars v = w_job_tpl_vars(j);
    if (w_template_http_call(&j->cmd->http, &v, &j->call, &err) != CQ_OK) {
        w_metric_action("failed");
        w_finish_with(j, "failed", cq_strprintf("`%s` was not run: %s", j->cmd->name, err.msg));
        return;
    }
    /* Where to look when the outcome is unknown: method and URL without the query. */
    size_t ulen = strcspn(j->call.url, "?");
    j->target = cq_strprintf("%s %.*s", j->call.method, (int)ulen, j->call.url);
    if (!j->target) {
        w_job_abandon(j, "out of memory");
        return;
    }
    w_mark_calling(j);
}
