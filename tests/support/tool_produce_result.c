/* cqt-produce_result: test helper for the notifier's integration tests. Produces JSON
 * messages (one per stdin line) to a topic and waits for every delivery report, or, with
 * --dump, prints up to N messages of a topic from the beginning (one per line).
 *   cqt-produce_result --brokers B --topic T [--key K]            < lines
 *   cqt-produce_result --brokers B --dump T --count N [--timeout-ms MS]
 *   cqt-produce_result --brokers B --ensure T1,T2 [--partitions N]   (creates topics) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "loop.h"

struct dump {
    struct cq_consumer *c;
    int seen;
};

static void on_msg(void *opaque, const struct cq_message *m) {
    struct dump *d = opaque;
    fwrite(m->payload, 1, m->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    d->seen++;
    cq_consumer_done(d->c, m->topic, m->partition, m->offset);
}

static int failures;
static void on_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t p, int64_t o) {
    (void)opaque;
    (void)p;
    (void)o;
    if (rc != CQ_OK) {
        fprintf(stderr, "delivery failed: %s\n", errstr ? errstr : "?");
        failures++;
    }
}

static const char *arg(int argc, char **argv, const char *name) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv) {
    const char *brokers = arg(argc, argv, "--brokers"), *topic = arg(argc, argv, "--topic");
    const char *key = arg(argc, argv, "--key"), *dump = arg(argc, argv, "--dump");
    struct cq_err err = {0};
    const char *ensure = arg(argc, argv, "--ensure");
    if (brokers && ensure) {
        const char *parts = arg(argc, argv, "--partitions");
        char *copy = strdup(ensure);
        const char *names[17] = {0};
        int n = 0;
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < 16;
             t = strtok_r(NULL, ",", &save))
            names[n++] = t;
        enum cq_rc rc =
            cq_kafka_ensure_topics(brokers, names, parts ? atoi(parts) : 4, 1, 30000, &err);
        if (rc != CQ_OK) fprintf(stderr, "ensure: %s\n", err.msg);
        free(copy);
        return rc == CQ_OK ? 0 : 1;
    }
    if (!brokers || (!topic && !dump)) {
        fprintf(stderr, "usage: %s --brokers B (--topic T [--key K] | --dump T --count N)\n",
                argv[0]);
        return 2;
    }
    if (dump) {
        int count = arg(argc, argv, "--count") ? atoi(arg(argc, argv, "--count")) : 1;
        int timeout =
            arg(argc, argv, "--timeout-ms") ? atoi(arg(argc, argv, "--timeout-ms")) : 20000;
        char group[96];
        snprintf(group, sizeof group, "cqt-dump-%llu-%d", (unsigned long long)cq_now_ms(),
                 (int)getpid());
        struct dump d = {0};
        const char *topics[] = {dump, NULL};
        d.c = cq_consumer_new(brokers, group, topics, NULL, on_msg, &d, NULL, &err);
        if (!d.c) {
            fprintf(stderr, "consumer: %s\n", err.msg);
            return 1;
        }
        uint64_t end = cq_now_ms() + (uint64_t)timeout;
        while (d.seen < count && cq_now_ms() < end)
            cq_consumer_poll(d.c, 200, count - d.seen);
        cq_consumer_free(d.c);
        return d.seen >= count ? 0 : 3;
    }
    struct cq_producer *p = cq_producer_new(brokers, 10000, NULL, NULL, &err);
    if (!p) {
        fprintf(stderr, "producer: %s\n", err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int sent = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0) continue;
        const char *k = key ? key : "";
        if (cq_producer_send(p, topic, k, strlen(k), line, (size_t)n, NULL, on_report, NULL,
                             &err) != CQ_OK) {
            fprintf(stderr, "send: %s\n", err.msg);
            failures++;
            break;
        }
        sent++;
        cq_producer_poll(p, 0);
    }
    free(line);
    if (cq_producer_flush(p, 15000) != CQ_OK) failures++;
    cq_producer_free(p);
    fprintf(stderr, "produced %d message(s), %d failure(s)\n", sent, failures);
    return failures ? 1 : 0;
}
