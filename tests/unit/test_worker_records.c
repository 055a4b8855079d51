/* Unit tests for worker/records.c: the worker's records go through common/envelope and
 * decode with its one decoder each: the dead letter of a message that is not a request
 * (service, class, its exact bytes), the pipeline tracker's outcome audit record, an audit
 * record that cannot be encoded (written short, with the reason, never dropped), and a result
 * that cannot be encoded (a short one: "failed" for a final, or always when asked). Pure. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "records.h"
#include "service_int.h"

TEST(dead_letter) {
    static const char bytes[] = {'{', '"', 'v', '"', ':', '\0', '\xfe'};
    struct cq_message m = {.topic = "chatops.requests",
                           .partition = 2,
                           .offset = 17,
                           .payload = bytes,
                           .len = sizeof bytes};
    struct cq_dlq d;
    struct cq_err err = {0};
    char *s = w_dlq_json(&m, "request: not valid JSON");
    CHECK(s != NULL);
    if (!s) return;
    CHECK(cq_dlq_decode(s, strlen(s), 0, &d, &err) == CQ_OK);
    CHECK(d.version == CQ_DLQ_VERSION);
    CHECK_STR(d.service, "worker");
    CHECK_STR(d.cls, "invalid");
    CHECK_STR(d.reason, "request: not valid JSON");
    CHECK_STR(d.topic, "chatops.requests");
    CHECK(d.partition == 2 && d.offset == 17);
    CHECK(d.payload_len == sizeof bytes && memcmp(d.payload, bytes, sizeof bytes) == 0);
    CHECK(d.failed_at != NULL);
    cq_dlq_clear(&d);
    free(s);
}

TEST(outcome_audit) {
    struct cq_request q = {.id = "req-7",
                           .platform = "feishu",
                           .user_id = "ou_1",
                           .user_name = "Ann",
                           .dedupe_key = "feishu:e7"};
    struct cq_audit a;
    struct cq_err err = {0};
    char *s = w_audit_outcome_json(&q, "deploy web production", "failed", "pipeline #7 failed", 7,
                                   NULL, "worker-a");
    CHECK(s != NULL);
    if (!s) return;
    CHECK(cq_audit_decode(s, strlen(s), 0, &a, &err) == CQ_OK);
    CHECK_STR(a.kind, "outcome");
    CHECK_STR(a.request_id, "req-7");
    CHECK_STR(a.user_id, "ou_1");
    CHECK_STR(a.decision, "allowed");
    CHECK_STR(a.result, "failed");
    CHECK_STR(a.detail, "pipeline #7 failed");
    CHECK(a.pipeline_id == 7);
    CHECK_STR(a.pipeline_status, "");
    CHECK_STR(a.worker, "worker-a");
    cq_audit_clear(&a);
    free(s);
}

TEST(audit_that_cannot_be_encoded) {
    char big[CQ_ENV_MAX_TEXT + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct cq_audit in = {.kind = "decision",
                          .time = "2026-01-02T03:04:05Z",
                          .request_id = "req-8",
                          .text = big,
                          .decision = "allowed",
                          .worker = "w"};
    struct cq_audit a;
    struct cq_err err = {0};
    char *s = w_audit_encode(&in);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(cq_audit_decode(s, strlen(s), 0, &a, &err) == CQ_OK);
    CHECK_STR(a.request_id, "req-8");
    CHECK_STR(a.decision, "allowed");
    CHECK(a.text == NULL);
    CHECK_CONTAINS(a.detail, "could not encode the audit record");
    CHECK_CONTAINS(a.detail, "text");
    cq_audit_clear(&a);
    free(s);
}

TEST(result_that_cannot_be_encoded) {
    struct cq_result r = {.request_id = "req-9",
                          .step = "progress",
                          .status = "ok",
                          .platform = "slack",
                          .text = "\xff bad",
                          .command = "deploy"};
    struct cq_result out;
    struct cq_err err = {0};
    char *s = w_result_encode(&r, false); /* a progress message keeps its status */
    CHECK(s && cq_result_decode(s, strlen(s), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.status, "ok");
    CHECK_CONTAINS(out.text, "could not encode the result");
    CHECK(out.command == NULL);
    cq_result_clear(&out);
    free(s);
    r = (struct cq_result){.request_id = "req-9",
                           .step = "ack",
                           .status = "ok",
                           .platform = "slack",
                           .text = "\xff bad"};
    s = w_result_encode(&r, true); /* the request path: always failed */
    CHECK(s && cq_result_decode(s, strlen(s), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.status, "failed");
    cq_result_clear(&out);
    free(s);
    r = (struct cq_result){.request_id = "req-9",
                           .step = "final",
                           .status = "ok",
                           .platform = "slack",
                           .text = "fine"};
    s = w_result_encode(&r, false);
    CHECK(s && cq_result_decode(s, strlen(s), 0, &out, &err) == CQ_OK);
    CHECK_STR(out.status, "ok");
    CHECK_STR(out.text, "fine");
    cq_result_clear(&out);
    free(s);
}

int main(void) {
    printf("worker records: dead letter, outcome audit, encoding fallbacks\n");
    RUN(dead_letter);
    RUN(outcome_audit);
    RUN(audit_that_cannot_be_encoded);
    RUN(result_that_cannot_be_encoded);
    return cqtest_done();
}
