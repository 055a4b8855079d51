/* Unit tests for notifier/backoff.c and notifier/classify.c: backoff bounds and growth,
 * Retry-After / x-ogw-ratelimit-reset parsing, per-channel pacing and 429 holds, and the
 * classification of Slack/Feishu answers into delivered / retry / fallback / token / dead. */
#include "backoff.h"
#include "classify.h"
#include "cqtest.h"

TEST(backoff_bounds) {
    for (int a = 1; a <= 12; a++) {
        uint64_t step = 500;
        for (int i = 1; i < a && step < 30000; i++)
            step *= 2;
        if (step > 30000) step = 30000;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint64_t rnd = 0; rnd < 5000; rnd += 7) {
            uint64_t d = ntf_backoff_ms(a, 500, 30000, rnd * 2654435761u);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        CHECK(lo >= step / 2);
        CHECK(hi <= step);
        CHECK(hi > lo); /* jitter actually varies */
    }
    CHECK(ntf_backoff_ms(1, 500, 30000, 0) == 250);
    CHECK(ntf_backoff_ms(100, 500, 30000, 0) == 15000);
    CHECK(ntf_backoff_ms(0, 0, 0, 5) <= 1);
}

TEST(retry_after_parse) {
    CHECK(ntf_retry_after_ms("2", 0, 0) == 2000);
    CHECK(ntf_retry_after_ms(" 1.5 ", 0, 0) == 1500);
    CHECK(ntf_retry_after_ms("0", 0, 0) == 0);
    CHECK(ntf_retry_after_ms("120", 0, 60000) == 60000);
    CHECK(ntf_retry_after_ms("abc", 0, 0) == -1);
    CHECK(ntf_retry_after_ms("5s", 0, 0) == -1);
    CHECK(ntf_retry_after_ms("-3", 0, 0) == -1);
    CHECK(ntf_retry_after_ms("", 0, 0) == -1);
    CHECK(ntf_retry_after_ms(NULL, 0, 0) == -1);
    /* HTTP-date: Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    CHECK(ntf_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412477, 0) == 3000);
    CHECK(ntf_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490, 0) == 0);
    CHECK(ntf_retry_after_ms("Wed, 21 Foo 2015 07:28:00 GMT", 0, 0) == -1);
}

TEST(pacer_spaces_one_channel_not_others) {
    struct ntf_pacer *p = ntf_pacer_new(1000);
    CHECK(p != NULL);
    CHECK(ntf_pacer_reserve(p, "slack:C1", 10000) == 10000);
    CHECK(ntf_pacer_reserve(p, "slack:C1", 10000) == 11000);
    CHECK(ntf_pacer_reserve(p, "slack:C1", 10100) == 12000);
    CHECK(ntf_pacer_reserve(p, "slack:C2", 10100) == 10100); /* other channel unaffected */
    CHECK(ntf_pacer_reserve(p, "slack:C1", 20000) == 20000); /* idle again */
    ntf_pacer_hold(p, "slack:C2", 25000);                    /* 429 on C2 */
    CHECK(ntf_pacer_reserve(p, "slack:C2", 21000) == 25000);
    CHECK(ntf_pacer_reserve(p, "slack:C2", 21000) == 26000);
    CHECK(ntf_pacer_size(p) == 2);
    CHECK(ntf_pacer_reserve(p, "slack:C3", 200000) == 200000); /* sweep drops idle keys */
    CHECK(ntf_pacer_size(p) == 1);
    ntf_pacer_free(p);
    struct ntf_pacer *q = ntf_pacer_new(0);
    CHECK(ntf_pacer_reserve(q, "k", 5) == 5 && ntf_pacer_reserve(q, "k", 5) == 5);
    ntf_pacer_free(q);
    ntf_pacer_free(NULL);
}

static enum ntf_outcome sw(long st, const char *body, char *why) {
    struct ntf_attempt_answer a = {CQ_OK, st, body};
    return ntf_classify_slack_webhook(&a, why, 64);
}
static enum ntf_outcome sa(long st, const char *body, char *why) {
    struct ntf_attempt_answer a = {CQ_OK, st, body};
    return ntf_classify_slack_api(&a, why, 64);
}
static enum ntf_outcome fs(long st, const char *body, char *why) {
    struct ntf_attempt_answer a = {CQ_OK, st, body};
    return ntf_classify_feishu(&a, why, 64);
}

TEST(classify_slack) {
    char why[64];
    CHECK(sw(200, "ok", why) == NTF_OUT_DELIVERED);
    CHECK(sw(200, "{\"ok\":true}", why) == NTF_OUT_DELIVERED);
    CHECK(sw(404, "expired_url", why) == NTF_OUT_FALLBACK);
    CHECK(sw(200, "{\"ok\":false,\"error\":\"used_url\"}", why) == NTF_OUT_FALLBACK);
    CHECK(sw(500, "oops", why) == NTF_OUT_RETRY);
    CHECK_STR(why, "http_500");
    CHECK(sw(429, "", why) == NTF_OUT_RETRY);
    CHECK(sw(400, "invalid_blocks", why) == NTF_OUT_PERMANENT);
    struct ntf_attempt_answer t = {CQ_ETIMEOUT, 0, ""};
    CHECK(ntf_classify_slack_webhook(&t, why, sizeof why) == NTF_OUT_RETRY);
    CHECK_STR(why, "timeout");
    t.rc = CQ_EHTTP;
    CHECK(ntf_classify_slack_api(&t, why, sizeof why) == NTF_OUT_RETRY);
    CHECK_STR(why, "connection_error");

    CHECK(sa(200, "{\"ok\":true,\"ts\":\"1.2\"}", why) == NTF_OUT_DELIVERED);
    CHECK(sa(200, "{\"ok\":false,\"error\":\"channel_not_found\"}", why) == NTF_OUT_PERMANENT);
    CHECK_STR(why, "slack:channel_not_found");
    CHECK(sa(200, "{\"ok\":false,\"error\":\"invalid_auth\"}", why) == NTF_OUT_PERMANENT);
    CHECK(sa(200, "{\"ok\":false,\"error\":\"ratelimited\"}", why) == NTF_OUT_RETRY);
    CHECK(sa(200, "{\"ok\":false,\"error\":\"internal_error\"}", why) == NTF_OUT_RETRY);
    CHECK(sa(200, "<html>", why) == NTF_OUT_RETRY);
    CHECK(sa(503, "", why) == NTF_OUT_RETRY);
    CHECK(sa(403, "", why) == NTF_OUT_PERMANENT);
    CHECK(ntf_slack_error_retryable("service_unavailable"));
    CHECK(!ntf_slack_error_retryable("not_in_channel"));
    char *ts = ntf_slack_answer_ts("{\"ok\":true,\"channel\":\"C1\",\"ts\":\"1503435956.000247\"}");
    CHECK_STR(ts, "1503435956.000247");
    free(ts);
    CHECK(ntf_slack_answer_ts("{\"ok\":false}") == NULL);
}

TEST(classify_feishu) {
    char why[64];
    CHECK(fs(200, "{\"code\":0,\"msg\":\"success\",\"data\":{}}", why) == NTF_OUT_DELIVERED);
    CHECK(fs(200, "{\"code\":99991663,\"msg\":\"token expired\"}", why) == NTF_OUT_TOKEN_EXPIRED);
    CHECK(fs(400, "{\"code\":99991664,\"msg\":\"invalid\"}", why) == NTF_OUT_TOKEN_EXPIRED);
    CHECK(fs(401, "{\"code\":99991671,\"msg\":\"x\"}", why) == NTF_OUT_TOKEN_EXPIRED);
    CHECK_STR(why, "feishu:99991671");
    CHECK(fs(400, "{\"code\":230002,\"msg\":\"bot not in chat\"}", why) == NTF_OUT_PERMANENT);
    CHECK_STR(why, "feishu:230002");
    CHECK(fs(429, "{\"code\":99991400,\"msg\":\"rate\"}", why) == NTF_OUT_RETRY);
    CHECK(fs(200, "{\"code\":230020,\"msg\":\"rate\"}", why) == NTF_OUT_RETRY);
    CHECK(fs(502, "bad gateway", why) == NTF_OUT_RETRY);
    CHECK(fs(404, "nope", why) == NTF_OUT_PERMANENT);

    struct ntf_attempt_answer a = {
        CQ_OK, 200,
        "{\"code\":0,\"msg\":\"ok\",\"tenant_access_token\":\"t-abc\",\"expire\":7200}"};
    char *tok = NULL;
    long exp = 0;
    CHECK(ntf_classify_feishu_token(&a, &tok, &exp, why, sizeof why) == NTF_OUT_DELIVERED);
    CHECK_STR(tok, "t-abc");
    CHECK(exp == 7200);
    free(tok);
    a.body = "{\"code\":10003,\"msg\":\"invalid app_secret\"}";
    CHECK(ntf_classify_feishu_token(&a, &tok, &exp, why, sizeof why) == NTF_OUT_PERMANENT);
    CHECK(tok == NULL);
    a.body = "{\"code\":0}";
    CHECK(ntf_classify_feishu_token(&a, &tok, &exp, why, sizeof why) == NTF_OUT_RETRY);
    CHECK_STR(ntf_outcome_str(NTF_OUT_FALLBACK), "fallback");
}

int main(void) {
    printf("notifier backoff/classify: jittered backoff, 429 hints, pacing, answer classes\n");
    RUN(backoff_bounds);
    RUN(retry_after_parse);
    RUN(pacer_spaces_one_channel_not_others);
    RUN(classify_slack);
    RUN(classify_feishu);
    return cqtest_done();
}
