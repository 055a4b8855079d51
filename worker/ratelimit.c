/* ratelimit: `limit: {count, window_s, per}` on a command (issue 16), a sliding window in
 * one Redis sorted set per command and subject, checked and consumed atomically by one Lua
 * script. A redelivered request counts once (its id is the member). */
#include "locks.h"
#include "service_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "strutil.h"

/* KEYS[1] the window; ARGV now_ms, window_ms, count, member, consume (1/0).
 * Returns {allowed 1/0, used, retry_ms}. */
static const char LIMIT_LUA[] =
    "local now, win, cnt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, n, 0} end\n"
    "if n >= cnt then\n"
    "  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  return {0, n, tonumber(first[2]) + win - now}\n"
    "end\n"
    "if ARGV[5] == '1' then\n"
    "  redis.call('ZADD', KEYS[1], now, ARGV[4])\n"
    "  redis.call('PEXPIRE', KEYS[1], win)\n"
    "  n = n + 1\n"
    "end\n"
    "return {1, n, 0}\n";

static const char *const PER_WORD[] = {"user", "channel", "global"};

char *w_limit_key(const struct job *j) {
    const struct cq_command *c = j->cmd;
    const char *p = j->cfg->redis.prefix ? j->cfg->redis.prefix : "";
    switch (c->limit.per) {
    case CQ_LIMIT_USER:
        if (j->person) return cq_strprintf("%srl:%s:person:%s", p, c->name, j->person->name);
        return cq_strprintf("%srl:%s:user:%s:%s", p, c->name, j->req.platform,
                            j->req.user_id ? j->req.user_id : "");
    case CQ_LIMIT_CHANNEL:
        return cq_strprintf("%srl:%s:chan:%s:%s", p, c->name, j->req.platform,
                            j->req.channel_id ? j->req.channel_id : "");
    case CQ_LIMIT_GLOBAL:
        break;
    }
    return cq_strprintf("%srl:%s:all", p, c->name);
}

void w_fmt_duration(char *buf, size_t size, int64_t ms) {
    long long s = ms <= 0 ? 0 : (ms + 999) / 1000;
    if (s >= 3600)
        snprintf(buf, size, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(buf, size, "%llds", s);
}

char *w_limit_refusal(const struct cq_command *c, int64_t retry_ms) {
    char d[32];
    w_fmt_duration(d, sizeof d, retry_ms);
    const char *per = (unsigned)c->limit.per < 3 ? PER_WORD[c->limit.per] : "user";
    return cq_strprintf("rate limit: %d `%s` per %d s %s%s; try again in %s", c->limit.count,
                        c->name, c->limit.window_s, c->limit.per == CQ_LIMIT_GLOBAL ? "" : "per ",
                        c->limit.per == CQ_LIMIT_GLOBAL ? "in all" : per, d);
}

char *w_limit_state(const struct cq_command *c, long long used, long long retry_ms, bool ok) {
    const char *per = (unsigned)c->limit.per < 3 ? PER_WORD[c->limit.per] : "user";
    if (!ok) {
        char d[32];
        w_fmt_duration(d, sizeof d, retry_ms);
        return cq_strprintf("%lld of %d used in %d s per %s: refused now, free again in %s", used,
                            c->limit.count, c->limit.window_s, per, d);
    }
    return cq_strprintf("%lld of %d used in %d s per %s: %lld left", used, c->limit.count,
                        c->limit.window_s, per, (long long)c->limit.count - used);
}

void w_metric_refusal(const char *kind) {
    char labels[64];
    snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
    cq_metric_inc("chatops_worker_refusals_total",
                  "Allowed actions refused before running, by kind (lock, rate_limit)", labels);
}

struct limit_call {
    void *opaque;
    w_limit_cb cb;
};

static void on_limit(void *opaque, const redisReply *r, const struct cq_err *err) {
    struct limit_call *lc = opaque;
    void *j = lc->opaque;
    w_limit_cb cb = lc->cb;
    free(lc);
    if (err || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        cb(j, -1, 0, 0,
           err ? err->msg
               : (r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer from redis"));
        return;
    }
    cb(j, (int)r->element[0]->integer, r->element[1]->integer, r->element[2]->integer, NULL);
}

void w_limit_run(struct job *j, bool consume, w_limit_cb cb, void *opaque) {
    struct w_worker *w = j->w;
    char *key = w_limit_key(j);
    struct limit_call *lc = calloc(1, sizeof(*lc));
    char now[32], win[32], cnt[32];
    snprintf(now, sizeof now, "%lld", (long long)w_wall_ms());
    snprintf(win, sizeof win, "%lld", (long long)j->cmd->limit.window_s * 1000);
    snprintf(cnt, sizeof cnt, "%d", j->cmd->limit.count);
    if (!key || !lc || !w->redis) {
        free(key);
        free(lc);
        cb(opaque, -1, 0, 0, w->redis ? "out of memory" : "redis is not connected");
        return;
    }
    lc->opaque = opaque;
    lc->cb = cb;
    const char *argv[] = {"EVAL",    LIMIT_LUA,          "1", key, now, win, cnt,
                          j->req.id, consume ? "1" : "0"};
    if (cq_redis_commandargv(w->redis, on_limit, lc, 9, argv, NULL) != CQ_OK) {
        free(lc);
        cb(opaque, -1, 0, 0, "redis command not accepted");
    }
    free(key);
}
