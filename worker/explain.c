/* explain: `explain COMMAND ARGS` (issue 16) runs the decision of COMMAND ARGS without the
 * action and answers what would happen: the rule that allows it or the reason it is refused,
 * the approval or confirmation it needs, its lock's state, its rate limit's state (not
 * consumed) and the exact HTTP request or pipeline project, ref and variables it would send,
 * built by the same code as the real run (w_template_http_call, w_pipeline_vars_build);
 * secrets are masked by the final's redaction. Policy-filtered like help: a command the user
 * may not run is explained only by its refusal. */
#include "locks.h"
#include "service_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "log.h"
#include "strutil.h"

struct explain {
    struct job *j; /* the explain request */
    struct job *e; /* COMMAND ARGS as its own decision (borrows j's request fields) */
    char *out;
    size_t len;
    bool oom;
};

static void add(struct explain *x, char *line) {
    size_t n = line ? strlen(line) : 0;
    char *o = line ? realloc(x->out, x->len + n + 2) : NULL;
    if (!o) {
        x->oom = true;
        free(line);
        return;
    }
    x->out = o;
    if (x->len) x->out[x->len++] = '\n';
    memcpy(x->out + x->len, line, n + 1);
    x->len += n;
    free(line);
}

bool w_explain_decide(struct job *j) {
    if (strcmp(j->req.command, "explain") != 0) return false;
    j->kind = JK_BUILTIN;
    w_policy_check(j->cfg, j->person, j->channel, "explain", NULL, &j->dec);
    if (j->argv.n == 0) {
        j->kind = JK_INVALID;
        j->status = "invalid";
        j->text = strdup("usage: explain COMMAND [ARGS]: what COMMAND ARGS would do, without "
                         "doing it");
        return true;
    }
    j->status = "ok";
    j->pl_builtin = PB_EXPLAIN;
    j->text = strdup("");
    return true;
}

static void explain_free(struct explain *x) {
    if (x->e) {
        w_argv_clear(&x->e->argv);
        w_bound_args_clear(&x->e->args);
        free(x->e->text);
        free(x->e);
    }
    free(x->out);
    free(x);
}

static void done(struct explain *x) {
    struct job *j = x->j;
    char *text = x->oom ? NULL : x->out;
    x->out = NULL;
    if (w_job_gone(j))
        w_job_abandon(j, "stopped during explain");
    else if (!text)
        w_finish_with(j, "failed", strdup("explain: out of memory"));
    else
        w_finish_with(j, "ok", text);
    explain_free(x);
    w_job_op_end(j);
}

static void on_limit_state(void *opaque, int allowed, long long used, long long retry_ms,
                           const char *err) {
    struct explain *x = opaque;
    if (allowed < 0)
        add(x, cq_strprintf("• rate limit: unknown (%s)", err));
    else {
        char *s = w_limit_state(x->e->cmd, used, retry_ms, allowed == 1);
        add(x, s ? cq_strprintf("• rate limit: %s", s) : NULL);
        free(s);
    }
    done(x);
}

static void after_lock_state(struct explain *x) {
    if (x->e->cmd->limit.count > 0) {
        w_limit_run(x->e, false, on_limit_state, x);
        return;
    }
    add(x, strdup("• rate limit: none"));
    done(x);
}

static void on_lock_state(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct explain *x = opaque;
    if (err || !r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        add(x, cq_strprintf("• lock: unknown (%s)", err ? err->msg : "unexpected answer"));
    } else if (r->type == REDIS_REPLY_NIL) {
        add(x, strdup("• lock: free"));
    } else {
        char *d = w_lock_describe(r->str, w_wall_ms());
        add(x, cq_strprintf("• lock: %s%s", d ? d : "held",
                            strstr(r->str, x->j->req.id) ? "" : ": it would be refused now"));
        free(d);
    }
    after_lock_state(x);
}

/* The request or trigger the action would send, from the code the real run uses. */
static void describe_action(struct explain *x) {
    struct job *e = x->e;
    struct cq_err err = {0};
    struct cq_tpl_vars v = w_job_tpl_vars(e);
    if (e->cmd->mode == CQ_MODE_DIRECT) {
        struct w_http_call call = {0};
        if (w_template_http_call(&e->cmd->http, &v, &call, &err) != CQ_OK) {
            add(x, cq_strprintf("• request: it would fail: %s", err.msg));
            return;
        }
        add(x, cq_strprintf("• request: %s %s", call.method, call.url));
        for (size_t i = 0; i < call.n_headers; i++)
            add(x, cq_strprintf("  header %s", call.headers[i]));
        if (call.content_type) add(x, cq_strprintf("  header Content-Type: %s", call.content_type));
        if (call.body) add(x, cq_strprintf("  body: %s", call.body));
        w_http_call_clear(&call);
        return;
    }
    struct w_pipeline_trigger p = {.req = &e->req,
                                   .cmd = e->cmd,
                                   .vars = &v,
                                   .gitlab_login = e->person ? e->person->gitlab_login : NULL};
    struct w_pipeline_vars pv = {0};
    if (w_pipeline_vars_build(&p, &pv, &err) != CQ_OK) {
        add(x, cq_strprintf("• pipeline: it would fail: %s", err.msg));
        return;
    }
    add(x, cq_strprintf("• pipeline: %s of GitLab project %s at ref %s",
                        e->cmd->mode == CQ_MODE_TRIGGER_AND_WAIT ? "trigger_and_wait"
                                                                 : "trigger_and_return",
                        e->cmd->pipeline.project, pv.ref));
    for (size_t i = 0; pv.vars[i] && pv.vars[i + 1]; i += 2)
        if (strcmp(pv.vars[i], "CHATOPS_REQUEST_ID") == 0)
            add(x, strdup("  variable CHATOPS_REQUEST_ID=(the id of the request that runs it)"));
        else
            add(x, cq_strprintf("  variable %s=%s", pv.vars[i], pv.vars[i + 1]));
    w_pipeline_vars_clear(&pv);
}

void w_explain_builtin(struct job *j) {
    struct explain *x = calloc(1, sizeof(*x));
    struct job *e = x ? calloc(1, sizeof(*e)) : NULL;
    w_job_op_begin(j);
    if (!x || !e) {
        free(x);
        free(e);
        w_finish_with(j, "failed", strdup("explain: out of memory"));
        w_job_op_end(j);
        return;
    }
    x->j = j;
    x->e = e;
    /* COMMAND ARGS as a request of its own: the same person, channel and identity */
    e->w = j->w;
    e->cfg = j->cfg;
    e->ident = j->ident;
    e->req = j->req;
    e->req.command = j->argv.v[0];
    const char *t = j->req.text ? j->req.text : "";
    t += strspn(t, " \t");
    t += strcspn(t, " \t");
    e->req.text = (char *)(t + strspn(t, " \t"));
    e->req.action.name = NULL; /* never an approved continuation */
    e->req.action.value = NULL;
    w_decide(e);
    w_identity_after_decide(e);
    add(x, cq_strprintf("explain `%s%s%s` (nothing is run):", e->req.command,
                        *e->req.text ? " " : "", e->req.text));
    if (e->kind != JK_ACTION) {
        add(x, cq_strprintf("• %s: %s",
                            e->kind == JK_BUILTIN ? "a built-in"
                                                  : (e->kind == JK_DENIED ? "refused" : "invalid"),
                            e->kind == JK_BUILTIN ? "explain shows configured commands"
                                                  : (e->text ? e->text : "?")));
        done(x);
        return;
    }
    add(x, cq_strprintf("• allowed%s%s", e->dec.rule ? " by rule " : "",
                        e->dec.rule ? e->dec.rule : ""));
    const struct cq_approval *ap = NULL;
    bool confirm = false;
    w_approval_needed(e, &ap, &confirm);
    if (ap) {
        char roles[300] = "";
        for (size_t i = 0; ap->roles[i]; i++)
            snprintf(roles + strlen(roles), sizeof roles - strlen(roles), "%s%s", i ? ", " : "",
                     ap->roles[i]);
        add(x, cq_strprintf("• approval: %d of role %s, within %d s", ap->count, roles,
                            ap->expires_s));
    } else {
        add(x, strdup(confirm ? "• confirmation: the requester confirms with a button first"
                              : "• approval: none"));
    }
    describe_action(x);
    if (!e->cmd->lock) {
        add(x, strdup("• lock: none"));
        after_lock_state(x);
        return;
    }
    struct cq_err err = {0};
    char *name = w_lock_name(e, &err);
    char *key =
        name ? cq_strprintf("%slock:%s", e->cfg->redis.prefix ? e->cfg->redis.prefix : "", name)
             : NULL;
    add(x, name ? cq_strprintf("• lock name: `%s`", name)
                : cq_strprintf("• lock: it would fail: %s", err.msg));
    free(name);
    if (!key || !j->w->redis ||
        cq_redis_command(j->w->redis, on_lock_state, x, "GET %s", key) != CQ_OK) {
        if (key) add(x, strdup("• lock: unknown (redis is not connected)"));
        after_lock_state(x);
    }
    free(key);
}
