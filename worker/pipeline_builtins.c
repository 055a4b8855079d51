/* pipeline_builtins: the `cancel` and `pipelines` built-ins on tracked pipelines: cancel
 * reads the pipeline's hash, checks who may cancel it and asks GitLab; pipelines lists the
 * user's waited-for pipelines from their per-user set. */
#include "pipeline_int.h"

/* ---- built-ins: cancel, pipelines ---------------------------------------------------- */

struct textop {
    struct w_pipeline_tracker *t;
    w_pipeline_text_cb cb;
    void *opaque;
    char *rid, *platform, *user_id;
    bool privileged;
    char *project, *web_url;
    long long pid;
};

static void textop_end(struct textop *o, const char *status, char *text) {
    o->cb(o->opaque, status, text ? text : "out of memory");
    free(text);
    free(o->rid);
    free(o->platform);
    free(o->user_id);
    free(o->project);
    free(o->web_url);
    free(o);
}

static void on_cancel_posted(void *opaque, const struct w_gitlab_reply *r) {
    struct textop *o = opaque;
    struct w_pipeline_tracker *t = o->t;
    if (r->rc == CQ_OK && r->status >= 200 && r->status < 300) {
        /* Check it at once: the final (canceled) follows from the tracker. */
        char now[24];
        snprintf(now, sizeof(now), "%lld", w_pipeline_now_ms());
        const char *argv[] = {"ZADD", t->due_key, "XX", now, o->rid};
        if (!t->closing) pl_redis_send(t, pl_on_ignore, t, 5, argv);
        pl_scan_soon(t);
        textop_end(o, "ok",
                   cq_strprintf("cancel requested for pipeline #%lld (request %s); its end will be "
                                "reported here: %s",
                                o->pid, o->rid, o->web_url));
    } else {
        textop_end(o, "failed", w_gitlab_error_text(r, "cancel the pipeline"));
    }
    pl_unref(t);
}

static void on_cancel_lookup(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct textop *o = opaque;
    struct w_pipeline_tracker *t = o->t;
    struct cq_err e = {0};
    if (pl_redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        textop_end(o, "failed",
                   cq_strprintf("cannot look the pipeline up right now (%s)", pl_why(r, err)));
        goto out;
    }
    const redisReply *pid = r->element[0], *proj = r->element[1], *pl = r->element[2],
                     *uid = r->element[3], *st = r->element[4], *url = r->element[5];
    if (pid->type != REDIS_REPLY_STRING || st->type != REDIS_REPLY_STRING ||
        strcmp(st->str, "waiting") != 0) {
        textop_end(o, "invalid",
                   cq_strprintf("no pipeline in flight for request `%.100s` (finished or unknown); "
                                "`pipelines` lists yours",
                                o->rid));
        goto out;
    }
    bool mine = pl->type == REDIS_REPLY_STRING && uid->type == REDIS_REPLY_STRING &&
                strcmp(pl->str, o->platform) == 0 && strcmp(uid->str, o->user_id) == 0;
    if (!mine && !o->privileged) {
        textop_end(o, "denied",
                   cq_strprintf("only the person who started request `%.100s` (or a role allowed "
                                "to cancel others' pipelines) may cancel it",
                                o->rid));
        goto out;
    }
    o->pid = strtoll(pid->str, NULL, 10);
    o->project = strdup(proj->type == REDIS_REPLY_STRING ? proj->str : "");
    o->web_url = strdup(url->type == REDIS_REPLY_STRING ? url->str : "");
    if (!o->project || !o->web_url) {
        textop_end(o, "failed", NULL);
        goto out;
    }
    if (w_gitlab_cancel(t->gl, o->project, o->pid, on_cancel_posted, o, &e) != CQ_OK) {
        textop_end(o, "failed", cq_strprintf("could not cancel: %s", e.msg));
        goto out;
    }
    t->refs++;
out:
    pl_unref(t);
}

static struct textop *textop_new(struct w_pipeline_tracker *t, const char *rid,
                                 const char *platform, const char *user_id,
                                 const struct cq_person *person, w_pipeline_text_cb cb,
                                 void *opaque) {
    struct textop *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->t = t;
    o->cb = cb;
    o->opaque = opaque;
    o->rid = strdup(rid ? rid : "");
    o->platform = strdup(platform ? platform : "");
    o->user_id = strdup(user_id ? user_id : "");
    o->privileged = w_pipeline_privileged(t->cfg, person);
    if (!o->rid || !o->platform || !o->user_id) {
        free(o->rid);
        free(o->platform);
        free(o->user_id);
        free(o);
        return NULL;
    }
    return o;
}

enum cq_rc w_pipeline_cancel(struct w_pipeline_tracker *t, const char *request_id,
                             const char *platform, const char *user_id,
                             const struct cq_person *person, w_pipeline_text_cb cb, void *opaque,
                             struct cq_err *err) {
    if (!t || !cb) return cq_err_set(err, CQ_EINVAL, "missing argument");
    if (!request_id || !*request_id || strlen(request_id) > CQ_ENV_MAX_ID ||
        strspn(request_id, "0123456789abcdefABCDEF-") != strlen(request_id))
        return cq_err_set(err, CQ_EINVAL, "usage: cancel REQUEST_ID (as listed by `pipelines`)");
    struct textop *o = textop_new(t, request_id, platform, user_id, person, cb, opaque);
    if (!o) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    char *hk = pl_hkey(t, request_id);
    const char *argv[] = {"HMGET", hk, "pid", "project", "platform", "user_id", "state", "web_url"};
    bool sent = hk && pl_redis_send(t, on_cancel_lookup, o, 8, argv);
    free(hk);
    if (!sent) {
        free(o->rid);
        free(o->platform);
        free(o->user_id);
        free(o);
        return cq_err_set(err, CQ_EREDIS, "cannot look the pipeline up right now");
    }
    return CQ_OK;
}

static void on_list(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct textop *o = opaque;
    struct w_pipeline_tracker *t = o->t;
    if (pl_redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        textop_end(o, "failed",
                   cq_strprintf("cannot list pipelines right now (%s)", pl_why(r, err)));
        goto out;
    }
    if (r->elements == 0) {
        textop_end(
            o, "ok",
            cq_strprintf("no pipelines in flight%s", o->privileged ? "" : " that you started"));
        goto out;
    }
    char *text = cq_strprintf("%zu pipeline%s in flight%s:", r->elements,
                              r->elements == 1 ? "" : "s", o->privileged ? "" : " (yours)");
    for (size_t i = 0; text && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 6) continue;
        char *line =
            cq_strprintf("\n• `%s` — pipeline #%s %s — %s%s%s — cancel with `cancel %s`",
                         e->element[1]->str ? e->element[1]->str : "",
                         e->element[2]->str ? e->element[2]->str : "",
                         e->element[3]->str ? e->element[3]->str : "",
                         e->element[4]->str ? e->element[4]->str : "", o->privileged ? " by " : "",
                         o->privileged && e->element[5]->str ? e->element[5]->str : "",
                         e->element[0]->str ? e->element[0]->str : "");
        if (!line || !pl_append(&text, line)) {
            free(line);
            free(text);
            text = NULL;
            break;
        }
        free(line);
    }
    textop_end(o, "ok", text);
out:
    pl_unref(t);
}

enum cq_rc w_pipeline_list(struct w_pipeline_tracker *t, const char *platform, const char *user_id,
                           const struct cq_person *person, w_pipeline_text_cb cb, void *opaque,
                           struct cq_err *err) {
    if (!t || !cb) return cq_err_set(err, CQ_EINVAL, "missing argument");
    struct textop *o = textop_new(t, "", platform, user_id, person, cb, opaque);
    if (!o) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    char *uk = pl_ukey(t, platform, user_id);
    char lim[8];
    snprintf(lim, sizeof(lim), "%d", LIST_MAX);
    const char *argv[] = {"EVAL",
                          PL_LIST_LUA,
                          "1",
                          o->privileged ? t->due_key : uk,
                          o->privileged ? "zset" : "set",
                          t->prefix,
                          lim};
    bool sent = uk && pl_redis_send(t, on_list, o, 7, argv);
    free(uk);
    if (!sent) {
        free(o->rid);
        free(o->platform);
        free(o->user_id);
        free(o);
        return cq_err_set(err, CQ_EREDIS, "cannot list pipelines right now");
    }
    return CQ_OK;
}
