/* runonce: the run-once claim of a request in Redis: the Lua scripts (claim, epoch,
 * compare-and-set), the claim states claimed -> calling -> done, the epoch record that
 * tells a Redis that lost its memory, the lease that tells a live owner, and what a
 * duplicate, a lost claim or a dead owner's request is answered. */
#include "locks.h"
#include "service.h"
#include "service_int.h"
#include "strutil.h"

#include "admin_http.h"
#include "args.h"
#include "builtins.h"
#include "crypto.h"
#include "envelope.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "redis.h"
#include "template.h"
#include "utf8.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Creates a missing epoch record (hash KEYS[n]) into `since`. Missing means a new key
 * prefix, or a server that lost everything: flushed (FLUSHALL/FLUSHDB show in INFO
 * commandstats until a restart) -> since = now, claims made before may be gone; otherwise
 * since = 0 (nothing was claimed here before). A non-persistent server that restarted
 * empty is not told apart from a new one: the persistence check warns about it. */
#define EPOCH_NEW(n)                                                                               \
    "      local cs = redis.call('INFO', 'commandstats')\n"                                        \
    "      local fa = tonumber(string.match(cs, 'cmdstat_flushall:calls=(%d+)') or '0')\n"         \
    "      local fd = tonumber(string.match(cs, 'cmdstat_flushdb:calls=(%d+)') or '0')\n"          \
    "      local t = redis.call('TIME')\n"                                                         \
    "      since = 0\n"                                                                            \
    "      if fa + fd > 0 then\n"                                                                  \
    "        since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"              \
    "      local rid = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or '?'\n"        \
    "      redis.call('HSET', KEYS[" #n "], 'since', since, 'server', rid)\n"

/* Claims the run-once key. KEYS[1] run key, KEYS[2] the Redis epoch record (see
 * EPOCH_LUA); ARGV: owner, claimed value, ttl s, lease key prefix, "1" when a dead
 * owner's unfinished call may be retried, "1" to re-send a stored result even though its
 * live owner may still be delivering it, the request's received_at in ms (0 = no check),
 * the value to store when the claim is "lost".
 * A missing claim is a fresh one unless the request is older than the epoch record's
 * `since`: Redis then restarted, failed over or was flushed after the request existed,
 * so its claim may have been lost with a call already made ("lost": a "calling" claim
 * in our name is stored and the caller answers "outcome unknown"). A missing epoch record
 * is created by EPOCH_NEW (since = now only on a server that was flushed).
 * A result that is stored but not yet known delivered is re-sent only when its owner
 * died: while the owner lives, a duplicate waits ("busy") and then finds it delivered.
 * A claim that already holds exactly ARGV[2] is ours (a retry after a timed-out reply). */
static const char CLAIM_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if not cur then\n"
    "  if ARGV[7] ~= '0' then\n"
    "    local since = tonumber(redis.call('HGET', KEYS[2], 'since'))\n"
    "    if not since then\n" EPOCH_NEW(
        2) "    end\n"
           "    if tonumber(ARGV[7]) < since then\n"
           "      redis.call('SET', KEYS[1], ARGV[8], 'EX', ARGV[3]) return {'lost', ARGV[8]} end\n"
           "  end\n"
           "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return {'claimed', ''}\n"
           "end\n"
           "if cur == ARGV[2] then return {'claimed', ''} end\n"
           "local ok, st = pcall(cjson.decode, cur)\n"
           "if not ok or type(st) ~= 'table' then return {'corrupt', cur} end\n"
           "if st.state == 'done' then\n"
           "  if st.delivered or ARGV[6] == '1' then return {'done', cur} end\n"
           "  if st.owner ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. tostring(st.owner)) == 0 "
           "then\n"
           "    return {'done', cur} end\n"
           "  return {'busy', cur}\n"
           "end\n"
           "if st.owner == ARGV[1] then return {'busy', cur} end\n"
           "if redis.call('EXISTS', ARGV[4] .. tostring(st.owner)) == 1 then return {'busy', cur} "
           "end\n"
           "if st.state == 'claimed' or ARGV[5] == '1' then\n"
           "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return {'takeover', cur} end\n"
           "return {'unknown', cur}\n";

/* The Redis epoch record KEYS[1] (a hash: server = run_id of the Redis process, since =
 * Redis time in ms when this server started holding the claims). Run on every connect,
 * before any claim on that connection: a different run_id means Redis restarted or
 * failed over, and whatever it acknowledged last (AOF everysec: up to 1 s; a failover:
 * the replication lag) may be gone. Returns 1 when since moved. */
static const char EPOCH_LUA[] =
    "local info = redis.call('INFO', 'server')\n"
    "local rid = string.match(info, 'run_id:(%w+)') or 'unknown'\n"
    "local seen = redis.call('HGET', KEYS[1], 'server')\n"
    "if seen == rid then return 0 end\n"
    "if not seen then\n"
    "  local since\n" EPOCH_NEW(
        1) "  return since > 0 and 1 or 0\n"
           "end\n"
           "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
           "redis.call('HSET', KEYS[1], 'server', rid, 'since', now)\n"
           "return 1\n";

/* Compare-and-set of the claim: KEYS[1]; ARGV: expected, new, ttl s. Also succeeds when
 * the claim already holds new (it carries our owner id and a ms timestamp): a retry of a
 * CAS whose reply timed out after Redis applied it must not read as a lost claim. */
const char w_cas_lua[] = "local cur = redis.call('GET', KEYS[1])\n"
                         "if cur == ARGV[1] or cur == ARGV[2] then\n"
                         "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end\n"
                         "return 0\n";

static char *claim_value(const struct job *j, const char *state, const char *result) {
    char now[32];
    cJSON *v = cJSON_CreateObject();
    char *s = NULL;
    if (!v) return NULL;
    cq_now_rfc3339(now);
    cJSON_AddStringToObject(v, "owner", j->w->owner);
    cJSON_AddStringToObject(v, "state", state);
    cJSON_AddStringToObject(v, "request_id", j->req.id ? j->req.id : "");
    cJSON_AddStringToObject(v, "at", now);
    if (j->target) cJSON_AddStringToObject(v, "target", j->target);
    if (j->pl_id) cJSON_AddNumberToObject(v, "pipeline_id", (double)j->pl_id);
    if (result) cJSON_AddStringToObject(v, "result", result);
    s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

static void cas(struct job *j, const char *expected, const char *next, cq_redis_cb cb) {
    struct w_worker *w = j->w;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", w->cfg->redis.dedupe_ttl_s);
    const char *argv[] = {"EVAL", w_cas_lua, "1", j->run_key, expected, next, ttl};
    w_job_op_begin(j);
    if (cq_redis_commandargv(w->redis, cb, j, 7, argv, NULL) != CQ_OK) {
        struct cq_err e = {.code = CQ_EREDIS};
        snprintf(e.msg, sizeof(e.msg), "redis command not accepted");
        cb(j, NULL, &e); /* ends the op */
    }
}

static bool redis_failed(const redisReply *reply, const struct cq_err *err, const char **why) {
    if (err) {
        *why = err->msg[0] ? err->msg : cq_rc_str(err->code);
        return true;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        *why = reply && reply->str ? reply->str : "no reply";
        return true;
    }
    return false;
}

static void store_done(void *arg);

/* The compare-and-set wrote next_stored: it is what Redis holds now. */
static void adopt_next_stored(struct job *j) {
    free(j->stored);
    j->stored = j->next_stored;
    j->next_stored = NULL;
    j->next_state = NULL;
}

static void on_store_done(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    const char *why = NULL;
    if (redis_failed(reply, err, &why)) {
        bool shutting = err && err->code == CQ_ESHUTDOWN;
        if (!shutting && !j->w->stopping && ++j->store_attempts < 20 &&
            w_retry_later(j, 500, store_done, j)) {
            cq_warn(j->req.id, "storing the result in redis failed (%s); retrying", why);
        } else {
            /* The reply matters more than the record: send it; a redelivery may then
             * answer "outcome unknown", which is still true to the user. */
            cq_error(j->req.id, "could not store the result in redis (%s); sending it anyway", why);
            char *res = w_result_json(j, j->status, j->text);
            w_produce_final(j, res, true);
        }
        w_job_op_end(j);
        return;
    }
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        cq_warn(j->req.id, "the claim changed owner while this worker ran the request");
    adopt_next_stored(j);
    char *res = w_result_json(j, j->status, j->text);
    w_produce_final(j, res, true);
    w_job_op_end(j);
}

static void store_done(void *arg) {
    struct job *j = arg;
    if (j->next_stored && j->next_state && strcmp(j->next_state, "done") == 0 && j->stored &&
        j->state != JS_ABANDONED) {
        cas(j, j->stored, j->next_stored, on_store_done);
        return;
    }
    char *res = w_result_json(j, j->status, j->text); /* NULL: out of memory only */
    char *val = res ? claim_value(j, "done", res) : NULL;
    free(res);
    if (!val || !j->stored || j->state == JS_ABANDONED) {
        free(val);
        if (j->state != JS_ABANDONED) w_job_abandon(j, "out of memory storing the result");
        return;
    }
    free(j->next_stored);
    j->next_stored = val;
    j->next_state = "done";
    cas(j, j->stored, val, on_store_done);
}

/* Ends the request with a final result: stored in the claim first, then produced. */
void w_finish_with(struct job *j, const char *status, char *text) {
    w_locks_on_final(j); /* its lock, unless a tracked pipeline holds it (locks.c) */
    free(j->text);
    j->text = NULL;
    j->status = status;
    /* API answers may quote what a secret went into (an echoed header or body): redacted
     * before the cut, so a secret is never cut into a fragment that escapes redaction. */
    bool had_text = text != NULL;
    if (had_text) text = cq_config_redact(j->cfg, text);
    if (had_text && !text) {
        w_job_abandon(j, "out of memory");
        return;
    }
    /* Replies carry API bodies and cut text: made valid UTF-8 and cut on a character
     * boundary here, so the envelope encoder accepts them. */
    j->text = cq_utf8_clean(text ? text : "", text ? strlen(text) : 0, MAX_REPLY_TEXT);
    free(text);
    if (!j->text) {
        w_job_abandon(j, "out of memory");
        return;
    }
    store_done(j);
}

static void on_calling_stored(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    const char *why = NULL;
    if (redis_failed(reply, err, &why)) {
        /* No side effect happened yet: safe to try again, or to leave for redelivery. */
        if ((err && err->code == CQ_ESHUTDOWN) || j->w->stopping)
            w_job_abandon(j, "stopped before the call");
        else if (!w_retry_later(j, 500, w_mark_calling, j))
            w_job_abandon(j, "redis unavailable before the call");
        else
            cq_warn(j->req.id, "redis: %s; retrying before the call", why);
        w_job_op_end(j);
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        /* The claim changed before the call: another worker took it over (our lease
         * lapsed), or Redis lost it. Nothing was called yet: look at it again (a live
         * owner is waited for, a stored result re-sent, a lost one answered "outcome
         * unknown") rather than end with nothing produced. */
        cq_warn(j->req.id, "the claim changed before the call; claiming again");
        j->reclaim = true;
        w_claim(j);
        w_job_op_end(j);
        return;
    }
    adopt_next_stored(j);
    if (j->cmd->mode == CQ_MODE_DIRECT)
        w_start_call(j);
    else
        w_pipeline_trigger_now(j);
    w_job_op_end(j);
}

/* claimed -> calling (with the target), then the call. */
void w_mark_calling(void *arg) {
    struct job *j = arg;
    if (j->next_stored && j->next_state && strcmp(j->next_state, "calling") == 0) {
        cas(j, j->stored, j->next_stored, on_calling_stored);
        return;
    }
    char *val = claim_value(j, "calling", NULL);
    if (!val) {
        w_job_abandon(j, "out of memory");
        return;
    }
    free(j->next_stored);
    j->next_stored = val;
    j->next_state = "calling";
    cas(j, j->stored, val, on_calling_stored);
}

static void claim_cb(void *arg) {
    w_claim(arg);
}

static void on_unknown_stored(void *opaque, const redisReply *reply, const struct cq_err *err);

static void unknown_store_again(void *arg) {
    struct job *j = arg;
    cas(j, j->stored, j->next_stored, on_unknown_stored);
}

static void on_unknown_stored(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    const char *why = NULL;
    bool failed = redis_failed(reply, err, &why);
    if (failed || reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        /* Redis trouble: store the same answer again (the claim may now hold our "calling"
         * value, which a fresh look would take for a live owner's). Lost a race: look at
         * the claim again. */
        if ((err && err->code == CQ_ESHUTDOWN) || j->w->stopping)
            w_job_abandon(j, "stopped");
        else if (!w_retry_later(j, 500, failed ? unknown_store_again : claim_cb, j))
            w_job_abandon(j, "out of memory");
        w_job_op_end(j);
        return;
    }
    adopt_next_stored(j);
    w_metric_action("unknown");
    char *res = w_result_json(j, j->status, j->text);
    w_produce_final(j, res, true);
    w_job_op_end(j);
}

/* The previous owner died inside a call that is not safe to repeat. */
static void answer_unknown(struct job *j, const char *cur, bool lost) {
    cJSON *st = cJSON_Parse(cur);
    const char *target = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "target"));
    free(j->text);
    j->status = "failed";
    j->outcome_unknown = true;
    if (lost)
        j->text = cq_strprintf("`%s` (req %s): the outcome is unknown: Redis lost its run-once "
                               "record (a restart, failover or flush) and it may already have "
                               "run, so it was NOT run again; check the target system before "
                               "running it again",
                               w_cmd_name(j), j->req.id);
    else
        j->text = cq_strprintf("`%s` (req %s) was interrupted: the worker running it stopped "
                               "during %s; the outcome is unknown, check %s before running it "
                               "again",
                               w_cmd_name(j), j->req.id, target ? target : "the call",
                               target ? "there" : "the target system");
    free(j->stored);
    j->stored = strdup(cur);
    char *res = w_result_json(j, j->status, j->text);
    char *val = res && j->stored ? claim_value(j, "done", res) : NULL;
    free(res);
    cJSON_Delete(st);
    if (!val || !j->text) {
        free(val);
        w_job_abandon(j, "out of memory");
        return;
    }
    free(j->next_stored);
    j->next_stored = val;
    j->next_state = NULL;
    cq_warn(j->req.id, "outcome unknown: %s",
            lost     ? "the run-once claim was lost by Redis"
            : target ? "the previous owner died during the call"
                     : "the previous owner died during the request");
    cas(j, j->stored, val, on_unknown_stored);
}

/* Already answered once: send the stored result again unless it is known delivered. */
static void answer_done(struct job *j, const char *cur) {
    cJSON *st = cJSON_Parse(cur);
    const char *res = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "result"));
    bool delivered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "delivered"));
    j->resend_only = true;
    if (delivered || !res) {
        cq_info(j->req.id, "duplicate of an answered request (%s): nothing to do",
                j->req.dedupe_key);
        w_job_set_state(j, JS_COMPLETE);
        w_job_release_conv(j);
        if (j->w->consumer) cq_consumer_done(j->w->consumer, j->topic, j->partition, j->offset);
    } else {
        cq_info(j->req.id, "duplicate of an answered request (%s): sending its result again",
                j->req.dedupe_key);
        cJSON *r = cJSON_Parse(res);
        const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "request_id"));
        w_job_set_state(j, JS_FINAL_QUEUED);
        w_produce(j, j->cfg->kafka.topic_results, rid ? rid : j->req.id, strdup(res));
        cJSON_Delete(r);
        w_job_release_conv(j);
    }
    cJSON_Delete(st);
}

static void on_claim(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    struct w_worker *w = j->w;
    const char *why = NULL;
    if (redis_failed(reply, err, &why)) {
        if ((err && err->code == CQ_ESHUTDOWN) || w->stopping) {
            w_job_abandon(j, "stopped before the claim");
        } else {
            cq_warn(j->req.id, "redis: %s; claim retried in 500 ms", why);
            if (!w_retry_later(j, 500, claim_cb, j)) w_job_abandon(j, "out of memory");
        }
        w_job_op_end(j);
        return;
    }
    const char *what = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                               reply->element[0]->type == REDIS_REPLY_STRING
                           ? reply->element[0]->str
                           : "";
    const char *cur = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                              reply->element[1]->type == REDIS_REPLY_STRING
                          ? reply->element[1]->str
                          : "";
    if (strcmp(what, "claimed") == 0 || strcmp(what, "takeover") == 0) {
        if (what[0] == 't')
            cq_warn(j->req.id, "took over a request whose owner died (%s)", j->req.dedupe_key);
        adopt_next_stored(j);
        if (j->reclaim) /* decided, audited and rendered already: on to "calling" */
            w_mark_calling(j);
        else
            w_execute(j);
    } else if (strcmp(what, "lost") == 0) {
        w_metric_claim_lost();
        answer_unknown(j, cur, true);
    } else if (strcmp(what, "done") == 0) {
        answer_done(j, cur);
    } else if (strcmp(what, "busy") == 0) {
        /* Another live worker (or an earlier copy here) runs it: wait for its outcome
         * without holding the conversation, and keep the offset until then. */
        w_job_release_conv(j);
        j->busy_tries++;
        uint64_t now = cq_now_ms();
        if (!j->dup_since) j->dup_since = now;
        if (w->stopping) {
            w_job_abandon(j, "stopped while a duplicate was running elsewhere");
        } else if (now - j->dup_since >= (uint64_t)w->cfg->worker.duplicate_wait_s * 1000) {
            /* Its live owner answers (its own offset stays uncommitted until then, and is
             * redelivered if it dies): this copy need not pin its partition any longer. */
            cq_warn(j->req.id,
                    "duplicate of %s still running elsewhere after %d s: dropped "
                    "as a duplicate, its owner answers",
                    j->req.dedupe_key, w->cfg->worker.duplicate_wait_s);
            w_metric_duplicate("dropped");
            w_job_set_state(j, JS_COMPLETE);
            if (w->consumer) cq_consumer_done(w->consumer, j->topic, j->partition, j->offset);
        } else if (!w_retry_later(j, 1000, claim_cb, j)) {
            w_job_abandon(j, "out of memory");
        }
    } else if (strcmp(what, "unknown") == 0) {
        answer_unknown(j, cur, false);
    } else {
        cq_error(j->req.id, "unexpected claim state (%s): leaving the request alone", what);
        w_job_set_state(j, JS_COMPLETE);
        w_job_release_conv(j);
        if (w->consumer) cq_consumer_done(w->consumer, j->topic, j->partition, j->offset);
    }
    w_job_op_end(j);
}

void w_claim(struct job *j) {
    struct w_worker *w = j->w;
    char ttl[16];
    if (j->state == JS_ABANDONED) return;
    bool retry_ok =
        j->kind != JK_ACTION || (j->cmd->mode == CQ_MODE_DIRECT && j->cmd->http.idempotent);
    char *val = j->next_stored && j->next_state && strcmp(j->next_state, "claimed") == 0
                    ? j->next_stored
                    : claim_value(j, "claimed", NULL);
    if (!val) {
        w_job_abandon(j, "out of memory");
        return;
    }
    if (val != j->next_stored) {
        free(j->next_stored);
        j->next_stored = val;
    }
    j->next_state = "claimed";
    snprintf(ttl, sizeof(ttl), "%d", w->cfg->redis.dedupe_ttl_s);
    /* A missing claim of a request that may have had a side effect before Redis lost its
     * memory must not run again: checked against the epoch record unless a repeat is
     * harmless (no side effect, or an idempotent call). */
    char received[24], *lost = NULL;
    snprintf(received, sizeof(received), "%lld",
             retry_ok ? 0LL : (long long)(j->received_ms > 0 ? j->received_ms : 1));
    if (!retry_ok && !(lost = claim_value(j, "calling", NULL))) {
        w_job_abandon(j, "out of memory");
        return;
    }
    const char *argv[] = {"EVAL",
                          CLAIM_LUA,
                          "2",
                          j->run_key,
                          w->epoch_key,
                          w->owner,
                          val,
                          ttl,
                          w->lease_prefix,
                          retry_ok ? "1" : "0",
                          j->busy_tries > 30 ? "1" : "0",
                          received,
                          lost ? lost : ""};
    w_job_op_begin(j);
    enum cq_rc rc = cq_redis_commandargv(w->redis, on_claim, j, 13, argv, NULL);
    free(lost);
    if (rc != CQ_OK) {
        struct cq_err e = {.code = CQ_EREDIS};
        snprintf(e.msg, sizeof(e.msg), "redis command not accepted");
        on_claim(j, NULL, &e);
    }
}

void w_renew_lease(uv_timer_t *t) {
    struct w_worker *w = t->data;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", w->cfg->worker.lease_ms);
    if (w->redis && !w->torn_down) {
        const char *argv[] = {"SET", w->lease_key, "1", "PX", ms};
        cq_redis_commandargv(w->redis, w_ignore_reply, NULL, 5, argv, NULL);
        w_approval_sweep(w); /* expired approvals and confirmations (approval.c) */
        w_locks_renew(w);    /* the action locks this worker holds (locks.c) */
    }
}

static void on_epoch(void *opaque, const redisReply *reply, const struct cq_err *err) {
    (void)opaque;
    if (!err && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        cq_warn(NULL, "redis: a new server (restart, failover or first start): requests "
                      "received before now whose run-once claim is missing are answered "
                      "'outcome unknown' instead of run");
}

/* First on every connection, so no claim is made on a new Redis before its epoch moved. */
void w_on_redis_connect(void *arg) {
    struct w_worker *w = arg;
    const char *argv[] = {"EVAL", EPOCH_LUA, "1", w->epoch_key};
    cq_redis_commandargv(w->redis, on_epoch, w, 4, argv, NULL);
    w_renew_lease(&w->lease_timer);
}
