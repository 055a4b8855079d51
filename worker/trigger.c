/* trigger: pipeline-mode actions and built-ins answered by the pipeline tracker:
 * trigger (after the claim says "calling"), cancel and pipelines. */
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

/* The status words results use, as static strings (callbacks pass borrowed ones). */
static const char *static_status(const char *s) {
    static const char *const known[] = {"ok", "denied", "invalid", "failed", "timeout"};
    for (size_t i = 0; s && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i]) == 0) return known[i];
    return "failed";
}

/* The tracker triggered (or failed to): the reply is this request's last word, an ack
 * for a tracked wait (the tracker sends progress and the final) or the final itself.
 * Stored in the run-once claim with the pipeline id before it is produced, so a
 * redelivered request re-sends this reply instead of triggering again. */
static void on_pipeline_started(void *opaque, const struct w_pipeline_outcome *o) {
    struct job *j = opaque;
    if (w_job_gone(j)) {
        w_job_abandon(j, "stopped during the pipeline trigger");
        w_job_op_end(j);
        return;
    }
    j->step = o->step && strcmp(o->step, "ack") == 0 ? "ack" : NULL;
    j->pl_id = o->pipeline_id;
    free(j->pl_url);
    free(j->pl_status);
    j->pl_url = o->web_url ? strdup(o->web_url) : NULL;
    j->pl_status = o->pipeline_status ? strdup(o->pipeline_status) : NULL;
    const char *st = static_status(o->status);
    w_metric_action(st);
    cq_info(j->req.id, "%s: pipeline #%lld %s (%s)", j->cmd->name, o->pipeline_id,
            o->pipeline_status ? o->pipeline_status : "not created", j->step ? "tracked" : st);
    w_finish_with(j, st, strdup(o->text ? o->text : ""));
    w_job_op_end(j);
}

/* The claim says "calling": trigger now. */
void w_pipeline_trigger_now(struct job *j) {
    struct w_worker *w = j->w;
    struct cq_err err = {0};
    char label[256];
    struct cq_tpl_vars v = w_job_tpl_vars(j);
    w_command_label(&j->req, label, sizeof(label));
    const char *owner_platform, *owner_id; /* one person across platforms (issue 17) */
    w_identity_owner(j, &owner_platform, &owner_id);
    struct w_pipeline_trigger p = {.req = &j->req,
                                   .owner_platform = owner_platform,
                                   .owner_id = owner_id,
                                   .cmd = j->cmd,
                                   .vars = &v,
                                   .gitlab_login = j->person ? j->person->gitlab_login : NULL,
                                   .label = label};
    w_job_op_begin(j);
    enum cq_rc rc = w->pipelines
                        ? w_pipeline_trigger(w->pipelines, &p, on_pipeline_started, j, &err)
                        : CQ_ESHUTDOWN;
    if (rc != CQ_OK) {
        j->ops--;
        w_metric_action("failed");
        w_finish_with(j, "failed",
                      cq_strprintf("`%s` was not run: %s", j->cmd->name,
                                   err.msg[0] ? err.msg : "pipeline tracking is not running"));
    }
}

/* Pipeline modes (issue 6): claimed -> calling (naming the trigger), then trigger. */
void w_pipeline_start(struct job *j) {
    const struct cq_config *cfg = j->cfg;
    j->target = cq_strprintf("the pipeline trigger of GitLab project %s at %s",
                             j->cmd->pipeline.project ? j->cmd->pipeline.project : "?",
                             cfg->gitlab.base_url ? cfg->gitlab.base_url : "GitLab");
    if (!j->target) {
        w_job_abandon(j, "out of memory");
        return;
    }
    w_mark_calling(j);
}

static void on_builtin_text(void *opaque, const char *status, const char *text) {
    struct job *j = opaque;
    if (w_job_gone(j))
        w_job_abandon(j, "stopped during a pipeline built-in");
    else
        w_finish_with(j, static_status(status), strdup(text ? text : ""));
    w_job_op_end(j);
}

/* `cancel REQUEST_ID` and `pipelines`, answered by the tracker. */
void w_pipeline_builtin(struct job *j) {
    struct w_worker *w = j->w;
    struct cq_err err = {0};
    enum cq_rc rc = CQ_ESHUTDOWN;
    const char *op, *oid; /* the GitLab login when known: the same list on every platform */
    w_identity_owner(j, &op, &oid);
    w_job_op_begin(j);
    if (w->pipelines && j->pl_builtin == PB_CANCEL)
        rc = w_pipeline_cancel(w->pipelines, j->argv.v[0], op, oid, j->person, on_builtin_text, j,
                               &err);
    else if (w->pipelines)
        rc = w_pipeline_list(w->pipelines, op, oid, j->person, on_builtin_text, j, &err);
    if (rc != CQ_OK) {
        j->ops--;
        w_finish_with(j, rc == CQ_EINVAL ? "invalid" : "failed",
                      strdup(err.msg[0] ? err.msg : "pipeline tracking is not running"));
    }
}
