/* service: chatops.results -> Slack / Feishu, once per (request, step, seq). Every result
 * becomes a job that walks: claim in Redis -> pick a route -> (Feishu: token) -> paced send
 * on curl multi -> classify the answer -> delivered (mark, commit) | retry on a timer |
 * fallback route | dead letter (produce to chatops.dlq, then commit). Nothing blocks: each
 * job has at most one operation pending (Redis, HTTP, Kafka report, timer, token wait).
 * This file: the consumer, jobs, claims, answers, pacing and lifecycle (the job's state
 * machine reads best in one place); routes and sends are in route.c, the Feishu token in
 * feishu_token.c, dead letters in dlq.c, the wall-clock helpers in clock.c. */
#include "buttons.h"
#include "config_reload.h"
#include "notifier_int.h"

/* notifier.claim_lease_ms: the once-claim's lease, renewed every third of it for every
 * result held (waiting for pacing, a send slot, a token, a 429 hold or a retry) so that a
 * rebalance never hands a held result to another copy. */
#define BUSY_RECHECK_MS 1000
/* notifier.drain_ms (0: http_timeout_ms + 5 s): on SIGTERM, sends in flight get until then
 * to answer; a delivered mark or dead-letter report then still lands and is committed. */
#define DRAIN_SETTLE_MS 5000
/* notifier.max_inflight: results held at once (accepted, not yet settled); fetching pauses
 * there and resumes below half. notifier.max_sends: concurrent platform requests (more would
 * only queue inside curl and time out). */
#define ANSWER_KEEP 2000 /* bytes of a platform answer kept for logs and the DLQ */

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
const char NTF_RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

const char *const ntf_route_name[] = {"none", "response_url", "chat.postMessage", "chat.update",
                                      "reply", "send", "patch",
                                      /* issue 18 (enum route's R_MM_* .. R_DT_*) */
                                      "response_url", "posts", "original", "followup", "channel",
                                      "messages", "session_webhook", "group", "direct"};

/* ------------------------------------------------------------------ small helpers */

uint64_t ntf_rnd64(void) {
    uint64_t v = 0;
    if (cq_random_bytes(&v, sizeof v) != CQ_OK) v = cq_now_ms() * 2654435761u;
    return v;
}

static const char *plat_str(const struct job *j) {
    if (j->pt) return j->pt->name;
    return j->plat == P_SLACK ? "slack" : "feishu";
}

static struct ntf_pacer *pacer_of(const struct job *j) {
    struct ntf_service *s = j->s;
    if (j->plat == P_SLACK) return s->slack_pacer;
    if (j->plat == P_FEISHU) return s->feishu_pacer;
    return s->plat_pacer[j->plat];
}

static void metric_delivery(const struct job *j, const char *outcome) {
    ntf_metric_delivery(j->decoded ? plat_str(j) : "unknown", outcome);
}

static void metric_attempt(const struct job *j, enum ntf_outcome o) {
    ntf_metric_attempt(plat_str(j), ntf_route_name[j->route], ntf_outcome_str(o));
}

static void set_inflight_gauge(struct ntf_service *s) {
    ntf_metric_inflight(s->njobs);
}

void ntf_ignore_reply(void *opaque, const redisReply *reply, const struct cq_err *err) {
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

void ntf_job_unlink(struct job *j) {
    struct ntf_service *s = j->s;
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
    for (struct job **pp = &s->dtok.waiters; *pp; pp = &(*pp)->tok_next)
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
void ntf_job_finish(struct job *j, const char *outcome) {
    struct ntf_service *s = j->s;
    metric_delivery(j, outcome);
    const char *kv[] = {"outcome",  outcome,
                        "platform", j->decoded ? plat_str(j) : "unknown",
                        "route",    ntf_route_name[j->route],
                        NULL};
    cq_log_kv(CQ_LOG_INFO, j->decoded ? j->r.request_id : NULL, "result settled", kv);
    if (s->cons) cq_consumer_done(s->cons, j->topic, j->partition, j->offset);
    ntf_job_unlink(j);
}

/* Shutdown: leave the offset uncommitted (another copy gets it) and release our claim. */
void ntf_job_abandon(struct job *j) {
    struct ntf_service *s = j->s;
    if (j->claimed && s->redis) {
        const char *argv[] = {"EVAL", NTF_RELEASE_LUA, "1", j->once_key, j->owner};
        cq_redis_commandargv(s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
    }
    cq_debug(j->decoded ? j->r.request_id : NULL, "result left for another copy (shutdown)");
    ntf_job_unlink(j);
}

void ntf_job_wait(struct job *j, uint64_t ms, enum next step) {
    if (j->s->stopping) {
        ntf_job_abandon(j);
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
        ntf_job_claim(j);
        break;
    case N_ROUTE:
        ntf_job_route(j);
        break;
    case N_PACE:
        ntf_job_pace(j);
        break;
    case N_SEND:
        ntf_job_send(j);
        break;
    case N_DLQ:
        ntf_job_dead_letter(j, j->dlq_reason_class, j->reason);
        break;
    }
}

/* Common prologue of every async callback: true when the job must stop here. */
bool ntf_job_gone(struct job *j) {
    if (j->abandoned || (j->s->stopping && j->s->finished)) {
        ntf_job_unlink(j);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ delivered */

static void on_marked(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    /* Posted: commit even when the mark failed or the drain is ending (the consumer is
     * still open here), or a restart would post it again. */
    if (j->abandoned) {
        ntf_job_unlink(j);
        return;
    }
    if (err || (reply && reply->type == REDIS_REPLY_ERROR))
        cq_warn(j->r.request_id, "could not mark delivered in redis: %s",
                err ? err->msg : reply->str);
    ntf_job_finish(j, "delivered");
}

/* When the worker produced the result (its produced_at, else the Kafka timestamp), Unix ms;
 * 0 when neither is known. */
static long long produced_ms(const struct job *j) {
    long long produced = ntf_rfc3339_ms(j->r.produced_at);
    return produced > 0 ? produced : j->msg_ts_ms > 0 ? j->msg_ts_ms : 0;
}

static void job_delivered(struct job *j) {
    struct ntf_service *s = j->s;
    long long produced = produced_ms(j);
    if (produced > 0) {
        long long d = ntf_wall_ms() - produced;
        ntf_metric_latency(plat_str(j), d > 0 ? (double)d / 1000.0 : 0.0);
    }
    ntf_metric_post_seconds(plat_str(j), (double)(cq_now_ms() - j->started_ms) / 1000.0);
    if (j->route == R_POST && j->r.request_id) { /* later progress can chat.update it */
        char *ts = ntf_slack_answer_ts(j->last_body);
        if (ts) {
            char key[512], ttl[16];
            snprintf(key, sizeof key, "%snotify:slack_ts:%s", s->key_prefix, j->r.request_id);
            snprintf(ttl, sizeof ttl, "%d", 86400);
            const char *argv[] = {"SET", key, ts, "EX", ttl};
            cq_redis_commandargv(s->redis, ntf_ignore_reply, NULL, 5, argv, NULL);
            free(ts);
        }
    }
    if ((j->route == R_FS_SEND && ntf_feishu_updatable(j)) || ntf_buttons_shown(j))
        ntf_feishu_remember(j); /* a later state (an event's, a button's outcome) PATCHes it */
    char ttl[16];
    int keep = s->cfg->redis.dedupe_ttl_s > 86400 ? s->cfg->redis.dedupe_ttl_s : 7 * 86400;
    snprintf(ttl, sizeof ttl, "%d", keep);
    const char *argv[] = {"SET", j->once_key, "delivered", "EX", ttl};
    j->wait = W_OP;
    j->settling = true;
    if (cq_redis_commandargv(s->redis, on_marked, j, 5, argv, NULL) != CQ_OK)
        ntf_job_finish(j, "delivered");
}

/* ------------------------------------------------------------------ answers */

static void slot_release(struct ntf_service *s);

void ntf_on_answer(void *opaque, const struct cq_http_response *resp) {
    struct job *j = opaque;
    struct ntf_service *s = j->s;
    slot_release(s);
    if (ntf_job_gone(j)) return;
    if (resp->rc == CQ_ESHUTDOWN) {
        ntf_job_abandon(j);
        return;
    }
    keep_answer(j, resp);
    struct ntf_attempt_answer a = {resp->rc, resp->status, resp->body};
    enum ntf_outcome o;
    char why[128];
    why[0] = '\0';
    if (j->pt && j->pt->classify)
        o = j->pt->classify(j, &a, why, sizeof why);
    else if (j->route == R_RURL)
        o = ntf_classify_slack_webhook(&a, why, sizeof why);
    else if (j->plat == P_SLACK)
        o = ntf_classify_slack_api(&a, why, sizeof why);
    else
        o = ntf_classify_feishu(&a, why, sizeof why);
    if (resp->rc != CQ_OK)
        snprintf(why, sizeof why, "%s: %.100s",
                 resp->rc == CQ_ETIMEOUT ? "timeout" : "connection_error", resp->errmsg);
    metric_attempt(j, o);
    cq_utf8_copy(j->reason, sizeof j->reason, why, strlen(why), NULL);
    {
        char st[16], at[12];
        snprintf(st, sizeof st, "%ld", resp->status);
        snprintf(at, sizeof at, "%d", j->attempts);
        const char *kv[] = {"route",   ntf_route_name[j->route],
                            "status",  st,
                            "outcome", ntf_outcome_str(o),
                            "reason",  why,
                            "attempt", at,
                            NULL};
        cq_log_kv(o == NTF_OUT_DELIVERED ? CQ_LOG_DEBUG : CQ_LOG_WARN, j->r.request_id,
                  "delivery attempt", kv);
    }
    switch (o) {
    case NTF_OUT_DELIVERED:
        job_delivered(j);
        return;
    case NTF_OUT_FALLBACK:
        j->rurl_spent = true;
        ntf_job_route(j);
        return;
    case NTF_OUT_TOKEN_EXPIRED:
        if (j->token_retried) {
            ntf_job_dead_letter(j, "permanent", why);
            return;
        }
        j->token_retried = true;
        if (j->pt && j->pt->token_drop) {
            j->pt->token_drop(j);
            j->pt->token_get(j);
            return;
        }
        if (j->used_token) { /* the token we used is dead for every copy */
            free(s->tok.stale);
            s->tok.stale = strdup(j->used_token);
            if (s->tok.token && strcmp(s->tok.token, j->used_token) == 0) {
                free(s->tok.token);
                s->tok.token = NULL;
            }
        }
        ntf_token_get(j);
        return;
    case NTF_OUT_PERMANENT:
        if (j->route == R_UPDATE || j->route == R_FS_PATCH) { /* gone: post a new one */
            j->update_failed = true;
            j->route = j->route == R_UPDATE ? R_POST : R_FS_SEND;
            ntf_job_pace(j);
            return;
        }
        ntf_job_dead_letter(j, "permanent", why);
        return;
    case NTF_OUT_RETRY:
        break;
    }
    if (j->attempts >= s->cfg->notifier.max_attempts) {
        char r2[160];
        snprintf(r2, sizeof r2, "retries exhausted after %d attempts: %.100s", j->attempts, why);
        ntf_job_dead_letter(j, "exhausted", r2);
        return;
    }
    int64_t hint = -1;
    if (resp->status == 429 && j->pt && j->pt->retry_hint_ms) {
        hint = j->pt->retry_hint_ms(resp);
    } else if (resp->status == 429) {
        const char *h = j->plat == P_SLACK
                            ? resp->retry_after
                            : (resp->ratelimit_reset ? resp->ratelimit_reset : resp->retry_after);
        hint = ntf_retry_after_ms(h, ntf_wall_ms() / 1000, 15 * 60 * 1000);
    }
    uint64_t delay = hint >= 0 ? (uint64_t)hint
                               : ntf_backoff_ms(j->attempts, s->cfg->notifier.backoff_base_ms,
                                                s->cfg->notifier.backoff_max_ms, ntf_rnd64());
    if (hint >= 0) /* the whole channel waits, not only this result */
        ntf_pacer_hold(pacer_of(j), j->pace_key, cq_now_ms() + delay);
    if (j->claimed) { /* keep our claim alive across the wait */
        char lease[24];
        snprintf(lease, sizeof lease, "%llu",
                 (unsigned long long)(delay + (uint64_t)s->claim_lease_ms));
        const char *argv[] = {"SET", j->once_key, j->owner, "XX", "PX", lease};
        cq_redis_commandargv(s->redis, ntf_ignore_reply, NULL, 6, argv, NULL);
    }
    ntf_job_wait(j, delay, N_PACE);
}

/* A send finished: start the oldest waiting job. */
static void slot_release(struct ntf_service *s) {
    s->sending--;
    while (s->sending < s->cfg->notifier.max_sends && s->slot_head && !s->stopping) {
        struct job *j = s->slot_head;
        s->slot_head = j->slot_next;
        if (!s->slot_head) s->slot_tail = NULL;
        j->slot_next = NULL;
        j->wait = W_OP;
        ntf_job_send(j);
    }
}

/* Waits for the channel's next pacing slot, then sends. */
void ntf_job_pace(struct job *j) {
    struct ntf_service *s = j->s;
    uint64_t now = cq_now_ms();
    uint64_t at = ntf_pacer_reserve(pacer_of(j), j->pace_key, now);
    (void)s;
    if (j->plat != P_SLACK) { /* a fresh token for each attempt (it may have rotated) */
        free(j->used_token);
        j->used_token = NULL;
    }
    if (at > now)
        ntf_job_wait(j, at - now, N_SEND);
    else
        ntf_job_send(j);
}

/* ------------------------------------------------------------------ once */

static void on_claim(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (ntf_job_gone(j)) return;
    if (err || !reply || (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING)) {
        cq_warn(j->r.request_id, "once-claim unavailable (%s); retrying",
                err                   ? err->msg
                : reply && reply->str ? reply->str
                                      : "bad reply");
        ntf_job_wait(j, 1000, N_CLAIM);
        return;
    }
    if (strcmp(reply->str, "delivered") == 0) {
        cq_info(j->r.request_id, "already delivered (step %s seq %d): not posting again", j->r.step,
                j->r.seq);
        ntf_job_finish(j, "duplicate");
        return;
    }
    if (strcmp(reply->str, "busy") == 0) { /* another copy is on it: wait for its verdict */
        ntf_job_wait(j, BUSY_RECHECK_MS, N_CLAIM);
        return;
    }
    j->claimed = true;
    ntf_job_route(j);
}

void ntf_job_claim(struct job *j) {
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
        ntf_job_wait(j, 1000, N_CLAIM);
}

/* ------------------------------------------------------------------ consuming */

static void on_message(void *opaque, const struct cq_message *m) {
    struct ntf_service *s = opaque;
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
        ntf_job_dead_letter(j, "invalid", reason);
        return;
    }
    j->decoded = true;
    const struct ntf_platform *pt = ntf_platform_find(j->r.platform);
    if (pt && pt->id == P_SLACK)
        j->plat = P_SLACK;
    else if (pt && pt->id == P_FEISHU)
        j->plat = P_FEISHU;
    else if (pt) { /* issue 18's platforms: the table's row */
        j->plat = (enum platform)pt->id;
        j->pt = pt;
    } else {
        char reason[200];
        snprintf(reason, sizeof reason, "unsupported platform '%.64s'", j->r.platform);
        ntf_job_dead_letter(j, "invalid", reason);
        return;
    }
    long long produced = produced_ms(j);
    if (produced > 0) {
        long long d = ntf_wall_ms() - produced;
        ntf_metric_queue_seconds(plat_str(j), d > 0 ? (double)d / 1000.0 : 0.0);
    }
    if ((j->plat == P_SLACK && !s->cfg->slack.enabled && !s->cfg->slack.bot_token.value &&
         !(j->r.reply.response_url && *j->r.reply.response_url))) {
        ntf_job_dead_letter(j, "permanent", "slack is not configured");
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
    ntf_job_claim(j);
}

/* ------------------------------------------------------------------ lease renewal */

struct renewal {
    struct ntf_service *s;
    char owner[80];
};

static void on_renewed(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct renewal *rn = opaque;
    struct ntf_service *s = rn->s;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        for (struct job *j = s->jobs; j; j = j->next)
            if (j->claimed && !j->settling && strcmp(j->owner, rn->owner) == 0) {
                j->claim_lost = true;
                ntf_metric_claim_lost();
                break;
            }
    } else if (err && err->code != CQ_ESHUTDOWN) {
        cq_debug(NULL, "once-claim renewal failed: %s", err->msg);
    }
    free(rn);
}

/* Every third of the lease: extend the claim of every result this copy holds. */
static void renew_tick(uv_timer_t *t) {
    struct ntf_service *s = t->data;
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

static void drain_finish(struct ntf_service *s) {
    uv_timer_stop(&s->drain_timer);
    uv_timer_stop(&s->renew_timer);
    s->finished = true;
    /* whatever is still waiting goes back to Kafka for another copy; a result already posted
     * or dead-lettered keeps its pending mark/report, which commits it below */
    int unknown = 0;
    for (struct job *j = s->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->wait != W_OP)
            ntf_job_abandon(j);
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
    ntf_pacer_free(s->slack_pacer);
    ntf_pacer_free(s->feishu_pacer);
    s->slack_pacer = s->feishu_pacer = NULL;
    for (int i = 0; i < P_COUNT; i++) {
        ntf_pacer_free(s->plat_pacer[i]);
        s->plat_pacer[i] = NULL;
    }
    uv_close((uv_handle_t *)&s->drain_timer, close_noop);
    uv_close((uv_handle_t *)&s->tok.timer, close_noop);
    uv_close((uv_handle_t *)&s->renew_timer, close_noop);
    cq_info(NULL, "notifier drained (%d results left for other copies)", s->njobs);
}

static void drain_tick(uv_timer_t *t) {
    struct ntf_service *s = t->data;
    /* release waiting jobs at once; in-flight requests get until the deadline, a mark or
     * dead-letter report of a result already out gets DRAIN_SETTLE_MS more */
    bool settling = false;
    for (struct job *j = s->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->wait != W_OP)
            ntf_job_abandon(j);
        else if (j->settling)
            settling = true;
    }
    uint64_t now = cq_now_ms();
    if (s->njobs == 0 || now >= s->drain_deadline + (settling ? DRAIN_SETTLE_MS : 0))
        drain_finish(s);
}

static void on_shutdown(void *arg) {
    struct ntf_service *s = arg;
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
    struct ntf_service *s = h->data;
    if (--s->closing == 0) free(s);
}

struct ntf_service *ntf_service_new(struct cq_loop *loop, const struct cq_config *cfg,
                                    struct cq_err *err) {
    struct ntf_service *s = calloc(1, sizeof *s);
    if (!s) {
        cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cq_config_ref(cfg);
    snprintf(s->key_prefix, sizeof s->key_prefix, "%s", cfg->redis.prefix ? cfg->redis.prefix : "");
    if (cq_uuid4(s->instance) != CQ_OK) {
        cq_err_set(err, CQ_ECRYPTO, "notifier: no randomness for the instance id");
        free(s);
        return NULL;
    }
    uv_timer_init(cq_loop_uv(loop), &s->drain_timer);
    s->drain_timer.data = s;
    uv_timer_init(cq_loop_uv(loop), &s->tok.timer);
    s->tok.timer.data = s;
    uv_timer_init(cq_loop_uv(loop), &s->renew_timer);
    s->renew_timer.data = s;
    s->claim_lease_ms = cfg->notifier.claim_lease_ms > 0 ? cfg->notifier.claim_lease_ms : 60000;
    s->slack_pacer = ntf_pacer_new(cfg->notifier.slack_channel_interval_ms);
    s->feishu_pacer = ntf_pacer_new(cfg->notifier.feishu_chat_interval_ms);
    if (!s->slack_pacer || !s->feishu_pacer) {
        cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
        goto out;
    }
    for (int i = P_DINGTALK; i < P_COUNT; i++) { /* DingTalk: N a minute per conversation */
        int mpm = cfg->dingtalk.messages_per_minute > 0 ? cfg->dingtalk.messages_per_minute : 20;
        s->plat_pacer[i] = ntf_pacer_new(i == P_DINGTALK ? (60000 + mpm - 1) / mpm : 0);
        if (!s->plat_pacer[i]) {
            cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
            goto out;
        }
    }
    s->http = cq_httpc_new(loop, 256, err);
    if (!s->http) goto out;
    s->redis = cq_redis_new_cfg(loop, cfg, err);
    if (!s->redis) goto out;
    cq_redis_check_persistence(s->redis);
    s->prod = cq_producer_new(cfg->kafka.brokers, cfg->kafka.produce_timeout_ms, loop,
                              cfg->kafka.client_conf, err);
    if (!s->prod) goto out;
    const char *topics[] = {cfg->kafka.topic_results, NULL};
    char mpi[16];
    snprintf(mpi, sizeof mpi, "%d", cfg->kafka.max_poll_interval_ms);
    const char *own[] = {"max.poll.interval.ms", mpi, NULL};
    const char **kconf = cq_kafka_conf_join(cfg->kafka.client_conf, own);
    if (!kconf) {
        cq_err_set(err, CQ_ENOMEM, "notifier: out of memory");
        goto out;
    }
    s->cons = cq_consumer_new(cfg->kafka.brokers, cfg->kafka.notifier_group, topics, loop,
                              on_message, s, kconf, err);
    free(kconf);
    if (!s->cons) goto out;
    if (cq_loop_on_shutdown(loop, on_shutdown, s) != CQ_OK) {
        cq_err_set(err, CQ_ENOMEM, "notifier: cannot register the drain step");
        goto out;
    }
    set_inflight_gauge(s);
    uv_timer_start(&s->renew_timer, renew_tick, (uint64_t)s->claim_lease_ms / 3,
                   (uint64_t)s->claim_lease_ms / 3);
    return s;
out:
    cq_consumer_free(s->cons);
    cq_producer_free(s->prod);
    cq_redis_free(s->redis);
    cq_httpc_free(s->http);
    ntf_pacer_free(s->slack_pacer);
    ntf_pacer_free(s->feishu_pacer);
    for (int i = 0; i < P_COUNT; i++)
        ntf_pacer_free(s->plat_pacer[i]);
    /* s holds three timers: it is freed by the last close callback (loop run) */
    s->closing = 3;
    uv_close((uv_handle_t *)&s->drain_timer, free_after_close);
    uv_close((uv_handle_t *)&s->tok.timer, free_after_close);
    uv_close((uv_handle_t *)&s->renew_timer, free_after_close);
    return NULL;
}

bool ntf_service_ready(const struct ntf_service *n) {
    return n && !n->stopping && n->cons && n->redis && cq_redis_connected(n->redis) && n->prod &&
           cq_producer_ready(n->prod);
}

int ntf_service_inflight(const struct ntf_service *n) {
    return n ? n->njobs : 0;
}

void ntf_service_free(struct ntf_service *n) {
    if (!n) return;
    if (!n->finished) { /* loop ended without a drain: do it now, then let handles close */
        n->stopping = true;
        drain_finish(n);
        uv_run(cq_loop_uv(n->loop), UV_RUN_NOWAIT);
    }
    free(n->tok.token);
    free(n->tok.stale);
    free(n->dtok.token);
    free(n->dtok.stale);
    cq_config_unref(n->cfg);
    free(n);
}

void ntf_service_set_config(struct ntf_service *n, const struct cq_config *cfg) {
    const struct cq_config *old = n->cfg;
    const char *a = old->feishu.app_id, *b = cfg->feishu.app_id;
    const char *sa = old->feishu.app_secret.value, *sb = cfg->feishu.app_secret.value;
    bool same_app = (a == b || (a && b && strcmp(a, b) == 0)) &&
                    (sa == sb || (sa && sb && strcmp(sa, sb) == 0));
    if (!same_app && !n->tok.busy) { /* a rotated app secret: fetch a token with it */
        free(n->tok.token);
        n->tok.token = NULL;
        n->tok.fetched_ms = n->tok.expire_ms = 0;
    }
    n->cfg = cq_config_ref(cfg);
    cq_config_unref(old);
}
