/* Unit tests of ingress/mattermost.c: a slash command form normalised (text, user, channel,
 * team, response_url, thread root, trigger_id dedupe), each configured team token accepted,
 * a missing or wrong token refused with 401 before anything else is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "ingress.h"

static struct cq_config *cfg;

static void run(const char *body, struct ing_verdict *v) {
    struct ing_headers h = {0};
    ing_mattermost_command(cfg, &h, body, strlen(body), 0, v);
}

#define FORM(token)                                                                                \
    "channel_id=ch1&channel_name=ops-prod&command=%2Fops&response_url=http%3A%2F%2Fmm%2Fhooks%"    \
    "2Fcommands%2Fabc&team_domain=eng&team_id=team1&text=lb+weight+blue+30&token=" token           \
    "&trigger_id=trig-1&user_id=u-alice&user_name=alice&root_id=post-root"

TEST(command) {
    struct ing_verdict v;
    run(FORM("tok-team-a"), &v);
    CHECK(v.kind == ING_REQUEST);
    CHECK_STR(v.req.platform, "mattermost");
    CHECK_STR(v.req.command, "lb");
    CHECK_STR(v.req.text, "weight blue 30");
    CHECK_STR(v.req.user_id, "u-alice");
    CHECK_STR(v.req.user_name, "alice");
    CHECK_STR(v.req.channel_id, "ch1");
    CHECK_STR(v.req.channel_name, "ops-prod");
    CHECK_STR(v.req.tenant, "team1");
    CHECK_STR(v.req.dedupe_key, "mattermost:trig-1");
    CHECK_STR(v.req.reply.response_url, "http://mm/hooks/commands/abc");
    CHECK_STR(v.req.reply.chat_id, "ch1");
    CHECK_STR(v.req.reply.thread_ts, "post-root");
    CHECK(v.body && strstr(v.body, "\"platform\":\"mattermost\""));
    ing_verdict_clear(&v);
    /* the second team's token works too */
    run(FORM("tok-team-b"), &v);
    CHECK(v.kind == ING_REQUEST);
    ing_verdict_clear(&v);
}

TEST(rejections) {
    struct ing_verdict v;
    run(FORM("tok-team-c"), &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "bad token");
    ing_verdict_clear(&v);
    run(FORM("tok-team-"), &v); /* a prefix of a real token */
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    run("channel_id=ch1&user_id=u&trigger_id=t&text=help", &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    CHECK_STR(v.reason, "missing token");
    ing_verdict_clear(&v);
    run("token=%zz", &v);
    CHECK(v.kind == ING_REJECT && v.status == 401);
    ing_verdict_clear(&v);
    run("token=tok-team-a&channel_id=ch1&text=help", &v); /* no user, no trigger */
    CHECK(v.kind == ING_REJECT && v.status == 400);
    ing_verdict_clear(&v);
}

TEST(redacted) {
    char *t = cq_config_redact(cfg, strdup("echo tok-team-b here"));
    CHECK_STR(t, "echo [redacted] here");
    free(t);
}

int main(void) {
    struct cq_err err = {0};
    setenv("CQT_MM_A", "tok-team-a", 1);
    setenv("CQT_MM_B", "tok-team-b", 1);
    const char *y = "kafka: {brokers: \"127.0.0.1:1\"}\n"
                    "mattermost: {enabled: true, tokens: {eng: \"${CQT_MM_A}\", "
                    "sales: \"${CQT_MM_B}\"}}\n";
    cfg = cq_config_load_string("test.yaml", y, strlen(y), &err);
    if (!cfg) cqtest_fatal("config: %s", err.msg);
    RUN(command);
    RUN(rejections);
    RUN(redacted);
    cq_config_free(cfg);
    return cqtest_done();
}
