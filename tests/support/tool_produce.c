/* cqt-produce: puts messages on a Kafka topic for tests and benchmarks.
 *   cqt-produce BROKERS TOPIC KEY < value        one message, the whole of stdin
 *   cqt-produce BROKERS TOPIC -    < lines       one message per line "key<TAB>value"
 * Creates the topic when missing (3 partitions) and exits 0 only once every message
 * was acknowledged (acks=all). With CQT_PRODUCE_RATE=N the lines are sent at N per
 * second (benchmarks: a steady load instead of one burst), starting once the first line was
 * acknowledged so that the producer's connection set-up does not become a burst. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cqtest.h"
#include "kafka.h"

static int failed;
static int acked;

static void on_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                      int64_t offset) {
    (void)opaque;
    (void)partition;
    (void)offset;
    if (rc != CQ_OK) {
        failed++;
        fprintf(stderr, "cqt-produce: delivery failed: %s\n", errstr);
    } else {
        acked++;
    }
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    struct cq_err err = {0};
    size_t len = 0;
    int sent = 0;
    if (argc != 4) {
        fprintf(stderr, "usage: cqt-produce BROKERS TOPIC KEY|- < value\n");
        return 2;
    }
    const char *topics[] = {argv[2], NULL};
    if (cq_kafka_ensure_topics(argv[1], topics, 3, 1, 15000, &err) != CQ_OK) {
        fprintf(stderr, "cqt-produce: %s\n", err.msg);
        return 1;
    }
    struct cq_producer *p = cq_producer_new(argv[1], 10000, NULL, NULL, &err);
    if (!p) {
        fprintf(stderr, "cqt-produce: %s\n", err.msg);
        return 1;
    }
    char *in = read_all(stdin, &len);
    if (!in) {
        cq_producer_free(p);
        return 1;
    }
    if (strcmp(argv[3], "-") != 0) {
        if (cq_producer_send(p, argv[2], argv[3], strlen(argv[3]), in, len, NULL, on_report, NULL,
                             &err) == CQ_OK)
            sent++;
        else
            fprintf(stderr, "cqt-produce: %s\n", err.msg);
    } else {
        char *save = NULL;
        const char *rate_s = getenv("CQT_PRODUCE_RATE");
        double rate = rate_s ? atof(rate_s) : 0, t0 = now_s();
        bool warm = rate <= 0;
        for (char *line = strtok_r(in, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *tab = strchr(line, '\t');
            if (!tab) continue;
            *tab = '\0';
            if (!warm && sent == 1) {
                /* Paced runs measure latency from each message's timestamp, taken when it is
                 * produced. Until the producer has connected and holds its idempotence PID
                 * (hundreds of ms), paced messages would only queue here and the consumer
                 * would see a burst. So the first message is sent and acknowledged alone and
                 * the pacing clock starts after it. */
                cq_producer_flush(p, 15000);
                warm = true;
                t0 = now_s() - 1.0 / rate;
            }
            if (rate > 0) { /* message k leaves at t0 + k / rate */
                double wait = t0 + (double)sent / rate - now_s();
                if (wait > 0.0005) cq_producer_poll(p, (int)(wait * 1000));
            }
            while (cq_producer_send(p, argv[2], line, strlen(line), tab + 1, strlen(tab + 1), NULL,
                                    on_report, NULL, &err) != CQ_OK) {
                if (err.code == CQ_EINVAL) {
                    fprintf(stderr, "cqt-produce: %s\n", err.msg);
                    break;
                }
                cq_producer_poll(p, 50); /* queue full: let reports drain */
            }
            sent++;
            cq_producer_poll(p, 0);
        }
    }
    cq_producer_flush(p, 15000);
    cq_producer_free(p);
    free(in);
    if (acked != sent || failed) {
        fprintf(stderr, "cqt-produce: %d of %d acknowledged\n", acked, sent);
        return 1;
    }
    return 0;
}
