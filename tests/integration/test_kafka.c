/* Integration tests for common/kafka.c against the fixture broker: topic creation,
 * a 200-message round trip on the loop (reports, payloads, keys, headers, ordering),
 * manual commits that restart at the first unfinished offset, and delivery reports
 * that fail in time when no broker is listening. */
#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cqtest.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

static const char *bootstrap;
static char topic3[128]; /* 3 partitions, made by ensure_topics */

/* Runs the loop until *flag is set (by a callback) or timeout; returns whether it was. */
static void tick(uv_timer_t *t) {
    (void)t;
}
static bool run_until(struct cq_loop *l, const int *flag, int want, int timeout_ms) {
    uv_timer_t t;
    uv_timer_init(cq_loop_uv(l), &t);
    uv_timer_start(&t, tick, 20, 20); /* bounds every uv_run round */
    uint64_t deadline = cq_now_ms() + (uint64_t)timeout_ms;
    while (*flag < want && cq_now_ms() < deadline)
        uv_run(cq_loop_uv(l), UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(cq_loop_uv(l), UV_RUN_NOWAIT);
    return *flag >= want;
}

static int partitions_of(const char *topic) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) return -1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == 0)
        n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return n;
}

TEST(ensure_topics) {
    struct cq_err err = {0};
    snprintf(topic3, sizeof(topic3), "%s", cqtest_unique("cqt.kafka.three"));
    const char *topics[] = {topic3, NULL};
    uint64_t t0 = cq_now_ms();
    CHECK(cq_kafka_ensure_topics(bootstrap, topics, 3, 1, 20000, &err) == CQ_OK);
    if (err.code != CQ_OK || err.msg[0]) fprintf(stderr, "  ensure: %s\n", err.msg);
    printf("  created %s in %llu ms\n", topic3, (unsigned long long)(cq_now_ms() - t0));
    CHECK(partitions_of(topic3) == 3);
    /* Second call: the topic exists already, that is fine and silent. */
    CHECK(cq_kafka_ensure_topics(bootstrap, topics, 3, 1, 20000, &err) == CQ_OK);
    CHECK(err.msg[0] == '\0');
    /* A different partition count is reported as a warning only. */
    CHECK(cq_kafka_ensure_topics(bootstrap, topics, 5, 1, 20000, &err) == CQ_OK);
    CHECK_CONTAINS(err.msg, "exists with 3 partitions");
    CHECK(partitions_of(topic3) == 3);
    const char *bad[] = {"", NULL};
    CHECK(cq_kafka_ensure_topics(bootstrap, bad, 3, 1, 5000, &err) != CQ_OK);
}

#define NMSG 200
#define NKEYS 7

struct sent {
    int reports;
    enum cq_rc rc;
    int32_t partition;
    int64_t offset;
};

struct roundtrip {
    struct sent sent[NMSG];
    int reported, report_ok;
    int got[NMSG];
    int received, mismatches, dupes;
    int last_index_by_key[NKEYS];
    int order_violations;
    struct cq_consumer *c;
};

static void make_msg(int i, char *key, size_t keysz, unsigned char *val, size_t *vlen, char *hdr,
                     size_t hdrsz) {
    snprintf(key, keysz, "key-%d", i % NKEYS);
    int n = snprintf((char *)val, 64, "m%03d|", i);
    /* Binary bytes too: NUL, 0xff and a byte that depends on i. */
    val[n++] = 0;
    val[n++] = 0xff;
    val[n++] = (unsigned char)(i * 37);
    for (int k = 0; k < i % 50; k++)
        val[n++] = (unsigned char)('a' + k % 26);
    *vlen = (size_t)n;
    snprintf(hdr, hdrsz, "req-%d-\xe2\x9c\x93", i);
}

static void on_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                      int64_t offset) {
    struct sent *s = opaque;
    (void)errstr;
    s->reports++;
    s->rc = rc;
    s->partition = partition;
    s->offset = offset;
}

static struct roundtrip *rt_global; /* on_report only gets the per-message slot */

static void count_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                         int64_t offset) {
    on_report(opaque, rc, errstr, partition, offset);
    rt_global->reported++;
    if (rc == CQ_OK) rt_global->report_ok++;
}

static void on_roundtrip_msg(void *opaque, const struct cq_message *m) {
    struct roundtrip *rt = opaque;
    int i = -1;
    if (m->len >= 5 && sscanf((const char *)m->payload, "m%03d|", &i) == 1 && i >= 0 && i < NMSG) {
        char key[32], hdr[64];
        unsigned char val[128];
        size_t vlen, hlen = 0;
        make_msg(i, key, sizeof(key), val, &vlen, hdr, sizeof(hdr));
        const void *h = cq_message_header(m, "x-req", &hlen);
        bool same = m->len == vlen && memcmp(m->payload, val, vlen) == 0 &&
                    m->keylen == strlen(key) && memcmp(m->key, key, m->keylen) == 0 && h &&
                    hlen == strlen(hdr) && memcmp(h, hdr, hlen) == 0 &&
                    m->partition == rt->sent[i].partition && m->offset == rt->sent[i].offset &&
                    strcmp(m->topic, topic3) == 0 && m->timestamp_ms > 0 &&
                    cq_message_header(m, "absent", &hlen) == NULL;
        if (!same) rt->mismatches++;
        if (rt->got[i]++) rt->dupes++;
        int k = i % NKEYS;
        if (i < rt->last_index_by_key[k]) rt->order_violations++;
        rt->last_index_by_key[k] = i;
    } else {
        rt->mismatches++;
    }
    rt->received++;
    cq_consumer_done(rt->c, m->topic, m->partition, m->offset);
}

struct readyflag {
    struct cq_producer *p;
    int ready;
};
static void poll_ready(uv_timer_t *t) {
    struct readyflag *r = t->data;
    if (cq_producer_ready(r->p)) r->ready = 1;
}

TEST(produce_consume_roundtrip) {
    struct cq_err err = {0};
    static struct roundtrip rt;
    memset(&rt, 0, sizeof(rt));
    rt_global = &rt;
    for (int k = 0; k < NKEYS; k++)
        rt.last_index_by_key[k] = -1;

    struct cq_loop *l = cq_loop_new(&err);
    struct cq_producer *p = cq_producer_new(bootstrap, 10000, l, NULL, &err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "  producer: %s\n", err.msg);
        cq_loop_free(l);
        return;
    }
    /* Readiness comes from the background probe within a few seconds. */
    struct readyflag rf = {p, 0};
    uv_timer_t rt_timer;
    uv_timer_init(cq_loop_uv(l), &rt_timer);
    rt_timer.data = &rf;
    uv_timer_start(&rt_timer, poll_ready, 50, 50);
    CHECK(run_until(l, &rf.ready, 1, 5000));
    uv_close((uv_handle_t *)&rt_timer, NULL);

    for (int i = 0; i < NMSG; i++) {
        char key[32], hdr[64];
        unsigned char val[128];
        size_t vlen;
        make_msg(i, key, sizeof(key), val, &vlen, hdr, sizeof(hdr));
        const char *headers[] = {"x-req", hdr, "x-n", "1", NULL};
        enum cq_rc rc = cq_producer_send(p, topic3, key, strlen(key), val, vlen, headers,
                                         count_report, &rt.sent[i], &err);
        CHECK(rc == CQ_OK);
    }
    /* An invalid send is refused up front and never reported. */
    const char *odd[] = {"x-req", NULL};
    CHECK(cq_producer_send(p, topic3, NULL, 0, "x", 1, odd, count_report, &rt.sent[0], &err) ==
          CQ_EINVAL);
    CHECK(run_until(l, &rt.reported, NMSG, 20000));
    CHECK(rt.reported == NMSG);
    CHECK(rt.report_ok == NMSG);
    int bad = 0, key_part_mismatch = 0, offset_order = 0;
    int32_t part_of_key[NKEYS];
    int64_t last_off_of_key[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        part_of_key[k] = -1, last_off_of_key[k] = -1;
    for (int i = 0; i < NMSG; i++) {
        struct sent *s = &rt.sent[i];
        if (s->reports != 1 || s->rc != CQ_OK || s->partition < 0 || s->partition > 2 ||
            s->offset < 0)
            bad++;
        int k = i % NKEYS;
        if (part_of_key[k] < 0)
            part_of_key[k] = s->partition;
        else if (part_of_key[k] != s->partition)
            key_part_mismatch++;
        if (s->offset <= last_off_of_key[k]) offset_order++;
        last_off_of_key[k] = s->offset;
    }
    CHECK(bad == 0);
    CHECK(key_part_mismatch == 0);
    CHECK(offset_order == 0);
    CHECK(cq_producer_outq(p) == 0);
    int used[3] = {0};
    for (int k = 0; k < NKEYS; k++)
        if (part_of_key[k] >= 0) used[part_of_key[k]] = 1;
    printf("  200 reports, keys spread over %d of 3 partitions\n", used[0] + used[1] + used[2]);

    const char *topics[] = {topic3, NULL};
    rt.c = cq_consumer_new(bootstrap, cqtest_unique("cqt.group.rt"), topics, l, on_roundtrip_msg,
                           &rt, NULL, &err);
    CHECK(rt.c != NULL);
    if (rt.c) {
        uint64_t t0 = cq_now_ms();
        CHECK(run_until(l, &rt.received, NMSG, 30000));
        printf("  consumed %d in %llu ms\n", rt.received, (unsigned long long)(cq_now_ms() - t0));
        CHECK(rt.received == NMSG);
        CHECK(rt.mismatches == 0);
        CHECK(rt.dupes == 0);
        CHECK(rt.order_violations == 0);
        int missing = 0;
        for (int i = 0; i < NMSG; i++)
            missing += rt.got[i] == 0;
        CHECK(missing == 0);
        CHECK(cq_consumer_commit_now(rt.c, &err) == CQ_OK);
    }
    cq_consumer_free(rt.c);
    cq_producer_free(p);
    cq_loop_free(l);
}

/* Manual commits: consume 10, finish 0..4 and 6 but not 5; the next member restarts at 5. */
struct gap {
    struct cq_consumer *c;
    int received;
    int64_t offs[64];
    bool skip5;
};

static void on_gap_msg(void *opaque, const struct cq_message *m) {
    struct gap *g = opaque;
    if (g->received < 64) g->offs[g->received] = m->offset;
    g->received++;
    if (!g->skip5 || m->offset <= 4 || m->offset == 6)
        cq_consumer_done(g->c, m->topic, m->partition, m->offset);
}

static int delivered_sync;
static void on_sync_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                           int64_t offset) {
    (void)opaque, (void)errstr, (void)partition, (void)offset;
    if (rc == CQ_OK) delivered_sync++;
}

TEST(manual_commit_restarts_at_gap) {
    struct cq_err err = {0};
    char topic[128], group[128];
    snprintf(topic, sizeof(topic), "%s", cqtest_unique("cqt.kafka.gap"));
    snprintf(group, sizeof(group), "%s", cqtest_unique("cqt.group.gap"));
    const char *topics[] = {topic, NULL};
    CHECK(cq_kafka_ensure_topics(bootstrap, topics, 1, 1, 20000, &err) == CQ_OK);

    /* Loop-less producer: reports are served by flush/poll on this thread. */
    struct cq_producer *p = cq_producer_new(bootstrap, 10000, NULL, NULL, &err);
    CHECK(p != NULL);
    if (!p) return;
    CHECK(cq_producer_ready(p));
    delivered_sync = 0;
    for (int i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof(v), "gap-%d", i);
        CHECK(cq_producer_send(p, topic, NULL, 0, v, strlen(v), NULL, on_sync_report, NULL, &err) ==
              CQ_OK);
    }
    CHECK(cq_producer_flush(p, 10000) == CQ_OK);
    CHECK(delivered_sync == 10);
    cq_producer_free(p);

    struct cq_loop *l = cq_loop_new(&err);
    struct gap a = {.skip5 = true};
    a.c = cq_consumer_new(bootstrap, group, topics, l, on_gap_msg, &a, NULL, &err);
    CHECK(a.c != NULL);
    if (!a.c) goto out;
    CHECK(run_until(l, &a.received, 10, 30000));
    CHECK(a.received == 10);
    for (int i = 0; i < 10 && i < a.received; i++)
        CHECK(a.offs[i] == i);
    cq_consumer_free(a.c); /* commits 5: offsets 0..4 are done, 5 is not */

    struct gap b = {.skip5 = false};
    b.c = cq_consumer_new(bootstrap, group, topics, l, on_gap_msg, &b, NULL, &err);
    CHECK(b.c != NULL);
    if (!b.c) goto out;
    CHECK(run_until(l, &b.received, 5, 30000));
    /* Give a wrongly rewound consumer the chance to show more than 5 messages. */
    int never = 0;
    run_until(l, &never, 1, 1000);
    CHECK(b.received == 5);
    for (int i = 0; i < 5 && i < b.received; i++)
        CHECK(b.offs[i] == 5 + i);
    printf("  second member started at offset %lld and got %d messages\n",
           b.received ? (long long)b.offs[0] : -1LL, b.received);
    cq_consumer_free(b.c);
out:
    cq_loop_free(l);
}

/* Loop-less consumer driven by cq_consumer_poll: paused before its assignment arrives it
 * fetches nothing; resumed, it gets everything. */
struct counted {
    struct cq_consumer *c;
    int received;
};
static void on_counted_msg(void *opaque, const struct cq_message *m) {
    struct counted *k = opaque;
    k->received++;
    cq_consumer_done(k->c, m->topic, m->partition, m->offset);
}

TEST(pause_and_poll_without_loop) {
    struct cq_err err = {0};
    char topic[128];
    snprintf(topic, sizeof(topic), "%s", cqtest_unique("cqt.kafka.pause"));
    const char *topics[] = {topic, NULL};
    CHECK(cq_kafka_ensure_topics(bootstrap, topics, 2, 1, 20000, &err) == CQ_OK);
    struct cq_producer *p = cq_producer_new(bootstrap, 10000, NULL, NULL, &err);
    CHECK(p != NULL);
    if (!p) return;
    for (int i = 0; i < 5; i++)
        CHECK(cq_producer_send(p, topic, "k", 1, "paused", 6, NULL, NULL, NULL, &err) == CQ_OK);
    CHECK(cq_producer_flush(p, 10000) == CQ_OK);
    cq_producer_free(p);

    struct counted k = {0};
    k.c = cq_consumer_new(bootstrap, cqtest_unique("cqt.group.pause"), topics, NULL, on_counted_msg,
                          &k, NULL, &err);
    CHECK(k.c != NULL);
    if (!k.c) return;
    cq_consumer_pause(k.c, true);
    uint64_t until = cq_now_ms() + 4000;
    while (cq_now_ms() < until)
        cq_consumer_poll(k.c, 100, 100);
    CHECK(k.received == 0);
    cq_consumer_pause(k.c, false);
    until = cq_now_ms() + 15000;
    while (k.received < 5 && cq_now_ms() < until)
        cq_consumer_poll(k.c, 100, 100);
    CHECK(k.received == 5);
    CHECK(cq_consumer_commit_now(k.c, &err) == CQ_OK);
    printf("  paused 4 s: 0 messages; resumed: %d\n", k.received);
    cq_consumer_free(k.c);
}

/* No broker: reports fail within the delivery timeout, readiness stays false. */
struct down {
    int reports, ok;
    uint64_t t_report;
    char errstr[128];
};
static void on_down_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                           int64_t offset) {
    (void)partition, (void)offset;
    struct down *d = opaque;
    d->reports++;
    if (rc == CQ_OK) d->ok++;
    if (!d->t_report) d->t_report = cq_now_ms();
    snprintf(d->errstr, sizeof(d->errstr), "%s", errstr ? errstr : "");
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        cqtest_fatal("no free port");
    close(s);
    return ntohs(a.sin_port);
}

TEST(unreachable_broker_reports_in_time) {
    struct cq_err err = {0};
    char brokers[64];
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", free_port());
    struct cq_loop *l = cq_loop_new(&err);
    struct cq_producer *p = cq_producer_new(brokers, 1500, l, NULL, &err);
    CHECK(p != NULL);
    if (!p) {
        cq_loop_free(l);
        return;
    }
    struct down d = {0};
    uint64_t t0 = cq_now_ms();
    for (int i = 0; i < 3; i++)
        CHECK(cq_producer_send(p, "cqt.nowhere", "k", 1, "v", 1, NULL, on_down_report, &d, &err) ==
              CQ_OK);
    CHECK(run_until(l, &d.reports, 3, 8000));
    uint64_t took = d.t_report ? d.t_report - t0 : 0;
    printf("  first failed report after %llu ms: %s\n", (unsigned long long)took, d.errstr);
    CHECK(d.reports == 3);
    CHECK(d.ok == 0);
    CHECK(took >= 1000 && took < 4000);
    CHECK(d.errstr[0] != '\0');
    CHECK(!cq_producer_ready(p));
    cq_producer_free(p);
    cq_loop_free(l);

    /* Loop-less readiness probes synchronously: false here, true on the fixture. */
    p = cq_producer_new(brokers, 1500, NULL, NULL, &err);
    CHECK(p && !cq_producer_ready(p));
    cq_producer_free(p);
    p = cq_producer_new(bootstrap, 1500, NULL, NULL, &err);
    CHECK(p && cq_producer_ready(p));
    cq_producer_free(p);

    const char *topics[] = {"cqt.nowhere", NULL};
    t0 = cq_now_ms();
    CHECK(cq_kafka_ensure_topics(brokers, topics, 1, 1, 1000, &err) == CQ_ETIMEOUT);
    CHECK(cq_now_ms() - t0 < 4000);
}

/* The full report (cq_producer_send_r): what the broker may hold of each message. */
struct rep {
    int reports, ok;
    enum cq_persisted persisted[8];
};
static void on_rep(void *opaque, const struct cq_delivery_report *r) {
    struct rep *x = opaque;
    if (x->reports < 8) x->persisted[x->reports] = r->persisted;
    x->reports++;
    if (r->rc == CQ_OK) x->ok++;
}

/* Issue 19: a message never sent is NOT_PERSISTED (safe to retry); an acknowledged one
 * PERSISTED; a fatal idempotent-producer error makes the producer unready with a reason and a
 * metric, since every later produce fails. */
TEST(persistence_status_and_fatal_error) {
    struct cq_err err = {0};
    char brokers[64];
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", free_port());
    struct cq_loop *l = cq_loop_new(&err);
    struct cq_producer *p = cq_producer_new(brokers, 500, l, NULL, &err);
    struct rep r = {0};
    CHECK(p &&
          cq_producer_send_r(p, "cqt.nowhere", "k", 1, "v", 1, NULL, on_rep, &r, &err) == CQ_OK);
    CHECK(run_until(l, &r.reports, 1, 5000));
    CHECK(r.ok == 0 && r.persisted[0] == CQ_NOT_PERSISTED);
    cq_producer_free(p);

    p = cq_producer_new(bootstrap, 5000, l, NULL, &err);
    CHECK(p != NULL);
    if (!p) {
        cq_loop_free(l);
        return;
    }
    memset(&r, 0, sizeof(r));
    CHECK(cq_producer_send_r(p, topic3, "k", 1, "v", 1, NULL, on_rep, &r, &err) == CQ_OK);
    CHECK(run_until(l, &r.reports, 1, 10000));
    CHECK(r.ok == 1 && r.persisted[0] == CQ_PERSISTED);
    uint64_t deadline = cq_now_ms() + 5000;
    while (!cq_producer_ready(p) && cq_now_ms() < deadline)
        uv_run(cq_loop_uv(l), UV_RUN_NOWAIT), usleep(20000);
    CHECK(cq_producer_ready(p));
    CHECK(cq_producer_fatal(p) == NULL);

    cq_producer_test_fatal(p, "injected by test_kafka");
    deadline = cq_now_ms() + 5000;
    while (!cq_producer_fatal(p) && cq_now_ms() < deadline)
        uv_run(cq_loop_uv(l), UV_RUN_NOWAIT), usleep(20000);
    const char *why = cq_producer_fatal(p);
    CHECK(why != NULL);
    if (why) CHECK_CONTAINS(why, "injected by test_kafka");
    CHECK(!cq_producer_ready(p));
    size_t len = 0;
    char *m = cq_metrics_render(&len);
    CHECK(m && strstr(m, "chatops_kafka_producer_fatal_total 1"));
    free(m);
    /* every later produce fails: refused at once, or reported as failed */
    memset(&r, 0, sizeof(r));
    if (cq_producer_send_r(p, topic3, "k", 1, "v", 1, NULL, on_rep, &r, &err) == CQ_OK) {
        CHECK(run_until(l, &r.reports, 1, 10000));
        CHECK(r.ok == 0);
    }
    cq_producer_free(p);
    cq_loop_free(l);
}

TEST(bad_arguments) {
    struct cq_err err = {0};
    const char *bogus[] = {"no.such.property", "1", NULL};
    CHECK(cq_producer_new(bootstrap, 1000, NULL, bogus, &err) == NULL);
    CHECK(err.code == CQ_ECONFIG);
    CHECK_CONTAINS(err.msg, "no.such.property");
    const char *secret[] = {"sasl.password", NULL};
    CHECK(cq_producer_new(bootstrap, 1000, NULL, secret, &err) == NULL);
    CHECK(cq_producer_new(NULL, 1000, NULL, NULL, &err) == NULL);
    const char *topics[] = {"t", NULL};
    CHECK(cq_consumer_new(bootstrap, "", topics, NULL, on_gap_msg, NULL, NULL, &err) == NULL);
    CHECK(err.code == CQ_EINVAL);
    cq_producer_free(NULL);
    cq_consumer_free(NULL);
    CHECK(cq_message_header(NULL, "x", NULL) == NULL);
}

/* Lazy reports (cq_producer_lazy_reports, the worker's producer): no wake-up per report,
 * yet with the loop otherwise idle every report still arrives once, through the fallback
 * timer (the 1 s readiness tick would be the only other wake-up); free reports the rest. */
struct lazy {
    int reports, ok;
    uint64_t last;
};
static void on_lazy_report(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                           int64_t offset) {
    (void)errstr, (void)partition, (void)offset;
    struct lazy *z = opaque;
    z->reports++;
    if (rc == CQ_OK) z->ok++;
    z->last = cq_now_ms();
}

TEST(lazy_reports) {
    struct cq_err err = {0};
    struct cq_loop *l = cq_loop_new(&err);
    struct cq_producer *p = cq_producer_new(bootstrap, 5000, l, NULL, &err);
    CHECK(p != NULL);
    if (!p) {
        cq_loop_free(l);
        return;
    }
    struct lazy z = {0};
    /* warm: metadata and the connection, so the timing below is the reports' own */
    CHECK(cq_producer_send(p, topic3, "w", 1, "w", 1, NULL, on_lazy_report, &z, &err) == CQ_OK);
    CHECK(run_until(l, &z.reports, 1, 10000));
    cq_producer_lazy_reports(p, 20);
    memset(&z, 0, sizeof(z));
    uint64_t t0 = cq_now_ms();
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "lazy-%d", i);
        CHECK(cq_producer_send(p, topic3, k, strlen(k), "v", 1, NULL, on_lazy_report, &z, &err) ==
              CQ_OK);
    }
    /* no helper timer here: only the producer's own handles can wake the loop */
    while (z.reports < 50 && cq_now_ms() - t0 < 5000)
        uv_run(cq_loop_uv(l), UV_RUN_ONCE);
    CHECK(z.reports == 50 && z.ok == 50);
    uint64_t took = z.last - t0;
    CHECK(took < 800); /* the fallback timer, not the 1 s readiness tick */
    CHECK(cq_producer_outq(p) == 0);
    struct lazy left = {0};
    for (int i = 0; i < 10; i++)
        CHECK(cq_producer_send(p, topic3, "x", 1, "v", 1, NULL, on_lazy_report, &left, &err) ==
              CQ_OK);
    cq_producer_free(p); /* flushes: each report once */
    CHECK(left.reports == 10 && left.ok == 10);
    printf("  lazy reports: 50 reported once in %llu ms with the loop otherwise idle; 10 more "
           "reported by free\n",
           (unsigned long long)took);
    cq_loop_free(l);
}

/* An optional argument runs only the tests whose name contains it (for debugging). */
#define RUN_IF(name)                                                                               \
    do {                                                                                           \
        if (!only || strstr(#name, only)) RUN(name);                                               \
    } while (0)

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    cq_log_init("test_kafka", CQ_LOG_WARN);
    bootstrap = cqtest_kafka_bootstrap();
    printf("broker %s\n", bootstrap);
    RUN_IF(bad_arguments);
    if (!only || strstr("produce_consume_roundtrip", only)) RUN(ensure_topics);
    RUN_IF(produce_consume_roundtrip);
    RUN_IF(manual_commit_restarts_at_gap);
    RUN_IF(pause_and_poll_without_loop);
    RUN_IF(unreachable_broker_reports_in_time);
    RUN_IF(persistence_status_and_fatal_error);
    if (!only || strstr("lazy_reports", only)) RUN(lazy_reports);
    printf("checked: topics created with 3 partitions and idempotent re-creation; 200 messages "
           "each reported once OK and consumed back byte-for-byte (key, payload, header) with "
           "per-key partition and order; a new group member restarts at the first unfinished "
           "offset; a paused loop-less consumer fetches nothing until resumed; with no broker, "
           "reports fail within the delivery timeout and readiness "
           "is false\n");
    return cqtest_done();
}
