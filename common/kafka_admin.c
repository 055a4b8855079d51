/* kafka_admin: topic creation at startup (cq_kafka_ensure_topics). Blocking by design:
 * services create their topics before their loop runs. */
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

/* Startup-only and blocking by design: services create their topics before the loop runs. */
static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until every partition of topic has a leader; returns its partition count or -1. */
static int topic_ready(rd_kafka_t *rk, const char *topic, int timeout_ms) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int cnt = -1;
    if (!rkt) return -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topics[0].partition_cnt > 0) {
        cnt = md->topics[0].partition_cnt;
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            if (md->topics[0].partitions[i].leader < 0) cnt = -1;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return cnt;
}

enum cq_rc cq_kafka_ensure_topics(const char *brokers, const char *const *topics, int partitions,
                                  int replication, int timeout_ms, struct cq_err *err) {
    return cq_kafka_ensure_topics_conf(brokers, NULL, topics, partitions, replication, timeout_ms,
                                       err);
}

enum cq_rc cq_kafka_ensure_topics_conf(const char *brokers, const char *const *client_conf,
                                       const char *const *topics, int partitions, int replication,
                                       int timeout_ms, struct cq_err *err) {
    enum cq_rc rc = CQ_OK;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t **nts = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    bool *existed = NULL;
    char errstr[512];
    size_t n = 0;

    cq_err_clear(err);
    while (topics && topics[n])
        n++;
    if (!brokers || !*brokers || !n || partitions <= 0 || replication <= 0 || timeout_ms <= 0)
        return cq_err_set(err, CQ_EINVAL, "kafka topics: invalid arguments");
    uint64_t deadline = cq_now_ms() + (uint64_t)timeout_ms;

    if (!(conf = rd_kafka_conf_new()) || !(nts = calloc(n, sizeof(*nts))) ||
        !(existed = calloc(n, sizeof(*existed)))) {
        rc = cq_err_set(err, CQ_ENOMEM, "kafka topics: out of memory");
        goto out;
    }
    if ((rc = cq_kafka_conf_set(conf, "admin", "bootstrap.servers", brokers, err)) != CQ_OK ||
        (rc = cq_kafka_conf_apply(conf, "admin", client_conf, err)) != CQ_OK)
        goto out;
    rd_kafka_conf_set_log_cb(conf, cq_kafka_on_log);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rc = cq_err_set(err, CQ_ECONFIG, "kafka admin: %s", errstr);
        goto out;
    }
    conf = NULL;
    for (size_t i = 0; i < n; i++) {
        nts[i] = rd_kafka_NewTopic_new(topics[i], partitions, replication, errstr, sizeof(errstr));
        if (!nts[i]) {
            rc = cq_err_set(err, CQ_EINVAL, "kafka topic %s: %s", topics[i], errstr);
            goto out;
        }
    }
    if (!(opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)) ||
        !(q = rd_kafka_queue_new(rk))) {
        rc = cq_err_set(err, CQ_ENOMEM, "kafka topics: out of memory");
        goto out;
    }
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, nts, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (!ev) {
        rc = cq_err_set(err, CQ_ETIMEOUT, "kafka topics: no answer from %s within %d ms", brokers,
                        timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        rc = cq_err_set(err, cq_kafka_map_err(e) == CQ_ETIMEOUT ? CQ_ETIMEOUT : CQ_EKAFKA,
                        "kafka topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            for (size_t j = 0; j < n; j++)
                if (strcmp(topics[j], name) == 0) existed[j] = true;
        } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *why = rd_kafka_topic_result_error_string(res[i]);
            rc = cq_err_set(err, cq_kafka_map_err(e) == CQ_ETIMEOUT ? CQ_ETIMEOUT : CQ_EKAFKA,
                            "kafka topic %s: %s", name, why ? why : rd_kafka_err2str(e));
            goto out;
        }
    }
    /* Created is not yet usable: wait until metadata shows every partition with a leader. */
    for (size_t i = 0; i < n; i++) {
        int have;
        for (;;) {
            uint64_t now = cq_now_ms();
            if (now >= deadline) {
                rc = cq_err_set(err, CQ_ETIMEOUT, "kafka topic %s: no leaders within %d ms",
                                topics[i], timeout_ms);
                goto out;
            }
            have = topic_ready(rk, topics[i], (int)(deadline - now));
            if (have > 0) break;
            nap_ms(100);
        }
        if (existed[i] && have != partitions)
            cq_err_set(err, CQ_OK, "kafka topic %s exists with %d partitions (wanted %d)",
                       topics[i], have, partitions);
    }
out:
    if (ev) rd_kafka_event_destroy(ev);
    if (q) rd_kafka_queue_destroy(q);
    if (opts) rd_kafka_AdminOptions_destroy(opts);
    for (size_t i = 0; nts && i < n; i++)
        if (nts[i]) rd_kafka_NewTopic_destroy(nts[i]);
    free(nts);
    free(existed);
    if (rk) rd_kafka_destroy(rk);
    if (conf) rd_kafka_conf_destroy(conf);
    return rc;
}
