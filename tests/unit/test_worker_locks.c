/* Unit tests for the pure parts of worker/locks.c and worker/ratelimit.c (issue 16): the
 * duration words of refusals, the one line describing a lock record (and an unreadable one),
 * the rate-limit refusal and state lines per user / channel / in all, and the limit keys. */
#include <stdlib.h>
#include <string.h>

#include "cqtest.h"
#include "locks.h"
#include "service_int.h"

TEST(durations) {
    char b[32];
    w_fmt_duration(b, sizeof b, 0);
    CHECK_STR(b, "0s");
    w_fmt_duration(b, sizeof b, 1); /* rounded up: never "try again in 0s" while refused */
    CHECK_STR(b, "1s");
    w_fmt_duration(b, sizeof b, 252000);
    CHECK_STR(b, "4m12s");
    w_fmt_duration(b, sizeof b, 3900000);
    CHECK_STR(b, "1h05m");
    w_fmt_duration(b, sizeof b, -5);
    CHECK_STR(b, "0s");
}

TEST(describe) {
    const char *rec = "{\"name\":\"env:production\",\"token\":\"t\",\"req\":\"R1\",\"who\":"
                      "\"alice\",\"user\":\"person:alice\",\"since\":1700000000000,"
                      "\"until_ms\":1700007200000,\"reason\":\"`deploy web production`\","
                      "\"kind\":\"action\"}";
    char *d = w_lock_describe(rec, 1700000190000);
    CHECK_STR(d, "`env:production` is held by alice since 22:13:20 UTC (3m10s ago) for "
                 "`deploy web production` (req R1)");
    free(d);
    CHECK(w_lock_describe("not json", 0) == NULL);
    CHECK(w_lock_describe("{\"name\":\"x\",\"who\":1}", 0) == NULL);
}

TEST(limits) {
    struct cq_command c = {.name = "deploy", .limit = {.count = 3, .window_s = 600}};
    char *s = w_limit_refusal(&c, 252000);
    CHECK_STR(s, "rate limit: 3 `deploy` per 600 s per user; try again in 4m12s");
    free(s);
    c.limit.per = CQ_LIMIT_GLOBAL;
    s = w_limit_refusal(&c, 1000);
    CHECK_STR(s, "rate limit: 3 `deploy` per 600 s in all; try again in 1s");
    free(s);
    c.limit.per = CQ_LIMIT_CHANNEL;
    s = w_limit_state(&c, 1, 0, true);
    CHECK_STR(s, "1 of 3 used in 600 s per channel: 2 left");
    free(s);
    s = w_limit_state(&c, 3, 61000, false);
    CHECK_STR(s, "3 of 3 used in 600 s per channel: refused now, free again in 1m01s");
    free(s);
}

TEST(keys) {
    struct cq_config cfg = {0};
    cfg.redis.prefix = "p:";
    struct cq_command c = {.name = "deploy", .limit = {.count = 1, .window_s = 60}};
    struct cq_person alice = {.name = "alice"};
    struct job j = {.cfg = &cfg, .cmd = &c};
    j.req.platform = "slack";
    j.req.user_id = "U1";
    j.req.channel_id = "C1";
    char *k = w_limit_key(&j);
    CHECK_STR(k, "p:rl:deploy:user:slack:U1");
    free(k);
    j.person = &alice; /* one person is one count on every platform */
    k = w_limit_key(&j);
    CHECK_STR(k, "p:rl:deploy:person:alice");
    free(k);
    c.limit.per = CQ_LIMIT_CHANNEL;
    k = w_limit_key(&j);
    CHECK_STR(k, "p:rl:deploy:chan:slack:C1");
    free(k);
    c.limit.per = CQ_LIMIT_GLOBAL;
    k = w_limit_key(&j);
    CHECK_STR(k, "p:rl:deploy:all");
    free(k);
}

int main(void) {
    printf("worker/locks, worker/ratelimit: durations, lock lines, limit lines and keys\n");
    RUN(durations);
    RUN(describe);
    RUN(limits);
    RUN(keys);
    return cqtest_done();
}
