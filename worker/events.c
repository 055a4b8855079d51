/* events: the GitLab event router (see events.h). One event at a time, in the order the
 * partitions hand them over (a project's events are on one partition, so its transitions are
 * read in order):
 *   seen?  (GET ev:seen:<uuid>: a GitLab re-send already posted is committed and dropped)
 *   -> transition (a pipeline's success/failed against the last status of project+ref, one
 *      Lua script, idempotent for a redelivered event: "fixed" / "broken")
 *   -> chat subscriptions (one Lua script reads every channel's, subscriptions.c writes them)
 *   -> targets (config + chat subscriptions that match, each channel once)
 *   -> per target a sequence number (quiet updates: one message per pipeline / MR /
 *      deployment / job per channel, updated in place: a fixed request id per object and
 *      channel, step "progress", increasing seq) or a push burst count (more than
 *      events.coalesce_max pushes of a project into a channel within events.coalesce_ms
 *      become one summary message updated in place)
 *   -> produce the results, and only when every one was acknowledged: mark the uuid seen,
 *      then mark the offset done (committed by the consumer's watermark).
 * A Redis or Kafka failure retries the event from the start after a second; it stays at the
 * head, so nothing behind it overtakes it. */
#include "events.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"
#include "service_int.h"
#include "strutil.h"
#include "subscriptions.h"

#define RETRY_MS 1000
#define MAX_TARGETS 64
#define TEXT_MAX 3000

/* last status of a project+ref: "<pipeline id> <status> <status before>" */
static const char TRANS_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "local id = tonumber(ARGV[1])\n"
    "local prev = ''\n"
    "if cur then\n"
    "  local cid, cst, cprev = string.match(cur, '^(%d+) (%S+) ?(%S*)$')\n"
    "  cid = tonumber(cid)\n"
    "  if cid == id and cst == ARGV[2] then return cprev end\n"
    "  if cid and cid > id then return 'stale' end\n"
    "  prev = cst or ''\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. prev, 'EX', ARGV[3])\n"
    "return prev\n";

/* every chat subscription: {chat, json, chat, json, ...} */
static const char CHATS_LUA[] = "local out = {}\n"
                                "for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                                "  local h = redis.call('HGETALL', ARGV[1] .. c)\n"
                                "  for i = 1, #h, 2 do out[#out + 1] = c; out[#out + 1] = "
                                "h[i + 1] end\n"
                                "end\n"
                                "return out\n";

/* burst(counter, refs, id; window_ms, ref, max, candidate id): {n} within the allowance,
 * else {n, window id, the latest refs...}. The window starts at its first push. */
static const char BURST_LUA[] = "local n = redis.call('INCR', KEYS[1])\n"
                                "if n == 1 then\n"
                                "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
                                "  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[1])\n"
                                "end\n"
                                "if n <= tonumber(ARGV[3]) then return {n} end\n"
                                "redis.call('RPUSH', KEYS[2], ARGV[2])\n"
                                "redis.call('PEXPIRE', KEYS[2], ARGV[1])\n"
                                "local refs = redis.call('LRANGE', KEYS[2], -10, -1)\n"
                                "table.insert(refs, 1, redis.call('GET', KEYS[3]) or ARGV[4])\n"
                                "table.insert(refs, 1, n)\n"
                                "return refs\n";

static const char SEQ_LUA[] = "local n = redis.call('INCR', KEYS[1])\n"
                              "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
                              "return n\n";

struct target {
    char platform[16];
    char chat[CQ_ENV_MAX_ID + 1];
    char request_id[64];
    const char *step;
    long long seq;
    char *summary; /* a burst summary's text, or NULL */
};

struct ev {
    struct w_events *e;
    struct ev *next;
    char *topic;
    int32_t partition;
    int64_t offset;
    char *payload;
    size_t len;
    bool decoded, parsed;
    struct cq_event rec;
    struct w_ev_facts f;
    struct target t[MAX_TARGETS];
    size_t n_t, cur;
    int outs;
    bool out_failed;
};

struct w_events {
    struct cq_loop *loop;
    const struct cq_config *cfg;
    struct cq_redis *redis;
    struct cq_producer *producer;
    struct cq_consumer *consumer;
    struct ev *head, *tail;
    size_t n;
    bool busy, paused, stopping;
    uv_timer_t retry;
    bool freeing, timer_closed;
    int ops; /* Redis commands and Kafka sends outstanding: e lives until they are back */
};

static void step_start(struct ev *v);
static void release(struct w_events *e);

/* Every async callback starts here: true when the router is being freed (the callback must
 * return at once; the last one frees what is left). */
static bool gone(struct ev *v) {
    struct w_events *e = v->e;
    e->ops--;
    if (!e->freeing) return false;
    release(e);
    return true;
}

static enum cq_rc redis_argv(struct ev *v, cq_redis_cb cb, int argc, const char **argv) {
    enum cq_rc rc = cq_redis_commandargv(v->e->redis, cb, v, argc, argv, NULL);
    if (rc == CQ_OK) v->e->ops++;
    return rc;
}

static enum cq_rc send_msg(struct ev *v, const char *topic, const char *key, const char *value,
                           cq_delivery_cb cb, struct cq_err *err) {
    enum cq_rc rc = cq_producer_send(v->e->producer, topic, key, strlen(key), value, strlen(value),
                                     NULL, cb, v, err);
    if (rc == CQ_OK) v->e->ops++;
    return rc;
}

static const char *prefix(const struct w_events *e) {
    return e->cfg->redis.prefix ? e->cfg->redis.prefix : "";
}

static void metric(const char *outcome) {
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    cq_metric_inc("chatops_worker_events_total",
                  "GitLab events routed by the worker, by how they ended", labels);
}

static void ev_free(struct ev *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n_t; i++)
        free(v->t[i].summary);
    cq_event_clear(&v->rec);
    w_ev_facts_clear(&v->f);
    free(v->topic);
    free(v->payload);
    free(v);
}

static void next_event(struct w_events *e) {
    e->busy = false;
    if (e->stopping || !e->head) return;
    e->busy = true;
    step_start(e->head);
}

/* The head is finished: its offset is done, the next one starts. */
static void done(struct ev *v, const char *outcome) {
    struct w_events *e = v->e;
    metric(outcome);
    if (e->consumer) cq_consumer_done(e->consumer, v->topic, v->partition, v->offset);
    e->head = v->next;
    if (!e->head) e->tail = NULL;
    e->n--;
    ev_free(v);
    if (e->paused && !e->stopping && e->n * 2 < (size_t)e->cfg->events.max_inflight) {
        e->paused = false;
        cq_consumer_pause(e->consumer, false);
    }
    next_event(e);
}

static void on_retry(uv_timer_t *t) {
    struct w_events *e = t->data;
    if (e->head && !e->stopping) step_start(e->head);
}

static void retry_later(struct ev *v, const char *why) {
    if (v->e->stopping) { /* draining: left on Kafka for the next owner */
        v->e->busy = false;
        return;
    }
    cq_warn(NULL, "gitlab event %s: %s; trying again in 1 s", v->rec.uuid ? v->rec.uuid : "?", why);
    metric("retried");
    uv_timer_start(&v->e->retry, on_retry, RETRY_MS, 0);
}

/* ---- the end: seen mark, then done ---- */

static void on_seen_set(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ev *v = opaque;
    if (gone(v)) return;
    if (err || !reply || reply->type == REDIS_REPLY_ERROR) {
        retry_later(v, err ? err->msg : "seen mark refused");
        return;
    }
    done(v, v->n_t ? "routed" : "unmatched");
}

static void mark_seen(struct ev *v) {
    struct w_events *e = v->e;
    char key[512], ttl[16];
    snprintf(key, sizeof key, "%sev:seen:%s", prefix(e), v->rec.uuid);
    snprintf(ttl, sizeof ttl, "%d", e->cfg->events.dedupe_ttl_s);
    const char *argv[] = {"SET", key, "1", "EX", ttl};
    if (redis_argv(v, on_seen_set, 5, argv) != CQ_OK) retry_later(v, "redis refused the command");
}

/* ---- produce ---- */

static void on_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                         int64_t offset) {
    struct ev *v = opaque;
    (void)partition;
    (void)offset;
    if (gone(v)) return;
    if (rc != CQ_OK) {
        cq_warn(NULL, "event result not delivered: %s", errstr);
        v->out_failed = true;
    }
    if (--v->outs > 0) return;
    if (v->out_failed)
        retry_later(v, "a result was not acknowledged by kafka");
    else
        mark_seen(v);
}

static char *result_of(struct ev *v, const struct target *t) {
    struct cq_result r = {0};
    struct cq_err err = {0};
    char now[32];
    char *head = w_ev_headline(&v->f), *text = t->summary ? NULL : w_ev_text(&v->f, TEXT_MAX);
    char *out = NULL;
    if (!head || (!t->summary && !text)) goto out;
    cq_now_rfc3339(now);
    r.request_id = (char *)t->request_id;
    r.step = (char *)t->step;
    r.status = (char *)(t->summary ? "ok" : w_ev_result_status(&v->f));
    r.platform = (char *)t->platform;
    r.reply.chat_id = (char *)t->chat;
    r.text = t->summary ? t->summary : text;
    r.command = t->summary ? (char *)"GitLab pushes" : head;
    r.seq = (int)(t->seq > 2000000000 ? 2000000000 : t->seq);
    r.produced_at = now;
    r.response_type = (char *)"in_channel";
    if (!t->summary && strcmp(v->f.kind, "pipeline") == 0) {
        r.pipeline.id = v->f.object_id;
        r.pipeline.web_url = v->f.url;
        r.pipeline.status = v->f.status;
    }
    r.event_kind = (char *)v->f.kind;
    if (!t->summary) {
        r.event_status = (char *)(v->f.transition ? v->f.transition
                                  : v->f.status   ? v->f.status
                                                  : v->f.action);
        r.event_url = v->f.url;
        r.event_project = v->f.project;
        r.event_ref = v->f.ref;
        r.event_author = v->f.author;
        r.event_env = v->f.environment;
    } else { /* a burst summary links the project, so Feishu shows it as an updatable card */
        r.event_url = v->f.project_url;
        r.event_project = v->f.project;
    }
    out = cq_result_encode(&r, &err);
    if (!out) cq_warn(NULL, "event result not encoded: %s", err.msg);
out:
    free(head);
    free(text);
    return out;
}

static void produce_all(struct ev *v) {
    struct w_events *e = v->e;
    struct cq_err err = {0};
    v->outs = 1; /* held while sending */
    v->out_failed = false;
    for (size_t i = 0; i < v->n_t; i++) {
        char *s = result_of(v, &v->t[i]);
        if (!s) {
            v->out_failed = true;
            continue;
        }
        v->outs++;
        if (send_msg(v, e->cfg->kafka.topic_results, v->t[i].request_id, s, on_delivered, &err) !=
            CQ_OK) {
            v->outs--;
            v->out_failed = true;
        }
        free(s);
    }
    e->ops++; /* the hold, dropped like a report */
    on_delivered(v, CQ_OK, NULL, 0, 0);
}

/* ---- per target: a sequence number or a burst count ---- */

static void target_step(struct ev *v);

static void hash_id(char out[64], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hash_id(char out[64], const char *fmt, ...) {
    char in[1024], hex[2 * CQ_SHA256_LEN + 1];
    uint8_t d[CQ_SHA256_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in, sizeof in, fmt, ap);
    va_end(ap);
    cq_sha256(in, strlen(in), d);
    cq_hex(d, sizeof d, hex);
    snprintf(out, 64, "ev-%.32s", hex);
}

static void on_target_reply(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ev *v = opaque;
    if (gone(v)) return;
    struct target *t = &v->t[v->cur];
    if (err || !reply || reply->type == REDIS_REPLY_ERROR) {
        retry_later(v, err ? err->msg : reply ? reply->str : "no reply");
        return;
    }
    if (reply->type == REDIS_REPLY_INTEGER) { /* a quiet update's seq */
        t->step = "progress";
        t->seq = reply->integer;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
               reply->element[0]->type == REDIS_REPLY_INTEGER) {
        long long n = reply->element[0]->integer;
        if (reply->elements == 1) { /* within the burst allowance: its own message */
            t->step = "final";
            t->seq = 0;
        } else { /* the window's summary, updated in place */
            struct w_events *e = v->e;
            char refs[1024] = "";
            size_t used = 0;
            const redisReply *wid = reply->elements > 1 ? reply->element[1] : NULL;
            for (size_t i = 2; i < reply->elements; i++) {
                const redisReply *r = reply->element[i];
                if (r->type != REDIS_REPLY_STRING) continue;
                int w = snprintf(refs + used, sizeof refs - used, "%s%s", used ? ", " : "", r->str);
                if (w < 0 || (size_t)w >= sizeof refs - used) break;
                used += (size_t)w;
            }
            hash_id(t->request_id, "burst|%s|%s|%s",
                    wid && wid->type == REDIS_REPLY_STRING ? wid->str : v->rec.uuid, t->platform,
                    t->chat);
            t->step = "progress";
            t->seq = n;
            int max = e->cfg->events.coalesce_max;
            t->summary =
                cq_strprintf("%lld pushes to %s within %d s: the first %d are posted "
                             "above, the rest summarised here; latest: %s",
                             n, v->f.project, (e->cfg->events.coalesce_ms + 999) / 1000, max, refs);
            if (!t->summary) {
                retry_later(v, "out of memory");
                return;
            }
        }
    } else {
        retry_later(v, "unexpected redis reply");
        return;
    }
    v->cur++;
    target_step(v);
}

static void target_step(struct ev *v) {
    struct w_events *e = v->e;
    if (v->cur >= v->n_t) {
        produce_all(v);
        return;
    }
    struct target *t = &v->t[v->cur];
    free(t->summary);
    t->summary = NULL;
    const struct cq_config *cfg = e->cfg;
    enum cq_rc rc;
    if (w_ev_updates_in_place(&v->f)) {
        char key[512], ttl[16];
        hash_id(t->request_id, "%s|%lld|%s|%lld|%s|%s", v->rec.instance ? v->rec.instance : "",
                v->f.project_id, v->f.kind, v->f.object_id, t->platform, t->chat);
        snprintf(key, sizeof key, "%sev:seq:%s", prefix(e), t->request_id);
        snprintf(ttl, sizeof ttl, "%d", 7 * 86400);
        const char *argv[] = {"EVAL", SEQ_LUA, "1", key, ttl};
        rc = redis_argv(v, on_target_reply, 5, argv);
    } else if (strcmp(v->f.kind, "push") == 0 && cfg->events.coalesce_ms > 0) {
        char k1[600], k2[620], k3[620], win[16], max[16];
        hash_id(t->request_id, "%s|%s|%s", v->rec.uuid, t->platform, t->chat);
        snprintf(k1, sizeof k1, "%sev:burst:%s|%s|%s", prefix(e), t->platform, t->chat,
                 v->f.project);
        snprintf(k2, sizeof k2, "%s:refs", k1);
        snprintf(k3, sizeof k3, "%s:id", k1);
        snprintf(win, sizeof win, "%d", cfg->events.coalesce_ms);
        snprintf(max, sizeof max, "%d", cfg->events.coalesce_max);
        const char *argv[] = {"EVAL", BURST_LUA,  "3", k1, k2, k3, win, v->f.ref ? v->f.ref : "?",
                              max,    v->rec.uuid};
        rc = redis_argv(v, on_target_reply, 10, argv);
    } else {
        hash_id(t->request_id, "%s|%s|%s", v->rec.uuid, t->platform, t->chat);
        t->step = "final";
        t->seq = 0;
        v->cur++;
        target_step(v);
        return;
    }
    if (rc != CQ_OK) retry_later(v, "redis refused the command");
}

/* ---- targets ---- */

static void add_target(struct ev *v, const char *platform, const char *chat) {
    if (!platform || !chat || !*chat || strlen(chat) > CQ_ENV_MAX_ID) return;
    for (size_t i = 0; i < v->n_t; i++)
        if (strcmp(v->t[i].platform, platform) == 0 && strcmp(v->t[i].chat, chat) == 0) return;
    if (v->n_t >= MAX_TARGETS) {
        cq_warn(NULL, "gitlab event %s: more than %d channels; the rest are skipped", v->rec.uuid,
                MAX_TARGETS);
        return;
    }
    struct target *t = &v->t[v->n_t++];
    memset(t, 0, sizeof(*t));
    snprintf(t->platform, sizeof t->platform, "%s", platform);
    snprintf(t->chat, sizeof t->chat, "%s", chat);
}

static void on_chats(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ev *v = opaque;
    if (gone(v)) return;
    const struct cq_config *cfg = v->e->cfg;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY) {
        retry_later(v, err ? err->msg : "chat subscriptions unreadable");
        return;
    }
    v->n_t = 0;
    v->cur = 0;
    for (size_t i = 0; i < cfg->n_subscriptions; i++) {
        const struct cq_subscription *s = &cfg->subscriptions[i];
        struct w_ev_match m = {s->projects,     s->kinds,   s->statuses, s->refs,
                               s->environments, s->actions, s->labels};
        if (!w_ev_matches(&m, &v->f)) continue;
        for (size_t k = 0; s->channels && s->channels[k]; k++)
            for (size_t c = 0; c < cfg->n_channels; c++)
                if (strcmp(cfg->channels[c].name, s->channels[k]) == 0)
                    add_target(v, cfg->channels[c].platform, cfg->channels[c].id);
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *c = reply->element[i], *j = reply->element[i + 1];
        char platform[16], chat[CQ_ENV_MAX_ID + 1];
        if (c->type != REDIS_REPLY_STRING || j->type != REDIS_REPLY_STRING) continue;
        if (!w_subs_split_chat(c->str, platform, sizeof platform, chat, sizeof chat)) continue;
        if (w_subs_json_matches(j->str, &v->f)) add_target(v, platform, chat);
    }
    target_step(v);
}

static void read_chats(struct ev *v) {
    struct w_events *e = v->e;
    char set[300], pre[300];
    snprintf(set, sizeof set, "%sev:chats", prefix(e));
    snprintf(pre, sizeof pre, "%sev:chat:", prefix(e));
    const char *argv[] = {"EVAL", CHATS_LUA, "1", set, pre};
    if (redis_argv(v, on_chats, 5, argv) != CQ_OK) retry_later(v, "redis refused the command");
}

/* ---- transition ---- */

static void on_transition(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ev *v = opaque;
    if (gone(v)) return;
    if (err || !reply || reply->type != REDIS_REPLY_STRING) {
        retry_later(v, err ? err->msg : "last status unreadable");
        return;
    }
    const char *prev = reply->str, *now = v->f.status;
    v->f.transition = NULL;
    if (strcmp(prev, "failed") == 0 && strcmp(now, "success") == 0) v->f.transition = "fixed";
    if (strcmp(prev, "success") == 0 && strcmp(now, "failed") == 0) v->f.transition = "broken";
    read_chats(v);
}

static void transition(struct ev *v) {
    struct w_events *e = v->e;
    const char *st = v->f.status;
    if (strcmp(v->f.kind, "pipeline") != 0 || !st || !v->f.ref || !v->f.object_id ||
        (strcmp(st, "success") != 0 && strcmp(st, "failed") != 0)) {
        read_chats(v);
        return;
    }
    char key[900], id[32], ttl[16];
    snprintf(key, sizeof key, "%sev:last:%s:%lld:%s", prefix(e),
             v->rec.instance ? v->rec.instance : "", v->f.project_id, v->f.ref);
    snprintf(id, sizeof id, "%lld", v->f.object_id);
    snprintf(ttl, sizeof ttl, "%d", e->cfg->events.status_ttl_s);
    const char *argv[] = {"EVAL", TRANS_LUA, "1", key, id, st, ttl};
    if (redis_argv(v, on_transition, 7, argv) != CQ_OK) retry_later(v, "redis refused the command");
}

/* ---- start: decode, parse, seen? ---- */

static void on_seen(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct ev *v = opaque;
    if (gone(v)) return;
    if (err || !reply || reply->type == REDIS_REPLY_ERROR) {
        retry_later(v, err ? err->msg : reply->str);
        return;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        cq_info(NULL, "gitlab event %s was already posted: dropped", v->rec.uuid);
        done(v, "duplicate");
        return;
    }
    transition(v);
}

static void on_dlq_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                             int64_t offset) {
    struct ev *v = opaque;
    (void)partition;
    (void)offset;
    if (gone(v)) return;
    if (rc != CQ_OK) {
        retry_later(v, errstr);
        return;
    }
    done(v, "invalid");
}

static void dead_letter(struct ev *v, const char *reason) {
    struct w_events *e = v->e;
    struct cq_err err = {0};
    struct cq_message m = {.topic = v->topic,
                           .partition = v->partition,
                           .offset = v->offset,
                           .payload = v->payload,
                           .len = v->len};
    char key[64];
    cq_warn(NULL, "dead-lettering event %s/%d@%lld: %s", v->topic, (int)v->partition,
            (long long)v->offset, reason);
    char *s = w_dlq_json(&m, reason);
    snprintf(key, sizeof key, "%s/%d/%lld", v->topic, (int)v->partition, (long long)v->offset);
    if (!s || send_msg(v, e->cfg->kafka.topic_dlq, key, s, on_dlq_delivered, &err) != CQ_OK)
        retry_later(v, s ? err.msg : "out of memory");
    free(s);
}

static void step_start(struct ev *v) {
    struct w_events *e = v->e;
    struct cq_err err = {0};
    if (!v->decoded) {
        if (cq_event_decode(v->payload, v->len, e->cfg->limits.max_envelope, &v->rec, &err) !=
            CQ_OK) {
            dead_letter(v, err.msg);
            return;
        }
        v->decoded = true;
    }
    if (!v->parsed) {
        if (w_ev_facts_parse(v->rec.kind, v->rec.body, strlen(v->rec.body), &v->f, &err) != CQ_OK) {
            if (err.code == CQ_ENOMEM)
                retry_later(v, err.msg);
            else
                dead_letter(v, err.msg);
            return;
        }
        v->parsed = true;
    }
    char key[512];
    snprintf(key, sizeof key, "%sev:seen:%s", prefix(e), v->rec.uuid);
    const char *argv[] = {"GET", key};
    if (redis_argv(v, on_seen, 2, argv) != CQ_OK) retry_later(v, "redis refused the command");
}

/* ---- consumer ---- */

static void on_message(void *opaque, const struct cq_message *m) {
    struct w_events *e = opaque;
    if (e->stopping) return; /* left for the next owner */
    struct ev *v = calloc(1, sizeof(*v));
    if (!v || !(v->topic = strdup(m->topic)) || !(v->payload = malloc(m->len + 1))) {
        ev_free(v);
        cq_error(NULL, "out of memory taking event %s/%d@%lld", m->topic, (int)m->partition,
                 (long long)m->offset);
        return;
    }
    memcpy(v->payload, m->payload, m->len);
    v->payload[m->len] = '\0';
    v->len = m->len;
    v->e = e;
    v->partition = m->partition;
    v->offset = m->offset;
    if (e->tail)
        e->tail->next = v;
    else
        e->head = v;
    e->tail = v;
    e->n++;
    if (!e->paused && e->n >= (size_t)e->cfg->events.max_inflight) {
        e->paused = true;
        cq_consumer_pause(e->consumer, true);
    }
    if (!e->busy) next_event(e);
}

struct w_events *w_events_new(const struct w_events_deps *d, struct cq_err *err) {
    struct w_events *e = calloc(1, sizeof(*e));
    const char *topics[] = {d->cfg->kafka.topic_events, NULL};
    if (!e) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        return NULL;
    }
    e->loop = d->loop;
    e->cfg = d->cfg;
    e->redis = d->redis;
    e->producer = d->producer;
    uv_timer_init(cq_loop_uv(d->loop), &e->retry);
    e->retry.data = e;
    char mpi[16];
    snprintf(mpi, sizeof(mpi), "%d", d->cfg->kafka.max_poll_interval_ms);
    const char *own[] = {"max.poll.interval.ms", mpi, NULL};
    const char **kconf = cq_kafka_conf_join(d->cfg->kafka.client_conf, own);
    if (!kconf) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        w_events_free(e);
        return NULL;
    }
    e->consumer = cq_consumer_new(d->cfg->kafka.brokers, d->cfg->kafka.events_group, topics,
                                  d->loop, on_message, e, kconf, err);
    free(kconf);
    if (!e->consumer) {
        w_events_free(e);
        return NULL;
    }
    cq_info(NULL, "routing gitlab events from %s as group %s", d->cfg->kafka.topic_events,
            d->cfg->kafka.events_group);
    return e;
}

void w_events_set_config(struct w_events *e, const struct cq_config *cfg) {
    if (e) e->cfg = cfg;
}

void w_events_pause(struct w_events *e) {
    if (!e || e->stopping) return;
    e->stopping = true;
    if (uv_is_active((uv_handle_t *)&e->retry)) e->busy = false; /* waiting: left on Kafka */
    uv_timer_stop(&e->retry);
    if (e->consumer) cq_consumer_pause(e->consumer, true);
}

size_t w_events_inflight(const struct w_events *e) {
    return e && e->busy ? 1 : 0;
}

static void release(struct w_events *e) {
    if (!e->freeing || e->ops > 0 || !e->timer_closed) return;
    while (e->head) {
        struct ev *v = e->head;
        e->head = v->next;
        ev_free(v);
    }
    free(e);
}

static void on_timer_closed(uv_handle_t *h) {
    struct w_events *e = h->data;
    e->timer_closed = true;
    release(e);
}

/* Call before the worker frees Redis and the producer: their callbacks still come back
 * (with errors) and the last of them frees the router. */
void w_events_free(struct w_events *e) {
    struct cq_err err = {0};
    if (!e) return;
    e->freeing = true;
    e->stopping = true;
    if (e->consumer && cq_consumer_commit_now(e->consumer, &err) != CQ_OK)
        cq_warn(NULL, "events: final offset commit failed: %s", err.msg);
    cq_consumer_free(e->consumer);
    e->consumer = NULL;
    /* what is queued behind the head has nothing outstanding */
    if (e->head) {
        while (e->head->next) {
            struct ev *v = e->head->next;
            e->head->next = v->next;
            ev_free(v);
        }
    }
    uv_timer_stop(&e->retry);
    uv_close((uv_handle_t *)&e->retry, on_timer_closed);
}
