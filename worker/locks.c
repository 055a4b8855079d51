/* locks: named locks before an action (issue 16; keys in locks.h). An action's lock is a
 * lease: its value names an owner token, the worker that took it renews it on the lease
 * timer while the action (or its tracked pipeline) runs, and releases it by compare-and-
 * delete at the final; a dead worker's lock lapses after worker.lock_lease_ms. A redelivered
 * request that already holds its lock takes it over (same request id) instead of waiting
 * for itself. The built-ins locks / lock / unlock are under the policy. */
#include "locks.h"
#include "service_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "log.h"
#include "strutil.h"

struct w_lock_hold {
    char *key, *reqkey, *token, *rid;
    struct w_lock_hold *next;
};

/* KEYS lock, lockreq, set; ARGV value, req, px, name. {1, ""} taken, {0, holder} refused */
static const char ACQUIRE_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local ok, v = pcall(cjson.decode, cur)\n"
    "  if not (ok and type(v) == 'table' and v.req == ARGV[2]) then return {0, cur} end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
    "if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3]) end\n"
    "redis.call('SADD', KEYS[3], ARGV[4])\n"
    "return {1, ''}\n";

/* KEYS lock, lockreq; ARGV token, lease px, now ms: 1 renewed, 0 lost (or past until_ms) */
static const char RENEW_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if not cur then return 0 end\n"
    "local ok, v = pcall(cjson.decode, cur)\n"
    "if not (ok and type(v) == 'table' and v.token == ARGV[1]) then return 0 end\n"
    "local left = tonumber(v['until_ms']) - tonumber(ARGV[3])\n"
    "if left <= 0 then redis.call('DEL', KEYS[1], KEYS[2]) return 0 end\n"
    "local px = math.min(tonumber(ARGV[2]), left)\n"
    "redis.call('PEXPIRE', KEYS[1], px)\n"
    "redis.call('PEXPIRE', KEYS[2], px)\n"
    "return 1\n";

/* KEYS lock, lockreq; ARGV token: compare-and-delete */
static const char RELEASE_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if not cur then return 0 end\n"
    "local ok, v = pcall(cjson.decode, cur)\n"
    "if not (ok and type(v) == 'table' and v.token == ARGV[1]) then return 0 end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "return 1\n";

/* ARGV prefix, req: the lock request req holds, released (tracker final) */
static const char RELEASE_REQ_LUA[] =
    "local bk = ARGV[1] .. 'lockreq:' .. ARGV[2]\n"
    "local name = redis.call('GET', bk)\n"
    "if not name then return 0 end\n"
    "redis.call('DEL', bk)\n"
    "local lk = ARGV[1] .. 'lock:' .. name\n"
    "local cur = redis.call('GET', lk)\n"
    "if not cur then return 0 end\n"
    "local ok, v = pcall(cjson.decode, cur)\n"
    "if ok and type(v) == 'table' and v.req == ARGV[2] then redis.call('DEL', lk) return 1 end\n"
    "return 0\n";

/* KEYS lock; ARGV prefix, user, force: {1, cur} released, {0, ''} not locked, {-1, cur} not
 * the holder's */
static const char UNLOCK_LUA[] = "local cur = redis.call('GET', KEYS[1])\n"
                                 "if not cur then return {0, ''} end\n"
                                 "local ok, v = pcall(cjson.decode, cur)\n"
                                 "local mine = ok and type(v) == 'table' and v.user == ARGV[2]\n"
                                 "if not mine and ARGV[3] ~= '1' then return {-1, cur} end\n"
                                 "redis.call('DEL', KEYS[1])\n"
                                 "if ok and type(v) == 'table' and type(v.req) == 'string' then\n"
                                 "  redis.call('DEL', ARGV[1] .. 'lockreq:' .. v.req)\n"
                                 "end\n"
                                 "return {1, cur}\n";

/* KEYS set; ARGV prefix: the records of the live locks (stale names pruned), at most 50 */
static const char LIST_LUA[] = "local out = {}\n"
                               "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                               "  local v = redis.call('GET', ARGV[1] .. 'lock:' .. n)\n"
                               "  if v then\n"
                               "    if #out < 50 then table.insert(out, v) end\n"
                               "  else redis.call('SREM', KEYS[1], n) end\n"
                               "end\n"
                               "return out\n";

int64_t w_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *prefix_of(const struct cq_config *cfg) {
    return cfg->redis.prefix ? cfg->redis.prefix : "";
}

/* who holds it: the person when people: names them, else platform:user id */
static char *user_of(const struct job *j) {
    if (j->person) return cq_strprintf("person:%s", j->person->name);
    return cq_strprintf("%s:%s", j->req.platform, j->req.user_id ? j->req.user_id : "");
}

static const char *who_of(const struct job *j) {
    if (j->person) return j->person->name;
    return j->req.user_name && *j->req.user_name ? j->req.user_name
                                                 : (j->req.user_id ? j->req.user_id : "?");
}

char *w_lock_name(const struct job *j, struct cq_err *err) {
    struct cq_tpl_vars v = w_job_tpl_vars(j);
    char *name = w_template_expand(j->cmd->lock, CQ_TPL_TEXT, &v, err);
    if (!name) return NULL;
    size_t n = strlen(name);
    bool bad = n == 0 || n > 200;
    for (size_t i = 0; i < n && !bad; i++)
        if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f) bad = true;
    if (bad) {
        cq_err_set(err, CQ_EINVAL, "the lock name `%.60s` is empty, too long or has spaces", name);
        free(name);
        return NULL;
    }
    return name;
}

char *w_lock_describe(const char *json, int64_t now_ms) {
    cJSON *v = cJSON_Parse(json);
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(v, "who");
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(v, "since");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(v, "reason");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(v, "req");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
    char *out = NULL;
    if (cJSON_IsString(who) && cJSON_IsNumber(since) && cJSON_IsString(reason) &&
        cJSON_IsString(name)) {
        time_t t = (time_t)(since->valuedouble / 1000);
        struct tm tm;
        char at[32], ago[32];
        gmtime_r(&t, &tm);
        strftime(at, sizeof at, "%H:%M:%S UTC", &tm);
        w_fmt_duration(ago, sizeof ago, now_ms - (int64_t)since->valuedouble);
        out = cq_strprintf(
            "`%s` is held by %s since %s (%s ago) for %s%s%s%s", name->valuestring,
            who->valuestring, at, ago, reason->valuestring, cJSON_IsString(req) ? " (req " : "",
            cJSON_IsString(req) ? req->valuestring : "", cJSON_IsString(req) ? ")" : "");
    }
    cJSON_Delete(v);
    return out;
}

/* The record of a lock j takes: kind "action" or "manual". */
static char *lock_value(const struct job *j, const char *name, const char *token, const char *kind,
                        const char *reason, int64_t until_ms) {
    cJSON *v = cJSON_CreateObject();
    char *user = user_of(j), *s = NULL;
    if (v && user && cJSON_AddStringToObject(v, "name", name) &&
        cJSON_AddStringToObject(v, "token", token) &&
        cJSON_AddStringToObject(v, "req", j->req.id) &&
        cJSON_AddStringToObject(v, "who", who_of(j)) && cJSON_AddStringToObject(v, "user", user) &&
        cJSON_AddNumberToObject(v, "since", (double)w_wall_ms()) &&
        cJSON_AddNumberToObject(v, "until_ms", (double)until_ms) &&
        cJSON_AddStringToObject(v, "reason", reason) && cJSON_AddStringToObject(v, "kind", kind))
        s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    free(user);
    return s;
}

static char *new_token(void) {
    unsigned char b[16];
    char hex[33];
    if (cq_random_bytes(b, sizeof b) != CQ_OK) return NULL;
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    return strdup(hex);
}

/* ---- the guard before an action ---- */

static void guard_finish(struct job *j, const char *status, char *text) {
    if (w_job_gone(j))
        w_job_abandon(j, "stopped before the action");
    else
        w_finish_with(j, status, text);
    w_job_op_end(j);
}

static void on_limit_checked(void *opaque, int allowed, long long used, long long retry_ms,
                             const char *err) {
    struct job *j = opaque;
    (void)used;
    if (allowed < 0) {
        guard_finish(j, "failed",
                     cq_strprintf("`%s` was not run: its rate limit could not be checked (%s)",
                                  j->cmd->name, err));
        return;
    }
    if (!allowed) {
        w_metric_refusal("rate_limit");
        guard_finish(j, "denied", w_limit_refusal(j->cmd, retry_ms));
        return;
    }
    if (w_job_gone(j)) {
        w_job_abandon(j, "stopped before the action");
        w_job_op_end(j);
        return;
    }
    j->guarded = true;
    w_run_action(j);
    w_job_op_end(j);
}

static void after_lock(struct job *j) {
    if (j->cmd->limit.count > 0) {
        w_limit_run(j, true, on_limit_checked, j);
        return;
    }
    on_limit_checked(j, 1, 0, 0, NULL);
}

static void hold_add(struct job *j) {
    struct w_lock_hold *h = calloc(1, sizeof(*h));
    if (!h) return; /* not renewed: it lapses after its lease */
    h->key = strdup(j->lock_key);
    h->token = strdup(j->lock_token);
    h->rid = strdup(j->req.id);
    h->reqkey = cq_strprintf("%slockreq:%s", prefix_of(j->cfg), j->req.id);
    if (!h->key || !h->token || !h->rid || !h->reqkey) {
        free(h->key);
        free(h->token);
        free(h->rid);
        free(h->reqkey);
        free(h);
        return;
    }
    h->next = j->w->locks;
    j->w->locks = h;
}

static void on_acquired(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct job *j = opaque;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        free(j->lock_key);
        free(j->lock_token);
        j->lock_key = j->lock_token = NULL;
        guard_finish(j, "failed",
                     cq_strprintf("`%s` was not run: its lock could not be taken (%s)",
                                  j->cmd->name,
                                  err ? err->msg
                                      : (r && r->type == REDIS_REPLY_ERROR
                                             ? r->str
                                             : "unexpected answer from redis")));
        return;
    }
    if (r->element[0]->integer != 1) {
        const char *cur = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
        char *d = w_lock_describe(cur, w_wall_ms());
        free(j->lock_key);
        free(j->lock_token);
        j->lock_key = j->lock_token = NULL;
        w_metric_refusal("lock");
        guard_finish(j, "denied",
                     cq_strprintf("`%s` refused: %s", j->cmd->name,
                                  d ? d : "its lock is held by someone else"));
        free(d);
        return;
    }
    hold_add(j);
    cq_info(j->req.id, "lock %s taken", j->lock_key);
    after_lock(j);
}

bool w_guard_start(struct job *j) {
    if (j->guarded || !j->cmd || (!j->cmd->lock && j->cmd->limit.count <= 0)) return false;
    struct w_worker *w = j->w;
    struct cq_err err = {0};
    w_job_op_begin(j);
    if (!j->cmd->lock) {
        after_lock(j);
        return true;
    }
    char *name = w_lock_name(j, &err);
    if (!name) {
        guard_finish(j, "failed",
                     cq_strprintf("`%s` was not run: its lock name: %s", j->cmd->name, err.msg));
        return true;
    }
    const char *p = prefix_of(j->cfg);
    j->lock_key = cq_strprintf("%slock:%s", p, name);
    j->lock_token = new_token();
    char *reqkey = cq_strprintf("%slockreq:%s", p, j->req.id);
    char *set = cq_strprintf("%slocks", p);
    char *reason = cq_strprintf(
        "`%s`", j->req.text && *j->req.text ? j->req.text : j->cmd->name); /* what runs under it */
    char *val = j->lock_token && reason
                    ? lock_value(j, name, j->lock_token, "action", reason,
                                 w_wall_ms() + (int64_t)j->cfg->worker.lock_max_s * 1000)
                    : NULL;
    char px[32];
    snprintf(px, sizeof px, "%d", j->cfg->worker.lock_lease_ms);
    enum cq_rc rc = CQ_ENOMEM;
    if (j->lock_key && reqkey && set && val && w->redis) {
        const char *argv[] = {"EVAL", ACQUIRE_LUA, "3",       j->lock_key, reqkey,
                              set,    val,         j->req.id, px,          name};
        rc = cq_redis_commandargv(w->redis, on_acquired, j, 10, argv, NULL);
    }
    free(name);
    free(reqkey);
    free(set);
    free(reason);
    free(val);
    if (rc != CQ_OK) {
        struct cq_err e = {.code = CQ_EREDIS};
        snprintf(e.msg, sizeof e.msg, "%s", w->redis ? "redis command not accepted" : "no redis");
        on_acquired(j, NULL, &e);
    }
    return true;
}

static void hold_drop(struct w_worker *w, const char *token) {
    for (struct w_lock_hold **pp = &w->locks; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->token, token) == 0) {
            struct w_lock_hold *h = *pp;
            *pp = h->next;
            free(h->key);
            free(h->token);
            free(h->rid);
            free(h->reqkey);
            free(h);
            return;
        }
}

void w_locks_on_final(struct job *j) {
    if (!j->lock_token || (j->step && strcmp(j->step, "ack") == 0))
        return; /* a tracked pipeline holds it until the tracker's final */
    struct w_worker *w = j->w;
    char *reqkey = cq_strprintf("%slockreq:%s", prefix_of(j->cfg), j->req.id);
    if (reqkey && w->redis && !w->torn_down) {
        const char *argv[] = {"EVAL", RELEASE_LUA, "2", j->lock_key, reqkey, j->lock_token};
        cq_redis_commandargv(w->redis, w_ignore_reply, NULL, 6, argv, NULL);
        cq_info(j->req.id, "lock %s released", j->lock_key);
    }
    free(reqkey);
    hold_drop(w, j->lock_token);
    free(j->lock_token);
    j->lock_token = NULL;
}

void w_locks_release_req(struct cq_redis *r, const char *prefix, const char *rid) {
    if (!r || !rid) return;
    const char *argv[] = {"EVAL", RELEASE_REQ_LUA, "0", prefix ? prefix : "", rid};
    cq_redis_commandargv(r, w_ignore_reply, NULL, 5, argv, NULL);
}

struct renew {
    struct w_worker *w;
    char *token;
};

static void on_renewed(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct renew *rn = opaque;
    if (!err && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && !rn->w->torn_down)
        hold_drop(rn->w, rn->token); /* released (final, unlock --force) or past lock_max_s */
    free(rn->token);
    free(rn);
}

void w_locks_renew(struct w_worker *w) {
    char px[32], now[32];
    snprintf(px, sizeof px, "%d", w->cfg->worker.lock_lease_ms);
    snprintf(now, sizeof now, "%lld", (long long)w_wall_ms());
    for (struct w_lock_hold *h = w->locks; h && w->redis; h = h->next) {
        struct renew *rn = calloc(1, sizeof(*rn));
        if (!rn || !(rn->token = strdup(h->token))) {
            free(rn);
            continue;
        }
        rn->w = w;
        const char *argv[] = {"EVAL", RENEW_LUA, "2", h->key, h->reqkey, h->token, px, now};
        if (cq_redis_commandargv(w->redis, on_renewed, rn, 8, argv, NULL) != CQ_OK) {
            free(rn->token);
            free(rn);
        }
    }
}

void w_locks_free_all(struct w_worker *w) {
    while (w->locks)
        hold_drop(w, w->locks->token);
}

/* ---- built-ins: locks, lock NAME REASON, unlock NAME [--force] ---- */

static bool has_role(const struct cq_person *p, char **roles) {
    for (size_t i = 0; p && p->roles && p->roles[i]; i++)
        for (size_t k = 0; roles && roles[k]; k++)
            if (strcmp(p->roles[i], roles[k]) == 0) return true;
    return false;
}

bool w_locks_decide(struct job *j) {
    const char *word = j->req.command;
    const char *usage = NULL;
    if (strcmp(word, "locks") != 0 && strcmp(word, "lock") != 0 && strcmp(word, "unlock") != 0)
        return false;
    w_policy_check(j->cfg, j->person, j->channel, word, NULL, &j->dec);
    if (!j->dec.allowed) {
        j->kind = JK_DENIED;
        j->status = "denied";
        j->text = strdup(j->dec.reason);
        return true;
    }
    if (strcmp(word, "lock") == 0 && j->argv.n < 2) usage = "usage: lock NAME REASON";
    if (strcmp(word, "unlock") == 0) {
        size_t names = 0, force = 0;
        for (size_t i = 0; i < j->argv.n; i++)
            strcmp(j->argv.v[i], "--force") == 0 ? force++ : names++;
        if (names != 1 || force > 1) usage = "usage: unlock NAME [--force]";
    }
    if (strcmp(word, "locks") == 0 && j->argv.n != 0) usage = "usage: locks";
    if (usage) {
        j->kind = JK_INVALID;
        j->text = strdup(usage);
        return true;
    }
    j->kind = JK_BUILTIN;
    j->status = "ok";
    j->pl_builtin = PB_LOCKS;
    j->text = strdup("");
    return true;
}

static void bi_finish(struct job *j, const char *status, char *text) {
    if (w_job_gone(j))
        w_job_abandon(j, "stopped during a lock built-in");
    else
        w_finish_with(j, status, text);
    w_job_op_end(j);
}

static const char *redis_err(const redisReply *r, const struct cq_err *err) {
    return err ? err->msg
               : (r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer from redis");
}

static void on_list(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct job *j = opaque;
    if (err || !r || r->type != REDIS_REPLY_ARRAY) {
        bi_finish(j, "failed", cq_strprintf("locks: %s", redis_err(r, err)));
        return;
    }
    if (r->elements == 0) {
        bi_finish(j, "ok", strdup("No locks are held."));
        return;
    }
    size_t cap = 64 + r->elements * 400, len = 0;
    char *out = malloc(cap);
    if (out)
        len = (size_t)snprintf(out, cap, "%zu lock%s held:", r->elements,
                               r->elements == 1 ? "" : "s");
    int64_t now = w_wall_ms();
    for (size_t i = 0; out && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        char *d = w_lock_describe(r->element[i]->str, now);
        if (d && len + strlen(d) + 4 < cap)
            len += (size_t)snprintf(out + len, cap - len, "\n• %s", d);
        free(d);
    }
    bi_finish(j, "ok", out);
}

/* REASON of `lock NAME REASON`: the text after the name, as typed */
static const char *lock_reason(const struct job *j) {
    const char *r = j->req.text ? j->req.text : "";
    r += strspn(r, " \t");
    r += strcspn(r, " \t");
    return r + strspn(r, " \t");
}

static void on_lock(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct job *j = opaque;
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        bi_finish(j, "failed", cq_strprintf("lock: %s", redis_err(r, err)));
        return;
    }
    if (r->element[0]->integer != 1) {
        char *d = w_lock_describe(
            r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "", w_wall_ms());
        w_metric_refusal("lock");
        bi_finish(j, "denied", cq_strprintf("not locked: %s", d ? d : "someone else holds it"));
        free(d);
        return;
    }
    char d[32];
    w_fmt_duration(d, sizeof d, (int64_t)j->cfg->worker.lock_manual_s * 1000);
    bi_finish(j, "ok",
              cq_strprintf("Locked `%s` for %s (lapses by itself in %s; `unlock %s` frees it).",
                           j->argv.v[0], lock_reason(j), d, j->argv.v[0]));
}

static void on_unlock(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct job *j = opaque;
    const char *name = NULL;
    for (size_t i = 0; i < j->argv.n; i++)
        if (strcmp(j->argv.v[i], "--force") != 0) name = j->argv.v[i];
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        bi_finish(j, "failed", cq_strprintf("unlock: %s", redis_err(r, err)));
        return;
    }
    const char *cur = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    char *d = *cur ? w_lock_describe(cur, w_wall_ms()) : NULL;
    if (r->element[0]->integer == 0)
        bi_finish(j, "invalid", cq_strprintf("`%s` is not locked (`locks` lists them)", name));
    else if (r->element[0]->integer < 0)
        bi_finish(j, "denied",
                  cq_strprintf("not unlocked: %s; only its holder may unlock it, or someone with "
                               "a role of worker.lock_force_roles with `unlock %s --force`",
                               d ? d : "someone else holds it", name));
    else
        bi_finish(j, "ok",
                  cq_strprintf("Unlocked `%s`%s%s.", name, d ? "; it was: " : "", d ? d : ""));
    free(d);
}

void w_locks_builtin(struct job *j) {
    struct w_worker *w = j->w;
    const char *p = prefix_of(j->cfg);
    const char *word = j->req.command;
    enum cq_rc rc = CQ_ENOMEM;
    char *k1 = NULL, *k2 = NULL, *val = NULL, *tok = NULL, *user = NULL;
    cq_redis_cb cb = on_list;
    w_job_op_begin(j);
    if (!w->redis) {
        bi_finish(j, "failed", cq_strprintf("%s: redis is not connected", word));
        return;
    }
    if (strcmp(word, "locks") == 0) {
        k1 = cq_strprintf("%slocks", p);
        const char *argv[] = {"EVAL", LIST_LUA, "1", k1, p};
        if (k1) rc = cq_redis_commandargv(w->redis, on_list, j, 5, argv, NULL);
    } else if (strcmp(word, "lock") == 0) {
        cb = on_lock;
        const char *name = j->argv.v[0];
        const char *reason = lock_reason(j);
        k1 = cq_strprintf("%slock:%s", p, name);
        k2 = cq_strprintf("%slocks", p);
        tok = new_token();
        int64_t ttl = (int64_t)j->cfg->worker.lock_manual_s * 1000;
        val = tok ? lock_value(j, name, tok, "manual", reason, w_wall_ms() + ttl) : NULL;
        char px[32];
        snprintf(px, sizeof px, "%lld", (long long)ttl);
        /* the same request again (a redelivery) re-takes its own lock */
        const char *argv[] = {"EVAL", ACQUIRE_LUA, "3", k1, "", k2, val, j->req.id, px, name};
        if (k1 && k2 && val) rc = cq_redis_commandargv(w->redis, on_lock, j, 10, argv, NULL);
    } else {
        cb = on_unlock;
        bool force = false;
        const char *name = NULL;
        for (size_t i = 0; i < j->argv.n; i++)
            if (strcmp(j->argv.v[i], "--force") == 0)
                force = true;
            else
                name = j->argv.v[i];
        if (force && !has_role(j->person, j->cfg->worker.lock_force_roles)) {
            w_metric_refusal("unlock_force");
            bi_finish(j, "denied",
                      cq_strprintf("`unlock --force` needs a role of worker.lock_force_roles; "
                                   "`%s` was not unlocked",
                                   name));
            return;
        }
        k1 = cq_strprintf("%slock:%s", p, name);
        user = user_of(j);
        const char *argv[] = {"EVAL", UNLOCK_LUA, "1", k1, p, user ? user : "", force ? "1" : "0"};
        if (k1 && user) rc = cq_redis_commandargv(w->redis, on_unlock, j, 7, argv, NULL);
    }
    if (rc != CQ_OK) {
        struct cq_err e = {.code = CQ_EREDIS};
        snprintf(e.msg, sizeof e.msg, "redis command not accepted");
        cb(j, NULL, &e);
    }
    free(k1);
    free(k2);
    free(val);
    free(tok);
    free(user);
}
