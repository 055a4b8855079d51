/* pipeline_check: the check loop of a tracked pipeline. A claimed check asks GitLab for the
 * pipeline's status (polling with backoff; a pipeline hook makes it due at once), sends
 * progress, and on a final status stores the final under the lease, produces it and audits
 * it; a failed pipeline's final carries the tails of its failed jobs' logs. Timeouts cancel
 * the pipeline when asked to. */
#include "locks.h"
#include "pipeline_int.h"

/* ---- checks: claim -> read -> ask GitLab -> progress / reschedule / final ---------- */

void pl_check_free(struct check *c) {
    if (!c) return;
    struct w_pipeline_tracker *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else if (t->checks == c)
        t->checks = c->next;
    if (c->next) c->next->prev = c->prev;
    t->n_checks--;
    cq_gauge_set(pl_gauge_active(), t->n_checks);
    free(c->rid);
    free(c->req_json);
    free(c->label);
    free(c->rtype);
    free(c->project);
    free(c->web_url);
    free(c->status);
    free(c->reported);
    free(c->state);
    free(c->final);
    free(c->pid_s);
    free(c->platform);
    free(c->user_id);
    free(c->cur);
    free(c->ftext);
    cJSON_Delete(c->jobs_doc);
    free(c);
}

struct check *pl_check_new(struct w_pipeline_tracker *t, const char *rid, size_t len) {
    struct check *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->rid = strndup(rid, len);
    if (!c->rid) {
        free(c);
        return NULL;
    }
    c->t = t;
    c->next = t->checks;
    if (t->checks) t->checks->prev = c;
    t->checks = c;
    t->n_checks++;
    cq_gauge_set(pl_gauge_active(), t->n_checks);
    return c;
}

void pl_scan_soon(struct w_pipeline_tracker *t) {
    if (!t->closing) uv_timer_start(&t->scan_timer, pl_scan, 0, (uint64_t)t->scan_ms);
}

void pl_on_ignore(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct w_pipeline_tracker *t = opaque;
    if (pl_redis_bad(r, err) && !(err && err->code == CQ_ESHUTDOWN))
        cq_debug(NULL, "pipeline tracker: redis: %s", pl_why(r, err));
    pl_unref(t);
}

/* Drops the check; the lease lapses and the entry comes back due for any worker. */
void pl_check_drop(struct check *c, const char *reason) {
    if (reason)
        cq_warn(c->rid, "pipeline check dropped (%s); it resumes when the lease lapses", reason);
    pl_check_free(c);
}

static void finalize(struct check *c, const char *status, char *text);

static void on_final_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                               int64_t offset) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    (void)partition;
    (void)offset;
    if (rc != CQ_OK) {
        /* Stored as state=final: whoever claims it next (maybe us) sends it again. */
        pl_check_drop(c, errstr ? errstr : cq_rc_str(rc));
    } else {
        t->st.finals++;
        pl_count("chatops_worker_pipeline_finals_total", "Final pipeline results delivered", NULL);
        cq_info(c->rid, "pipeline #%lld final delivered", c->pid);
        if (!t->closing) pl_audit_final(c);
        if (!t->closing) w_locks_release_req(t->redis, t->prefix, c->rid); /* locks.c */
        if (!t->closing) pl_owe_done(c);
        pl_check_free(c);
    }
    pl_unref(t);
}

void pl_produce_stored_final(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (!c->final || !*c->final) {
        pl_check_drop(c, "state final without a stored result");
        return;
    }
    if (cq_producer_send(t->producer, t->cfg->kafka.topic_results, c->rid, strlen(c->rid), c->final,
                         strlen(c->final), NULL, on_final_delivered, c, &err) != CQ_OK) {
        pl_check_drop(c, err.msg);
        return;
    }
    t->refs++;
}

static void on_final_stored(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (pl_redis_bad(r, err) || r->type != REDIS_REPLY_INTEGER) {
        pl_check_drop(c, t->closing ? NULL : pl_why(r, err));
    } else if (r->integer != 1) {
        cq_warn(c->rid, "pipeline final already claimed elsewhere; not sending");
        pl_check_free(c);
    } else {
        pl_produce_stored_final(c);
    }
    pl_unref(t);
}

/* Stores the final under the lease (the exactly-once step), then produces it. */
static void finalize(struct check *c, const char *status, char *text) {
    struct w_pipeline_tracker *t = c->t;
    /* a job's log tail may print what a secret went into (a variable, a header) */
    text = cq_config_redact(t->cfg, text);
    if (!text) {
        pl_check_drop(c, "out of memory");
        return;
    }
    /* job names and log tails come from GitLab: made valid UTF-8, cut on a character */
    char *valid = cq_utf8_clean(text, strlen(text), MAX_TEXT);
    free(text);
    if (!valid) {
        pl_check_drop(c, "out of memory");
        return;
    }
    const char *ps = c->cur ? c->cur : c->status;
    char *res = pl_encode_result(c, "final", status, valid, 0, ps);
    free(valid);
    if (!res) {
        pl_check_drop(c, "cannot encode the final result");
        return;
    }
    free(c->final);
    c->final = res;
    char *hk = pl_hkey(t, c->rid), *lk = pl_lkey(t, c->rid);
    const char *argv[] = {"EVAL", PL_FINAL_LUA, "2", hk, lk, t->owner, c->final};
    bool sent = hk && lk && pl_redis_send(t, on_final_stored, c, 7, argv);
    free(hk);
    free(lk);
    if (!sent) pl_check_drop(c, "redis command not accepted");
}

/* ---- failed: job names and log tails ------------------------------------------------ */

static void next_trace(struct check *c);

static void finish_failed(struct check *c) {
    char *text = c->ftext;
    c->ftext = NULL;
    finalize(c, "failed", text);
}

/* Appends a, b, c, d to the NUL-terminated buf (size bytes): names from GitLab, made valid
 * UTF-8 and cut on a character boundary ("…") when the buffer is full. */
static void append_cut(char *buf, size_t size, const char *a, const char *b, const char *c,
                       const char *d) {
    const char *parts[] = {a, b, c, d};
    size_t used = strlen(buf);
    for (size_t i = 0; i < 4 && used + 1 < size; i++) {
        bool cut = false;
        used += cq_utf8_copy(buf + used, size - used, parts[i], strlen(parts[i]), &cut);
        if (cut) break;
    }
}

bool pl_append(char **buf, const char *add) {
    size_t a = *buf ? strlen(*buf) : 0, b = strlen(add);
    char *n = realloc(*buf, a + b + 1);
    if (!n) return false;
    memcpy(n + a, add, b + 1);
    *buf = n;
    return true;
}

static void on_trace(void *opaque, const struct w_gitlab_reply *r) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        pl_check_drop(c, NULL);
        goto out;
    }
    const cJSON *job = cJSON_GetArrayItem(c->failed_jobs, c->job_i);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "name");
    char *part = NULL;
    if (r->rc == CQ_OK && r->status == 200) {
        char *tail = w_gitlab_log_tail(r->body, r->body_len, t->tail_lines, t->tail_bytes);
        part = tail ? cq_strprintf("\n`%s` log (last lines):\n```\n%s\n```",
                                   cJSON_IsString(name) ? name->valuestring : "?", tail)
                    : NULL;
        free(tail);
    } else {
        part = cq_strprintf("\n`%s` log unavailable (HTTP %ld)",
                            cJSON_IsString(name) ? name->valuestring : "?", r->status);
    }
    if (!part || !pl_append(&c->ftext, part)) {
        free(part);
        pl_check_drop(c, "out of memory");
        goto out;
    }
    free(part);
    c->job_i++;
    next_trace(c);
out:
    pl_unref(t);
}

static void next_trace(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (c->job_i >= c->n_jobs) {
        finish_failed(c);
        return;
    }
    const cJSON *job = cJSON_GetArrayItem(c->failed_jobs, c->job_i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(job, "id");
    if (!cJSON_IsNumber(id) ||
        w_gitlab_trace(t->gl, c->project, (long long)id->valuedouble, on_trace, c, &err) != CQ_OK) {
        c->job_i++;
        next_trace(c);
        return;
    }
    t->refs++;
}

static void on_failed_jobs(void *opaque, const struct w_gitlab_reply *r) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        pl_check_drop(c, NULL);
        goto out;
    }
    c->ftext = cq_strprintf("pipeline #%lld failed: %s", c->pid, c->web_url);
    if (!c->ftext) {
        pl_check_drop(c, "out of memory");
        goto out;
    }
    if (r->rc != CQ_OK || r->status != 200 || !cJSON_IsArray(r->json)) {
        char *e = w_gitlab_error_text(r, "list the failed jobs");
        if (e) {
            pl_append(&c->ftext, "\n");
            pl_append(&c->ftext, e);
        }
        free(e);
        finish_failed(c);
        goto out;
    }
    /* Keep our own copy: the reply is borrowed. */
    c->jobs_doc = cJSON_CreateArray();
    char names[1024] = "";
    int n = 0;
    const cJSON *job;
    cJSON_ArrayForEach(job, r->json) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(job, "status");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(job, "name");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "failed") != 0) continue;
        const cJSON *af = cJSON_GetObjectItemCaseSensitive(job, "allow_failure");
        if (cJSON_IsTrue(af)) continue;
        append_cut(names, sizeof(names), n ? ", " : "", "`",
                   cJSON_IsString(nm) ? nm->valuestring : "?", "`");
        if (n < MAX_FAILED_JOBS && c->jobs_doc)
            cJSON_AddItemToArray(c->jobs_doc, cJSON_Duplicate(job, 1));
        n++;
    }
    if (n > 0) {
        char *line = cq_strprintf("\nfailed job%s: %s", n > 1 ? "s" : "", names);
        if (line) pl_append(&c->ftext, line);
        free(line);
    }
    c->failed_jobs = c->jobs_doc;
    c->n_jobs = c->jobs_doc ? cJSON_GetArraySize(c->jobs_doc) : 0;
    c->job_i = 0;
    next_trace(c);
out:
    pl_unref(t);
}

/* ---- timeout ------------------------------------------------------------------------- */

static void on_timeout_cancel(void *opaque, const struct w_gitlab_reply *r) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        pl_check_drop(c, NULL);
        goto out;
    }
    char *text;
    if (r->rc == CQ_OK && r->status >= 200 && r->status < 300) {
        text = cq_strprintf("pipeline #%lld did not finish within %d s (last status %s); it was "
                            "canceled: %s",
                            c->pid, c->timeout_s, c->cur ? c->cur : c->status, c->web_url);
    } else {
        char *e = w_gitlab_error_text(r, "cancel it");
        text = cq_strprintf("pipeline #%lld did not finish within %d s (last status %s); %s: %s",
                            c->pid, c->timeout_s, c->cur ? c->cur : c->status,
                            e ? e : "could not cancel it", c->web_url);
        free(e);
    }
    finalize(c, "timeout", text);
out:
    pl_unref(t);
}

static void timed_out(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (c->cancel_on_timeout &&
        w_gitlab_cancel(t->gl, c->project, c->pid, on_timeout_cancel, c, &err) == CQ_OK) {
        t->refs++;
        return;
    }
    finalize(c, "timeout",
             cq_strprintf("pipeline #%lld did not finish within %d s (last status %s); it keeps "
                          "running, follow it here: %s",
                          c->pid, c->timeout_s, c->cur ? c->cur : c->status, c->web_url));
}

/* ---- progress ------------------------------------------------------------------------ */

static void send_progress(struct check *c, const char *detail) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    long long seq = c->seq + 1;
    char *text = cq_strprintf("pipeline #%lld %s%s%s: %s", c->pid, c->cur, detail ? " — " : "",
                              detail ? detail : "", c->web_url);
    char *res = text ? pl_encode_result(c, "progress", "ok", text, (int)seq, c->cur) : NULL;
    free(text);
    if (res && cq_producer_send(t->producer, t->cfg->kafka.topic_results, c->rid, strlen(c->rid),
                                res, strlen(res), NULL, NULL, NULL, &err) == CQ_OK) {
        t->st.progress++;
        pl_count("chatops_worker_pipeline_progress_total", "Progress results sent", NULL);
    } else {
        cq_warn(c->rid, "progress not sent: %s", res ? err.msg : "encode failed");
    }
    free(res);
    pl_reschedule(c, true, true, seq);
}

static void on_running_jobs(void *opaque, const struct w_gitlab_reply *r) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        pl_check_drop(c, NULL);
        goto out;
    }
    char detail[512] = "";
    if (r->rc == CQ_OK && r->status == 200 && cJSON_IsArray(r->json)) {
        const cJSON *job;
        int n = 0;
        cJSON_ArrayForEach(job, r->json) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(job, "status");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(job, "name");
            const cJSON *sg = cJSON_GetObjectItemCaseSensitive(job, "stage");
            if (!cJSON_IsString(st) || strcmp(st->valuestring, "running") != 0 ||
                !cJSON_IsString(nm))
                continue;
            append_cut(detail, sizeof(detail), n ? ", " : "job ", "`", nm->valuestring, "`");
            if (cJSON_IsString(sg))
                append_cut(detail, sizeof(detail), " (stage ", sg->valuestring, ")", "");
            n++;
        }
    }
    send_progress(c, detail[0] ? detail : NULL);
out:
    pl_unref(t);
}

/* ---- status ------------------------------------------------------------------------- */

static void on_status(void *opaque, const struct w_gitlab_reply *r) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    long long now = w_pipeline_now_ms();
    if (r->rc == CQ_ESHUTDOWN || t->closing) {
        pl_check_drop(c, NULL);
        goto out;
    }
    t->st.checks++;
    const cJSON *st = r->json ? cJSON_GetObjectItemCaseSensitive(r->json, "status") : NULL;
    if (r->rc == CQ_OK && r->status == 404) {
        finalize(c, "failed",
                 cq_strprintf("pipeline #%lld no longer exists in GitLab (HTTP 404): %s", c->pid,
                              c->web_url));
        goto out;
    }
    if (r->rc != CQ_OK || r->status != 200 || !cJSON_IsString(st)) {
        char *e = w_gitlab_error_text(r, "read the pipeline status");
        cq_warn(c->rid, "%s", e ? e : "pipeline status unavailable");
        free(e);
        if (c->deadline > 0 && now >= c->deadline)
            timed_out(c);
        else
            pl_reschedule(c, false, false, c->seq);
        goto out;
    }
    free(c->cur);
    c->cur = strdup(st->valuestring);
    if (!c->cur) {
        pl_check_drop(c, "out of memory");
        goto out;
    }
    const char *s = c->cur;
    if (strcmp(s, "success") == 0) {
        finalize(c, "ok", cq_strprintf("pipeline #%lld succeeded: %s", c->pid, c->web_url));
    } else if (strcmp(s, "failed") == 0) {
        if (w_gitlab_jobs(t->gl, c->project, c->pid, "failed", on_failed_jobs, c, &err) == CQ_OK)
            t->refs++;
        else
            finalize(c, "failed", cq_strprintf("pipeline #%lld failed: %s", c->pid, c->web_url));
    } else if (strcmp(s, "canceled") == 0) {
        finalize(c, "failed", cq_strprintf("pipeline #%lld was canceled: %s", c->pid, c->web_url));
    } else if (strcmp(s, "skipped") == 0) {
        finalize(c, "failed",
                 cq_strprintf("pipeline #%lld was skipped (no job ran): %s", c->pid, c->web_url));
    } else if (strcmp(s, "manual") == 0) {
        finalize(c, "ok",
                 cq_strprintf("pipeline #%lld is waiting for a manual job — it needs a click: %s",
                              c->pid, c->web_url));
    } else if (c->deadline > 0 && now >= c->deadline) {
        timed_out(c);
    } else if (strcmp(s, c->reported) != 0 && now >= c->next_progress) {
        if (strcmp(s, "running") == 0 &&
            w_gitlab_jobs(t->gl, c->project, c->pid, NULL, on_running_jobs, c, &err) == CQ_OK)
            t->refs++;
        else
            send_progress(c, NULL);
    } else {
        pl_reschedule(c, strcmp(s, c->status) != 0, false, c->seq);
    }
out:
    pl_unref(t);
}

void pl_poll_status(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (w_gitlab_pipeline(t->gl, c->project, c->pid, on_status, c, &err) != CQ_OK) {
        pl_check_drop(c, err.msg);
        return;
    }
    t->refs++;
}

/* ---- fast path: pipeline hooks ----------------------------------------------------- */

static void on_hook(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct w_pipeline_tracker *t = opaque;
    if (!pl_redis_bad(r, err) && r->type == REDIS_REPLY_STRING) {
        t->st.hooks++;
        pl_count("chatops_worker_pipeline_hooks_total",
                 "Pipeline hooks that matched a tracked pipeline", NULL);
        cq_debug(r->str, "pipeline hook: checking now");
        pl_scan_soon(t);
    }
    pl_unref(t);
}

bool w_pipeline_on_hook(struct w_pipeline_tracker *t, const char *json, size_t len) {
    bool ok = false;
    if (!t || t->closing || !json) return false;
    cJSON *doc = cJSON_ParseWithLength(json, len);
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(doc, "object_attributes");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(oa, "id");
    if (cJSON_IsNumber(id) && id->valuedouble > 0) {
        char pid[32], now[24];
        snprintf(pid, sizeof(pid), "%lld", (long long)id->valuedouble);
        snprintf(now, sizeof(now), "%lld", w_pipeline_now_ms());
        char *ik = pl_ikey(t, pid);
        const char *argv[] = {"EVAL", PL_HOOK_LUA, "2", ik, t->due_key, now, t->prefix};
        ok = ik && pl_redis_send(t, on_hook, t, 7, argv);
        free(ik);
    }
    cJSON_Delete(doc);
    return ok;
}
