/* service: the worker's lifecycle: start (Redis, curl, Kafka producer and consumer,
 * the pipeline tracker, the admin HTTP server), readiness, the SIGTERM drain and the
 * teardown. The request path lives in the files named after its steps:
 * decide.c -> runonce.c (claim) -> direct.c / trigger.c (act) -> runonce.c (store) ->
 * job.c (produce; job lifecycle), with the records they produce encoded in records.c. */
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

static unsigned long hash_str(const char *s) {
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

void w_job_op_begin(struct job *j) {
    j->ops++;
}

static void job_maybe_free(struct job *j);

static void job_start(struct job *j);

static void maybe_resume(struct cq_worker *w);

static void send_out(void *arg);

static void retry_tick(uv_timer_t *t) {
    struct cq_worker *w = t->data;
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
        if (fn == send_out || !(w->torn_down || j->abandoned))
            fn(arg); /* send_out releases its message itself when torn down */
        else
            j->abandoned = true;
        w_job_op_end(j);
    }
    if (!w->retries && !uv_is_closing((uv_handle_t *)t)) uv_timer_stop(t);
}

/* Runs fn(arg) after ms; the job stays alive meanwhile. False on ENOMEM. */
bool w_retry_later(struct job *j, int ms, void (*fn)(void *), void *arg) {
    struct cq_worker *w = j->w;
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
        uv_timer_start(&w->retry_timer, retry_tick, RETRY_TICK_MS, RETRY_TICK_MS);
    return true;
}

static void job_free(struct job *j) {
    struct cq_worker *w = j->w;
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
    cq_argv_clear(&j->argv);
    cq_bound_args_clear(&j->args);
    free(j->text);
    free(j->run_key);
    free(j->stored);
    free(j->next_stored);
    free(j->target);
    free(j->pl_url);
    free(j->pl_status);
    cq_http_call_clear(&j->call);
    free(j);
    maybe_resume(w);
}

static void job_maybe_free(struct job *j) {
    if (j->ops == 0 && (j->complete || j->abandoned) && !j->conv) job_free(j);
}

void w_job_op_end(struct job *j) {
    j->ops--;
    job_maybe_free(j);
}

/* The offset may be committed: every message this request produced was acknowledged. */
static void job_complete(struct job *j) {
    struct cq_worker *w = j->w;
    j->complete = true;
    if (w->consumer) cq_consumer_done(w->consumer, j->topic, j->partition, j->offset);
    if (j->status && !j->resend_only)
        cq_histogram_observe(cq_histogram_get("chatops_worker_request_seconds",
                                              "From consuming a request to its acknowledged "
                                              "final result",
                                              NULL, NULL, 0),
                             (double)(cq_now_ms() - j->t0) / 1000.0);
}

static struct conv **conv_slot(struct cq_worker *w, const char *key) {
    struct conv **pp = &w->convs[hash_str(key) % CONV_BUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void conv_drop(struct cq_worker *w, struct conv *c) {
    struct conv **pp = conv_slot(w, c->key);
    if (*pp == c) *pp = c->next;
    free(c->key);
    free(c);
}

/* Leaves every job still waiting in c for redelivery after a restart, in order. */
static void conv_abandon_queue(struct cq_worker *w, struct conv *c) {
    while (c->head) {
        struct job *q = c->head;
        c->head = q->qnext;
        q->qnext = NULL;
        q->conv = NULL;
        q->abandoned = true;
        job_maybe_free(q);
    }
    conv_drop(w, c);
}

/* Lets the next job of this conversation start: the current one no longer needs the
 * conversation's order (its result is on its way, or it waits as a duplicate). */
void w_job_release_conv(struct job *j) {
    struct cq_worker *w = j->w;
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
    } else if (!c->head->started) {
        if (w->stopping)
            conv_abandon_queue(w, c);
        else
            job_start(c->head);
    }
}

/* Leaves the request for redelivery (its offset is never marked done). The job is
 * freed here when nothing is outstanding: callers must not touch it afterwards. */
void w_job_abandon(struct job *j, const char *why) {
    if (!j->abandoned) cq_warn(j->req.id, "request left for redelivery: %s", why);
    j->abandoned = true;
    w_job_release_conv(j);
    job_maybe_free(j);
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
    struct cq_worker *w = j->w;
    struct cq_err err = {0};
    if (w->torn_down || !w->producer) {
        cq_error(j->req.id, "could not produce to %s: the worker stopped", o->topic);
        j->abandoned = true;
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
        j->abandoned = true;
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
    struct cq_worker *w = j->w;
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
    struct cq_worker *w = j->w;
    (void)partition;
    (void)offset;
    if (rc != CQ_OK) {
        if (!w->torn_down) {
            cq_warn(j->req.id, "delivery to %s failed (%s); sending again in 1 s", o->topic,
                    errstr);
            if (w_retry_later(j, 1000, send_out, o)) return;
        }
        cq_error(j->req.id, "giving up delivering to %s: %s", o->topic, errstr);
        j->abandoned = true;
    }
    outmsg_free(o);
    j->outs--;
    if (j->outs == 0 && j->final_queued && !j->abandoned && !j->complete) after_all_delivered(j);
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
        j->abandoned = true;
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
    struct cq_worker *w = j->w;
    j->final_queued = true;
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
    struct cq_worker *w = j->w;
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
    if (j->kind == JK_BUILTIN && j->pl_builtin) {
        w_pipeline_builtin(j);
        return;
    }
    if (j->kind != JK_ACTION) {
        char *text = j->text;
        j->text = NULL;
        w_finish_with(j, j->status, text);
        return;
    }
    mode_start[j->cmd->mode](j);
}

static void job_start(struct job *j) {
    j->started = true;
    w_decide(j);
    if (j->kind != JK_ACTION && !j->text) {
        w_job_abandon(j, "out of memory");
        return;
    }
    j->run_key = cq_strprintf("%srun:%s", j->w->cfg->redis.prefix ? j->w->cfg->redis.prefix : "",
                              j->req.dedupe_key);
    if (!j->run_key) {
        w_job_abandon(j, "out of memory");
        return;
    }
    w_claim(j);
}

static void maybe_resume(struct cq_worker *w) {
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
    struct cq_worker *w = j->w;
    char now[32];
    cq_now_rfc3339(now);
    cJSON *d = cJSON_CreateObject();
    char *b64 = cq_base64_encode(m->payload ? m->payload : "", m->len);
    char *s = NULL;
    if (d && b64) {
        cJSON_AddNumberToObject(d, "v", 1);
        cJSON_AddStringToObject(d, "service", "worker");
        cJSON_AddStringToObject(d, "reason", reason);
        cJSON_AddStringToObject(d, "topic", m->topic);
        cJSON_AddNumberToObject(d, "partition", m->partition);
        cJSON_AddNumberToObject(d, "offset", (double)m->offset);
        cJSON_AddStringToObject(d, "payload_b64", b64);
        cJSON_AddStringToObject(d, "time", now);
        s = cJSON_PrintUnformatted(d);
    }
    cJSON_Delete(d);
    free(b64);
    cq_warn(NULL, "dead-lettering %s/%d@%lld: %s", m->topic, (int)m->partition,
            (long long)m->offset, reason);
    cq_metric_inc("chatops_worker_dlq_total", "Messages sent to the dead-letter topic", NULL);
    j->final_queued = true;
    char key[64];
    snprintf(key, sizeof(key), "%s/%d/%lld", m->topic, (int)m->partition, (long long)m->offset);
    w_produce(j, w->cfg->kafka.topic_dlq, key, s);
    job_maybe_free(j);
}

static void on_message(void *opaque, const struct cq_message *m) {
    struct cq_worker *w = opaque;
    struct cq_err err = {0};
    if (w->stopping || w->torn_down)
        return; /* fetched before the pause took effect: left for the next owner */
    if (w->cfg->kafka.topic_pipeline_events &&
        strcmp(m->topic, w->cfg->kafka.topic_pipeline_events) == 0) {
        /* A GitLab Pipeline Hook: only a hint that a tracked pipeline changed. */
        if (w->pipelines) cq_pipeline_on_hook(w->pipelines, m->payload, m->len);
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

bool cq_worker_ready(const struct cq_worker *w) {
    return w && !w->stopping && w->consumer && w->producer && cq_producer_ready(w->producer) &&
           w->redis && cq_redis_connected(w->redis);
}

/* Loop thread: what /readyz answers, refreshed every 500 ms. */
static void ready_tick(uv_timer_t *t) {
    struct cq_worker *w = t->data;
    cq_admin_http_set_ready(w->admin, cq_worker_ready(w));
}

static void handle_closed(uv_handle_t *h) {
    struct cq_worker *w = h->data;
    if (--w->open_handles == 0) {
        free(w->epoch_key);
        free(w->lease_key);
        free(w->lease_prefix);
        free(w);
    }
}

static void teardown(struct cq_worker *w) {
    struct cq_err err = {0};
    if (w->torn_down) return;
    w->torn_down = true;
    cq_admin_http_free(w->admin);
    w->admin = NULL;
    cq_info(NULL, "worker stopping: %zu request(s) still in flight are left for redelivery",
            w->n_jobs);
    /* Stops claiming; its checks in flight are dropped and their leases lapse. */
    cq_pipeline_tracker_free(w->pipelines);
    w->pipelines = NULL;
    /* Callbacks of what is still pending arrive now with CQ_ESHUTDOWN and abandon. */
    cq_httpc_free(w->httpc);
    w->httpc = NULL;
    if (w->redis) {
        const char *argv[] = {"DEL", w->lease_key};
        cq_redis_commandargv(w->redis, w_ignore_reply, NULL, 2, argv, NULL);
    }
    cq_redis_free(w->redis);
    w->redis = NULL;
    retry_tick(&w->retry_timer); /* runs every parked retry once: they see torn_down */
    if (w->producer && cq_producer_flush(w->producer, 5000) != CQ_OK)
        cq_warn(NULL, "producer flush timed out");
    cq_producer_free(w->producer); /* remaining reports come back as CQ_ESHUTDOWN */
    w->producer = NULL;
    if (w->consumer && cq_consumer_commit_now(w->consumer, &err) != CQ_OK)
        cq_warn(NULL, "final offset commit failed: %s", err.msg);
    cq_consumer_free(w->consumer);
    w->consumer = NULL;
    /* Jobs that are left only hold memory now. */
    while (w->jobs) {
        struct job *j = w->jobs;
        j->ops = 0;
        j->conv = NULL;
        j->abandoned = true;
        job_free(j);
    }
    for (size_t i = 0; i < CONV_BUCKETS; i++)
        while (w->convs[i]) {
            struct conv *c = w->convs[i];
            w->convs[i] = c->next;
            free(c->key);
            free(c);
        }
    uv_close((uv_handle_t *)&w->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&w->lease_timer, handle_closed);
    uv_close((uv_handle_t *)&w->drain_timer, handle_closed);
    uv_close((uv_handle_t *)&w->ready_timer, handle_closed);
}

static void drain_tick(uv_timer_t *t) {
    struct cq_worker *w = t->data;
    size_t running = 0;
    for (struct job *j = w->jobs; j; j = j->all_next)
        running++;
    if (running == 0 || cq_now_ms() >= w->drain_deadline) teardown(w);
}

static void on_shutdown(void *arg) {
    struct cq_worker *w = arg;
    if (w->stopping) return;
    w->stopping = true;
    cq_admin_http_set_ready(w->admin, false);
    cq_info(NULL, "worker draining: %zu request(s) in flight", w->n_jobs);
    if (w->consumer) cq_consumer_pause(w->consumer, true);
    /* Requests not yet started stay on Kafka for the next owner, in order. */
    for (size_t i = 0; i < CONV_BUCKETS; i++) {
        for (struct conv *c = w->convs[i]; c; c = c->next) {
            struct job **pp = &c->head;
            while (*pp) {
                struct job *q = *pp;
                if (q->started) {
                    pp = &q->qnext;
                    continue;
                }
                *pp = q->qnext;
                q->qnext = NULL;
                q->conv = NULL;
                q->abandoned = true;
                job_maybe_free(q);
            }
            c->tail = NULL;
            for (struct job *q = c->head; q; q = q->qnext)
                c->tail = q;
        }
    }
    w->drain_deadline = cq_now_ms() + (uint64_t)w->drain_ms;
    uv_timer_start(&w->drain_timer, drain_tick, 0, 50);
}

struct cq_worker *cq_worker_start(const struct cq_config *cfg, struct cq_loop *loop,
                                  const struct cq_worker_opts *opts, struct cq_err *err) {
    struct cq_worker *w = calloc(1, sizeof(*w));
    const char *topics[] = {cfg->kafka.topic_requests, cfg->kafka.topic_pipeline_events, NULL};
    const char *prefix = cfg->redis.prefix ? cfg->redis.prefix : "";
    if (!w) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->loop = loop;
    w->max_inflight = cfg->worker.max_inflight > 0 ? cfg->worker.max_inflight : 10000;
    w->drain_ms = opts && opts->drain_timeout_ms > 0 ? opts->drain_timeout_ms : 15000;
    /* The owner of claims and leases is this process instance: a restarted worker with
     * the same --id must not mistake its predecessor's claims for its own. */
    char instance[CQ_UUID_LEN + 1];
    if (cq_uuid4(instance) != CQ_OK) {
        cq_err_set(err, CQ_ECRYPTO, "cannot create the worker id");
        free(w);
        return NULL;
    }
    if (opts && opts->owner_id)
        snprintf(w->owner, sizeof(w->owner), "%.150s.%.8s", opts->owner_id, instance);
    else
        snprintf(w->owner, sizeof(w->owner), "%s", instance);
    w->lease_prefix = cq_strprintf("%sworker:", prefix);
    w->lease_key = cq_strprintf("%sworker:%s", prefix, w->owner);
    w->epoch_key = cq_strprintf("%sredis:epoch", prefix);
    if (!w->lease_prefix || !w->lease_key || !w->epoch_key) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto fail_early;
    }
    uv_loop_t *uv = cq_loop_uv(loop);
    uv_timer_init(uv, &w->retry_timer);
    uv_timer_init(uv, &w->lease_timer);
    uv_timer_init(uv, &w->drain_timer);
    uv_timer_init(uv, &w->ready_timer);
    w->retry_timer.data = w->lease_timer.data = w->drain_timer.data = w->ready_timer.data = w;
    w->open_handles = 4;

    w->redis = cq_redis_new(loop, cfg->redis.host, cfg->redis.port, cfg->redis.password.value,
                            cfg->redis.connect_timeout_ms, cfg->redis.command_timeout_ms, err);
    if (!w->redis) goto fail;
    cq_redis_check_persistence(w->redis);
    cq_redis_on_connect(w->redis, w_on_redis_connect, w);
    /* Direct calls in flight at once; more wait in curl's queue (a fd each). */
    w->httpc = cq_httpc_new(loop, w->max_inflight < 1024 ? w->max_inflight : 1024, err);
    if (!w->httpc) goto fail;
    w->producer =
        cq_producer_new(cfg->kafka.brokers, cfg->kafka.produce_timeout_ms, loop, NULL, err);
    if (!w->producer) goto fail;
    struct cq_pipeline_deps pd = {.loop = loop,
                                  .cfg = cfg,
                                  .redis = w->redis,
                                  .httpc = w->httpc,
                                  .producer = w->producer,
                                  .owner_id = w->owner};
    /* Tracking needs GitLab: without pipeline commands or gitlab.base_url there is none
     * (cancel / pipelines then answer so, and pipeline events are only committed). */
    bool want_pipelines = cfg->gitlab.base_url && cfg->gitlab.base_url[0];
    for (size_t i = 0; i < cfg->n_commands; i++)
        if (cfg->commands[i].mode != CQ_MODE_DIRECT) want_pipelines = true;
    if (want_pipelines && !(w->pipelines = cq_pipeline_tracker_new(&pd, err))) goto fail;
    char mpi[16];
    snprintf(mpi, sizeof(mpi), "%d", cfg->kafka.max_poll_interval_ms);
    const char *kconf[] = {"max.poll.interval.ms", mpi, NULL};
    w->consumer = cq_consumer_new(cfg->kafka.brokers, cfg->kafka.worker_group, topics, loop,
                                  on_message, w, kconf, err);
    if (!w->consumer) goto fail;
    if (cq_loop_on_shutdown(loop, on_shutdown, w) != CQ_OK) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto fail;
    }
    int port = opts && opts->http_port != 0 ? opts->http_port : cfg->worker.http_port;
    if (opts && opts->http_any_port) port = 0;
    if (port >= 0) {
        w->admin = cq_admin_http_new(cfg->ingress.listen, port, err);
        if (!w->admin) goto fail;
        cq_info(NULL, "admin http listening on port %d", cq_admin_http_port(w->admin));
    }
    uv_timer_start(&w->ready_timer, ready_tick, 0, 500);
    int every = cfg->worker.lease_ms / 3 > 0 ? cfg->worker.lease_ms / 3 : 1000;
    uv_timer_start(&w->lease_timer, w_renew_lease, (uint64_t)every, (uint64_t)every);
    w->drain_deadline = UINT64_MAX;
    cq_info(NULL, "worker %s consuming %s as group %s", w->owner, cfg->kafka.topic_requests,
            cfg->kafka.worker_group);
    return w;
fail:
    teardown(w); /* frees w once the timers closed */
    return NULL;
fail_early:
    free(w->lease_prefix);
    free(w->lease_key);
    free(w->epoch_key);
    free(w);
    return NULL;
}
