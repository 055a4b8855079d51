/* service: chatops.results -> Slack / Feishu, once per (request, step, seq). Every result
 * becomes a job that walks: claim in Redis -> pick a route -> (Feishu: token) -> paced send
 * on curl multi -> classify the answer -> delivered (mark, commit) | retry on a timer |
 * fallback route | dead letter (produce to chatops.dlq, then commit). Nothing blocks: each
 * job has at most one operation pending (Redis, HTTP, Kafka report, timer, token wait). */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "backoff.h"
#include "classify.h"
#include "crypto.h"
#include "envelope.h"
#include "feishu_format.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "slack_format.h"
#include "utf8.h"

#define RURL_MAX_USES 5
#define RURL_TTL_MS (30 * 60 * 1000)
/* notifier.claim_lease_ms: the once-claim's lease, renewed every third of it for every
 * result held (waiting for pacing, a send slot, a token, a 429 hold or a retry) so that a
 * rebalance never hands a held result to another copy. */
#define BUSY_RECHECK_MS 1000
#define TOKEN_EARLY_MS (3 * 60 * 1000)
#define TOKEN_LOCK_MS 10000
#define TOKEN_WAIT_MS 250
/* notifier.drain_ms (0: http_timeout_ms + 5 s): on SIGTERM, sends in flight get until then
 * to answer; a delivered mark or dead-letter report then still lands and is committed. */
#define DRAIN_SETTLE_MS 5000
/* notifier.max_inflight: results held at once (accepted, not yet settled); fetching pauses
 * there and resumes below half. notifier.max_sends: concurrent platform requests (more would
 * only queue inside curl and time out). */
#define ANSWER_KEEP 2000  /* bytes of a platform answer kept for logs and the DLQ */
#define REQ_BUCKETS 16384 /* request id -> its jobs; power of two (chains past it) */

/* ------------------------------------------------------------------ Lua (atomic steps) */

/* claim(key [, final_key], owner, lease_ms): own | delivered | busy. With final_key (an
 * "outcome unknown" result), a true final of the request already sending or delivered
 * supersedes it: it reads as delivered. */
static const char CLAIM_LUA[] =
    "if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then return 'delivered' end\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 'own' end\n"
    "if v == 'delivered' then return 'delivered' end\n"
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 'own' end\n"
    "return 'busy'\n";
/* renew(key, owner, lease_ms): 1 while the claim is still ours, else 0 */
static const char RENEW_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
                                "return 0\n";
/* release(key, owner): delete only our own claim or lock */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";
/* uses(key, ttl_ms): counts response_url uses across copies; the window starts at use 1 */
static const char USES_LUA[] = "local n = redis.call('INCR', KEYS[1])\n"
                               "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
                               "return n\n";

/* ------------------------------------------------------------------ types */

enum platform { P_SLACK, P_FEISHU };
enum route { R_NONE, R_RURL, R_POST, R_UPDATE, R_FS_REPLY, R_FS_SEND };
enum wait { W_OP, W_TIMER, W_TOKEN, W_PRED, W_SLOT };
enum next { N_CLAIM, N_ROUTE, N_PACE, N_SEND, N_DLQ };

static const char *route_name[] = {"none",        "response_url", "chat.postMessage",
                                   "chat.update", "reply",        "send"};

struct job {
    struct cq_notifier *s;
    struct job *prev, *next; /* all jobs */
    struct job *tok_next;    /* token waiters */
    struct job *pred, *succ; /* results of the same request, settled in order */
    struct job *slot_next;   /* waiting for a free send slot (FIFO) */
    struct job *req_next;    /* same hash bucket of request ids (newest first) */
    bool hashed;
    uv_timer_t timer;
    enum wait wait;
    enum next next_step; /* what the timer does */
    bool abandoned;      /* shutting down: free on the next callback, no commit */
    bool claimed;
    bool rurl_spent;
    bool token_retried;
    bool update_failed;
    bool settling;   /* posted or dead-lettered: only its mark/report is left, then commit */
    bool claim_lost; /* a renewal found the claim gone: claim again before sending */

    char *topic;
    int32_t partition;
    int64_t offset;
    char *payload;
    size_t len;
    int64_t msg_ts_ms;

    struct cq_result r;
    bool decoded;
    enum platform plat;
    enum route route;
    char *update_ts;  /* chat.update target */
    char *used_token; /* Feishu token of the last attempt */
    char owner[80];
    char once_key[512];
    char pace_key[300];
    int attempts;
    uint64_t started_ms;

    char reason[160];
    long last_status;
    char *last_body;
    char *dlq_reason_class;
};

struct tokstate {
    char *token;
    long long fetched_ms, expire_ms; /* wall clock */
    char *stale;
    bool busy, lock_held;
    int failures;
    struct job *waiters;
    uv_timer_t timer;
};

struct cq_notifier {
    struct cq_loop *loop;
    const struct cq_config *cfg;
    struct cq_consumer *cons;
    struct cq_producer *prod;
    struct cq_redis *redis;
    struct cq_httpc *http;
    struct cq_pacer *slack_pacer, *feishu_pacer;
    char instance[CQ_UUID_LEN + 1];
    unsigned long job_seq;
    struct job *jobs;
    int njobs;
    struct job *by_req[REQ_BUCKETS];   /* decoded jobs by request id: finds a request's tail
                                          in O(1) instead of scanning every job in flight */
    int sending;                       /* HTTP sends in flight */
    struct job *slot_head, *slot_tail; /* jobs waiting for a send slot */
    bool paused, stopping, finished;
    int closing; /* startup failure: handles left to close before s is freed */
    struct tokstate tok;
    uv_timer_t drain_timer;
    uint64_t drain_deadline;
    uv_timer_t renew_timer;
    int claim_lease_ms;
    char key_prefix[128];
};

/* ------------------------------------------------------------------ small helpers */

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rnd64(void) {
    uint64_t v = 0;
    if (cq_random_bytes(&v, sizeof v) != CQ_OK) v = cq_now_ms() * 2654435761u;
    return v;
}

long long cq_rfc3339_ms(const char *s) {
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    const char *p = s + n;
    long long ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) ms = ms * 10 + (*p - '0');
        if (digits == 0) return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    long long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return -1;
        off = (oh * 60LL + om) * 60 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    /* days from civil (proleptic Gregorian) */
    long long yy = y - (mo <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000 + ms;
}

static const char *plat_str(const struct job *j) {
    return j->plat == P_SLACK ? "slack" : "feishu";
}

static void metric_delivery(const struct job *j, const char *outcome) {
    char labels[96];
    snprintf(labels, sizeof labels, "platform=\"%s\",outcome=\"%s\"",
             j->decoded ? plat_str(j) : "unknown", outcome);
    cq_metric_inc("chatops_notifier_deliveries_total", "Results by platform and final outcome",
                  labels);
}

static void metric_attempt(const struct job *j, enum cq_outcome o) {
    char labels[128];
    snprintf(labels, sizeof labels, "platform=\"%s\",route=\"%s\",outcome=\"%s\"", plat_str(j),
             route_name[j->route], cq_outcome_str(o));
    cq_metric_inc("chatops_notifier_attempts_total",
                  "Delivery attempts by platform, route and outcome", labels);
}

static void set_inflight_gauge(struct cq_notifier *s) {
    cq_gauge_set(
        cq_gauge_get("chatops_notifier_inflight", "Results accepted and not yet settled", NULL),
        s->njobs);
}

static void token_age_gauge(struct cq_notifier *s) {
    if (!s->tok.token) return;
    cq_gauge_set(cq_gauge_get("chatops_notifier_feishu_token_age_seconds",
                              "Age of the tenant_access_token in use", NULL),
                 (wall_ms() - s->tok.fetched_ms) / 1000);
}

static void ignore_reply(void *opaque, const redisReply *reply, const struct cq_err *err) {
    (void)opaque;
    if (err)
        cq_warn(NULL, "redis: fire-and-forget command failed: %s", err->msg);
    else if (reply && reply->type == REDIS_REPLY_ERROR)
        cq_warn(NULL, "redis: fire-and-forget command failed: %s", reply->str);
}

static void keep_answer(struct job *j, const struct cq_http_response *resp) {
    free(j->last_body);
    j->last_status = resp->status;
    /* the platform's bytes: made valid UTF-8 and cut on a character for logs and the DLQ */
    j->last_body = cq_utf8_clean(resp->body, resp->body_len, ANSWER_KEEP);
}

/* ------------------------------------------------------------------ job lifecycle */

static void job_mem_free(uv_handle_t *h) {
    struct job *j = h->data;
    cq_result_clear(&j->r);
    free(j->topic);
    free(j->payload);
    free(j->update_ts);
    free(j->used_token);
    free(j->last_body);
    free(j);
}

static void job_timer_cb(uv_timer_t *t);

static size_t req_bucket(const char *request_id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)request_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (REQ_BUCKETS - 1);
}

static void job_unlink(struct job *j) {
    struct cq_notifier *s = j->s;
    if (j->hashed) {
        for (struct job **pp = &s->by_req[req_bucket(j->r.request_id)]; *pp; pp = &(*pp)->req_next)
            if (*pp == j) {
                *pp = j->req_next;
                break;
            }
        j->hashed = false;
    }
    if (j->prev)
        j->prev->next = j->next;
    else
        s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
    s->njobs--;
    set_inflight_gauge(s);
    if (s->paused && !s->stopping && s->njobs < s->cfg->notifier.max_inflight / 2 && s->cons) {
        cq_consumer_pause(s->cons, false);
        s->paused = false;
    }
    if (j->wait == W_SLOT) {
        struct job *prev = NULL;
        for (struct job *q = s->slot_head; q; prev = q, q = q->slot_next)
            if (q == j) {
                if (prev)
                    prev->slot_next = q->slot_next;
                else
                    s->slot_head = q->slot_next;
                if (s->slot_tail == q) s->slot_tail = prev;
                break;
            }
    }
    /* remove from token waiters if there */
    for (struct job **pp = &s->tok.waiters; *pp; pp = &(*pp)->tok_next)
        if (*pp == j) {
            *pp = j->tok_next;
            break;
        }
    /* hand the request's order on: the next result of this request may start */
    struct job *succ = j->succ;
    if (j->pred) j->pred->succ = succ;
    if (succ) succ->pred = j->pred;
    j->pred = j->succ = NULL;
    if (succ && !succ->pred && succ->wait == W_PRED && !j->s->stopping) {
        succ->wait = W_TIMER;
        succ->next_step = N_CLAIM;
        uv_timer_start(&succ->timer, job_timer_cb, 0, 0);
    }
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, job_mem_free);
}

/* Settled: the offset may be committed. */
static void job_finish(struct job *j, const char *outcome) {
    struct cq_notifier *s = j->s;
    metric_delivery(j, outcome);
    const char *kv[] = {"outcome",  outcome,
                        "platform", j->decoded ? plat_str(j) : "unknown",
                        "route",    route_name[j->route],
                        NULL};
    cq_log_kv(CQ_LOG_INFO, j->decoded ? j->r.request_id : NULL, "result settled", kv);
    if (s->cons) cq_consumer_done(s->cons, j->topic, j->partition, j->offset);
    job_unlink(j);
}

/* Shutdown: leave the offset uncommitted (another copy gets it) and release our claim. */
static void job_abandon(struct job *j) {
    struct cq_notifier *s = j->s;
    if (j->claimed && s->redis) {
        const char *argv[] = {"EVAL", RELEASE_LUA, "1", j->once_key, j->owner};
        cq_redis_commandargv(s->redis, ignore_reply, NULL, 5, argv, NULL);
    }
    cq_debug(j->decoded ? j->r.request_id : NULL, "result left for another copy (shutdown)");
    job_unlink(j);
}

static void job_claim(struct job *j);
static void job_route(struct job *j);
static void job_pace(struct job *j);
static void job_send(struct job *j);
static void job_dead_letter(struct job *j, const char *cls, const char *reason);
static void token_get(struct job *j);

static void job_wait(struct job *j, uint64_t ms, enum next step) {
    if (j->s->stopping) {
        job_abandon(j);
        return;
    }
    j->wait = W_TIMER;
    j->next_step = step;
    uv_timer_start(&j->timer, job_timer_cb, ms, 0);
}

static void job_timer_cb(uv_timer_t *t) {
    struct job *j = t->data;
    j->wait = W_OP;
    switch (j->next_step) {
    case N_CLAIM:
        job_claim(j);
        break;
    case N_ROUTE:
        job_route(j);
        break;
    case N_PACE:
        job_pace(j);
        break;
    case N_SEND:
        job_send(j);
        break;
    case N_DLQ:
        job_dead_letter(j, j->dlq_reason_class, j->reason);
        break;
    }
}

/* Common prologue of every async callback: true when the job must stop here. */
static bool job_gone(struct job *j) {
    if (j->abandoned || (j->s->stopping && j->s->finished)) {
        job_unlink(j);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ dead letters */

static void on_dlq_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                          int64_t offset) {
    struct job *j = opaque;
    (void)partition;
    (void)offset;
    if (j->abandoned) {
        job_unlink(j);
        return;
    }
    if (rc != CQ_OK) {
        cq_error(j->decoded ? j->r.request_id : NULL, "dlq produce failed (%s); retrying",
                 errstr ? errstr : cq_rc_str(rc));
        j->settling = false;
        job_wait(j, 1000, N_DLQ);
        return;
    }
    cq_metric_inc("chatops_notifier_dlq_total", "Results sent to the dead-letter topic",
                  j->dlq_reason_class
                      ? (strcmp(j->dlq_reason_class, "invalid") == 0     ? "class=\"invalid\""
                         : strcmp(j->dlq_reason_class, "exhausted") == 0 ? "class=\"exhausted\""
                                                                         : "class=\"permanent\"")
                      : "class=\"permanent\"");
    if (j->claimed && j->s->redis) { /* a replay of this result may try again */
        const char *argv[] = {"EVAL", RELEASE_LUA, "1", j->once_key, j->owner};
        cq_redis_commandargv(j->s->redis, ignore_reply, NULL, 5, argv, NULL);
    }
    job_finish(j, "dead_lettered");
}

static void job_dead_letter(struct job *j, const char *cls, const char *reason) {
    struct cq_notifier *s = j->s;
    char *out = NULL, at[32];
    cJSON *d = cJSON_CreateObject(), *ans = NULL, *src = NULL;
    struct cq_err err = {0};
    if (reason != j->reason)
        cq_utf8_copy(j->reason, sizeof j->reason, reason, strlen(reason), NULL);
    j->dlq_reason_class = (char *)cls;
    cq_now_rfc3339(at);
    if (!d) goto retry;
    cJSON_AddNumberToObject(d, "v", 1);
    if (j->decoded) {
        cJSON_AddStringToObject(d, "request_id", j->r.request_id);
        cJSON_AddStringToObject(d, "step", j->r.step);
        cJSON_AddNumberToObject(d, "seq", j->r.seq);
        cJSON_AddStringToObject(d, "platform", j->r.platform);
    }
    cJSON_AddStringToObject(d, "reason", j->reason);
    cJSON_AddNumberToObject(d, "attempts", j->attempts);
    if (j->route != R_NONE) cJSON_AddStringToObject(d, "route", route_name[j->route]);
    if (j->last_body || j->last_status) {
        ans = cJSON_AddObjectToObject(d, "answer");
        if (ans) {
            cJSON_AddNumberToObject(ans, "status", (double)j->last_status);
            cJSON_AddStringToObject(ans, "body", j->last_body ? j->last_body : "");
        }
    }
    cJSON_AddStringToObject(d, "failed_at", at);
    if ((src = cJSON_AddObjectToObject(d, "source"))) {
        cJSON_AddStringToObject(src, "topic", j->topic);
        cJSON_AddNumberToObject(src, "partition", j->partition);
        cJSON_AddNumberToObject(src, "offset", (double)j->offset);
    }
    cJSON *orig = cJSON_ParseWithLength(j->payload, j->len);
    if (orig)
        cJSON_AddItemToObject(d, "result", orig);
    else {
        char *raw = cq_utf8_clean(j->payload, j->len, 0); /* any bytes: valid JSON text */
        if (raw) {
            cJSON_AddStringToObject(d, "raw", raw);
            free(raw);
        }
    }
    out = cJSON_PrintUnformatted(d);
    if (!out) goto retry;
    const char *key = j->decoded ? j->r.request_id : "";
    {
        const char *kv[] = {"reason", j->reason, "class", cls, NULL};
        cq_log_kv(CQ_LOG_WARN, j->decoded ? j->r.request_id : NULL, "dead-lettering result", kv);
    }
    j->wait = W_OP;
    j->settling = true;
    if (cq_producer_send(s->prod, s->cfg->kafka.topic_dlq, key, strlen(key), out, strlen(out), NULL,
                         on_dlq_report, j, &err) != CQ_OK) {
        cq_error(j->decoded ? j->r.request_id : NULL, "dlq produce refused: %s", err.msg);
        j->settling = false;
        goto retry;
    }
    cJSON_Delete(d);
    free(out);
    return;
retry:
    cJSON_Delete(d);
    free(out);
    job_wait(j, 1000, N_DLQ);
}

/* ------------------------------------------------------------------ delivered */

static void on_marked(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    /* Posted: commit even when the mark failed or the drain is ending (the consumer is
     * still open here), or a restart would post it again. */
    if (j->abandoned) {
        job_unlink(j);
        return;
    }
    if (err || (reply && reply->type == REDIS_REPLY_ERROR))
        cq_warn(j->r.request_id, "could not mark delivered in redis: %s",
                err ? err->msg : reply->str);
    job_finish(j, "delivered");
}

static void job_delivered(struct job *j) {
    struct cq_notifier *s = j->s;
    long long produced = cq_rfc3339_ms(j->r.produced_at);
    if (produced < 0) produced = j->msg_ts_ms;
    if (produced > 0) {
        char labels[48];
        snprintf(labels, sizeof labels, "platform=\"%s\"", plat_str(j));
        long long d = wall_ms() - produced;
        cq_histogram_observe(cq_histogram_get("chatops_notifier_delivery_latency_seconds",
                                              "From result produced to platform accepted", labels,
                                              NULL, 0),
                             d > 0 ? (double)d / 1000.0 : 0.0);
    }
    if (j->route == R_POST && j->r.request_id) { /* later progress can chat.update it */
        char *ts = cq_slack_answer_ts(j->last_body);
        if (ts) {
            char key[512], ttl[16];
            snprintf(key, sizeof key, "%snotify:slack_ts:%s", s->key_prefix, j->r.request_id);
            snprintf(ttl, sizeof ttl, "%d", 86400);
            const char *argv[] = {"SET", key, ts, "EX", ttl};
            cq_redis_commandargv(s->redis, ignore_reply, NULL, 5, argv, NULL);
            free(ts);
        }
    }
    char ttl[16];
    int keep = s->cfg->redis.dedupe_ttl_s > 86400 ? s->cfg->redis.dedupe_ttl_s : 7 * 86400;
    snprintf(ttl, sizeof ttl, "%d", keep);
    const char *argv[] = {"SET", j->once_key, "delivered", "EX", ttl};
    j->wait = W_OP;
    j->settling = true;
    if (cq_redis_commandargv(s->redis, on_marked, j, 5, argv, NULL) != CQ_OK)
        job_finish(j, "delivered");
}

/* ------------------------------------------------------------------ answers */

static void slot_release(struct cq_notifier *s);

static void on_answer(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct cq_notifier *s = j->s;
    slot_release(s);
    if (job_gone(j)) return;
    if (resp->rc == CQ_ESHUTDOWN) {
        job_abandon(j);
        return;
    }
    keep_answer(j, resp);
    struct cq_attempt_answer a = {resp->rc, resp->status, resp->body};
    enum cq_outcome o;
    char why[128];
    if (j->route == R_RURL)
        o = cq_classify_slack_webhook(&a, why, sizeof why);
    else if (j->plat == P_SLACK)
        o = cq_classify_slack_api(&a, why, sizeof why);
    else
        o = cq_classify_feishu(&a, why, sizeof why);
    if (resp->rc != CQ_OK)
        snprintf(why, sizeof why, "%s: %.100s",
                 resp->rc == CQ_ETIMEOUT ? "timeout" : "connection_error", resp->errmsg);
    metric_attempt(j, o);
    cq_utf8_copy(j->reason, sizeof j->reason, why, strlen(why), NULL);
    {
        char st[16], at[12];
        snprintf(st, sizeof st, "%ld", resp->status);
        snprintf(at, sizeof at, "%d", j->attempts);
        const char *kv[] = {"route",   route_name[j->route],
                            "status",  st,
                            "outcome", cq_outcome_str(o),
                            "reason",  why,
                            "attempt", at,
                            NULL};
        cq_log_kv(o == CQ_OUT_DELIVERED ? CQ_LOG_DEBUG : CQ_LOG_WARN, j->r.request_id,
                  "delivery attempt", kv);
    }
    switch (o) {
    case CQ_OUT_DELIVERED:
        job_delivered(j);
        return;
    case CQ_OUT_FALLBACK:
        j->rurl_spent = true;
        job_route(j);
        return;
    case CQ_OUT_TOKEN_EXPIRED:
        if (j->token_retried) {
            job_dead_letter(j, "permanent", why);
            return;
        }
        j->token_retried = true;
        if (j->used_token) { /* the token we used is dead for every copy */
            free(s->tok.stale);
            s->tok.stale = strdup(j->used_token);
            if (s->tok.token && strcmp(s->tok.token, j->used_token) == 0) {
                free(s->tok.token);
                s->tok.token = NULL;
            }
        }
        token_get(j);
        return;
    case CQ_OUT_PERMANENT:
        if (j->route == R_UPDATE) { /* the message to edit is gone: post a new one */
            j->update_failed = true;
            j->route = R_POST;
            job_pace(j);
            return;
        }
        job_dead_letter(j, "permanent", why);
        return;
    case CQ_OUT_RETRY:
        break;
    }
    if (j->attempts >= s->cfg->notifier.max_attempts) {
        char r2[160];
        snprintf(r2, sizeof r2, "retries exhausted after %d attempts: %.100s", j->attempts, why);
        job_dead_letter(j, "exhausted", r2);
        return;
    }
    int64_t hint = -1;
    if (resp->status == 429) {
        const char *h = j->plat == P_SLACK
                            ? resp->retry_after
                            : (resp->ratelimit_reset ? resp->ratelimit_reset : resp->retry_after);
        hint = cq_retry_after_ms(h, wall_ms() / 1000, 15 * 60 * 1000);
    }
    uint64_t delay = hint >= 0 ? (uint64_t)hint
                               : cq_backoff_ms(j->attempts, s->cfg->notifier.backoff_base_ms,
                                               s->cfg->notifier.backoff_max_ms, rnd64());
    if (hint >= 0) /* the whole channel waits, not only this result */
        cq_pacer_hold(j->plat == P_SLACK ? s->slack_pacer : s->feishu_pacer, j->pace_key,
                      cq_now_ms() + delay);
    if (j->claimed) { /* keep our claim alive across the wait */
        char lease[24];
        snprintf(lease, sizeof lease, "%llu",
                 (unsigned long long)(delay + (uint64_t)s->claim_lease_ms));
        const char *argv[] = {"SET", j->once_key, j->owner, "XX", "PX", lease};
        cq_redis_commandargv(s->redis, ignore_reply, NULL, 6, argv, NULL);
    }
    job_wait(j, delay, N_PACE);
}

/* ------------------------------------------------------------------ sending */

static void job_send_http(struct job *j, const char *url, const char *const *headers, char *body) {
    struct cq_notifier *s = j->s;
    struct cq_err err = {0};
    struct cq_http_request req = {.method = "POST",
                                  .url = url,
                                  .headers = headers,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .timeout_ms = s->cfg->notifier.http_timeout_ms,
                                  .max_response = 64 * 1024};
    j->attempts++;
    j->wait = W_OP;
    if (cq_httpc_request(s->http, &req, on_answer, j, &err) != CQ_OK) {
        free(body);
        j->attempts--;
        job_dead_letter(j, "permanent", err.msg);
        return;
    }
    s->sending++;
    free(body);
}

/* A send finished: start the oldest waiting job. */
static void slot_release(struct cq_notifier *s) {
    s->sending--;
    while (s->sending < s->cfg->notifier.max_sends && s->slot_head && !s->stopping) {
        struct job *j = s->slot_head;
        s->slot_head = j->slot_next;
        if (!s->slot_head) s->slot_tail = NULL;
        j->slot_next = NULL;
        j->wait = W_OP;
        job_send(j);
    }
}

static void job_send(struct job *j) {
    struct cq_notifier *s = j->s;
    struct cq_err err = {0};
    char *body = NULL, url[CQ_ENV_MAX_URL + CQ_ENV_MAX_ID + 128], auth[1024];
    if (j->claim_lost) { /* another copy may own it now: ask again (busy/delivered/own) */
        j->claim_lost = false;
        j->claimed = false;
        cq_warn(j->r.request_id, "once-claim lost while waiting; claiming again before sending");
        job_claim(j);
        return;
    }
    if (j->plat == P_FEISHU && !j->used_token) {
        token_get(j);
        return;
    }
    if (s->sending >=
        s->cfg->notifier.max_sends) { /* wait for a slot; the timeout then measures the platform */
        if (s->stopping) {
            job_abandon(j);
            return;
        }
        j->wait = W_SLOT;
        j->slot_next = NULL;
        if (s->slot_tail)
            s->slot_tail->slot_next = j;
        else
            s->slot_head = j;
        s->slot_tail = j;
        return;
    }
    switch (j->route) {
    case R_RURL: {
        struct cq_slack_msg_opts o = {.target = CQ_SLACK_RESPONSE_URL,
                                      .replace_original = strcmp(j->r.step, "progress") == 0};
        body = cq_slack_format(&j->r, &o, NULL, &err);
        if (!body) break;
        const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
        job_send_http(j, j->r.reply.response_url, h, body);
        return;
    }
    case R_POST:
    case R_UPDATE: {
        struct cq_slack_msg_opts o = {.target = j->route == R_POST ? CQ_SLACK_POST_MESSAGE
                                                                   : CQ_SLACK_UPDATE,
                                      .channel = j->r.reply.chat_id,
                                      .ts = j->update_ts,
                                      .thread_ts = j->r.reply.thread_ts};
        body = cq_slack_format(&j->r, &o, NULL, &err);
        if (!body) break;
        snprintf(url, sizeof url, "%s/%s", s->cfg->slack.api_base,
                 j->route == R_POST ? "chat.postMessage" : "chat.update");
        snprintf(auth, sizeof auth, "Authorization: Bearer %s",
                 s->cfg->slack.bot_token.value ? s->cfg->slack.bot_token.value : "");
        const char *h[] = {"Content-Type: application/json; charset=utf-8", auth, NULL};
        job_send_http(j, url, h, body);
        return;
    }
    case R_FS_REPLY:
    case R_FS_SEND: {
        body = cq_feishu_body(&j->r, j->route == R_FS_REPLY, 0, &err);
        if (!body) break;
        if (j->route == R_FS_REPLY) {
            char *id = cq_url_escape(j->r.reply.message_id, strlen(j->r.reply.message_id));
            if (!id) {
                cq_err_set(&err, CQ_ENOMEM, "out of memory");
                break;
            }
            snprintf(url, sizeof url, "%s/im/v1/messages/%s/reply", s->cfg->feishu.api_base, id);
            free(id);
        } else {
            snprintf(url, sizeof url, "%s/im/v1/messages?receive_id_type=chat_id",
                     s->cfg->feishu.api_base);
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->used_token);
        const char *h[] = {"Content-Type: application/json; charset=utf-8", auth, NULL};
        job_send_http(j, url, h, body);
        return;
    }
    case R_NONE:
        cq_err_set(&err, CQ_EINVAL, "no route");
        break;
    }
    free(body);
    if (err.code == CQ_ENOMEM)
        job_wait(j, 1000, N_SEND);
    else
        job_dead_letter(j, "permanent", err.msg);
}

/* Waits for the channel's next pacing slot, then sends. */
static void job_pace(struct job *j) {
    struct cq_notifier *s = j->s;
    uint64_t now = cq_now_ms();
    uint64_t at =
        cq_pacer_reserve(j->plat == P_SLACK ? s->slack_pacer : s->feishu_pacer, j->pace_key, now);
    if (j->plat == P_FEISHU) { /* a fresh token for each attempt (it may have rotated) */
        free(j->used_token);
        j->used_token = NULL;
    }
    if (at > now)
        job_wait(j, at - now, N_SEND);
    else
        job_send(j);
}

/* ------------------------------------------------------------------ routes */

static void on_slack_ts(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (job_gone(j)) return;
    if (!err && reply && reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        j->update_ts = strdup(reply->str);
        if (j->update_ts) j->route = R_UPDATE;
    }
    job_pace(j);
}

static void slack_api_route(struct job *j) {
    struct cq_notifier *s = j->s;
    if (!j->r.reply.chat_id || !*j->r.reply.chat_id) {
        job_dead_letter(j, "permanent",
                        j->rurl_spent ? "response_url spent and no channel for chat.postMessage"
                                      : "no response_url and no channel to post to");
        return;
    }
    if (!s->cfg->slack.bot_token.value) {
        job_dead_letter(j, "permanent", "no slack.bot_token configured for chat.postMessage");
        return;
    }
    j->route = R_POST;
    snprintf(j->pace_key, sizeof j->pace_key, "%s", j->r.reply.chat_id);
    if (strcmp(j->r.step, "progress") == 0 && !j->update_failed) {
        char key[512];
        snprintf(key, sizeof key, "%snotify:slack_ts:%s", s->key_prefix, j->r.request_id);
        const char *argv[] = {"GET", key};
        j->wait = W_OP;
        if (cq_redis_commandargv(s->redis, on_slack_ts, j, 2, argv, NULL) == CQ_OK) return;
    }
    job_pace(j);
}

static void on_uses(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (job_gone(j)) return;
    if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
        cq_warn(j->r.request_id, "response_url use count unavailable: %s",
                err ? err->msg : "bad reply");
        job_wait(j,
                 cq_backoff_ms(2, j->s->cfg->notifier.backoff_base_ms,
                               j->s->cfg->notifier.backoff_max_ms, rnd64()),
                 N_ROUTE);
        return;
    }
    if (reply->integer <= RURL_MAX_USES) {
        j->route = R_RURL;
        snprintf(j->pace_key, sizeof j->pace_key, "%s",
                 j->r.reply.chat_id ? j->r.reply.chat_id : j->r.request_id);
        job_pace(j);
        return;
    }
    cq_info(j->r.request_id, "response_url used %lld times; using chat.postMessage",
            reply->integer);
    j->rurl_spent = true;
    slack_api_route(j);
}

static void job_route(struct job *j) {
    struct cq_notifier *s = j->s;
    if (j->plat == P_SLACK) {
        if (j->r.reply.response_url && *j->r.reply.response_url && !j->rurl_spent) {
            char key[512], ttl[16];
            snprintf(key, sizeof key, "%snotify:rurl:%s", s->key_prefix, j->r.request_id);
            snprintf(ttl, sizeof ttl, "%d", RURL_TTL_MS);
            const char *argv[] = {"EVAL", USES_LUA, "1", key, ttl};
            j->wait = W_OP;
            if (cq_redis_commandargv(s->redis, on_uses, j, 5, argv, NULL) != CQ_OK)
                job_wait(j, 1000, N_ROUTE);
            return;
        }
        slack_api_route(j);
        return;
    }
    if (j->r.reply.message_id && *j->r.reply.message_id)
        j->route = R_FS_REPLY;
    else if (j->r.reply.chat_id && *j->r.reply.chat_id)
        j->route = R_FS_SEND;
    else {
        job_dead_letter(j, "permanent", "no message_id or chat_id to reply to");
        return;
    }
    snprintf(j->pace_key, sizeof j->pace_key, "%s",
             j->r.reply.chat_id && *j->r.reply.chat_id ? j->r.reply.chat_id
                                                       : j->r.reply.message_id);
    if (!s->cfg->feishu.app_id || !s->cfg->feishu.app_secret.value) {
        job_dead_letter(j, "permanent", "feishu.app_id/app_secret not configured");
        return;
    }
    job_pace(j);
}

/* ------------------------------------------------------------------ once */

static void on_claim(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (job_gone(j)) return;
    if (err || !reply || (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING)) {
        cq_warn(j->r.request_id, "once-claim unavailable (%s); retrying",
                err                   ? err->msg
                : reply && reply->str ? reply->str
                                      : "bad reply");
        job_wait(j, 1000, N_CLAIM);
        return;
    }
    if (strcmp(reply->str, "delivered") == 0) {
        cq_info(j->r.request_id, "already delivered (step %s seq %d): not posting again", j->r.step,
                j->r.seq);
        job_finish(j, "duplicate");
        return;
    }
    if (strcmp(reply->str, "busy") == 0) { /* another copy is on it: wait for its verdict */
        job_wait(j, BUSY_RECHECK_MS, N_CLAIM);
        return;
    }
    j->claimed = true;
    job_route(j);
}

static void job_claim(struct job *j) {
    char lease[16];
    snprintf(lease, sizeof lease, "%d", j->s->claim_lease_ms);
    /* An "outcome unknown" final has a once-key of its own, so the request's true final
     * (a stalled owner finishing late) is still posted after it, never dropped as a
     * duplicate; the unknown one is skipped when the true final came first. */
    char final_key[sizeof j->once_key];
    snprintf(final_key, sizeof final_key, "%.*s", (int)(strlen(j->once_key) - 8), j->once_key);
    bool unknown = j->r.outcome_unknown && strlen(j->once_key) > 8;
    const char *argv[] = {"EVAL",
                          CLAIM_LUA,
                          unknown ? "2" : "1",
                          j->once_key,
                          unknown ? final_key : j->owner,
                          unknown ? j->owner : lease,
                          lease};
    j->wait = W_OP;
    if (cq_redis_commandargv(j->s->redis, on_claim, j, unknown ? 7 : 6, argv, NULL) != CQ_OK)
        job_wait(j, 1000, N_CLAIM);
}

/* ------------------------------------------------------------------ Feishu token */

static void token_lookup(struct cq_notifier *s);

static bool token_valid(const struct cq_notifier *s) {
    return s->tok.token && wall_ms() < s->tok.expire_ms - TOKEN_EARLY_MS &&
           !(s->tok.stale && strcmp(s->tok.token, s->tok.stale) == 0);
}

static void token_key(const struct cq_notifier *s, char *out, size_t n, bool lock) {
    snprintf(out, n, "%snotify:feishu_token:%s%s", s->key_prefix, s->cfg->feishu.app_id,
             lock ? ":lock" : "");
}

static void token_release_lock(struct cq_notifier *s) {
    if (!s->tok.lock_held) return;
    s->tok.lock_held = false;
    char key[512];
    token_key(s, key, sizeof key, true);
    const char *argv[] = {"EVAL", RELEASE_LUA, "1", key, s->instance};
    cq_redis_commandargv(s->redis, ignore_reply, NULL, 5, argv, NULL);
}

static void token_serve(struct cq_notifier *s) {
    s->tok.busy = false;
    s->tok.failures = 0;
    token_age_gauge(s);
    struct job *w = s->tok.waiters;
    s->tok.waiters = NULL;
    while (w) {
        struct job *nx = w->tok_next;
        w->tok_next = NULL;
        w->wait = W_OP;
        free(w->used_token);
        w->used_token = strdup(s->tok.token);
        if (!w->used_token)
            job_wait(w, 1000, N_SEND);
        else
            job_send(w);
        w = nx;
    }
}

static void token_fail_all(struct cq_notifier *s, const char *reason) {
    s->tok.busy = false;
    s->tok.failures = 0;
    struct job *w = s->tok.waiters;
    s->tok.waiters = NULL;
    while (w) {
        struct job *nx = w->tok_next;
        w->tok_next = NULL;
        w->wait = W_OP;
        job_dead_letter(w, "permanent", reason);
        w = nx;
    }
}

static void token_timer_cb(uv_timer_t *t) {
    token_lookup(t->data);
}

static void token_retry_later(struct cq_notifier *s, const char *why, uint64_t ms) {
    if (s->stopping) {
        s->tok.busy = false;
        return;
    }
    if (++s->tok.failures > s->cfg->notifier.max_attempts * 4) {
        char r[200];
        snprintf(r, sizeof r, "feishu token unavailable: %.150s", why);
        token_fail_all(s, r);
        return;
    }
    uv_timer_start(&s->tok.timer, token_timer_cb, ms, 0);
}

static void on_token_stored(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct cq_notifier *s = opaque;
    if (err || (reply && reply->type == REDIS_REPLY_ERROR))
        cq_warn(NULL, "feishu token not cached in redis: %s", err ? err->msg : reply->str);
    token_release_lock(s);
}

static void on_token_answer(void *opaque, const struct cq_http_response *resp) {
    struct cq_notifier *s = opaque;
    if (resp->rc == CQ_ESHUTDOWN) {
        s->tok.busy = false;
        return;
    }
    struct cq_attempt_answer a = {resp->rc, resp->status, resp->body};
    char why[128], *tok = NULL;
    long expire = 0;
    enum cq_outcome o = cq_classify_feishu_token(&a, &tok, &expire, why, sizeof why);
    char labels[48];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", cq_outcome_str(o));
    cq_metric_inc("chatops_notifier_feishu_token_fetches_total", "tenant_access_token requests",
                  labels);
    if (o == CQ_OUT_DELIVERED) {
        if (expire <= 0) expire = 7200;
        free(s->tok.token);
        s->tok.token = tok;
        s->tok.fetched_ms = wall_ms();
        s->tok.expire_ms = s->tok.fetched_ms + expire * 1000LL;
        cq_info(NULL, "feishu tenant_access_token fetched (expires in %ld s)", expire);
        char key[512], val[64 + 4096], px[24];
        token_key(s, key, sizeof key, false);
        snprintf(val, sizeof val, "%lld %lld %s", s->tok.fetched_ms, s->tok.expire_ms, tok);
        snprintf(px, sizeof px, "%lld", expire * 1000LL);
        const char *argv[] = {"SET", key, val, "PX", px};
        if (cq_redis_commandargv(s->redis, on_token_stored, s, 5, argv, NULL) != CQ_OK)
            token_release_lock(s);
        token_serve(s);
        return;
    }
    free(tok);
    token_release_lock(s);
    cq_warn(NULL, "feishu token request failed: %s", why);
    if (o == CQ_OUT_PERMANENT) {
        char r[200];
        snprintf(r, sizeof r, "feishu token refused: %s", why);
        token_fail_all(s, r);
        return;
    }
    token_retry_later(s, why,
                      cq_backoff_ms(s->tok.failures + 1, s->cfg->notifier.backoff_base_ms,
                                    s->cfg->notifier.backoff_max_ms, rnd64()));
}

static void token_fetch(struct cq_notifier *s) {
    struct cq_err err = {0};
    char url[1024];
    snprintf(url, sizeof url, "%s/auth/v3/tenant_access_token/internal", s->cfg->feishu.api_base);
    cJSON *b = cJSON_CreateObject();
    char *body = NULL;
    if (b && cJSON_AddStringToObject(b, "app_id", s->cfg->feishu.app_id) &&
        cJSON_AddStringToObject(b, "app_secret", s->cfg->feishu.app_secret.value))
        body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!body) {
        token_release_lock(s);
        token_retry_later(s, "out of memory", 1000);
        return;
    }
    const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    struct cq_http_request req = {.method = "POST",
                                  .url = url,
                                  .headers = h,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .timeout_ms = s->cfg->notifier.http_timeout_ms};
    enum cq_rc rc = cq_httpc_request(s->http, &req, on_token_answer, s, &err);
    free(body);
    if (rc != CQ_OK) {
        token_release_lock(s);
        token_fail_all(s, err.msg);
    }
}

static void on_token_lock(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct cq_notifier *s = opaque;
    if (err) {
        if (err->code == CQ_ESHUTDOWN) {
            s->tok.busy = false;
            return;
        }
        token_retry_later(s, err->msg, 500);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_STATUS) { /* OK: this copy fetches */
        s->tok.lock_held = true;
        token_fetch(s);
        return;
    }
    /* another copy is fetching: read its result shortly (not counted as a failure) */
    if (!s->stopping)
        uv_timer_start(&s->tok.timer, token_timer_cb, TOKEN_WAIT_MS, 0);
    else
        s->tok.busy = false;
}

static void on_token_get(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct cq_notifier *s = opaque;
    if (err) {
        if (err->code == CQ_ESHUTDOWN) {
            s->tok.busy = false;
            return;
        }
        token_retry_later(s, err->msg, 500);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_STRING) {
        long long fetched = 0, expire = 0;
        int off = 0;
        if (sscanf(reply->str, "%lld %lld %n", &fetched, &expire, &off) == 2 && off > 0 &&
            reply->str[off] && wall_ms() < expire - TOKEN_EARLY_MS &&
            !(s->tok.stale && strcmp(s->tok.stale, reply->str + off) == 0)) {
            char *t = strdup(reply->str + off);
            if (t) {
                free(s->tok.token);
                s->tok.token = t;
                s->tok.fetched_ms = fetched;
                s->tok.expire_ms = expire;
                token_serve(s);
                return;
            }
        }
    }
    char key[512], px[16];
    token_key(s, key, sizeof key, true);
    snprintf(px, sizeof px, "%d", TOKEN_LOCK_MS);
    const char *argv[] = {"SET", key, s->instance, "NX", "PX", px};
    if (cq_redis_commandargv(s->redis, on_token_lock, s, 6, argv, NULL) != CQ_OK)
        token_retry_later(s, "redis refused the command", 500);
}

static void token_lookup(struct cq_notifier *s) {
    if (s->stopping) {
        s->tok.busy = false;
        return;
    }
    char key[512];
    token_key(s, key, sizeof key, false);
    const char *argv[] = {"GET", key};
    if (cq_redis_commandargv(s->redis, on_token_get, s, 2, argv, NULL) != CQ_OK)
        token_retry_later(s, "redis refused the command", 500);
}

static void token_get(struct job *j) {
    struct cq_notifier *s = j->s;
    if (token_valid(s)) {
        free(j->used_token);
        j->used_token = strdup(s->tok.token);
        if (!j->used_token)
            job_wait(j, 1000, N_SEND);
        else
            job_send(j);
        return;
    }
    if (s->stopping) {
        job_abandon(j);
        return;
    }
    j->wait = W_TOKEN;
    j->tok_next = s->tok.waiters;
    s->tok.waiters = j;
    if (!s->tok.busy) {
        s->tok.busy = true;
        token_lookup(s);
    }
}

/* ------------------------------------------------------------------ consuming */

static void on_message(void *opaque, const struct cq_message *m) {
    struct cq_notifier *s = opaque;
    struct cq_err err = {0};
    struct job *j = calloc(1, sizeof *j);
    if (j) {
        j->topic = strdup(m->topic);
        j->payload = malloc(m->len ? m->len : 1);
    }
    if (!j || !j->topic || !j->payload) {
        /* cannot even hold it: leave it uncommitted; a restart will see it again */
        cq_error(NULL, "out of memory taking a result (partition %d offset %lld); shutting down",
                 m->partition, (long long)m->offset);
        if (j) {
            free(j->topic);
            free(j->payload);
            free(j);
        }
        cq_loop_shutdown(s->loop);
        return;
    }
    j->s = s;
    memcpy(j->payload, m->payload, m->len);
    j->len = m->len;
    j->partition = m->partition;
    j->offset = m->offset;
    j->msg_ts_ms = m->timestamp_ms;
    j->started_ms = cq_now_ms();
    uv_timer_init(cq_loop_uv(s->loop), &j->timer);
    j->timer.data = j;
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    s->njobs++;
    set_inflight_gauge(s);
    if (!s->paused && s->njobs >= s->cfg->notifier.max_inflight) {
        cq_consumer_pause(s->cons, true);
        s->paused = true;
    }
    snprintf(j->owner, sizeof j->owner, "sending:%s:%lu", s->instance, ++s->job_seq);

    if (cq_result_decode(j->payload, j->len, 0, &j->r, &err) != CQ_OK) {
        cq_warn(NULL, "invalid result at %s[%d]@%lld: %s", j->topic, j->partition,
                (long long)j->offset, err.msg);
        char reason[300];
        snprintf(reason, sizeof reason, "invalid result: %s", err.msg);
        job_dead_letter(j, "invalid", reason);
        return;
    }
    j->decoded = true;
    if (strcmp(j->r.platform, "slack") == 0)
        j->plat = P_SLACK;
    else if (strcmp(j->r.platform, "feishu") == 0)
        j->plat = P_FEISHU;
    else {
        char reason[200];
        snprintf(reason, sizeof reason, "unsupported platform '%.64s'", j->r.platform);
        job_dead_letter(j, "invalid", reason);
        return;
    }
    if ((j->plat == P_SLACK && !s->cfg->slack.enabled && !s->cfg->slack.bot_token.value &&
         !(j->r.reply.response_url && *j->r.reply.response_url))) {
        job_dead_letter(j, "permanent", "slack is not configured");
        return;
    }
    snprintf(j->once_key, sizeof j->once_key, "%snotify:once:%s:%s:%d%s", s->key_prefix,
             j->r.request_id, j->r.step, j->r.seq, j->r.outcome_unknown ? ":unknown" : "");
    cq_debug(j->r.request_id, "result taken (step %s seq %d, %s)", j->r.step, j->r.seq,
             j->r.platform);
    /* One request's results go out in the order they were produced (ack, progress, final),
     * so a progress never lands after the final and chat.update finds the ts of the post
     * before it. Buckets are kept newest first: the first match is the tail of the chain. */
    size_t b = req_bucket(j->r.request_id);
    struct job *tail = s->by_req[b];
    while (tail && strcmp(tail->r.request_id, j->r.request_id) != 0)
        tail = tail->req_next;
    j->req_next = s->by_req[b];
    s->by_req[b] = j;
    j->hashed = true;
    if (tail) {
        tail->succ = j;
        j->pred = tail;
        j->wait = W_PRED;
        return;
    }
    job_claim(j);
}

/* ------------------------------------------------------------------ lease renewal */

struct renewal {
    struct cq_notifier *s;
    char owner[80];
};

static void on_renewed(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct renewal *rn = opaque;
    struct cq_notifier *s = rn->s;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        for (struct job *j = s->jobs; j; j = j->next)
            if (j->claimed && !j->settling && strcmp(j->owner, rn->owner) == 0) {
                j->claim_lost = true;
                cq_metric_inc("chatops_notifier_claims_lost_total",
                              "Once-claims found taken or expired while a result was held", NULL);
                break;
            }
    } else if (err && err->code != CQ_ESHUTDOWN) {
        cq_debug(NULL, "once-claim renewal failed: %s", err->msg);
    }
    free(rn);
}

/* Every third of the lease: extend the claim of every result this copy holds. */
static void renew_tick(uv_timer_t *t) {
    struct cq_notifier *s = t->data;
    char lease[16];
    snprintf(lease, sizeof lease, "%d", s->claim_lease_ms);
    for (struct job *j = s->jobs; j && s->redis && !s->finished; j = j->next) {
        if (!j->claimed || j->settling || j->abandoned) continue;
        struct renewal *rn = malloc(sizeof *rn);
        if (!rn) break; /* the next tick tries again */
        rn->s = s;
        snprintf(rn->owner, sizeof rn->owner, "%s", j->owner);
        const char *argv[] = {"EVAL", RENEW_LUA, "1", j->once_key, j->owner, lease};
        if (cq_redis_commandargv(s->redis, on_renewed, rn, 6, argv, NULL) != CQ_OK) free(rn);
    }
}

/* ------------------------------------------------------------------ shutdown */

static void close_noop(uv_handle_t *h) {
    (void)h;
}

static void drain_finish(struct cq_notifier *s) {
    uv_timer_stop(&s->drain_timer);
    uv_timer_stop(&s->renew_timer);
    s->finished = true;
    /* whatever is still waiting goes back to Kafka for another copy; a result already posted
     * or dead-lettered keeps its pending mark/report, which commits it below */
    int unknown = 0;
    for (struct job *j = s->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->wait != W_OP)
            job_abandon(j);
        else if (!j->settling) {
            j->abandoned = true; /* freed by its pending callback below */
            unknown++;
        }
    }
    if (unknown > 0)
        cq_warn(NULL,
                "drain deadline: %d results still being sent are left to another copy "
                "(raise notifier.drain_ms above notifier.http_timeout_ms)",
                unknown);
    uv_timer_stop(&s->tok.timer);
    cq_httpc_free(s->http); /* pending callbacks run now with CQ_ESHUTDOWN */
    s->http = NULL;
    cq_producer_flush(s->prod, 5000);
    cq_producer_free(s->prod);
    s->prod = NULL;
    cq_redis_free(s->redis);
    s->redis = NULL;
    cq_consumer_free(s->cons); /* commits the done watermarks, leaves the group */
    s->cons = NULL;
    cq_pacer_free(s->slack_pacer);
    cq_pacer_free(s->feishu_pacer);
    s->slack_pacer = s->feishu_pacer = NULL;
    uv_close((uv_handle_t *)&s->drain_timer, close_noop);
    uv_close((uv_handle_t *)&s->tok.timer, close_noop);
    uv_close((uv_handle_t *)&s->renew_timer, close_noop);
    cq_info(NULL, "notifier drained (%d results left for other copies)", s->njobs);
}

static void drain_tick(uv_timer_t *t) {
    struct cq_notifier *s = t->data;
    /* release waiting jobs at once; in-flight requests get until the deadline, a mark or
     * dead-letter report of a result already out gets DRAIN_SETTLE_MS more */
    bool settling = false;
    for (struct job *j = s->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->wait != W_OP)
            job_abandon(j);
        else if (j->settling)
            settling = true;
    }
    uint64_t now = cq_now_ms();
    if (s->njobs == 0 || now >= s->drain_deadline + (settling ? DRAIN_SETTLE_MS : 0))
        drain_finish(s);
}

static void on_shutdown(void *arg) {
    struct cq_notifier *s = arg;
    cq_info(NULL, "notifier draining: %d results in flight", s->njobs);
    s->stopping = true;
    if (s->cons) cq_consumer_pause(s->cons, true);
    int ms = s->cfg->notifier.drain_ms > 0 ? s->cfg->notifier.drain_ms
                                           : s->cfg->notifier.http_timeout_ms + 5000;
    s->drain_deadline = cq_now_ms() + (uint64_t)ms; /* claims are renewed until it ends */
    uv_timer_start(&s->drain_timer, drain_tick, 0, 50);
}

/* ------------------------------------------------------------------ public */

static void free_after_close(uv_handle_t *h) {
    struct cq_notifier *s = h->data;
    if (--s->closing == 0) free(s);
}

struct cq_notifier *cq_notifier_new(struct cq_loop *loop, const struct cq_config *cfg,
                                    struct cq_err *err) {
    struct cq_notifier *s = calloc(1, sizeof *s);
    if (!s) {
        cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cfg;
    snprintf(s->key_prefix, sizeof s->key_prefix, "%s", cfg->redis.prefix ? cfg->redis.prefix : "");
    if (cq_uuid4(s->instance) != CQ_OK) {
        cq_err_set(err, CQ_ECRYPTO, "notifier: no randomness for the instance id");
        goto fail;
    }
    uv_timer_init(cq_loop_uv(loop), &s->drain_timer);
    s->drain_timer.data = s;
    uv_timer_init(cq_loop_uv(loop), &s->tok.timer);
    s->tok.timer.data = s;
    uv_timer_init(cq_loop_uv(loop), &s->renew_timer);
    s->renew_timer.data = s;
    s->claim_lease_ms = cfg->notifier.claim_lease_ms > 0 ? cfg->notifier.claim_lease_ms : 60000;
    s->slack_pacer = cq_pacer_new(cfg->notifier.slack_channel_interval_ms);
    s->feishu_pacer = cq_pacer_new(cfg->notifier.feishu_chat_interval_ms);
    if (!s->slack_pacer || !s->feishu_pacer) {
        cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
        goto fail_handles;
    }
    s->http = cq_httpc_new(loop, 256, err);
    if (!s->http) goto fail_handles;
    s->redis = cq_redis_new(loop, cfg->redis.host, cfg->redis.port, cfg->redis.password.value,
                            cfg->redis.connect_timeout_ms, cfg->redis.command_timeout_ms, err);
    if (!s->redis) goto fail_handles;
    cq_redis_check_persistence(s->redis);
    s->prod = cq_producer_new(cfg->kafka.brokers, cfg->kafka.produce_timeout_ms, loop, NULL, err);
    if (!s->prod) goto fail_handles;
    const char *topics[] = {cfg->kafka.topic_results, NULL};
    char mpi[16];
    snprintf(mpi, sizeof mpi, "%d", cfg->kafka.max_poll_interval_ms);
    const char *kconf[] = {"max.poll.interval.ms", mpi, NULL};
    s->cons = cq_consumer_new(cfg->kafka.brokers, cfg->kafka.notifier_group, topics, loop,
                              on_message, s, kconf, err);
    if (!s->cons) goto fail_handles;
    if (cq_loop_on_shutdown(loop, on_shutdown, s) != CQ_OK) {
        cq_err_set(err, CQ_ENOMEM, "notifier: cannot register the drain step");
        goto fail_handles;
    }
    set_inflight_gauge(s);
    uv_timer_start(&s->renew_timer, renew_tick, (uint64_t)s->claim_lease_ms / 3,
                   (uint64_t)s->claim_lease_ms / 3);
    return s;
fail_handles:
    cq_consumer_free(s->cons);
    cq_producer_free(s->prod);
    cq_redis_free(s->redis);
    cq_httpc_free(s->http);
    cq_pacer_free(s->slack_pacer);
    cq_pacer_free(s->feishu_pacer);
    /* s holds three timers: it is freed by the last close callback (loop run) */
    s->closing = 3;
    uv_close((uv_handle_t *)&s->drain_timer, free_after_close);
    uv_close((uv_handle_t *)&s->tok.timer, free_after_close);
    uv_close((uv_handle_t *)&s->renew_timer, free_after_close);
    return NULL;
fail:
    free(s);
    return NULL;
}

bool cq_notifier_ready(const struct cq_notifier *n) {
    return n && !n->stopping && n->cons && n->redis && cq_redis_connected(n->redis) && n->prod &&
           cq_producer_ready(n->prod);
}

int cq_notifier_inflight(const struct cq_notifier *n) {
    return n ? n->njobs : 0;
}

void cq_notifier_free(struct cq_notifier *n) {
    if (!n) return;
    if (!n->finished) { /* loop ended without a drain: do it now, then let handles close */
        n->stopping = true;
        drain_finish(n);
        uv_run(cq_loop_uv(n->loop), UV_RUN_NOWAIT);
    }
    free(n->tok.token);
    free(n->tok.stale);
    free(n);
}
