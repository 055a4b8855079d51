/* cqt-topic_dump: what really landed on a Kafka topic, for the Python tests. Reads from the
 * beginning with a fresh group and prints one JSON line per message
 * {"partition","offset","key","value","headers":{}} until --max messages or --timeout-ms
 * without a new one.  cqt-topic_dump BROKERS TOPIC [--group G] [--timeout-ms N] [--max N] */
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "kafka.h"
#include "loop.h"

static void print_message(const rd_kafka_message_t *m) {
    cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateObject();
    char *key = strndup(m->key ? m->key : "", m->key ? m->key_len : 0);
    char *val = strndup(m->payload ? m->payload : "", m->payload ? m->len : 0);
    rd_kafka_headers_t *hdrs = NULL;
    if (!o || !h || !key || !val) goto out;
    cJSON_AddNumberToObject(o, "partition", m->partition);
    cJSON_AddNumberToObject(o, "offset", (double)m->offset);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "value", val);
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t vlen;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &v, &vlen) == 0; i++) {
            char *s = strndup(v ? v : "", v ? vlen : 0);
            if (s) cJSON_AddStringToObject(h, name, s);
            free(s);
        }
    }
    cJSON_AddItemToObject(o, "headers", h);
    h = NULL;
    char *line = cJSON_PrintUnformatted(o);
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
    }
    free(line);
out:
    cJSON_Delete(h);
    cJSON_Delete(o);
    free(key);
    free(val);
}

int main(int argc, char **argv) {
    char errstr[512], group[160];
    long timeout_ms = 3000, max = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: cqt-topic_dump BROKERS TOPIC [--group G] [--timeout-ms N] "
                        "[--max N]\n");
        return 2;
    }
    snprintf(group, sizeof(group), "%s", cqtest_unique("cqt-dump"));
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--group") == 0)
            snprintf(group, sizeof(group), "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--max") == 0)
            max = atol(argv[i + 1]);
        else
            cqtest_fatal("unknown option %s", argv[i]);
    }
    /* a topic that does not exist yet is created (3 partitions), so a test can call this
     * first to have its topics ready before anything produces to them */
    const char *topics[] = {argv[2], NULL};
    struct cq_err err = {0};
    if (cq_kafka_ensure_topics(argv[1], topics, 3, 1, 15000, &err) != CQ_OK)
        cqtest_fatal("%s", err.msg);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "true", errstr, sizeof(errstr)))
        cqtest_fatal("conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) cqtest_fatal("consumer: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, argv[2], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(rk, sub)) cqtest_fatal("subscribe failed");
    rd_kafka_topic_partition_list_destroy(sub);
    long seen = 0;
    /* the idle clock starts once partitions are assigned (joining a group takes seconds) */
    uint64_t assigned_at = 0, last = cq_now_ms(), started = last;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        uint64_t now = cq_now_ms();
        if (!assigned_at) {
            rd_kafka_topic_partition_list_t *a = NULL;
            if (rd_kafka_assignment(rk, &a) == 0 && a && a->cnt > 0) assigned_at = last = now;
            if (a) rd_kafka_topic_partition_list_destroy(a);
            if (!assigned_at && now - started > 30000)
                cqtest_fatal("no partition assigned in 30 s");
        }
        if (m) {
            if (!m->err) {
                print_message(m);
                seen++;
                last = now;
            }
            rd_kafka_message_destroy(m);
            if (max && seen >= max) break;
            continue;
        }
        if (assigned_at && (long)(now - last) >= timeout_ms) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
