/* pipeline: triggers GitLab pipelines and tracks the waited-for ones in Redis (hash per
 * pipeline, due-time sorted set, owner lease), claiming due entries with Lua so that two
 * workers never check one pipeline at once; produces progress and one final result per
 * pipeline to chatops.results. Everything runs on the worker's loop (hiredis async, curl
 * multi, librdkafka delivery reports); see pipeline.h for the keys and the wiring. */
#include "pipeline.h"
#include "strutil.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gitlab.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"

#define MAX_FAILED_JOBS 5
#define MAX_TEXT 60000
#define LIST_MAX 50

/* KEYS: hash, due, idx, userset; ARGV: rid, due score, field, value, ... */
static const char REGISTER_LUA[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
                                   "redis.call('HMSET', KEYS[1], unpack(ARGV, 3))\n"
                                   "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
                                   "redis.call('SET', KEYS[3], ARGV[1])\n"
                                   "redis.call('SADD', KEYS[4], ARGV[1])\n"
                                   "return 1\n";

/* Claims due, unleased entries. KEYS: due; ARGV: now, owner, lease_ms, prefix, limit.
 * A claimed entry's due time moves to now + lease: if the claimer dies, it is due again
 * right when its lease has lapsed. An entry leased by another (live) worker is moved
 * past that lease so it does not crowd the scan. */
static const char CLAIM_LUA[] =
    "local now = tonumber(ARGV[1]) local lease = tonumber(ARGV[3])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, "
    "tonumber(ARGV[5]))\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local lk = ARGV[4] .. 'pl:lease:' .. id\n"
    "  if redis.call('SET', lk, ARGV[2], 'PX', lease, 'NX') then\n"
    "    redis.call('ZADD', KEYS[1], now + lease, id)\n"
    "    out[#out + 1] = id\n"
    "  else\n"
    "    local ttl = redis.call('PTTL', lk)\n"
    "    if ttl < 0 then ttl = lease end\n"
    "    redis.call('ZADD', KEYS[1], now + ttl, id)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: hash, due, lease; ARGV: owner, rid, next due, now, field, value, ...
 * A hook that arrived while the entry was being checked ("kick") makes it due now. */
static const char RESCHEDULE_LUA[] =
    "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('ZREM', KEYS[2], ARGV[2]) redis.call('DEL', KEYS[3]) return 0 end\n"
    "local due = ARGV[3]\n"
    "if redis.call('HGET', KEYS[1], 'kick') then due = ARGV[4] "
    "redis.call('HDEL', KEYS[1], 'kick') end\n"
    "if #ARGV > 4 then redis.call('HMSET', KEYS[1], unpack(ARGV, 5)) end\n"
    "redis.call('ZADD', KEYS[2], due, ARGV[2])\n"
    "redis.call('DEL', KEYS[3])\n"
    "return 1\n";

/* The one final: KEYS: hash, lease; ARGV: owner, result JSON. 1 = ours to produce. */
static const char FINAL_LUA[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end\n"
    "if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return -1 end\n"
    "redis.call('HMSET', KEYS[1], 'state', 'final', 'final', ARGV[2])\n"
    "return 1\n";

/* After Kafka acknowledged the final. KEYS: hash, due, lease, idx, userset; ARGV: rid, owner */
static const char DONE_LUA[] =
    "redis.call('DEL', KEYS[1]) redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end\n"
    "redis.call('SREM', KEYS[5], ARGV[1])\n"
    "if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end\n"
    "return 1\n";

/* KEYS: lease; ARGV: owner, ms */
static const char RENEW_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0\n";

/* Webhook: KEYS: idx, due; ARGV: now, prefix. Returns the request id or false. */
static const char HOOK_LUA[] =
    "local id = redis.call('GET', KEYS[1])\n"
    "if not id then return false end\n"
    "if not redis.call('ZSCORE', KEYS[2], id) then return false end\n"
    "redis.call('HSET', ARGV[2] .. 'pl:' .. id, 'kick', '1')\n"
    "local lk = ARGV[2] .. 'pl:lease:' .. id\n"
    "if redis.call('EXISTS', lk) == 0 then redis.call('ZADD', KEYS[2], ARGV[1], id) end\n"
    "return id\n";

/* KEYS: userset or due; ARGV: 'set'|'zset', prefix, limit */
static const char LIST_LUA[] =
    "local lim = tonumber(ARGV[3]) local ids\n"
    "if ARGV[1] == 'set' then ids = redis.call('SMEMBERS', KEYS[1])\n"
    "else ids = redis.call('ZRANGE', KEYS[1], 0, lim - 1) end\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  if #out >= lim then break end\n"
    "  local h = redis.call('HMGET', ARGV[2] .. 'pl:' .. id, 'label', 'pid', 'status', "
    "'web_url', 'user_name', 'state')\n"
    "  if h[2] and h[6] == 'waiting' then\n"
    "    out[#out + 1] = {id, h[1] or '', h[2], h[3] or '', h[4] or '', h[5] or ''} end\n"
    "end\n"
    "return out\n";

struct pending_done; /* a final acknowledged by Kafka whose Redis clean-up is owed */

struct cq_pipeline_tracker {
    struct cq_loop *loop;
    const struct cq_config *cfg;
    struct cq_redis *redis;
    struct cq_producer *producer;
    struct cq_gitlab *gl;
    char *owner, *prefix, *due_key;
    uv_timer_t scan_timer, renew_timer;
    int open_timers;
    bool closing, scanning, rescan;
    int refs; /* async callbacks outstanding that reference the tracker */
    struct check *checks;
    int n_checks, max_checks, scan_ms, lease_ms, poll_min, poll_max, tail_lines;
    size_t tail_bytes;
    struct pending_done *owed;
    struct trig *lookups; /* triggers waiting to look their pipeline up again */
    struct cq_pipeline_stats st;
};

struct pending_done {
    struct cq_pipeline_tracker *t;
    char *rid, *pid, *userkey;
    struct pending_done *next;
    bool sending;
};

struct check {
    struct cq_pipeline_tracker *t;
    struct check *prev, *next;
    char *rid;
    /* from the hash (owned) */
    char *req_json, *label, *rtype, *project, *web_url, *status, *reported, *state, *final;
    char *pid_s, *platform, *user_id;
    long long pid, deadline, next_progress, seq;
    int poll_ms, progress_s, timeout_s;
    bool cancel_on_timeout;
    /* this check */
    char *cur;           /* status now */
    const char *fstatus; /* final result status */
    char *ftext;         /* final text being built */
    cJSON *failed_jobs;  /* borrowed items of jobs_doc */
    cJSON *jobs_doc;
    int job_i, n_jobs;
};

/* ---- small helpers ---------------------------------------------------------------- */

long long cq_pipeline_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tracker_release(struct cq_pipeline_tracker *t);

static void unref(struct cq_pipeline_tracker *t) {
    t->refs--;
    if (t->closing && t->refs <= 0 && t->open_timers == 0) tracker_release(t);
}

static bool redis_send(struct cq_pipeline_tracker *t, cq_redis_cb cb, void *op, int argc,
                       const char **argv) {
    if (cq_redis_commandargv(t->redis, cb, op, argc, argv, NULL) != CQ_OK) return false;
    t->refs++;
    return true;
}

static bool redis_bad(const redisReply *r, const struct cq_err *err) {
    return err || !r || r->type == REDIS_REPLY_ERROR;
}

static const char *why(const redisReply *r, const struct cq_err *err) {
    if (err) return err->msg[0] ? err->msg : cq_rc_str(err->code);
    return r && r->str ? r->str : "no reply";
}

static char *hkey(const struct cq_pipeline_tracker *t, const char *rid) {
    return cq_strprintf("%spl:%s", t->prefix, rid);
}
static char *lkey(const struct cq_pipeline_tracker *t, const char *rid) {
    return cq_strprintf("%spl:lease:%s", t->prefix, rid);
}
static char *ikey(const struct cq_pipeline_tracker *t, const char *pid) {
    return cq_strprintf("%spl:idx:%s", t->prefix, pid);
}
static char *ukey(const struct cq_pipeline_tracker *t, const char *platform, const char *user) {
    return cq_strprintf("%spl:user:%s:%s", t->prefix, platform ? platform : "", user ? user : "");
}

static struct cq_gauge *gauge_active(void) {
    return cq_gauge_get("chatops_worker_pipelines_checking", "Pipelines being checked right now",
                        NULL);
}

static void count(const char *name, const char *help, const char *labels) {
    cq_counter_inc(cq_counter_get(name, help, labels));
}

bool cq_pipeline_privileged(const struct cq_config *cfg, const struct cq_person *person) {
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

/* Encodes a result for the tracked request. Caller frees. */
static char *encode_result(const struct check *c, const char *step, const char *status,
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
    out = cq_result_encode(&r, &err);
    if (!out && err.code != CQ_ENOMEM) {
        /* Never a silent stop: a short result that names the request goes out instead. */
        char why[sizeof(err.msg) + 160];
        cq_error(c->rid, "cannot encode result: %s; sending a short one instead", err.msg);
        count("chatops_worker_encode_failures_total",
              "Results that could not be encoded and were answered as failed", NULL);
        snprintf(why, sizeof(why), "could not encode the result: %s (req %s)", err.msg, c->rid);
        if (strcmp(step, "final") == 0) r.status = "failed";
        r.text = why;
        r.command = NULL;
        r.pipeline.web_url = r.pipeline.status = NULL; /* from GitLab: may be the cause */
        cq_err_clear(&err);
        out = cq_result_encode(&r, &err);
    }
    if (!out) cq_error(c->rid, "cannot encode result: %s", err.msg);
    cq_request_clear(&req);
    free(valid);
    return out;
}

/* ---- checks: claim -> read -> ask GitLab -> progress / reschedule / final ---------- */

static void check_free(struct check *c) {
    if (!c) return;
    struct cq_pipeline_tracker *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else if (t->checks == c)
        t->checks = c->next;
    if (c->next) c->next->prev = c->prev;
    t->n_checks--;
    cq_gauge_set(gauge_active(), t->n_checks);
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

static struct check *check_new(struct cq_pipeline_tracker *t, const char *rid, size_t len) {
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
    cq_gauge_set(gauge_active(), t->n_checks);
    return c;
}

static void scan(uv_timer_t *timer);

static void scan_soon(struct cq_pipeline_tracker *t) {
    if (!t->closing) uv_timer_start(&t->scan_timer, scan, 0, (uint64_t)t->scan_ms);
}

static void on_ignore(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct cq_pipeline_tracker *t = opaque;
    if (redis_bad(r, err) && !(err && err->code == CQ_ESHUTDOWN))
        cq_debug(NULL, "pipeline tracker: redis: %s", why(r, err));
    unref(t);
}

/* Drops the check; the lease lapses and the entry comes back due for any worker. */
static void check_drop(struct check *c, const char *reason) {
    if (reason)
        cq_warn(c->rid, "pipeline check dropped (%s); it resumes when the lease lapses", reason);
    check_free(c);
}

static void poll_status(struct check *c);
static void finalize(struct check *c, const char *status, char *text);
static void produce_stored_final(struct check *c);

static const char *hfield(const redisReply *r, const char *name) {
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1]->str : NULL;
    return NULL;
}

static char *dupf(const redisReply *r, const char *name) {
    const char *v = hfield(r, name);
    return strdup(v ? v : "");
}

static long long numf(const redisReply *r, const char *name) {
    const char *v = hfield(r, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

static struct pending_done *owed_find(struct cq_pipeline_tracker *t, const char *rid) {
    for (struct pending_done *p = t->owed; p; p = p->next)
        if (strcmp(p->rid, rid) == 0) return p;
    return NULL;
}

static void send_done(struct cq_pipeline_tracker *t, struct pending_done *p);

static void on_missing_cleaned(void *opaque, const redisReply *r, const struct cq_err *err) {
    (void)r;
    (void)err;
    unref(opaque);
}

static void on_hash(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (t->closing || redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        check_drop(c, t->closing ? NULL : why(r, err));
        goto out;
    }
    if (r->elements == 0) { /* finished meanwhile: forget the stale due entry */
        char *lk = lkey(t, c->rid);
        if (lk) {
            const char *argv[] = {"ZREM", t->due_key, c->rid};
            redis_send(t, on_missing_cleaned, t, 3, argv);
            const char *argv2[] = {"DEL", lk};
            redis_send(t, on_missing_cleaned, t, 2, argv2);
        }
        free(lk);
        check_free(c);
        goto out;
    }
    c->req_json = dupf(r, "req");
    c->label = dupf(r, "label");
    c->rtype = dupf(r, "rtype");
    c->project = dupf(r, "project");
    c->web_url = dupf(r, "web_url");
    c->status = dupf(r, "status");
    c->reported = dupf(r, "reported");
    c->state = dupf(r, "state");
    c->final = dupf(r, "final");
    c->pid_s = dupf(r, "pid");
    c->platform = dupf(r, "platform");
    c->user_id = dupf(r, "user_id");
    if (!c->req_json || !c->label || !c->rtype || !c->project || !c->web_url || !c->status ||
        !c->reported || !c->state || !c->final || !c->pid_s || !c->platform || !c->user_id) {
        check_drop(c, "out of memory");
        goto out;
    }
    c->pid = strtoll(c->pid_s, NULL, 10);
    c->deadline = numf(r, "deadline");
    c->next_progress = numf(r, "next_progress");
    c->seq = numf(r, "seq");
    c->poll_ms = (int)numf(r, "poll_ms");
    c->progress_s = (int)numf(r, "progress_s");
    c->timeout_s = (int)numf(r, "timeout_s");
    c->cancel_on_timeout = numf(r, "cancel_on_timeout") != 0;
    if (c->poll_ms < t->poll_min) c->poll_ms = t->poll_min;
    if (strcmp(c->state, "final") == 0) {
        struct pending_done *p = owed_find(t, c->rid);
        if (p) { /* we produced it; only the clean-up is owed */
            check_free(c);
            send_done(t, p);
        } else {
            t->st.takeovers++;
            produce_stored_final(c);
        }
        goto out;
    }
    poll_status(c);
out:
    unref(t);
}

static void on_claim(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct cq_pipeline_tracker *t = opaque;
    t->scanning = false;
    if (t->closing) goto out;
    if (redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        if (!(err && err->code == CQ_EREDIS))
            cq_warn(NULL, "pipeline tracker: claim failed: %s", why(r, err));
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        struct check *c = check_new(t, e->str, e->len);
        if (!c) break; /* the lease lapses; claimed again later */
        char *hk = hkey(t, c->rid);
        const char *argv[] = {"HGETALL", hk};
        bool sent = hk && redis_send(t, on_hash, c, 2, argv);
        free(hk);
        if (!sent) check_drop(c, "redis command not accepted");
    }
    if (t->rescan || (int)r->elements > 0) {
        t->rescan = false;
        if (t->n_checks < t->max_checks) scan_soon(t);
    }
out:
    unref(t);
}

static void scan(uv_timer_t *timer) {
    struct cq_pipeline_tracker *t = timer->data;
    if (t->closing) return;
    for (struct pending_done *p = t->owed; p; p = p->next)
        if (!p->sending) send_done(t, p);
    if (t->scanning) {
        t->rescan = true;
        return;
    }
    int limit = t->max_checks - t->n_checks;
    if (limit <= 0 || !cq_redis_connected(t->redis)) return;
    char now[24], lease[16], lim[16];
    snprintf(now, sizeof(now), "%lld", cq_pipeline_now_ms());
    snprintf(lease, sizeof(lease), "%d", t->lease_ms);
    snprintf(lim, sizeof(lim), "%d", limit > 200 ? 200 : limit);
    const char *argv[] = {"EVAL", CLAIM_LUA, "1", t->due_key, now, t->owner, lease, t->prefix, lim};
    if (redis_send(t, on_claim, t, 9, argv)) t->scanning = true;
}

static void renew(uv_timer_t *timer) {
    struct cq_pipeline_tracker *t = timer->data;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", t->lease_ms);
    for (struct check *c = t->checks; c; c = c->next) {
        char *lk = lkey(t, c->rid);
        const char *argv[] = {"EVAL", RENEW_LUA, "1", lk, t->owner, ms};
        if (lk) redis_send(t, on_ignore, t, 6, argv);
        free(lk);
    }
}

/* ---- reschedule ---------------------------------------------------------------------- */

static void on_rescheduled(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (redis_bad(r, err))
        check_drop(c, t->closing ? NULL : why(r, err));
    else
        check_free(c);
    if (!redis_bad(r, err) && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        cq_debug(NULL, "pipeline tracker: lease lost before reschedule");
    scan_soon(t); /* a kick may have made it due at once */
    unref(t);
}

/* Writes the new state and the next check time and releases the lease. */
static void reschedule(struct check *c, bool changed, bool reported, long long seq) {
    struct cq_pipeline_tracker *t = c->t;
    long long now = cq_pipeline_now_ms();
    if (changed)
        c->poll_ms = t->poll_min;
    else {
        c->poll_ms *= 2;
        if (c->poll_ms > t->poll_max) c->poll_ms = t->poll_max;
    }
    long long next = now + c->poll_ms;
    if (c->deadline > 0 && next > c->deadline) next = c->deadline;
    char s_next[24], s_now[24], s_poll[16], s_np[24], s_seq[24];
    snprintf(s_next, sizeof(s_next), "%lld", next);
    snprintf(s_now, sizeof(s_now), "%lld", now);
    snprintf(s_poll, sizeof(s_poll), "%d", c->poll_ms);
    snprintf(s_np, sizeof(s_np), "%lld", now + (long long)c->progress_s * 1000);
    snprintf(s_seq, sizeof(s_seq), "%lld", seq);
    char *hk = hkey(t, c->rid), *lk = lkey(t, c->rid);
    const char *cur = c->cur ? c->cur : c->status;
    const char *argv[20] = {"EVAL",    RESCHEDULE_LUA, "3",    hk,    t->due_key, lk,
                            t->owner,  c->rid,         s_next, s_now, "status",   cur,
                            "poll_ms", s_poll};
    int argc = 14;
    if (reported) {
        argv[argc++] = "reported";
        argv[argc++] = cur;
        argv[argc++] = "next_progress";
        argv[argc++] = s_np;
        argv[argc++] = "seq";
        argv[argc++] = s_seq;
    }
    bool sent = hk && lk && redis_send(t, on_rescheduled, c, argc, argv);
    free(hk);
    free(lk);
    if (!sent) check_drop(c, "redis command not accepted");
}

/* ---- final ------------------------------------------------------------------------- */

static void on_done(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct pending_done *p = opaque;
    struct cq_pipeline_tracker *tr = p->t;
    p->sending = false;
    if (!redis_bad(r, err)) {
        struct pending_done **pp = &tr->owed;
        while (*pp && *pp != p)
            pp = &(*pp)->next;
        if (*pp) *pp = p->next;
        free(p->rid);
        free(p->pid);
        free(p->userkey);
        free(p);
    }
    unref(tr);
}

static void send_done(struct cq_pipeline_tracker *t, struct pending_done *p) {
    char *hk = hkey(t, p->rid), *lk = lkey(t, p->rid), *ik = ikey(t, p->pid);
    const char *argv[] = {"EVAL", DONE_LUA, "5",        hk,     t->due_key,
                          lk,     ik,       p->userkey, p->rid, t->owner};
    if (hk && lk && ik && redis_send(t, on_done, p, 10, argv)) p->sending = true;
    free(hk);
    free(lk);
    free(ik);
}

/* The final reached Kafka: clean up Redis (retried from the scan timer until it works). */
static void owe_done(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct pending_done *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->t = t;
    p->rid = strdup(c->rid);
    p->pid = strdup(c->pid_s);
    p->userkey = ukey(t, c->platform, c->user_id);
    if (!p->rid || !p->pid || !p->userkey) {
        free(p->rid);
        free(p->pid);
        free(p->userkey);
        free(p);
        return;
    }
    p->next = t->owed;
    t->owed = p;
    send_done(t, p);
}

/* The outcome audit record of a tracked pipeline (its trigger was audited by the worker
 * that triggered it). Best effort: an audit record lost here does not hold the final. */
static void audit_final(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct cq_request req = {0};
    struct cq_err err = {0};
    char now[32];
    char *s = NULL;
    cJSON *res = c->final ? cJSON_Parse(c->final) : NULL;
    cJSON *a = cJSON_CreateObject(), *who, *pl;
    if (!t->cfg->kafka.topic_audit || !a || !res || !c->req_json ||
        cq_request_decode(c->req_json, strlen(c->req_json), 0, &req, &err) != CQ_OK)
        goto out;
    cq_now_rfc3339(now);
    cJSON_AddNumberToObject(a, "v", 1);
    cJSON_AddStringToObject(a, "kind", "outcome");
    cJSON_AddStringToObject(a, "time", now);
    cJSON_AddStringToObject(a, "request_id", c->rid);
    cJSON_AddStringToObject(a, "dedupe_key", req.dedupe_key ? req.dedupe_key : "");
    if ((who = cJSON_AddObjectToObject(a, "who"))) {
        cJSON_AddStringToObject(who, "platform", req.platform ? req.platform : "");
        cJSON_AddStringToObject(who, "user_id", req.user_id ? req.user_id : "");
        if (req.user_name) cJSON_AddStringToObject(who, "user_name", req.user_name);
    }
    cJSON_AddStringToObject(a, "command", c->label ? c->label : "");
    cJSON_AddStringToObject(a, "decision", "allowed");
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "status"));
    const char *tx = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "text"));
    cJSON_AddStringToObject(a, "result", st ? st : "");
    if (tx) {
        char cut[600];
        cq_utf8_copy(cut, sizeof(cut), tx, strlen(tx), NULL);
        cJSON_AddStringToObject(a, "detail", cut);
    }
    if ((pl = cJSON_AddObjectToObject(a, "pipeline"))) {
        cJSON_AddNumberToObject(pl, "id", (double)c->pid);
        cJSON_AddStringToObject(pl, "status", c->cur ? c->cur : (c->status ? c->status : ""));
    }
    cJSON_AddStringToObject(a, "worker", t->owner);
    s = cJSON_PrintUnformatted(a);
    if (s && cq_producer_send(t->producer, t->cfg->kafka.topic_audit, c->rid, strlen(c->rid), s,
                              strlen(s), NULL, NULL, NULL, &err) != CQ_OK)
        cq_warn(c->rid, "pipeline outcome audit not produced: %s", err.msg);
out:
    cJSON_free(s);
    cJSON_Delete(a);
    cJSON_Delete(res);
    cq_request_clear(&req);
}

static void on_final_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                               int64_t offset) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    (void)partition;
    (void)offset;
    if (rc != CQ_OK) {
        /* Stored as state=final: whoever claims it next (maybe us) sends it again. */
        check_drop(c, errstr ? errstr : cq_rc_str(rc));
    } else {
        t->st.finals++;
        count("chatops_worker_pipeline_finals_total", "Final pipeline results delivered", NULL);
        cq_info(c->rid, "pipeline #%lld final delivered", c->pid);
        if (!t->closing) audit_final(c);
        if (!t->closing) owe_done(c);
        check_free(c);
    }
    unref(t);
}

static void produce_stored_final(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (!c->final || !*c->final) {
        check_drop(c, "state final without a stored result");
        return;
    }
    if (cq_producer_send(t->producer, t->cfg->kafka.topic_results, c->rid, strlen(c->rid), c->final,
                         strlen(c->final), NULL, on_final_delivered, c, &err) != CQ_OK) {
        check_drop(c, err.msg);
        return;
    }
    t->refs++;
}

static void on_final_stored(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (redis_bad(r, err) || r->type != REDIS_REPLY_INTEGER) {
        check_drop(c, t->closing ? NULL : why(r, err));
    } else if (r->integer != 1) {
        cq_warn(c->rid, "pipeline final already claimed elsewhere; not sending");
        check_free(c);
    } else {
        produce_stored_final(c);
    }
    unref(t);
}

/* Stores the final under the lease (the exactly-once step), then produces it. */
static void finalize(struct check *c, const char *status, char *text) {
    struct cq_pipeline_tracker *t = c->t;
    /* a job's log tail may print what a secret went into (a variable, a header) */
    text = cq_config_redact(t->cfg, text);
    if (!text) {
        check_drop(c, "out of memory");
        return;
    }
    /* job names and log tails come from GitLab: made valid UTF-8, cut on a character */
    char *valid = cq_utf8_clean(text, strlen(text), MAX_TEXT);
    free(text);
    if (!valid) {
        check_drop(c, "out of memory");
        return;
    }
    const char *ps = c->cur ? c->cur : c->status;
    char *res = encode_result(c, "final", status, valid, 0, ps);
    free(valid);
    if (!res) {
        check_drop(c, "cannot encode the final result");
        return;
    }
    free(c->final);
    c->final = res;
    char *hk = hkey(t, c->rid), *lk = lkey(t, c->rid);
    const char *argv[] = {"EVAL", FINAL_LUA, "2", hk, lk, t->owner, c->final};
    bool sent = hk && lk && redis_send(t, on_final_stored, c, 7, argv);
    free(hk);
    free(lk);
    if (!sent) check_drop(c, "redis command not accepted");
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

static bool append(char **buf, const char *add) {
    size_t a = *buf ? strlen(*buf) : 0, b = strlen(add);
    char *n = realloc(*buf, a + b + 1);
    if (!n) return false;
    memcpy(n + a, add, b + 1);
    *buf = n;
    return true;
}

static void on_trace(void *opaque, const struct cq_gitlab_reply *r) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        check_drop(c, NULL);
        goto out;
    }
    const cJSON *job = cJSON_GetArrayItem(c->failed_jobs, c->job_i);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "name");
    char *part = NULL;
    if (r->rc == CQ_OK && r->status == 200) {
        char *tail = cq_gitlab_log_tail(r->body, r->body_len, t->tail_lines, t->tail_bytes);
        part = tail ? cq_strprintf("\n`%s` log (last lines):\n```\n%s\n```",
                                   cJSON_IsString(name) ? name->valuestring : "?", tail)
                    : NULL;
        free(tail);
    } else {
        part = cq_strprintf("\n`%s` log unavailable (HTTP %ld)",
                            cJSON_IsString(name) ? name->valuestring : "?", r->status);
    }
    if (!part || !append(&c->ftext, part)) {
        free(part);
        check_drop(c, "out of memory");
        goto out;
    }
    free(part);
    c->job_i++;
    next_trace(c);
out:
    unref(t);
}

static void next_trace(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (c->job_i >= c->n_jobs) {
        finish_failed(c);
        return;
    }
    const cJSON *job = cJSON_GetArrayItem(c->failed_jobs, c->job_i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(job, "id");
    if (!cJSON_IsNumber(id) || cq_gitlab_trace(t->gl, c->project, (long long)id->valuedouble,
                                               on_trace, c, &err) != CQ_OK) {
        c->job_i++;
        next_trace(c);
        return;
    }
    t->refs++;
}

static void on_failed_jobs(void *opaque, const struct cq_gitlab_reply *r) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        check_drop(c, NULL);
        goto out;
    }
    c->ftext = cq_strprintf("pipeline #%lld failed: %s", c->pid, c->web_url);
    if (!c->ftext) {
        check_drop(c, "out of memory");
        goto out;
    }
    if (r->rc != CQ_OK || r->status != 200 || !cJSON_IsArray(r->json)) {
        char *e = cq_gitlab_error_text(r, "list the failed jobs");
        if (e) {
            append(&c->ftext, "\n");
            append(&c->ftext, e);
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
        if (line) append(&c->ftext, line);
        free(line);
    }
    c->failed_jobs = c->jobs_doc;
    c->n_jobs = c->jobs_doc ? cJSON_GetArraySize(c->jobs_doc) : 0;
    c->job_i = 0;
    next_trace(c);
out:
    unref(t);
}

/* ---- timeout ------------------------------------------------------------------------- */

static void on_timeout_cancel(void *opaque, const struct cq_gitlab_reply *r) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        check_drop(c, NULL);
        goto out;
    }
    char *text;
    if (r->rc == CQ_OK && r->status >= 200 && r->status < 300) {
        text = cq_strprintf("pipeline #%lld did not finish within %d s (last status %s); it was "
                            "canceled: %s",
                            c->pid, c->timeout_s, c->cur ? c->cur : c->status, c->web_url);
    } else {
        char *e = cq_gitlab_error_text(r, "cancel it");
        text = cq_strprintf("pipeline #%lld did not finish within %d s (last status %s); %s: %s",
                            c->pid, c->timeout_s, c->cur ? c->cur : c->status,
                            e ? e : "could not cancel it", c->web_url);
        free(e);
    }
    finalize(c, "timeout", text);
out:
    unref(t);
}

static void timed_out(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (c->cancel_on_timeout &&
        cq_gitlab_cancel(t->gl, c->project, c->pid, on_timeout_cancel, c, &err) == CQ_OK) {
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
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    long long seq = c->seq + 1;
    char *text = cq_strprintf("pipeline #%lld %s%s%s: %s", c->pid, c->cur, detail ? " — " : "",
                              detail ? detail : "", c->web_url);
    char *res = text ? encode_result(c, "progress", "ok", text, (int)seq, c->cur) : NULL;
    free(text);
    if (res && cq_producer_send(t->producer, t->cfg->kafka.topic_results, c->rid, strlen(c->rid),
                                res, strlen(res), NULL, NULL, NULL, &err) == CQ_OK) {
        t->st.progress++;
        count("chatops_worker_pipeline_progress_total", "Progress results sent", NULL);
    } else {
        cq_warn(c->rid, "progress not sent: %s", res ? err.msg : "encode failed");
    }
    free(res);
    reschedule(c, true, true, seq);
}

static void on_running_jobs(void *opaque, const struct cq_gitlab_reply *r) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    if (r->rc == CQ_ESHUTDOWN) {
        check_drop(c, NULL);
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
    unref(t);
}

/* ---- status ------------------------------------------------------------------------- */

static void on_status(void *opaque, const struct cq_gitlab_reply *r) {
    struct check *c = opaque;
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    long long now = cq_pipeline_now_ms();
    if (r->rc == CQ_ESHUTDOWN || t->closing) {
        check_drop(c, NULL);
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
        char *e = cq_gitlab_error_text(r, "read the pipeline status");
        cq_warn(c->rid, "%s", e ? e : "pipeline status unavailable");
        free(e);
        if (c->deadline > 0 && now >= c->deadline)
            timed_out(c);
        else
            reschedule(c, false, false, c->seq);
        goto out;
    }
    free(c->cur);
    c->cur = strdup(st->valuestring);
    if (!c->cur) {
        check_drop(c, "out of memory");
        goto out;
    }
    const char *s = c->cur;
    if (strcmp(s, "success") == 0) {
        finalize(c, "ok", cq_strprintf("pipeline #%lld succeeded: %s", c->pid, c->web_url));
    } else if (strcmp(s, "failed") == 0) {
        if (cq_gitlab_jobs(t->gl, c->project, c->pid, "failed", on_failed_jobs, c, &err) == CQ_OK)
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
            cq_gitlab_jobs(t->gl, c->project, c->pid, NULL, on_running_jobs, c, &err) == CQ_OK)
            t->refs++;
        else
            send_progress(c, NULL);
    } else {
        reschedule(c, strcmp(s, c->status) != 0, false, c->seq);
    }
out:
    unref(t);
}

static void poll_status(struct check *c) {
    struct cq_pipeline_tracker *t = c->t;
    struct cq_err err = {0};
    if (cq_gitlab_pipeline(t->gl, c->project, c->pid, on_status, c, &err) != CQ_OK) {
        check_drop(c, err.msg);
        return;
    }
    t->refs++;
}

/* ---- trigger --------------------------------------------------------------------------- */

struct trig {
    struct cq_pipeline_tracker *t;
    cq_pipeline_cb cb;
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
    struct cq_pipeline_tracker *t = h->data;
    free(h);
    t->open_timers--;
    t->refs++;
    unref(t);
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
    struct cq_pipeline_outcome o = {.step = step,
                                    .status = status,
                                    .text = text ? text : "out of memory",
                                    .pipeline_id = g->pid,
                                    .web_url = g->web_url,
                                    .pipeline_status = g->status};
    count("chatops_worker_pipeline_triggers_total", "Pipeline triggers by outcome",
          strcmp(status, "ok") == 0 ? "outcome=\"ok\"" : "outcome=\"failed\"");
    g->cb(g->opaque, &o);
    free(text);
    trig_free(g);
}

static void track(struct trig *g);

static void on_registered(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct trig *g = opaque;
    struct cq_pipeline_tracker *t = g->t;
    if (redis_bad(r, err) && err && err->code != CQ_ESHUTDOWN && !t->closing &&
        g->reg_attempts < 5) {
        /* A timed-out registration may or may not have been applied: send it again (a
         * second one is a no-op). Giving up at once could answer "cannot be followed"
         * for a pipeline that is tracked after all, and so produce two finals. */
        cq_warn(g->rid, "registering pipeline #%lld: %s; sending it again", g->pid, why(r, err));
        track(g);
        unref(t);
        return;
    }
    if (redis_bad(r, err)) {
        cq_error(g->rid, "pipeline #%lld triggered but not tracked: %s", g->pid, why(r, err));
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
    unref(t);
}

static void track(struct trig *g) {
    struct cq_pipeline_tracker *t = g->t;
    long long now = cq_pipeline_now_ms();
    /* The first check waits poll_min (at least 1 s): the ack goes out first. */
    char s_due[24], s_deadline[24], s_poll[16], s_prog[16], s_timeout[16], s_now[24];
    long long first = now + (t->poll_min > 1000 ? t->poll_min : 1000);
    snprintf(s_due, sizeof(s_due), "%lld", first);
    snprintf(s_deadline, sizeof(s_deadline), "%lld", g->deadline);
    snprintf(s_poll, sizeof(s_poll), "%d", t->poll_min);
    snprintf(s_prog, sizeof(s_prog), "%d", g->progress_s);
    snprintf(s_timeout, sizeof(s_timeout), "%d", g->timeout_s);
    snprintf(s_now, sizeof(s_now), "%lld", now);
    char *hk = hkey(t, g->rid), *ik = ikey(t, g->pid_s), *uk = ukey(t, g->platform, g->user_id);
    const char *argv[] = {"EVAL",
                          REGISTER_LUA,
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
    bool sent = hk && ik && uk && redis_send(t, on_registered, g, argc, argv);
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
    struct cq_pipeline_tracker *t = g->t;
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
static char *pipelines_page(const struct cq_pipeline_tracker *t, const char *project) {
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
    count("chatops_worker_pipeline_trigger_lookups_total",
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
    struct cq_pipeline_tracker *t = g->t;
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

static void on_candidate_vars(void *opaque, const struct cq_gitlab_reply *r) {
    struct trig *g = opaque;
    struct cq_pipeline_tracker *t = g->t;
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
    count("chatops_worker_pipeline_trigger_lookups_total",
          "Pipelines looked up after an ambiguous trigger answer, by outcome", "outcome=\"found\"");
    cq_warn(g->rid, "trigger answer was lost (%s); found the pipeline by its request id",
            g->why ? g->why : "?");
    pipeline_known(g, pl, 200);
out:
    unref(t);
}

static void next_candidate(struct trig *g) {
    struct cq_pipeline_tracker *t = g->t;
    struct cq_err err = {0};
    for (; g->cand_i < cJSON_GetArraySize(g->cands); g->cand_i++) {
        const cJSON *id =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(g->cands, g->cand_i), "id");
        if (!cJSON_IsNumber(id) || id->valuedouble <= 0) continue;
        if (cq_gitlab_pipeline_variables(t->gl, g->project, (long long)id->valuedouble,
                                         on_candidate_vars, g, &err) != CQ_OK) {
            outcome_unknown(g, err.msg);
            return;
        }
        t->refs++;
        return;
    }
    look_later(g, "no pipeline of the ref carries this request id");
}

static void on_candidates(void *opaque, const struct cq_gitlab_reply *r) {
    struct trig *g = opaque;
    struct cq_pipeline_tracker *t = g->t;
    if (r->rc == CQ_ESHUTDOWN) {
        outcome_unknown(g, "the worker stopped while looking for it");
        goto out;
    }
    if (r->rc != CQ_OK || r->status != 200 || !cJSON_IsArray(r->json)) {
        char *e = cq_gitlab_error_text(r, "look the pipeline up");
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
    unref(t);
}

/* Lists the ref's triggered pipelines since a little before the trigger was sent (GitLab's
 * clock may differ from ours) and checks each one's CHATOPS_REQUEST_ID. */
static void look(struct trig *g) {
    struct cq_pipeline_tracker *t = g->t;
    struct cq_err err = {0};
    g->lookups++;
    if (t->closing) {
        outcome_unknown(g, "the worker stopped before looking for it");
        return;
    }
    if (cq_gitlab_pipelines_since(t->gl, g->project, g->ref, g->sent_ms - 5 * 60 * 1000,
                                  t->cfg->gitlab.trigger_lookup_candidates, on_candidates, g,
                                  &err) != CQ_OK) {
        outcome_unknown(g, err.msg);
        return;
    }
    t->refs++;
}

static void on_triggered(void *opaque, const struct cq_gitlab_reply *r) {
    struct trig *g = opaque;
    struct cq_pipeline_tracker *t = g->t;
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
        char *e = cq_gitlab_error_text(r, "trigger the pipeline");
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
    unref(t);
}

enum cq_rc cq_pipeline_trigger(struct cq_pipeline_tracker *t, const struct cq_pipeline_trigger *p,
                               cq_pipeline_cb cb, void *opaque, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    struct trig *g = NULL;
    char *ref = NULL;
    char **vals = NULL;
    const char **vars = NULL;
    size_t nv = 0;
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
    ref = cq_template_expand(a->ref ? a->ref : "main", CQ_TPL_TEXT, p->vars, err);
    if (!ref) {
        rc = err ? err->code : CQ_ENOMEM;
        goto out;
    }
    if (!cq_gitlab_ref_valid(ref)) {
        rc = cq_err_set(err, CQ_EINVAL, "`%.100s` is not a valid branch or tag name", ref);
        goto out;
    }
    /* Chat context first; config variables (expanded) after, never overriding it. */
    size_t cap = 2 * (6 + a->n_variables) + 1;
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
    for (size_t i = 0; i < a->n_variables; i++) {
        const struct cq_var_tpl *v = &a->variables[i];
        if (!v->name || cq_config_var_reserved(v->name))
            continue; /* refused at config load; never overrides the chat context */
        vals[i] = cq_template_expand(v->value ? v->value : "", CQ_TPL_TEXT, p->vars, err);
        if (!vals[i]) {
            rc = err ? err->code : CQ_ENOMEM;
            goto out;
        }
        vars[nv++] = v->name;
        vars[nv++] = vals[i];
    }
    vars[nv] = NULL;

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
    g->platform = strdup(req->platform ? req->platform : "");
    g->user_id = strdup(req->user_id ? req->user_id : "");
    g->user_name = strdup(req->user_name ? req->user_name : "");
    g->command = strdup(cmd->name);
    g->timeout_s = a->timeout_s > 0 ? a->timeout_s : 3600;
    g->progress_s = a->progress_interval_s > 0 ? a->progress_interval_s : 30;
    g->cancel_on_timeout = a->cancel_on_timeout;
    g->deadline = cq_pipeline_now_ms() + (long long)g->timeout_s * 1000;
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
    g->sent_ms = cq_pipeline_now_ms();
    rc = cq_gitlab_trigger(t->gl, a->project, token, ref, vars, on_triggered, g, err);
    if (rc == CQ_OK) {
        t->refs++;
        g = NULL;
    }
out:
    trig_free(g);
    free(ref);
    for (size_t i = 0; vals && i < a->n_variables; i++)
        free(vals[i]);
    free(vals);
    free(vars);
    return rc;
}

/* ---- fast path: pipeline hooks ----------------------------------------------------- */

static void on_hook(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct cq_pipeline_tracker *t = opaque;
    if (!redis_bad(r, err) && r->type == REDIS_REPLY_STRING) {
        t->st.hooks++;
        count("chatops_worker_pipeline_hooks_total",
              "Pipeline hooks that matched a tracked pipeline", NULL);
        cq_debug(r->str, "pipeline hook: checking now");
        scan_soon(t);
    }
    unref(t);
}

bool cq_pipeline_on_hook(struct cq_pipeline_tracker *t, const char *json, size_t len) {
    bool ok = false;
    if (!t || t->closing || !json) return false;
    cJSON *doc = cJSON_ParseWithLength(json, len);
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(doc, "object_attributes");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(oa, "id");
    if (cJSON_IsNumber(id) && id->valuedouble > 0) {
        char pid[32], now[24];
        snprintf(pid, sizeof(pid), "%lld", (long long)id->valuedouble);
        snprintf(now, sizeof(now), "%lld", cq_pipeline_now_ms());
        char *ik = ikey(t, pid);
        const char *argv[] = {"EVAL", HOOK_LUA, "2", ik, t->due_key, now, t->prefix};
        ok = ik && redis_send(t, on_hook, t, 7, argv);
        free(ik);
    }
    cJSON_Delete(doc);
    return ok;
}

/* ---- built-ins: cancel, pipelines ---------------------------------------------------- */

struct textop {
    struct cq_pipeline_tracker *t;
    cq_pipeline_text_cb cb;
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

static void on_cancel_posted(void *opaque, const struct cq_gitlab_reply *r) {
    struct textop *o = opaque;
    struct cq_pipeline_tracker *t = o->t;
    if (r->rc == CQ_OK && r->status >= 200 && r->status < 300) {
        /* Check it at once: the final (canceled) follows from the tracker. */
        char now[24];
        snprintf(now, sizeof(now), "%lld", cq_pipeline_now_ms());
        const char *argv[] = {"ZADD", t->due_key, "XX", now, o->rid};
        if (!t->closing) redis_send(t, on_ignore, t, 5, argv);
        scan_soon(t);
        textop_end(o, "ok",
                   cq_strprintf("cancel requested for pipeline #%lld (request %s); its end will be "
                                "reported here: %s",
                                o->pid, o->rid, o->web_url));
    } else {
        textop_end(o, "failed", cq_gitlab_error_text(r, "cancel the pipeline"));
    }
    unref(t);
}

static void on_cancel_lookup(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct textop *o = opaque;
    struct cq_pipeline_tracker *t = o->t;
    struct cq_err e = {0};
    if (redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        textop_end(o, "failed",
                   cq_strprintf("cannot look the pipeline up right now (%s)", why(r, err)));
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
    if (cq_gitlab_cancel(t->gl, o->project, o->pid, on_cancel_posted, o, &e) != CQ_OK) {
        textop_end(o, "failed", cq_strprintf("could not cancel: %s", e.msg));
        goto out;
    }
    t->refs++;
out:
    unref(t);
}

static struct textop *textop_new(struct cq_pipeline_tracker *t, const char *rid,
                                 const char *platform, const char *user_id,
                                 const struct cq_person *person, cq_pipeline_text_cb cb,
                                 void *opaque) {
    struct textop *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->t = t;
    o->cb = cb;
    o->opaque = opaque;
    o->rid = strdup(rid ? rid : "");
    o->platform = strdup(platform ? platform : "");
    o->user_id = strdup(user_id ? user_id : "");
    o->privileged = cq_pipeline_privileged(t->cfg, person);
    if (!o->rid || !o->platform || !o->user_id) {
        free(o->rid);
        free(o->platform);
        free(o->user_id);
        free(o);
        return NULL;
    }
    return o;
}

enum cq_rc cq_pipeline_cancel(struct cq_pipeline_tracker *t, const char *request_id,
                              const char *platform, const char *user_id,
                              const struct cq_person *person, cq_pipeline_text_cb cb, void *opaque,
                              struct cq_err *err) {
    if (!t || !cb) return cq_err_set(err, CQ_EINVAL, "missing argument");
    if (!request_id || !*request_id || strlen(request_id) > CQ_ENV_MAX_ID ||
        strspn(request_id, "0123456789abcdefABCDEF-") != strlen(request_id))
        return cq_err_set(err, CQ_EINVAL, "usage: cancel REQUEST_ID (as listed by `pipelines`)");
    struct textop *o = textop_new(t, request_id, platform, user_id, person, cb, opaque);
    if (!o) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    char *hk = hkey(t, request_id);
    const char *argv[] = {"HMGET", hk, "pid", "project", "platform", "user_id", "state", "web_url"};
    bool sent = hk && redis_send(t, on_cancel_lookup, o, 8, argv);
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
    struct cq_pipeline_tracker *t = o->t;
    if (redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        textop_end(o, "failed", cq_strprintf("cannot list pipelines right now (%s)", why(r, err)));
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
        if (!line || !append(&text, line)) {
            free(line);
            free(text);
            text = NULL;
            break;
        }
        free(line);
    }
    textop_end(o, "ok", text);
out:
    unref(t);
}

enum cq_rc cq_pipeline_list(struct cq_pipeline_tracker *t, const char *platform,
                            const char *user_id, const struct cq_person *person,
                            cq_pipeline_text_cb cb, void *opaque, struct cq_err *err) {
    if (!t || !cb) return cq_err_set(err, CQ_EINVAL, "missing argument");
    struct textop *o = textop_new(t, "", platform, user_id, person, cb, opaque);
    if (!o) return cq_err_set(err, CQ_ENOMEM, "out of memory");
    char *uk = ukey(t, platform, user_id);
    char lim[8];
    snprintf(lim, sizeof(lim), "%d", LIST_MAX);
    const char *argv[] = {
        "EVAL",    LIST_LUA, "1", o->privileged ? t->due_key : uk, o->privileged ? "zset" : "set",
        t->prefix, lim};
    bool sent = uk && redis_send(t, on_list, o, 7, argv);
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

/* ---- lifecycle ----------------------------------------------------------------------- */

int cq_pipeline_active(const struct cq_pipeline_tracker *t) {
    return t ? t->n_checks : 0;
}

void cq_pipeline_stats(const struct cq_pipeline_tracker *t, struct cq_pipeline_stats *out) {
    if (t && out) *out = t->st;
}

struct cq_pipeline_tracker *cq_pipeline_tracker_new(const struct cq_pipeline_deps *d,
                                                    struct cq_err *err) {
    struct cq_pipeline_tracker *t = NULL;
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
    t->gl = cq_gitlab_new(d->loop, d->httpc, cfg->gitlab.base_url, cfg->gitlab.api_token.value, 3,
                          500, http_timeout, err);
    if (!t->gl) goto fail;
    uv_timer_init(cq_loop_uv(d->loop), &t->scan_timer);
    uv_timer_init(cq_loop_uv(d->loop), &t->renew_timer);
    t->open_timers = 2;
    t->scan_timer.data = t;
    t->renew_timer.data = t;
    uv_timer_start(&t->scan_timer, scan, (uint64_t)t->scan_ms, (uint64_t)t->scan_ms);
    uv_timer_start(&t->renew_timer, renew, (uint64_t)(t->lease_ms / 3),
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

static void tracker_release(struct cq_pipeline_tracker *t) {
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
    struct cq_pipeline_tracker *t = h->data;
    t->open_timers--;
    t->refs++;
    unref(t);
}

void cq_pipeline_tracker_free(struct cq_pipeline_tracker *t) {
    if (!t || t->closing) return;
    t->closing = true;
    t->refs++; /* nothing is released inside this function */
    uv_timer_stop(&t->scan_timer);
    uv_timer_stop(&t->renew_timer);
    uv_close((uv_handle_t *)&t->scan_timer, timer_closed);
    uv_close((uv_handle_t *)&t->renew_timer, timer_closed);
    while (t->lookups) /* waiting to look again: answered now (frees and unlists it) */
        outcome_unknown(t->lookups, "the worker stopped while looking for it");
    cq_gitlab_free(t->gl); /* pending calls answer CQ_ESHUTDOWN: checks drop themselves */
    t->gl = NULL;
    unref(t);
}
