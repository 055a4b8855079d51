/* kafka_consumer: the librdkafka consumer on the service's loop (see kafka.h): in-flight
 * offsets tracked per partition and committed as watermarks (only what is done), the
 * rebalance callback, batch consumption with pause/resume, and the lag thread that
 * refreshes the lag gauges (its own thread: the watermark/committed queries block). */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_int.h"
#include "log.h"
#include "metrics.h"

#define COMMIT_INTERVAL_MS 200
#define CONSUME_BATCH 256
#define LAG_INTERVAL_MS 5000 /* consumer lag gauges are refreshed this often */
#define LAG_QUERY_MS 2000    /* bound of each blocking watermark/committed query */

/* In-flight offsets of one partition in delivery order; done ones are popped from the
 * front, and the last popped offset + 1 is what may be committed. */
struct ptrack {
    char *topic;
    int32_t partition;
    int64_t *offs;
    bool *done;
    size_t head, n, cap;
    int64_t commit_next; /* -1: nothing to commit */
    int64_t committed;   /* -1: nothing committed by us */
    bool stuck;          /* an offset could not be tracked: never commit past it */
};

struct cq_consumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq;
    struct cq_loop *loop;
    cq_message_cb cb;
    void *opaque;
    int fds[2];
    uv_poll_t poll;
    uv_idle_t idle;
    uv_timer_t commit_timer;
    int pending;
    bool closing;
    bool paused;
    bool stuck; /* a partition could not even be tracked: stop committing altogether */
    uint64_t last_commit_ms;
    struct ptrack **parts;
    size_t nparts, capparts;
    struct cq_kafka_err_limiter lim;
    /* consumer lag: a thread of its own, because the queries block and must keep working
     * while the loop has paused fetching (a paused partition's cached watermark is stale) */
    char *group;
    char **topics;
    size_t ntopics;
    pthread_t lag_thread;
    bool lag_started, lag_stop;
    pthread_mutex_t lag_mu;
    pthread_cond_t lag_cv;
};

static struct ptrack *track_find(struct cq_consumer *c, const char *topic, int32_t partition) {
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->partition == partition && strcmp(c->parts[i]->topic, topic) == 0)
            return c->parts[i];
    return NULL;
}

static void track_free(struct ptrack *t) {
    if (!t) return;
    free(t->topic);
    free(t->offs);
    free(t->done);
    free(t);
}

static struct ptrack *track_get(struct cq_consumer *c, const char *topic, int32_t partition) {
    struct ptrack *t = track_find(c, topic, partition);
    if (t) return t;
    if (c->nparts == c->capparts) {
        size_t cap = c->capparts ? c->capparts * 2 : 16;
        struct ptrack **v = realloc(c->parts, cap * sizeof(*v));
        if (!v) return NULL;
        c->parts = v;
        c->capparts = cap;
    }
    if (!(t = calloc(1, sizeof(*t))) || !(t->topic = strdup(topic))) {
        free(t);
        return NULL;
    }
    t->partition = partition;
    t->commit_next = t->committed = -1;
    c->parts[c->nparts++] = t;
    return t;
}

static void track_drop(struct cq_consumer *c, const char *topic, int32_t partition) {
    for (size_t i = 0; i < c->nparts; i++) {
        if (c->parts[i]->partition == partition && strcmp(c->parts[i]->topic, topic) == 0) {
            track_free(c->parts[i]);
            c->parts[i] = c->parts[--c->nparts];
            return;
        }
    }
}

static bool track_push(struct ptrack *t, int64_t off) {
    if (t->head == t->n) t->head = t->n = 0;
    if (t->n == t->cap) {
        if (t->head > 0) {
            memmove(t->offs, t->offs + t->head, (t->n - t->head) * sizeof(*t->offs));
            memmove(t->done, t->done + t->head, (t->n - t->head) * sizeof(*t->done));
            t->n -= t->head;
            t->head = 0;
        } else {
            size_t cap = t->cap ? t->cap * 2 : 64;
            int64_t *o = realloc(t->offs, cap * sizeof(*o));
            if (!o) return false;
            t->offs = o;
            bool *d = realloc(t->done, cap * sizeof(*d));
            if (!d) return false;
            t->done = d;
            t->cap = cap;
        }
    }
    /* Offsets arrive in order per partition; a rewind (seek, redelivery) restarts. */
    if (t->n > t->head && off <= t->offs[t->n - 1]) t->head = t->n = 0;
    t->offs[t->n] = off;
    t->done[t->n] = false;
    t->n++;
    return true;
}

static void track_done(struct ptrack *t, int64_t off) {
    size_t lo = t->head, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->offs[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == t->n || t->offs[lo] != off) return; /* revoked, rewound or already popped */
    t->done[lo] = true;
    while (!t->stuck && t->head < t->n && t->done[t->head])
        t->commit_next = t->offs[t->head++] + 1;
}

/* Commits every watermark that moved. Async from the timer; sync on revoke and close. */
static enum cq_rc commit_watermarks(struct cq_consumer *c, bool async, struct cq_err *err) {
    rd_kafka_topic_partition_list_t *list = NULL;
    enum cq_rc rc = CQ_OK;
    c->last_commit_ms = cq_now_ms();
    if (c->stuck) goto out;
    for (size_t i = 0; i < c->nparts; i++) {
        struct ptrack *t = c->parts[i];
        if (t->commit_next < 0 || t->commit_next == t->committed) continue;
        if (!list && !(list = rd_kafka_topic_partition_list_new((int)c->nparts))) {
            rc = cq_err_set(err, CQ_ENOMEM, "kafka commit: out of memory");
            goto out;
        }
        rd_kafka_topic_partition_list_add(list, t->topic, t->partition)->offset = t->commit_next;
    }
    if (!list) goto out;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, list, async ? 1 : 0);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = cq_err_set(err, cq_kafka_map_err(e), "kafka commit: %s", rd_kafka_err2str(e));
        cq_warn(NULL, "kafka consumer: commit failed: %s", rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        struct ptrack *t = track_find(c, list->elems[i].topic, list->elems[i].partition);
        if (t) t->committed = list->elems[i].offset;
    }
out:
    if (list) rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

static void on_commit_result(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)rk;
    struct cq_consumer *c = opaque;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets) return;
    cq_warn(NULL, "kafka consumer: offset commit failed: %s (will retry)", rd_kafka_err2str(e));
    for (int i = 0; i < offsets->cnt; i++) {
        struct ptrack *t = track_find(c, offsets->elems[i].topic, offsets->elems[i].partition);
        if (t && t->committed == offsets->elems[i].offset) t->committed = -1;
    }
}

/* chatops_kafka_rebalances_total{group,event}: assign / revoke / lost / error. A member
 * that keeps its partitions sees one assign at start and nothing more. */
static void metric_rebalance(const struct cq_consumer *c, const char *event) {
    char labels[300], esc_g[200];
    cq_metrics_escape(c->group ? c->group : "", esc_g, sizeof(esc_g));
    snprintf(labels, sizeof(labels), "group=\"%s\",event=\"%s\"", esc_g, event);
    cq_metric_inc("chatops_kafka_rebalances_total",
                  "Consumer group rebalance events seen by this process", labels);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct cq_consumer *c = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    metric_rebalance(c, e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS   ? "assign"
                        : e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "error"
                        : rd_kafka_assignment_lost(rk)              ? "lost"
                                                                    : "revoke");
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cq_info(NULL, "kafka consumer: assigned %d partition(s)", parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            /* Fresh tracking: the group restarts from the committed offsets. */
            track_drop(c, parts->elems[i].topic, parts->elems[i].partition);
            if (!track_get(c, parts->elems[i].topic, parts->elems[i].partition)) c->stuck = true;
        }
        if (coop) {
            rd_kafka_error_t *ke = rd_kafka_incremental_assign(rk, parts);
            if (ke) {
                cq_error(NULL, "kafka consumer: assign: %s", rd_kafka_error_string(ke));
                rd_kafka_error_destroy(ke);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (c->paused) rd_kafka_pause_partitions(rk, parts);
        return;
    }
    if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        cq_info(NULL, "kafka consumer: %d partition(s) revoked", parts->cnt);
    else
        cq_error(NULL, "kafka consumer: rebalance error: %s", rd_kafka_err2str(e));
    /* Keep what was finished: commit before the partitions move to another member.
     * Asynchronously: a synchronous commit would block the loop for a broker round trip
     * (or a dead coordinator's timeout). librdkafka's group handler waits for the
     * outstanding commits of the revoked partitions before it finishes the unassign and
     * rejoins, so the commit still lands before another member fetches. */
    if (!rd_kafka_assignment_lost(rk)) commit_watermarks(c, true, NULL);
    for (int i = 0; i < parts->cnt; i++)
        track_drop(c, parts->elems[i].topic, parts->elems[i].partition);
    if (coop) {
        rd_kafka_error_t *ke = rd_kafka_incremental_unassign(rk, parts);
        if (ke) rd_kafka_error_destroy(ke);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void on_consumer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    struct cq_consumer *c = opaque;
    cq_kafka_log_client_error(rk, &c->lim, code, reason);
}

static void deliver(struct cq_consumer *c, rd_kafka_message_t *rkm) {
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            cq_kafka_log_client_error(c->rk, &c->lim, rkm->err, rd_kafka_message_errstr(rkm));
        return;
    }
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct ptrack *t = track_get(c, topic, rkm->partition);
    if (!t) {
        c->stuck = true;
        cq_error(NULL, "kafka consumer: out of memory tracking %s/%d: commits stop", topic,
                 (int)rkm->partition);
    } else if (!track_push(t, rkm->offset)) {
        t->stuck = true;
        cq_error(NULL, "kafka consumer: out of memory tracking %s/%d: commits stop", topic,
                 (int)rkm->partition);
    }
    struct cq_message m = {
        .topic = topic,
        .partition = rkm->partition,
        .offset = rkm->offset,
        .key = rkm->key,
        .keylen = rkm->key_len,
        .payload = rkm->payload,
        .len = rkm->len,
        .timestamp_ms = rd_kafka_message_timestamp(rkm, NULL),
        .rkm = rkm,
    };
    c->cb(c->opaque, &m);
}

static int consume_batch(struct cq_consumer *c, int first_timeout_ms, int max) {
    int n = 0;
    while (n < max && !c->closing) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, n == 0 ? first_timeout_ms : 0);
        if (!rkm) break;
        deliver(c, rkm);
        rd_kafka_message_destroy(rkm);
        n++;
    }
    return n;
}

static void on_consumer_idle(uv_idle_t *h) {
    struct cq_consumer *c = h->data;
    if (consume_batch(c, 0, CONSUME_BATCH) < CONSUME_BATCH) uv_idle_stop(h);
}

static void on_consumer_io(uv_poll_t *h, int status, int events) {
    (void)status;
    (void)events;
    struct cq_consumer *c = h->data;
    cq_kafka_pipe_drain(c->fds[0]);
    /* Bounded per wakeup so other handles get their turn; the idle handle finishes the
     * queue (the pipe would not be written again while the queue stays non-empty). */
    if (consume_batch(c, 0, CONSUME_BATCH) == CONSUME_BATCH)
        uv_idle_start(&c->idle, on_consumer_idle);
}

/* Every COMMIT_INTERVAL_MS: commit what moved, and poll the consumer even when the event
 * pipe stayed quiet. librdkafka counts max.poll.interval.ms from the application's last
 * rd_kafka_consumer_poll: an idle consumer (no message, so no pipe write) or a paused one
 * would otherwise leave the group and force a rebalance. Paused partitions return nothing
 * here; rebalance events and errors are served. */
static void on_commit_tick(uv_timer_t *t) {
    struct cq_consumer *c = t->data;
    commit_watermarks(c, true, NULL);
    if (!c->closing && consume_batch(c, 0, CONSUME_BATCH) == CONSUME_BATCH)
        uv_idle_start(&c->idle, on_consumer_idle);
}

static void consumer_release(struct cq_consumer *c) {
    if (--c->pending > 0) return;
    for (size_t i = 0; i < c->nparts; i++)
        track_free(c->parts[i]);
    free(c->parts);
    for (size_t i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->group);
    pthread_mutex_destroy(&c->lag_mu);
    pthread_cond_destroy(&c->lag_cv);
    cq_kafka_pipe_close(c->fds);
    free(c);
}

static void consumer_handle_closed(uv_handle_t *h) {
    consumer_release(h->data);
}

/* One round: for each topic of the subscription, the partitions this process holds and the
 * messages on them not yet committed by the group (high watermark - committed offset; with
 * nothing committed, from the low watermark, as auto.offset.reset=earliest reads). A topic
 * whose query failed keeps its last value. The same figure as kafka-consumer-groups' LAG. */
static void lag_round(struct cq_consumer *c) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    int64_t *lag = calloc(c->ntopics, sizeof(*lag));
    int *held = calloc(c->ntopics, sizeof(*held));
    bool *failed = calloc(c->ntopics, sizeof(*failed));
    if (!lag || !held || !failed) goto out;
    if (parts->cnt > 0 &&
        rd_kafka_committed(c->rk, parts, LAG_QUERY_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        for (size_t t = 0; t < c->ntopics; t++)
            failed[t] = true;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &parts->elems[i];
        size_t t = 0;
        int64_t lo = 0, hi = 0;
        while (t < c->ntopics && strcmp(c->topics[t], e->topic) != 0)
            t++;
        if (t == c->ntopics) continue;
        held[t]++;
        pthread_mutex_lock(&c->lag_mu);
        bool stop = c->lag_stop;
        pthread_mutex_unlock(&c->lag_mu);
        if (stop) goto out;
        if (failed[t] || e->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_query_watermark_offsets(c->rk, e->topic, e->partition, &lo, &hi,
                                             LAG_QUERY_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            failed[t] = true;
            continue;
        }
        int64_t from = e->offset >= 0 ? e->offset : lo;
        if (hi > from) lag[t] += hi - from;
    }
    for (size_t t = 0; t < c->ntopics; t++) {
        char labels[512], esc_g[200], esc_t[260];
        cq_metrics_escape(c->group, esc_g, sizeof(esc_g));
        cq_metrics_escape(c->topics[t], esc_t, sizeof(esc_t));
        snprintf(labels, sizeof(labels), "group=\"%s\",topic=\"%s\"", esc_g, esc_t);
        cq_gauge_set(cq_gauge_get("chatops_kafka_assigned_partitions",
                                  "Partitions of the topic this process consumes", labels),
                     held[t]);
        if (!failed[t])
            cq_gauge_set(cq_gauge_get("chatops_kafka_consumer_lag",
                                      "Messages on this process's partitions not yet committed "
                                      "by the group (high watermark - committed offset)",
                                      labels),
                         lag[t]);
    }
out:
    free(lag);
    free(held);
    free(failed);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void *lag_main(void *arg) {
    struct cq_consumer *c = arg;
    pthread_mutex_lock(&c->lag_mu);
    while (!c->lag_stop) {
        pthread_mutex_unlock(&c->lag_mu);
        lag_round(c);
        pthread_mutex_lock(&c->lag_mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += LAG_INTERVAL_MS / 1000;
        while (!c->lag_stop && pthread_cond_timedwait(&c->lag_cv, &c->lag_mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&c->lag_mu);
    return NULL;
}

static void lag_stop(struct cq_consumer *c) {
    if (!c->lag_started) return;
    pthread_mutex_lock(&c->lag_mu);
    c->lag_stop = true;
    pthread_cond_signal(&c->lag_cv);
    pthread_mutex_unlock(&c->lag_mu);
    pthread_join(c->lag_thread, NULL); /* before rd_kafka_destroy: the thread uses rk */
    c->lag_started = false;
}

struct cq_consumer *cq_consumer_new(const char *brokers, const char *group,
                                    const char *const *topics, struct cq_loop *loop,
                                    cq_message_cb cb, void *opaque, const char *const *extra_conf,
                                    struct cq_err *err) {
    struct cq_consumer *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    char errstr[512];
    size_t ntopics = 0;

    while (topics && topics[ntopics])
        ntopics++;
    if (!brokers || !*brokers || !group || !*group || !ntopics || !cb) {
        cq_err_set(err, CQ_EINVAL,
                   "kafka consumer: brokers, group, topics and a callback "
                   "are required");
        goto out;
    }
    c = calloc(1, sizeof(*c));
    conf = rd_kafka_conf_new();
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    if (!c || !conf || !subs) {
        cq_err_set(err, CQ_ENOMEM, "kafka consumer: out of memory");
        goto out;
    }
    c->fds[0] = c->fds[1] = -1;
    c->pending = 1;
    c->cb = cb;
    c->opaque = opaque;
    pthread_mutex_init(&c->lag_mu, NULL);
    pthread_cond_init(&c->lag_cv, NULL);
    c->group = strdup(group);
    c->topics = calloc(ntopics, sizeof(*c->topics));
    if (!c->group || !c->topics) {
        cq_err_set(err, CQ_ENOMEM, "kafka consumer: out of memory");
        goto out;
    }
    for (; c->ntopics < ntopics; c->ntopics++)
        if (!(c->topics[c->ntopics] = strdup(topics[c->ntopics]))) {
            cq_err_set(err, CQ_ENOMEM, "kafka consumer: out of memory");
            goto out;
        }
    if (cq_kafka_conf_set(conf, "consumer", "bootstrap.servers", brokers, err) != CQ_OK ||
        cq_kafka_conf_set(conf, "consumer", "group.id", group, err) != CQ_OK ||
        cq_kafka_conf_set(conf, "consumer", "enable.auto.commit", "false", err) != CQ_OK ||
        cq_kafka_conf_set(conf, "consumer", "enable.auto.offset.store", "false", err) != CQ_OK ||
        cq_kafka_conf_set(conf, "consumer", "auto.offset.reset", "earliest", err) != CQ_OK ||
        cq_kafka_conf_set(conf, "consumer", "session.timeout.ms", "10000", err) != CQ_OK ||
        cq_kafka_conf_apply(conf, "consumer", extra_conf, err) != CQ_OK)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit_result);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
    rd_kafka_conf_set_log_cb(conf, cq_kafka_on_log);
    rd_kafka_conf_set_opaque(conf, c);

    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->rk) {
        cq_err_set(err, CQ_ECONFIG, "kafka consumer: %s", errstr);
        goto out;
    }
    conf = NULL;
    /* Rebalance events, errors and messages all arrive on the one consumer queue. */
    rd_kafka_poll_set_consumer(c->rk);
    c->cq = rd_kafka_queue_get_consumer(c->rk);
    if (!c->cq) {
        cq_err_set(err, CQ_EKAFKA, "kafka consumer: no consumer queue");
        goto out;
    }
    if (loop) {
        uv_loop_t *uv = cq_loop_uv(loop);
        c->loop = loop;
        if (cq_kafka_pipe_open(c->fds, err) != CQ_OK) goto out;
        if (uv_poll_init(uv, &c->poll, c->fds[0]) != 0) {
            cq_err_set(err, CQ_EIO, "kafka consumer: cannot watch the event pipe");
            goto out;
        }
        c->poll.data = c;
        c->pending++;
        uv_idle_init(uv, &c->idle);
        c->idle.data = c;
        c->pending++;
        uv_timer_init(uv, &c->commit_timer);
        c->commit_timer.data = c;
        c->pending++;
        rd_kafka_queue_io_event_enable(c->cq, c->fds[1], "1", 1);
        uv_poll_start(&c->poll, UV_READABLE, on_consumer_io);
        uv_timer_start(&c->commit_timer, on_commit_tick, COMMIT_INTERVAL_MS, COMMIT_INTERVAL_MS);
        uv_unref((uv_handle_t *)&c->commit_timer);
        /* Anything queued before the IO event was enabled would never be announced. */
        uv_idle_start(&c->idle, on_consumer_idle);
    }
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cq_err_set(err, CQ_EKAFKA, "kafka consumer: subscribe: %s", rd_kafka_err2str(e));
        goto out;
    }
    rd_kafka_topic_partition_list_destroy(subs);
    if (pthread_create(&c->lag_thread, NULL, lag_main, c) == 0)
        c->lag_started = true;
    else
        cq_warn(NULL, "kafka consumer: no lag thread: chatops_kafka_consumer_lag stays unset");
    return c;
out:
    if (subs) rd_kafka_topic_partition_list_destroy(subs);
    if (conf) rd_kafka_conf_destroy(conf);
    cq_consumer_free(c);
    return NULL;
}

void cq_consumer_done(struct cq_consumer *c, const char *topic, int32_t partition, int64_t offset) {
    if (!c || !topic) return;
    struct ptrack *t = track_find(c, topic, partition);
    if (t) track_done(t, offset);
}

int cq_consumer_poll(struct cq_consumer *c, int timeout_ms, int max) {
    if (!c || !c->rk || max <= 0) return 0;
    int n = consume_batch(c, timeout_ms, max);
    if (!c->loop && cq_now_ms() - c->last_commit_ms >= COMMIT_INTERVAL_MS)
        commit_watermarks(c, true, NULL);
    return n;
}

enum cq_rc cq_consumer_commit_now(struct cq_consumer *c, struct cq_err *err) {
    if (!c || !c->rk) return cq_err_set(err, CQ_EINVAL, "kafka commit: no consumer");
    return commit_watermarks(c, false, err);
}

void cq_consumer_pause(struct cq_consumer *c, bool paused) {
    if (!c || !c->rk || c->paused == paused) return;
    c->paused = paused;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    if (parts->cnt > 0) {
        if (paused)
            rd_kafka_pause_partitions(c->rk, parts);
        else
            rd_kafka_resume_partitions(c->rk, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

void cq_consumer_free(struct cq_consumer *c) {
    if (!c) return;
    lag_stop(c);
    if (c->rk) {
        commit_watermarks(c, false, NULL);
        c->closing = true; /* no message callback from here on */
        if (c->cq && c->loop) rd_kafka_queue_io_event_enable(c->cq, -1, NULL, 0);
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk); /* revoke: commits, leaves */
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            cq_warn(NULL, "kafka consumer: close: %s", rd_kafka_err2str(e));
        if (c->cq) rd_kafka_queue_destroy(c->cq);
        rd_kafka_destroy(c->rk);
        c->rk = NULL;
    }
    c->closing = true;
    if (c->loop && c->pending > 1) {
        uv_close((uv_handle_t *)&c->poll, consumer_handle_closed);
        uv_close((uv_handle_t *)&c->idle, consumer_handle_closed);
        uv_close((uv_handle_t *)&c->commit_timer, consumer_handle_closed);
    }
    consumer_release(c);
}

const void *cq_message_header(const struct cq_message *m, const char *name, size_t *len) {
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    if (len) *len = 0;
    if (!m || !m->rkm || !name) return NULL;
    if (rd_kafka_message_headers(m->rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (len) *len = size;
    return val;
}
