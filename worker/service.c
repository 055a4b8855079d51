/* service: the worker's lifecycle: start (Redis, curl, Kafka producer and consumer,
 * the pipeline tracker, the admin HTTP server), readiness, the SIGTERM drain and the
 * teardown. The request path lives in the files named after its steps:
 * decide.c -> runonce.c (claim) -> direct.c / trigger.c (act) -> runonce.c (store) ->
 * job.c (produce; job lifecycle), with the records they produce encoded in records.c. */
#include "service.h"
#include "locks.h"
#include "service_int.h"
#include "strutil.h"

#include "admin_http.h"
#include "args.h"
#include "builtins.h"
#include "config_reload.h"
#include "crypto.h"
#include "envelope.h"
#include "events.h"
#include "httpc.h"
#include "identity.h"
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

bool w_service_ready(const struct w_worker *w) {
    return w && !w->stopping && w->consumer && w->producer && cq_producer_ready(w->producer) &&
           w->redis && cq_redis_connected(w->redis);
}

/* Loop thread: what /readyz answers, refreshed every 5 ms until the worker is first ready
 * (the producer's broker probe and the Redis connection finish within milliseconds of the
 * start, and a 500 ms tick would hold a ready worker back for half a second), every 500 ms
 * after that. */
#define READY_FIRST_MS 5
#define READY_EVERY_MS 500
static void ready_tick(uv_timer_t *t) {
    struct w_worker *w = t->data;
    struct cq_admin_http *admin = w->admin; /* read first: w_service_ready tests w for NULL */
    bool ready = w_service_ready(w);
    cq_admin_http_set_ready(admin, ready);
    if (ready && uv_timer_get_repeat(t) != READY_EVERY_MS) uv_timer_set_repeat(t, READY_EVERY_MS);
}

static void release(struct w_worker *w) {
    free(w->epoch_key);
    free(w->lease_key);
    free(w->lease_prefix);
    w_identity_state_free(w->ident);
    cq_config_unref(w->cfg);
    free(w);
}

static void handle_closed(uv_handle_t *h) {
    struct w_worker *w = h->data;
    if (--w->open_handles == 0 && w->orphaned) release(w);
}

/* A reload (SIGHUP): the next message decides with the new config; jobs in flight keep a
 * reference to the one they started with. */
static void apply_config(void *arg, struct cq_config *next) {
    struct w_worker *w = arg;
    const struct cq_config *old = w->cfg;
    w->cfg = cq_config_ref(next);
    if (w->pipelines) w_pipeline_tracker_set_config(w->pipelines, w->cfg);
    w_events_set_config(w->events, w->cfg);
    cq_config_unref(old);
}

static void teardown(struct w_worker *w) {
    struct cq_err err = {0};
    if (w->torn_down) return;
    w->torn_down = true;
    cq_admin_http_free(w->admin);
    w->admin = NULL;
    cq_info(NULL, "worker stopping: %zu request(s) still in flight are left for redelivery",
            w->n_jobs);
    /* Stops claiming; its checks in flight are dropped and their leases lapse. */
    w_pipeline_tracker_free(w->pipelines);
    w->pipelines = NULL;
    /* Before Redis and the producer: their last callbacks free the router. */
    w_events_free(w->events);
    w->events = NULL;
    /* Callbacks of what is still pending arrive now with CQ_ESHUTDOWN and abandon. */
    cq_httpc_free(w->httpc);
    w->httpc = NULL;
    if (w->redis) {
        const char *argv[] = {"DEL", w->lease_key};
        cq_redis_commandargv(w->redis, w_ignore_reply, NULL, 2, argv, NULL);
    }
    cq_redis_free(w->redis);
    w->redis = NULL;
    w_retry_tick(&w->retry_timer); /* runs every parked retry once: they see torn_down */
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
        w_job_set_state(j, JS_ABANDONED);
        w_job_free(j);
    }
    for (size_t i = 0; i < CONV_BUCKETS; i++)
        while (w->convs[i]) {
            struct conv *c = w->convs[i];
            w->convs[i] = c->next;
            free(c->key);
            free(c);
        }
    w_locks_free_all(w); /* not renewed any more: they lapse after their lease */
    uv_close((uv_handle_t *)&w->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&w->lease_timer, handle_closed);
    uv_close((uv_handle_t *)&w->drain_timer, handle_closed);
    uv_close((uv_handle_t *)&w->ready_timer, handle_closed);
}

static void drain_tick(uv_timer_t *t) {
    struct w_worker *w = t->data;
    size_t running = 0;
    for (struct job *j = w->jobs; j; j = j->all_next)
        running++;
    running += w_events_inflight(w->events);
    if (running == 0 || cq_now_ms() >= w->drain_deadline) teardown(w);
}

static void on_shutdown(void *arg) {
    struct w_worker *w = arg;
    if (w->stopping) return;
    w->stopping = true;
    cq_admin_http_set_ready(w->admin, false);
    cq_info(NULL, "worker draining: %zu request(s) in flight", w->n_jobs);
    if (w->consumer) cq_consumer_pause(w->consumer, true);
    w_events_pause(w->events);
    /* Requests not yet started stay on Kafka for the next owner, in order. */
    for (size_t i = 0; i < CONV_BUCKETS; i++) {
        for (struct conv *c = w->convs[i]; c; c = c->next) {
            struct job **pp = &c->head;
            while (*pp) {
                struct job *q = *pp;
                if (q->state != JS_QUEUED) {
                    pp = &q->qnext;
                    continue;
                }
                *pp = q->qnext;
                q->qnext = NULL;
                q->conv = NULL;
                w_job_set_state(q, JS_ABANDONED);
                w_job_maybe_free(q);
            }
            c->tail = NULL;
            for (struct job *q = c->head; q; q = q->qnext)
                c->tail = q;
        }
    }
    w->drain_deadline = cq_now_ms() + (uint64_t)w->drain_ms;
    uv_timer_start(&w->drain_timer, drain_tick, 0, 50);
}

struct w_worker *w_service_new(const struct cq_config *cfg, struct cq_loop *loop,
                               const struct w_service_opts *opts, struct cq_err *err) {
    struct w_worker *w = calloc(1, sizeof(*w));
    const char *topics[] = {cfg->kafka.topic_requests, cfg->kafka.topic_pipeline_events, NULL};
    const char *prefix = cfg->redis.prefix ? cfg->redis.prefix : "";
    if (!w) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        return NULL;
    }
    w->cfg = cq_config_ref(cfg);
    w->loop = loop;
    w->max_inflight = cfg->worker.max_inflight > 0 ? cfg->worker.max_inflight : 10000;
    w->drain_ms = opts && opts->drain_timeout_ms > 0 ? opts->drain_timeout_ms : 15000;
    /* The owner of claims and leases is this process instance: a restarted worker with
     * the same --id must not mistake its predecessor's claims for its own. */
    char instance[CQ_UUID_LEN + 1];
    if (cq_uuid4(instance) != CQ_OK) {
        cq_err_set(err, CQ_ECRYPTO, "cannot create the worker id");
        cq_config_unref(w->cfg);
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
        release(w);
        return NULL;
    }
    uv_loop_t *uv = cq_loop_uv(loop);
    uv_timer_init(uv, &w->retry_timer);
    uv_timer_init(uv, &w->lease_timer);
    uv_timer_init(uv, &w->drain_timer);
    uv_timer_init(uv, &w->ready_timer);
    w->retry_timer.data = w->lease_timer.data = w->drain_timer.data = w->ready_timer.data = w;
    w->open_handles = 4;

    w->redis = cq_redis_new_cfg(loop, cfg, err);
    if (!w->redis) goto out;
    cq_redis_check_persistence(w->redis);
    cq_redis_on_connect(w->redis, w_on_redis_connect, w);
    /* Direct calls in flight at once; more wait in curl's queue (a fd each). */
    w->httpc = cq_httpc_new(loop, w->max_inflight < 1024 ? w->max_inflight : 1024, err);
    if (!w->httpc) goto out;
    w->producer = cq_producer_new(cfg->kafka.brokers, cfg->kafka.produce_timeout_ms, loop,
                                  cfg->kafka.client_conf, err);
    if (!w->producer) goto out;
    /* The reports only complete jobs (offsets, the "delivered" mark): the reply is on its way
     * through Kafka already. They need not wake the loop each. */
    cq_producer_lazy_reports(w->producer, cfg->kafka.report_delay_ms);
    struct w_pipeline_deps pd = {.loop = loop,
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
    if (want_pipelines && !(w->pipelines = w_pipeline_tracker_new(&pd, err))) goto out;
    char mpi[16];
    snprintf(mpi, sizeof(mpi), "%d", cfg->kafka.max_poll_interval_ms);
    const char *own[] = {"max.poll.interval.ms", mpi, NULL};
    const char **kconf = cq_kafka_conf_join(cfg->kafka.client_conf, own);
    if (!kconf) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    w->consumer = cq_consumer_new(cfg->kafka.brokers, cfg->kafka.worker_group, topics, loop,
                                  w_on_message, w, kconf, err);
    free(kconf);
    if (!w->consumer) goto out;
    if (cfg->events.enabled) {
        struct w_events_deps ed = {
            .loop = loop, .cfg = cfg, .redis = w->redis, .producer = w->producer};
        if (!(w->events = w_events_new(&ed, err))) goto out;
    }
    if (cq_loop_on_shutdown(loop, on_shutdown, w) != CQ_OK) {
        cq_err_set(err, CQ_ENOMEM, "out of memory");
        goto out;
    }
    int port = opts && opts->http_port != 0 ? opts->http_port : cfg->worker.http_port;
    if (opts && opts->http_any_port) port = 0;
    if (port >= 0) {
        w->admin = cq_admin_http_new(cfg->ingress.listen, port, err);
        if (!w->admin) goto out;
        cq_info(NULL, "admin http listening on port %d", cq_admin_http_port(w->admin));
    }
    if (opts && opts->config_path &&
        !cq_reload_start(loop, "worker", opts->config_path, cfg, apply_config, w, err))
        goto out;
    uv_timer_start(&w->ready_timer, ready_tick, 0, READY_FIRST_MS);
    int every = cfg->worker.lease_ms / 3 > 0 ? cfg->worker.lease_ms / 3 : 1000;
    uv_timer_start(&w->lease_timer, w_renew_lease, (uint64_t)every, (uint64_t)every);
    w->drain_deadline = UINT64_MAX;
    cq_info(NULL, "worker %s consuming %s as group %s", w->owner, cfg->kafka.topic_requests,
            cfg->kafka.worker_group);
    return w;
out:
    w->orphaned = true;
    teardown(w); /* frees w once the timers closed (the caller runs the loop) */
    return NULL;
}

void w_service_free(struct w_worker *w) {
    if (!w) return;
    if (!w->torn_down) teardown(w); /* the loop ended without a drain */
    if (w->open_handles > 0) uv_run(cq_loop_uv(w->loop), UV_RUN_NOWAIT); /* the timers' closes */
    release(w);
}
