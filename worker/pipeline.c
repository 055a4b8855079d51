/* pipeline: triggers GitLab pipelines and tracks the waited-for ones in Redis (hash per
 * pipeline, due-time sorted set, owner lease), claiming due entries with Lua so that two
 * workers never check one pipeline at once; produces progress and one final result per
 * pipeline to chatops.results. Everything runs on the worker's loop (hiredis async, curl
 * multi, librdkafka delivery reports); see pipeline.h for the keys and the wiring.
 * This file: tracker lifecycle, the trigger path (with its ambiguous-answer lookup, ~570
 * lines that belong together) and the calls to the result/audit encoders of records.c;
 * the Redis side is in pipeline_store.c, the check loop in pipeline_check.c, the built-ins in
 * pipeline_builtins.c. */
#include "pipeline_int.h"
#include "records.h"

/* ---- small helpers ---------------------------------------------------------------- */

long long w_pipeline_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tracker_release(struct w_pipeline_tracker *t);

void pl_unref(struct w_pipeline_tracker *t) {
    t->refs--;
    if (t->closing && t->refs <= 0 && t->open_timers == 0) tracker_release(t);
}

struct cq_gauge *pl_gauge_active(void) {
    return cq_gauge_get("chatops_worker_pipelines_checking", "Pipelines being checked right now",
                        NULL);
}

void pl_count(const char *name, const char *help, const char *labels) {
    cq_counter_inc(cq_counter_get(name, help, labels));
}

bool w_pipeline_privileged(const struct cq_config *cfg, const struct cq_person *person) {
    if (!cfg || !person || !person->roles || !cfg->worker.cancel_roles) return false;
    for (char **r = person->roles; *r; r++)
        for (char **c = cfg->worker.cancel_roles; *c; c++)
            if (strcmp(*r, *c) == 0) return true;
    return false;
}

static const char *secret_value(const struct cq_config *cfg, const char *name) {
    for (size_t i = 0; name && i < cfg->n_secrets; i++)
        if (cfg->secrets[i].name && strcmp(cfg->secrets[i].name, name) == 0)
            return cfg->secrets[i].secret.value;
    return NULL;
}

/* Encodes a result for the tracked request (records.c). Caller frees. */
char *pl_encode_result(const struct check *c, const char *step, const char *status,
                       const char *text, int seq, const char *pstatus) {
    struct cq_request req = {0};
    struct cq_result r = {0};
    struct cq_err err = {0};
    char now[32], *out = NULL, *valid = NULL;
    if (text && !cq_utf8_valid(text, strlen(text))) {
        /* job and stage names, statuses: from GitLab, made valid before the envelope */
        valid = cq_utf8_clean(text, strlen(text), 0);
        if (!valid) return NULL;
        text = valid;
    }
    if (!c->req_json ||
        cq_request_decode(c->req_json, strlen(c->req_json), 0, &req, &err) != CQ_OK) {
        cq_error(c->rid, "tracked request unreadable: %s", err.msg);
        free(valid);
        return NULL;
    }
    cq_now_rfc3339(now);
    r.request_id = c->rid;
    r.step = (char *)step;
    r.status = (char *)status;
    r.platform = req.platform;
    r.reply = req.reply;
    r.text = (char *)text;
    r.command = c->label;
    r.user_name = req.user_name;
    r.response_type = c->rtype && *c->rtype ? c->rtype : NULL;
    r.seq = seq;
    r.pipeline.id = c->pid;
    r.pipeline.web_url = c->web_url;
    r.pipeline.status = (char *)pstatus;
    r.produced_at = now;
    out = w_result_encode(&r, false);
    cq_request_clear(&req);
    free(valid);
    return out;
}

/* The outcome audit record of a tracked pipeline (records.c), produced. Best effort: an
 * audit record lost here does not hold the final. */
void pl_audit_final(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_request req = {0};
    struct cq_result res = {0};
    struct cq_err err = {0};
    char *s = NULL;
    if (!t->cfg->kafka.topic_audit || !c->final || !c->req_json ||
        cq_request_decode(c->req_json, strlen(c->req_json), 0, &req, &err) != CQ_OK ||
        cq_result_decode(c->final, strlen(c->final), 0, &res, &err) != CQ_OK)
        goto out;
    free(req.id); /* the record names the tracked request id */
    req.id = strdup(c->rid);
    if (!req.id) goto out;
    s = w_audit_outcome_json(&req, c->label, res.status, res.text, c->pid,
                             c->cur ? c->cur : c->status, t->owner);
    if (s && cq_producer_send(t->producer, t->cfg->kafka.topic_audit, c->rid, strlen(c->rid), s,
                              strlen(s), NULL, NULL, NULL, &err) != CQ_OK)
        cq_warn(c->rid, "pipeline outcome audit not produced: %s", err.msg);
out:
    free(s);
    cq_request_clear(&req);
    cq_result_clear(&res);
}

/* ---- trigger --------------------------------------------------------------------------- */

struct trig {
    struct w_pipeline_tracker *t;
    w_pipeline_cb cb;
    void *opaque;
    bool wait;
    char *rid, *project, *label, *rtype, *req_json, *manual_job, *platform, *user_id;
    char *user_name, *command;
    long long deadline;
    int timeout_s, progress_s;
    bool cancel_on_timeout;
    long long pid;
    char *pid_s, *web_url, *status;
    int reg_attempts; /* registrations sent (REGISTER_LUA is idempotent) */
    /* After an ambiguous trigger answer: looking for the pipeline by CHATOPS_REQUEST_ID. */
    char *ref;
    long long sent_ms; /* when the trigger was first sent */
    char *why;         /* what made it ambiguous ("HTTP 502", "timed out", ...) */
    int lookups;       /* looks done */
    cJSON *cands;      /* the last list of candidates (owned) */
    int cand_i;
    uv_timer_t *look_timer; /* before the next look; NULL otherwise */
    struct trig *lnext, *lprev;
    bool listed; /* in t->lookups */
};

static void lookup_timer_closed(uv_handle_t *h) {
    struct w_pipeline_tracker *t = h->data;
    free(h);
    t->open_timers--;
    t->refs++;
    pl_unref(t);
}

static void trig_unlist(struct trig *g) {
    if (!g->listed) return;
    if (g->lprev)
        g->lprev->lnext = g->lnext;
    else
        g->t->lookups = g->lnext;
    if (g->lnext) g->lnext->lprev = g->lprev;
    g->lnext = g->lprev = NULL;
    g->listed = false;
}

static void trig_free(struct trig *g) {
    if (!g) return;
    trig_unlist(g);
    if (g->look_timer) {
        uv_timer_stop(g->look_timer);
        g->look_timer->data = g->t;
        uv_close((uv_handle_t *)g->look_timer, lookup_timer_closed);
        g->look_timer = NULL;
    }
    free(g->ref);
    free(g->why);
    cJSON_Delete(g->cands);
    free(g->rid);
    free(g->project);
    free(g->label);
    free(g->rtype);
    free(g->req_json);
    free(g->manual_job);
    free(g->platform);
    free(g->user_id);
    free(g->user_name);
    free(g->command);
    free(g->pid_s);
    free(g->web_url);
    free(g->status);
    free(g);
}

static void trig_answer(struct trig *g, const char *step, const char *status, char *text) {
    struct w_pipeline_outcome o = {.step = step,
                                   .status = status,
                                   .text = text ? text : "out of memory",
                                   .pipeline_id = g->pid,
                                   .web_url = g->web_url,
                                   .pipeline_status = g->status};
    pl_count("chatops_worker_pipeline_triggers_total", "Pipeline triggers by outcome",
             strcmp(status, "ok") == 0 ? "outcome=\"ok\"" : "outcome=\"failed\"");
    g->cb(g->opaque, &o);
    free(text);
    trig_free(g);
}

static void track(struct trig *g);

static void on_registered(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct trig *g = opaque;
    struct w_pipeline_tracker *t = g->t;
    if (pl_redis_bad(r, err) && err && err->code != CQ_ESHUTDOWN && !t->closing &&
        g->reg_attempts < 5) {
        /* A timed-out registration may or may not have been applied: send it again (a
         * second one is a no-op). Giving up at once could answer "cannot be followed"
         * for a pipeline that is tracked after all, and so produce two finals. */
        cq_warn(g->rid, "registering pipeline #%lld: %s; sending it again", g->pid, pl_why(r, err));
        track(g);
        pl_unref(t);
        return;
    }
    if (pl_redis_bad(r, err)) {
        cq_error(g->rid, "pipeline #%lld triggered but not tracked: %s", g->pid, pl_why(r, err));
        trig_answer(g, "final", "ok",
                    cq_strprintf("pipeline #%lld started, but it cannot be followed from here "
                                 "(tracking store unavailable); follow it in GitLab: %s",
                                 g->pid, g->web_url));
    } else {
        t->st.triggered++;
        cq_info(g->rid, "pipeline #%lld tracked", g->pid);
        trig_answer(g, "ack", "ok",
                    cq_strprintf("pipeline #%lld started; I will report here when it ends: %s",
                                 g->pid, g->web_url));
    }
    pl_unref(t);
}

static void track(struct trig *g) {
    struct w_pipeline_tracker *t = g->t;
    long long now = w_pipeline_now_ms();
    /* The first check waits poll_min (at least 1 s): the ack goes out first. */
    char s_due[24], s_deadline[24], s_poll[16], s_prog[16], s_timeout[16], s_now[24];
    long long first = now + (t->poll_min > 1000 ? t->poll_min : 1000);
    snprintf(s_due, sizeof(s_due), "%lld", first);
    snprintf(s_deadline, sizeof(s_deadline), "%lld", g->deadline);
    snprintf(s_poll, sizeof(s_poll), "%d", t->poll_min);
    snprintf(s_prog, sizeof(s_prog), "%d", g->progress_s);
    snprintf(s_timeout, sizeof(s_timeout), "%d", g->timeout_s);
    snprintf(s_now, sizeof(s_now), "%lld", now);
    char *hk = pl_hkey(t, g->rid), *ik = pl_ikey(t, g->pid_s),
         *uk = pl_ukey(t, g->platform, g->user_id);
    const char *argv[] = {"EVAL",
                          PL_REGISTER_LUA,
                          "4",
                          hk,
                          t->due_key,
                          ik,
                          uk,
                          g->rid,
                          s_due,
                          "req",
                          g->req_json,
                          "label",
                          g->label,
                          "rtype",
                          g->rtype,
                          "project",
                          g->project,
                          "pid",
                          g->pid_s,
                          "web_url",
                          g->web_url,
                          "status",
                          g->status,
                          "reported",
                          g->status,
                          "deadline",
                          s_deadline,
                          "next_progress",
                          "0",
                          "poll_ms",
                          s_poll,
                          "seq",
                          "0",
                          "state",
                          "waiting",
                          "platform",
                          g->platform,
                          "user_id",
                          g->user_id,
                          "user_name",
                          g->user_name,
                          "command",
                          g->command,
                          "progress_s",
                          s_prog,
                          "timeout_s",
                          s_timeout,
                          "cancel_on_timeout",
                          g->cancel_on_timeout ? "1" : "0",
                          "created",
                          s_now};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    g->reg_attempts++;
    bool sent = hk && ik && uk && pl_redis_send(t, on_registered, g, argc, argv);
    free(hk);
    free(ik);
    free(uk);
    if (!sent)
        trig_answer(g, "final", "ok",
                    cq_strprintf("pipeline #%lld started, but it cannot be followed from here "
                                 "(tracking store unavailable); follow it in GitLab: %s",
                                 g->pid, g->web_url));
}

/* The pipeline exists (from the trigger's answer, or found after an ambiguous one):
 * the reply for trigger_and_return, or its registration for tracking. */
static void pipeline_known(struct trig *g, const cJSON *pl, long http_status) {
    struct w_pipeline_tracker *t = g->t;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(pl, "id");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(pl, "web_url");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(pl, "status");
    if (!cJSON_IsNumber(id) || id->valuedouble <= 0) {
        trig_answer(g, "final", "failed",
                    cq_strprintf("GitLab answered HTTP %ld without a pipeline id; check the "
                                 "project's pipelines before trying again",
                                 http_status));
        return;
    }
    g->pid = (long long)id->valuedouble;
    g->pid_s = cq_strprintf("%lld", g->pid);
    g->web_url = strdup(cJSON_IsString(url) ? url->valuestring : "");
    g->status = strdup(cJSON_IsString(st) ? st->valuestring : "created");
    if (!g->pid_s || !g->web_url || !g->status) {
        trig_answer(g, "final", "failed", NULL);
        return;
    }
    cq_info(g->rid, "pipeline #%lld triggered in %s", g->pid, g->project);
    if (!g->wait) {
        t->st.triggered++;
        if (g->manual_job && *g->manual_job)
            trig_answer(g, "final", "ok",
                        cq_strprintf("pipeline #%lld created — approve the '%s' job: %s", g->pid,
                                     g->manual_job, g->web_url));
        else
            trig_answer(g, "final", "ok",
                        cq_strprintf("pipeline #%lld created: %s", g->pid, g->web_url));
        return;
    }
    track(g);
}

/* Where a person checks by hand: the project's pipelines page (a numeric project id
 * gives the project page, which GitLab redirects to). Caller frees. */
static char *pipelines_page(const struct w_pipeline_tracker *t, const char *project) {
    const char *base = t->cfg->gitlab.base_url ? t->cfg->gitlab.base_url : "";
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if (strspn(project, "0123456789") == strlen(project))
        return cq_strprintf("%.*s/projects/%s", (int)bl, base, project);
    char *path = strdup(project); /* "group%2Fname" -> "group/name" */
    if (!path) return NULL;
    size_t o = 0;
    for (size_t i = 0; path[i]; i++) {
        unsigned int ch;
        if (path[i] == '%' && sscanf(path + i + 1, "%2x", &ch) == 1 && path[i + 1] && path[i + 2]) {
            path[o++] = (char)ch;
            i += 2;
        } else {
            path[o++] = path[i];
        }
    }
    path[o] = '\0';
    char *url = cq_strprintf("%.*s/%s/-/pipelines", (int)bl, base, path);
    free(path);
    return url;
}

/* No pipeline found for an ambiguous trigger: the outcome is unknown. Never triggered
 * again: the person checks (the request id is the pipeline's CHATOPS_REQUEST_ID). */
static void outcome_unknown(struct trig *g, const char *detail) {
    char *page = pipelines_page(g->t, g->project);
    pl_count("chatops_worker_pipeline_trigger_lookups_total",
             "Pipelines looked up after an ambiguous trigger answer, by outcome",
             "outcome=\"unknown\"");
    cq_warn(g->rid, "trigger outcome unknown (%s); %s", g->why ? g->why : "?", detail);
    trig_answer(g, "final", "failed",
                cq_strprintf("`%s`: GitLab's answer to the trigger was lost (%s) and %s, so the "
                             "outcome is unknown: a pipeline may or may not have started. Check %s "
                             "for one with CHATOPS_REQUEST_ID=%s before running it again",
                             g->command, g->why ? g->why : "no answer", detail,
                             page ? page : "the project's pipelines", g->rid));
    free(page);
}

static void look(struct trig *g);

static void look_again(uv_timer_t *timer) {
    struct trig *g = timer->data;
    uv_timer_stop(timer);
    timer->data = g->t;
    uv_close((uv_handle_t *)timer, lookup_timer_closed);
    g->look_timer = NULL;
    trig_unlist(g);
    look(g);
}

/* One look found nothing (or could not look): look again later, or give up. GitLab may
 * still be creating a pipeline whose request timed out here. */
static void look_later(struct trig *g, const char *detail) {
    struct w_pipeline_tracker *t = g->t;
    int max =
        t->cfg->gitlab.trigger_lookup_attempts > 0 ? t->cfg->gitlab.trigger_lookup_attempts : 3;
    if (g->lookups >= max || t->closing) {
        outcome_unknown(g, detail);
        return;
    }
    uv_timer_t *timer = malloc(sizeof(*timer));
    if (!timer || uv_timer_init(cq_loop_uv(t->loop), timer) != 0) {
        free(timer);
        outcome_unknown(g, detail);
        return;
    }
    t->open_timers++;
    timer->data = g;
    g->look_timer = timer;
    g->lnext = t->lookups;
    if (t->lookups) t->lookups->lprev = g;
    t->lookups = g;
    g->listed = true;
    uv_timer_start(timer, look_again, (uint64_t)1000 << (g->lookups - 1 < 4 ? g->lookups - 1 : 4),
                   0);
}

static void next_candidate(struct trig *g);

static void on_candidate_vars(void *opaque, const struct w_gitlab_reply *r) {
    struct trig *g = opaque;
    struct w_pipeline_tracker *t = g->t;
    if (r->rc == CQ_ESHUTDOWN) {
        outcome_unknown(g, "the worker stopped while looking for it");
        goto out;
    }
    bool mine = false;
    const cJSON *v;
    if (r->rc == CQ_OK && r->status == 200 && cJSON_IsArray(r->json))
        cJSON_ArrayForEach(v, r->json) {
            const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "key"));
            const char *val = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "value"));
            if (k && val && strcmp(k, "CHATOPS_REQUEST_ID") == 0 && strcmp(val, g->rid) == 0)
                mine = true;
        }
    if (!mine) {
        g->cand_i++;
        next_candidate(g);
        goto out;
    }
    const cJSON *pl = cJSON_GetArrayItem(g->cands, g->cand_i);
    pl_count("chatops_worker_pipeline_trigger_lookups_total",
             "Pipelines looked up after an ambiguous trigger answer, by outcome",
             "outcome=\"found\"");
    cq_warn(g->rid, "trigger answer was lost (%s); found the pipeline by its request id",
            g->why ? g->why : "?");
    pipeline_known(g, pl, 200);
out:
    pl_unref(t);
}

static void next_candidate(struct trig *g) {
    struct w_pipeline_tracker *t = g->t;
    struct cq_err err = {0};
    for (; g->cand_i < cJSON_GetArraySize(g->cands); g->cand_i++) {
        const cJSON *id =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(g->cands, g->cand_i), "id");
        if (!cJSON_IsNumber(id) || id->valuedouble <= 0) continue;
        if (w_gitlab_pipeline_variables(t->gl, g->project, (long long)id->valuedouble,
                                        on_candidate_vars, g, &err) != CQ_OK) {
            outcome_unknown(g, err.msg);
            return;
        }
        t->refs++;
        return;
    }
    look_later(g, "no pipeline of the ref carries this request id");
}

static void on_candidates(void *opaque, const struct w_gitlab_reply *r) {
    struct trig *g = opaque;
    struct w_pipeline_tracker *t = g->t;
    if (r->rc == CQ_ESHUTDOWN) {
        outcome_unknown(g, "the worker stopped while looking for it");
        goto out;
    }
    if (r->rc != CQ_OK || r->status != 200 || !cJSON_IsArray(r->json)) {
        char *e = w_gitlab_error_text(r, "look the pipeline up");
        look_later(g, e ? e : "it could not be looked up");
        free(e);
        goto out;
    }
    cJSON_Delete(g->cands);
    g->cands = cJSON_Duplicate(r->json, 1);
    g->cand_i = 0;
    if (!g->cands) {
        outcome_unknown(g, "out of memory looking for it");
        goto out;
    }
    next_candidate(g);
out:
    pl_unref(t);
}

/* Lists the ref's triggered pipelines since a little before the trigger was sent (GitLab's
 * clock may differ from ours) and checks each one's CHATOPS_REQUEST_ID. */
static void look(struct trig *g) {
    struct w_pipeline_tracker *t = g->t;
    struct cq_err err = {0};
    g->lookups++;
    if (t->closing) {
        outcome_unknown(g, "the worker stopped before looking for it");
        return;
    }
    if (w_gitlab_pipelines_since(t->gl, g->project, g->ref, g->sent_ms - 5 * 60 * 1000,
                                 t->cfg->gitlab.trigger_lookup_candidates, on_candidates, g,
                                 &err) != CQ_OK) {
        outcome_unknown(g, err.msg);
        return;
    }
    t->refs++;
}

static void on_triggered(void *opaque, const struct w_gitlab_reply *r) {
    struct trig *g = opaque;
    struct w_pipeline_tracker *t = g->t;
    if (r->ambiguous) {
        /* GitLab may have created the pipeline: find it, never send the trigger again. */
        g->why = r->rc == CQ_OK
                     ? cq_strprintf("HTTP %ld", r->status)
                     : strdup(r->rc == CQ_ETIMEOUT ? "no answer in time"
                                                   : (r->rc == CQ_ESHUTDOWN ? "the worker stopped"
                                                                            : "connection lost"));
        cq_warn(g->rid, "trigger answer lost (%s); looking the pipeline up by request id",
                g->why ? g->why : "?");
        if (r->rc == CQ_ESHUTDOWN)
            outcome_unknown(g, "the worker stopped before it could look for it");
        else
            look(g);
        goto out;
    }
    if (r->rc == CQ_ESHUTDOWN) {
        trig_answer(g, "final", "failed",
                    cq_strprintf("the worker stopped before the pipeline was triggered; run the "
                                 "command again"));
        goto out;
    }
    if (r->rc != CQ_OK || (r->status != 201 && r->status != 200)) {
        char *e = w_gitlab_error_text(r, "trigger the pipeline");
        cq_warn(g->rid, "trigger failed: HTTP %ld rc %s", r->status, cq_rc_str(r->rc));
        trig_answer(g, "final", "failed", e);
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->json, "id");
    if (!cJSON_IsNumber(id) || id->valuedouble <= 0) { /* created, but which one? */
        g->why = cq_strprintf("HTTP %ld without a pipeline id", r->status);
        look(g);
        goto out;
    }
    pipeline_known(g, r->json, r->status);
out:
    pl_unref(t);
}

enum cq_rc w_pipeline_trigger(struct w_pipeline_tracker *t, const struct w_pipeline_trigger *p,
                              w_pipeline_cb cb, void *opaque, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    struct trig *g = NULL;
    struct w_pipeline_vars pv = {0};
    const char *ref = NULL;
    const char *const *vars = NULL;
    if (!t || !p || !p->req || !p->cmd || !cb)
        return cq_err_set(err, CQ_EINVAL, "pipeline trigger: missing argument");
    if (t->closing) return cq_err_set(err, CQ_ESHUTDOWN, "the worker is stopping; try again");
    const struct cq_command *cmd = p->cmd;
    const struct cq_pipeline_action *a = &cmd->pipeline;
    const struct cq_request *req = p->req;
    const char *token = secret_value(t->cfg, a->trigger_token_name);
    if (!a->project || !*a->project) {
        rc = cq_err_set(err, CQ_ECONFIG, "`%s` has no pipeline project configured", cmd->name);
        goto out;
    }
    if (!token) {
        rc = cq_err_set(err, CQ_ECONFIG, "`%s`: trigger token secret '%s' is not configured",
                        cmd->name, a->trigger_token_name ? a->trigger_token_name : "");
        goto out;
    }
    /* the ref and the variables, as `explain` shows them (pipeline_vars.c) */
    rc = w_pipeline_vars_build(p, &pv, err);
    if (rc != CQ_OK) goto out;
    ref = pv.ref;
    vars = pv.vars;

    g = calloc(1, sizeof(*g));
    if (!g) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    struct cq_err e2 = {0};
    g->t = t;
    g->cb = cb;
    g->opaque = opaque;
    g->wait = cmd->mode == CQ_MODE_TRIGGER_AND_WAIT;
    g->rid = strdup(req->id);
    g->project = strdup(a->project);
    g->label = strdup(p->label ? p->label : cmd->name);
    g->rtype = strdup(p->response_type ? p->response_type
                                       : (cmd->response_type ? cmd->response_type : "in_channel"));
    g->req_json = g->wait ? cq_request_encode(req, &e2) : strdup("");
    g->manual_job = strdup(a->manual_job ? a->manual_job : "");
    g->platform =
        strdup(p->owner_platform ? p->owner_platform : (req->platform ? req->platform : ""));
    g->user_id = strdup(p->owner_id ? p->owner_id : (req->user_id ? req->user_id : ""));
    g->user_name = strdup(req->user_name ? req->user_name : "");
    g->command = strdup(cmd->name);
    g->timeout_s = a->timeout_s > 0 ? a->timeout_s : 3600;
    g->progress_s = a->progress_interval_s > 0 ? a->progress_interval_s : 30;
    g->cancel_on_timeout = a->cancel_on_timeout;
    g->deadline = w_pipeline_now_ms() + (long long)g->timeout_s * 1000;
    if (!g->rid || !g->project || !g->label || !g->rtype || !g->req_json || !g->manual_job ||
        !g->platform || !g->user_id || !g->user_name || !g->command) {
        rc = g->req_json ? cq_err_set(err, CQ_ENOMEM, "out of memory")
                         : cq_err_set(err, e2.code ? e2.code : CQ_ENOMEM, "%s", e2.msg);
        goto out;
    }
    g->ref = strdup(ref);
    if (!g->ref) {
        rc = cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    g->sent_ms = w_pipeline_now_ms();
    rc = w_gitlab_trigger(t->gl, a->project, token, ref, vars, on_triggered, g, err);
    if (rc == CQ_OK) {
        t->refs++;
        g = NULL;
    }
out:
    trig_free(g);
    w_pipeline_vars_clear(&pv);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int w_pipeline_active(const struct w_pipeline_tracker *t) {
    return t ? t->n_checks : 0;
}

void w_pipeline_stats(const struct w_pipeline_tracker *t, struct w_pipeline_stats *out) {
    if (t && out) *out = t->st;
}

void w_pipeline_tracker_set_config(struct w_pipeline_tracker *t, const struct cq_config *cfg) {
    if (!t || !cfg) return;
    t->cfg = cfg; /* gitlab.base_url and worker.lease_ms need a restart (kept by the reload) */
    t->poll_min = cfg->worker.poll_min_ms > 0 ? cfg->worker.poll_min_ms : 2000;
    t->poll_max = cfg->worker.poll_max_ms >= t->poll_min ? cfg->worker.poll_max_ms : t->poll_min;
    t->tail_lines = cfg->worker.log_tail_lines > 0 ? cfg->worker.log_tail_lines : 20;
    t->tail_bytes = cfg->worker.log_tail_bytes > 0 ? (size_t)cfg->worker.log_tail_bytes : 4000;
    if (t->gl && w_gitlab_set_token(t->gl, cfg->gitlab.api_token.value) != CQ_OK)
        cq_error(NULL, "gitlab.api_token: not applied by the reload (line break or no memory)");
}

struct w_pipeline_tracker *w_pipeline_tracker_new(const struct w_pipeline_deps *d,
                                                  struct cq_err *err) {
    struct w_pipeline_tracker *t = NULL;
    if (!d || !d->loop || !d->cfg || !d->redis || !d->httpc || !d->producer || !d->owner_id) {
        cq_err_set(err, CQ_EINVAL, "pipeline tracker: missing dependency");
        return NULL;
    }
    const struct cq_config *cfg = d->cfg;
    if (!cfg->gitlab.base_url) {
        cq_err_set(err, CQ_ECONFIG, "gitlab.base_url is required for pipeline commands");
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) goto oom;
    t->loop = d->loop;
    t->cfg = cfg;
    t->redis = d->redis;
    t->producer = d->producer;
    t->owner = strdup(d->owner_id);
    t->prefix = strdup(cfg->redis.prefix ? cfg->redis.prefix : "chatops:");
    if (!t->owner || !t->prefix) goto oom;
    t->due_key = cq_strprintf("%spl:due", t->prefix);
    if (!t->due_key) goto oom;
    t->scan_ms = d->scan_ms > 0 ? d->scan_ms : 200;
    t->max_checks = d->max_checks > 0 ? d->max_checks : 512;
    t->lease_ms = cfg->worker.lease_ms > 0 ? cfg->worker.lease_ms : 15000;
    t->poll_min = cfg->worker.poll_min_ms > 0 ? cfg->worker.poll_min_ms : 2000;
    t->poll_max = cfg->worker.poll_max_ms >= t->poll_min ? cfg->worker.poll_max_ms : t->poll_min;
    t->tail_lines = cfg->worker.log_tail_lines > 0 ? cfg->worker.log_tail_lines : 20;
    t->tail_bytes = cfg->worker.log_tail_bytes > 0 ? (size_t)cfg->worker.log_tail_bytes : 4000;
    /* Each GitLab request must end well within the lease so checks finish under it. */
    int http_timeout = t->lease_ms / 3 > 10000 ? 10000 : t->lease_ms / 3;
    t->gl = w_gitlab_new(d->loop, d->httpc, cfg->gitlab.base_url, cfg->gitlab.api_token.value, 3,
                         500, http_timeout, err);
    if (!t->gl) goto fail;
    uv_timer_init(cq_loop_uv(d->loop), &t->scan_timer);
    uv_timer_init(cq_loop_uv(d->loop), &t->renew_timer);
    t->open_timers = 2;
    t->scan_timer.data = t;
    t->renew_timer.data = t;
    uv_timer_start(&t->scan_timer, pl_scan, (uint64_t)t->scan_ms, (uint64_t)t->scan_ms);
    uv_timer_start(&t->renew_timer, pl_renew, (uint64_t)(t->lease_ms / 3),
                   (uint64_t)(t->lease_ms / 3));
    return t;
oom:
    cq_err_set(err, CQ_ENOMEM, "out of memory");
fail:
    if (t) {
        free(t->owner);
        free(t->prefix);
        free(t->due_key);
        free(t);
    }
    return NULL;
}

static void tracker_release(struct w_pipeline_tracker *t) {
    while (t->owed) {
        struct pending_done *p = t->owed;
        t->owed = p->next;
        free(p->rid);
        free(p->pid);
        free(p->userkey);
        free(p);
    }
    free(t->owner);
    free(t->prefix);
    free(t->due_key);
    free(t);
}

static void timer_closed(uv_handle_t *h) {
    struct w_pipeline_tracker *t = h->data;
    t->open_timers--;
    t->refs++;
    pl_unref(t);
}

void w_pipeline_tracker_free(struct w_pipeline_tracker *t) {
    if (!t || t->closing) return;
    t->closing = true;
    t->refs++; /* nothing is released inside this function */
    uv_timer_stop(&t->scan_timer);
    uv_timer_stop(&t->renew_timer);
    uv_close((uv_handle_t *)&t->scan_timer, timer_closed);
    uv_close((uv_handle_t *)&t->renew_timer, timer_closed);
    while (t->lookups) /* waiting to look again: answered now (frees and unlists it) */
        outcome_unknown(t->lookups, "the worker stopped while looking for it");
    w_gitlab_free(t->gl); /* pending calls answer CQ_ESHUTDOWN: checks drop themselves */
    t->gl = NULL;
    pl_unref(t);
}
