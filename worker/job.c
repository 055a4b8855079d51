/* job: a request's life in the worker: taken from Kafka (or dead-lettered), queued in
 * its conversation so a conversation's jobs run in order, decided, claimed, executed,
 * its messages produced (retried on one timer) and its offset marked done only after
 * Kafka acknowledged every one of them. */
#include "service.h"
#include "service_int.h"

#include "strutil.h"
#include <assert.h>

#include "admin_http.h"
#include "args.h"
#include "builtins.h"
#include "config_reload.h"
#include "crypto.h"
#include "envelope.h"
#include "httpc.h"
#include "identity.h"
#include "kafka.h"
#include "locks.h"
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

static unsigned long hash_str(const char *s) {
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* ---- the job's lifetime (service_int.h has the picture) ---- */

static const char *const state_names[JS_N] = {"queued", "running", "final_queued", "complete",
                                              "abandoned"};

/* allowed[from] is the set of states a job in `from` may move to (besides itself). */
static const unsigned allowed[JS_N] = {
    [JS_QUEUED] = 1u << JS_RUNNING | 1u << JS_ABANDONED,
    [JS_RUNNING] = 1u << JS_FINAL_QUEUED | 1u << JS_COMPLETE | 1u << JS_ABANDONED,
    [JS_FINAL_QUEUED] = 1u << JS_COMPLETE | 1u << JS_ABANDONED,
    [JS_COMPLETE] = 1u << JS_ABANDONED, /* torn down, or a late report failed */
    [JS_ABANDONED] = 0,
};

const char *w_job_state_name(enum job_state s) {
    return (unsigned)s < JS_N ? state_names[s] : "?";
}

bool w_job_transition_ok(enum job_state from, enum job_state to) {
    if ((unsigned)from >= JS_N || (unsigned)to >= JS_N) return false;
    return from == to || (allowed[from] & (1u << to)) != 0;
}

bool w_job_set_state(struct job *j, enum job_state to) {
    if (j->state == JS_ABANDONED) return to == JS_ABANDONED;
    if (!w_job_transition_ok(j->state, to)) {
        cq_error(j->req.id, "bug: job state %s -> %s is not allowed; staying %s",
                 w_job_state_name(j->state), w_job_state_name(to), w_job_state_name(j->state));
        assert(!"job state transition not allowed");
        return false;
    }
    j->state = to;
    return true;
}

bool w_job_gone(const struct job *j) {
    return j->w->torn_down || j->state == JS_ABANDONED;
}

static bool job_terminal(const struct job *j) {
    return j->state == JS_COMPLETE || j->state == JS_ABANDONED;
}

void w_job_op_begin(struct job *j) {
    j->ops++;
}

static void job_start(struct job *j);

static void maybe_resume(struct w_worker *w);

static void send_out(void *arg);

void w_retry_tick(uv_timer_t *t) {
    struct w_worker *w = t->data;
    uint64_t now = cq_now_ms();
    struct retry *due = NULL, **pp = &w->retries;
    while (*pp) {
        struct retry *r = *pp;
        if (r->at <= now || w->torn_down) {
            *pp = r->next;
            r->next = due;
            due = r;
        } else {
            pp = &r->next;
        }
    }
    while (due) {
        struct retry *r = due;
        struct job *j = r->job;
        void (*fn)(void *) = r->fn;
        void *arg = r->arg;
        due = r->next;
        free(r);
        if (fn == send_out || !w_job_gone(j))
            fn(arg); /* send_out releases its message itself when torn down */
        else
            w_job_set_state(j, JS_ABANDONED);
        w_job_op_end(j);
    }
    if (!w->retries && !uv_is_closing((uv_handle_t *)t)) uv_timer_stop(t);
}

/* Runs fn(arg) after ms; the job stays alive meanwhile. False on ENOMEM. */
bool w_retry_later(struct job *j, int ms, void (*fn)(void *), void *arg) {
    struct w_worker *w = j->w;
    struct retry *r = malloc(sizeof(*r));
    if (!r) return false;
    r->at = cq_now_ms() + (uint64_t)ms;
    r->fn = fn;
    r->arg = arg;
    r->job = j;
    r->next = w->retries;
    w->retries = r;
    w_job_op_begin(j);
    if (!uv_is_active((uv_handle_t *)&w->retry_timer) && !w->torn_down)
        uv_timer_start(&w->retry_timer, w_retry_tick, RETRY_TICK_MS, RETRY_TICK_MS);
    return true;
}

void w_job_free(struct job *j) {
    struct w_worker *w = j->w;
    if (j->all_prev)
        j->all_prev->all_next = j->all_next;
    else
        w->jobs = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    w->n_jobs--;
    w_metric_inflight(w);
    free(j->topic);
    free(j->convkey);
    cq_request_clear(&j->req);
    w_argv_clear(&j->argv);
    w_bound_args_clear(&j->args);
    free(j->text);
    free(j->run_key);
    free(j->stored);
    free(j->next_stored);
    free(j->target);
    free(j->pl_url);
    free(j->pl_status);
    free(j->approvers);
    free(j->lock_key);
    free(j->lock_token);
    w_http_call_clear(&j->call);
    w_ident_free(j->ident);
    cq_config_unref(j->cfg);
    free(j);
    maybe_resume(w);
}

void w_job_maybe_free(struct job *j) {
    if (j->ops == 0 && job_terminal(j) && !j->conv) w_job_free(j);
}

void w_job_op_end(struct job *j) {
    j->ops--;
    w_job_maybe_free(j);
}

/* The offset may be committed: every message this request produced was acknowledged. */
static void job_complete(struct job *j) {
    struct w_worker *w = j->w;
    w_job_set_state(j, JS_COMPLETE);
    if (w->consumer) cq_consumer_done(w->consumer, j->topic, j->partition, j->offset);
    if (j->status && !j->resend_only)
        w_metric_request_seconds((double)(cq_now_ms() - j->t0) / 1000.0);
}

static struct conv **conv_slot(struct w_worker *w, const char *key) {
    struct conv **pp = &w->convs[hash_str(key) % CONV_BUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void conv_drop(struct w_worker *w, struct conv *c) {
    struct conv **pp = conv_slot(w, c->key);
    if (*pp == c) *pp = c->next;
    free(c->key);
    free(c);
}

/* Leaves every job still waiting in c for redelivery after a restart, in order. */
static void conv_abandon_queue(struct w_worker *w, struct conv *c) {
    while (c->head) {
        struct job *q = c->head;
        c->head = q->qnext;
        q->qnext = NULL;
        q->conv = NULL;
        w_job_set_state(q, JS_ABANDONED);
        w_job_maybe_free(q);
    }
    conv_drop(w, c);
}

/* Lets the next job of this conversation start: the current one no longer needs the
 * conversation's order (its result is on its way, or it waits as a duplicate). */
void w_job_release_conv(struct job *j) {
    struct w_worker *w = j->w;
    struct conv *c = j->conv;
    if (!c) return;
    j->conv = NULL;
    if (c->head == j) {
        c->head = j->qnext;
        if (!c->head) c->tail = NULL;
    }
    j->qnext = NULL;
    if (!c->head) {
        conv_drop(w, c);
    } else if (c->head->state == JS_QUEUED) {
        if (w->stopping)
            conv_abandon_queue(w, c);
        else
            job_start(c->head);
    }
}

/* Leaves the request for redelivery (its offset is never marked done). The job is
 * freed here when nothing is outstanding: callers must not touch it afterwards. */
void w_job_abandon(struct job *j, const char *why) {
    if (j->state != JS_ABANDONED) cq_warn(j->req.id, "request left for redelivery: %s", why);
    w_job_set_state(j, JS_ABANDONED);
    w_job_release_conv(j);
    w_job_maybe_free(j);
}

static void on_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                         int64_t offset);

static void outmsg_free(struct outmsg *o) {
    free(o->key);
    free(o->value);
    free(o);
}

static void send_out(void *arg) {
    struct outmsg *o = arg;
    struct job *j = o->job;
    struct w_worker *w = j->w;
    struct cq_err err = {0};
    if (w->torn_down || !w->producer) {
        cq_error(j->req.id, "could not produce to %s: the worker stopped", o->topic);
        w_job_set_state(j, JS_ABANDONED);
        j->outs--;
        outmsg_free(o);
        w_job_op_end(j);
        return;
    }
    o->attempts++;
    if (cq_producer_send(w->producer, o->topic, o->key, strlen(o->key), o->value, o->len, NULL,
                         on_delivered, o, &err) == CQ_OK)
        return;
    cq_warn(j->req.id, "produce to %s not accepted (%s); retrying in 1 s", o->topic, err.msg);
    if (!w_retry_later(j, 1000, send_out, o)) {
        w_job_set_state(j, JS_ABANDONED);
        j->outs--;
        outmsg_free(o);
        w_job_op_end(j);
    }
}

void w_ignore_reply(void *opaque, const redisReply *reply, const struct cq_err *err) {
    (void)opaque;
    (void)reply;
    (void)err;
}

static void after_all_delivered(struct job *j) {
    struct w_worker *w = j->w;
    /* Remember that the stored result reached Kafka, so a duplicate need not re-send it. */
    if (j->stored && j->run_key && w->redis && !j->resend_only) {
        cJSON *v = cJSON_Parse(j->stored);
        char *nv = NULL;
        if (v && cJSON_AddTrueToObject(v, "delivered")) nv = cJSON_PrintUnformatted(v);
        if (nv) {
            char ttl[16];
            snprintf(ttl, sizeof(ttl), "%d", w->cfg->redis.dedupe_ttl_s);
            const char *argv[] = {"EVAL", w_cas_lua, "1", j->run_key, j->stored, nv, ttl};
            cq_redis_commandargv(w->redis, w_ignore_reply, NULL, 7, argv, NULL);
        }
        cJSON_free(nv);
        cJSON_Delete(v);
    }
    job_complete(j);
}

static void on_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                         int64_t offset) {
    struct outmsg *o = opaque;
    struct job *j = o->job;
    struct w_worker *w = j->w;
    (void)partition;
    (void)offset;
    if (rc != CQ_OK) {
        if (!w->torn_down) {
            cq_warn(j->req.id, "delivery to %s failed (%s); sending again in 1 s", o->topic,
                    errstr);
            if (w_retry_later(j, 1000, send_out, o)) return;
        }
        cq_error(j->req.id, "giving up delivering to %s: %s", o->topic, errstr);
        w_job_set_state(j, JS_ABANDONED);
    }
    outmsg_free(o);
    j->outs--;
    if (j->outs == 0 && j->state == JS_FINAL_QUEUED) after_all_delivered(j);
    w_job_op_end(j);
}

/* Hands value (taken over) to the producer; the job stays alive until its report. */
void w_produce(struct job *j, const char *topic, const char *key, char *value) {
    struct outmsg *o = calloc(1, sizeof(*o));
    char *k = strdup(key ? key : "");
    if (!o || !k || !value) {
        free(o);
        free(k);
        free(value);
        cq_error(j->req.id, "out of memory producing to %s", topic);
        w_job_set_state(j, JS_ABANDONED);
        return;
    }
    o->job = j;
    o->topic = topic;
    o->key = k;
    o->value = value;
    o->len = strlen(value);
    j->outs++;
    w_job_op_begin(j);
    send_out(o);
}

/* Produces the final result (and, when audit_detail is set, the outcome audit record);
 * releases the conversation. */
void w_produce_final(struct job *j, char *result, bool audit) {
    struct w_worker *w = j->w;
    w_job_set_state(j, JS_FINAL_QUEUED);
    if (audit) {
        /* A tracked wait's ack records the trigger; the tracker audits its outcome. */
        const char *kind = j->step && strcmp(j->step, "ack") == 0 ? "trigger" : "outcome";
        char *a = w_audit_json(j, kind, w_decision_word(j), j->status, j->text);
        w_produce(j, w->cfg->kafka.topic_audit, j->req.id, a);
    }
    w_produce(j, w->cfg->kafka.topic_results, j->req.id, result);
    if (!j->resend_only && j->status) w_metric_result(j->status);
    w_job_release_conv(j);
}

static void (*const mode_start[])(struct job *) = {
    [CQ_MODE_DIRECT] = w_direct_start,
    [CQ_MODE_TRIGGER_AND_WAIT] = w_pipeline_start,
    [CQ_MODE_TRIGGER_AND_RETURN] = w_pipeline_start,
};

/* This worker owns the request: audit the decision, then answer or act. */
void w_execute(struct job *j) {
    struct w_worker *w = j->w;
    const char *dw = w_decision_word(j);
    char *a = w_audit_json(j, "decision", dw, NULL,
                           j->kind == JK_ACTION || j->kind == JK_BUILTIN ? NULL : j->text);
    w_produce(j, w->cfg->kafka.topic_audit, j->req.id, a);
    w_metric_decision(j->kind == JK_BUILTIN ? "builtin" : dw);
    cq_info(j->req.id, "%s %s by %s in %s: %s%s%s", dw, w_cmd_name(j),
            j->person ? j->person->name : j->req.user_id,
            j->channel ? j->channel->name : (j->req.channel_id ? j->req.channel_id : "?"),
            j->dec.rule ? "rule " : "", j->dec.rule ? j->dec.rule : "",
            j->kind == JK_ACTION || j->kind == JK_BUILTIN ? "" : j->text);
    if (j->kind == JK_BUILTIN && j->pl_builtin == PB_SUBS) {
        w_subs_builtin(j);
        return;
    }
    if (j->kind == JK_BUILTIN && j->pl_builtin == PB_EXPLAIN) {
        w_explain_builtin(j);
        return;
    }
    if (j->kind == JK_BUILTIN && j->pl_builtin == PB_LOCKS) {
        w_locks_builtin(j);
        return;
    }
    if (j->kind == JK_BUILTIN && j->pl_builtin) {
        w_pipeline_builtin(j);
        return;
    }
    if (j->kind == JK_BUILTIN && j->ap_click) {
        w_approval_click(j);
        return;
    }
    if (j->kind != JK_ACTION) {
        char *text = j->text;
        j->text = NULL;
        w_finish_with(j, j->status, text);
        return;
    }
    if (w_approval_gate(j)) return; /* parked for approval, or checked first */
    w_run_action(j);
}

void w_run_action(struct job *j) {
    if (w_guard_start(j)) return; /* lock and rate limit first (locks.c) */
    mode_start[j->cmd->mode](j);
}

/* After the decision: claim the request once (the text of a Webex message is read before
 * deciding, text_fetch.c; identity.c's verdict applied to the decision first). */
static void job_decided(struct job *j) {
    w_identity_after_decide(j);
    if (j->kind != JK_ACTION && !j->text) {
        w_job_abandon(j, "out of memory");
        return;
    }
    j->run_key = cq_strprintf("%srun:%s", j->cfg->redis.prefix ? j->cfg->redis.prefix : "",
                              j->req.dedupe_key);
    if (!j->run_key) {
        w_job_abandon(j, "out of memory");
        return;
    }
    w_claim(j);
}

static void job_start(struct job *j) {
    w_job_set_state(j, JS_RUNNING);
    if (w_identity_start(j)) return; /* resolving: identity.c calls w_job_continue */
    w_job_continue(j);
}

/* Who the user is is known: read the text where it is not in the envelope, then decide. */
void w_job_continue(struct job *j) {
    if (w_text_pending(j)) {
        w_text_fetch(j, job_decided);
        return;
    }
    w_decide(j);
    job_decided(j);
}

static void maybe_resume(struct w_worker *w) {
    /* Resume at half: a resumed partition needs a fetch round trip before messages
     * flow again, and half of max_inflight is still work to do meanwhile (resuming at
     * 90% stalled the worker every cycle: 2.2k/s instead of 3.5k/s in bench/worker). */
    if (w->paused && !w->stopping && w->consumer && w->n_jobs * 2 < (size_t)w->max_inflight) {
        w->paused = false;
        cq_consumer_pause(w->consumer, false);
    }
}

/* A message that is not a request envelope: to the DLQ with the reason, then done. */
static void dead_letter(struct job *j, const struct cq_message *m, const char *reason) {
    struct w_worker *w = j->w;
    char *s = w_dlq_json(m, reason); /* NULL: out of memory only */
    cq_warn(NULL, "dead-lettering %s/%d@%lld: %s", m->topic, (int)m->partition,
            (long long)m->offset, reason);
    cq_metric_inc("chatops_worker_dlq_total", "Messages sent to the dead-letter topic", NULL);
    w_job_set_state(j, JS_RUNNING);
    w_job_set_state(j, JS_FINAL_QUEUED);
    char key[64];
    snprintf(key, sizeof(key), "%s/%d/%lld", m->topic, (int)m->partition, (long long)m->offset);
    w_produce(j, w->cfg->kafka.topic_dlq, key, s);
    w_job_maybe_free(j);
}

void w_on_message(void *opaque, const struct cq_message *m) {
    struct w_worker *w = opaque;
    struct cq_err err = {0};
    if (w->stopping || w->torn_down)
        return; /* fetched before the pause took effect: left for the next owner */
    if (w->cfg->kafka.topic_pipeline_events &&
        strcmp(m->topic, w->cfg->kafka.topic_pipeline_events) == 0) {
        /* A GitLab Pipeline Hook: only a hint that a tracked pipeline changed. */
        if (w->pipelines) w_pipeline_on_hook(w->pipelines, m->payload, m->len);
        cq_consumer_done(w->consumer, m->topic, m->partition, m->offset);
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j || !(j->topic = strdup(m->topic))) {
        free(j);
        cq_error(NULL, "out of memory taking %s/%d@%lld: left for redelivery", m->topic,
                 (int)m->partition, (long long)m->offset);
        return;
    }
    j->w = w;
    j->cfg = cq_config_ref(w->cfg);
    j->partition = m->partition;
    j->offset = m->offset;
    j->t0 = cq_now_ms();
    j->all_next = w->jobs;
    if (w->jobs) w->jobs->all_prev = j;
    w->jobs = j;
    w->n_jobs++;
    w_metric_inflight(w);
    if (!w->paused && w->n_jobs >= (size_t)w->max_inflight) {
        w->paused = true;
        cq_consumer_pause(w->consumer, true);
    }
    if (cq_request_decode(m->payload, m->len, w->cfg->limits.max_envelope, &j->req, &err) !=
        CQ_OK) {
        cq_request_clear(&j->req);
        dead_letter(j, m, err.msg);
        return;
    }
    w_metric_queue_seconds(j->req.received_at);
    if (m->key && m->keylen)
        j->convkey = strndup(m->key, m->keylen);
    else
        j->convkey = cq_strprintf("%s:%s:%s", j->req.platform, j->req.tenant ? j->req.tenant : "",
                                  j->req.channel_id ? j->req.channel_id : "");
    struct conv **slot = j->convkey ? conv_slot(w, j->convkey) : NULL;
    struct conv *c = slot ? *slot : NULL;
    if (slot && !c) {
        c = calloc(1, sizeof(*c));
        if (c && !(c->key = strdup(j->convkey))) {
            free(c);
            c = NULL;
        }
        if (c) *slot = c;
    }
    if (!c) {
        w_job_abandon(j, "out of memory");
        return;
    }
    j->conv = c;
    if (c->tail)
        c->tail->qnext = j;
    else
        c->head = j;
    c->tail = j;
    if (c->head == j) job_start(j);
}

struct cq_tpl_vars w_job_tpl_vars(const struct job *j) {
    return (struct cq_tpl_vars){.cfg = j->cfg,
                                .args = &j->args,
                                .person = j->person,
                                .user_id = j->req.user_id,
                                .user_name = j->req.user_name,
                                .channel = j->channel,
                                .channel_id = j->req.channel_id,
                                .channel_name = j->req.channel_name,
                                .request_id = j->req.id,
                                .command = j->cmd->name,
                                .input = j->input};
}
