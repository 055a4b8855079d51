/* Unit tests of the ingress's route table (ingress/platform.h, platforms.c): every route is
 * found by its configured path (and a moved path moves it), labels are unique, and each answer
 * style words a handed-over request's outcome as its platform expects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cqtest.h"
#include "ingress.h"
#include "platform.h"

static struct cq_config *load(const char *yaml) {
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("test.yaml", yaml, strlen(yaml), &err);
    if (!c) cqtest_fatal("config: %s", err.msg);
    return c;
}

TEST(routes) {
    struct cq_config *cfg = load("kafka: {brokers: \"127.0.0.1:1\"}\n"
                                 "ingress: {paths: {slack_events: /s/ev}}\n");
    int cmd = ing_route_find(cfg, "/slack/commands"), ev = ing_route_find(cfg, "/s/ev");
    CHECK(cmd >= 0 && ev >= 0 && cmd != ev);
    if (cmd >= 0) CHECK_STR(ing_routes[cmd].label, "slack_commands");
    if (ev >= 0) CHECK_STR(ing_routes[ev].label, "slack_events");
    CHECK(ing_route_find(cfg, "/slack/events") < 0); /* moved */
    CHECK(ing_route_find(cfg, "/nope") < 0);
    int fs = ing_route_find(cfg, "/feishu/events"), gl = ing_route_find(cfg, "/gitlab/webhook");
    CHECK(fs >= 0 && gl >= 0);
    if (gl >= 0) CHECK_STR(ing_routes[gl].platform, "gitlab");
    for (size_t i = 0; i < ing_n_routes; i++) {
        CHECK(ing_routes[i].handle != NULL && ing_routes[i].media != NULL);
        CHECK(ing_route_find(cfg, ing_route_path(cfg, i)) == (int)i);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(ing_routes[i].label, ing_routes[k].label) != 0);
    }
    CHECK(ing_n_routes <= ING_MAX_ROUTES);
    cq_config_free(cfg);
}

TEST(answers) {
    struct cq_config *cfg = load("kafka: {brokers: \"127.0.0.1:1\"}\n");
    int cmd = ing_route_find(cfg, "/slack/commands"), fs = ing_route_find(cfg, "/feishu/events");
    int status = 0;
    const char *ct = NULL;
    CHECK(cmd >= 0 && fs >= 0);
    if (cmd < 0 || fs < 0) goto out;
    char *a = ing_route_answer(&ing_routes[cmd], ING_QUEUED, "deploy web", "abcdef0123", NULL,
                               &status, &ct);
    CHECK(status == 200);
    CHECK_CONTAINS(a, "\"response_type\":\"ephemeral\"");
    CHECK_CONTAINS(a, "queued: deploy web");
    free(a);
    a = ing_route_answer(&ing_routes[fs], ING_QUEUED, "deploy web", "r", NULL, &status, &ct);
    CHECK_STR(a, "{}");
    free(a);
    a = ing_route_answer(&ing_routes[fs], ING_UNKNOWN, "deploy web", "r", "slow", &status, &ct);
    CHECK(status == 503);
    free(a);
out:
    cq_config_free(cfg);
}

/* The issue-18 reply fields travel in results too (the notifier's side of the contract), and
 * conversation_type / text_source only take their words. */
TEST(envelope_fields) {
    struct cq_result r = {
        .request_id = "r1", .step = "final", .status = "ok", .platform = "discord", .text = "done"};
    r.reply.response_url = "https://discord.com/api/v10/webhooks/1/tok";
    r.reply.expires_at = "2026-01-01T00:15:00.000Z";
    r.reply.conversation_type = "direct";
    r.reply.user_id = "staff-1";
    r.reply.app_id = "1";
    struct cq_err err = {0};
    char *json = cq_result_encode(&r, &err);
    CHECK(json != NULL);
    struct cq_result back = {0};
    CHECK(json && cq_result_decode(json, strlen(json), 0, &back, &err) == CQ_OK);
    CHECK_STR(back.platform, "discord");
    CHECK_STR(back.reply.expires_at, "2026-01-01T00:15:00.000Z");
    CHECK_STR(back.reply.conversation_type, "direct");
    CHECK_STR(back.reply.user_id, "staff-1");
    CHECK_STR(back.reply.app_id, "1");
    cq_result_clear(&back);
    free(json);
    r.reply.conversation_type = "channel";
    CHECK(cq_result_encode(&r, &err) == NULL);
    CHECK_CONTAINS(err.msg, "reply.conversation_type");
    static const char bad[] =
        "{\"v\":1,\"id\":\"a\",\"received_at\":\"2026-01-01T00:00:00Z\",\"platform\":"
        "\"webex\",\"user\":{\"id\":\"u\"},\"command\":\"help\",\"text\":\"\","
        "\"dedupe_key\":\"webex:m\",\"text_source\":\"slack\"}";
    struct cq_request q = {0};
    CHECK(cq_request_decode(bad, strlen(bad), 0, &q, &err) != CQ_OK);
    CHECK_CONTAINS(err.msg, "text_source");
    for (const char *const *p =
             (const char *const[]){"dingtalk", "mattermost", "discord", "webex", NULL};
         *p; p++) {
        r.platform = (char *)*p;
        r.reply.conversation_type = "group";
        char *j = cq_result_encode(&r, &err);
        CHECK(j != NULL);
        free(j);
    }
}

static void expect_error(const char *yaml, const char *want) {
    struct cq_err err = {0};
    struct cq_config *c = cq_config_load_string("t.yaml", yaml, strlen(yaml), &err);
    CHECK(c == NULL);
    cq_config_free(c);
    CHECK_CONTAINS(err.msg, want);
}

/* What an enabled issue-18 platform needs, and people/channels on the new platforms. */
TEST(config_checks) {
#define K "kafka: {brokers: \"127.0.0.1:1\"}\n"
    expect_error(K "mattermost: {enabled: true}\n", "mattermost.tokens: required when");
    expect_error(K "webex: {enabled: true}\n", "webex.webhook_secret: required when");
    expect_error(K "discord: {enabled: true, application_id: \"1\"}\n",
                 "discord.public_key: required when");
    expect_error(K "discord: {enabled: true, public_key: abc, application_id: \"1\"}\n",
                 "discord.public_key: must be the Ed25519 public key as 64 hex digits");
    expect_error(K "people:\n  a: {discord: [\"8\"]}\n  b: {discord: [\"8\"]}\n",
                 "people.b.discord[0]: 8 already belongs to a");
    struct cq_config *cfg = load(K "people:\n  a: {webex: [p1], roles: [ops]}\n"
                                   "  b: {mattermost: [p1]}\n"
                                   "channels:\n  w: {platform: webex, id: r1}\n");
    const struct cq_person *p = cq_config_person(cfg, "webex", "p1");
    CHECK(p && strcmp(p->name, "a") == 0);
    p = cq_config_person(cfg, "mattermost", "p1");
    CHECK(p && strcmp(p->name, "b") == 0);
    CHECK(cq_config_person(cfg, "dingtalk", "p1") == NULL);
    CHECK(cq_config_channel(cfg, "webex", "r1") != NULL);
    cq_config_free(cfg);
#undef K
}

int main(void) {
    RUN(routes);
    RUN(answers);
    RUN(envelope_fields);
    RUN(config_checks);
    return cqtest_done();
}
