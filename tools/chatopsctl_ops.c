/* chatopsctl pipelines / dlq / audit: look into the running stack. `pipelines` reads the tracker's
 * Redis keys (layout at the top of worker/pipeline.h); `dlq` reads the dead-letter topic from
 * the beginning without joining any group's offsets, decodes each letter with common/envelope
 * (the one dead-letter schema, and version 1 letters), and replays a dead letter's original
 * message to the topic it came from; `audit` lists the audit topic's records, decoded the same
 * way. Blocking calls: this is a CLI. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "chatopsctl.h"
#include "crypto.h"
#include "envelope.h"
#include "kafka.h"
#include "redis.h"

/* ------------------------------------------------------------------ pipelines */

static const char *field(const redisReply *h, const char *name) {
    if (!h || h->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && !strcmp(h->element[i]->str, name) &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

static void fmt_age(long long ms, char *out, size_t n) {
    long long s = ms / 1000;
    if (ms < 0)
        snprintf(out, n, "?");
    else if (s < 120)
        snprintf(out, n, "%llds", s);
    else if (s < 7200)
        snprintf(out, n, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, n, "%lldh%02lldm", s / 3600, (s / 60) % 60);
}

int cq_ctl_pipelines_usage(int argc, char **argv) {
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "chatopsctl: pipelines takes no arguments (try --help)\n");
        return 2;
    }
    return 0;
}

int cq_ctl_pipelines(const struct cq_config *cfg, int argc, char **argv) {
    struct cq_err err = {0};
    redisReply *due = NULL;
    int rc = 1;
    (void)argv;
    if (cq_ctl_pipelines_usage(argc, argv)) return 2;
    redisContext *c = cq_redis_connect_cfg_sync(cfg, 3000, &err);
    if (!c) {
        fprintf(stderr, "chatopsctl: pipelines: %s\n", err.msg);
        return 1;
    }
    const char *p = cfg->redis.prefix;
    due = redisCommand(c, "ZRANGE %spl:due 0 -1", p);
    if (!due || due->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "chatopsctl: pipelines: ZRANGE %spl:due failed: %s\n", p,
                due && due->type == REDIS_REPLY_ERROR ? due->str : c->errstr);
        goto out;
    }
    if (due->elements == 0) {
        printf("no pipelines in flight\n");
        rc = 0;
        goto out;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    printf("%-36s  %-9s  %-9s  %-14s  %-20s  %-8s  %s\n", "REQUEST", "PIPELINE", "STATUS",
           "REQUESTER", "WORKER", "AGE", "COMMAND");
    for (size_t i = 0; i < due->elements; i++) {
        const char *id = due->element[i]->str;
        if (due->element[i]->type != REDIS_REPLY_STRING) continue;
        redisReply *h = redisCommand(c, "HGETALL %spl:%s", p, id);
        redisReply *lease = redisCommand(c, "GET %spl:lease:%s", p, id);
        const char *req = field(h, "req"), *created = field(h, "created");
        cJSON *rj = req ? cJSON_Parse(req) : NULL;
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(rj, "user");
        const cJSON *un = cJSON_GetObjectItemCaseSensitive(user, "name");
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(user, "id");
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(rj, "command");
        const cJSON *txt = cJSON_GetObjectItemCaseSensitive(rj, "text");
        char age[32], pl[32], who[64];
        fmt_age(created ? now_ms - strtoll(created, NULL, 10) : -1, age, sizeof age);
        snprintf(pl, sizeof pl, "#%s", field(h, "pid") ? field(h, "pid") : "?");
        snprintf(who, sizeof who, "%s",
                 cJSON_IsString(un) && *un->valuestring ? un->valuestring
                 : cJSON_IsString(uid)                  ? uid->valuestring
                                                        : "?");
        /* what the user typed (command + text), else the tracker's label */
        const char *label = field(h, "label");
        bool typed = cJSON_IsString(cmd) && *cmd->valuestring;
        printf("%-36s  %-9s  %-9s  %-14s  %-20s  %-8s  %s%s%s\n", id, pl,
               field(h, "status") ? field(h, "status") : "?", who,
               lease && lease->type == REDIS_REPLY_STRING ? lease->str : "(none: due)", age,
               typed   ? cmd->valuestring
               : label ? label
                       : "?",
               typed && cJSON_IsString(txt) && *txt->valuestring ? " " : "",
               typed && cJSON_IsString(txt) ? txt->valuestring : "");
        cJSON_Delete(rj);
        if (h) freeReplyObject(h);
        if (lease) freeReplyObject(lease);
    }
    rc = 0;
out:
    if (due) freeReplyObject(due);
    redisFree(c);
    return rc;
}

/* ------------------------------------------------------------------ dlq */

struct dead {
    int32_t partition;
    int64_t offset;
    struct cq_dlq letter; /* decoded by common/envelope (v2, or a v1 letter) when ok */
    bool ok;
    char why[256]; /* why it is not a dead letter, when !ok */
    char *raw;     /* the message as read (NUL-terminated) */
    size_t len;
};

static void deads_free(struct dead *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cq_dlq_clear(&d[i].letter);
        free(d[i].raw);
    }
    free(d);
}

/* Reads every message on topic (all partitions, beginning to the current end) with an
 * assign()ed consumer: no group offsets are read or committed. Errors name `what`. */
static int read_topic(const char *what, const char *brokers, const char *const *kconf,
                      const char *topic, struct dead **out, size_t *n_out) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    struct dead *d = NULL;
    size_t n = 0, cap = 0;
    int64_t *high = NULL;
    char *done = NULL;
    int rc = 1;
    char group[64], uuid[CQ_UUID_LEN + 1];
    if (cq_uuid4(uuid) != CQ_OK) snprintf(uuid, sizeof uuid, "%ld", (long)time(NULL));
    snprintf(group, sizeof group, "chatopsctl-%s", uuid);
    if (!conf || rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr)) {
        fprintf(stderr, "chatopsctl: %s: kafka config: %s\n", what,
                conf ? errstr : "out of memory");
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    struct cq_err kerr = {0};
    if (cq_kafka_conf_apply(conf, "consumer", kconf, &kerr) != CQ_OK) {
        fprintf(stderr, "chatopsctl: %s: %s\n", what, kerr.msg);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "chatopsctl: %s: %s\n", what, errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "chatopsctl: %s: metadata of %s at %s: %s\n", what, topic, brokers,
                rd_kafka_err2str(e               ? e
                                 : md->topic_cnt ? md->topics[0].err
                                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    int np = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(np);
    high = calloc((size_t)np + 1, sizeof *high);
    done = calloc((size_t)np + 1, 1);
    if (!parts || !high || !done) {
        fprintf(stderr, "chatopsctl: %s: out of memory\n", what);
        goto out;
    }
    int pending = 0;
    for (int i = 0; i < np; i++) {
        int32_t pid = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        /* a topic created a moment ago has no leader yet: ask again for a few seconds */
        for (int tries = 0; tries < 50; tries++) {
            e = rd_kafka_query_watermark_offsets(rk, topic, pid, &lo, &hi, 10000);
            if (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
                e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
                break;
            rd_kafka_poll(rk, 200);
        }
        if (e) {
            fprintf(stderr, "chatopsctl: %s: offsets of %s/%d: %s\n", what, topic, pid,
                    rd_kafka_err2str(e));
            goto out;
        }
        if (pid < 0 || pid >= np) continue;
        high[pid] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, pid)->offset = lo;
            pending++;
        }
    }
    if (pending && (e = rd_kafka_assign(rk, parts))) {
        fprintf(stderr, "chatopsctl: %s: assign: %s\n", what, rd_kafka_err2str(e));
        goto out;
    }
    time_t deadline = time(NULL) + 30;
    while (pending > 0) {
        if (time(NULL) > deadline) {
            fprintf(stderr, "chatopsctl: %s: timed out reading %s\n", what, topic);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < np && !done[m->partition]) {
                done[m->partition] = 1;
                pending--;
            }
        } else if (m->err) {
            fprintf(stderr, "chatopsctl: %s: %s\n", what, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else if (m->partition >= 0 && m->partition < np && !done[m->partition]) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct dead *nd = realloc(d, nc * sizeof *nd);
                if (!nd) {
                    rd_kafka_message_destroy(m);
                    fprintf(stderr, "chatopsctl: %s: out of memory\n", what);
                    goto out;
                }
                d = nd;
                cap = nc;
            }
            struct dead *x = &d[n];
            memset(x, 0, sizeof *x); /* the letter is decoded (and cleared) only for dlq */
            x->partition = m->partition;
            x->offset = m->offset;
            x->raw = malloc(m->len + 1);
            if (!x->raw) {
                rd_kafka_message_destroy(m);
                fprintf(stderr, "chatopsctl: %s: out of memory\n", what);
                goto out;
            }
            if (m->len) memcpy(x->raw, m->payload, m->len);
            x->raw[m->len] = '\0';
            x->len = m->len;
            n++;
            /* up to the end seen at start: that partition is done (later ones are not ours) */
            if (m->partition >= 0 && m->partition < np && !done[m->partition] &&
                m->offset + 1 >= high[m->partition]) {
                done[m->partition] = 1;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    *out = d;
    *n_out = n;
    d = NULL;
    n = 0;
    rc = 0;
out:
    deads_free(d, n);
    free(high);
    free(done);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* The original message of a dead letter: topic, key and payload (new strings; caller frees).
 * A version 1 notifier letter that named no source came from the results topic. */
static int original_of(const struct dead *x, const char *results_topic, char **topic, char **key,
                       char **payload, size_t *len) {
    const struct cq_dlq *l = &x->letter;
    *topic = *key = *payload = NULL;
    if (!x->ok || !l->payload) return -1;
    *topic = strdup(l->topic ? l->topic : results_topic);
    *key = strdup(l->request_id ? l->request_id : "");
    *payload = malloc(l->payload_len + 1);
    if (*payload) {
        memcpy(*payload, l->payload, l->payload_len);
        (*payload)[l->payload_len] = '\0';
        *len = l->payload_len;
    }
    if (!*topic || !*key || !*payload) {
        free(*topic);
        free(*key);
        free(*payload);
        *topic = *key = *payload = NULL;
        return -1;
    }
    return 0;
}

/* The line above a list of a topic's records; returns the index of the first one to show
 * (the latest max). */
static size_t list_header(size_t n, long max, const char *what, const char *topic) {
    size_t from = n > (size_t)max ? n - (size_t)max : 0;
    if (n == 0)
        printf("%s is empty\n", topic);
    else
        printf("%zu %s on %s%s\n", n, what, topic,
               from ? " (the latest shown; --max N for more)" : "");
    return from;
}

static void print_dead(const struct dead *x, const char *results_topic) {
    char *topic = NULL, *key = NULL, *payload = NULL;
    size_t len = 0;
    const struct cq_dlq *l = &x->letter;
    if (!x->ok) {
        printf("%d:%" PRId64 "  ?  not a dead letter (%s)\n    %.300s\n", x->partition, x->offset,
               x->why, x->raw);
        return;
    }
    printf("%d:%" PRId64 "  %s  reason: %s", x->partition, x->offset, l->service, l->reason);
    if (l->cls) printf("  class: %s", l->cls);
    if (l->attempts > 0) printf("  attempts: %d", l->attempts);
    if (original_of(x, results_topic, &topic, &key, &payload, &len) == 0) {
        printf("\n    original (%s): %.*s%s\n", topic, (int)(len > 300 ? 300 : len), payload,
               len > 300 ? "…" : "");
    } else {
        printf("\n    (no original message in it) %.300s\n", x->raw);
    }
    free(topic);
    free(key);
    free(payload);
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    int *failed = m->_private;
    if (m->err) {
        fprintf(stderr, "chatopsctl: dlq replay: %s: %s\n", rd_kafka_topic_name(m->rkt),
                rd_kafka_err2str(m->err));
        if (failed) (*failed)++;
    }
}

static int replay(const struct cq_config *cfg, struct dead *d, size_t n, const char *which) {
    char errstr[512];
    int failed = 0, sent = 0, rc = 1;
    int32_t want_p = -1;
    int64_t want_o = -1;
    bool all = !strcmp(which, "--all");
    if (!all) {
        char *end;
        const char *colon = strchr(which, ':');
        if (colon) {
            want_p = (int32_t)strtol(which, &end, 10);
            if (end != colon) goto usage;
            which = colon + 1;
        }
        want_o = strtoll(which, &end, 10);
        if (*end || !*which || want_o < 0) goto usage;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf ||
        rd_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof errstr)) {
        fprintf(stderr, "chatopsctl: dlq replay: kafka config: %s\n", conf ? errstr : "oom");
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    struct cq_err kerr = {0};
    if (cq_kafka_conf_apply(conf, "producer", cfg->kafka.client_conf, &kerr) != CQ_OK) {
        fprintf(stderr, "chatopsctl: dlq replay: %s\n", kerr.msg);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "chatopsctl: dlq replay: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int matched = 0;
    for (size_t i = 0; i < n; i++) {
        if (!all && (d[i].offset != want_o || (want_p >= 0 && d[i].partition != want_p))) continue;
        matched++;
        if (!all && want_p < 0 && matched > 1) {
            fprintf(stderr,
                    "chatopsctl: dlq replay: offset %" PRId64
                    " is on several partitions; say which as P:OFFSET\n",
                    want_o);
            goto out;
        }
    }
    if (matched == 0) {
        fprintf(stderr, "chatopsctl: dlq replay: no dead letter %s on %s\n", all ? "at all" : which,
                cfg->kafka.topic_dlq);
        rc = all ? 0 : 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!all && (d[i].offset != want_o || (want_p >= 0 && d[i].partition != want_p))) continue;
        char *topic = NULL, *key = NULL, *payload = NULL;
        size_t len = 0;
        if (original_of(&d[i], cfg->kafka.topic_results, &topic, &key, &payload, &len) != 0) {
            fprintf(stderr, "chatopsctl: dlq replay: %d:%" PRId64 " has no original message\n",
                    d[i].partition, d[i].offset);
            failed++;
            continue;
        }
        rd_kafka_resp_err_t e =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(payload, len),
                              RD_KAFKA_V_OPAQUE(&failed), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "chatopsctl: dlq replay: %s: %s\n", topic, rd_kafka_err2str(e));
            failed++;
        } else {
            printf("replayed %d:%" PRId64 " -> %s\n", d[i].partition, d[i].offset, topic);
            sent++;
        }
        free(topic);
        free(key);
        free(payload);
    }
    if (rd_kafka_flush(rk, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "chatopsctl: dlq replay: not confirmed by Kafka within 15 s\n");
        goto out;
    }
    rc = failed ? 1 : 0;
    if (!failed) printf("%d message(s) re-published\n", sent);
out:
    rd_kafka_destroy(rk);
    return rc;
usage:
    fprintf(stderr, "chatopsctl: dlq replay wants P:OFFSET, OFFSET or --all (try --help)\n");
    return 2;
}

/* `<what> list [--max N]`: argv starts at "list". */
static int list_args(const char *what, int argc, char **argv, long *max) {
    if (argc < 1 || strcmp(argv[0], "list") != 0) {
        fprintf(stderr, "chatopsctl: %s wants list%s (try --help)\n", what,
                strcmp(what, "dlq") == 0 ? " or replay" : "");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--max") && i + 1 < argc) {
            *max = strtol(argv[++i], &end, 10);
            if (*end || *max <= 0) {
                fprintf(stderr, "chatopsctl: %s list: --max wants a number > 0\n", what);
                return 2;
            }
        } else {
            fprintf(stderr, "chatopsctl: %s list: unknown argument %s (try --help)\n", what,
                    argv[i]);
            return 2;
        }
    }
    return 0;
}

static int dlq_args(int argc, char **argv, long *max) {
    const char *sub = argc > 0 ? argv[0] : "";
    if (!strcmp(sub, "list")) {
        return list_args("dlq", argc, argv, max);
    } else if (!strcmp(sub, "replay")) {
        if (argc != 2) {
            fprintf(stderr, "chatopsctl: dlq replay wants P:OFFSET, OFFSET or --all\n");
            return 2;
        }
    } else {
        fprintf(stderr, "chatopsctl: dlq wants list or replay (try --help)\n");
        return 2;
    }
    return 0;
}

int cq_ctl_dlq_usage(int argc, char **argv) {
    long max = 50;
    return dlq_args(argc, argv, &max);
}

int cq_ctl_dlq(const struct cq_config *cfg, int argc, char **argv) {
    struct dead *d = NULL;
    size_t n = 0;
    long max = 50;
    int rc;
    const char *sub = argc > 0 ? argv[0] : "";
    if (dlq_args(argc, argv, &max)) return 2;
    if (read_topic("dlq", cfg->kafka.brokers, cfg->kafka.client_conf, cfg->kafka.topic_dlq, &d,
                   &n) != 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        struct cq_err err = {0};
        d[i].ok = cq_dlq_decode(d[i].raw, d[i].len, CQ_DLQ_MAX_LEN, &d[i].letter, &err) == CQ_OK;
        if (!d[i].ok) snprintf(d[i].why, sizeof d[i].why, "%s", err.msg);
    }
    if (!strcmp(sub, "list")) {
        size_t from = list_header(n, max, "dead letter(s)", cfg->kafka.topic_dlq);
        for (size_t i = from; i < n; i++)
            print_dead(&d[i], cfg->kafka.topic_results);
        rc = 0;
    } else {
        rc = replay(cfg, d, n, argv[1]);
    }
    deads_free(d, n);
    return rc;
}

/* ------------------------------------------------------------------ audit */

static void print_audit(const struct dead *x) {
    struct cq_audit a;
    struct cq_err err = {0};
    if (cq_audit_decode(x->raw, x->len, 0, &a, &err) != CQ_OK) {
        printf("%d:%" PRId64 "  not an audit record (%s)\n    %.300s\n", x->partition, x->offset,
               err.msg, x->raw);
        return;
    }
    printf("%d:%" PRId64 "  %s  %s  %s  %s@%s  %s", x->partition, x->offset, a.time, a.kind,
           a.request_id,
           a.user_name ? a.user_name
           : a.user_id ? a.user_id
                       : "?",
           a.platform ? a.platform : "?", a.command ? a.command : "");
    if (a.decision) printf("  decision: %s", a.decision);
    if (a.rule) printf("  rule: %s", a.rule);
    if (a.result) printf("  result: %s", a.result);
    if (a.pipeline_id) printf("  pipeline: %lld", a.pipeline_id);
    printf("\n");
    cq_audit_clear(&a);
}

int cq_ctl_audit_usage(int argc, char **argv) {
    long max = 50;
    return list_args("audit", argc, argv, &max);
}

int cq_ctl_audit(const struct cq_config *cfg, int argc, char **argv) {
    struct dead *d = NULL;
    size_t n = 0;
    long max = 50;
    if (list_args("audit", argc, argv, &max)) return 2;
    if (!cfg->kafka.topic_audit) {
        fprintf(stderr, "chatopsctl: audit: no kafka.topics.audit configured\n");
        return 1;
    }
    if (read_topic("audit", cfg->kafka.brokers, cfg->kafka.client_conf, cfg->kafka.topic_audit, &d,
                   &n) != 0)
        return 1;
    size_t from = list_header(n, max, "audit record(s)", cfg->kafka.topic_audit);
    for (size_t i = from; i < n; i++)
        print_audit(&d[i]);
    deads_free(d, n);
    return 0;
}
