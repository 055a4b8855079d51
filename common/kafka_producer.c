/* kafka_producer: the librdkafka producer on the service's loop (see kafka.h): per-message
 * delivery callbacks with the persisted state, a broker readiness probe on the thread
 * pool, fatal-error latching, and flush on free. Queue wake-ups: see kafka.c. */
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

#define READY_INTERVAL_MS 1000
#define READY_PROBE_MS 500
#define FREE_FLUSH_MS 5000

struct delivery {
    cq_delivery_cb cb;
    cq_delivery_report_cb rcb;
    void *opaque;
};

struct cq_producer {
    rd_kafka_t *rk;
    struct cq_loop *loop;
    rd_kafka_queue_t *mainq;
    int fds[2];
    uv_poll_t poll;
    uv_timer_t ready_timer;
    /* lazy reports (cq_producer_lazy_reports): served before the loop next waits, a timer
     * bounding the wait while the loop has nothing else to do */
    int lazy_ms; /* 0: the queue's IO event wakes the loop for every report */
    uv_prepare_t serve;
    uv_timer_t serve_timer;
    uv_work_t ready_work;
    bool work_busy; /* loop thread only */
    bool closing;
    int pending; /* closes + work still to come back before memory can go */
    atomic_bool ready;
    atomic_bool fatal;   /* set once, after fatal_why was written */
    char fatal_why[256]; /* "<error name>: <reason>", written once before fatal is set */
    struct cq_kafka_err_limiter lim;
};

static enum cq_persisted persisted_of(const rd_kafka_message_t *m) {
    switch (rd_kafka_message_status(m)) {
    case RD_KAFKA_MSG_STATUS_PERSISTED:
        return CQ_PERSISTED;
    case RD_KAFKA_MSG_STATUS_NOT_PERSISTED:
        return CQ_NOT_PERSISTED;
    default:
        return CQ_POSSIBLY_PERSISTED;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    struct delivery *d = m->_private;
    if (!d) return;
    enum cq_rc rc = cq_kafka_map_err(m->err);
    const char *why = rc == CQ_OK ? "" : rd_kafka_err2str(m->err);
    int64_t off = rc == CQ_OK ? m->offset : -1;
    if (d->rcb) {
        struct cq_delivery_report r = {.rc = rc,
                                       .errstr = why,
                                       .partition = m->partition,
                                       .offset = off,
                                       .persisted = persisted_of(m)};
        d->rcb(d->opaque, &r);
    } else {
        d->cb(d->opaque, rc, why, m->partition, off);
    }
    free(d);
}

static void on_producer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    struct cq_producer *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL && !atomic_load(&p->fatal)) {
        char why[200];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        snprintf(p->fatal_why, sizeof(p->fatal_why), "kafka producer fatal error %s: %s",
                 rd_kafka_err2name(orig), why);
        atomic_store(&p->fatal, true);
        cq_metric_inc("chatops_kafka_producer_fatal_total",
                      "Fatal producer errors (the producer is unusable until restarted)", NULL);
    }
    cq_kafka_log_client_error(rk, &p->lim, code, reason);
}

static bool probe_brokers(rd_kafka_t *rk) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, READY_PROBE_MS);
    bool ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
    if (md) rd_kafka_metadata_destroy(md);
    return ok;
}

static void producer_release(struct cq_producer *p) {
    if (--p->pending > 0) return;
    if (p->mainq) rd_kafka_queue_destroy(p->mainq);
    if (p->rk) rd_kafka_destroy(p->rk);
    cq_kafka_pipe_close(p->fds);
    free(p);
}

static void producer_handle_closed(uv_handle_t *h) {
    producer_release(h->data);
}

static void ready_probe(uv_work_t *w) {
    struct cq_producer *p = w->data;
    atomic_store(&p->ready, probe_brokers(p->rk));
}

static void ready_probe_done(uv_work_t *w, int status) {
    (void)status;
    struct cq_producer *p = w->data;
    p->work_busy = false;
    if (p->closing) producer_release(p);
}

static void ready_tick(uv_timer_t *t) {
    struct cq_producer *p = t->data;
    /* lazy reports: errors and fatal errors while nothing is in flight come out here */
    if (p->lazy_ms > 0 && !p->closing) rd_kafka_poll(p->rk, 0);
    if (p->work_busy || p->closing) return;
    if (uv_queue_work(t->loop, &p->ready_work, ready_probe, ready_probe_done) == 0)
        p->work_busy = true;
}

static void on_producer_io(uv_poll_t *h, int status, int events) {
    (void)status;
    (void)events;
    struct cq_producer *p = h->data;
    cq_kafka_pipe_drain(p->fds[0]);
    /* The pipe is written only on empty -> non-empty: serve until the queue is empty. */
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
}

/* Lazy reports: what librdkafka has queued is served each loop turn, just before the loop
 * waits, while messages are outstanding; the timer, pushed back every turn, wakes the loop
 * only when it stayed idle for lazy_ms with reports possibly waiting. */
static void serve_timer_tick(uv_timer_t *t) {
    (void)t; /* the wake-up is the point: the prepare handle serves before the next wait */
}

static void serve_reports(uv_prepare_t *h) {
    struct cq_producer *p = h->data;
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
    if (p->closing || rd_kafka_outq_len(p->rk) == 0) {
        uv_prepare_stop(&p->serve);
        uv_timer_stop(&p->serve_timer);
        return;
    }
    uv_timer_start(&p->serve_timer, serve_timer_tick, (uint64_t)p->lazy_ms, 0);
}

static void lazy_arm(struct cq_producer *p) {
    if (p->lazy_ms <= 0 || p->closing || uv_is_active((uv_handle_t *)&p->serve)) return;
    uv_prepare_start(&p->serve, serve_reports);
    uv_timer_start(&p->serve_timer, serve_timer_tick, (uint64_t)p->lazy_ms, 0);
}

void cq_producer_lazy_reports(struct cq_producer *p, int max_delay_ms) {
    if (!p || !p->loop || !p->mainq || p->closing || max_delay_ms <= 0 || p->lazy_ms > 0) return;
    p->lazy_ms = max_delay_ms;
    rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
    lazy_arm(p); /* whatever is queued already */
}

struct cq_producer *cq_producer_new(const char *brokers, int delivery_timeout_ms,
                                    struct cq_loop *loop, const char *const *extra_conf,
                                    struct cq_err *err) {
    struct cq_producer *p = NULL;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512], tmo[32];

    if (!brokers || !*brokers || delivery_timeout_ms <= 0) {
        cq_err_set(err, CQ_EINVAL,
                   "kafka producer: brokers and a positive delivery timeout "
                   "are required");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    conf = rd_kafka_conf_new();
    if (!p || !conf) {
        cq_err_set(err, CQ_ENOMEM, "kafka producer: out of memory");
        goto out;
    }
    p->fds[0] = p->fds[1] = -1;
    p->pending = 1;
    snprintf(tmo, sizeof(tmo), "%d", delivery_timeout_ms);
    if (cq_kafka_conf_set(conf, "producer", "bootstrap.servers", brokers, err) != CQ_OK ||
        cq_kafka_conf_set(conf, "producer", "acks", "all", err) != CQ_OK ||
        cq_kafka_conf_set(conf, "producer", "enable.idempotence", "true", err) != CQ_OK ||
        cq_kafka_conf_set(conf, "producer", "message.timeout.ms", tmo, err) != CQ_OK ||
        cq_kafka_conf_set(conf, "producer", "linger.ms", "1", err) != CQ_OK ||
        cq_kafka_conf_apply(conf, "producer", extra_conf, err) != CQ_OK)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_producer_error);
    rd_kafka_conf_set_log_cb(conf, cq_kafka_on_log);
    rd_kafka_conf_set_opaque(conf, p);

    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        cq_err_set(err, CQ_ECONFIG, "kafka producer: %s", errstr);
        goto out;
    }
    conf = NULL; /* owned by rk now */

    if (loop) {
        uv_loop_t *uv = cq_loop_uv(loop);
        p->loop = loop;
        p->mainq = rd_kafka_queue_get_main(p->rk);
        if (cq_kafka_pipe_open(p->fds, err) != CQ_OK) goto out;
        if (uv_poll_init(uv, &p->poll, p->fds[0]) != 0) {
            cq_err_set(err, CQ_EIO, "kafka producer: cannot watch the event pipe");
            goto out;
        }
        p->poll.data = p;
        p->pending++;
        uv_timer_init(uv, &p->ready_timer);
        p->ready_timer.data = p;
        p->pending++;
        uv_prepare_init(uv, &p->serve);
        p->serve.data = p;
        p->pending++;
        uv_timer_init(uv, &p->serve_timer);
        p->serve_timer.data = p;
        p->pending++;
        p->ready_work.data = p;
        rd_kafka_queue_io_event_enable(p->mainq, p->fds[1], "1", 1);
        uv_poll_start(&p->poll, UV_READABLE, on_producer_io);
        /* An event queued before the IO event was enabled (a quick "connection refused")
         * would never be announced, and the queue would never be empty again: kick once. */
        ssize_t w = write(p->fds[1], "1", 1);
        (void)w;
        /* Readiness is background bookkeeping: it must not keep a draining loop alive. */
        uv_timer_start(&p->ready_timer, ready_tick, 0, READY_INTERVAL_MS);
        uv_unref((uv_handle_t *)&p->ready_timer);
    }
    return p;
out:
    if (conf) rd_kafka_conf_destroy(conf);
    cq_producer_free(p);
    return NULL;
}

static enum cq_rc send_any(struct cq_producer *p, const char *topic, const void *key, size_t keylen,
                           const void *value, size_t len, const char *const *headers,
                           cq_delivery_cb cb, cq_delivery_report_cb rcb, void *opaque,
                           struct cq_err *err) {
    struct delivery *d = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    enum cq_rc rc = CQ_OK;

    if (!p || !p->rk || !topic || !*topic || (!value && len) || (!key && keylen))
        return cq_err_set(err, CQ_EINVAL, "kafka produce: invalid arguments");
    if (cb || rcb) {
        if (!(d = malloc(sizeof(*d)))) return cq_err_set(err, CQ_ENOMEM, "kafka produce: oom");
        d->cb = cb;
        d->rcb = rcb;
        d->opaque = opaque;
    }
    if (headers && headers[0]) {
        size_t n = 0;
        while (headers[n])
            n++;
        if (n % 2) {
            rc =
                cq_err_set(err, CQ_EINVAL, "kafka produce: header %s has no value", headers[n - 1]);
            goto out;
        }
        if (!(hdrs = rd_kafka_headers_new(n / 2))) {
            rc = cq_err_set(err, CQ_ENOMEM, "kafka produce: out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i += 2)
            rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = cq_kafka_map_err(e);
        cq_err_set(err, rc, "kafka produce to %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    hdrs = NULL; /* owned by the message now */
    d = NULL;    /* freed after its delivery report */
    lazy_arm(p);
out:
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    free(d);
    return rc;
}

enum cq_rc cq_producer_send(struct cq_producer *p, const char *topic, const void *key,
                            size_t keylen, const void *value, size_t len,
                            const char *const *headers, cq_delivery_cb cb, void *opaque,
                            struct cq_err *err) {
    return send_any(p, topic, key, keylen, value, len, headers, cb, NULL, opaque, err);
}

enum cq_rc cq_producer_send_r(struct cq_producer *p, const char *topic, const void *key,
                              size_t keylen, const void *value, size_t len,
                              const char *const *headers, cq_delivery_report_cb cb, void *opaque,
                              struct cq_err *err) {
    return send_any(p, topic, key, keylen, value, len, headers, NULL, cb, opaque, err);
}

const char *cq_producer_fatal(struct cq_producer *p) {
    return p && atomic_load(&p->fatal) ? p->fatal_why : NULL;
}

void cq_producer_test_fatal(struct cq_producer *p, const char *reason) {
    if (p && p->rk)
        rd_kafka_test_fatal_error(p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason);
}

int cq_producer_poll(struct cq_producer *p, int timeout_ms) {
    if (!p || !p->rk) return 0;
    return rd_kafka_poll(p->rk, timeout_ms);
}

enum cq_rc cq_producer_flush(struct cq_producer *p, int timeout_ms) {
    if (!p || !p->rk) return CQ_EINVAL;
    return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? CQ_OK : CQ_ETIMEOUT;
}

int cq_producer_outq(struct cq_producer *p) {
    return p && p->rk ? rd_kafka_outq_len(p->rk) : 0;
}

bool cq_producer_ready(struct cq_producer *p) {
    if (!p || !p->rk || atomic_load(&p->fatal)) return false;
    if (!p->loop) return probe_brokers(p->rk);
    return atomic_load(&p->ready);
}

void cq_producer_free(struct cq_producer *p) {
    if (!p) return;
    if (p->rk) {
        if (rd_kafka_flush(p->rk, FREE_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Every accepted message gets its one report: the rest fail as purged. */
            int left = rd_kafka_outq_len(p->rk);
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(p->rk, 1000);
            cq_warn(NULL, "kafka producer: %d message(s) undelivered at shutdown", left);
        }
    }
    p->closing = true;
    if (p->loop) {
        if (p->mainq) rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
        if (p->work_busy) {
            p->pending++;
            uv_cancel((uv_req_t *)&p->ready_work); /* after_work still runs (ECANCELED) */
        }
        if (p->pending > 1) { /* handles were initialised */
            uv_close((uv_handle_t *)&p->poll, producer_handle_closed);
            uv_close((uv_handle_t *)&p->ready_timer, producer_handle_closed);
            uv_close((uv_handle_t *)&p->serve, producer_handle_closed);
            uv_close((uv_handle_t *)&p->serve_timer, producer_handle_closed);
        }
    }
    producer_release(p);
}
