/* cqt-consume: prints what is on a Kafka topic, one JSON line per message
 * {"partition","offset","key","value","ts"}, reading from the beginning with a fresh
 * group. Stops after COUNT messages, or when nothing new arrived for IDLE_MS.
 *   cqt-consume BROKERS TOPIC [COUNT [IDLE_MS]]   (COUNT 0 = until idle; IDLE_MS 3000) */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cqtest.h"
#include "kafka.h"
#include "loop.h"

static int seen;
static struct cq_consumer *consumer;

static void on_msg(void *opaque, const struct cq_message *m) {
    (void)opaque;
    cJSON *o = cJSON_CreateObject();
    char *key = strndup(m->key ? m->key : "", m->keylen);
    char *val = strndup(m->payload ? m->payload : "", m->len);
    if (o && key && val) {
        cJSON_AddNumberToObject(o, "partition", m->partition);
        cJSON_AddNumberToObject(o, "offset", (double)m->offset);
        cJSON_AddStringToObject(o, "key", key);
        cJSON_AddStringToObject(o, "value", val);
        cJSON_AddNumberToObject(o, "ts", (double)m->timestamp_ms);
        char *s = cJSON_PrintUnformatted(o);
        if (s) printf("%s\n", s);
        cJSON_free(s);
    }
    fflush(stdout);
    free(key);
    free(val);
    cJSON_Delete(o);
    seen++;
    cq_consumer_done(consumer, m->topic, m->partition, m->offset);
}

int main(int argc, char **argv) {
    struct cq_err err = {0};
    if (argc < 3) {
        fprintf(stderr, "usage: cqt-consume BROKERS TOPIC [COUNT [IDLE_MS]]\n");
        return 2;
    }
    int count = argc > 3 ? atoi(argv[3]) : 0;
    int idle = argc > 4 ? atoi(argv[4]) : 3000;
    const char *topics[] = {argv[2], NULL};
    if (cq_kafka_ensure_topics(argv[1], topics, 3, 1, 15000, &err) != CQ_OK) {
        fprintf(stderr, "cqt-consume: %s\n", err.msg);
        return 1;
    }
    char group[64];
    snprintf(group, sizeof(group), "cqt-consume-%d-%ld", (int)getpid(), (long)cq_now_ms());
    consumer = cq_consumer_new(argv[1], group, topics, NULL, on_msg, NULL, NULL, &err);
    if (!consumer) {
        fprintf(stderr, "cqt-consume: %s\n", err.msg);
        return 1;
    }
    uint64_t last = cq_now_ms();
    int last_seen = 0;
    /* The first assignment takes a few seconds: idle counts only after it. */
    uint64_t start = last;
    while (count == 0 || seen < count) {
        cq_consumer_poll(consumer, 100, 500);
        if (seen != last_seen) {
            last_seen = seen;
            last = cq_now_ms();
        } else if (cq_now_ms() - last > (uint64_t)idle && cq_now_ms() - start > 6000u) {
            break;
        }
    }
    cq_consumer_free(consumer);
    return 0;
}
