/* pipeline_vars: the ref and the variables a pipeline trigger sends (issue 6), built in one
 * place so `explain` (explain.c) shows exactly what w_pipeline_trigger then sends. */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "gitlab.h"

enum cq_rc w_pipeline_vars_build(const struct w_pipeline_trigger *p, struct w_pipeline_vars *out,
                                 struct cq_err *err) {
    const struct cq_command *cmd = p->cmd;
    const struct cq_pipeline_action *a = &cmd->pipeline;
    const struct cq_request *req = p->req;
    enum cq_rc rc = CQ_OK;
    char *ref = NULL;
    char **vals = NULL;
    const char **vars = NULL;
    size_t nv = 0;
    memset(out, 0, sizeof(*out));
    ref = w_template_expand(a->ref ? a->ref : "main", CQ_TPL_TEXT, p->vars, err);
    if (!ref) {
        rc = err ? err->code : CQ_ENOMEM;
        goto out;
    }
    if (!w_gitlab_ref_valid(ref)) {
        rc = cq_err_set(err, CQ_EINVAL, "`%.100s` is not a valid branch or tag name", ref);
        goto out;
    }
    /* Chat context first; config variables (expanded) after, never overriding it. */
    size_t cap = 2 * (7 + a->n_variables) + 1;
    vals = calloc(a->n_variables + 1, sizeof(*vals));
    vars = calloc(cap, sizeof(*vars));
    if (!vals || !vars) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    const char *chan =
        p->vars && p->vars->channel && p->vars->channel->name
            ? p->vars->channel->name
            : (req->channel_name ? req->channel_name : (req->channel_id ? req->channel_id : ""));
    /* CHAT_INPUT: the arguments text, after the command's full name ("blue 30" for
     * `lb weight blue 30`), as {{chat.input}} gives it. */
    const char *input = p->vars && p->vars->input ? p->vars->input : (req->text ? req->text : "");
    const char *ctx[] = {"CHAT_INPUT",         input,
                         "CHAT_CHANNEL",       chan,
                         "CHAT_USER_ID",       req->user_id ? req->user_id : "",
                         "GITLAB_USER_LOGIN",  p->gitlab_login ? p->gitlab_login : "",
                         "CHATOPS_COMMAND",    cmd->name,
                         "CHATOPS_REQUEST_ID", req->id};
    for (size_t i = 0; i < 12; i++)
        vars[nv++] = ctx[i];
    if (req->action.name && strcmp(req->action.name, "run") == 0 && req->action.value) {
        vars[nv++] = "CHATOPS_APPROVERS"; /* an approved request (worker/approval.c) */
        vars[nv++] = req->action.value;
    }
    for (size_t i = 0; i < a->n_variables; i++) {
        const struct cq_var_tpl *v = &a->variables[i];
        if (!v->name || cq_config_var_reserved(v->name))
            continue; /* refused at config load; never overrides the chat context */
        vals[i] = w_template_expand(v->value ? v->value : "", CQ_TPL_TEXT, p->vars, err);
        if (!vals[i]) {
            rc = err ? err->code : CQ_ENOMEM;
            goto out;
        }
        vars[nv++] = v->name;
        vars[nv++] = vals[i];
    }
    vars[nv] = NULL;
    out->ref = ref;
    out->vals = vals;
    out->n_vals = a->n_variables;
    out->vars = vars;
    return CQ_OK;
out:
    free(ref);
    for (size_t i = 0; vals && i < a->n_variables; i++)
        free(vals[i]);
    free(vals);
    free(vars);
    return rc;
}

void w_pipeline_vars_clear(struct w_pipeline_vars *v) {
    free(v->ref);
    for (size_t i = 0; v->vals && i < v->n_vals; i++)
        free(v->vals[i]);
    free(v->vals);
    free(v->vars);
    memset(v, 0, sizeof(*v));
}
