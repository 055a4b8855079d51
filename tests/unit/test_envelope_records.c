/* test_envelope_records: the audit record and the dead letter of common/envelope: each
 * round-trips through its one encoder and decoder with the field names docs/operations.md
 * and the services' tests rely on; the previous shapes still sitting in topics (audit
 * records of the request path and of the pipeline tracker, version 1 dead letters of the
 * worker and of the notifier) decode; bad records are refused with the field named. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "envelope.h"

static void fill_audit(struct cq_audit *a, struct cq_audit_arg *args) {
    memset(a, 0, sizeof(*a));
    a->kind = "decision";
    a->time = "2026-01-02T03:04:05.678Z";
    a->request_id = "req-1";
    a->dedupe_key = "slack:trig-1";
    a->platform = "slack";
    a->user_id = "UALICE";
    a->user_name = "alice";
    a->person = "Alice";
    a->gitlab_login = "alice";
    a->where_channel_id = "CPROD";
    a->where_channel_name = "prod";
    a->where_configured = true;
    a->where_tenant = "T1";
    a->command = "lb";
    a->text = "weight green 30";
    args[0] = (struct cq_audit_arg){"pool", "green"};
    args[1] = (struct cq_audit_arg){"weight", "30"};
    a->args = args;
    a->n_args = 2;
    a->decision = "allowed";
    a->rule = "ops-lb";
    a->worker = "worker-1";
}

TEST(audit_round_trip) {
    struct cq_audit in, out;
    struct cq_audit_arg args[2];
    struct cq_err err = {0};
    fill_audit(&in, args);
    in.result = "ok";
    in.detail = "done";
    in.pipeline_id = 9007199254740991LL;
    in.pipeline_status = "running";
    char *json = cq_audit_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    CHECK_CONTAINS(json, "\"v\":1");
    CHECK_CONTAINS(json, "\"kind\":\"decision\"");
    CHECK_CONTAINS(json, "\"who\":{\"platform\":\"slack\",\"user_id\":\"UALICE\"");
    CHECK_CONTAINS(json, "\"gitlab_login\":\"alice\"");
    CHECK_CONTAINS(json, "\"where\":{\"channel_id\":\"CPROD\"");
    CHECK_CONTAINS(json, "\"configured\":true");
    CHECK_CONTAINS(json, "\"args\":{\"pool\":\"green\",\"weight\":\"30\"}");
    CHECK_CONTAINS(json, "\"pipeline\":{\"status\":\"running\",\"id\":9007199254740991}");
    CHECK(cq_audit_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.kind, "decision");
    CHECK_STR(out.request_id, "req-1");
    CHECK_STR(out.user_id, "UALICE");
    CHECK_STR(out.person, "Alice");
    CHECK_STR(out.where_channel_id, "CPROD");
    CHECK_STR(out.where_tenant, "T1");
    CHECK(out.where_configured);
    CHECK(out.n_args == 2);
    if (out.n_args == 2) {
        CHECK_STR(out.args[1].name, "weight");
        CHECK_STR(out.args[1].value, "30");
    }
    CHECK_STR(out.rule, "ops-lb");
    CHECK_STR(out.result, "ok");
    CHECK(out.pipeline_id == 9007199254740991LL);
    CHECK_STR(out.worker, "worker-1");
    cq_audit_clear(&out);
    CHECK(out.kind == NULL && out.args == NULL && out.n_args == 0);
    free(json);

    /* Unknown person and rule are written as null; no "where" without a channel. */
    in.person = in.gitlab_login = in.rule = NULL;
    in.where_channel_id = in.where_channel_name = in.where_tenant = NULL;
    in.n_args = 0;
    in.pipeline_id = 0;
    in.pipeline_status = NULL;
    json = cq_audit_encode(&in, &err);
    CHECK_CONTAINS(json, "\"person\":null");
    CHECK_CONTAINS(json, "\"gitlab_login\":null");
    CHECK_CONTAINS(json, "\"rule\":null");
    CHECK_CONTAINS(json, "\"args\":{}");
    CHECK(json && strstr(json, "where") == NULL && strstr(json, "pipeline") == NULL);
    CHECK(cq_audit_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(out.person == NULL && out.rule == NULL && out.where_channel_id == NULL);
    cq_audit_clear(&out);
    free(json);
}

TEST(audit_refused) {
    struct cq_audit in, out;
    struct cq_audit_arg args[2];
    struct cq_err err = {0};
    fill_audit(&in, args);
    in.kind = NULL;
    CHECK(cq_audit_encode(&in, &err) == NULL && err.code == CQ_EINVAL);
    CHECK_CONTAINS(err.msg, "'kind'");
    fill_audit(&in, args);
    in.where_channel_id = NULL; /* a channel name without the channel */
    CHECK(cq_audit_encode(&in, &err) == NULL);
    CHECK_CONTAINS(err.msg, "where.channel_id");
    fill_audit(&in, args);
    args[1].value = "\xff";
    CHECK(cq_audit_encode(&in, &err) == NULL && err.code == CQ_EENCODE);

    const char *bad[][2] = {
        {"{\"v\":1,\"time\":\"t\",\"request_id\":\"r\"}", "'kind'"},
        {"{\"v\":2,\"kind\":\"decision\",\"time\":\"t\",\"request_id\":\"r\"}", "version"},
        {"{\"v\":1,\"kind\":\"d\",\"time\":\"t\",\"request_id\":\"r\",\"args\":{\"a\":1}}",
         "args.a"},
        {"{\"v\":1,\"kind\":\"d\",\"time\":\"t\",\"request_id\":\"r\",\"args\":[]}", "'args'"},
        {"{\"v\":1,\"kind\":\"d\",\"time\":\"t\",\"request_id\":\"r\",\"where\":{\"configured\":"
         "1}}",
         "where.configured"},
        {"{\"v\":1,\"kind\":\"d\",\"time\":\"t\",\"request_id\":\"r\",\"who\":{\"user_id\":7}}",
         "who.user_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(cq_audit_decode(bad[i][0], strlen(bad[i][0]), 0, &out, &err) != CQ_OK);
        CHECK_CONTAINS(err.msg, bad[i][1]);
        CHECK(out.kind == NULL);
    }
}

/* The shapes written before the records moved into common/envelope, byte for byte as the
 * request path (worker/service.c) and the pipeline tracker (worker/pipeline.c) wrote them. */
TEST(audit_previous_shapes) {
    struct cq_audit out;
    struct cq_err err = {0};
    const char *request_path =
        "{\"v\":1,\"kind\":\"decision\",\"time\":\"2026-01-02T03:04:05.678Z\",\"request_id\":"
        "\"r1\",\"dedupe_key\":\"slack:t1\",\"who\":{\"platform\":\"slack\",\"user_id\":\"UBOB\","
        "\"person\":null,\"gitlab_login\":null},\"where\":{\"channel_id\":\"CDEV\","
        "\"configured\":false},\"command\":\"deploy\",\"text\":\"web\",\"args\":{},\"decision\":"
        "\"denied\",\"rule\":null,\"worker\":\"w1\"}";
    const char *tracker =
        "{\"v\":1,\"kind\":\"outcome\",\"time\":\"2026-01-02T03:04:05.678Z\",\"request_id\":"
        "\"r2\",\"dedupe_key\":\"feishu:e2\",\"who\":{\"platform\":\"feishu\",\"user_id\":"
        "\"ou_1\",\"user_name\":\"Ann\"},\"command\":\"deploy web production\",\"decision\":"
        "\"allowed\",\"result\":\"failed\",\"detail\":\"pipeline 7 failed\",\"pipeline\":{\"id\":"
        "7,\"status\":\"failed\"},\"worker\":\"w2\"}";
    CHECK(cq_audit_decode(request_path, strlen(request_path), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.decision, "denied");
    CHECK(out.rule == NULL && out.person == NULL && !out.where_configured);
    CHECK_STR(out.where_channel_id, "CDEV");
    cq_audit_clear(&out);
    CHECK(cq_audit_decode(tracker, strlen(tracker), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.kind, "outcome");
    CHECK_STR(out.result, "failed");
    CHECK(out.pipeline_id == 7);
    CHECK_STR(out.pipeline_status, "failed");
    CHECK(out.where_channel_id == NULL && out.n_args == 0);
    cq_audit_clear(&out);
}

static void fill_dlq(struct cq_dlq *d) {
    memset(d, 0, sizeof(*d));
    d->service = "notifier";
    d->cls = "permanent";
    d->reason = "slack: channel_not_found";
    d->failed_at = "2026-01-02T03:04:05.678Z";
    d->topic = "chatops.results";
    d->partition = 3;
    d->offset = 41;
    d->request_id = "req-9";
    d->step = "final";
    d->seq = 2;
    d->platform = "slack";
    d->attempts = 1;
    d->route = "post_message";
    d->has_answer = true;
    d->answer_status = 200;
    d->answer_body = "{\"ok\":false,\"error\":\"channel_not_found\"}";
    d->payload = "{\"v\":1,\"request_id\":\"req-9\"}";
    d->payload_len = strlen(d->payload);
}

TEST(dlq_round_trip) {
    struct cq_dlq in, out;
    struct cq_err err = {0};
    fill_dlq(&in);
    char *json = cq_dlq_encode(&in, &err);
    CHECK(json != NULL);
    if (!json) return;
    CHECK_CONTAINS(json, "\"v\":2");
    CHECK_CONTAINS(json, "\"service\":\"notifier\"");
    CHECK_CONTAINS(json, "\"class\":\"permanent\"");
    CHECK_CONTAINS(json, "\"topic\":\"chatops.results\"");
    CHECK_CONTAINS(json, "\"attempts\":1");
    CHECK_CONTAINS(json, "\"answer\":{\"body\":");
    CHECK_CONTAINS(json, "\"result\":{\"v\":1,\"request_id\":\"req-9\"}"); /* readable copy */
    CHECK(cq_dlq_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(out.version == 2);
    CHECK_STR(out.service, "notifier");
    CHECK_STR(out.cls, "permanent");
    CHECK_STR(out.reason, "slack: channel_not_found");
    CHECK_STR(out.topic, "chatops.results");
    CHECK(out.partition == 3 && out.offset == 41 && out.seq == 2 && out.attempts == 1);
    CHECK(out.has_answer && out.answer_status == 200);
    CHECK_CONTAINS(out.answer_body, "channel_not_found");
    CHECK(out.payload_len == in.payload_len &&
          memcmp(out.payload, in.payload, in.payload_len) == 0);
    cq_dlq_clear(&out);
    CHECK(out.payload == NULL && out.reason == NULL);
    free(json);

    /* The worker's letter: any bytes (a NUL too) come back exactly; no readable copy. */
    static const char bytes[] = {'n', 'o', '\0', 't', '\xff', ' ', 'j', 's', 'o', 'n'};
    memset(&in, 0, sizeof(in));
    in.service = "worker";
    in.cls = "invalid";
    in.reason = "request: not valid JSON";
    in.topic = "chatops.requests";
    in.offset = 5;
    in.payload = (char *)bytes;
    in.payload_len = sizeof bytes;
    json = cq_dlq_encode(&in, &err);
    CHECK(json && strstr(json, "\"raw\"") == NULL && strstr(json, "\"result\"") == NULL);
    CHECK(json && cq_dlq_decode(json, strlen(json), 0, &out, &err) == CQ_OK);
    CHECK(out.payload_len == sizeof bytes && memcmp(out.payload, bytes, sizeof bytes) == 0);
    CHECK(out.request_id == NULL && !out.has_answer);
    cq_dlq_clear(&out);
    free(json);

    /* An empty original; a notifier original that is not JSON gets a "raw" copy. */
    in.payload = NULL;
    in.payload_len = 0;
    json = cq_dlq_encode(&in, &err);
    CHECK_CONTAINS(json, "\"payload_b64\":\"\"");
    CHECK(json && cq_dlq_decode(json, strlen(json), 0, &out, &err) == CQ_OK &&
          out.payload_len == 0);
    cq_dlq_clear(&out);
    free(json);
    fill_dlq(&in);
    in.payload = "{\"v\":1,\"request_id\"";
    in.payload_len = strlen(in.payload);
    json = cq_dlq_encode(&in, &err);
    CHECK_CONTAINS(json, "\"raw\":\"{\\\"v\\\":1,\\\"request_id\\\"\"");
    free(json);
}

TEST(dlq_refused) {
    struct cq_dlq in, out;
    struct cq_err err = {0};
    fill_dlq(&in);
    in.cls = NULL;
    CHECK(cq_dlq_encode(&in, &err) == NULL);
    CHECK_CONTAINS(err.msg, "'class'");
    fill_dlq(&in);
    in.cls = "sad";
    CHECK(cq_dlq_encode(&in, &err) == NULL && err.code == CQ_EENCODE);
    fill_dlq(&in);
    in.service = "ingress";
    CHECK(cq_dlq_encode(&in, &err) == NULL);
    CHECK_CONTAINS(err.msg, "'service'");

    const char *bad[][2] = {
        {"{\"v\":3,\"service\":\"worker\"}", "version"},
        {"{\"v\":2,\"service\":\"worker\",\"reason\":\"r\",\"topic\":\"t\"}", "payload_b64"},
        {"{\"v\":2,\"reason\":\"r\",\"topic\":\"t\",\"payload_b64\":\"\"}", "'service'"},
        {"{\"v\":2,\"service\":\"worker\",\"reason\":\"r\",\"payload_b64\":\"\"}", "'topic'"},
        {"{\"v\":2,\"service\":\"worker\",\"reason\":\"r\",\"topic\":\"t\",\"payload_b64\":\"!\"}",
         "base64"},
        {"{\"v\":1,\"service\":\"worker\",\"topic\":\"t\"}", "'reason'"},
        {"{\"v\":1,\"reason\":\"r\",\"attempts\":\"3\"}", "'attempts'"},
        {"{\"v\":1,\"reason\":\"r\",\"source\":7}", "'source'"},
        {"not json", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(cq_dlq_decode(bad[i][0], strlen(bad[i][0]), 0, &out, &err) != CQ_OK);
        CHECK_CONTAINS(err.msg, bad[i][1]);
        CHECK(out.reason == NULL && out.payload == NULL);
    }
}

/* Version 1 letters, as the worker and the notifier wrote them before one schema. */
TEST(dlq_version_1) {
    struct cq_dlq out;
    struct cq_err err = {0};
    const char *worker = "{\"v\":1,\"service\":\"worker\",\"reason\":\"request: not valid JSON\","
                         "\"topic\":\"chatops.requests\",\"partition\":1,\"offset\":3,"
                         "\"payload_b64\":\"bm90IGpzb24h\",\"time\":\"2026-01-02T03:04:05Z\"}";
    const char *notifier =
        "{\"v\":1,\"request_id\":\"req-dlq-1\",\"step\":\"final\",\"seq\":2,\"platform\":"
        "\"slack\",\"reason\":\"slack: channel_not_found\",\"attempts\":3,\"route\":"
        "\"post_message\",\"answer\":{\"status\":200,\"body\":\"{}\"},\"failed_at\":"
        "\"2026-01-02T03:04:05Z\",\"source\":{\"topic\":\"chatops.results\",\"partition\":4,"
        "\"offset\":7},\"result\":{\"v\":1,\"request_id\":\"req-dlq-1\",\"text\":\"replay me\"}}";
    const char *raw = "{\"v\":1,\"reason\":\"invalid result: not valid JSON\",\"attempts\":0,"
                      "\"raw\":\"{\\\"v\\\":1,\\\"request_id\\\":\\\"broken\\\"\",\"failed_at\":"
                      "\"2026-01-02T03:04:05Z\"}";
    CHECK(cq_dlq_decode(worker, strlen(worker), 0, &out, &err) == CQ_OK);
    CHECK(out.version == 1);
    CHECK_STR(out.service, "worker");
    CHECK(out.cls == NULL);
    CHECK_STR(out.topic, "chatops.requests");
    CHECK(out.partition == 1 && out.offset == 3);
    CHECK_STR(out.failed_at, "2026-01-02T03:04:05Z");
    CHECK(out.payload_len == 9 && memcmp(out.payload, "not json!", 9) == 0);
    cq_dlq_clear(&out);

    CHECK(cq_dlq_decode(notifier, strlen(notifier), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.service, "notifier");
    CHECK_STR(out.topic, "chatops.results");
    CHECK(out.partition == 4 && out.offset == 7 && out.attempts == 3 && out.seq == 2);
    CHECK(out.has_answer && out.answer_status == 200);
    CHECK_STR(out.request_id, "req-dlq-1");
    CHECK_CONTAINS(out.payload, "\"text\":\"replay me\"");
    cq_dlq_clear(&out);

    CHECK(cq_dlq_decode(raw, strlen(raw), 0, &out, &err) == CQ_OK);
    CHECK(out.topic == NULL); /* no source named: the reader knows it was the results topic */
    CHECK_STR(out.payload, "{\"v\":1,\"request_id\":\"broken\"");
    cq_dlq_clear(&out);
}

int main(void) {
    printf("envelope records: audit and dead letter encode+decode, previous shapes decode\n");
    RUN(audit_round_trip);
    RUN(audit_refused);
    RUN(audit_previous_shapes);
    RUN(dlq_round_trip);
    RUN(dlq_refused);
    RUN(dlq_version_1);
    return cqtest_done();
}
