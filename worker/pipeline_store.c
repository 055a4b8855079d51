/* pipeline_store: the tracker's Redis side. The Lua scripts and the key layout (hash per
 * pipeline, due-time sorted set, per-check lease, pipeline-id index, per-user set), and the
 * operations on them: scanning and claiming due entries, reading a claimed hash into a check,
 * renewing leases, rescheduling, and the clean-up owed once a final was acknowledged. */
#include "pipeline_int.h"

/* KEYS: hash, due, idx, userset; ARGV: rid, due score, field, value, ... */
const char PL_REGISTER_LUA[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
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
const char PL_FINAL_LUA[] =
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
const char PL_HOOK_LUA[] =
    "local id = redis.call('GET', KEYS[1])\n"
    "if not id then return false end\n"
    "if not redis.call('ZSCORE', KEYS[2], id) then return false end\n"
    "redis.call('HSET', ARGV[2] .. 'pl:' .. id, 'kick', '1')\n"
    "local lk = ARGV[2] .. 'pl:lease:' .. id\n"
    "if redis.call('EXISTS', lk) == 0 then redis.call('ZADD', KEYS[2], ARGV[1], id) end\n"
    "return id\n";

/* KEYS: userset or due; ARGV: 'set'|'zset', prefix, limit */
const char PL_LIST_LUA[] =
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

bool pl_redis_send(struct w_pipeline_tracker *t, cq_redis_cb cb, void *op, int argc,
                   const char **argv) {
    if (cq_redis_commandargv(t->redis, cb, op, argc, argv, NULL) != CQ_OK) return false;
    t->refs++;
    return true;
}

bool pl_redis_bad(const redisReply *r, const struct cq_err *err) {
    return err || !r || r->type == REDIS_REPLY_ERROR;
}

const char *pl_why(const redisReply *r, const struct cq_err *err) {
    if (err) return err->msg[0] ? err->msg : cq_rc_str(err->code);
    return r && r->str ? r->str : "no reply";
}

char *pl_hkey(const struct w_pipeline_tracker *t, const char *rid) {
    return cq_strprintf("%spl:%s", t->prefix, rid);
}
char *pl_lkey(const struct w_pipeline_tracker *t, const char *rid) {
    return cq_strprintf("%spl:lease:%s", t->prefix, rid);
}
char *pl_ikey(const struct w_pipeline_tracker *t, const char *pid) {
    return cq_strprintf("%spl:idx:%s", t->prefix, pid);
}
char *pl_ukey(const struct w_pipeline_tracker *t, const char *platform, const char *user) {
    return cq_strprintf("%spl:user:%s:%s", t->prefix, platform ? platform : "", user ? user : "");
}

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

static struct pending_done *owed_find(struct w_pipeline_tracker *t, const char *rid) {
    for (struct pending_done *p = t->owed; p; p = p->next)
        if (strcmp(p->rid, rid) == 0) return p;
    return NULL;
}

static void send_done(struct w_pipeline_tracker *t, struct pending_done *p);

static void on_missing_cleaned(void *opaque, const redisReply *r, const struct cq_err *err) {
    (void)r;
    (void)err;
    pl_unref(opaque);
}

static void on_hash(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (t->closing || pl_redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        pl_check_drop(c, t->closing ? NULL : pl_why(r, err));
        goto out;
    }
    if (r->elements == 0) { /* finished meanwhile: forget the stale due entry */
        char *lk = pl_lkey(t, c->rid);
        if (lk) {
            const char *argv[] = {"ZREM", t->due_key, c->rid};
            pl_redis_send(t, on_missing_cleaned, t, 3, argv);
            const char *argv2[] = {"DEL", lk};
            pl_redis_send(t, on_missing_cleaned, t, 2, argv2);
        }
        free(lk);
        pl_check_free(c);
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
        pl_check_drop(c, "out of memory");
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
            pl_check_free(c);
            send_done(t, p);
        } else {
            t->st.takeovers++;
            pl_produce_stored_final(c);
        }
        goto out;
    }
    pl_poll_status(c);
out:
    pl_unref(t);
}

static void on_claim(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct w_pipeline_tracker *t = opaque;
    t->scanning = false;
    if (t->closing) goto out;
    if (pl_redis_bad(r, err) || r->type != REDIS_REPLY_ARRAY) {
        if (!(err && err->code == CQ_EREDIS))
            cq_warn(NULL, "pipeline tracker: claim failed: %s", pl_why(r, err));
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        struct check *c = pl_check_new(t, e->str, e->len);
        if (!c) break; /* the lease lapses; claimed again later */
        char *hk = pl_hkey(t, c->rid);
        const char *argv[] = {"HGETALL", hk};
        bool sent = hk && pl_redis_send(t, on_hash, c, 2, argv);
        free(hk);
        if (!sent) pl_check_drop(c, "redis command not accepted");
    }
    if (t->rescan || (int)r->elements > 0) {
        t->rescan = false;
        if (t->n_checks < t->max_checks) pl_scan_soon(t);
    }
out:
    pl_unref(t);
}

void pl_scan(uv_timer_t *timer) {
    struct w_pipeline_tracker *t = timer->data;
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
    snprintf(now, sizeof(now), "%lld", w_pipeline_now_ms());
    snprintf(lease, sizeof(lease), "%d", t->lease_ms);
    snprintf(lim, sizeof(lim), "%d", limit > 200 ? 200 : limit);
    const char *argv[] = {"EVAL", CLAIM_LUA, "1", t->due_key, now, t->owner, lease, t->prefix, lim};
    if (pl_redis_send(t, on_claim, t, 9, argv)) t->scanning = true;
}

void pl_renew(uv_timer_t *timer) {
    struct w_pipeline_tracker *t = timer->data;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", t->lease_ms);
    for (struct check *c = t->checks; c; c = c->next) {
        char *lk = pl_lkey(t, c->rid);
        const char *argv[] = {"EVAL", RENEW_LUA, "1", lk, t->owner, ms};
        if (lk) pl_redis_send(t, pl_on_ignore, t, 6, argv);
        free(lk);
    }
}

/* ---- reschedule ---------------------------------------------------------------------- */

static void on_rescheduled(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct check *c = opaque;
    struct w_pipeline_tracker *t = c->t;
    if (pl_redis_bad(r, err))
        pl_check_drop(c, t->closing ? NULL : pl_why(r, err));
    else
        pl_check_free(c);
    if (!pl_redis_bad(r, err) && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        cq_debug(NULL, "pipeline tracker: lease lost before reschedule");
    pl_scan_soon(t); /* a kick may have made it due at once */
    pl_unref(t);
}

/* Writes the new state and the next check time and releases the lease. */
void pl_reschedule(struct check *c, bool changed, bool reported, long long seq) {
    struct w_pipeline_tracker *t = c->t;
    long long now = w_pipeline_now_ms();
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
    char *hk = pl_hkey(t, c->rid), *lk = pl_lkey(t, c->rid);
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
    bool sent = hk && lk && pl_redis_send(t, on_rescheduled, c, argc, argv);
    free(hk);
    free(lk);
    if (!sent) pl_check_drop(c, "redis command not accepted");
}

/* ---- final ------------------------------------------------------------------------- */

static void on_done(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct pending_done *p = opaque;
    struct w_pipeline_tracker *tr = p->t;
    p->sending = false;
    if (!pl_redis_bad(r, err)) {
        struct pending_done **pp = &tr->owed;
        while (*pp && *pp != p)
            pp = &(*pp)->next;
        if (*pp) *pp = p->next;
        free(p->rid);
        free(p->pid);
        free(p->userkey);
        free(p);
    }
    pl_unref(tr);
}

static void send_done(struct w_pipeline_tracker *t, struct pending_done *p) {
    char *hk = pl_hkey(t, p->rid), *lk = pl_lkey(t, p->rid), *ik = pl_ikey(t, p->pid);
    const char *argv[] = {"EVAL", DONE_LUA, "5",        hk,     t->due_key,
                          lk,     ik,       p->userkey, p->rid, t->owner};
    if (hk && lk && ik && pl_redis_send(t, on_done, p, 10, argv)) p->sending = true;
    free(hk);
    free(lk);
    free(ik);
}

/* The final reached Kafka: clean up Redis (retried from the scan timer until it works). */
void pl_owe_done(struct check *c) {
    struct w_pipeline_tracker *t = c->t;
    struct pending_done *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->t = t;
    p->rid = strdup(c->rid);
    p->pid = strdup(c->pid_s);
    p->userkey = pl_ukey(t, c->platform, c->user_id);
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
